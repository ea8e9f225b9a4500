"""The iterative labeling solver's energy gap to the exact optimum, and the greedy transport's to the assignment.

    python -m benchmarks.labeling_gap [--instances 200] [--couplings 1 4 16]
        [--grids 8 16] [--grid-instances 100] [--transport-grids 4 8 16] [--transport-instances 100]

Labeling instances have the form and scale of PuzzleMix's energy (two normalised saliency maps,
the binomial prior with eta 0.2, edge weights 1.2 / (16 b) times ``coupling``). Three sections:

* 4 x 4 grids (seed 1): the gap to the row DP (``solve_rows``), energies in float32 (``grid_energy``);
* each of ``--grids`` (seed 2): the gap to the min-cut optimum (``benchmarks/ishikawa.py``),
  energies in float64;
* transport (seed 3): the greedy plan of ``_transport`` on ``t x t`` patches against the exact
  assignment of the same float32 cost (``scipy.optimize.linear_sum_assignment``), and every plan
  against the best partial one (at most one 1 per row and column, as the greedy plans); saliency
  gamma(0.5) normalised to sum 1, kept places Bernoulli(0.5), eps 0.8.

Prints the mean and worst relative gap and how often the fast method is optimal (gap <= 1e-6).
An empty ``--grids`` or ``--transport-grids`` skips that section.
"""

from __future__ import annotations

import argparse
import functools

import jax
import numpy as np
from scipy.optimize import linear_sum_assignment

from benchmarks import ishikawa
from msda_jax.masks import _labeling, _transport

LEVELS = _labeling.labeling_levels(3)
EPS = 0.8


