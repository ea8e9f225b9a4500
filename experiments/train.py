"""Trains and evaluates an image classifier with mixed-sample data augmentation, data parallel.

    python -m experiments.train --config experiments/configs/mnist_compare.py:hmix,0 --workdir /tmp/run \
      [--config.method="hmix(r=0.75)" --config.num_epochs=5 ...] \
      [--coordinator_address=host:port --num_processes=2 --process_id=0 | --distributed]

Every process runs this command (from the repository root). On several devices the step runs
under ``jax.shard_map`` over all devices of all processes; each process reads its block of every
global batch (``experiments/input_pipeline.py``). The run resumes from the latest
intact checkpoint in ``workdir/checkpoints`` (``msda_jax.train.checkpoint``: a damaged one is
skipped with a warning; when none is intact the run stops with one line naming the directory to
remove). Process 0 writes ``workdir/metrics.jsonl`` and TensorBoard files in
``workdir/tensorboard`` (on a resume, without the records of steps after the checkpoint), a
progress bar on stderr (``config.progress``: True draws it, False does not, None draws it on a
terminal) and ``workdir/summary.json``.

The run carries a ``TrainState`` (``msda_jax.train.state``: model state, optimiser state with
the step counter, PRNG key data), replicated over the mesh. The ``Mixer`` built from the config
is replicated too and passed to the jitted step as an argument, so its hyper-parameters
(``alpha``, ``r``, ``q``, ..., ``mix_prob``, ``label_smoothing``) are traced, not compiled in.

The flags are defined when the module is imported (once per process, in absl's global
``FLAGS``) and read only by ``main``; as a library, call ``train_and_evaluate(config, workdir)``
with an ``ml_collections.ConfigDict``, which reads no flag.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
import optax
from absl import app, flags, logging
from flax import nnx
from ml_collections import config_flags

import msda_jax
from experiments import input_pipeline
from msda_jax import losses
from msda_jax.data.datasets import dataset_info
from msda_jax.data.transforms import normalize
from msda_jax.train import checkpoint, distributed, parallel
from msda_jax.train.models import MODELS, get_model
from msda_jax.train.optim import make_optimizer, make_schedule
from msda_jax.train.progress import ProgressBar
from msda_jax.train.state import StateStep, TrainState, jit_train_step
from msda_jax.train.step import make_eval_step, make_train_step
from msda_jax.train.writers import MetricWriter
from msda_jax.transport_pairing import check_transport

FLAGS = flags.FLAGS

config_flags.DEFINE_config_file("config", None, "Path to a config file with get_config().", lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the summary.")
flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process runs).")
flags.DEFINE_integer("num_processes", None, "Number of processes (multi-process runs).")
flags.DEFINE_integer("process_id", None, "Index of this process (multi-process runs).")
flags.DEFINE_bool("distributed", False, "Detect the cluster and start the multi-process runtime.")


def _check_choice(config: ml_collections.ConfigDict, name: str, choices: tuple[str, ...]) -> None:
  if config[name] not in choices:
    raise ValueError(f"{name} must be one of {choices}; got {config[name]!r}.")


def _abstract_model(config: ml_collections.ConfigDict) -> nnx.Module:
  """The config's model, shapes only (``nnx.eval_shape``: no parameters are made)."""
  info = dataset_info(config.dataset)
  return nnx.eval_shape(
    lambda: get_model(
      config.model,
      num_classes=config.num_classes,
      rngs=nnx.Rngs(0),
      width=config.model_width,
      in_channels=info.image_shape[-1],
      **model_options(config),
    )
  )


