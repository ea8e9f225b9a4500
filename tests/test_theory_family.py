"""The exact moments of GridMix, VideoMix, SpecMix and SmoothMix against brute force and Monte Carlo.

Three independent routes: the closed or factored forms of ``theory.region_moments``; brute-force
enumeration of every configuration the sampler can draw, on grids small enough to list (every
cell assignment, every band set); and Monte Carlo over the samplers themselves
(``theory.mask_moments``, 20,000 draws, seed 20220, every entry within 6 standard errors plus
10 / draws). Each comparison also runs with a wrong law (another parameter), which the same
tolerance must refuse, so the check can fail.
"""

import itertools
import math

import jax
import numpy as np
import pytest

import msda_jax
from msda_jax import theory
from msda_jax.masks import _gridmix, _specmix
from msda_jax.theory import regions as rm
from msda_jax.theory.laws import fixed_lam_law, msda_law

Z, SEED, DRAWS = 6.0, 20220, 20_000


def excess(estimate, stderr, exact):
  """The largest ``|estimate - exact|`` beyond ``Z`` standard errors plus ``10 / DRAWS`` (<= 0: agrees)."""
  estimate, stderr, exact = (np.asarray(v, np.float64) for v in (estimate, stderr, exact))
  return float((np.abs(estimate - exact) - (Z * stderr + 10.0 / DRAWS)).max())


CASES = [
  # (method, lam, shape, the same method with a wrong parameter)
  (msda_jax.GridMix(cells=(2, 4), aspect=0.7), 0.3, (6, 9), msda_jax.GridMix(cells=(2, 5), aspect=0.7)),
  (msda_jax.VideoMix(kind="spatial"), 0.4, (3, 5, 6), msda_jax.VideoMix(kind="spatiotemporal")),
  (msda_jax.VideoMix(kind="temporal", placement="inside"), 0.4, (5, 3, 4), msda_jax.VideoMix(kind="temporal")),
  (
    msda_jax.VideoMix(kind="spatiotemporal", box_sides="even"),
    0.6,
    (4, 5, 6),
    msda_jax.VideoMix(kind="spatiotemporal"),
  ),
  (msda_jax.SpecMix(), None, (12, 10), msda_jax.SpecMix(max_width=0.4)),
  (msda_jax.SpecMix(max_width=0.5, bands=(0, 2)), None, (9,), msda_jax.SpecMix(max_width=0.5, bands=(1, 2))),
  (msda_jax.SmoothMix(), None, (7, 8), msda_jax.SmoothMix(sigma_min=0.3)),
  (msda_jax.SmoothMix(profile="square"), None, (7, 8), msda_jax.SmoothMix()),
]
IDS = ["gridmix", "videomix_spatial", "videomix_temporal_inside", "videomix_cube_even", "specmix", "specmix_1d",
       "smoothmix_circle", "smoothmix_square"]  # fmt: skip


@pytest.mark.parametrize("method, lam, shape, wrong", CASES, ids=IDS)
def test_monte_carlo_matches_exact_and_a_wrong_law_does_not(method, lam, shape, wrong):
  law = msda_law(method, shape=shape) if lam is None else fixed_lam_law(method, lam, shape=shape)
  sampled = theory.mask_moments(jax.random.key(SEED), law, num_draws=DRAWS, chunk_size=2000)
  exact = rm.region_moments(method, shape=shape, lam=lam)
  assert excess(sampled.second, sampled.second_stderr, exact.second) <= 0.0
  assert excess(sampled.mean, sampled.mean_stderr, exact.mean) <= 0.0
  other = rm.region_moments(wrong, shape=shape, lam=lam)
  assert excess(sampled.second, sampled.second_stderr, other.second) > 0.0, "a wrong law passed"


def test_gridmix_equals_every_cell_assignment():
  """3 x 4 pixels in 2 x 2 or 3 x 3 cells (aspect 1.5): every one of the 2^cells assignments, weighted."""
  shape, lam, cells, aspect = (3, 4), 0.35, (2, 3), 1.5
  second = np.zeros((12, 12))
  for first in range(cells[0], cells[1] + 1):
    grid = np.asarray(_gridmix.grid_counts(np.int32(first), np.float32(aspect), shape))
    index = np.meshgrid(*[np.asarray(i) for i in _gridmix.cell_index(grid, shape)], indexing="ij")
    num = int(np.prod(grid))
    for bits in itertools.product((0.0, 1.0), repeat=num):
      kept = np.asarray(bits).reshape(tuple(grid))  # 1: the cell keeps the image
      prob = np.prod(np.where(kept == 1.0, lam, 1.0 - lam))
      partner = (1.0 - kept[tuple(index)]).reshape(-1)
      second += prob * np.outer(partner, partner) / (cells[1] - cells[0] + 1)
  np.testing.assert_allclose(
    rm.gridmix_moments(lam, shape=shape, cells=cells, aspect=aspect).second, second, atol=1e-12
  )


