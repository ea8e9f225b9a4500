"""Runs the mixing benchmark: the op against the floor, the peers, memory and the train step.

    python -m benchmarks.mixing                      # everything (about 10 minutes on 2 cores)
    python -m benchmarks.mixing --shapes 256x32x32x3 --dtypes float32 --methods mixup cutmix \\
      --repeats 10 --no-train                        # a quick look

For every shape and dtype the streaming floor is timed before and after the cases (the
faster of the two is the reference), then the library's op for every method and mode, then
the PyTorch peers on the same pixels. Keras runs in a subprocess (its backend is fixed at
import). The train step comes last. The tables are printed and the records written as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time
from typing import Any

from benchmarks.mixing import cases, machine, ours, report, targets, timing
from benchmarks.mixing.jobs import LABELS, PEER_JOBS

PEERS = ("timm", "torchvision", "keras")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--shapes", nargs="+", type=cases.parse_shape, default=list(cases.SHAPES), help="B x H x W x C")
  parser.add_argument("--dtypes", nargs="+", choices=cases.DTYPES, default=list(cases.DTYPES))
  parser.add_argument("--methods", nargs="+", choices=cases.METHODS, default=list(cases.METHODS))
  parser.add_argument("--modes", nargs="+", choices=cases.MODES, default=list(cases.MODES))
  parser.add_argument("--repeats", type=int, nargs="+", default=[50, 20], help="timed calls, one per shape")
  parser.add_argument("--peers", nargs="*", choices=PEERS, default=list(PEERS), help="none: --peers")
  parser.add_argument("--no-train", dest="train", action="store_false", help="skip the train-step overhead")
  parser.add_argument("--train-methods", nargs="+", choices=cases.METHODS, default=None, help="default: --methods")
  parser.add_argument(
    "--train-direct-methods",
    nargs="+",
    choices=cases.METHODS,
    default=None,
    help="train methods whose whole step is compiled and timed (default: all); the others get the op share",
  )
  parser.add_argument("--train-modes", nargs="+", choices=cases.MODES, default=["example"])
  parser.add_argument("--train-repeats", type=int, default=3, help="timed steps per configuration")
  parser.add_argument("--torch-device", default="cpu", help="device of the torch peers: cpu, or cuda on a GPU machine")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results/mixing.json"))
  return parser.parse_args(argv)


def _repeats(args: argparse.Namespace, i: int) -> int:
  return args.repeats[min(i, len(args.repeats) - 1)]


def run_keras(args: argparse.Namespace) -> tuple[str, list[dict[str, Any]]]:
  """Keras peers in a subprocess; ``(version or reason, records)``."""
  command = [sys.executable, "-m", "benchmarks.mixing.peers_keras", "--shapes"]
  command += [cases.shape_name(s) for s in args.shapes] + ["--dtypes", *args.dtypes, "--seed", str(args.seed)]
  command += ["--repeats", *[str(_repeats(args, i)) for i in range(len(args.shapes))], "--methods", *args.methods]
  env = {**os.environ, "KERAS_BACKEND": "jax"}
  done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
  if done.returncode != 0:
    return f"unavailable: subprocess failed: {done.stderr.strip().splitlines()[-1:]}", []
  payload = json.loads(done.stdout)
  return payload["keras"], payload["records"]


def measure_shape(args: argparse.Namespace, i: int, shape: tuple[int, ...], torch_peers: list) -> dict[str, list]:
  repeats = _repeats(args, i)
  found: dict[str, list] = {"floors": [], "ours": [], "peers": []}
  for dtype in args.dtypes:
    inputs = cases.make_inputs(shape, dtype, seed=args.seed)
    before = ours.time_floor(inputs, repeats)
    methods = [m for m in args.methods if ours.mixes(m, shape)]  # VideoMix on videos only, and so on
    records = [ours.measure(m, mode, inputs, repeats, before, args.seed) for mode in args.modes for m in methods]
    after = ours.time_floor(inputs, repeats)
    floor_s = min(before, after)
    for r in records:
      r["floor_s"], r["ratio_to_floor"] = floor_s, r["median_s"] / floor_s
      print(
        f"  {cases.shape_name(shape)} {dtype:8s} {r['method']:24s} {r['mode']:8s} {r['ratio_to_floor']:6.2f}x",
        flush=True,
      )
    floor = {"shape": list(shape), "dtype": dtype, "median_s": floor_s, "before_s": before, "after_s": after}
    floor["batch_bytes"], floor["buffers"] = inputs.batch_bytes, len(inputs.images)
    found["floors"].append(floor)
    found["ours"] += records
    if torch_peers and len(shape) == 4:  # the peers mix images
      from benchmarks.mixing import peers_torch

      calls = peers_torch.torch_inputs(inputs, args.torch_device)
      for job in torch_peers:
        if job.method in args.methods and job.mode in args.modes:
          found["peers"].append(peers_torch.measure(job, inputs, calls, repeats, args.torch_device))
      del calls
  return found


def main(argv: list[str] | None = None) -> int:
  args = parse_args(argv)
  started = time.perf_counter()
  result: dict[str, Any] = {
    "command": "python -m benchmarks.mixing " + " ".join(sys.argv[1:] if argv is None else argv),
    "machine": machine.describe(),
    "load_before": machine.load_average(),
    "versions": machine.versions(),
    "labels": LABELS,
    "floors": [],
    "ours": [],
    "peers": [],
    "train": [],
  }
  torch_peers = []
  if {"timm", "torchvision"} & set(args.peers):
    from benchmarks.mixing import peers_torch

    found = peers_torch.versions()
    result["versions"].update(found)
    usable = {lib for lib in ("timm", "torchvision") if not found[lib].startswith("unavailable")}
    usable = usable if not found["torch"].startswith("unavailable") else set()
    torch_peers = [j for j in PEER_JOBS if j.library in usable & set(args.peers)]
    import torch

    result["machine"]["torch_threads"] = torch.get_num_threads()
    result["machine"]["torch_device"] = args.torch_device
  for i, shape in enumerate(args.shapes):
    print(f"shape {cases.shape_name(shape)}", flush=True)
    for name, records in measure_shape(args, i, shape, torch_peers).items():
      result[name] += records
  if "keras" in args.peers and args.modes.count("example") and {"mixup", "cutmix"} & set(args.methods):
    print("keras (subprocess)", flush=True)
    result["versions"]["keras"], keras_records = run_keras(args)
    result["peers"] += keras_records
  if args.train:
    from benchmarks.mixing import train_overhead

    print("train step", flush=True)
    methods = args.train_methods or args.methods
    result["train"] = train_overhead.measure(
      methods,
      args.train_modes,
      args.train_repeats,
      _repeats(args, 0),
      args.seed,
      direct_methods=args.train_direct_methods,
    )
  result["targets"] = targets.judge(result["ours"], result["peers"], result["train"])
  result["peak_rss_bytes"] = timing.peak_rss_bytes()
  result["load_after"] = machine.load_average()
  result["wall_s"] = time.perf_counter() - started
  table = report.markdown(result)
  print()
  print(table)
  print(
    f"peak RSS {result['peak_rss_bytes'] / 2**20:.0f} MiB; wall {result['wall_s']:.0f} s; load {result['load_before']}"
  )
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps(result, indent=1))
  print(f"written to {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
