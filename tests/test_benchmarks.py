"""Smoke test of the mixing benchmark's measurement: one method at a tiny shape, no peer library."""

import json
import math

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
  assert set(record) == {"method", "mode", "shape", "cuda", "tpu", "cpu_fusions"} and record["cuda"]["ops"] > 0