def test_specmix_equals_every_band_set():
  """A 4 x 5 grid, 0-2 bands per axis of width up to 2: every count, width and start, weighted."""
  shape, max_width, bands = (4, 5), 0.5, (0, 2)

  def axis_law(n):
    """Every covered set of one axis with its probability."""
    widest = int(np.asarray(_specmix.max_band_width(np.float32(max_width), n)))
    single = [(w, s) for w in range(widest + 1) for s in range(n - w + 1)]
    probs = [1.0 / (widest + 1) / (n - w + 1) for w, _ in single]
    outcomes = []
    for count in range(bands[0], bands[1] + 1):
      for combo in itertools.product(range(len(single)), repeat=count):
        covered = np.zeros(n, bool)
        for b in combo:
          w, s = single[b]
          covered[s : s + w] = True
        outcomes.append((covered, math.prod(probs[b] for b in combo) / (bands[1] - bands[0] + 1)))
    return outcomes

  second = np.zeros((20, 20))
  for (rows, p_rows), (cols, p_cols) in itertools.product(axis_law(4), axis_law(5)):
    partner = (rows[:, None] | cols[None, :]).astype(float).reshape(-1)
    second += p_rows * p_cols * np.outer(partner, partner)
  np.testing.assert_allclose(
    rm.specmix_moments(shape=shape, max_width=max_width, bands=bands).second, second, atol=1e-12
  )


def test_videomix_equals_enumerated_boxes_on_the_cut_axes():
  """The spatial kind is CutMix's box on (H, W) in every frame: its exact enumeration, repeated over T."""
  lam, shape = 0.45, (3, 6, 7)
  boxes = theory.box_moments(lam, shape=shape[1:], placement="clip")
  video = rm.videomix_moments(lam, shape=shape, kind="spatial", placement="clip")
  np.testing.assert_allclose(video.second, np.kron(np.ones((3, 3)), boxes.second), atol=1e-12)


def test_smoothmix_rule_has_converged():
  """24 Gauss-Legendre nodes over the width agree with 48 to 1e-12 (the bump is analytic in it)."""
  coarse = rm.smoothmix_moments(shape=(6, 5), num_nodes=24)
  fine = rm.smoothmix_moments(shape=(6, 5), num_nodes=48)
  np.testing.assert_allclose(coarse.second, fine.second, atol=1e-12)


def test_region_moments_refuses_what_it_does_not_cover():
  with pytest.raises(ValueError, match=r"GridMix needs lam="):
    rm.region_moments(msda_jax.GridMix(), shape=(4, 4))
  with pytest.raises(ValueError, match=r"SpecMix draws no lam"):
    rm.region_moments(msda_jax.SpecMix(), shape=(4, 4), lam=0.5)
  with pytest.raises(ValueError, match=r"covers GridMix, VideoMix, SpecMix and SmoothMix"):
    rm.region_moments(msda_jax.CutMix(), shape=(4, 4), lam=0.5)
  with pytest.raises(ValueError, match=r"VideoMix mixes videos"):
    rm.videomix_moments(0.5, shape=(4, 4))


@pytest.mark.parametrize("shape", [(5, 7), (6, 4), (9,)])
def test_separable_translation_maps_equal_the_maps_of_the_matrices(shape):
  """Figure 4's maps from per-axis parts equal ``matrix_translation_map`` of the exact ``a_jk`` (float32: 1e-6)."""
  cases = [
    (rm.gridmix_translation_map(0.3, shape=shape, cells=(1, 4), aspect=0.8),
     rm.gridmix_moments(0.3, shape=shape, cells=(1, 4), aspect=0.8)),
    (rm.specmix_translation_map(shape=shape, max_width=0.5, bands=(0, 2)),
     rm.specmix_moments(shape=shape, max_width=0.5, bands=(0, 2))),
    (rm.smoothmix_translation_map(shape=shape), rm.smoothmix_moments(shape=shape)),
  ]  # fmt: skip
  for separable, exact in cases:
    matrix = np.asarray(theory.matrix_translation_map(exact.second, shape=shape), np.float64)
    np.testing.assert_allclose(separable, matrix, atol=1e-6)


def test_ricap_own_map_from_per_axis_sums_equals_the_map_of_its_exact_moments():
  shape = (5, 6)
  exact = rm.ricap_moments(shape=shape, beta=0.3)
  d = shape[0] * shape[1]
  matrix = np.asarray(theory.matrix_translation_map(exact.second[:d, :d], shape=shape), np.float64)
  np.testing.assert_allclose(rm.ricap_translation_map(shape=shape, beta=0.3), matrix, atol=1e-6)
  other = rm.ricap_translation_map(shape=shape, beta=1.0)
  assert np.abs(other - matrix).max() > 1e-2
