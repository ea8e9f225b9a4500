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
