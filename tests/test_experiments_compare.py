"""The main job (``experiments.compare``) end to end at a few steps per run, and its resumption."""

import json

from experiments import compare


def test_compare_writes_the_table_and_resumes(tmp_path, capsys):
  argv = ["--out", str(tmp_path), "--seeds", "2", "--methods", "hmix", "--num-train-steps", "2"]
  assert compare.main([*argv, "--no-figure"]) == 0
  out = capsys.readouterr()
  rows = json.loads((tmp_path / "results.json").read_text())["rows"]
  assert [row["method"] for row in rows] == ["hmix(alpha=1.0, r=0.5)"]
  (row,) = rows
  assert row["num_seeds"] == 2 and row["seeds"] == [0, 1] and row["std"] is not None
  assert row["mean"] == sum(row["accuracies"]) / 2 and 0.0 <= row["mean"] <= 100.0
  assert "| small_cnn | hmix(alpha=1.0, r=0.5) |" in out.out and "±" in out.out
  assert all((tmp_path / name).is_file() for name in ("results.md", "results.csv", "results.png"))
  assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["hmix-s0", "hmix-s1"]
  # A second call trains nothing and gives the same table.
  assert compare.main([*argv, "--no-figure"]) == 0
  again = capsys.readouterr()
  assert again.err.count("done before") == 2
  assert json.loads((tmp_path / "results.json").read_text())["rows"] == rows
