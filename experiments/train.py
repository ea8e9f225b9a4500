"""Trains and evaluates an image classifier with mixed-sample data augmentation, data parallel.

    python experiments/train.py --config experiments/configs/mnist_subset.py --workdir /tmp/run \
      [--config.method="hmix(r=0.5)" --config.num_epochs=5 ...] \
      [--coordinator_address=host:port --num_processes=2 --process_id=0 | --distributed]

Every process runs this script. The step runs under ``jax.shard_map`` over all devices of all
processes; each process reads its block of every global batch. The run resumes from the latest
checkpoint in ``workdir/checkpoints``. Process 0 writes ``workdir/metrics.jsonl``, TensorBoard
files in ``workdir/tensorboard``, a progress bar on stderr and ``workdir/summary.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

import msda_jax
from msda_jax.data.arrays import ArrayIterator, padded_batches
from msda_jax.data.embedded import Split, load_mnist_subset
from msda_jax.train import checkpoint, distributed, parallel
from msda_jax.train.models import get_model
from msda_jax.train.optim import make_optimizer, make_schedule
from msda_jax.train.progress import ProgressBar
from msda_jax.train.step import init_train_state, make_eval_step, make_train_step
from msda_jax.train.writers import MetricWriter

# Per-channel mean and standard deviation used to normalise the images on device.
NORMALISATION = {"mnist_subset": ((0.1307,), (0.3081,))}


def load_dataset(config: ml_collections.ConfigDict) -> tuple[Split, Split]:
  """``(train, test)`` in memory for ``config.dataset``."""
  if config.dataset == "mnist_subset":
    return load_mnist_subset()
  raise ValueError(f"dataset must be one of {sorted(NORMALISATION)}; got {config.dataset!r}.")


def _mean(history: list[dict[str, jax.Array]]) -> dict[str, float]:
  stacked = jax.device_get(history)
  return {name: float(np.mean([m[name] for m in stacked])) for name in stacked[0]}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains ``config.model`` on ``config.dataset``, evaluates on the test set, returns the summary.

  Returns:
    ``{"steps", "test_accuracy", "test_loss", "train_loss", "images_per_second", "wall_seconds"}``
    (also written to ``workdir/summary.json`` by process 0).
  """
  start = time.perf_counter()
  process, processes = jax.process_index(), jax.process_count()
  num_devices = config.get("num_devices", -1)
  mesh = parallel.make_mesh(num_devices if num_devices > 0 else None)
  train, test = load_dataset(config)
  channels = train.images.shape[-1]
  steps_per_epoch = len(train.images) // config.batch_size
  total_steps = config.num_train_steps if config.num_train_steps > 0 else config.num_epochs * steps_per_epoch
  optimiser = {
    "learning_rate": config.learning_rate,
    "total_steps": total_steps,
    "schedule": config.schedule,
    "warmup_steps": min(int(config.warmup_epochs * steps_per_epoch), total_steps - 1),
  }
  tx = make_optimizer(**optimiser, momentum=config.momentum, nesterov=config.nesterov)
  learning_rate = make_schedule(**optimiser)

  def build(key: jax.Array) -> nnx.Module:
    model = get_model(
      config.model, num_classes=config.num_classes, rngs=nnx.Rngs(key), width=config.model_width, in_channels=channels
    )
    return parallel.sync_batch_norm(model) if config.get("sync_batch_norm", False) else model

  graphdef = nnx.split(nnx.eval_shape(lambda: build(jax.random.key(0))))[0]

  def init() -> dict[str, Any]:
    init_key, train_key = jax.random.split(jax.random.key(config.seed))
    _, model_state, opt_state = init_train_state(build(init_key), tx)
    return {"model": model_state, "opt": opt_state, "key": jax.random.key_data(train_key)}

  state = jax.jit(init, out_shardings=parallel.replicated(mesh))()

  mean, std = (jnp.asarray(v, jnp.float32).reshape(1, 1, 1, -1) for v in NORMALISATION[config.dataset])
  preprocess = lambda images: (images.astype(jnp.float32) - mean) / std
  mixer = msda_jax.Mixer(
    msda_jax.from_string(config.method),
    num_classes=config.num_classes,
    mode=config.mix_mode,
    pairing=config.mix_pairing,
    prob=config.mix_prob,
    label_smoothing=config.label_smoothing,
    groups=1,
  )
  train_step = parallel.shard_train_step(
    make_train_step(
      graphdef=graphdef,
      tx=tx,
      mixer=mixer,
      weight_decay=config.weight_decay,
      axis_name=parallel.AXIS,
      preprocess=preprocess,
    ),
    mesh,
  )
  eval_step = jax.jit(
    parallel.shard_eval_step(make_eval_step(graphdef=graphdef, axis_name=parallel.AXIS, preprocess=preprocess), mesh)
  )

  def train_fn(model_state: Any, opt_state: Any, batch: Any, key_data: jax.Array) -> Any:
    return train_step(model_state, opt_state, batch, jax.random.wrap_key_data(key_data))

  train_fn = jax.jit(train_fn, donate_argnums=(0, 1))

  data = ArrayIterator(
    train.images,
    train.labels,
    batch_size=config.batch_size,
    seed=config.seed,
    process_index=process,
    process_count=processes,
  )
  checkpoints = checkpoint.Checkpointer(
    os.path.join(workdir, "checkpoints"), every_steps=config.checkpoint_every_steps, keep=config.keep_checkpoints
  )
  step = 0
  restored = checkpoints.restore(state)
  if restored is not None:
    step, state, data_state = restored
    data.set_state(data_state)
  writer = MetricWriter(workdir, enabled=process == 0)
  bar = ProgressBar(total_steps, config.batch_size, enabled=(process == 0) and (True if config.progress else None))

  history: list[dict[str, jax.Array]] = []
  train_loss = float("nan")
  first_step, timer_step, timer = step, step, time.perf_counter()
  train_images, train_seconds = 0, 0.0
  saved = checkpoints.latest_step()
  while step < total_steps:
    batch = parallel.global_batch(next(data), mesh)
    model_state, opt_state, metrics = train_fn(state["model"], state["opt"], batch, state["key"])
    state = {"model": model_state, "opt": opt_state, "key": state["key"]}
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
      timer_step, timer = step, now
      values["learning_rate"] = float(learning_rate(step - 1))
      train_loss = values["loss"]
      writer.write(step, "train", values)
      bar.update(step, loss=train_loss)
    if checkpoints.save(step, state, data.get_state(), force=step == total_steps and saved != step):
      saved = step
  bar.close()
  checkpoints.close()

  totals = {"correct": 0.0, "loss": 0.0, "count": 0.0}
  for local in padded_batches(
    test.images, test.labels, batch_size=config.eval_batch_size, process_index=process, process_count=processes
  ):
    metrics = jax.device_get(eval_step(state["model"], parallel.global_batch(local, mesh)))
    totals = {name: totals[name] + float(metrics[name]) for name in totals}
  summary = {
    "steps": step,
    "test_accuracy": totals["correct"] / totals["count"],
    "test_loss": totals["loss"] / totals["count"],
    "test_count": int(totals["count"]),
    "train_loss": train_loss,
    "images_per_second": train_images / train_seconds if train_seconds > 0 else float("nan"),
    "devices": int(mesh.size),
    "processes": processes,
    "wall_seconds": time.perf_counter() - start,
  }
  writer.write(step, "test", {"accuracy": summary["test_accuracy"], "loss": summary["test_loss"]})
  writer.close()
  if process == 0:
    with open(os.path.join(workdir, "summary.json"), "w", encoding="utf-8") as file:
      json.dump(summary, file, indent=2)
  return summary


