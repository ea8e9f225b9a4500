"""Figure 4's maps, designed: bounded mask laws fitted to target ``a_jk`` by ``theory.design_mask_law``.

Two targets at ``lam = 0.5`` on an ``n x n`` grid (default 16):

* a known mixture, 0.3 Mixup + 0.7 CutMix, given as its translation map ``E_i a_{i, i+p}``:
  the designer must find those weights back (residual at rounding);
* a profile between Mixup (flat in ``p``) and CutMix (local): the stationary matrix
  ``a_jk = (1 - lam)^2 + c lam (1 - lam) exp(-|j - k|^2 / (2 s^2))`` (``s = n / 5``, ``c = 0.2``:
  Mixup's far value, a local bump of CutMix's height), fitted over the default grid of library
  families; Theorem 2 realises it exactly (its PSD condition holds: a Gaussian kernel) with
  masks that leave [0, 1], the designer with a residual and masks in [0, 1].

Top row: target maps; middle row: fitted maps; bottom: the ``p = (x, 0)`` profiles beside
Mixup's and CutMix's. The numbers (weights, residuals, Theorem 2's share of mask values
outside [0, 1]) are printed and written next to the PNG.

    python -m theory.figure4_design --out outputs/figure4_design.png
"""

from __future__ import annotations

import pathlib
import sys
import textwrap
import time

import jax
import numpy as np

from msda_jax import theory
from msda_jax.theory import design, translation
from theory._output import figure_parser, save_figure, save_numbers


def gaussian_target(lam: float, shape: tuple[int, int], width: float, height: float = 0.2) -> np.ndarray:
  """The stationary ``a_jk`` between Mixup and CutMix (module docstring), ``[d, d]``."""
  rows, cols = np.unravel_index(np.arange(shape[0] * shape[1]), shape)
  distance2 = (rows[:, None] - rows[None]) ** 2 + (cols[:, None] - cols[None]) ** 2
  return (1 - lam) ** 2 + height * lam * (1 - lam) * np.exp(-distance2 / (2 * width**2))


def theorem2_outside(target: np.ndarray, lam: float, shape: tuple[int, int], draws: int, seed: int) -> dict:
  """Theorem 2's masks for ``target``: the share of values outside [0, 1] and their range."""
  keys = jax.random.split(jax.random.key(seed), draws)
  masks = np.asarray(jax.vmap(lambda k: theory.theorem2_mask(k, target, lam, shape=shape))(keys))
  check = theory.theorem2_check(jax.random.key(seed + 1), target, lam, shape=shape, num_draws=draws)
  return {
    "share_outside_0_1": float(np.mean((masks < 0) | (masks > 1))),
    "min": float(masks.min()),
    "max": float(masks.max()),
    "max_abs_error_of_a": float(check.max_abs_error),
    "standard_error": float(check.standard_error),
  }


def run(lam: float, size: int, draws: int, seed: int) -> dict:
  shape = (size, size)
  grid = design.default_candidates()
  names = [repr(m) for m in grid]
  single = {name: design.candidate_coefficients(m, shape=shape, lam=lam) for name, m in zip(names, grid, strict=True)}
  as_map = lambda a: np.asarray(translation.matrix_translation_map(a, shape=shape), np.float64)
  known = 0.3 * single[names[0]] + 0.7 * single[names[2]]
  between = gaussian_target(lam, shape, size / 5)
  results = {}
  for label, target, fit_map in (("known mixture", as_map(known), True), ("between", between, False)):
    fitted = theory.design_mask_law(target, grid, shape=shape, lam=lam)
    target_map = target if fit_map else as_map(target)
    fitted_map = fitted.fitted if fit_map else as_map(fitted.fitted)
    singles = {
      n: float(np.linalg.norm(row - target.reshape(-1))) for n, row in zip(names, fitted.features, strict=True)
    }
    results[label] = {
      "target": "translation map" if fit_map else "full a_jk",
      "weights": {n: round(float(w), 6) for n, w in zip(names, fitted.weights, strict=True) if w > 1e-6},
      "residual": fitted.residual,
      "relative_residual": fitted.relative_residual,
      "best_single": min(singles, key=singles.get),
      "best_single_residual": min(singles.values()),
      "target_map": target_map,
      "fitted_map": fitted_map,
    }
  results["between"]["theorem2"] = theorem2_outside(between, lam, shape, draws, seed)
  results["profiles"] = {"Mixup": as_map(single[names[0]]), "CutMix": as_map(single[names[2]])}
  return results


