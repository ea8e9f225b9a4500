"""The main job: every method of the paper's Table 2 on real data, three seeds, as one table.

    python -m experiments.compare [--out outputs/compare] [--seeds 3] [--methods none mixup ...]

Trains the small CNN of ``experiments/configs/mnist_compare.py`` on the embedded 5,000-image
MNIST subset (no download) with vanilla training, Mixup, CutMix, Stochastic Mixup & CutMix,
HMix and GMix, each with ``--seeds`` seeds, then prints the accuracy table (mean ± sample std
over seeds) and writes into ``--out``:

* ``runs/<method>-s<seed>/``: each run's workdir (checkpoints, ``metrics.jsonl``,
  TensorBoard files, ``summary.json``);
* ``results.md``, ``results.json``, ``results.csv``, ``results.png``: the table and its plot
  (``experiments.aggregate``);
* ``figure3.png``: the paper's Figure 3, every method's mixed image and mask on two photos.

The job resumes: a run whose ``summary.json`` exists is not trained again, and an interrupted
run continues from its last checkpoint. About 6 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from collections.abc import Sequence

from experiments import aggregate, train
from experiments.configs import mnist_compare


def run_all(out: pathlib.Path, methods: Sequence[str], seeds: int, overrides: dict[str, object]) -> list[pathlib.Path]:
  """Trains every method x seed not finished yet into ``out/runs``; returns the workdirs."""
  workdirs = []
  for method in methods:
    for seed in range(seeds):
      workdir = out / "runs" / f"{method}-s{seed}"
      workdirs.append(workdir)
      if (workdir / "summary.json").is_file():
        print(f"{method:>24} seed {seed}: done before", file=sys.stderr)
        continue
      workdir.mkdir(parents=True, exist_ok=True)
      config = mnist_compare.get_config(f"{method},{seed}")
      config.update(overrides)
      summary = train.train_and_evaluate(config, str(workdir))
      print(
        f"{method:>24} seed {seed}: test accuracy {100 * summary['test_accuracy']:.2f} %"
        f"  ({summary['images_per_second']:.0f} images/s, {summary['wall_seconds']:.0f} s)",
        file=sys.stderr,
        flush=True,
      )
  return workdirs


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("outputs/compare"))
  parser.add_argument("--seeds", type=int, default=3, help="seeds per method (0, 1, ...)")
  parser.add_argument("--methods", nargs="+", default=list(mnist_compare.METHODS), choices=list(mnist_compare.METHODS))
  parser.add_argument("--num-epochs", type=int, default=None, help="override the config's epochs")
  parser.add_argument("--num-train-steps", type=int, default=None, help="override with a fixed number of steps")
  parser.add_argument("--no-figure", action="store_true", help="skip figure3.png")
  args = parser.parse_args(argv)
  if args.seeds < 1:
    parser.error(f"--seeds must be >= 1; got {args.seeds}")
  overrides: dict[str, object] = {}
  if args.num_epochs is not None:
    overrides["num_epochs"] = args.num_epochs
  if args.num_train_steps is not None:
    overrides["num_train_steps"] = args.num_train_steps

  start = time.perf_counter()
  workdirs = run_all(args.out, args.methods, args.seeds, overrides)
  rows = aggregate.aggregate(workdirs)
  paths = aggregate.write_outputs(rows, args.out)
  written = [str(path) for path in paths.values()]
  if not args.no_figure:
    from theory import figure3

    figure = args.out / "figure3.png"
    figure3.main(["--out", str(figure)])
    written.append(str(figure))
  print(paths["md"].read_text(), end="")
  print(f"\n{len(workdirs)} runs, {time.perf_counter() - start:.0f} s; wrote {', '.join(written)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
