"""The iterative labeling solver's energy gap to the exact optimum (row DP) on 4 x 4 grids.

    python -m benchmarks.labeling_gap [--instances 200] [--couplings 1 4 16]

Instances have the form and scale of PuzzleMix's energy (two normalised saliency maps, the
binomial prior with eta 0.2, edge weights 1.2 / (16 b) times ``coupling``), drawn from seed 1.
Prints the mean and worst relative gap and how often the iterative solver is optimal.
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from msda_jax.masks import _labeling

LEVELS = _labeling.labeling_levels(3)


def instance(rng: np.random.Generator, b: int, coupling: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  s1, s2 = (rng.gamma(0.5, size=(b, b)) for _ in range(2))
  s1, s2 = s1 / s1.sum(), s2 / s2.sum()
  prior = np.asarray(_labeling.binomial_prior(rng.uniform(0.05, 0.95), 3)) * 0.2 / b**2
  unary = LEVELS * s2[..., None] + (1 - LEVELS) * s1[..., None] + prior
  scale = coupling * 1.2 / (16 * b)
  vertical = scale * rng.uniform(0.5, 1.5, (b - 1, b))
  horizontal = scale * rng.uniform(0.5, 1.5, (b, b - 1))
  return unary.astype(np.float32), vertical.astype(np.float32), horizontal.astype(np.float32)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--instances", type=int, default=200)
  parser.add_argument("--couplings", type=float, nargs="+", default=[1.0, 4.0, 16.0])
  args = parser.parse_args()
  rng = np.random.default_rng(1)
  energy = jax.jit(jax.vmap(_labeling.grid_energy, in_axes=(0, 0, 0, 0, None)))
  exact = jax.jit(jax.vmap(_labeling.solve_rows, in_axes=(0, 0, 0, None)))
  iterative = jax.jit(jax.vmap(_labeling.solve_iterative, in_axes=(0, 0, 0, None)))
  for coupling in args.couplings:
    u, v, h = (
      np.stack(parts) for parts in zip(*(instance(rng, 4, coupling) for _ in range(args.instances)), strict=True)
    )
    best = np.asarray(energy(exact(u, v, h, LEVELS), u, v, h, LEVELS), np.float64)
    found = np.asarray(energy(iterative(u, v, h, LEVELS), u, v, h, LEVELS), np.float64)
    gap = (found - best) / np.abs(best)
    print(
      f"coupling x{coupling:g}: {args.instances} 4 x 4 instances, mean gap {gap.mean():.2e}, "
      f"worst {gap.max():.2e}, optimal in {100 * np.mean(gap <= 1e-6):.0f} %"
    )


if __name__ == "__main__":
  main()
