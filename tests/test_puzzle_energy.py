"""PuzzleMix's energy: on binary labelings it equals the per-edge table of boundary costs, up to a constant."""

import itertools

import jax
import numpy as np
import pytest

from msda_jax.masks import _labeling, _puzzle_energy

LEVELS = _labeling.labeling_levels(3)


def table_energy(labels, s1, s2, x1, x2, lam, b, beta=1.2, gamma=0.5, eta=0.2, neigh=4):
  """The energy before its rewriting, in numpy loops: saliency lost, prior, and each edge's own cost.

  A block with mask 1 takes the image (loses the partner's saliency), 0 the partner.
  """
  h = x1.shape[0]
  block = h // b
  pool = min(neigh, block)
  k = block // pool

  def pooled(x):
    g = h // pool
    return x.reshape(g, pool, g, pool, -1).mean(axis=(1, 3))

  def norm(s):
    p = s.reshape(b, block, b, block).mean(axis=(1, 3))
    return p / p.sum()

  p = {1: pooled(x1), 0: pooled(x2)}
  n1, n2 = norm(s1), norm(s2)
  scale = beta / (16 * b)
  m = LEVELS.astype(np.float64)[labels]
  prior = eta / b**2 * np.asarray(_labeling.binomial_prior(lam, 3), np.float64)
  total = sum(m[r, c] * n2[r, c] + (1 - m[r, c]) * n1[r, c] + prior[labels[r, c]] for r in range(b) for c in range(b))
  for r in range(b - 1):  # the edge between block rows r and r + 1
    for c in range(b):
      a, d = int(m[r, c]), int(m[r + 1, c])
      upper, lower = p[a][(r + 1) * k - 1, c * k : (c + 1) * k], p[d][(r + 1) * k, c * k : (c + 1) * k]
      total += scale * gamma * np.abs(upper - lower).mean() + scale * (m[r, c] - m[r + 1, c]) ** 2
  for r in range(b):
    for c in range(b - 1):
      a, d = int(m[r, c]), int(m[r, c + 1])
      left, right = p[a][r * k : (r + 1) * k, (c + 1) * k - 1], p[d][r * k : (r + 1) * k, (c + 1) * k]
      total += scale * gamma * np.abs(left - right).mean() + scale * (m[r, c] - m[r, c + 1]) ** 2
  return total


@pytest.mark.parametrize(("b", "side"), [(2, 32), (3, 24), (2, 8)])
def test_the_rewritten_energy_is_the_table_energy_on_binary_labelings(b, side):
  """seed 0: every binary labeling of the grid (mask 1 or 0 per block): the difference is one constant (1e-6)."""
  rng = np.random.default_rng(0)
  s1, s2 = rng.gamma(0.5, size=(2, side, side))
  x1, x2 = rng.uniform(size=(2, side, side, 3))
  lam = 0.37
  unary, vertical, horizontal = _puzzle_energy.puzzle_energy(s1, s2, x1, x2, lam, b=b)
  assert unary.shape == (b, b, 3) and vertical.shape == (b - 1, b) and horizontal.shape == (b, b - 1)
  differences = []
  for bits in itertools.product((0, 2), repeat=b * b):  # labels 0 (mask 1) and 2 (mask 0)
    labels = np.asarray(bits).reshape(b, b)
    rewritten = float(_labeling.grid_energy(labels, unary, vertical, horizontal, LEVELS))
    differences.append(rewritten - table_energy(labels, s1, s2, x1, x2, lam, b))
  assert np.ptp(differences) < 1e-6, np.ptp(differences)


def test_zero_saliency_is_uniform_and_bad_sides_raise():
  np.testing.assert_allclose(np.asarray(_puzzle_energy.block_saliency(np.zeros((8, 8)), 2)), 0.25)
  with pytest.raises(ValueError, match=r"multiple of b=3"):
    _puzzle_energy.puzzle_energy(np.ones((8, 8)), np.ones((8, 8)), np.ones((8, 8, 3)), np.ones((8, 8, 3)), 0.5, b=3)


@pytest.mark.parametrize("b", [2, 4, 8])
def test_solve_labels_picks_an_exact_solver_where_it_can(b):
  """seed 3, 32 x 32 pairs: for b = 2 the labels reach the minimum over every labeling; shapes for all."""
  rng = np.random.default_rng(3)
  s1, s2 = rng.gamma(0.5, size=(2, 32, 32))
  x1, x2 = rng.uniform(size=(2, 32, 32, 3))
  unary, vertical, horizontal = _puzzle_energy.puzzle_energy(s1, s2, x1, x2, 0.6, b=b)
  labels = np.asarray(_puzzle_energy.solve_labels(unary, vertical, horizontal, np.asarray(LEVELS)))
  assert labels.shape == (b, b) and set(np.unique(labels)) <= {0, 1, 2}
  if b == 2:
    best = min(
      float(_labeling.grid_energy(np.asarray(bits).reshape(2, 2), unary, vertical, horizontal, LEVELS))
      for bits in itertools.product(range(3), repeat=4)
    )
    assert float(_labeling.grid_energy(labels, unary, vertical, horizontal, LEVELS)) == pytest.approx(best, abs=1e-7)


