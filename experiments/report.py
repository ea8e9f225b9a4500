"""The main job's report: per-method tables (mean ± std over seeds) and one figure of six panels.

``summarise(records, ...)`` turns the per-run records of ``experiments.compare`` (each run's
``summary.json`` merged with its ``analysis.json``) into per-method statistics;
``write_report(...)`` writes ``results.md``, ``results.json``, ``results.csv`` and ``results.png``.

Standard deviations are the sample std over seeds (``ddof=1``; 0 with one seed). Accuracies,
ECE and robust accuracies are in percent.
"""

from __future__ import annotations

import csv
import json
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from experiments.analysis import EPSILONS

LABELS = {
  "none": "Vanilla",
  "mixup": "Mixup",
  "cutmix": "CutMix",
  "stochastic_mixup_cutmix": "Stochastic",
  "hmix": "HMix",
  "gmix": "GMix",
  "puzzlemix": "PuzzleMix",
  "bernoulli": "Bernoulli",
  "fmix": "FMix",
  "resizemix": "ResizeMix",
  "saliencymix": "SaliencyMix",
  "attentive_cutmix": "Attentive CutMix",
  "snapmix": "SnapMix",
  "guidedmixup": "GuidedMixup",
  "comixup": "Co-Mixup",
  "smoothmix": "SmoothMix",
  "gridmix": "GridMix",
  "specmix": "SpecMix",
  "ricap": "RICAP",
  "k_cutmix": "k-image CutMix",
  "kmix": "KMix (k = 3)",
  "mixture": "Mixup or CutMix",
  "manifold_mixup": "Manifold Mixup",
  "patchup": "PatchUp",
  "alignmix": "AlignMix",
  "patch_aligned": "CutMix on whole tokens",
  "transmix": "TransMix",
  "tokenmix": "TokenMix",
  "mixpro": "MixPro",
  "smmix": "SMMix",
}
SCENARIO_LABELS = {
  "scenario1": "Scenario 1: large crop (small objects)",
  "scenario2": "Scenario 2: small crop (large objects)",
}


def _stats(values: Sequence[float]) -> tuple[float, float]:
  array = np.asarray(values, np.float64)
  return float(np.mean(array)), float(np.std(array, ddof=1)) if len(array) > 1 else 0.0


