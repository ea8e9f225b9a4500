"""Collects finished runs into one table: mean and spread over seeds, next to the paper's number.

Each workdir holds the ``summary.json`` that ``experiments.train`` writes (``test_accuracy`` as
a fraction, ``test_loss`` and the run's ``config``). Runs whose configs agree on every field but
the bookkeeping ones (``RUN_FIELDS``: seed, logging, checkpoints, data location) are seeds of one
setting; a row reports their mean test accuracy in percent and the sample standard deviation
(``ddof=1``; none for a single seed). Rows are labelled by dataset, model and method; settings
that share a label but differ elsewhere (say, the learning rate) stay separate rows, and the
``setting`` column names the fields in which they differ.

The paper's number sits next to a row when the row's cell is one of a table's: the row's
dataset, classes, image size, augmentation, model and method equal those of
``tableN.get_config(arg)`` for an ``arg`` of ``tableN.PAPER_RESULTS``, and the number is
``PAPER_RESULTS[arg]``. The ``recipe`` column then says whether the rest of the training recipe
(epochs, optimiser, batch) is the table's too (``"paper"``) or which fields differ.

Command::

  python -m experiments.aggregate '/tmp/msda/table2/*' --out /tmp/msda/table2_summary

writes ``results.md`` (also printed), ``results.json``, ``results.csv`` and ``results.png``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import glob
import json
import math
import pathlib
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

import msda_jax
from experiments.configs import common, table1, table2, table3

# The tables whose numbers can be looked up, by name.
TABLES = {"table1": table1, "table2": table2, "table3": table3}
# Fields that do not change what a run measures: runs differing only in them are seeds of one setting.
RUN_FIELDS = (
  "seed",
  "data_dir",
  "data_workers",
  "eval_batch_size",
  "eval_every_steps",
  "checkpoint_every_steps",
  "keep_checkpoints",
  "log_every_steps",
  "progress",
)
# Fields that name a table's cell: a run on this cell gets the paper's number next to it.
CELL_FIELDS = ("dataset", "num_classes", "image_size", "augment", "model", "model_width", "method")
OUTPUT_FILES = ("results.md", "results.json", "results.csv", "results.png")


@dataclasses.dataclass(frozen=True)
class Run:
  """One finished run: its workdir, config and test metrics (accuracy in percent)."""

  workdir: str
  config: Mapping[str, Any]
  accuracy: float
  loss: float


@dataclasses.dataclass(frozen=True)
class Row:
  """One setting: its label, the per-seed accuracies (%) and their summary, and the paper's number."""

  dataset: str
  model: str
  method: str
  augment: str
  num_epochs: int
  setting: str
  seeds: tuple[int, ...]
  accuracies: tuple[float, ...]
  workdirs: tuple[str, ...]
  mean: float
  std: float | None
  test_loss: float
  paper: float | None
  reference: str | None
  recipe: str | None

  @property
  def delta(self) -> float | None:
    """``mean - paper`` in percentage points, or None without a paper number."""
    return None if self.paper is None else self.mean - self.paper


def method_key(spec: str) -> str:
  """A canonical form of a method spec: ``"hmix(r=0.5)"`` and ``"hmix(alpha=1.0, r=0.5)"`` agree."""
  method = msda_jax.from_string(spec)
  return "none" if method is None else repr(method)


def method_name(spec: str) -> str:
  """The name part of a method spec, ``"hmix(r=0.5)" -> "hmix"``."""
  return spec.split("(", 1)[0].strip().lower()


def _canonical(config: Mapping[str, Any], fields: Iterable[str]) -> tuple[tuple[str, str], ...]:
  """A hashable form of ``config`` restricted to ``fields`` (the method in canonical form)."""
  items = []
  for field in fields:
    value = config.get(field)
    if field == "method" and isinstance(value, str):
      value = method_key(value)
    items.append((field, json.dumps(value, sort_keys=True)))
  return tuple(items)


def paper_index() -> dict[tuple[tuple[str, str], ...], tuple[str, float, dict[str, Any]]]:
  """Every table cell with a paper number: canonical cell fields -> (``"tableN:arg"``, number, config)."""
  index = {}
  for name, table in TABLES.items():
    for arg, value in table.PAPER_RESULTS.items():
      config = table.get_config(arg).to_dict()
      index[_canonical(config, CELL_FIELDS)] = (f"{name}:{arg}", value, config)
  return index


def load_run(workdir: str | pathlib.Path) -> Run:
  """Reads ``workdir/summary.json``; raises ``FileNotFoundError`` or ``ValueError`` when unusable."""
  path = pathlib.Path(workdir) / "summary.json"
  summary = json.loads(path.read_text())
  missing = [key for key in ("test_accuracy", "config") if key not in summary]
  if missing:
    raise ValueError(f"{path} lacks {missing}.")
  accuracy = float(summary["test_accuracy"])
  if not 0.0 <= accuracy <= 1.0:
    raise ValueError(f"{path}: test_accuracy must be a fraction in [0, 1]; got {accuracy}.")
  config = dict(summary["config"])
  for field in ("dataset", "model", "method", "seed"):
    if field not in config:
      raise ValueError(f"{path}: the config lacks {field!r}.")
  return Run(str(workdir), config, 100.0 * accuracy, float(summary.get("test_loss", math.nan)))