@pytest.mark.parametrize("b", [2, 4, 8, 16])
def test_mix_pair_mixes_by_its_mask_and_reports_its_mean(b):
  """seed 4, 32 x 32: mask values in {0, 1/2, 1} constant on blocks, weight its mean; without
  transport the images are mixed as they are, with it every mixed pixel of a kept block is a pixel
  of the image (patches only move)."""
  rng = np.random.default_rng(4)
  s1, s2 = rng.gamma(0.5, size=(2, 32, 32))
  x1, x2 = rng.uniform(size=(2, 32, 32, 3)).astype(np.float32)
  mixed, mask, weight = map(np.asarray, _puzzle_energy.mix_pair(x1, x2, s1, s2, 0.5, b=b, transport=False))
  assert set(np.unique(mask)) <= {0.0, 0.5, 1.0} and mask.shape == (32, 32)
  blocks = mask.reshape(b, 32 // b, b, 32 // b)
  assert (blocks == blocks[:, :1, :, :1]).all()
  assert float(weight) == pytest.approx(mask.mean())
  np.testing.assert_allclose(mixed, mask[..., None] * x1 + (1 - mask[..., None]) * x2, atol=1e-6)
  moved, mask_t, _ = map(np.asarray, _puzzle_energy.mix_pair(x1, x2, s1, s2, 0.5, b=b))
  np.testing.assert_array_equal(mask_t, mask)  # transport moves patches, never the mask
  full = mask == 1.0
  pixels = {tuple(p) for p in np.round(x1.reshape(-1, 3), 6)}  # a place no patch won keeps its own
  assert all(tuple(p) in pixels for p in np.round(moved[full], 6))


def test_window_is_the_divisor_nearest_the_size():
  """min(size, block) for the reference's powers of two; otherwise the nearest divisor, ties up."""
  assert [_puzzle_energy.window(block, 4) for block in (16, 8, 4, 2)] == [4, 4, 4, 2]
  assert _puzzle_energy.window(7, 4) == 7 and _puzzle_energy.window(14, 4) == 2 and _puzzle_energy.window(9, 4) == 3
  assert _puzzle_energy.window(12, -1) == 12 and _puzzle_energy.window(6, 100) == 6


def test_energy_terms_are_independent_references_and_sum_to_what_the_solver_reads():
  """seed 5, a 16 x 16 pair at b = 4 and b = 2 (lam 0.3, eta 0.4): the saliency term is the pooled,
  normalised saliency (numpy), the prior scipy's binomial, the three terms sum to the unary cost
  (1e-6); unary and edge weights are ``puzzle_energy``'s (rtol 1e-6); the labels are the mask
  ``sample`` makes, and at b = 2 the minimum over all 81 labelings."""
  from scipy.stats import binom

  import msda_jax
  from msda_jax.masks import PairData

  rng = np.random.default_rng(5)
  s1, s2 = rng.gamma(0.5, size=(2, 16, 16))
  x1, x2 = rng.uniform(size=(2, 16, 16, 3)).astype(np.float32)
  data, lam = PairData(x1, x2, s1, s2), 0.3
  method = msda_jax.PuzzleMix(eta=0.4, transport=False)
  for b in (4, 2):
    e = method.energy(data, lam, grid_size=b)
    unary, vertical, horizontal = _puzzle_energy.puzzle_energy(s1, s2, x1, x2, lam, b=b, eta=0.4)
    for got, want in ((e.unary, unary), (e.vertical, vertical), (e.horizontal, horizontal)):
      # One compiled program against primitives one by one: equal up to float32 rounding.
      np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=0)
    side = 16 // b
    n1, n2 = (p / p.sum() for p in (s.reshape(b, side, b, side).mean(axis=(1, 3)) for s in (s1, s2)))
    lost = LEVELS * n2[..., None] + (1 - LEVELS) * n1[..., None]  # mask 1 loses the partner's
    np.testing.assert_allclose(np.asarray(e.saliency), lost, atol=1e-6)
    prior = 0.4 / b**2 * -np.log(binom.pmf(2 - np.arange(3), 2, lam) + 1e-8)
    np.testing.assert_allclose(np.asarray(e.prior), np.broadcast_to(prior, (b, b, 3)), rtol=1e-5)
    assert np.abs(np.asarray(e.boundary)).max() > 0  # random images make boundaries cost something
    np.testing.assert_allclose(np.asarray(e.saliency + e.boundary + e.prior), np.asarray(e.unary), atol=1e-6)
    mask = method.replace(grid_sizes=(b,)).sample(jax.random.key(0), shape=(16, 16), lam=lam, data=data).mask
    blocks = LEVELS[np.asarray(e.labels)]
    np.testing.assert_array_equal(np.asarray(mask), np.repeat(np.repeat(blocks, side, 0), side, 1))
  every = np.asarray(list(itertools.product(range(3), repeat=4))).reshape(-1, 2, 2)
  energies = np.asarray(jax.vmap(e.energy)(every))
  assert float(e.energy(e.labels)) == pytest.approx(energies.min(), abs=1e-7)


def test_energy_rejects_a_grid_that_does_not_divide_the_side_and_batches():
  import msda_jax
  from msda_jax.masks import PairData

  x, s = np.zeros((12, 12, 1), np.float32), np.ones((12, 12))
  with pytest.raises(ValueError, match=r"grid_size must divide the image side 12; got 8"):
    msda_jax.PuzzleMix().energy(PairData(x, x, s, s), 0.5, grid_size=8)
  with pytest.raises(ValueError, match=r"data must hold one pair"):
    msda_jax.PuzzleMix().energy(PairData(x[None], x[None], s[None], s[None]), 0.5, grid_size=2)
  with pytest.raises(ValueError, match=r"grid_size must be an int >= 2; got 1"):
    msda_jax.PuzzleMix().energy(PairData(x, x, s, s), 0.5, grid_size=1)
