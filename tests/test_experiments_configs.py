"""The experiment configs (every table cell builds, methods parse, fields override) and the aggregator."""

import json
import pathlib

import ml_collections
import numpy as np
import pytest
from absl import flags
from ml_collections import config_flags

import msda_jax
from experiments import aggregate as aggregate_lib
from experiments.configs import common, default, mnist_compare, mnist_vit, table1, table2, table3
from experiments.train import check_config
from msda_jax.train.models import MODELS

CONFIG_DIR = pathlib.Path(__file__).resolve().parents[1] / "experiments" / "configs"
FIELDS = {
  "model",
  "model_width",
  "model_activation",
  "model_pool",
  "model_token_head",
  "dataset",
  "num_classes",
  "image_size",
  "augment",
  "data_dir",
  "crop_area",
  "data_workers",
  "train_examples",
  "method",
  "mix_mode",
  "mix_pairing",
  "mix_transport_k",
  "mix_prob",
  "label_smoothing",
  "loss",
  "loss_eta",
  "num_epochs",
  "num_train_steps",
  "batch_size",
  "eval_batch_size",
  "learning_rate",
  "schedule",
  "warmup_epochs",
  "momentum",
  "nesterov",
  "weight_decay",
  "num_devices",
  "sync_batch_norm",
  "seed",
  "checkpoint_every_steps",
  "keep_checkpoints",
  "log_every_steps",
  "eval_every_steps",
  "progress",
}
METHOD_TYPES = {
  "none": type(None),
  "mixup": msda_jax.Mixup,
  "cutmix": msda_jax.CutMix,
  "stochastic_mixup_cutmix": msda_jax.StochasticMixupCutMix,
  "hmix": msda_jax.HMix,
  "gmix": msda_jax.GMix,
  "puzzlemix": msda_jax.PuzzleMix,
  "bernoulli": msda_jax.Bernoulli,
  "fmix": msda_jax.FMix,
  "resizemix": msda_jax.ResizeMix,
  "saliencymix": msda_jax.SaliencyMix,
  "attentive_cutmix": msda_jax.AttentiveCutMix,
  "snapmix": msda_jax.SnapMix,
  "guidedmixup": msda_jax.GuidedMixup,
  "comixup": msda_jax.CoMixup,
  "smoothmix": msda_jax.SmoothMix,
  "gridmix": msda_jax.GridMix,
  "specmix": msda_jax.SpecMix,
  "ricap": msda_jax.RICAP,
  "k_cutmix": msda_jax.KCutMix,
  "kmix": msda_jax.KMix,
  "mixture": msda_jax.Mixture,
  "manifold_mixup": msda_jax.ManifoldMixup,
  "patchup": msda_jax.PatchUp,
  "alignmix": msda_jax.AlignMix,
  "patch_aligned": msda_jax.PatchAligned,
  "transmix": msda_jax.TransMix,
  "tokenmix": msda_jax.TokenMix,
  "mixpro": msda_jax.MixPro,
  "smmix": msda_jax.SMMix,
}
# (module, every arg its get_config accepts)
ALL_ARGS = [
  (table1, [f"{s},{m}" for s in table1.SCENARIOS for m in table1.METHODS]),
  (table2, list(table2.ARGS)),
  (table3, list(common.METHOD_NAMES)),
  (mnist_compare, [f"{m},{s}" for m in mnist_compare.METHODS for s in (0, 1, 2)] + list(mnist_compare.ALL_METHODS)),
  (mnist_vit, [f"{m},1" for m in mnist_vit.METHODS]),
]
CASES = [(module, arg) for module, args in ALL_ARGS for arg in args]


def _check(config: ml_collections.ConfigDict) -> None:
  assert isinstance(config, ml_collections.ConfigDict)
  assert set(config.keys()) == FIELDS
  assert config.model in MODELS
  assert config.augment in default.AUGMENTS
  assert config.schedule in default.SCHEDULES
  assert config.mix_mode == "batch" and config.mix_pairing is None  # the method's default pairing
  assert config.batch_size > 0 and config.eval_batch_size > 0 and config.num_epochs > 0
  assert config.num_train_steps == -1
  msda_jax.from_string(config.method)


@pytest.mark.parametrize(
  "module", [default, table1, table2, table3, mnist_compare, mnist_vit], ids=lambda m: m.__name__
)
def test_every_config_loads_with_its_default_arg(module):
  _check(module.get_config())


