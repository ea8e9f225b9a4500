"""The time of one jitted ``Mixer`` call, best of rounds: for comparing two trees, or the peers, on a busy machine.

``benchmarks.mixing`` reports medians against the streaming floor and the peers. On a shared CPU
the median of a few calls moves by 30 % between runs; a change of the fixed costs of a call (its
random draws, its small ops) is easier to see in the best of several rounds of many calls. Per
method and mode, a jitted ``Mixer`` call on a ``B x H x W x C`` float32 batch (8 rotating input
buffers and keys, so no call finds its inputs in cache from the call before) is timed as
``rounds`` rounds of ``calls`` calls; the figure is the fastest round's time per call, in ms.

``--library timm`` (or ``torchvision``) times the peer call doing the same job
(``benchmarks.mixing.jobs``) on the same pixels (NCHW torch tensors, int64 ids) instead.
``--peers timm ...`` compares: the library and each peer run in processes of their own (in one
process, the OpenMP threads torch leaves spinning after each call slow XLA's threads down, and
the other way round), one after the other, ``--alternations`` times; per method and mode the
record has each one's best and ``<peer>_over_ours`` (above 1: the library is faster).

Run it for each tree, one after the other, and compare the JSON lines:

  PYTHONPATH=. python -m benchmarks.call_time                     # the five paper methods, both modes
  PYTHONPATH=/path/to/other/tree python -m benchmarks.call_time   # the same from another checkout
  python -m benchmarks.call_time --modes batch --methods mixup cutmix stochastic_mixup_cutmix --peers timm
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import msda_jax

METHODS = ("mixup", "cutmix", "stochastic_mixup_cutmix", "hmix", "gmix")
MODES = ("batch", "example")
PEERS = ("timm", "torchvision")
LIBRARIES = ("msda_jax", *PEERS)
BUFFERS = 8
CLASSES = 10
#: the checkout, where each library's timing process starts (``python -m benchmarks.call_time``).
_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _pixels(shape: tuple[int, ...]) -> list[np.ndarray]:
  rng = np.random.default_rng(0)
  return [rng.uniform(size=shape).astype(np.float32) for _ in range(BUFFERS)]


def ours(method: str, mode: str, shape: tuple[int, ...]) -> Callable[[int], Any]:
  """``call(i)``: the jitted ``Mixer(method, mode=mode)`` on buffer and key ``i % 8``, compiled and warm."""
  images = [jnp.asarray(p) for p in _pixels(shape)]
  labels = jnp.arange(shape[0], dtype=jnp.int32) % CLASSES
  keys = [jax.random.key(i) for i in range(BUFFERS)]
  mixer = msda_jax.Mixer(msda_jax.from_string(method), num_classes=CLASSES, mode=mode)
  jitted = jax.jit(lambda m, k, x, y: m(k, x, y))

  def call(i: int) -> Any:
    return jitted(mixer, keys[i % BUFFERS], images[i % BUFFERS], labels)

  return call


def peer(library: str, method: str, mode: str, shape: tuple[int, ...]) -> Callable[[int], Any] | None:
  """``call(i)``: the peer call doing the same job on the same pixels as NCHW tensors; None if it has none."""
  from benchmarks.mixing import peers_torch
  from benchmarks.mixing.jobs import PEER_JOBS

  jobs = [j for j in PEER_JOBS if (j.library, j.method, j.mode) == (library, method, mode)]
  if not jobs:
    return None
  import torch

  fn = peers_torch.build(jobs[0], CLASSES)
  ids = torch.arange(shape[0], dtype=torch.int64) % CLASSES
  tensors = [torch.from_numpy(np.ascontiguousarray(p.transpose(0, 3, 1, 2))) for p in _pixels(shape)]

  def call(i: int) -> Any:
    return fn(tensors[i % BUFFERS], ids)

  return call


def best_ms(call: Callable[[int], Any], per_round: int, rounds: int) -> float:
  """The fastest of ``rounds`` rounds of ``per_round`` calls, in ms per call (after a warm-up)."""
  for i in range(2 * BUFFERS):  # compile and touch every buffer
    jax.block_until_ready(call(i))
  best = float("inf")
  for _ in range(rounds):
    start = time.perf_counter()
    for i in range(per_round):
      out = call(i)
    jax.block_until_ready(out)
    best = min(best, (time.perf_counter() - start) / per_round * 1e3)
  return best


def records(library: str, args: argparse.Namespace) -> list[dict[str, Any]]:
  """One record per method and mode that ``library`` has, timed in this process."""
  shape = tuple(int(v) for v in args.shape.split("x"))
  found = []
  for method in args.methods:
    for mode in args.modes:
      call = ours(method, mode, shape) if library == "msda_jax" else peer(library, method, mode, shape)
      if call is not None:
        ms = best_ms(call, args.calls, args.rounds)
        found.append(
          {"library": library, "method": method, "mode": mode, "shape": list(shape), "best_ms": round(ms, 4)}
        )
  return found


def compare(args: argparse.Namespace) -> list[dict[str, Any]]:
  """The library's records with each peer's best beside them, every library in processes of its own."""
  common = ["--shape", args.shape, "--methods", *args.methods, "--modes", *args.modes]
  common += ["--calls", str(args.calls), "--rounds", str(args.rounds)]
  best: dict[tuple[str, str, str], float] = {}
  for _ in range(args.alternations):
    for library in ("msda_jax", *args.peers):
      run = [sys.executable, "-m", "benchmarks.call_time", "--library", library, *common]
      out = subprocess.run(run, check=True, capture_output=True, text=True, cwd=_ROOT).stdout
      for line in out.splitlines():
        r = json.loads(line)
        slot = (r["library"], r["method"], r["mode"])
        best[slot] = min(best.get(slot, float("inf")), r["best_ms"])
  merged = []
  for (library, method, mode), ms in best.items():
    if library != "msda_jax":
      continue
    shape = [int(v) for v in args.shape.split("x")]
    record: dict[str, Any] = {"method": method, "mode": mode, "shape": shape, "best_ms": ms}
    for other in args.peers:
      if (other, method, mode) in best:
        record[f"{other}_best_ms"] = best[other, method, mode]
        record[f"{other}_over_ours"] = round(best[other, method, mode] / ms, 3)
    merged.append(record)
  return merged


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--shape", default="256x32x32x3", help="B x H x W x C of the float32 batch")
  parser.add_argument("--methods", nargs="+", default=list(METHODS))
  parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
  parser.add_argument("--library", default="msda_jax", choices=LIBRARIES, help="whose calls to time")
  parser.add_argument(
    "--peers", nargs="*", default=[], choices=PEERS, help="compare with these, each in its own process"
  )
  parser.add_argument("--alternations", type=int, default=2, help="with --peers: runs of each library, alternating")
  parser.add_argument("--calls", type=int, default=100)
  parser.add_argument("--rounds", type=int, default=7)
  args = parser.parse_args(argv)
  for record in compare(args) if args.peers else records(args.library, args):
    print(json.dumps(record), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