def _label(config: Mapping[str, Any]) -> tuple[str, str, str, str]:
  return (config["dataset"], config.get("augment", ""), config["model"], method_key(config["method"]))


def _sort_key(row: Row) -> tuple[Any, ...]:
  name = method_name(row.method)
  order = common.METHOD_NAMES.index(name) if name in common.METHOD_NAMES else len(common.METHOD_NAMES)
  return (row.dataset, row.augment, row.model, order, row.method, row.setting)


def aggregate(workdirs: Sequence[str | pathlib.Path], *, skip_missing: bool = False) -> list[Row]:
  """Groups the runs in ``workdirs`` by setting and summarises each over its seeds.

  Args:
    workdirs: run directories, each with a ``summary.json``.
    skip_missing: leave out directories without ``summary.json`` (unfinished runs) instead of
      raising ``FileNotFoundError``.

  Returns:
    one ``Row`` per setting, sorted by dataset, augmentation, model and the tables' method order.
  """
  runs = []
  for workdir in workdirs:
    if skip_missing and not (pathlib.Path(workdir) / "summary.json").is_file():
      continue
    runs.append(load_run(workdir))
  if not runs:
    raise ValueError(f"no finished runs among {len(workdirs)} workdirs.")

  def setting_fields(config: Mapping[str, Any]) -> list[str]:
    return sorted(field for field in config if field not in RUN_FIELDS)

  groups: dict[tuple[Any, ...], list[Run]] = {}
  for run in runs:
    key = _canonical(run.config, setting_fields(run.config))
    groups.setdefault(key, []).append(run)

  # Fields that tell apart settings sharing a label (dataset, augmentation, model, method).
  by_label: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
  for members in groups.values():
    by_label.setdefault(_label(members[0].config), []).append(members[0].config)

  index = paper_index()
  rows = []
  for members in groups.values():
    members = sorted(members, key=lambda run: (run.config["seed"], run.workdir))
    config = members[0].config
    siblings = by_label[_label(config)]
    differing = [
      field
      for field in setting_fields(config)
      if len({json.dumps(other.get(field), sort_keys=True) for other in siblings}) > 1
    ]
    accuracies = np.array([run.accuracy for run in members], np.float64)
    paper = index.get(_canonical(config, CELL_FIELDS))
    recipe = None
    if paper is not None:
      table_config = paper[2]
      changed = [
        field
        for field in sorted(table_config)
        if field not in RUN_FIELDS + CELL_FIELDS and config.get(field) != table_config[field]
      ]
      recipe = "paper" if not changed else "differs: " + ", ".join(f"{f}={config.get(f)!r}" for f in changed)
    rows.append(
      Row(
        dataset=config["dataset"],
        model=config["model"],
        method=config["method"],
        augment=config.get("augment", ""),
        num_epochs=config.get("num_epochs", -1),
        setting=", ".join(f"{field}={config.get(field)!r}" for field in differing),
        seeds=tuple(int(run.config["seed"]) for run in members),
        accuracies=tuple(float(a) for a in accuracies),
        workdirs=tuple(run.workdir for run in members),
        mean=float(accuracies.mean()),
        std=float(accuracies.std(ddof=1)) if len(members) > 1 else None,
        test_loss=float(np.mean([run.loss for run in members])),
        paper=None if paper is None else paper[1],
        reference=None if paper is None else paper[0],
        recipe=recipe,
      )
    )
  return sorted(rows, key=_sort_key)


def _fmt(value: float | None, digits: int = 2, signed: bool = False) -> str:
  if value is None:
    return ""
  return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


COLUMNS = (
  "dataset",
  "augment",
  "model",
  "method",
  "epochs",
  "setting",
  "n seeds",
  "accuracy (%)",
  "paper (%)",
  "delta",
)


def _cells(row: Row) -> list[str]:
  accuracy = _fmt(row.mean) if row.std is None else f"{row.mean:.2f} ± {row.std:.2f}"
  paper = _fmt(row.paper)
  if row.recipe not in (None, "paper"):
    paper += " (other recipe)"
  return [
    row.dataset,
    row.augment,
    row.model,
    row.method,
    str(row.num_epochs),
    row.setting,
    str(len(row.seeds)),
    accuracy,
    paper,
    _fmt(row.delta, signed=True),
  ]


def to_markdown(rows: Sequence[Row]) -> str:
  """The rows as a markdown table: accuracy as ``mean ± std`` over seeds, the paper's number, the gap."""
  lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "|".join("---" for _ in COLUMNS) + "|"]
  lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in _cells(row)) + " |" for row in rows]
  return "\n".join(lines) + "\n"


def _record(row: Row) -> dict[str, Any]:
  record = dataclasses.asdict(row)
  record["delta"] = row.delta
  record["num_seeds"] = len(row.seeds)
  return record