def _cell(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
  if not values or any(v is None or not np.isfinite(v) for v in values):
    return "—"
  mean, std = _stats([scale * v for v in values])
  return f"{mean:.{digits}f} ± {std:.{digits}f}"


def run_row(record: Mapping[str, Any]) -> dict[str, Any]:
  """One flat CSV row of a main-job run."""
  row: dict[str, Any] = {
    "method": record["method"],
    "seed": record["seed"],
    "test_accuracy": record["test_accuracy"],
    "test_nll": record["test_nll"],
    "test_ece": record["test_ece"],
    "train_accuracy": record["train_accuracy"],
    "train_nll": record["train_nll"],
  }
  for eps in record["robust_accuracy"]:
    row[f"robust_accuracy_eps{eps}"] = record["robust_accuracy"][eps]
  crossing = record.get("crossing")
  row["crossing_radius"] = None if crossing is None else crossing["low"]
  for law, terms in record["regularizers"].items():
    for name in ("r1", "r2", "r3"):
      row[f"{name}_{law}"] = terms[name]
  row["images_per_second"] = record.get("images_per_second")
  row["wall_seconds"] = record.get("wall_seconds")
  return row


def summarise(records: Sequence[Mapping[str, Any]], scenario_records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
  """Per-method means and stds of every main-job metric, the R matrix, the profiles, and Table 1's cells."""
  methods = list(dict.fromkeys(r["method"] for r in records))
  laws = list(records[0]["regularizers"]) if records else []
  per_method: dict[str, Any] = {}
  for method in methods:
    runs = [r for r in records if r["method"] == method]
    entry: dict[str, Any] = {"seeds": [r["seed"] for r in runs]}
    for name in ("test_accuracy", "test_nll", "test_ece", "train_accuracy", "train_nll"):
      entry[name] = _stats([r[name] for r in runs])
    entry["robust_accuracy"] = {
      eps: _stats([r["robust_accuracy"][eps] for r in runs]) for eps in runs[0]["robust_accuracy"]
    }
    entry["radius"] = runs[0]["radius"]
    crossings = [r["crossing"] for r in runs if r.get("crossing")]
    entry["crossing_radius"] = _stats([c["low"] for c in crossings]) if crossings else None
    entry["crossing_bracketed"] = all(c["bracketed"] for c in crossings) if crossings else None
    entry["regularizers"] = {
      law: {name: _stats([r["regularizers"][law][name] for r in runs]) for name in ("r1", "r2", "r3", "L_m", "L_tilde")}
      for law in laws
    }
    profile = np.mean([r["gradprod"]["value"] for r in runs], axis=0)
    entry["gradprod"] = {"distance": runs[0]["gradprod"]["distance"], "value": profile.tolist()}
    per_method[method] = entry
  scenarios: dict[str, Any] = {}
  for record in scenario_records:
    cell = scenarios.setdefault(record["scenario"], {}).setdefault(record["method"], [])
    cell.append(record["test_accuracy"])
  table1 = {s: {m: (*_stats(v), len(v)) for m, v in cells.items()} for s, cells in scenarios.items()}
  return {"methods": per_method, "laws": laws, "table1": table1}


def markdown(summary: Mapping[str, Any], paper_table1: Mapping[str, float]) -> str:
  """The tables of ``summary`` as Markdown."""
  methods = summary["methods"]
  eps_names = [f"{eps:g}" for eps in EPSILONS]
  lines = [
    "Main job: mean ± std over seeds (accuracies and ECE in %).",
    "",
    "| method | seeds | test acc | test NLL | ECE (15 bins) | train acc | "
    + " | ".join(f"robust acc, eps {e} (r {_radius(methods, e)})" for e in eps_names)
    + " | crossing radius (own law) |",
    "|---|---:|---:|---:|---:|---:|" + "---:|" * len(eps_names) + "---:|",
  ]
  for method, entry in methods.items():
    crossing = entry["crossing_radius"]
    cross = "—" if crossing is None else f"{crossing[0]:.3f} ± {crossing[1]:.3f}"
    if crossing is not None and not entry["crossing_bracketed"]:
      cross += " (not bracketed)"
    robust = " | ".join(_fmt(entry["robust_accuracy"][e], 100.0, 1) for e in eps_names)
    lines.append(
      f"| {LABELS.get(method, method)} | {len(entry['seeds'])} | {_fmt(entry['test_accuracy'], 100.0)} "
      f"| {_fmt(entry['test_nll'], 1.0, 3)} | {_fmt(entry['test_ece'], 100.0)} "
      f"| {_fmt(entry['train_accuracy'], 100.0)} "
      f"| {robust} | {cross} |"
    )
  laws = summary["laws"]
  if laws:
    lines += [
      "",
      "R1 + R2 of each trained model (rows) under each method's mask law (columns): Theorem 1, general form,"
      " realised label weights, sampled estimator on 128 training examples (R3 = 0: ReLU network); in brackets"
      " the ratio to the vanilla model's value under the same law.",
      "",
      "| trained with | L_m | " + " | ".join(LABELS.get(law, law) for law in laws) + " |",
      "|---|---:|" + "---:|" * len(laws),
    ]
    for method, entry in methods.items():
      regs = entry["regularizers"]
      cells = []
      for law in laws:
        value = _regularizer(entry, law)
        ratio = f" ({value / _regularizer(methods['none'], law):.2f}x)" if "none" in methods else ""
        cells.append(f"{value:.3f}{ratio}")
      lines.append(f"| {LABELS.get(method, method)} | {regs[laws[0]]['L_m'][0]:.3f} | " + " | ".join(cells) + " |")
  table1 = summary["table1"]
  if table1:
    scenario_methods = list(dict.fromkeys(m for cells in table1.values() for m in cells))
    lines += [
      "",
      "Miniature Table 1: test accuracy (%) on the digits under the paper's two crop scenarios (mean ± std over"
      " seeds); the paper's ImageNet-100 numbers in brackets.",
      "",
      "| scenario | " + " | ".join(LABELS.get(m, m) for m in scenario_methods) + " | CutMix - Mixup |",
      "|---|" + "---:|" * (len(scenario_methods) + 1),
    ]
    for scenario, cells in table1.items():
      row = []
      for method in scenario_methods:
        text = _fmt(cells[method][:2], 100.0) if method in cells else "—"
        paper = paper_table1.get(f"{scenario},{method}")
        row.append(text + (f" ({paper:.1f})" if paper is not None else ""))
      delta = "—"
      if "mixup" in cells and "cutmix" in cells:
        delta = f"{100 * (cells['cutmix'][0] - cells['mixup'][0]):+.2f}"
        paper_delta = [paper_table1.get(f"{scenario},{m}") for m in ("cutmix", "mixup")]
        if None not in paper_delta:
          delta += f" ({paper_delta[0] - paper_delta[1]:+.1f})"
      lines.append(f"| {SCENARIO_LABELS.get(scenario, scenario)} | " + " | ".join(row) + f" | {delta} |")
  return "\n".join(lines) + "\n"


def _radius(methods: Mapping[str, Any], eps: str) -> str:
  entry = next(iter(methods.values()))
  return f"{entry['radius'][eps]:.2f}"


def _regularizer(entry: Mapping[str, Any], law: str) -> float:
  """``R1 + R2`` (mean over seeds) of one method's models under ``law``."""
  return entry["regularizers"][law]["r1"][0] + entry["regularizers"][law]["r2"][0]


def _fmt(stat: Sequence[float], scale: float, digits: int = 2) -> str:
  mean, std = stat[0], stat[1]
  if not np.isfinite(mean):
    return "—"
  return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def plot(summary: Mapping[str, Any], profiles: Mapping[str, Any], path: pathlib.Path) -> None:
  """Six panels: accuracy and ECE, robust accuracy, the R matrix, a_jk profiles, gradient products, Table 1."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  methods = summary["methods"]
  names = list(methods)
  labels = [LABELS.get(m, m) for m in names]
  # One colour per method of LABELS: tab10's ten, then tab20b's and tab20c's twenty each.
  palette = [plt.get_cmap(name)(i) for name, n in (("tab10", 10), ("tab20b", 20), ("tab20c", 20)) for i in range(n)]
  colors = {m: palette[i % len(palette)] for i, m in enumerate(LABELS)}
  fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))

  ax = axes[0, 0]
  x = np.arange(len(names))
  acc = [100 * methods[m]["test_accuracy"][0] for m in names]
  acc_err = [100 * methods[m]["test_accuracy"][1] for m in names]
  ece = [100 * methods[m]["test_ece"][0] for m in names]
  ece_err = [100 * methods[m]["test_ece"][1] for m in names]
  ax.bar(x - 0.2, acc, 0.4, yerr=acc_err, color=[colors[m] for m in names], label="test accuracy")
  ax.set_ylim(min(acc) - 5, 100)
  ax.set_ylabel("test accuracy (%)")
  ax.set_xticks(x, labels, rotation=30, ha="right")
  twin = ax.twinx()
  twin.bar(x + 0.2, ece, 0.4, yerr=ece_err, color="none", edgecolor="k", hatch="//", label="ECE")
  twin.set_ylabel("ECE, 15 bins (%) (hatched)")
  ax.set_title("(a) accuracy (filled) and calibration error (hatched)")

  ax = axes[0, 1]
  eps_names = [f"{eps:g}" for eps in EPSILONS]
  for m in names:
    values = [100 * methods[m]["robust_accuracy"][e][0] for e in eps_names]
    errors = [100 * methods[m]["robust_accuracy"][e][1] for e in eps_names]
    clean = 100 * methods[m]["test_accuracy"][0]
    ax.errorbar([0.0, *EPSILONS], [clean, *values], yerr=[0.0, *errors], marker="o", color=colors[m], label=LABELS[m])
  ax.set_xlabel("eps = l2 radius / sqrt(d)  (pixels in [0, 1])")
  ax.set_ylabel("accuracy under l2 PGD (%)")
  ax.set_title("(b) robustness (Theorem 3's direction)")
  ax.legend(fontsize=8)

  ax = axes[0, 2]
  laws = summary["laws"]
  matrix = np.array([[_regularizer(methods[m], law) for law in laws] for m in names])
  relative = "none" in methods
  if relative:  # each law's scale differs: compare every model with the vanilla one under the same law
    matrix = matrix / np.array([_regularizer(methods["none"], law) for law in laws])[None, :]
  image = ax.imshow(matrix, cmap="viridis")
  for i in range(len(names)):
    for j in range(len(laws)):
      ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", color="w", fontsize=8)
  ax.set_xticks(range(len(laws)), [LABELS.get(law, law) for law in laws], rotation=30, ha="right")
  ax.set_yticks(range(len(names)), labels)
  ax.set_xlabel("mask law of the regulariser")
  ax.set_ylabel("trained with")
  ax.set_title("(c) R1 + R2 under each law" + (", / vanilla's" if relative else ""))
  fig.colorbar(image, ax=ax, fraction=0.046)

  ax = axes[1, 0]
  for law, profile in profiles.items():
    ax.plot(profile["distance"], profile["value"], marker=".", color=colors[law], label=LABELS.get(law, law))
  ax.set_xlabel("pixel distance |j - k|")
  ax.set_ylabel("mean a_jk (exact, general form)")
  ax.set_title("(d) Figure 4: what each law weighs, by distance")
  ax.legend(fontsize=8)

  ax = axes[1, 1]
  base = np.asarray(methods["none"]["gradprod"]["value"]) if "none" in methods else None
  for m in names:
    profile = methods[m]["gradprod"]
    value = np.asarray(profile["value"]) if base is None else np.asarray(profile["value"]) / base
    ax.plot(profile["distance"], value, marker=".", color=colors[m], label=LABELS[m])
  ax.set_xlabel("pixel distance |p|")
  if base is None:
    ax.set_yscale("log")
    ax.set_ylabel("max_v |d_v f d_(v+p) f| / value at p = 0")
  else:
    ax.set_ylabel("normalised max_v |d_v f d_(v+p) f|, / vanilla's")
  ax.set_title("(e) Figure 5: gradient products of the trained models")
  ax.legend(fontsize=8)

  ax = axes[1, 2]
  table1 = summary["table1"]
  if table1:
    scenario_methods = list(dict.fromkeys(m for cells in table1.values() for m in cells))
    width = 0.8 / len(scenario_methods)
    for k, m in enumerate(scenario_methods):
      for s, scenario in enumerate(table1):
        if m in table1[scenario]:
          mean, std, _ = table1[scenario][m]
          ax.bar(s + (k - (len(scenario_methods) - 1) / 2) * width, 100 * mean, width, yerr=100 * std,
                 color=colors[m], label=LABELS[m] if s == 0 else None)  # fmt: skip
    ax.set_xticks(range(len(table1)), [SCENARIO_LABELS.get(s, s).split(": ")[1] for s in table1])
    low = min(100 * c[0] for cells in table1.values() for c in cells.values())
    ax.set_ylim(low - 5, 100)
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
  else:
    ax.text(0.5, 0.5, "no scenario runs (--scenario-seeds 0)", ha="center", va="center", transform=ax.transAxes)
    ax.axis("off")
  ax.set_title("(f) miniature Table 1: two crop scenarios")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def write_report(
  records: Sequence[Mapping[str, Any]],
  scenario_records: Sequence[Mapping[str, Any]],
  profiles: Mapping[str, Any],
  out: pathlib.Path,
  *,
  paper_table1: Mapping[str, float],
  meta: Mapping[str, Any],
  figure: bool = True,
) -> dict[str, pathlib.Path]:
  """Writes ``results.{md,json,csv}`` (and ``results.png`` when ``figure``) into ``out``; returns the paths."""
  summary = summarise(records, scenario_records)
  out.mkdir(parents=True, exist_ok=True)
  paths = {"md": out / "results.md", "json": out / "results.json", "csv": out / "results.csv"}
  paths["md"].write_text(markdown(summary, paper_table1))
  document = {"meta": dict(meta), "summary": summary, "profiles": dict(profiles), "runs": list(records)}
  document["table1_runs"] = list(scenario_records)
  paths["json"].write_text(json.dumps(document, indent=2))
  rows = [run_row(r) for r in records]
  with paths["csv"].open("w", newline="") as file:
    writer = csv.DictWriter(file, fieldnames=list(rows[0]) if rows else ["method"])
    writer.writeheader()
    writer.writerows(rows)
  if figure and records:
    paths["png"] = out / "results.png"
    plot(summary, profiles, paths["png"])
  return paths