def test_default_fields():
  config = default.get_config()
  assert config.model == "preact_resnet18" and config.dataset == "cifar100" and config.method == "none"
  assert config.model_width is None and config.data_dir is None
  assert (config.mix_prob, config.label_smoothing, config.momentum, config.nesterov) == (1.0, 0.0, 0.9, True)


@pytest.mark.parametrize(("module", "arg"), CASES, ids=[f"{m.__name__.rsplit('.', 1)[1]}:{a}" for m, a in CASES])
def test_every_arg_builds_and_its_method_parses(module, arg):
  config = module.get_config(arg)
  _check(config)
  name = arg.split(",")[1] if module in (table1, table2) else arg.split(",")[0]
  assert isinstance(msda_jax.from_string(config.method), METHOD_TYPES[name])
  check_config(config, num_devices=1)  # PuzzleMix's grid sides divide every config's image size


@pytest.mark.parametrize(
  ("module", "arg"),
  [
    (table2, "preact_resnet18"),
    (table2, "resnet50,hmix"),
    (table2, "preact_resnet18,saliencymix"),
    (table3, "preact_resnet18,hmix"),
    (table1, "scenario3,mixup"),
    (mnist_compare, "hmix,one"),
    (mnist_vit, "transmix,one"),
    (mnist_vit, "manifold_mixup"),
  ],
)
def test_bad_args_raise(module, arg):
  with pytest.raises(ValueError, match="config arg"):
    module.get_config(arg)


def test_table2_setting():
  for model in table2.MODELS:
    config = table2.get_config(f"{model},none")
    assert (config.dataset, config.num_classes, config.image_size, config.augment) == ("cifar100", 100, 32, "cifar")
    assert (config.num_epochs, config.learning_rate, config.batch_size, config.weight_decay) == (300, 0.2, 128, 5e-4)
    assert config.model == model
  assert msda_jax.from_string(table2.get_config("resnet56,mixup").method).alpha == 1.0
  assert msda_jax.from_string(table2.get_config("resnet56,cutmix").method).alpha == 1.0
  stochastic = msda_jax.from_string(table2.get_config("resnet56,stochastic_mixup_cutmix").method)
  assert (stochastic.mixup_alpha, stochastic.cutmix_alpha, stochastic.q) == (1.0, 1.0, 0.5)
  hmix = msda_jax.from_string(table2.get_config("resnet56,hmix").method)
  assert (hmix.alpha, hmix.r) == (1.0, 0.5)
  assert msda_jax.from_string(table2.get_config("resnet56,gmix").method).alpha == 0.5


def test_table3_setting():
  config = table3.get_config("none")
  assert (config.model, config.dataset, config.num_classes, config.image_size) == (
    "resnet50",
    "imagenet2012",
    1000,
    224,
  )
  assert (config.augment, config.num_epochs, config.learning_rate) == ("imagenet", 300, 0.1)
  assert msda_jax.from_string(table3.get_config("mixup").method).alpha == 0.8
  for name in ("cutmix", "hmix", "gmix"):
    assert msda_jax.from_string(table3.get_config(name).method).alpha == 1.0
  assert msda_jax.from_string(table3.get_config("hmix").method).r == 0.75


def test_table1_and_mnist_setting():
  config = table1.get_config("scenario2,cutmix")
  assert (config.dataset, config.image_size, config.augment, config.num_classes) == (
    "imagenet100",
    64,
    "scenario2",
    100,
  )
  assert table1.get_config("scenario1,mixup").augment == "scenario1"
  config = mnist_compare.get_config("gmix,7")
  assert (config.model, config.dataset, config.image_size, config.num_classes) == ("small_cnn", "mnist_subset", 16, 10)
  assert (config.train_examples, config.model_width, config.weight_decay) == (500, 8, 0.0)  # the sweep's choice
  assert config.seed == 7 and mnist_compare.get_config("gmix").seed == 0


