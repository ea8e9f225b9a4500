"""The main job (``experiments.compare``) in miniature: two methods, one seed, a few steps, every metric; resumption."""

import json
import math

from experiments import compare

ARGV = [
  "--seeds", "1", "--methods", "none", "cutmix", "--num-train-steps", "3", "--scenario-seeds", "1",
  "--scenario-methods", "mixup", "--laws", "cutmix", "--analysis-examples", "8",
  "--no-figure3", "--progress", "lines", "--num-devices", "1",
  "--compilation-cache", "none",
]  # fmt: skip


def _finite(value):
  return value is not None and math.isfinite(value)


def test_compare_measures_every_model_and_resumes(tmp_path, capsys):
  argv = ["--out", str(tmp_path), *ARGV]
  assert compare.main(argv) == 0
  out = capsys.readouterr()
  document = json.loads((tmp_path / "results.json").read_text())
  summary = document["summary"]
  assert list(summary["methods"]) == ["none", "cutmix"] and summary["laws"] == ["cutmix"]
  for method, entry in summary["methods"].items():
    assert entry["seeds"] == [0]
    for name in ("test_accuracy", "test_nll", "test_ece", "train_accuracy", "train_nll"):
      assert _finite(entry[name][0]) and entry[name][1] == 0.0, (method, name)
    assert 0.0 <= entry["test_ece"][0] <= 1.0
    robust = [entry["robust_accuracy"][eps][0] for eps in ("0.005", "0.01", "0.02")]
    assert all(0.0 <= r <= 1.0 for r in robust)
    for law in ("cutmix",):
      terms = entry["regularizers"][law]
      assert all(_finite(terms[name][0]) for name in ("r1", "r2", "r3", "L_m", "L_tilde"))
      assert terms["r3"][0] == 0.0  # ReLU network: the input Hessian vanishes
      total = terms["L_m"][0] + terms["r1"][0] + terms["r2"][0] + terms["r3"][0]
      assert math.isclose(terms["L_tilde"][0], total, rel_tol=1e-6)
    profile = entry["gradprod"]
    assert profile["distance"][0] == 0 and math.isclose(profile["value"][0], 1.0, rel_tol=1e-5)
    assert all(0.0 <= v <= 1.0 + 1e-6 for v in profile["value"])
  # the crossing radius exists for the model trained with a law, not for vanilla training
  assert summary["methods"]["none"]["crossing_radius"] is None
  crossing = summary["methods"]["cutmix"]["crossing_radius"][0]
  assert 0.0 <= crossing <= 4.0
  # the law's exact a_jk profile: CutMix's weighs near pixel pairs more than far ones
  profile = document["profiles"]["cutmix"]
  assert profile["distance"][:2] == [0, 1] and profile["value"][0] > profile["value"][1] > 0.0
  # the miniature Table 1: both scenarios
  assert sorted(summary["table1"]) == ["scenario1", "scenario2"]
  assert all(list(cells) == ["mixup"] and cells["mixup"][2] == 1 for cells in summary["table1"].values())
  assert all((tmp_path / name).is_file() for name in ("results.md", "results.csv", "results.png"))
  assert "| Vanilla | 1 |" in out.out and "Miniature Table 1" in out.out and "(58.3)" in out.out
  assert out.err.count(" runs ") == 4 and "4/4 runs" in out.err
  runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
  assert runs == sorted(["none-s0", "cutmix-s0", "scenario1-mixup-s0", "scenario2-mixup-s0"])
  stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/*.json")}
  # A second call trains and measures nothing and gives the same results.
  assert compare.main(argv) == 0
  again = capsys.readouterr()
  assert "     0 img/s" in again.err.splitlines()[-1]
  assert {p: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*/*.json")} == stamps
  assert json.loads((tmp_path / "results.json").read_text())["summary"] == summary


def test_all_methods_lists_every_method_of_the_library_but_videomix(tmp_path):
  """``--all-methods``: one measured task per seed for every library method that mixes images; the
  ones that read a ViT's attention in the ViT regime (``--model vit``)."""
  import msda_jax
  from experiments.configs import mnist_compare, mnist_vit

  jobs = compare.tasks(tmp_path, list(mnist_compare.ALL_METHODS), 1, [], 0, {})
  built = {type(msda_jax.from_string(job.config.method)).name for job in jobs if job.config.method != "none"}
  vit_jobs = compare.tasks(tmp_path, list(mnist_vit.METHODS), 1, [], 0, {}, mnist_vit)
  vit = {type(msda_jax.from_string(job.config.method)).name for job in vit_jobs if job.config.method != "none"}
  attention = {name for name, cls in msda_jax.METHODS.items() if "attention" in cls().needs().outputs}
  assert attention and attention <= vit and not attention & built
  assert built | vit == set(msda_jax.METHODS) - {"videomix"}
  assert {job.config.model for job in vit_jobs} == {"vit_digits"}
  assert all(job.measured for job in jobs) and len(jobs) == len(mnist_compare.ALL_METHODS)
  from experiments import report

  labelled = set(mnist_compare.ALL_METHODS) | set(mnist_vit.METHODS)
  assert labelled <= set(report.LABELS), "every method has a label (its colour in the plots)"
