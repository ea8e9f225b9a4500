"""The min-cut reference solver (``benchmarks/ishikawa.py``) against enumeration and the row DP.

Instances are either of the labeling benchmark's form (PuzzleMix-like, 3 labels, couplings x1, x4
and x16 in turn) or generic: uniform unary costs in ``[0, 1)`` and uniform edge weights in
``[0, s)``, ``s`` in turn 0.3, 3 and 30 (from mostly free to mostly constant labelings).
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import ishikawa
from benchmarks.labeling_gap import instance as puzzle_instance
from msda_jax.masks import _labeling

SPREADS = (0.3, 3.0, 30.0)
COUPLINGS = (1.0, 4.0, 16.0)


def generic_instance(rng, b, n, spread):
  unary = rng.uniform(size=(b, b, n)).astype(np.float32)
  vertical = rng.uniform(0.0, spread, (b - 1, b)).astype(np.float32)
  horizontal = rng.uniform(0.0, spread, (b, b - 1)).astype(np.float32)
  return unary, vertical, horizontal


def instances(rng, b, n, count):
  """``count`` instances: for 3 labels, alternately of the benchmark's form and generic."""
  out = []
  for i in range(count):
    if n == 3 and i % 2 == 0:
      out.append(puzzle_instance(rng, b, COUPLINGS[(i // 2) % 3]))
    else:
      out.append(generic_instance(rng, b, n, SPREADS[i % 3]))
  return out


def energy(labels, u, v, h, levels):
  return float(_labeling.grid_energy(jnp.asarray(labels, jnp.int32), u, v, h, levels))


@pytest.mark.parametrize(("b", "n"), [(2, 2), (2, 3), (2, 4), (3, 3)])
def test_the_min_cut_reaches_the_minimum_of_every_labeling(b, n):
  """seed 0, 20 instances per case: the min-cut energy is the least over all ``n^(b^2)`` labelings (1e-5 relative)."""
  rng = np.random.default_rng(0)
  levels = _labeling.labeling_levels(n)
  table = jnp.asarray(list(itertools.product(range(n), repeat=b * b)), jnp.int32).reshape(-1, b, b)
  every = jax.jit(jax.vmap(_labeling.grid_energy, in_axes=(0, None, None, None, None)))
  for u, v, h in instances(rng, b, n, 20):
    labels = ishikawa.solve_mincut(u, v, h, levels)
    assert labels.shape == (b, b) and np.issubdtype(labels.dtype, np.integer)
    assert labels.min() >= 0 and labels.max() < n
    best = float(jnp.min(every(table, u, v, h, levels)))
    assert energy(labels, u, v, h, levels) == pytest.approx(best, rel=1e-5)


def test_uneven_monotone_levels_reach_the_minimum_of_every_labeling():
  """seed 3, 20 2 x 2 instances with 4 random decreasing levels: the leftover unary terms are right too."""
  rng = np.random.default_rng(3)
  table = jnp.asarray(list(itertools.product(range(4), repeat=4)), jnp.int32).reshape(-1, 2, 2)
  every = jax.jit(jax.vmap(_labeling.grid_energy, in_axes=(0, None, None, None, None)))
  for i in range(20):
    levels = np.sort(rng.uniform(size=4))[::-1].astype(np.float32)
    u, v, h = generic_instance(rng, 2, 4, SPREADS[i % 3])
    labels = ishikawa.solve_mincut(u, v, h, levels)
    best = float(jnp.min(every(table, u, v, h, levels)))
    assert energy(labels, u, v, h, levels) == pytest.approx(best, rel=1e-5)


def test_the_min_cut_matches_the_row_dp_on_4x4():
  """seed 1, 20 4 x 4 instances with 3 labels: the same minimum energy as ``solve_rows`` (1e-5 relative)."""
  rng = np.random.default_rng(1)
  levels = _labeling.labeling_levels(3)
  rows = jax.jit(_labeling.solve_rows)
  for u, v, h in instances(rng, 4, 3, 20):
    exact = energy(rows(u, v, h, levels), u, v, h, levels)
    assert energy(ishikawa.solve_mincut(u, v, h, levels), u, v, h, levels) == pytest.approx(exact, rel=1e-5)


def test_the_cut_of_a_labeling_is_its_energy_up_to_a_constant():
  """seed 2, 5 random 3 x 3 instances per label count, 20 random labelings each: ``E(l) = cut(l) + constant``."""
  rng = np.random.default_rng(2)
  for n in (2, 3, 4):
    levels = _labeling.labeling_levels(n)
    for u, v, h in instances(rng, 3, n, 5):
      capacity, constant = ishikawa.build_graph(u, v, h, levels)
      assert np.all(capacity.data >= 0)
      for _ in range(20):
        labels = rng.integers(0, n, (3, 3))
        m = levels.astype(np.float64)[labels]
        direct = (
          np.take_along_axis(u.astype(np.float64), labels[..., None], axis=-1).sum()
          + (v * (m[1:] - m[:-1]) ** 2).sum()
          + (h * (m[:, 1:] - m[:, :-1]) ** 2).sum()
        )
        assert ishikawa.cut_value(capacity, labels, n) + constant == pytest.approx(direct, rel=1e-9, abs=1e-12)


def test_the_min_cut_is_never_beaten_by_the_iterative_solver_on_16x16():
  """seed 4, 6 16 x 16 instances of the benchmark's form: no higher energy than ``solve_iterative`` (1e-6)."""
  rng = np.random.default_rng(4)
  levels = _labeling.labeling_levels(3)
  iterative = jax.jit(_labeling.solve_iterative)
  for i in range(6):
    u, v, h = puzzle_instance(rng, 16, COUPLINGS[i % 3])
    found = energy(iterative(u, v, h, levels), u, v, h, levels)
    assert energy(ishikawa.solve_mincut(u, v, h, levels), u, v, h, levels) <= found * (1 + 1e-6)


def test_weights_and_levels_are_checked():
  u, v, h = generic_instance(np.random.default_rng(0), 2, 3, 1.0)
  with pytest.raises(ValueError, match="non-negative"):
    ishikawa.solve_mincut(u, -v, h, _labeling.labeling_levels(3))
  with pytest.raises(ValueError, match="monotone"):
    ishikawa.solve_mincut(u, v, h, np.array([1.0, 0.0, 0.5]))