def main(argv: list[str]) -> None:
  """Parses the flags, starts the multi-process runtime if asked, trains and prints the summary."""
  del argv
  if FLAGS.coordinator_address or FLAGS.num_processes is not None or FLAGS.distributed:
    distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
  summary = train_and_evaluate(FLAGS.config, FLAGS.workdir)
  if jax.process_index() == 0:
    print(
      f"top-1 test accuracy {summary['test_accuracy']:.4f}  test loss {summary['test_loss']:.4f}  "
      f"{summary['images_per_second']:.0f} images/s  ({summary['steps']} steps)",
      file=sys.stdout,
    )


if __name__ == "__main__":
  from absl import app, flags
  from ml_collections import config_flags

  FLAGS = flags.FLAGS
  config_flags.DEFINE_config_file("config", None, "Path to a config file with get_config().", lock_config=True)
  flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics and the summary.", required=True)
  flags.DEFINE_string("coordinator_address", None, "host:port of process 0 (multi-process runs).")
  flags.DEFINE_integer("num_processes", None, "Number of processes (multi-process runs).")
  flags.DEFINE_integer("process_id", None, "Index of this process (multi-process runs).")
  flags.DEFINE_bool("distributed", False, "Detect the cluster and start the multi-process runtime.")
  flags.mark_flags_as_required(["config"])
  app.run(main)
