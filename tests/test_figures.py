"""Every reproduction script runs end to end (small settings) and writes its PNG and JSON."""

import json

import pytest

from theory import figure1, figure2, figure3, figure4, figure4_design, figure5, theorem3

SMALL = {
  "figure1": (figure1, ["--num", "24", "--steps", "3"]),
  "figure2": (figure2, ["--size", "32"]),
  "figure3": (figure3, ["--size", "32"]),
  "figure4": (figure4, ["--size", "12", "--draws", "256"]),
  "figure4_design": (figure4_design, ["--size", "6", "--draws", "500"]),
  "theorem3": (theorem3, ["--examples", "6", "--steps", "20", "--methods", "CutMix"]),
  "figure5": (figure5, ["--epochs", "1", "--train-size", "128", "--batch", "32", "--num-test", "8"]),
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_figure_script_writes_png_and_json(name, tmp_path, capsys):
  module, args = SMALL[name]
  out = tmp_path / f"{name}.png"
  assert module.main([*args, "--out", str(out)]) == 0
  assert out.stat().st_size > 10_000, "the PNG should hold a real plot"
  numbers = json.loads(out.with_suffix(".json").read_text())
  assert numbers, "the JSON should hold the plotted numbers"
  assert str(out.resolve()) in capsys.readouterr().out