def test_paper_numbers_for_every_cell():
  assert set(table2.PAPER_RESULTS) == {f"{a},{m}" for a in table2.MODELS for m in common.METHOD_NAMES} | {
    f"{a},puzzlemix" for a in table2.MODELS[1:]
  }
  assert len(table2.PAPER_RESULTS) == 34 and len(table2.ARGS) == 35
  assert [table2.PAPER_RESULTS[f"{a},puzzlemix"] for a in table2.MODELS[1:]] == [76.51, 79.38, 80.89, 82.46]
  method = msda_jax.from_string(table2.get_config("resnet56,puzzlemix").method)
  assert isinstance(method, msda_jax.PuzzleMix) and method.grid_sizes == (2, 4, 8, 16) and method.t_size == 4
  row = [table2.PAPER_RESULTS[f"preact_resnet18,{m}"] for m in common.METHOD_NAMES]
  assert row == [76.73, 77.21, 78.66, 79.25, 79.25, 79.17]
  column = [table2.PAPER_RESULTS[f"{a},gmix"] for a in table2.MODELS]
  assert column == [75.75, 76.15, 79.17, 80.52, 81.45]
  assert table2.PAPER_RESULTS["wide_resnet28_2,none"] == 73.50
  assert table2.PAPER_RESULTS["preact_resnet50,stochastic_mixup_cutmix"] == 81.21
  assert [table3.PAPER_RESULTS[m] for m in common.METHOD_NAMES] == [75.68, 77.78, 78.04, 78.13, 78.38, 78.13]
  assert table1.PAPER_RESULTS == {
    "scenario1,mixup": 58.3,
    "scenario1,cutmix": 64.4,
    "scenario2,mixup": 67.7,
    "scenario2,cutmix": 67.0,
  }
  for module in (table1, table2, table3):
    for arg in module.PAPER_RESULTS:
      module.get_config(arg)  # every number belongs to a config that builds


def test_fields_are_overridable():
  config = table2.get_config("preact_resnet18,hmix")
  config.learning_rate = 0.05
  config.model_width = 16
  config.data_dir = "/data"
  assert (config.learning_rate, config.model_width, config.data_dir) == (0.05, 16, "/data")
  with pytest.raises(TypeError):
    config.learning_rate = "fast"
  config.update_from_flattened_dict({"num_epochs": 2, "method": "mixup(alpha=0.3)"})
  assert config.num_epochs == 2 and msda_jax.from_string(config.method).alpha == 0.3


@pytest.mark.filterwarnings("ignore:the load_module:DeprecationWarning")
@pytest.mark.parametrize(
  ("name", "arg"), [("table2.py", "preact_resnet34,gmix"), ("mnist_compare.py", "cutmix,2"), ("default.py", None)]
)
def test_command_line_overrides(name, arg):
  path = str(CONFIG_DIR / name) + ("" if arg is None else f":{arg}")
  argv = [
    "train",
    f"--config={path}",
    "--config.learning_rate=0.05",
    "--config.model_width=8",
    "--config.method=hmix(alpha=2.0, r=0.25)",
    "--config.nesterov=False",
  ]
  flag_values = flags.FlagValues()
  config_flags.DEFINE_config_file("config", flag_values=flag_values, sys_argv=argv)
  flag_values(argv)
  config = flag_values.config
  assert (config.learning_rate, config.model_width, config.nesterov) == (0.05, 8, False)
  method = msda_jax.from_string(config.method)
  assert (method.alpha, method.r) == (2.0, 0.25)


# --- the aggregator on fake workdirs ---


def _write_run(root, name, config, accuracy, loss=1.0):
  workdir = root / name
  workdir.mkdir(parents=True)
  summary = {"test_accuracy": accuracy, "test_loss": loss, "images_per_second": 1000.0, "config": config.to_dict()}
  (workdir / "summary.json").write_text(json.dumps(summary))
  return workdir


@pytest.fixture
def fake_runs(tmp_path):
  """Three seeds of two Table 2 cells, one Table 2 cell with a shorter recipe, two MNIST seeds."""
  rng = np.random.default_rng(0)
  expected = {}
  for arg in ("preact_resnet18,hmix", "resnet56,cutmix"):
    accuracies = rng.uniform(0.7, 0.8, size=3)
    for seed, accuracy in enumerate(accuracies):
      config = table2.get_config(arg)
      config.seed = seed
      config.data_dir = f"/data/{seed}"  # a bookkeeping field: does not split the setting
      _write_run(tmp_path / "runs", f"{arg.replace(',', '-')}-s{seed}", config, float(accuracy))
    expected[arg] = 100 * accuracies
  config = table2.get_config("preact_resnet18,hmix")
  config.num_epochs = 10
  _write_run(tmp_path / "runs", "short", config, 0.5)
  for seed, accuracy in enumerate((0.95, 0.97)):
    _write_run(tmp_path / "runs", f"mnist-s{seed}", mnist_compare.get_config(f"mixup,{seed}"), accuracy)
  return tmp_path / "runs", expected


