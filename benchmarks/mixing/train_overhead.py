"""The share of a jitted PreActResNet-18 train step that mixing adds.

CIFAR-100 setting: 32 x 32 uint8 images, batch 128, 100 classes, SGD with momentum and weight
decay, the project's ``make_train_step`` jitted with donated state. Every configuration (no
mixing, then each method) is compiled first; the timed steps then go round robin, one step of
each configuration per round, so a slow spell of the machine hits all of them alike. Two
estimates of the overhead are given:

* ``direct``: ``median(step with mixing) / median(step without) - 1``, which is what a user
  sees but is within the step's own jitter when mixing is cheap;
* ``op_share``: the mixing op timed alone on the same batch (uint8, same shape, rotated
  buffers) over the median step without mixing: a resolution the direct difference cannot
  reach.

Methods that do not mix these images (VideoMix needs videos) are left out. ``direct`` (a train
step compiled per configuration) can be limited to some methods (``direct_methods``); the others
get ``op_share`` only, which needs no step of their own.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from benchmarks.mixing import cases, ours, timing
from msda_jax.train.models import get_model
from msda_jax.train.step import init_train_state, make_train_step

SHAPE = (128, 32, 32, 3)
CLASSES = 100


def _configs(methods: list[str], modes: list[str], shape: tuple[int, ...]) -> list[tuple[str, str | None]]:
  """No mixing, then every (method, mode) whose method mixes batches of ``shape``."""
  return [("none", None)] + [(method, mode) for mode in modes for method in methods if ours.mixes(method, shape)]


def measure(
  methods: list[str],
  modes: list[str],
  repeats: int,
  op_repeats: int,
  seed: int = 0,
  *,
  direct_methods: list[str] | None = None,
  model_name: str = "preact_resnet18",
  shape: tuple[int, ...] = SHAPE,
) -> list[dict[str, Any]]:
  """One record per configuration; the first is the step without mixing.

  ``direct_methods`` (default: all) have their train step compiled and timed; every method gets
  the op share. ``model_name`` and ``shape`` are for quick checks (the figures are PreActResNet-18's).
  """
  direct = set(methods if direct_methods is None else direct_methods)
  tx = optax.sgd(0.1, momentum=0.9)
  model = get_model(model_name, num_classes=CLASSES, rngs=nnx.Rngs(seed))
  graphdef, model_state, opt_state = init_train_state(model, tx)
  inputs = cases.make_inputs(shape, "uint8", seed=seed, buffers=4)
  batches = [{"image": x, "label": y} for x, y in zip(inputs.images, inputs.labels, strict=True)]
  key = jax.random.key(seed)
  runs, op_only = [], []
  for method, mode in _configs(methods, modes, shape):
    if mode is not None and method not in direct:
      op_only.append({"method": method, "mode": mode})
      continue
    mixer = None if mode is None else ours.make_mixer(method, mode, CLASSES)
    step = jax.jit(
      make_train_step(graphdef=graphdef, tx=tx, mixer=mixer, weight_decay=5e-4),
      donate_argnums=(0, 1),
    )
    state = jax.tree.map(jnp.copy, (model_state, opt_state))
    state = step(*state, batches[0], key)[:2]  # compiles, and warms the buffers
    jax.block_until_ready(state)
    runs.append({"method": method, "mode": mode, "step": step, "state": state, "times": []})
  for r in range(repeats):
    for run in runs:
      start = time.perf_counter()
      run["state"] = run["step"](*run["state"], batches[r % len(batches)], key)[:2]
      jax.block_until_ready(run["state"])
      run["times"].append(time.perf_counter() - start)
  base = statistics.median(runs[0]["times"])
  spread = (max(runs[0]["times"]) - min(runs[0]["times"])) / base
  records = []
  for run in runs + op_only:
    timed = "times" in run
    median = statistics.median(run["times"]) if timed else None
    record = {
      "method": run["method"],
      "mode": run["mode"],
      "shape": list(shape),
      "dtype": "uint8",
      "step_median_s": median,
      "step_times_s": run.get("times"),
      "direct_overhead": median / base - 1.0 if timed else None,
      "baseline_spread": spread,
    }
    if run["mode"] is not None:
      mixer = ours.make_mixer(run["method"], run["mode"], CLASSES)
      keys = jax.random.split(key, len(batches))
      calls = [(mixer, keys[i], b["image"], b["label"]) for i, b in enumerate(batches)]
      op = timing.median_seconds(ours.mix, calls, op_repeats)
      record["op_median_s"] = op
      record["op_share"] = op / base
    records.append(record)
  return records
