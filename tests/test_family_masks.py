"""SmoothMix, GridMix, SpecMix and VideoMix: their laws, their mask structure and their errors.

The joint laws (second moments) are checked against exact computations in
``test_theory_family.py``; here the parts a moment does not pin down: SmoothMix's width law
(Kolmogorov-Smirnov against the uniform, 2,000 draws, seed 0; the same test refuses a law
stretched by 10 %), its uniform centre (chi-square over the 64 pixels, 3,200 draws), GridMix's
cells and cell counts, VideoMix's cuboids per kind, and every bad input.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from test_errors import no_work  # noqa: F401 (a fixture)

import msda_jax

SIDE = 8


@pytest.fixture(scope="module")
def smooth_draws():
  """3,200 SmoothMix masks on 8 x 8 (circle), one jitted vmap."""
  keys = jax.random.split(jax.random.key(0), 3200)
  sample = jax.jit(jax.vmap(lambda k: msda_jax.SmoothMix().sample(k, shape=(SIDE, SIDE)).mask))
  return np.asarray(sample(keys), np.float64)


def test_smoothmix_width_is_uniform_and_a_stretched_law_is_refused(smooth_draws):
  """The width from the mask: next to the centre (M = 0) along an axis, ``1 - M = exp(-1 / (2 sigma^2))``."""
  masks = smooth_draws[:2000]
  flat = masks.reshape(len(masks), -1).argmin(-1)
  row, col = np.unravel_index(flat, (SIDE, SIDE))
  step = np.where(col + 1 < SIDE, 1, -1)  # the neighbour inside the grid
  neighbour = 1.0 - masks[np.arange(len(masks)), row, col + step]
  sigma = np.sqrt(-1.0 / (2.0 * np.log(neighbour))) / SIDE  # in units of the side
  assert np.all(masks[np.arange(len(masks)), row, col] < 1e-6)  # the centre is all partner
  assert stats.kstest(sigma, stats.uniform(0.25, 0.25).cdf).pvalue > 1e-3
  assert stats.kstest(sigma, stats.uniform(0.25, 0.275).cdf).pvalue < 1e-6


def test_smoothmix_centre_is_uniform_over_the_pixels(smooth_draws):
  centre = smooth_draws.reshape(len(smooth_draws), -1).argmin(-1)
  counts = np.bincount(centre, minlength=SIDE * SIDE)
  assert stats.chisquare(counts).pvalue > 1e-3
  assert stats.chisquare(counts[: SIDE * SIDE // 2]).pvalue > 1e-3  # no half of the grid favoured


def test_smoothmix_square_profile_has_square_level_sets():
  s = msda_jax.SmoothMix(profile="square").sample(jax.random.key(3), shape=(15, 15))
  m = np.asarray(s.mask)
  r, c = np.unravel_index(m.argmin(), m.shape)
  ring = [(r + dr, c + dc) for dr in range(-2, 3) for dc in range(-2, 3) if max(abs(dr), abs(dc)) == 2]
  values = [m[p] for p in ring if 0 <= p[0] < 15 and 0 <= p[1] < 15]
  np.testing.assert_allclose(values, values[0], rtol=1e-6)  # the max-norm ring of radius 2 is one level


def test_gridmix_masks_are_constant_per_cell_with_counts_in_range():
  method = msda_jax.GridMix(cells=(2, 4), aspect=1.0)
  keys = jax.random.split(jax.random.key(5), 600)
  masks = np.asarray(jax.jit(jax.vmap(lambda k: method.sample(k, shape=(12, 12), lam=0.5).mask))(keys))
  counts = []
  for m in masks:
    # Cells are the runs of equal rows (and columns) of the cell index: count the distinct cells
    # by the boundaries at which a random mask can change; check constancy inside every cell.
    for g in (2, 3, 4):
      edges = (np.arange(12) * g) // 12
      blocks = [m[np.ix_(edges == a, edges == b)] for a in range(g) for b in range(g)]
      if all(np.all(block == block.flat[0]) for block in blocks):
        counts.append(g)
        break
    else:
      raise AssertionError("a mask that is not constant on any allowed grid")
  observed = np.bincount(counts, minlength=5)[2:]
  # Two or three cells also fit the grids of four that happen to repeat: a lower bound per count.
  assert observed.sum() == 600 and np.all(observed > 100)
  kept = masks.mean()
  assert abs(kept - 0.5) < 0.03


def test_gridmix_aspect_sets_the_cells_of_the_other_axes():
  s = msda_jax.GridMix(cells=(3, 3), aspect=2.0).sample(jax.random.key(3), shape=(6, 12), lam=0.5)
  m = np.asarray(s.mask)
  assert np.all(m[0::2] == m[1::2])  # cells 2 rows high
  assert not np.all(m[:, 0::2] == m[:, 1::2])  # and 1 column wide (12 of them)


@pytest.mark.parametrize("kind", ["spatial", "temporal", "spatiotemporal"])
def test_videomix_cuboids_span_the_axes_they_do_not_cut(kind):
  shape, lam = (8, 6, 6), 0.6
  method = msda_jax.VideoMix(kind=kind, placement="inside")
  s = method.sample(jax.random.key(2), shape=shape, lam=lam)
  partner = np.asarray(s.mask) == 0.0
  t, h, w = (np.any(partner, axis=axes) for axes in ((1, 2), (0, 2), (0, 1)))
  cut = {"spatial": (1, 2), "temporal": (0,), "spatiotemporal": (0, 1, 2)}[kind]
  for axis, (extent, n) in enumerate(zip((t, h, w), shape, strict=True)):
    expected = int(np.floor((1 - lam) ** (1 / len(cut)) * n + 1e-9)) if axis in cut else n
    assert extent.sum() == expected, (kind, axis)
  assert float(s.weight) == pytest.approx(1.0 - partner.mean(), abs=1e-6)


def test_specmix_without_width_mixes_nothing():
  s = msda_jax.SpecMix(max_width=0.0).sample(jax.random.key(1), shape=(16, 8))
  assert float(s.weight) == 1.0 and bool(jnp.all(s.mask == 1.0))


X = jnp.ones((4, 8, 8, 3))
Y = jnp.arange(4)


@pytest.mark.parametrize(
  "build, pattern",
  [
    (lambda: msda_jax.SmoothMix(sigma_min=0.6, sigma_max=0.5), r"sigma_min must be <= sigma_max"),
    (lambda: msda_jax.SmoothMix(sigma_min=0.0), r"sigma_min must be > 0"),
    (lambda: msda_jax.SmoothMix(profile="star"), r"profile must be one of \('circle', 'square'\)"),
    (lambda: msda_jax.GridMix(cells=(3, 2)), r"cells must satisfy 1 <= low <= high"),
    (lambda: msda_jax.GridMix(cells=(0, 2)), r"cells must satisfy 1 <= low <= high"),
    (lambda: msda_jax.GridMix(cells=4), r"cells must be a pair \(low, high\) of ints"),
    (lambda: msda_jax.GridMix(cells=(2.0, 4)), r"cells must be a pair \(low, high\) of ints"),
    (lambda: msda_jax.GridMix(aspect=0.0), r"aspect must be > 0"),
    (lambda: msda_jax.SpecMix(max_width=1.5), r"max_width must lie in \[0.0, 1.0\]"),
    (lambda: msda_jax.SpecMix(bands=(2, 1)), r"bands must satisfy 0 <= low <= high and high >= 1"),
    (lambda: msda_jax.SpecMix(bands=(0, 0)), r"bands must satisfy 0 <= low <= high and high >= 1"),
    (lambda: msda_jax.VideoMix(kind="spacetime"), r"kind must be one of \('spatial', 'temporal', 'spatiotemporal'\)"),
    (lambda: msda_jax.from_string("gridmix(cells=(1, 2, 3))"), r"cells must be a pair"),
  ],
)
def test_bad_construction_names_the_argument(build, pattern):
  with pytest.raises(ValueError, match=pattern):
    build()


@pytest.mark.parametrize(
  "call, pattern",
  [
    (lambda: msda_jax.mix_batch(jax.random.key(0), X, Y, msda_jax.GridMix(cells=(2, 9)), num_classes=4),
     r"cells=\(2, 9\): up to 9 cells do not fit the first axis of 8 pixels"),
    (lambda: msda_jax.mix_batch(jax.random.key(0), X, Y, msda_jax.VideoMix(), num_classes=4),
     r"VideoMix mixes videos \[B, T, H, W, C\] \(spatial_ndim=3\); got 2 spatial axes"),
    (lambda: msda_jax.mix_batch(jax.random.key(0), X, Y, msda_jax.SmoothMix(), num_classes=4, lam=0.5),
     r"lam cannot be given to SmoothMix"),
    (lambda: msda_jax.mix_batch(jax.random.key(0), X, Y, msda_jax.SpecMix(), num_classes=4, lam=0.5),
     r"lam cannot be given to SpecMix"),
  ],
)  # fmt: skip
@pytest.mark.usefixtures("no_work")
def test_bad_input_raises_before_any_work(call, pattern):
  with pytest.raises(ValueError, match=pattern):
    call()