def write_json(rows: Sequence[Row], path: str | pathlib.Path) -> None:
  """Every row with its per-seed accuracies and workdirs."""
  pathlib.Path(path).write_text(json.dumps({"rows": [_record(row) for row in rows]}, indent=2) + "\n")


CSV_FIELDS = (
  "dataset",
  "augment",
  "model",
  "method",
  "num_epochs",
  "setting",
  "num_seeds",
  "seeds",
  "mean",
  "std",
  "paper",
  "delta",
  "reference",
  "recipe",
  "test_loss",
)


def write_csv(rows: Sequence[Row], path: str | pathlib.Path) -> None:
  """One line per row; seeds space-separated, empty cells for missing values."""
  with open(path, "w", newline="") as file:
    writer = csv.DictWriter(file, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in rows:
      record = _record(row)
      record["seeds"] = " ".join(map(str, row.seeds))
      writer.writerow({field: "" if record[field] is None else record[field] for field in CSV_FIELDS})


SHORT_NAMES = {"stochastic_mixup_cutmix": "stochastic"}


def plot(rows: Sequence[Row], path: str | pathlib.Path) -> None:
  """Bars of the mean accuracy with ± std error bars, one panel per dataset, paper numbers as markers."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  datasets = list(dict.fromkeys(row.dataset for row in rows))
  widths = [max(3, len([row for row in rows if row.dataset == d])) for d in datasets]
  fig, axes = plt.subplots(1, len(datasets), figsize=(1.1 * sum(widths) + 1.5, 4.5), squeeze=False, width_ratios=widths)
  for ax, dataset in zip(axes[0], datasets, strict=True):
    part = [row for row in rows if row.dataset == dataset]
    x = np.arange(len(part))
    means = np.array([row.mean for row in part])
    errors = np.array([0.0 if row.std is None else row.std for row in part])
    ax.bar(x, means, yerr=errors, capsize=3, color="tab:blue", alpha=0.8, label="this library (mean ± std)")
    paper = [(i, row.paper) for i, row in enumerate(part) if row.paper is not None]
    if paper:
      ax.scatter(*zip(*paper, strict=True), marker="_", s=300, color="tab:red", zorder=3, label="paper")
    low = np.concatenate([means - errors, [p for _, p in paper]]).min()
    high = np.concatenate([means + errors, [p for _, p in paper]]).max()
    ax.set_ylim(max(0.0, math.floor(low) - 5), math.ceil(high) + 4)  # headroom for the legend
    labels = []
    for row in part:
      name = method_name(row.method)
      label = f"{row.model}\n{SHORT_NAMES.get(name, name)}"
      if row.augment not in ("", "cifar", "imagenet", "none"):
        label += f"\n{row.augment}"
      if row.setting:
        label += f"\n{row.setting}"
      labels.append(label)
    ax.set_xticks(x, labels, rotation=90 if len(part) > 8 else 0, fontsize=7)
    ax.set_title(dataset)
    ax.set_ylabel("test accuracy (%), axis not from 0")
    ax.legend(fontsize=7, loc="upper left", ncols=2)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def write_outputs(rows: Sequence[Row], out: str | pathlib.Path) -> dict[str, pathlib.Path]:
  """Writes ``results.md``, ``.json``, ``.csv`` and ``.png`` into ``out``; returns their paths."""
  out = pathlib.Path(out)
  out.mkdir(parents=True, exist_ok=True)
  paths = {name.split(".")[1]: out / name for name in OUTPUT_FILES}
  paths["md"].write_text(to_markdown(rows))
  write_json(rows, paths["json"])
  write_csv(rows, paths["csv"])
  plot(rows, paths["png"])
  return paths


def expand(patterns: Sequence[str]) -> list[str]:
  """Workdirs from paths and glob patterns, each once, in order; a pattern that matches nothing raises."""
  workdirs = []
  for pattern in patterns:
    matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    matches = [match for match in matches if pathlib.Path(match).is_dir()]
    if not matches:
      raise FileNotFoundError(f"no workdir matches {pattern!r}.")
    workdirs += [match for match in matches if match not in workdirs]
  return workdirs


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
  parser.add_argument("workdirs", nargs="+", help="run directories or glob patterns (quote them)")
  parser.add_argument("--out", required=True, help="directory for results.{md,json,csv,png}")
  parser.add_argument("--skip-missing", action="store_true", help="leave out workdirs without summary.json")
  args = parser.parse_args(argv)
  out = pathlib.Path(args.out).resolve()
  workdirs = [w for w in expand(args.workdirs) if pathlib.Path(w).resolve() != out]
  if args.skip_missing:
    skipped = [w for w in workdirs if not (pathlib.Path(w) / "summary.json").is_file()]
    for workdir in skipped:
      print(f"skipping {workdir}: no summary.json", file=sys.stderr)
  rows = aggregate(workdirs, skip_missing=args.skip_missing)
  paths = write_outputs(rows, args.out)
  print(paths["md"].read_text(), end="")
  print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)


if __name__ == "__main__":
  main()
