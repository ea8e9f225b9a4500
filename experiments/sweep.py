"""The regime sweep behind the main job: where does vanilla training overfit the embedded digits?

    python -m experiments.sweep [--out outputs/sweep] [--seeds 1]

Trains *vanilla* models only (no mixing method is run, so no method's result can steer the
choice) of ``experiments/configs/mnist_compare.py`` on the embedded MNIST subset at 16 x 16
pixels over the grid

* training examples ``train_examples`` in {500, 1000, 2000, 4000} (a fixed random subset),
* network width ``model_width`` in {8, 16},
* weight decay in {0, 5e-4},
* training length ``num_train_steps`` in {150, 300} steps of 100 images,

and reports per setting the train and test accuracy and NLL of the final model and the wall time.

The rule that picks the main job's regime was fixed before the sweep ran: regularisation matters
where plain training overfits, so the regime is the setting with the largest NLL gap (test NLL
minus train NLL) among those whose vanilla model reaches at least 90 % test accuracy (a usable
classifier) and whose run takes at most 12 s on 2 CPU cores (21 runs must fit the job's budget);
ties within 0.02 go to the shorter, then the smaller setting. The sweep's table and the chosen
setting are written to ``<out>/results.md`` and ``results.json`` and copied into the config's
docstring.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pathlib
import sys
import time
from collections.abc import Sequence
from typing import Any

from experiments import analysis, train
from experiments.configs import mnist_compare

GRID = {
  "train_examples": (500, 1000, 2000, 4000),
  "model_width": (8, 16),
  "weight_decay": (0.0, 5e-4),
  "num_train_steps": (150, 300),
}
MIN_TEST_ACCURACY = 0.90
MAX_SECONDS = 12.0
TIE = 0.02


def choose(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
  """The setting the module docstring's rule picks from the sweep's rows (``None`` if none qualifies)."""
  usable = [r for r in rows if r["test_accuracy"] >= MIN_TEST_ACCURACY and r["seconds"] <= MAX_SECONDS]
  if not usable:
    return None
  best = max(r["nll_gap"] for r in usable)
  near = [r for r in usable if r["nll_gap"] >= best - TIE]
  return min(near, key=lambda r: (r["num_train_steps"], r["train_examples"], r["model_width"]))


def _markdown(rows: Sequence[dict[str, Any]], chosen: dict[str, Any] | None) -> str:
  lines = [
    "| train examples | width | weight decay | steps | train acc | test acc | train NLL | test NLL | NLL gap | s |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for r in rows:
    mark = " **(chosen)**" if chosen is not None and r["name"] == chosen["name"] else ""
    lines.append(
      f"| {r['train_examples']} | {r['model_width']} | {r['weight_decay']:g} | {r['num_train_steps']} "
      f"| {100 * r['train_accuracy']:.1f} | {100 * r['test_accuracy']:.1f} | {r['train_nll']:.3f} "
      f"| {r['test_nll']:.3f} | {r['nll_gap']:.3f}{mark} | {r['seconds']:.1f} |"
    )
  return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("outputs/sweep"))
  parser.add_argument("--seeds", type=int, default=1)
  args = parser.parse_args(argv)
  rows = []
  for values in itertools.product(*GRID.values()):
    setting = dict(zip(GRID, values, strict=True))
    for seed in range(args.seeds):
      name = "-".join(f"{key}={value:g}" for key, value in setting.items()) + f"-s{seed}"
      workdir = args.out / "runs" / name
      record = workdir / "sweep.json"
      if record.is_file():
        rows.append(json.loads(record.read_text()))
        continue
      workdir.mkdir(parents=True, exist_ok=True)
      config = mnist_compare.get_config(f"none,{seed}")
      config.update(setting)
      start = time.perf_counter()
      train.train_and_evaluate(config, str(workdir))
      seconds = time.perf_counter() - start
      graphdef, state = train.load_model(config, str(workdir))
      data = analysis.analysis_data(config)
      fit = analysis.Analyser(graphdef, config, data, laws={})
      test = fit.fit(state, data.test_images, data.test_labels)
      trained = fit.fit(state, data.train_images, data.train_labels)
      row = {
        "name": name,
        **setting,
        "seed": seed,
        "train_accuracy": trained["accuracy"],
        "test_accuracy": test["accuracy"],
        "train_nll": trained["nll"],
        "test_nll": test["nll"],
        "nll_gap": test["nll"] - trained["nll"],
        "seconds": seconds,
      }
      record.write_text(json.dumps(row, indent=2))
      rows.append(row)
      print(_markdown([row], None).splitlines()[-1], file=sys.stderr, flush=True)
  chosen = choose(rows)
  text = _markdown(rows, chosen)
  args.out.mkdir(parents=True, exist_ok=True)
  (args.out / "results.md").write_text(text)
  (args.out / "results.json").write_text(json.dumps({"rows": rows, "chosen": chosen}, indent=2))
  print(text, end="")
  print(f"chosen: {chosen['name'] if chosen else 'none qualifies'}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
