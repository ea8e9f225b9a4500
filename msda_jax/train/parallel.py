"""Data parallelism: a 1-D device mesh, the steps under ``jax.shard_map``, global batches.

The mesh has one axis, ``"data"``, over all devices (of every process). The model and
optimiser states are replicated (``P()``) and the batch is split along its first axis
(``P("data")``). ``shard_train_step`` wraps the pure step of ``msda_jax.train.step`` in
``jax.shard_map``, so each device runs it on its local batch and the step's ``axis_name``
collectives (``pmean`` of the loss, gradients, BatchNorm statistics and metrics) make every
replica apply the same update. Build the step with ``axis_name=AXIS`` and pass a ``Mixer`` with
``groups=1`` (it sees the local batch) as the wrapped step's argument, replicated like the
states (``replicate``): its hyper-parameters are then traced inputs of the compiled program. The
step folds the device's axis index into its key, so the mixing draws depend on the number of
devices, not on the number of processes.

By default BatchNorm normalises with each device's local batch statistics (so results depend on
the per-device batch size); ``sync_batch_norm`` makes it use the global batch's statistics, so
that training does not depend on the number of devices up to floating-point rounding.

``global_batch`` assembles one global ``jax.Array`` from every process's local numpy batch with
``jax.make_array_from_process_local_data``. None of these functions jit: the caller jits the
wrapped steps, e.g. ``jax.jit(step, donate_argnums=(0, 1))`` or ``state.jit_train_step(step)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from msda_jax.mixer import Mixer
from msda_jax.train.step import Batch, EvalStep, Metrics, OptimizerState, TrainStep

AXIS = "data"


def make_mesh(num_devices: int | None = None) -> Mesh:
  """A 1-D mesh with axis ``"data"`` over all devices (or the first ``num_devices``, one process).

  Devices are ordered by process, then by id, so process ``p``'s devices hold the ``p``-th
  contiguous block of every global batch.

  >>> mesh = make_mesh(2)
  >>> mesh.axis_names, mesh.size
  (('data',), 2)
  """
  devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
  if num_devices is not None:
    if jax.process_count() > 1 and num_devices != len(devices):
      raise ValueError("num_devices must be None (all devices) with several processes.")
    if not 0 < num_devices <= len(devices):
      raise ValueError(f"num_devices must be in [1, {len(devices)}]; got {num_devices}.")
    devices = devices[:num_devices]
  return Mesh(np.array(devices), (AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  """The sharding of the model and optimiser states: a full copy on every device."""
  return NamedSharding(mesh, P())


def replicate(tree: Any, mesh: Mesh) -> Any:
  """``tree`` (e.g. a ``Mixer``) with every array leaf a global array replicated over ``mesh``.

  Every process must pass the same values (as it builds the same mixer from the same config);
  each leaf (a numeric array or scalar, not a typed PRNG key: pass ``jax.random.key_data``) keeps
  its shape and dtype. Static fields and ``None`` pass through.

  >>> import msda_jax
  >>> mixer = replicate(msda_jax.Mixer(msda_jax.Mixup(alpha=0.4), num_classes=10), make_mesh(2))
  >>> mixer.prob.shape, mixer.prob.sharding.is_fully_replicated, len(mixer.prob.sharding.device_set)
  ((), True, 2)
  """
  sharding = replicated(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), tree)


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """The sharding of a batch: its first axis split over ``"data"``."""
  return NamedSharding(mesh, P(AXIS))


def sync_batch_norm(model: nnx.Module, axis_name: str | None = AXIS) -> nnx.Module:
  """Makes every ``nnx.BatchNorm`` of ``model`` average its batch statistics over ``axis_name``.

  Call it before ``nnx.split`` (the axis name is part of the static graph). ``None`` restores
  local statistics. Returns the model, modified in place.

  >>> from msda_jax.train.models import SmallCNN
  >>> model = sync_batch_norm(SmallCNN(10, width=4, rngs=nnx.Rngs(0)))
  >>> {m.axis_name for _, m in nnx.iter_modules(model) if isinstance(m, nnx.BatchNorm)}
  {'data'}
  """
  for _, module in nnx.iter_modules(model):
    if isinstance(module, nnx.BatchNorm):
      module.axis_name = axis_name
  return model


def shard_train_step(step: TrainStep, mesh: Mesh) -> TrainStep:
  """``step(model_state, opt_state, batch, key, mixer)`` under ``jax.shard_map`` over ``mesh``.

  States, key and mixer replicated (``P()``), batch split over ``"data"`` (``[B, ...]`` with
  ``B`` a multiple of the mesh size; each device gets ``[B / n, ...]``); outputs (states,
  metrics) replicated. ``mixer`` (a ``Mixer`` with ``groups=1``, or ``None`` for no mixing) is
  required: passed to the jitted result, its hyper-parameters are traced, not baked in. Jit the
  result with ``donate_argnums=(0, 1)``, or use ``state.jit_train_step``.
  """

  def sharded(
    model_state: nnx.State, opt_state: OptimizerState, batch: Batch, key: jax.Array, mixer: Mixer | None
  ) -> tuple[nnx.State, OptimizerState, Metrics]:
    return step(model_state, opt_state, batch, key, mixer)

  return jax.shard_map(sharded, mesh=mesh, in_specs=(P(), P(), P(AXIS), P(), P()), out_specs=(P(), P(), P()))


def shard_eval_step(step: EvalStep, mesh: Mesh) -> EvalStep:
  """``step(model_state, batch)`` under ``jax.shard_map``: the step must ``psum`` over ``"data"``."""
  return jax.shard_map(step, mesh=mesh, in_specs=(P(), P(AXIS)), out_specs=P())


def global_batch(local: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """One global batch, split over ``"data"``, from this process's rows ``[B_local, ...]``.

  The global batch size is ``B_local * process_count``; process ``p`` provides the ``p``-th
  contiguous block (see ``make_mesh``).

  >>> batch = global_batch({"label": np.arange(4)}, make_mesh(2))
  >>> batch["label"].shape, len(batch["label"].sharding.device_set)
  ((4,), 2)
  """
  sharding = batch_sharded(mesh)
  count = jax.process_count()

  def put(x: Any) -> jax.Array:
    x = np.asarray(x)
    return jax.make_array_from_process_local_data(sharding, x, (x.shape[0] * count, *x.shape[1:]))

  return {name: put(value) for name, value in local.items()}