def render(results: dict, size: int, lam: float, out: pathlib.Path) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, axes = plt.subplots(3, 2, figsize=(9, 12))
  extent = [-(size - 1), size - 1, -(size - 1), size - 1]
  for column, label in enumerate(("known mixture", "between")):
    r = results[label]
    vmin = min(r["target_map"].min(), r["fitted_map"].min())
    vmax = max(r["target_map"].max(), r["fitted_map"].max())
    for row, key in enumerate(("target_map", "fitted_map")):
      image = axes[row, column].imshow(r[key], extent=extent, origin="lower", vmin=vmin, vmax=vmax, cmap="viridis")
      fig.colorbar(image, ax=axes[row, column], fraction=0.046)
    axes[0, column].set_title(f"target: {label} ({r['target']})", fontsize=9)
    weights = ", ".join(
      f"{n.split('(')[0]}{'' if 'r=' not in n else n[n.index('r=') : n.index('r=') + 6]} {w:.2f}"
      for n, w in r["weights"].items()
    )
    wrapped = "\n".join(textwrap.wrap(f"designed: {weights}", 60))
    axes[1, column].set_title(f"{wrapped}\nrelative residual {r['relative_residual']:.1e}", fontsize=8)
    ax = axes[2, column]
    x = np.arange(-(size - 1), size)
    ax.plot(x, r["target_map"][size - 1], "k-", lw=2.5, label="target")
    ax.plot(x, r["fitted_map"][size - 1], "C3--", lw=1.5, label="designed mixture")
    for name, values in results["profiles"].items():
      ax.plot(x, values[size - 1], ":", label=name)
    ax.set_xlabel("offset p = (x, 0)")
    ax.set_ylabel("E_i a_(i, i+p)")
    ax.legend(fontsize=8)
  t2 = results["between"]["theorem2"]
  axes[2, 1].set_title(
    f"Theorem 2 realises it exactly, {100 * t2['share_outside_0_1']:.0f}% of mask values outside [0, 1]", fontsize=8
  )
  fig.suptitle(f"Figure 4's maps designed with bounded masks, lam = {lam}, {size} x {size}")
  fig.tight_layout()
  save_figure(fig, out)


def main(argv: list[str] | None = None) -> int:
  parser = figure_parser(__doc__, "figure4_design")
  parser.add_argument("--lam", type=float, default=0.5)
  parser.add_argument("--size", type=int, default=16)
  parser.add_argument("--draws", type=int, default=4000, help="Theorem 2 masks drawn")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  start = time.perf_counter()
  results = run(args.lam, args.size, args.draws, args.seed)
  render(results, args.size, args.lam, args.out)
  numbers = {
    "lam": args.lam,
    "shape": [args.size, args.size],
    "seed": args.seed,
    **{
      label: {k: v for k, v in results[label].items() if not k.endswith("_map")}
      for label in ("known mixture", "between")
    },
  }
  save_numbers(args.out, numbers)
  for label in ("known mixture", "between"):
    r = results[label]
    print(
      f"{label}: weights {r['weights']}, residual {r['residual']:.2e} (relative {r['relative_residual']:.2e}); "
      f"best single {r['best_single']} {r['best_single_residual']:.2e}"
    )
  t2 = results["between"]["theorem2"]
  print(
    f"Theorem 2 on 'between': {100 * t2['share_outside_0_1']:.1f}% of mask values outside [0, 1] "
    f"(range {t2['min']:.2f} .. {t2['max']:.2f}); |a error| {t2['max_abs_error_of_a']:.1e} "
    f"({t2['standard_error']:.1e} standard error). "
    f"Written to {args.out.resolve()} in {time.perf_counter() - start:.0f} s."
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
