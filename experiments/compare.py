"""The main job: every method of the paper's Table 2 on real data, and what the theory says each regularises.

    python -m experiments.compare [--out outputs/compare] [--model cnn|vit] [--seeds 3]
        [--methods none mixup ... | --all-methods]
        [--scenario-seeds 2] [--scenario-methods mixup cutmix hmix gmix] [--num-train-steps N]
        [--laws mixup cutmix ...] [--analysis-examples N] [--no-figure] [--progress auto|bar|lines]
        [--compilation-cache DIR|none]

1. Trains the config of ``experiments/configs/mnist_compare.py`` (the regime chosen by the
   vanilla-only sweep ``experiments/sweep.py``, see its docstring) with vanilla training, Mixup,
   CutMix, Stochastic Mixup & CutMix, HMix, GMix and PuzzleMix, ``--seeds`` seeds each, on the
   embedded MNIST subset (no download).
2. Measures every trained model (``experiments.analysis``): test accuracy, NLL and ECE; accuracy
   under l2 PGD at radii ``eps sqrt(d)``; R1-R3 of Theorem 1 under each mask-only method's law
   (realised label weights, scalable estimator with standard errors); the radius where the
   adversarial loss reaches the model's own approximate MSDA loss; Figure 5's gradient products
   as a function of pixel distance, beside each law's exact ``a_jk`` profile (Figure 4).
3. A miniature Table 1: the paper's two crop scenarios (random crops of 80-100 % or 25-40 % of
   the frame, resized to the regime's image size) with Mixup, CutMix, HMix and GMix,
   ``--scenario-seeds`` seeds each, next to the paper's ImageNet-100 numbers.

``--model vit`` runs the same job on ``experiments/configs/mnist_vit.py`` instead: ``vit_digits``
in the same regime, with the paper's methods and the ViT mixers (patch-aligned boxes, TransMix)::

    python -m experiments.compare --model vit --scenario-seeds 0 --no-figure3 --out outputs/compare_vit

Writes into ``--out``: ``runs/<name>/`` (each run's workdir: checkpoints, ``metrics.jsonl``,
TensorBoard files, ``summary.json``, ``analysis.json``), ``results.md``, ``results.json``,
``results.csv``, ``results.png`` (``experiments.report``) and ``figure3.png`` (the paper's
Figure 3). A progress bar for the whole job (runs done, images/s, time left) is drawn on a
terminal, one plain line per finished task otherwise. The job resumes: a run with a
``summary.json`` is not trained again and one with an ``analysis.json`` not measured again; an
interrupted run continues from its last checkpoint. JAX's persistent compilation cache
(``--compilation-cache``, ``<out>/jax_cache`` by default) lets the later seeds, the scenario runs
and a resumed job reuse the programs compiled once (about 3 s per run on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import ml_collections

import msda_jax
from experiments import analysis, report, train
from experiments.configs import mnist_compare, mnist_vit, table1
from msda_jax.train.progress import JobProgress

SCENARIO_METHODS = ("mixup", "cutmix", "hmix", "gmix")
# Mask-only methods: their laws are those of the regularisers (PuzzleMix's mask reads the data).
LAW_METHODS = ("mixup", "cutmix", "stochastic_mixup_cutmix", "hmix", "gmix")
#: the regimes ``--model`` picks: config modules with ``METHODS`` (and ``ALL_METHODS``) and ``get_config``.
REGIMES: dict[str, Any] = {"cnn": mnist_compare, "vit": mnist_vit}


class Task:
  """One run of the job: its config, workdir and whether it is measured by ``experiments.analysis``."""

  def __init__(self, name: str, config: ml_collections.ConfigDict, workdir: pathlib.Path, measured: bool):
    self.name, self.config, self.workdir, self.measured = name, config, workdir, measured

  @property
  def images(self) -> int:
    """Images the run trains on (for the progress bar's throughput)."""
    return train.create_optimizer(self.config)[2] * self.config.batch_size


def tasks(
  out: pathlib.Path,
  methods: Sequence[str],
  seeds: int,
  scenario_methods: Sequence[str],
  scenario_seeds: int,
  overrides: dict[str, Any],
  regime: Any = mnist_compare,
) -> list[Task]:
  """The main runs (measured) of the config module ``regime``, then the scenario runs (accuracy only)."""
  jobs = []
  for method in methods:
    for seed in range(seeds):
      config = regime.get_config(f"{method},{seed}")
      config.update(overrides)
      jobs.append(Task(f"{method}-s{seed}", config, out / "runs" / f"{method}-s{seed}", True))
  for scenario in table1.SCENARIOS:
    for method in scenario_methods:
      for seed in range(scenario_seeds):
        config = regime.get_config(f"{method},{seed}")
        config.augment = scenario
        config.update(overrides)
        name = f"{scenario}-{method}-s{seed}"
        jobs.append(Task(name, config, out / "runs" / name, False))
  return jobs


def _read(path: pathlib.Path) -> dict[str, Any] | None:
  return json.loads(path.read_text()) if path.is_file() else None


def run_task(task: Task, measure: Callable[[Task], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
  """Trains (unless done) and measures (unless done) one task; returns its record and whether it trained."""
  summary = _read(task.workdir / "summary.json")
  trained = summary is None
  if summary is None:
    task.workdir.mkdir(parents=True, exist_ok=True)
    summary = train.train_and_evaluate(task.config, str(task.workdir))
  method, seed = task.name.rsplit("-s", 1)
  record: dict[str, Any] = {
    "name": task.name,
    "method": method.split("-", 1)[-1],
    "seed": int(seed),
    "test_accuracy": summary["test_accuracy"],
    "images_per_second": summary["images_per_second"],
    "wall_seconds": summary["wall_seconds"],
  }
  if not task.measured:
    record["scenario"] = task.config.augment
    return record, trained
  measured = _read(task.workdir / "analysis.json")
  if measured is None:
    measured = measure(task)
    (task.workdir / "analysis.json").write_text(json.dumps(measured, indent=2))
  record.update(measured)
  return record, trained


class Measurer:
  """Measures tasks with one ``experiments.analysis.Analyser`` per model architecture (its programs compile once)."""

  def __init__(self, laws: dict[str, msda_jax.masks.MixMethod], options: dict[str, Any]):
    self.laws, self.options = laws, options
    self.analysers: dict[str, analysis.Analyser] = {}

  def __call__(self, task: Task) -> dict[str, Any]:
    graphdef, state = train.load_model(task.config, str(task.workdir))
    key = repr(graphdef)
    if key not in self.analysers:
      data = analysis.analysis_data(task.config)
      self.analysers[key] = analysis.Analyser(graphdef, task.config, data, laws=self.laws, **self.options)
    method = task.name.rsplit("-s", 1)[0]
    return self.analysers[key](state, own=method if method in self.laws else None)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("outputs/compare"))
  parser.add_argument("--seeds", type=int, default=3, help="seeds per method (0, 1, ...)")
  parser.add_argument(
    "--model",
    choices=tuple(REGIMES),
    default="cnn",
    help="cnn: the small CNN (mnist_compare); vit: the ViT with the ViT mixers (mnist_vit)",
  )
  parser.add_argument("--methods", nargs="+", default=None, help="methods of the regime (default: its METHODS)")
  parser.add_argument(
    "--all-methods", action="store_true", help="every method of the regime (its ALL_METHODS), not --methods"
  )
  parser.add_argument("--scenario-seeds", type=int, default=2, help="seeds per cell of the miniature Table 1 (0: skip)")
  parser.add_argument(
    "--scenario-methods", nargs="+", default=list(SCENARIO_METHODS), choices=list(mnist_compare.METHODS)
  )
  parser.add_argument("--num-train-steps", type=int, default=None, help="override the config's training steps")
  parser.add_argument("--num-devices", type=int, default=None, help="train on the first N devices (default all)")
  parser.add_argument("--analysis-examples", type=int, default=None, help="override the analysis's example counts")
  parser.add_argument(
    "--laws", nargs="+", default=list(LAW_METHODS), choices=list(LAW_METHODS), help="regularisers' laws"
  )
  parser.add_argument("--no-figure", action="store_true", help="skip results.png and figure3.png")
  parser.add_argument("--no-figure3", action="store_true", help="skip figure3.png")
  parser.add_argument("--progress", choices=("auto", "bar", "lines"), default="auto")
  parser.add_argument(
    "--compilation-cache",
    default=None,
    help="directory of JAX's persistent compilation cache (default <out>/jax_cache; 'none' disables it)",
  )
  args = parser.parse_args(argv)
  regime = REGIMES[args.model]
  every = getattr(regime, "ALL_METHODS", regime.METHODS)
  unknown = sorted(set(args.methods or ()) - set(every))
  if unknown:
    parser.error(f"--methods: {unknown[0]!r} is not in the {args.model} regime; expected some of {list(every)}")
  if args.seeds < 1:
    parser.error(f"--seeds must be >= 1; got {args.seeds}")
  if args.scenario_seeds < 0:
    parser.error(f"--scenario-seeds must be >= 0; got {args.scenario_seeds}")
  overrides: dict[str, Any] = {}
  if args.num_train_steps is not None:
    if args.num_train_steps < 1:
      parser.error(f"--num-train-steps must be >= 1; got {args.num_train_steps}")
    overrides["num_train_steps"] = args.num_train_steps
  if args.num_devices is not None:
    overrides["num_devices"] = args.num_devices
  options: dict[str, Any] = {}
  if args.analysis_examples is not None:
    if args.analysis_examples < 2:
      parser.error(f"--analysis-examples must be >= 2; got {args.analysis_examples}")
    count = args.analysis_examples
    options = {"num_attack": count, "num_regularizer": count, "num_gradprod": count}

  if args.compilation_cache != "none":  # later seeds and the scenarios reuse the first run's programs
    cache = pathlib.Path(args.compilation_cache) if args.compilation_cache else args.out / "jax_cache"
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
  start = time.perf_counter()
  laws = {name: msda_jax.from_string(mnist_compare.METHODS[name]) for name in args.laws}
  methods = list(every) if args.all_methods else (args.methods or list(regime.METHODS))
  jobs = tasks(args.out, methods, args.seeds, args.scenario_methods, args.scenario_seeds, overrides, regime)
  bar = JobProgress(len(jobs), enabled={"auto": None, "bar": True, "lines": False}[args.progress])
  measure = Measurer(laws, options)
  records, scenario_records = [], []
  for task in jobs:
    record, trained = run_task(task, measure)
    (records if task.measured else scenario_records).append(record)
    images = task.images if trained else 0
    bar.advance(task.name, images=images, note=f"test accuracy {100 * record['test_accuracy']:.2f} %")
  bar.close()

  config = jobs[0].config
  profile_path = args.out / "law_profiles.json"
  profiles = _read(profile_path)
  if profiles is None:
    profiles = analysis.law_profiles(laws, shape=(config.image_size, config.image_size))
    profile_path.write_text(json.dumps(profiles))
  meta = {
    "config": regime.__name__,
    "image_size": config.image_size,
    "train_examples": config.train_examples,
    "model_width": config.model_width,
    "num_train_steps": config.num_train_steps,
    "machine": f"{platform.processor() or platform.machine()}, {jax.device_count()} {jax.default_backend()} device(s)",
    "jax": jax.__version__,
  }
  paths = report.write_report(
    records,
    scenario_records,
    profiles,
    args.out,
    paper_table1=table1.PAPER_RESULTS,
    meta=meta,
    figure=not args.no_figure,
  )
  written = [str(path) for path in paths.values()]
  if not (args.no_figure or args.no_figure3):
    from theory import figure3

    figure = args.out / "figure3.png"
    figure3.main(["--out", str(figure)])
    written.append(str(figure))
  print(paths["md"].read_text(), end="")
  print(f"\n{len(jobs)} runs, {time.perf_counter() - start:.0f} s; wrote {', '.join(written)}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
