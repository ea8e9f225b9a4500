"""``mix_batch`` called outside ``jit`` (a notebook, a data pipeline): its own compiled program.

For each method and mode, on a ``B x 28 x 28 x 1`` float32 batch with integer labels, times:

* ``jitted step``: the call inside the caller's ``jax.jit`` (the baseline: a train step's cost);
* ``mix_batch``: the call outside any ``jit``; the first call per shapes and options compiles
  the work (pairing, drawing, mixing) as one program, later calls reuse it;
* ``primitive by primitive``: the same work (``mixer._mix``, the function a ``Mixer`` call compiles)
  run without that compilation, one primitive dispatched at a time, as JAX runs unjitted code.

``first`` is the first call in the process for that method and mode (compilation included);
``warm`` the median of the next ``--repeats`` calls, each with its own key. Ratios are against
the jitted step's warm median, measured in the same run.

  python -m benchmarks.eager_call --batch 64 --repeats 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

import msda_jax
from msda_jax import labels as labels_lib
from msda_jax import mixer as mixer_lib

METHODS = ("mixup", "cutmix", "hmix", "fmix")


def timed(fn: Callable[[jax.Array], Any], repeats: int) -> tuple[float, float]:
  """``(first call s, warm median ms)``, each call with its own key."""
  start = time.perf_counter()
  jax.block_until_ready(fn(jax.random.key(0)))
  first = time.perf_counter() - start
  times = []
  for i in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(jax.random.key(1 + i)))
    times.append(time.perf_counter() - start)
  return first, 1e3 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=20)
  args = parser.parse_args(argv)
  rng = np.random.default_rng(0)
  images = jax.numpy.asarray(rng.uniform(size=(args.batch, 28, 28, 1)), jax.numpy.float32)
  labels = jax.numpy.asarray(rng.integers(0, 10, args.batch))
  targets, _ = labels_lib.prepare_targets(labels, batch=args.batch, spatial_shape=(28, 28), num_classes=10)
  device = jax.devices()[0]
  print(f"device: {device.platform}: {device.device_kind}; batch {args.batch}; {args.repeats} warm calls each")
  print("| method, mode | jitted step: first s, warm ms | mix_batch: first s, warm ms (x step) | "
        "primitive by primitive: first s, warm ms (x step) |")  # fmt: skip
  print("|---|---|---|---|")
  for spec in METHODS:
    method = msda_jax.from_string(spec)
    for mode in ("batch", "example"):
      mixer = msda_jax.Mixer(method, num_classes=10, mode=mode)
      step = jax.jit(lambda k, m: m.with_info(k, images, labels))
      rows = {
        "step": lambda k, m=mixer, s=step: s(k, m),
        "eager": lambda k, m=mixer: m.with_info(k, images, labels),
        "primitives": lambda k, m=mixer: mixer_lib._mix(m, k, images, targets, {}, dense=False),
      }
      measured = {name: timed(fn, args.repeats) for name, fn in rows.items()}
      base = measured["step"][1]
      cells = [f"{measured['step'][0]:.2f}, {base:.2f}"]
      cells += [
        f"{measured[n][0]:.2f}, {measured[n][1]:.2f} ({measured[n][1] / base:.1f}x)" for n in ("eager", "primitives")
      ]
      print(f"| {spec}, {mode} | " + " | ".join(cells) + " |")
  return 0


if __name__ == "__main__":
  sys.exit(main())
