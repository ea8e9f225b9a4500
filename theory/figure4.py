"""Figure 4: the translation-averaged coefficients ``E_i a_{i, i+p}`` at ``lam = 0.5``, 64 x 64.

For Mixup, CutMix, Stochastic Mixup & CutMix, HMix (``r = 0.5``) and GMix (the library's
defaults: boxes clipped at the border, the official code's Gaussian scale) the map is estimated
from sampled masks (zero-padded FFT autocorrelations of ``1 - M``) and checked against the exact
map: the separable closed forms for Mixup, CutMix and Stochastic, exact enumeration of every box
position (HMix, whose outside weight follows the clipped area) or bump centre (GMix). GMix's
infinite-plane form is reported too: the border truncates the bump, so it overestimates.
GridMix (the library's default cells 2-6) has a closed form per cell count; SmoothMix and SpecMix
draw no ``lam``, so theirs are the maps of their own laws (exact from per-axis sums: the circle
bump is separable at each width, integrated by Gauss-Legendre; the band masks' kept set is a
product over axes); so does RICAP, whose map is the example's own source's (its tile is a
product of one indicator per axis of the rounded-Beta boundary). VideoMix mixes videos; its maps are on its page.
The top row shows the sampled maps, the bottom row the exact ones, the right panel the
``p = (x, 0)`` profiles.

    python -m theory.figure4 --out outputs/figure4.png
"""

from __future__ import annotations

import pathlib
import sys
import time

import jax
import numpy as np

import msda_jax
from msda_jax import theory
from theory._output import figure_parser, save_figure, save_numbers

METHODS = {
  "Mixup": msda_jax.Mixup(),
  "CutMix": msda_jax.CutMix(),
  "Stochastic": msda_jax.StochasticMixupCutMix(q=0.5),
  "HMix": msda_jax.HMix(r=0.5),
  "GMix": msda_jax.GMix(),
  "GridMix": msda_jax.GridMix(),
  "SmoothMix": msda_jax.SmoothMix(),
  "SpecMix": msda_jax.SpecMix(),
  "RICAP": msda_jax.RICAP(),
}


def exact_maps(
  lam: float, shape: tuple[int, int], names: tuple[str, ...] | None = None
) -> dict[str, tuple[str, np.ndarray]]:
  """The exact map of every method (or of ``names``) and how it is obtained."""
  builders = {
    "Mixup": ("closed form", lambda: theory.mixup_translation_map(lam, shape=shape)),
    "CutMix": ("separable closed form", lambda: theory.cutmix_translation_map(lam, shape=shape, placement="clip")),
    "Stochastic": ("separable closed form", lambda: theory.stochastic_translation_map(lam, shape=shape, q=0.5)),
    "HMix": (
      "enumeration of box centres",
      lambda: theory.translation_map_of_masks(
        theory.box_masks(lam, shape=shape, family="hmix", placement="clip", r=0.5)
      ),
    ),
    "GMix": (
      "enumeration of bump centres",
      lambda: theory.translation_map_of_masks(theory.gmix_masks(lam, shape=shape, scale="code", symmetric=True)),
    ),
    "GridMix": ("closed form per cell count", lambda: theory.gridmix_translation_map(lam, shape=shape)),
    "SmoothMix": ("separable, quadrature over the width", lambda: theory.smoothmix_translation_map(shape=shape)),
    "SpecMix": ("per-axis band sums", lambda: theory.specmix_translation_map(shape=shape)),
    "RICAP": ("its own tile, per-axis sums", lambda: theory.ricap_translation_map(shape=shape)),
  }
  chosen = tuple(builders) if names is None else names
  return {name: (builders[name][0], np.asarray(builders[name][1](), np.float64)) for name in chosen}


def sampled_maps(lam: float, shape: tuple[int, int], num_draws: int, seed: int) -> dict[str, theory.TranslationMap]:
  """Monte Carlo maps, one key per method folded from the seed."""
  key = jax.random.key(seed)

  def law(m: msda_jax.MixMethod) -> theory.MaskLaw:
    if m.sources > 2:  # the example's own source (source 0) of its own law
      sources = theory.source_law(m, shape=shape)

      def own(key: jax.Array) -> tuple[jax.Array, jax.Array]:
        weight, masks = sources(key)
        return weight, masks[0]

      return own
    return theory.fixed_lam_law(m, lam, shape=shape) if m.takes_lam else theory.msda_law(m, shape=shape)

  return {
    name: theory.translation_map_monte_carlo(jax.random.fold_in(key, index), law(method), num_draws=num_draws)
    for index, (name, method) in enumerate(METHODS.items())
  }