def test_aggregate_mean_std_and_paper(fake_runs):
  root, expected = fake_runs
  rows = aggregate_lib.aggregate(sorted(root.iterdir()))
  assert len(rows) == 4
  by_key = {(row.model, aggregate_lib.method_name(row.method), row.num_epochs): row for row in rows}
  for arg, accuracies in expected.items():
    model, method = arg.split(",")
    row = by_key[(model, method, 300)]
    assert row.seeds == (0, 1, 2)
    np.testing.assert_allclose(row.accuracies, accuracies)
    np.testing.assert_allclose(row.mean, np.mean(accuracies))
    np.testing.assert_allclose(row.std, np.std(accuracies, ddof=1))
    assert row.paper == table2.PAPER_RESULTS[arg] and row.reference == f"table2:{arg}" and row.recipe == "paper"
    np.testing.assert_allclose(row.delta, np.mean(accuracies) - table2.PAPER_RESULTS[arg])
  short = by_key[("preact_resnet18", "hmix", 10)]
  assert short.std is None and short.mean == 50.0
  assert short.paper == 79.25 and short.recipe == "differs: num_epochs=10"
  assert "num_epochs=10" in short.setting and "num_epochs=300" in by_key[("preact_resnet18", "hmix", 300)].setting
  mnist = by_key[("small_cnn", "mixup", mnist_compare.get_config().num_epochs)]
  assert mnist.paper is None and mnist.recipe is None
  np.testing.assert_allclose((mnist.mean, mnist.std), (96.0, np.std([95.0, 97.0], ddof=1)))


def test_aggregate_matches_table1_scenarios_separately(tmp_path):
  for arg, accuracy in (("scenario1,cutmix", 0.6), ("scenario2,cutmix", 0.7)):
    _write_run(tmp_path, arg.replace(",", "-"), table1.get_config(arg), accuracy)
  rows = aggregate_lib.aggregate(sorted(tmp_path.iterdir()))
  assert [(row.augment, row.paper, round(row.mean, 6)) for row in rows] == [
    ("scenario1", 64.4, 60.0),
    ("scenario2", 67.0, 70.0),
  ]


def test_aggregate_method_spec_is_canonical(tmp_path):
  config = table3.get_config("hmix")
  config.method = "hmix(r=0.75)"  # the same method as the table's "hmix(alpha=1.0, r=0.75)"
  _write_run(tmp_path, "a", config, 0.78)
  (row,) = aggregate_lib.aggregate([tmp_path / "a"])
  assert row.paper == 78.38


def test_aggregate_rejects_bad_runs(tmp_path):
  (tmp_path / "unfinished").mkdir()
  with pytest.raises(FileNotFoundError):
    aggregate_lib.aggregate([tmp_path / "unfinished"])
  with pytest.raises(ValueError, match="no finished runs"):
    aggregate_lib.aggregate([tmp_path / "unfinished"], skip_missing=True)
  _write_run(tmp_path, "percent", mnist_compare.get_config("none"), 97.0)
  with pytest.raises(ValueError, match="fraction"):
    aggregate_lib.aggregate([tmp_path / "percent"])


def test_outputs_and_command_line(fake_runs, tmp_path, capsys):
  root, expected = fake_runs
  (root / "unfinished").mkdir()
  out = tmp_path / "table"
  aggregate_lib.main([str(root / "*"), "--out", str(out), "--skip-missing"])
  printed = capsys.readouterr().out
  for name in aggregate_lib.OUTPUT_FILES:
    assert (out / name).is_file() and (out / name).stat().st_size > 0
  markdown = (out / "results.md").read_text()
  assert printed == markdown and markdown.startswith("| dataset |")
  mean, std = np.mean(expected["preact_resnet18,hmix"]), np.std(expected["preact_resnet18,hmix"], ddof=1)
  assert f"{mean:.2f} ± {std:.2f}" in markdown and "79.25" in markdown
  records = json.loads((out / "results.json").read_text())["rows"]
  assert len(records) == 4
  record = next(r for r in records if r["reference"] == "table2:resnet56,cutmix")
  np.testing.assert_allclose(record["accuracies"], expected["resnet56,cutmix"])
  assert record["paper"] == 74.83 and record["num_seeds"] == 3
  lines = (out / "results.csv").read_text().splitlines()
  assert lines[0].split(",")[:4] == ["dataset", "augment", "model", "method"] and len(lines) == 5
  assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  with pytest.raises(FileNotFoundError):
    aggregate_lib.main([str(root / "*"), "--out", str(out)])
