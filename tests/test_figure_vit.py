"""The ViT theory figure's plumbing: a tiny run (200 digits, 2 training steps, 64 pairs) writes the
picture and its numbers. The exact patch-grid coefficients are checked in
``tests/test_patch_mixers.py``, TransMix's weight there too."""

import json

import numpy as np

from theory import figure_vit


def test_script_writes_png_and_json(tmp_path):
  out = tmp_path / "figure_vit.png"
  assert figure_vit.main(["--examples", "200", "--steps", "2", "--draws", "64", "--out", str(out)]) == 0
  assert out.stat().st_size > 10_000
  summary = json.loads(out.with_suffix(".json").read_text())["summary"]
  assert summary["aligned_row_constant_on_tokens"] == 0.0 and summary["pixel_row_largest_change_within_a_token"] > 0.05
  for name in ("untrained", "trained"):
    area, transmix = summary[name]["mean_partner_weight_area_transmix"]
    assert 0.0 < area < 1.0 and 0.0 < transmix < 1.0 and np.isfinite(summary[name]["largest_change_of_a_jk"])
