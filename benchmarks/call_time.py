"""The time of one jitted ``Mixer`` call, best of rounds: for comparing two trees on a busy machine.

``benchmarks.mixing`` reports medians against the streaming floor and the peers. On a shared CPU
the median of a few calls moves by 30 % between runs; a change of the fixed costs of a call (its
random draws, its small ops) is easier to see in the best of several rounds of many calls. Per
method and mode, a jitted ``Mixer`` call on a ``B x H x W x C`` float32 batch (8 rotating input
buffers and keys, so no call finds its inputs in cache from the call before) is timed as
``rounds`` rounds of ``calls`` calls; the figure is the fastest round's time per call, in ms.

Run it for each tree, one after the other, and compare the JSON lines:

  PYTHONPATH=. python -m benchmarks.call_time                     # the five paper methods, both modes
  PYTHONPATH=/path/to/other/tree python -m benchmarks.call_time   # the same from another checkout
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import msda_jax

METHODS = ("mixup", "cutmix", "stochastic_mixup_cutmix", "hmix", "gmix")
MODES = ("batch", "example")
BUFFERS = 8


def best_call_ms(method: str, mode: str, shape: tuple[int, ...], calls: int, rounds: int) -> float:
  """The fastest round's mean time per call, in ms, of ``Mixer(method, mode=mode)`` jitted."""
  rng = np.random.default_rng(0)
  images = [jnp.asarray(rng.uniform(size=shape).astype(np.float32)) for _ in range(BUFFERS)]
  labels = jnp.arange(shape[0], dtype=jnp.int32) % 10
  keys = [jax.random.key(i) for i in range(BUFFERS)]
  mixer = msda_jax.Mixer(msda_jax.from_string(method), num_classes=10, mode=mode)
  call = jax.jit(lambda m, k, x, y: m(k, x, y))
  for i in range(2 * BUFFERS):  # compile and touch every buffer
    jax.block_until_ready(call(mixer, keys[i % BUFFERS], images[i % BUFFERS], labels))
  best = float("inf")
  for _ in range(rounds):
    start = time.perf_counter()
    for i in range(calls):
      out = call(mixer, keys[i % BUFFERS], images[i % BUFFERS], labels)
    jax.block_until_ready(out)
    best = min(best, (time.perf_counter() - start) / calls)
  return best * 1e3


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--shape", default="256x32x32x3", help="B x H x W x C of the float32 batch")
  parser.add_argument("--methods", nargs="+", default=list(METHODS))
  parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
  parser.add_argument("--calls", type=int, default=100)
  parser.add_argument("--rounds", type=int, default=7)
  args = parser.parse_args(argv)
  shape = tuple(int(v) for v in args.shape.split("x"))
  for method in args.methods:
    for mode in args.modes:
      ms = best_call_ms(method, mode, shape, args.calls, args.rounds)
      print(json.dumps({"method": method, "mode": mode, "shape": list(shape), "best_ms": round(ms, 4)}), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
