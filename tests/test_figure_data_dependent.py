"""The data-dependent translation maps (theory/figure_data_dependent.py) on a tiny run: 16 x 16 digits."""

import json

import jax
import numpy as np
import pytest

import msda_jax
from msda_jax.theory import translation
from theory import figure_data_dependent as fdd

SHAPE = (16, 16)
LAM = 0.5
DRAWS, BATCH = 64, 16


@pytest.fixture(scope="module")
def data():
  images, _ = fdd.load_images("digits", SHAPE[0])
  images = images[:200]
  return images, fdd.sobel_saliency(images)


@pytest.fixture(scope="module")
def puzzlemix_run(data):
  images, saliency = data
  method = msda_jax.PuzzleMix(grid_sizes=(2, 4, 8))
  key = jax.random.key(0)
  result = fdd.sampled_map(key, method, images, saliency, lam=LAM, num_draws=DRAWS, batch_size=BATCH)
  masks = np.concatenate(
    [
      np.asarray(fdd.batch_masks(key, method, images, saliency, lam=LAM, batch_size=BATCH, batch=t)[0])
      for t in range(DRAWS // BATCH)
    ]
  )
  return result, masks


def test_load_images_and_saliency(data):
  images, saliency = data
  assert images.shape == (200, 16, 16, 1) and images.dtype == np.float32
  assert 0.0 <= images.min() and images.max() <= 1.0
  assert saliency.shape == (200, 16, 16)
  assert float(saliency.min()) >= 0.0 and float(saliency.max()) > 0.0


def test_pairs_are_distinct():
  first, second = fdd.pair_indices(jax.random.key(3), 1000, 5)
  assert np.all(np.asarray(first) != np.asarray(second))
  assert set(np.asarray(second).tolist()) == set(range(5))


def test_map_shape_and_symmetry(puzzlemix_run):
  result, masks = puzzlemix_run
  assert masks.shape == (DRAWS, *SHAPE)
  assert set(np.unique(masks).tolist()) <= {0.0, 0.5, 1.0}
  assert result.mean.shape == result.stderr.shape == (31, 31)
  assert result.batch_maps.shape == (DRAWS // BATCH, 31, 31) and result.num_draws == DRAWS
  # sum_i x_i x_(i+p) over the valid i is the same sum for -p, and N(p) = N(-p): T(p) = T(-p).
  np.testing.assert_allclose(result.mean, result.mean[::-1, ::-1], atol=1e-6)


def test_map_matches_its_definition(puzzlemix_run):
  result, masks = puzzlemix_run
  complement = 1.0 - masks.reshape(DRAWS, -1).astype(np.float64)
  # T(0) = E mean_i (1 - M_i)^2; the all-pairs mean of a_jk is E[(1 - mean_i M_i)^2].
  np.testing.assert_allclose(result.mean[15, 15], np.mean(complement**2), atol=1e-5)
  np.testing.assert_allclose(fdd.pair_mean(result.mean, SHAPE), np.mean(complement.mean(1) ** 2), atol=1e-5)
  np.testing.assert_allclose(result.mask_means, masks.mean((1, 2)), atol=1e-6)
  np.testing.assert_allclose(result.partner_share, 1.0 - masks.mean(0), atol=1e-6)
  # Against the brute-force reference: the d x d matrix a_jk = E[(1 - M_j)(1 - M_k)] of the draws.
  a = complement.T @ complement / DRAWS
  np.testing.assert_allclose(result.mean, translation.matrix_translation_map(a, shape=SHAPE), atol=1e-5)


def test_puzzlemix_map_is_not_mixups(puzzlemix_run):
  result, _ = puzzlemix_run
  mixup = np.asarray(translation.mixup_translation_map(LAM, shape=SHAPE))
  assert np.ptp(mixup) == 0.0  # Mixup's map is flat over p
  summary = fdd.summarize_sampled(result, SHAPE, LAM)
  assert summary["centre"] - mixup[15, 15] > 5 * summary["centre_stderr"]
  assert np.ptp(result.mean) > 0.03
  assert abs(summary["all_pairs"] - summary["squared_partner_share"]) < 1e-5
  assert abs(summary["mask_mean"] - LAM) < 0.1


def test_saliencymix_binary_map(data):
  images, saliency = data
  result = fdd.sampled_map(
    jax.random.key(1), msda_jax.SaliencyMix(), images, saliency, lam=LAM, num_draws=32, batch_size=16
  )
  # Binary masks: (1 - M)^2 = 1 - M, so T(0) is the mean partner share.
  np.testing.assert_allclose(result.mean[15, 15], 1.0 - result.mask_means.mean(), atol=1e-5)
  assert result.half_share == 0.0


def test_script_writes_png_and_json(tmp_path, capsys):
  out = tmp_path / "figure_data_dependent.png"
  args = ["--dataset", "digits", "--size", "16", "--grid-sizes", "4", "--draws", "32", "--batch-size", "16"]
  assert fdd.main([*args, "--out", str(out)]) == 0
  assert out.stat().st_size > 10_000
  numbers = json.loads(out.with_suffix(".json").read_text())
  assert set(numbers["puzzlemix_per_grid_side"]) == {"4"}
  assert np.asarray(numbers["monte_carlo"]["PuzzleMix"]).shape == (31, 31)
  assert str(out.resolve()) in capsys.readouterr().out
