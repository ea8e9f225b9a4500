"""Keras 3 ``layers.MixUp`` and ``layers.CutMix`` on the JAX backend, in a process of their own.

The backend is fixed when Keras is imported, so the main benchmark runs this module as a
subprocess (``KERAS_BACKEND=jax``) on the same pixels (same seed, same generator). Both
layers are per-example (a ratio and a box per example, partners by a random permutation)
and take one-hot labels, made outside the timed call. Two ways of calling are timed:

* ``eager``: ``layer({"images": x, "labels": y}, training=True)``, op by op, as in a data
  pipeline;
* ``jit``: the same call under ``jax.jit``, the seed generator's state threaded through a
  ``keras.StatelessScope`` (as Keras's own JAX trainer does).

    python -m benchmarks.mixing.peers_keras --shapes 256x32x32x3 --dtypes float32 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any

import jax
import numpy as np

from benchmarks.mixing import cases, timing
from benchmarks.mixing.jobs import PEER_JOBS, PeerJob


def _layer(job: PeerJob) -> Any:
  import keras

  if job.method == "mixup":
    return keras.layers.MixUp(alpha=1.0, seed=0)
  return keras.layers.CutMix(factor=1.0, seed=0)


def _jitted(layer: Any) -> Any:
  import keras

  state = layer.generator.state

  def call(seed_state: jax.Array, images: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    with keras.StatelessScope(state_mapping=[(state, seed_state)]) as scope:
      out = layer({"images": images, "labels": labels}, training=True)
      new_state = scope.get_current_value(state)
    return out["images"], out["labels"], new_state

  return jax.jit(call)


def measure(job: PeerJob, inputs: cases.Inputs, repeats: int) -> list[dict[str, Any]]:
  """Eager and jitted records of one Keras job on ``inputs``."""
  onehot = [jax.numpy.asarray(np.eye(inputs.num_classes, dtype=np.float32)[ids]) for ids in inputs.class_ids]
  records = []
  for how in ("eager", "jit"):
    record: dict[str, Any] = {
      "peer": "keras",
      "call": f"{job.label}, {how}",
      "method": job.method,
      "mode": job.mode,
      "shape": list(inputs.shape),
      "dtype": inputs.dtype,
    }
    try:
      layer = _layer(job)
      if how == "eager":
        fn = lambda x, y, layer=layer: tuple(layer({"images": x, "labels": y}, training=True).values())
        calls = list(zip(inputs.images, onehot, strict=True))
      else:
        jitted = _jitted(layer)
        seed_state = jax.numpy.asarray(layer.generator.state.value)
        fn = lambda s, x, y, jitted=jitted: jitted(s, x, y)[:2]
        calls = [(seed_state + i, x, y) for i, (x, y) in enumerate(zip(inputs.images, onehot, strict=True))]
      images, targets = fn(*calls[0])
      record["output_dtype"] = str(images.dtype)
      record["targets_shape"] = list(targets.shape)
      record["median_s"] = timing.median_seconds(fn, calls, repeats)
    except Exception as error:
      record["error"] = f"{type(error).__name__}: {error}".splitlines()[0][:200]
    records.append(record)
  return records


def version() -> str:
  try:
    import keras

    return f"{keras.__version__} (backend {keras.backend.backend()})"
  except Exception as error:
    return f"unavailable: {type(error).__name__}: {error}".splitlines()[0]


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--shapes", nargs="+", type=cases.parse_shape, default=list(cases.SHAPES))
  parser.add_argument("--dtypes", nargs="+", choices=cases.DTYPES, default=list(cases.DTYPES))
  parser.add_argument("--methods", nargs="+", default=["mixup", "cutmix"])
  parser.add_argument("--repeats", type=int, nargs="+", default=[20], help="one per shape, or one for all")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  os.environ.setdefault("KERAS_BACKEND", "jax")
  # Keras asks JAX for int64 aranges; JAX without x64 makes them int32 and says so each call.
  warnings.filterwarnings("ignore", message=".*int64 requested in arange.*")
  keras_version = version()
  records: list[dict[str, Any]] = []
  if not keras_version.startswith("unavailable"):
    jobs = [j for j in PEER_JOBS if j.library == "keras" and j.method in args.methods]
    for i, shape in enumerate(args.shapes):
      repeats = args.repeats[min(i, len(args.repeats) - 1)]
      for dtype in args.dtypes:
        inputs = cases.make_inputs(shape, dtype, seed=args.seed)
        for job in jobs:
          records.extend(measure(job, inputs, repeats))
  json.dump({"keras": keras_version, "records": records}, sys.stdout)
  return 0


if __name__ == "__main__":
  sys.exit(main())