def render(sampled: dict, exact: dict, shape: tuple[int, int], lam: float, out: pathlib.Path) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  names = list(sampled)
  extent = (-(shape[1] - 1), shape[1] - 1, -(shape[0] - 1), shape[0] - 1)
  vmax = max(float(np.max(sampled[n].mean)) for n in names)
  fig = plt.figure(figsize=(2.9 * len(names) + 5.5, 6.4), layout="constrained")
  maps_part, profile_part = fig.subfigures(1, 2, width_ratios=[2.9 * len(names), 5.0])
  axes = maps_part.subplots(2, len(names), sharex=True, sharey=True)
  image = None
  for column, name in enumerate(names):
    for row, values in enumerate((np.asarray(sampled[name].mean), exact[name][1])):
      ax = axes[row, column]
      image = ax.imshow(values, origin="lower", extent=extent, cmap="viridis", vmin=0.0, vmax=vmax)
      ax.set_title(name if row == 0 else f"exact: {exact[name][0]}", fontsize=9)
      ax.tick_params(labelsize=7)
      if row == 1:
        ax.set_xlabel("x", fontsize=8)
    axes[0, 0].set_ylabel("Monte Carlo\ny", fontsize=9)
    axes[1, 0].set_ylabel("exact\ny", fontsize=9)
  maps_part.colorbar(image, ax=axes, location="right", shrink=0.8, label="E_i a_(i, i+p)")
  profile = profile_part.subplots()
  x = np.arange(-(shape[1] - 1), shape[1])
  for index, name in enumerate(names):
    colour = f"C{index}"
    profile.plot(x, np.asarray(sampled[name].mean)[shape[0] - 1], color=colour, label=f"{name} (Monte Carlo)")
    profile.plot(x, exact[name][1][shape[0] - 1], color=colour, linestyle="--", linewidth=1.0)
  profile.set_xlabel("x (p = (x, 0)); dashed: exact")
  profile.set_ylabel("E_i a_(i, i+p)")
  profile.legend(fontsize=7)
  profile.grid(alpha=0.3)
  fig.suptitle(
    f"Figure 4: E_i a_(i, i+p), lam = {lam} (SmoothMix, SpecMix, RICAP: their own laws), "
    f"{shape[0]} x {shape[1]}, HMix r = 0.5",
    fontsize=11,
  )
  save_figure(fig, out)


def main(argv: list[str] | None = None) -> int:
  parser = figure_parser(__doc__, "figure4")
  parser.add_argument("--lam", type=float, default=0.5)
  parser.add_argument("--size", type=int, default=64)
  parser.add_argument("--draws", type=int, default=20_000)
  parser.add_argument("--seed", type=int, default=4)
  args = parser.parse_args(argv)
  shape = (args.size, args.size)
  start = time.perf_counter()
  sampled = sampled_maps(args.lam, shape, args.draws, args.seed)
  exact = exact_maps(args.lam, shape)
  plane = np.asarray(theory.gmix_plane_translation_map(args.lam, shape=shape, scale="code", symmetric=True))
  render(sampled, exact, shape, args.lam, args.out)
  summary = {}
  for name, result in sampled.items():
    mean, stderr = np.asarray(result.mean, np.float64), np.asarray(result.stderr, np.float64)
    difference = np.abs(mean - exact[name][1])
    summary[name] = {
      "exact": exact[name][0],
      "max_abs_difference": float(difference.max()),
      # Entries that never vary (stderr at float rounding) are left out of the z-score.
      "max_difference_in_stderr": float((difference / np.maximum(stderr, 1e-6))[stderr > 1e-6].max(initial=0.0)),
      "centre_monte_carlo": float(mean[shape[0] - 1, shape[1] - 1]),
      "centre_exact": float(exact[name][1][shape[0] - 1, shape[1] - 1]),
    }
  summary["GMix"]["plane_form_max_abs_difference"] = float(np.abs(plane - exact["GMix"][1]).max())
  summary["GMix"]["plane_form_centre"] = float(plane[shape[0] - 1, shape[1] - 1])
  numbers = {
    "lam": args.lam,
    "shape": list(shape),
    "num_draws": args.draws,
    "seed": args.seed,
    "offsets": "map[y + n - 1][x + n - 1] = E_i a_(i, i + (y, x))",
    "methods": summary,
    "monte_carlo": {name: np.round(np.asarray(r.mean, np.float64), 6).tolist() for name, r in sampled.items()},
    "exact": {name: np.round(values, 6).tolist() for name, (_, values) in exact.items()},
  }
  save_numbers(args.out, numbers)
  differences = ", ".join(f"{name} {s['max_abs_difference']:.1e}" for name, s in summary.items())
  print(
    f"Figure 4 written to {args.out.resolve()} (lam {args.lam}, {args.draws} draws, "
    f"{time.perf_counter() - start:.0f} s; max |Monte Carlo - exact|: {differences}; "
    f"GMix plane form vs exact {summary['GMix']['plane_form_max_abs_difference']:.4f})"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
