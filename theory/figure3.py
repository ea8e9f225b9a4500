"""Figure 3: images mixed by every method, and their masks, at ``lam = 0.65`` and ``r = 0.5``.

Two real photos shipped with scikit-image (an astronaut and a cat) are mixed by every
method with ``lam`` fixed; the first row shows the mixed images, the second the masks ``M``
(white = first image, black = partner, grey = half of each), each titled with the realised
label weight. The data-dependent methods (SaliencyMix, PuzzleMix) read a saliency map; with no
trained model at hand the figure uses the image's own edge strength (the gradient magnitude of
its luminance, ``edge_saliency``). PuzzleMix runs on an 8 x 8 block grid with its transport
moving whole blocks (``t_size=-1``, the reference's default; its 4-pixel patches would make a
56 x 56 transport grid at 224 x 224). With the reference's ``t_eps = 0.8`` moving a block by one
place costs ``0.8 / 49``, more than the saliency share of most blocks of these photos, so no
block moves; the last panel lowers ``t_eps`` to 0.1 to show the transport at work (salient
blocks of each photo moved to where its mask keeps it). SmoothMix and SpecMix draw no ``lam``:
theirs come from their own laws (the weight printed is the realised one); VideoMix mixes videos
and is shown on its page.

    python -m theory.figure3 --out outputs/figure3.png
"""

from __future__ import annotations

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

import msda_jax
from theory._output import figure_parser, save_figure, save_numbers

METHODS = {
  "Mixup": "mixup",
  "CutMix": "cutmix",
  "Stochastic": "stochastic_mixup_cutmix",
  "HMix": "hmix(r=0.5)",
  "GMix": "gmix",
  "Bernoulli": "bernoulli",
  "FMix": "fmix",
  "ResizeMix": "resizemix",
  "SaliencyMix": "saliencymix",
  "SmoothMix": "smoothmix",
  "GridMix": "gridmix",
  "SpecMix": "specmix",
  "PuzzleMix": "puzzlemix(grid_sizes=(8,), t_size=-1)",
  "PuzzleMix t_eps 0.1": "puzzlemix(grid_sizes=(8,), t_size=-1, t_eps=0.1)",
}


def edge_saliency(photos: jax.Array) -> jax.Array:
  """The gradient magnitude of each photo's luminance (central differences): float32 ``[B, H, W]``."""
  gray = jnp.mean(jnp.asarray(photos, jnp.float32) / 255.0, axis=-1)
  padded = jnp.pad(gray, ((0, 0), (1, 1), (1, 1)), mode="edge")
  dy = (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]) / 2
  dx = (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]) / 2
  return jnp.sqrt(dx**2 + dy**2)


def load_photos(size: int) -> jax.Array:
  """The astronaut and the cat from scikit-image, centre-cropped and resized: uint8 ``[2, size, size, 3]``."""
  from skimage import data

  photos = []
  for image in (data.astronaut(), data.chelsea()):
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = jnp.asarray(image[top : top + side, left : left + side], jnp.float32)
    resized = jax.image.resize(crop, (size, size, 3), method="linear", antialias=True)
    photos.append(jnp.clip(jnp.round(resized), 0, 255).astype(jnp.uint8))
  return jnp.stack(photos)


def mix_all(photos: jax.Array, lam: float, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
  """Mixed image, mask and realised weight of the first photo for every method."""
  labels = jnp.array([0, 1])
  saliency = edge_saliency(photos)
  # One compiled program per method (run eagerly, every primitive would be compiled alone).
  mix = jax.jit(msda_jax.mix_batch_with_info, static_argnames=("num_classes",))
  results = {}
  for title, spec in METHODS.items():
    method = msda_jax.from_string(spec)
    mixed, _, info = mix(
      jax.random.key(seed),
      photos,
      labels,
      method,
      num_classes=2,
      lam=lam if method.takes_lam else None,  # SmoothMix and SpecMix draw none: their own law
      saliency=saliency,
    )
    results[title] = (np.asarray(mixed[0]), np.asarray(info.mask[0]), float(info.weight[0]))
  return results


def render(photos: jax.Array, results: dict, lam: float, out: pathlib.Path) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  columns = 2 + len(results)
  fig, axes = plt.subplots(2, columns, figsize=(1.9 * columns, 4.4))
  for ax, photo, name in zip(axes[0, :2], photos, ("x_i", "x_j"), strict=True):
    ax.imshow(np.asarray(photo))
    ax.set_title(name)
  axes[1, 0].imshow(np.ones(photos.shape[1:3]), cmap="gray", vmin=0, vmax=1)
  axes[1, 1].imshow(np.zeros(photos.shape[1:3]), cmap="gray", vmin=0, vmax=1)
  for column, (title, (image, mask, weight)) in enumerate(results.items(), start=2):
    axes[0, column].imshow(image)
    axes[0, column].set_title(f"{title}\nweight {weight:.3f}", fontsize=9)
    axes[1, column].imshow(mask, cmap="gray", vmin=0, vmax=1)
  for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
  axes[0, 0].set_ylabel("mixed")
  axes[1, 0].set_ylabel("mask M")
  fig.suptitle(f"Figure 3: x~ = M x_i + (1 - M) x_j, lam = {lam}, HMix r = 0.5", fontsize=11)
  fig.tight_layout()
  save_figure(fig, out)


def main(argv: list[str] | None = None) -> int:
  parser = figure_parser(__doc__, "figure3")
  parser.add_argument("--lam", type=float, default=0.65)
  parser.add_argument("--size", type=int, default=224)
  parser.add_argument("--seed", type=int, default=3)
  args = parser.parse_args(argv)
  photos = load_photos(args.size)
  results = mix_all(photos, args.lam, args.seed)
  render(photos, results, args.lam, args.out)
  numbers = {"lam": args.lam, "realised_weight": {k: v[2] for k, v in results.items()}}
  save_numbers(args.out, numbers)
  weights = ", ".join(f"{k} {v[2]:.3f}" for k, v in results.items())
  print(f"Figure 3 written to {args.out.resolve()} (lam {args.lam}; realised weights: {weights})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