def instance(rng: np.random.Generator, b: int, coupling: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """``(unary [b, b, 3], vertical [b - 1, b], horizontal [b, b - 1])`` float32, PuzzleMix's form and scale."""
  s1, s2 = (rng.gamma(0.5, size=(b, b)) for _ in range(2))
  s1, s2 = s1 / s1.sum(), s2 / s2.sum()
  prior = np.asarray(_labeling.binomial_prior(rng.uniform(0.05, 0.95), 3)) * 0.2 / b**2
  unary = LEVELS * s2[..., None] + (1 - LEVELS) * s1[..., None] + prior
  scale = coupling * 1.2 / (16 * b)
  vertical = scale * rng.uniform(0.5, 1.5, (b - 1, b))
  horizontal = scale * rng.uniform(0.5, 1.5, (b, b - 1))
  return unary.astype(np.float32), vertical.astype(np.float32), horizontal.astype(np.float32)


def energy64(labels: np.ndarray, unary: np.ndarray, vertical: np.ndarray, horizontal: np.ndarray) -> np.ndarray:
  """float64 ``[B]`` energies of int ``labels [B, b, b]`` for ``unary [B, b, b, 3]`` and the weights."""
  m = LEVELS.astype(np.float64)[labels]
  own = np.take_along_axis(unary.astype(np.float64), labels[..., None], axis=-1).sum(axis=(1, 2, 3))
  down = (vertical * (m[:, 1:] - m[:, :-1]) ** 2).sum(axis=(1, 2))
  right = (horizontal * (m[:, :, 1:] - m[:, :, :-1]) ** 2).sum(axis=(1, 2))
  return own + down + right


def summary(gap: np.ndarray) -> str:
  return f"mean gap {gap.mean():.2e}, worst {gap.max():.2e}, optimal in {100 * np.mean(gap <= 1e-6):.0f} %"


def row_dp_section(instances: int, couplings: list[float]) -> None:
  """4 x 4 grids, seed 1: ``solve_iterative`` against ``solve_rows``."""
  rng = np.random.default_rng(1)
  energy = jax.jit(jax.vmap(_labeling.grid_energy, in_axes=(0, 0, 0, 0, None)))
  exact = jax.jit(jax.vmap(_labeling.solve_rows, in_axes=(0, 0, 0, None)))
  iterative = jax.jit(jax.vmap(_labeling.solve_iterative, in_axes=(0, 0, 0, None)))
  for coupling in couplings:
    u, v, h = (np.stack(parts) for parts in zip(*(instance(rng, 4, coupling) for _ in range(instances)), strict=True))
    best = np.asarray(energy(exact(u, v, h, LEVELS), u, v, h, LEVELS), np.float64)
    found = np.asarray(energy(iterative(u, v, h, LEVELS), u, v, h, LEVELS), np.float64)
    gap = (found - best) / np.abs(best)
    print(f"coupling x{coupling:g}: {instances} 4 x 4 instances, {summary(gap)}")


def min_cut_section(grids: list[int], instances: int, couplings: list[float]) -> None:
  """Each grid, seed 2: ``solve_iterative`` against the min-cut optimum, energies in float64."""
  rng = np.random.default_rng(2)
  iterative = jax.jit(jax.vmap(_labeling.solve_iterative, in_axes=(0, 0, 0, None)))
  for b in grids:
    for coupling in couplings:
      u, v, h = (np.stack(parts) for parts in zip(*(instance(rng, b, coupling) for _ in range(instances)), strict=True))
      cut = np.stack([ishikawa.solve_mincut(u[i], v[i], h[i], LEVELS) for i in range(instances)])
      best = energy64(cut, u, v, h)
      found = energy64(np.asarray(iterative(u, v, h, LEVELS)), u, v, h)
      gap = (found - best) / np.abs(best)
      print(
        f"coupling x{coupling:g}: {instances} {b} x {b} instances against the min cut, {summary(gap)}, "
        f"least {gap.min():.1e}"
      )


@functools.cache
def greedy(t: int):
  """jitted ``(saliency [B, N], kept [B, N]) -> (cost [B, N, N], plan [B, N, N])`` of ``_transport``."""

  def one(saliency: jax.Array, kept: jax.Array) -> tuple[jax.Array, jax.Array]:
    cost = _transport.transport_cost(saliency, kept, t=t, eps=EPS)
    return cost, _transport.plan_from_cost(cost, t=t)

  return jax.jit(jax.vmap(one))


def transport_section(grids: list[int], instances: int) -> None:
  """Each grid, seed 3: the greedy plan against ``linear_sum_assignment`` on the same float32 cost."""
  rng = np.random.default_rng(3)
  for t in grids:
    n = t * t
    saliency = rng.gamma(0.5, size=(instances, n))
    saliency = (saliency / saliency.sum(axis=1, keepdims=True)).astype(np.float32)
    kept = (rng.uniform(size=(instances, n)) < 0.5).astype(np.float32)
    cost, plan = (np.asarray(x, np.float64) for x in greedy(t)(saliency, kept))
    objective = np.sum(plan * cost, axis=(1, 2))
    optimum, partial = np.empty(instances), np.empty(instances)
    for i in range(instances):
      rows, cols = linear_sum_assignment(cost[i])
      optimum[i] = cost[i][rows, cols].sum()
      # The best plan with at most one 1 per row and column: a permutation that skips its positive costs.
      rows, cols = linear_sum_assignment(np.minimum(cost[i], 0.0))
      partial[i] = np.minimum(cost[i][rows, cols], 0.0).sum()
    full = np.all(plan.sum(axis=1) == 1, axis=1) & np.all(plan.sum(axis=2) == 1, axis=1)
    gap = (objective - optimum) / np.maximum(np.abs(optimum), 1e-30)
    unplaced = n - plan.sum(axis=(1, 2))
    line = f"transport t={t} (N={n}): {instances} instances, full permutations {100 * full.mean():.0f} %"
    if full.any():
      line += f"; those: {summary(gap[full])}"
    print(line)
    print(
      f"  every plan: objective - optimum over |optimum| mean {gap.mean():.2e}, worst {gap.max():.2e}, "
      f"least {gap.min():.2e}, below the optimum in {100 * np.mean(gap < -1e-6):.0f} % "
      f"(patches dropped: mean {unplaced.mean():.2f}, most {unplaced.max():.0f})"
    )
    above = (objective - partial) / np.maximum(np.abs(partial), 1e-30)
    print(f"  every plan against the best plan with at most one 1 per row and column: {summary(above)}")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--instances", type=int, default=200)
  parser.add_argument("--couplings", type=float, nargs="+", default=[1.0, 4.0, 16.0])
  parser.add_argument("--grids", type=int, nargs="*", default=[8, 16])
  parser.add_argument("--grid-instances", type=int, default=100)
  parser.add_argument("--transport-grids", type=int, nargs="*", default=[4, 8, 16])
  parser.add_argument("--transport-instances", type=int, default=100)
  args = parser.parse_args()
  row_dp_section(args.instances, args.couplings)
  min_cut_section(args.grids, args.grid_instances, args.couplings)
  transport_section(args.transport_grids, args.transport_instances)


if __name__ == "__main__":
  main()
