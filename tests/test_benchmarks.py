"""Smoke test of the mixing benchmark's measurement: one method at a tiny shape, no peer library."""

import json
import math

import pytest

from benchmarks.mixing import cases, ours, report, targets


def test_mixing_record_has_positive_finite_ratios():
  inputs = cases.make_inputs((4, 8, 8, 3), "uint8", buffers=2)
  floor = ours.time_floor(inputs, repeats=2)
  record = ours.measure("hmix", "example", inputs, repeats=2, floor_s=floor)
  json.dumps(record)
  assert record["output_dtype"] == "uint8"
  assert record["targets_shape"] == [4, 100]
  for field in ("median_s", "floor_s", "ratio_to_floor"):
    assert math.isfinite(record[field]) and record[field] > 0, field
  assert math.isfinite(record["temp_batches"]) and record["temp_batches"] >= 0
  assert record["hlo"]["fusions"] > 0
  result = {
    "ours": [record],
    "peers": [],
    "train": [],
    "floors": [{"shape": [4, 8, 8, 3], "dtype": "uint8", "median_s": floor}],
  }
  result["targets"] = targets.judge(result["ours"], result["peers"], result["train"])
  assert "hmix" in report.markdown(result)


def test_structure_counts_the_loops_and_branches_of_an_exported_program():
  """The structural benchmark sees a loop and a branch where there is one, and none where there is none."""
  import jax
  import jax.numpy as jnp

  from benchmarks import structure

  looped = lambda x: jax.lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * 2.0), (0, x))[1]
  branched = lambda x: jax.lax.cond(x.sum() > 0, lambda v: v + 1.0, lambda v: v - 1.0, x)
  plain = lambda x: 2.0 * x
  spec = jax.ShapeDtypeStruct((4,), jnp.float32)
  count = lambda f: structure.op_counts(jax.export.export(jax.jit(f), platforms=["cuda"])(spec).mlir_module())
  assert count(looped)["stablehlo.while"] == 1 and count(branched)["stablehlo.case"] == 1
  assert (
    count(plain)["stablehlo.while"] == 0
    and count(plain)["stablehlo.case"] == 0
    and count(plain)["stablehlo.multiply"] == 1
  )
  record = structure.structure("mixup", "example", (4, 8, 8, 3))
  assert set(record) == {"method", "mode", "pairing", "shape", "cuda", "tpu", "compiled_for", "fusions"}
  assert record["cuda"]["ops"] > 0 and record["compiled_for"] == "cpu"
  # Hashes: JAX's threefry2x32 function counted through its callers, and the library's inlined form.
  from msda_jax import _bits

  key = jax.random.key(0)
  hashes = lambda f: structure.hash_count(jax.export.export(jax.jit(f), platforms=["cuda"])(key).mlir_module())
  assert hashes(lambda k: jnp.zeros(2)) == 0
  assert hashes(lambda k: jax.random.bits(k, (2,))) == 1
  assert hashes(lambda k: jax.random.bits(jax.random.split(k)[0], (2,))) == 2
  assert hashes(lambda k: _bits.uniform(k, (3,)) + jax.random.uniform(k, (3,))) == 2
  # platform_dependent's choice is counted apart: a constant-index case, resolved before compiling.
  chosen = lambda x: jax.lax.platform_dependent(x, cpu=lambda v: v - 1.0, default=lambda v: v + 1.0)
  text = jax.export.export(jax.jit(chosen), platforms=["cuda"])(spec).mlir_module()
  assert structure.platform_cases(text) == structure.op_counts(text)["stablehlo.case"] > 0
  text = jax.export.export(jax.jit(branched), platforms=["cuda"])(spec).mlir_module()
  assert structure.platform_cases(text) == 0
  # A loop of static length counts as fixed; one whose condition reads the data does not.
  fixed = lambda x: jax.lax.fori_loop(0, 5, lambda i, v: v * 2.0, x)
  searching = lambda x: jax.lax.while_loop(lambda v: v.sum() < 10.0, lambda v: v * 2.0 + 1.0, x)
  text_of = lambda f: jax.export.export(jax.jit(f), platforms=["cuda"])(spec).mlir_module()
  assert structure.fixed_trip_loops(text_of(fixed)) == 1 == structure.op_counts(text_of(fixed))["stablehlo.while"]
  assert structure.fixed_trip_loops(text_of(searching)) == 0


