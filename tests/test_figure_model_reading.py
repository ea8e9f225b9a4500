"""The model-reading figure: the maps its methods read, the SnapMix weights, and the script's outputs.

A tiny run (200 digits, 2 training steps, 64 pairs) checks the plumbing; the checks of the
methods themselves are in ``tests/test_attentive.py``, ``tests/test_snapmix.py`` and
``tests/test_comixup.py``.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np

from theory import figure_model_reading as fmr


def test_snapmix_weights_are_the_map_shares():
  maps = jnp.full((3, 8, 8), 1 / 64)  # uniform maps: the weights are the box areas
  w_i, w_j, area_i, area_j = fmr.snapmix_weights(jax.random.key(0), maps, jnp.float32(0.5), 16)
  np.testing.assert_allclose(np.asarray(w_i), np.asarray(area_i), atol=1e-6)
  np.testing.assert_allclose(np.asarray(w_j), np.asarray(area_j), atol=1e-6)
  concentrated = jnp.zeros((3, 8, 8)).at[:, 0, 0].set(1.0)  # all semantics in one corner pixel
  w_i, _, area_i, _ = fmr.snapmix_weights(jax.random.key(0), concentrated, jnp.float32(0.5), 16)
  assert set(np.unique(np.asarray(w_i))) <= {0.0, 1.0} and not np.allclose(w_i, area_i)


def test_script_writes_png_and_json(tmp_path, capsys):
  out = tmp_path / "figure_model_reading.png"
  args = ["--examples", "200", "--steps", "2", "--draws", "64", "--out", str(out)]
  assert fmr.main(args) == 0
  assert out.stat().st_size > 10_000
  numbers = json.loads(out.with_suffix(".json").read_text())
  assert set(numbers["summary"]) == {"untrained", "trained", "flat_saliency", "spectral_residual"}
  for name in ("untrained", "trained", "flat_saliency"):
    comixup = numbers["summary"][name]["comixup"]
    assert 0.0 < comixup["mean_own_share"] < 1.0 and comixup["inputs_per_output"] >= 1.0
  for name in ("untrained", "trained", "spectral_residual"):
    assert 0.0 < numbers["summary"][name]["guidedmixup"]["mask_mean"] < 1.0
  for name in ("untrained", "trained"):
    assert np.isfinite(numbers["summary"][name]["alignmix_aligned_to_plain_squared_distance"])
  assert np.asarray(numbers["attentive_maps"]["trained"]).shape == (63, 63)
  assert str(out.resolve()) in capsys.readouterr().out
