"""Figure 2: Mixup with unbounded ``lam`` in [-0.75, 0.75], the real-valued masks of Theorem 2.

``x~ = lam * x_i + (1 - lam) * x_j`` with ``M = lam 1`` (Eq. 2) and ``lam`` outside [0, 1]
allowed (``mix_batch(..., lam=lam, unbounded=True)``); the paper mixes a dog ``x_i`` into a cat
``x_j``. Here ``x_i`` is the astronaut and ``x_j`` the cat from scikit-image, as float images
in [0, 1]. A negative ``lam`` extrapolates away from ``x_i``: values leave [0, 1] and the
panels show them clipped; the JSON keeps each image's minimum and maximum before clipping and
the fraction of values clipped.

    python -m theory.figure2 --out outputs/figure2.png
"""

from __future__ import annotations

import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np

import msda_jax
from theory._output import figure_parser, save_figure, save_numbers
from theory.figure3 import load_photos

LAMS = (-0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75)


def mix_unbounded(photos: jax.Array, lams: tuple[float, ...], seed: int) -> list[np.ndarray]:
  """``lam * photos[0] + (1 - lam) * photos[1]`` for each ``lam``, unclipped, float32 ``[H, W, 3]``."""
  labels = jnp.array([0, 1])
  mixed = []
  for lam in lams:
    images = msda_jax.mix_batch(
      jax.random.key(seed), photos, labels, msda_jax.Mixup(), num_classes=2, lam=lam, unbounded=True
    )[0]
    mixed.append(np.asarray(images[0]))
  return mixed


def render(photos: jax.Array, lams: tuple[float, ...], mixed: list[np.ndarray], out: pathlib.Path) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  columns = 2 + len(lams)
  fig, axes = plt.subplots(1, columns, figsize=(1.9 * columns, 2.6))
  for ax, photo, name in zip(axes[:2], photos, ("x_i (astronaut)", "x_j (cat)"), strict=True):
    ax.imshow(np.asarray(photo))
    ax.set_title(name, fontsize=9)
  for ax, lam, image in zip(axes[2:], lams, mixed, strict=True):
    ax.imshow(np.clip(image, 0.0, 1.0))
    ax.set_title(f"lam = {lam:+.2f}\n[{image.min():.2f}, {image.max():.2f}]", fontsize=9)
  for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
  fig.suptitle(
    "Figure 2: lam * x_i + (1 - lam) * x_j, unbounded lam (shown clipped; range before clipping)", fontsize=10
  )
  fig.tight_layout()
  save_figure(fig, out)


def main(argv: list[str] | None = None) -> int:
  parser = figure_parser(__doc__, "figure2")
  parser.add_argument("--size", type=int, default=160)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  photos = load_photos(args.size).astype(jnp.float32) / 255.0
  mixed = mix_unbounded(photos, LAMS, args.seed)
  render(photos, LAMS, mixed, args.out)
  numbers = {
    "lam": list(LAMS),
    "x_i": "skimage.data.astronaut()",
    "x_j": "skimage.data.chelsea()",
    "min_before_clip": [float(m.min()) for m in mixed],
    "max_before_clip": [float(m.max()) for m in mixed],
    "fraction_clipped": [float(np.mean((m < 0.0) | (m > 1.0))) for m in mixed],
  }
  save_numbers(args.out, numbers)
  ranges = ", ".join(f"{lam:+.2f}: [{m.min():.2f}, {m.max():.2f}]" for lam, m in zip(LAMS, mixed, strict=True))
  print(f"Figure 2 written to {args.out.resolve()} (range before clipping per lam: {ranges})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
