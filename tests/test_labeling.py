"""The grid labeling solvers against an independent enumeration of every labeling.

Instances are PuzzleMix-like: unary costs of two normalised saliency maps plus the binomial
prior, positive edge weights of the reference's scale, 3 labels (mask values 1, 1/2, 0).
"""

import itertools

import jax
import numpy as np
import pytest

from msda_jax.masks import _labeling

LEVELS = _labeling.labeling_levels(3)


def instance(rng, b, coupling=1.0):
  """``(unary [b, b, 3], vertical [b-1, b], horizontal [b, b-1])`` of the reference's form and scale."""
  s1, s2 = (rng.gamma(0.5, size=(b, b)) for _ in range(2))
  s1, s2 = s1 / s1.sum(), s2 / s2.sum()
  lam = rng.uniform(0.05, 0.95)
  prior = np.asarray(_labeling.binomial_prior(lam, 3)) * 0.2 / b**2
  unary = LEVELS * s2[..., None] + (1 - LEVELS) * s1[..., None] + prior
  scale = coupling * 1.2 / (16 * b)
  vertical = scale * rng.uniform(0.5, 1.5, (b - 1, b))
  horizontal = scale * rng.uniform(0.5, 1.5, (b, b - 1))
  return unary.astype(np.float32), vertical.astype(np.float32), horizontal.astype(np.float32)


def energy_np(labels, unary, vertical, horizontal):
  """The energy in float64 numpy, written apart from the library's."""
  m = LEVELS.astype(np.float64)[labels]
  own = sum(unary[r, c, labels[r, c]] for r in range(labels.shape[0]) for c in range(labels.shape[1]))
  return own + (vertical * (m[1:] - m[:-1]) ** 2).sum() + (horizontal * (m[:, 1:] - m[:, :-1]) ** 2).sum()


def brute_force(unary, vertical, horizontal):
  b = unary.shape[0]
  best = min(
    (energy_np(np.asarray(lab).reshape(b, b), unary, vertical, horizontal), lab)
    for lab in itertools.product(range(3), repeat=b * b)
  )
  return best[0]


@pytest.mark.parametrize("b", [2, 3])
def test_exact_solvers_reach_the_minimum_of_every_labeling(b):
  """seed 0, 6 instances each: enumeration and the row DP give the brute-force minimum energy (1e-6)."""
  rng = np.random.default_rng(0)
  exhaustive, rows = jax.jit(_labeling.solve_exhaustive), jax.jit(_labeling.solve_rows)
  for _ in range(6):
    u, v, h = instance(rng, b)
    best = brute_force(u, v, h)
    for solve in (exhaustive, rows):
      labels = np.asarray(solve(u, v, h, LEVELS))
      assert labels.shape == (b, b) and labels.dtype == np.int32
      assert energy_np(labels, u, v, h) == pytest.approx(best, abs=1e-6)
      assert float(_labeling.grid_energy(labels, u, v, h, LEVELS)) == pytest.approx(best, abs=1e-6)


def test_the_row_dp_beats_or_ties_the_iterative_solver_and_the_gap_is_small():
  """seed 1, 50 4 x 4 instances at the reference's coupling and at 4x it: the exact DP is never worse.

  The iterative solver's relative gap to the optimum, measured here: mean and worst below 1 % and
  5 % (the reference's own solver, an alpha-beta swap, is a local minimum too).
  """
  rng = np.random.default_rng(1)
  rows = jax.jit(jax.vmap(_labeling.solve_rows, in_axes=(0, 0, 0, None)))
  iterative = jax.jit(jax.vmap(_labeling.solve_iterative, in_axes=(0, 0, 0, None)))
  gaps = []
  for coupling in (1.0, 4.0):
    u, v, h = map(np.stack, zip(*(instance(rng, 4, coupling) for _ in range(50)), strict=True))
    exact, approx = np.asarray(rows(u, v, h, LEVELS)), np.asarray(iterative(u, v, h, LEVELS))
    for i in range(50):
      e_exact, e_approx = energy_np(exact[i], u[i], v[i], h[i]), energy_np(approx[i], u[i], v[i], h[i])
      assert e_exact <= e_approx + 1e-6
      gaps.append((e_approx - e_exact) / abs(e_exact))
  gaps = np.asarray(gaps)
  assert gaps.mean() < 0.01 and gaps.max() < 0.05, (gaps.mean(), gaps.max())


def test_iterative_sweeps_never_raise_the_energy_on_large_grids():
  """seed 2, 16 x 16: the labels after the sweeps have at most the energy of the BP labels alone."""
  rng = np.random.default_rng(2)
  u, v, h = instance(rng, 16)
  bp_only = _labeling.solve_iterative(u, v, h, LEVELS, sweeps=0)
  polished = _labeling.solve_iterative(u, v, h, LEVELS, sweeps=4)
  assert energy_np(np.asarray(polished), u, v, h) <= energy_np(np.asarray(bp_only), u, v, h) + 1e-7


def test_too_large_for_the_exact_solvers_raises():
  u, v, h = instance(np.random.default_rng(0), 6)
  with pytest.raises(ValueError, match=r"solve_exhaustive tries n\^\(b\^2\) labelings"):
    _labeling.solve_exhaustive(u, v, h, LEVELS)
  with pytest.raises(ValueError, match=r"solve_rows has n\^b states per row"):
    _labeling.solve_rows(u, v, h, LEVELS)


def test_binomial_prior_and_levels():
  np.testing.assert_allclose(_labeling.labeling_levels(3), [1.0, 0.5, 0.0])
  prior = np.asarray(_labeling.binomial_prior(0.25, 3))
  np.testing.assert_allclose(prior, -np.log(np.array([0.0625, 0.375, 0.5625]) + 1e-8), rtol=1e-6)
  with pytest.raises(ValueError, match=r"n_labels must be an int >= 2"):
    _labeling.labeling_levels(1)