def test_the_data_dependent_methods_loops_have_fixed_trip_counts():
  """PuzzleMix keeps its solvers' loops (labeling sweeps and transport rounds per grid size), all of
  static length; SaliencyMix has none."""
  from benchmarks import structure

  for spec in structure.DATA_METHODS:
    record = structure.structure(spec, "batch", (4, 16, 16, 3), cpu=False)["cuda"]
    assert record["fixed"] == record["while"], (spec, record)
    assert (record["while"] > 0) == (spec == "puzzlemix"), (spec, record)


@pytest.mark.parametrize("mode", ["batch", "example"])
def test_mask_only_methods_run_no_loop_and_no_branch_on_an_accelerator(mode):
  """Every mask-only method (its default pairing) and Mixup with every pairing: the programs
  exported for CUDA and TPU hold no ``while`` and no conditional on a computed value (a
  structural property of what the device runs; the platform choice is resolved before compiling)."""
  from benchmarks import structure

  cases = [(spec, None) for spec in structure.METHODS] + [("mixup", p) for p in ("roll", "permute", "derange")]
  failures = []
  for spec, pairing in cases:
    record = structure.structure(spec, mode, (4, 8, 8, 3), pairing, cpu=False)
    for platform in structure.PLATFORMS:
      if record[platform]["while"] or record[platform]["branch"]:
        failures.append((spec, pairing, platform, record[platform]))
  assert not failures, failures


def test_call_time_prints_one_positive_figure_per_method_and_mode(capsys):
  from benchmarks import call_time

  assert call_time.main(["--shape", "4x8x8x3", "--methods", "mixup", "cutmix", "--calls", "2", "--rounds", "1"]) == 0
  records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
  assert [(r["method"], r["mode"]) for r in records] == [
    (m, o) for m in ("mixup", "cutmix") for o in ("batch", "example")
  ]
  assert all(math.isfinite(r["best_ms"]) and r["best_ms"] > 0 for r in records)


def test_call_time_times_the_peer_beside_ours_on_the_same_job(capsys):
  """``--peers timm``: timm's call doing the job, timed in its own process, gets its best and the
  ratio; a job it lacks gets none."""
  pytest.importorskip("timm")
  from benchmarks import call_time

  argv = ["--shape", "4x8x8x3", "--methods", "mixup", "hmix", "--modes", "batch", "--peers", "timm"]
  assert call_time.main([*argv, "--calls", "2", "--rounds", "1", "--alternations", "1"]) == 0
  mixup, hmix = (json.loads(line) for line in capsys.readouterr().out.splitlines())
  assert mixup["timm_best_ms"] > 0
  assert mixup["timm_over_ours"] == pytest.approx(mixup["timm_best_ms"] / mixup["best_ms"], rel=1e-2)
  assert "timm_best_ms" not in hmix and hmix["best_ms"] > 0


def test_train_share_leaves_out_what_does_not_mix_and_compiles_only_the_direct_methods():
  """The GPU script's train part: VideoMix (videos only) is left out of an image step instead of
  failing it; a method outside ``direct_methods`` gets its op share without a step of its own."""
  from benchmarks.mixing import train_overhead

  records = train_overhead.measure(
    ["mixup", "cutmix", "videomix"],
    ["batch"],
    repeats=1,
    op_repeats=1,
    direct_methods=["mixup"],
    model_name="small_cnn",
    shape=(4, 8, 8, 3),
  )
  assert [(r["method"], r["mode"]) for r in records] == [("none", None), ("mixup", "batch"), ("cutmix", "batch")]
  none, mixup, cutmix = records
  assert none["step_median_s"] > 0 and mixup["direct_overhead"] is not None and mixup["op_share"] > 0
  assert cutmix["step_median_s"] is None and cutmix["direct_overhead"] is None and cutmix["op_share"] > 0
  assert report.train_table(records)[4].startswith("| cutmix | batch | - | - |")