def check_config(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """Raises ``ValueError`` naming the config field when ``config`` cannot run on ``num_devices`` devices.

  Reads nothing and builds no model (a hidden-layer method's layers are checked against an
  abstract one, ``nnx.eval_shape``): it runs before any work, so a typo fails in a second.
  """
  mixer = _checked_mixer(config)
  if mixer.pairing == "transport":
    try:
      check_transport(mixer.transport_k, config.batch_size // max(num_devices, 1))
    except ValueError as error:
      raise ValueError(f"mix_{error}") from error
  if mixer.method is not None:
    try:
      mixer.method.check_input((config.image_size, config.image_size), config.batch_size // max(num_devices, 1))
    except ValueError as error:
      raise ValueError(f"method: {error} (image_size={config.image_size})") from error
  _check_choice(config, "model", tuple(MODELS))
  create_loss(config)
  model_options(config)  # its errors name the field
  outputs = () if mixer.method is None else mixer.method.needs().outputs
  outputs += tuple(getattr(mixer.method, "model_outputs", ()))  # read in prepare (TokenMix's attention)
  if outputs:  # the model must sow what the method reads after the forward pass
    sown = getattr(_abstract_model(config), "sown", ())
    missing = [name for name in outputs if name not in (*sown, "logits")]
    if missing:
      readers = ", ".join(sorted(name for name in MODELS if name.startswith("vit")))
      fix = "a ViT with model_token_head=True" if missing[0] == "token_logits" else f"a model that does ({readers})"
      raise ValueError(
        f"model: {type(mixer.method).__name__} reads the model output {missing[0]!r}, which {config.model} does not "
        f"sow; use {fix}."
      )
  if hasattr(mixer.method, "check_model"):
    # The layers the method mixes at or reads must exist: the model's stage count, from an abstract model.
    try:
      mixer.method.check_model(_abstract_model(config).num_stages)  # type: ignore[union-attr]
    except ValueError as error:
      raise ValueError(f"method: {error} (model={config.model})") from error
  info = dataset_info(config.dataset)  # its error names the field
  if config.num_classes != info.num_classes:
    raise ValueError(f"num_classes must be {info.num_classes} for {config.dataset}; got {config.num_classes}.")
  for name in ("batch_size", "eval_batch_size"):
    if config[name] <= 0 or config[name] % num_devices:
      raise ValueError(f"{name} must be a positive multiple of the {num_devices} devices; got {config[name]}.")
  if config.num_train_steps <= 0 and config.num_epochs <= 0:
    raise ValueError(f"num_epochs must be positive when num_train_steps <= 0; got {config.num_epochs}.")


#: the config field of each ``Mixer`` option that ``create_mixer`` sets.
MIXER_FIELDS = {
  "mode": "mix_mode",
  "pairing": "mix_pairing",
  "prob": "mix_prob",
  "label_smoothing": "label_smoothing",
  "transport_k": "mix_transport_k",
}


def _checked_mixer(config: ml_collections.ConfigDict) -> msda_jax.Mixer:
  """``create_mixer(config)``, its errors naming the config field (the ``Mixer`` checks the options)."""
  try:
    method = msda_jax.from_string(config.method)
  except (TypeError, ValueError) as error:
    raise ValueError(f"method: {error}") from error
  try:
    return create_mixer(config, method)
  except (TypeError, ValueError) as error:
    message = str(error)
    for option, field in MIXER_FIELDS.items():
      if message.startswith(f"{option} "):
        raise type(error)(field + message[len(option) :]) from error
    raise ValueError(f"method: {message}") from error


def _mean(history: list[dict[str, jax.Array]]) -> dict[str, float]:
  stacked = jax.device_get(history)
  return {name: float(np.mean([m[name] for m in stacked])) for name in stacked[0]}


def _evaluate(eval_step: Any, model_state: Any, batches: Any, mesh: jax.sharding.Mesh) -> dict[str, float]:
  """Top-1 accuracy and mean loss over one pass of ``batches`` (padding masked out)."""
  totals = {"correct": 0.0, "loss": 0.0, "count": 0.0}
  for local in batches:
    metrics = jax.device_get(eval_step(model_state, parallel.global_batch(local, mesh)))
    totals = {name: totals[name] + float(metrics[name]) for name in totals}
  count = max(totals["count"], 1.0)
  return {"accuracy": totals["correct"] / count, "loss": totals["loss"] / count, "count": totals["count"]}


def _axis(mesh: jax.sharding.Mesh) -> str | None:
  """The mesh axis of the collectives, or ``None`` on one device (even trivial ones cost time on CPU)."""
  return parallel.AXIS if mesh.size > 1 else None


def create_mixer(config: ml_collections.ConfigDict, method: Any = None) -> msda_jax.Mixer:
  """The ``Mixer`` of ``config.method``, ``mix_mode``, ``mix_pairing``, ``mix_prob`` and ``label_smoothing``.

  ``groups=1``: under ``jax.shard_map`` each device mixes its own examples. ``method="none"``
  gives a mixer without a method (one-hot targets, smoothed). An empty ``mix_pairing`` is the
  method's default (``"reverse"``; ``"roll"`` for k-sample mixing); ``mix_pairing="transport"``
  matches partners by optimal transport in chunks of ``mix_transport_k`` (default 8). ``method``: the method
  already built from ``config.method``.
  """
  return msda_jax.Mixer(
    msda_jax.from_string(config.method) if method is None else method,
    num_classes=config.num_classes,
    mode=config.mix_mode,
    pairing=config.mix_pairing or None,
    prob=config.mix_prob,
    label_smoothing=config.label_smoothing,
    groups=1,
    transport_k=config.get("mix_transport_k", 8),
  )


def create_loss(config: ml_collections.ConfigDict) -> losses.Loss:
  """The per-example loss of ``config.loss`` (``msda_jax.losses``); DecoupleMix's with ``loss_eta``
  and the reference's support threshold ``1e-3 + label_smoothing / num_classes``."""
  name = config.get("loss", "cross_entropy")
  if name != "decoupled_mixup":
    return losses.get_loss(name)
  threshold = 1e-3 + config.label_smoothing / config.num_classes
  try:
    return losses.get_loss(name, eta=config.loss_eta, threshold=threshold)
  except ValueError as error:
    raise ValueError(f"loss_{error}") from error


def model_options(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """The model's set options (``activation``, ``pool``, ``token_head``), checked against the choices ``config.model``
  declares (its class's ``OPTIONS``)."""
  options = {name: config.get(f"model_{name}") for name in ("activation", "pool", "token_head")}
  options = {name: value for name, value in options.items() if value is not None}
  declared = getattr(MODELS.get(config.model), "OPTIONS", {})
  for name, value in options.items():
    if name not in declared:
      raise ValueError(f"model_{name}: model {config.model!r} has no {name!r} option; leave it unset.")
    if value not in declared[name]:
      raise ValueError(f"model_{name} must be one of {declared[name]} for {config.model!r}; got {value!r}.")
  return options


def create_model(config: ml_collections.ConfigDict, key: jax.Array, mesh: jax.sharding.Mesh) -> nnx.Module:
  """``config.model`` for ``config.dataset``'s images, initialised from the typed PRNG ``key``.

  With ``config.sync_batch_norm`` its BatchNorm layers average their statistics over the mesh;
  ``config.model_activation`` and ``config.model_pool``, where set, go to models that take them.
  """
  options = model_options(config)
  model = get_model(
    config.model,
    num_classes=config.num_classes,
    rngs=nnx.Rngs(key),
    width=config.model_width,
    in_channels=dataset_info(config.dataset).image_shape[-1],
    **options,
  )
  return parallel.sync_batch_norm(model, _axis(mesh)) if config.get("sync_batch_norm", False) else model


def create_optimizer(config: ml_collections.ConfigDict) -> tuple[optax.GradientTransformation, optax.Schedule, int]:
  """``(tx, learning_rate_schedule, total_steps)`` of ``config`` (SGD with momentum, ``config.schedule``)."""
  steps_per_epoch = max(input_pipeline.num_train_examples(config) // config.batch_size, 1)
  total_steps = config.num_train_steps if config.num_train_steps > 0 else config.num_epochs * steps_per_epoch
  optimiser = {
    "learning_rate": config.learning_rate,
    "total_steps": total_steps,
    "schedule": config.schedule,
    "warmup_steps": min(int(config.warmup_epochs * steps_per_epoch), total_steps - 1),
  }
  tx = make_optimizer(**optimiser, momentum=config.momentum, nesterov=config.nesterov)
  return tx, make_schedule(**optimiser), total_steps


def load_model(config: ml_collections.ConfigDict, workdir: str) -> tuple[nnx.GraphDef, nnx.State]:
  """``(graphdef, model_state)`` of the newest intact checkpoint of the run of ``config`` in ``workdir``.

  On this process's first device. Merge them (``nnx.merge``) and call ``.eval()`` to evaluate
  with BatchNorm's running averages.

  Raises:
    FileNotFoundError: naming the directory when the run has no checkpoint.
  """
  mesh = parallel.make_mesh(1)
  tx, _, _ = create_optimizer(config)
  graphdef, template = create_train_state(config, tx, mesh)
  directory = os.path.join(workdir, "checkpoints")
  checkpoints = checkpoint.Checkpointer(directory, every_steps=1, keep=1)
  try:
    restored = checkpoints.restore(template)
  finally:
    checkpoints.close()
  if restored is None:
    raise FileNotFoundError(f"no checkpoint of a finished run in {directory}.")
  return graphdef, restored[1].model


def create_train_state(
  config: ml_collections.ConfigDict, tx: optax.GradientTransformation, mesh: jax.sharding.Mesh
) -> tuple[nnx.GraphDef, TrainState]:
  """The model's static graph and the step-0 ``TrainState`` of ``config.seed``, replicated over ``mesh``.

  The seed's key splits into the model's initialisation key and the run's key (``TrainState.key``).
  """
  graphdef = nnx.graphdef(nnx.eval_shape(lambda: create_model(config, jax.random.key(0), mesh)))

  def init() -> TrainState:
    init_key, train_key = jax.random.split(jax.random.key(config.seed))
    return TrainState.create(create_model(config, init_key, mesh), tx, train_key)

  return graphdef, jax.jit(init, out_shardings=parallel.replicated(mesh))()


def create_step_fns(
  config: ml_collections.ConfigDict, graphdef: nnx.GraphDef, tx: optax.GradientTransformation, mesh: jax.sharding.Mesh
) -> tuple[StateStep, Any]:
  """The jitted ``train_fn(state, batch, mixer) -> (state, metrics)`` and ``eval_fn(model_state, batch)``.

  On several devices both run under ``jax.shard_map`` over ``mesh`` (``msda_jax.train.parallel``):
  ``batch`` is split over the ``"data"`` axis, ``state`` and ``mixer`` are replicated. The mixer
  is an argument, not a constant: its hyper-parameters are traced, so another mixer with the
  same options reuses the compiled step. ``state`` is donated.
  """
  axis = _axis(mesh)
  preprocess = functools.partial(normalize, dataset=config.dataset)
  train_step = make_train_step(
    graphdef=graphdef,
    tx=tx,
    mixer=None,
    weight_decay=config.weight_decay,
    axis_name=axis,
    preprocess=preprocess,
    loss=create_loss(config),
  )
  eval_step = make_eval_step(graphdef=graphdef, axis_name=axis, preprocess=preprocess)
  if axis is not None:
    train_step = parallel.shard_train_step(train_step, mesh)
    eval_step = parallel.shard_eval_step(eval_step, mesh)
  return jit_train_step(train_step), jax.jit(eval_step)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains ``config.model`` on ``config.dataset``, evaluates on the eval split, returns the summary.

  On one device the steps run under plain ``jax.jit``; on several, under ``jax.shard_map`` over
  the ``"data"`` axis of every device of every process (``msda_jax.train.parallel``). The
  ``TrainState`` and the ``Mixer`` are replicated over the mesh and passed to the jitted step.

  Returns:
    ``{"steps", "test_accuracy", "test_loss", "test_count", "train_loss", "images_per_second",
    "devices", "processes", "wall_seconds", "config"}`` (also written to
    ``workdir/summary.json`` by process 0).
  """
  start = time.perf_counter()
  process, processes = jax.process_index(), jax.process_count()
  num_devices = config.get("num_devices", -1)
  mesh = parallel.make_mesh(num_devices if num_devices > 0 else None)
  check_config(config, mesh.size)
  tx, learning_rate, total_steps = create_optimizer(config)
  graphdef, state = create_train_state(config, tx, mesh)
  train_fn, eval_fn = create_step_fns(config, graphdef, tx, mesh)
  mixer = parallel.replicate(create_mixer(config), mesh)

  data = input_pipeline.train_iterator(config, process, processes)
  checkpoints = checkpoint.Checkpointer(
    os.path.join(workdir, "checkpoints"), every_steps=config.checkpoint_every_steps, keep=config.keep_checkpoints
  )
  step = 0
  restored = checkpoints.restore(state)
  if restored is not None:
    step, state, data_state = restored
    data.set_state(data_state)
  writer = MetricWriter(workdir, enabled=process == 0, start_step=step)
  bar = ProgressBar(total_steps, config.batch_size, enabled=config.progress if process == 0 else False)
  eval_every = config.get("eval_every_steps", 0)

  history: list[dict[str, jax.Array]] = []
  train_loss = float("nan")
  first_step, timer_step, timer = step, step, time.perf_counter()
  train_images, train_seconds = 0, 0.0
  saved = checkpoints.latest_step()
  while step < total_steps:
    batch = parallel.global_batch(next(data), mesh)
    state, metrics = train_fn(state, batch, mixer)
    step += 1
    history.append(metrics)
    if step == first_step + 1:  # exclude compilation from the throughput
      jax.block_until_ready(metrics)
      timer_step, timer = step, time.perf_counter()
    if step % config.log_every_steps == 0 or step == total_steps:
      values = _mean(history)
      history = []
      now = time.perf_counter()
      if step > timer_step:
        train_images += (step - timer_step) * config.batch_size
        train_seconds += now - timer
        values["images_per_second"] = (step - timer_step) * config.batch_size / (now - timer)
      values["learning_rate"] = float(learning_rate(step - 1))
      train_loss = values["loss"]
      writer.write(step, "train", values)
      bar.update(step, loss=train_loss)
      timer_step, timer = step, time.perf_counter()
    if eval_every > 0 and step % eval_every == 0 and step < total_steps:
      result = _evaluate(eval_fn, state.model, input_pipeline.eval_batches(config, process, processes), mesh)
      writer.write(step, "test", {"accuracy": result["accuracy"], "loss": result["loss"]})
      timer_step, timer = step, time.perf_counter()
    if checkpoints.save(step, state, data.get_state(), force=step == total_steps and saved != step):
      saved = step
  bar.close()
  checkpoints.close()

  result = _evaluate(eval_fn, state.model, input_pipeline.eval_batches(config, process, processes), mesh)
  summary = {
    "steps": step,
    "test_accuracy": result["accuracy"],
    "test_loss": result["loss"],
    "test_count": int(result["count"]),
    "train_loss": train_loss,
    "images_per_second": train_images / train_seconds if train_seconds > 0 else float("nan"),
    "devices": int(mesh.size),
    "processes": processes,
    "wall_seconds": time.perf_counter() - start,
    "config": config.to_dict(),
  }
  writer.write(step, "test", {"accuracy": summary["test_accuracy"], "loss": summary["test_loss"]})
  writer.close()
  if process == 0:
    with open(os.path.join(workdir, "summary.json"), "w", encoding="utf-8") as file:
      json.dump(summary, file, indent=2)
  return summary


def main(argv: Sequence[str]) -> None:
  """Starts the multi-process runtime if the flags ask for it, trains ``--config`` in ``--workdir``, prints a line."""
  if len(argv) > 1:
    raise app.UsageError(f"Too many command-line arguments: {list(argv[1:])}.")
  if not FLAGS["verbosity"].present:  # keep the checkpoint library's INFO lines out of the output
    logging.set_verbosity(logging.WARNING)
  if FLAGS.coordinator_address or FLAGS.num_processes is not None or FLAGS.distributed:
    distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  try:
    summary = train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except checkpoint.DamagedCheckpointError as error:
    sys.exit(f"error: {error}")  # one line: the checkpoints to remove, no traceback
  if jax.process_index() == 0:
    print(
      f"top-1 test accuracy {summary['test_accuracy']:.4f}  test loss {summary['test_loss']:.4f}  "
      f"{summary['images_per_second']:.0f} images/s  ({summary['steps']} steps)",
      file=sys.stdout,
    )


if __name__ == "__main__":
  flags.mark_flags_as_required(["config", "workdir"])
  app.run(main)
