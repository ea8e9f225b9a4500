"""The train state of a run as one pytree, and the jitted step that maps it to the next one.

``TrainState`` holds what a run carries from step to step: the model state (``nnx.State``:
parameters and BatchNorm running statistics), the optimiser state (``OptimizerState``: the step
counter and the optax state) and the run's PRNG key as raw key data. It is a
``flax.struct.dataclass``, so its three fields are pytree children: it passes through
``jax.jit`` (donated as a whole), ``jax.shard_map`` (replicated, ``P()``) and shardings.

Checkpoints keep the dict layout ``{"model": ..., "opt": ..., "key": ...}`` of the fields
(``to_checkpoint`` / ``from_checkpoint``): a checkpoint written before ``TrainState`` existed,
from the same dict, restores into a ``TrainState`` unchanged, and ``checkpoint.load_state``
still returns nested dicts.

``jit_train_step`` wraps a pure step of ``msda_jax.train.step`` (or its ``shard_map`` form from
``msda_jax.train.parallel``) as ``train_fn(state, batch, mixer) -> (state, metrics)``. The
``Mixer`` is an argument of the jitted function, not a constant of the compiled program: its
float32 leaves (the method's ``alpha``, ``r``, ``q``, ... and the mixer's ``prob`` and
``label_smoothing``) are traced, so a mixer with other values reuses the compiled program.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import optax
from flax import nnx, struct

from msda_jax.mixer import Mixer
from msda_jax.train.step import Batch, Metrics, OptimizerState, TrainStep, init_train_state

StateStep = Callable[["TrainState", Batch, Mixer | None], tuple["TrainState", Metrics]]
CHECKPOINT_KEYS = ("model", "opt", "key")


@struct.dataclass
class TrainState:
  """The state a run carries between train steps (a pytree; every field is a child).

  Attributes:
    model: the ``nnx.State`` of the model: its ``nnx.Param`` leaves and BatchNorm statistics.
    opt: the ``OptimizerState``: int32 ``[]`` step counter and the optax state of the parameters.
    key: the run's PRNG key as raw key data (``jax.random.key_data``; uint32 ``[2]`` for the
      default threefry implementation). The step folds the step counter (and the device index
      under a mesh axis) into it, so it never changes during a run.

  >>> from msda_jax.train.models import SmallCNN
  >>> state = TrainState.create(SmallCNN(10, width=4, rngs=nnx.Rngs(0)), optax.sgd(0.1), jax.random.key(1))
  >>> int(state.step), state.key.shape, sorted(state.to_checkpoint())
  (0, (2,), ['key', 'model', 'opt'])
  """

  model: nnx.State
  opt: OptimizerState
  key: jax.Array

  @property
  def step(self) -> jax.Array:
    """int32 ``[]``: the number of updates applied so far (the optimiser's step counter)."""
    return self.opt.step

  @classmethod
  def create(cls, model: nnx.Module, tx: optax.GradientTransformation, key: jax.Array) -> TrainState:
    """The state at step 0 of ``model`` (not modified) with ``tx`` initialised and the typed PRNG ``key``.

    The model's static graph is ``nnx.graphdef(model)``; the step needs it (``make_train_step``).
    """
    if not (isinstance(key, jax.Array) and jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)):
      raise TypeError(f"key must be a typed PRNG key (jax.random.key); got {type(key).__name__} {key!r}.")
    _, model_state, opt_state = init_train_state(model, tx)
    return cls(model=model_state, opt=opt_state, key=jax.random.key_data(key))

  def to_checkpoint(self) -> dict[str, Any]:
    """The checkpoint layout: ``{"model": model, "opt": opt, "key": key}`` (the same leaves, no copy)."""
    return {"model": self.model, "opt": self.opt, "key": self.key}

  @classmethod
  def from_checkpoint(cls, tree: Mapping[str, Any]) -> TrainState:
    """The ``TrainState`` of a checkpoint tree ``{"model", "opt", "key"}`` (the inverse of ``to_checkpoint``)."""
    if not isinstance(tree, Mapping) or set(tree) != set(CHECKPOINT_KEYS):
      found = sorted(tree) if isinstance(tree, Mapping) else type(tree).__name__
      raise ValueError(f"tree must be a mapping with keys {sorted(CHECKPOINT_KEYS)}; got {found}.")
    return cls(model=tree["model"], opt=tree["opt"], key=tree["key"])


def jit_train_step(step: TrainStep, **jit_options: Any) -> StateStep:
  """``jax.jit`` of ``train_fn(state, batch, mixer) -> (state, metrics)`` around the pure ``step``.

  Args:
    step: ``step(model_state, opt_state, batch, key, mixer) -> (model_state, opt_state,
      metrics)``, from ``make_train_step`` or ``parallel.shard_train_step``.
    **jit_options: passed to ``jax.jit`` (e.g. ``compiler_options``); ``state`` is always donated.

  Returns:
    ``train_fn(state, batch, mixer)``: ``state`` a ``TrainState`` (donated: do not use it after
    the call), ``batch`` ``{"image": [B, H, W, C], "label": [B] or [B, K]}`` (split over the
    mesh for a sharded ``step``), ``mixer`` a ``Mixer`` or ``None`` (no mixing), traced: its
    numbers are inputs of the compiled program, its static options part of the cache key.
    Returns the next ``TrainState`` (the same key, the step counter plus one) and the step's
    float32 ``[]`` metrics.
  """

  def train_fn(state: TrainState, batch: Batch, mixer: Mixer | None) -> tuple[TrainState, Metrics]:
    model_state, opt_state, metrics = step(state.model, state.opt, batch, jax.random.wrap_key_data(state.key), mixer)
    return TrainState(model=model_state, opt=opt_state, key=state.key), metrics

  return jax.jit(train_fn, donate_argnums=0, **jit_options)
