"""Every reproduction script runs end to end (small settings) and writes its PNG and JSON, whose
numbers are checked against closed forms (``CHECKS``: one function per script)."""

import json
import math

import numpy as np
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


def check_figure1(numbers, out):
  """Step 0 has the zero model: every loss, exact or approximate, is ``log 2``. With Mixup and
  i.i.d. Bernoulli masks (centred data) Theorem 1 as printed is the general expansion; with
  boxes it is not, and the printed form's gap is the larger by far."""
  for panel in numbers.values():
    for run in ("trained_on_exact", "trained_on_approximate"):
      np.testing.assert_allclose(panel[run][0], [math.log(2.0)] * 3, rtol=1e-6)
  for name in ("Mixup", "Bernoulli"):
    panel = numbers[name]
    np.testing.assert_allclose(panel["max_relative_gap_printed"], panel["max_relative_gap_general"], rtol=1e-6)
  box = numbers["CutMix box"]
  assert box["max_relative_gap_printed"] > 10 * box["max_relative_gap_general"]


def check_figure2(numbers, out):
  """Eq. 2 with ``M = lam 1``: the range of ``lam x_i + (1 - lam) x_j`` recomputed in numpy from the
  script's photos; nothing is clipped for ``lam`` in [0, 1] (a convex combination of [0, 1] images)."""
  photos = np.asarray(figure3.load_photos(32), np.float64) / 255.0
  for k, lam in enumerate(numbers["lam"]):
    mixed = lam * photos[0] + (1.0 - lam) * photos[1]
    np.testing.assert_allclose(numbers["min_before_clip"][k], mixed.min(), atol=1e-6)
    np.testing.assert_allclose(numbers["max_before_clip"][k], mixed.max(), atol=1e-6)
    clipped = np.mean((mixed < -1e-6) | (mixed > 1.0 + 1e-6))
    np.testing.assert_allclose(numbers["fraction_clipped"][k], clipped, atol=1e-3)
    if 0.0 <= lam <= 1.0:
      assert numbers["fraction_clipped"][k] == 0.0


def check_figure3(numbers, out):
  """At ``lam = 0.65`` on 32 x 32: Mixup's weight is ``lam`` (float32); FMix's mask has exactly
  ``round(lam |S|) = 666`` ones of 1024."""
  lam = numbers["lam"]
  assert numbers["realised_weight"]["Mixup"] == float(np.float32(lam))
  assert numbers["realised_weight"]["FMix"] == round(lam * 32 * 32) / (32 * 32) == 666 / 1024


def clip_box_centre(lam, n):
  """``E mean(1 - M)`` of the reference's clip box on an ``n x n`` grid: per axis, the box side is
  ``floor(sqrt(1 - lam) n)`` and the covered length ``clip(c + s // 2) - clip(c - s // 2)`` for a
  centre ``c`` uniform on ``0 .. n - 1``; the two axes are independent."""
  side = math.floor(math.sqrt(1.0 - lam) * n)
  lengths = [min(c + side // 2, n) - max(c - side // 2, 0) for c in range(n)]
  return (sum(lengths) / (n * n)) ** 2


def check_figure4(numbers, out):
  """At ``lam = 0.5``: Mixup's map is ``(1 - lam)^2`` at every offset, Monte Carlo and exact;
  CutMix's centre ``E mean(1 - M)`` is the clip-box enumeration (80/144)^2 on 12 x 12; the
  Stochastic map (q = 0.5) is the mean of Mixup's and CutMix's (JSON rounding: 2e-6); every Monte
  Carlo map lies within 4.5 standard errors of its exact map at every offset (seed 4, 256 draws)."""
  lam, (n, _) = numbers["lam"], numbers["shape"]
  exact = {name: np.asarray(v) for name, v in numbers["exact"].items()}
  np.testing.assert_allclose(exact["Mixup"], (1 - lam) ** 2, atol=1e-6)
  np.testing.assert_allclose(np.asarray(numbers["monte_carlo"]["Mixup"]), (1 - lam) ** 2, atol=1e-6)
  assert numbers["methods"]["Mixup"]["centre_exact"] == pytest.approx((1 - lam) ** 2, abs=1e-7)
  centre = clip_box_centre(lam, n)
  assert centre == pytest.approx((80 / 144) ** 2)
  assert numbers["methods"]["CutMix"]["centre_exact"] == pytest.approx(centre, abs=1e-6)
  np.testing.assert_allclose(exact["Stochastic"], (exact["Mixup"] + exact["CutMix"]) / 2, atol=2e-6)
  for name, method in numbers["methods"].items():
    assert method["max_difference_in_stderr"] < 4.5, name


def check_figure4_design(numbers, out):
  """The known target is 0.3 Mixup + 0.7 CutMix: the designer finds those two weights back."""
  known = numbers["known mixture"]
  weights = {name.split("(")[0]: w for name, w in known["weights"].items()}
  assert weights == pytest.approx({"Mixup": 0.3, "CutMix": 0.7}, abs=1e-3)
  assert known["relative_residual"] < 1e-4


def check_theorem3(numbers, out):
  """``L~ = L_m + R1 + R2 + R3`` (Theorem 1); R3 = 0 for a ReLU network; at radius 0 the attack's
  loss is ``L_m`` (6 digits in the JSON)."""
  assert numbers["radii"][0] == 0.0
  for name, r in numbers.items():
    if not isinstance(r, dict):
      continue
    assert r["approximate"] == pytest.approx(r["L_m"] + r["R1"] + r["R2"] + r["R3"], rel=1e-12), name
    assert r["R3"] == 0.0
    assert r["adversarial_on_grid"][0] == pytest.approx(r["L_m"], abs=1e-6)


def check_figure5(numbers, out):
  """Eq. 12 normalised at ``p = 0``: each map is 1 at its centre, at most 1 elsewhere and
  centrally symmetric; the near and far means are those of the map (radius <= 2, >= 10)."""
  for name, r in numbers.items():
    mapping = np.asarray(r["map"])
    h = (mapping.shape[0] + 1) // 2
    assert mapping.shape == (2 * h - 1, 2 * h - 1), name
    assert mapping[h - 1, h - 1] == pytest.approx(1.0, abs=1e-6), name  # float32 division
    assert mapping.min() >= 0.0 and mapping.max() <= 1.0 + 1e-6
    np.testing.assert_allclose(mapping, mapping[::-1, ::-1], atol=1e-6)
    p = np.arange(-(h - 1), h)
    radius = np.hypot(p[:, None], p[None, :])
    assert r["near_mean"] == pytest.approx(mapping[(radius > 0) & (radius <= 2)].mean(), rel=1e-6)
    assert r["far_mean"] == pytest.approx(mapping[radius >= 10].mean(), rel=1e-6)


CHECKS = {
  "figure1": check_figure1,
  "figure2": check_figure2,
  "figure3": check_figure3,
  "figure4": check_figure4,
  "figure4_design": check_figure4_design,
  "theorem3": check_theorem3,
  "figure5": check_figure5,
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
  CHECKS[name](numbers, out)
