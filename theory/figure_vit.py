"""The ViT mixers in the theory: ``a_jk`` over the patch grid, and the objective TransMix trains.

Two questions of the theory of the ViT mixers, on the embedded MNIST digits resized to 16 x 16 (the
main job's regime, standardised as the train step does):

* **Patch-aligned masks.** ``PatchAligned(CutMix(), 4)`` draws CutMix's box on the 4 x 4 token
  grid and repeats it over 4 x 4 pixels. Its coefficients ``a_jk`` (Eq. 9, ``lam ~ Beta(1, 1)``,
  realised label weights) are exact (``theory.method_coefficients``: the grid law's atoms, each
  cell repeated), as are pixel CutMix's. Shown: both translation maps ``E_i a_(i, i+p)`` (Figure
  4's average) and one row of ``a`` (pixel ``j`` at the centre): the aligned one is constant on
  each token, so Theorem 1's penalties act on whole tokens.
* **TransMix's ``N(lam)``.** Eq. (1) mixes the labels by ``N(lam)``; the paper takes ``N = lam``
  and the library's mask-only methods the realised area. TransMix sets the partner's weight to
  ``0.5 area + 0.5 attention share`` after the forward pass, so ``N`` depends on the model and the
  pair (Remark 2). Over ``--draws`` random pairs of distinct digits, each with a token-aligned box
  (``lam ~ Beta(1, 1)``), the main job's ViT (``vit_digits``: width 64, 4 blocks of 2 heads, patch
  4) at its initialisation and after ``--steps`` SGD steps of 100 unmixed digits (the regime's
  schedule) gives the attention of each mixed image; the
  general form's coefficients are computed twice on the same masks, with the area weights and with
  TransMix's (``theory.swap_coefficients`` of the two sets of atoms), so their difference is the
  label rule's alone. Reported: the weights' means, their mean absolute gap and correlation, and
  the largest change of ``E[1 - M']`` and ``a_jk``.

    python -m theory.figure_vit --out outputs/figure_vit.png
"""

from __future__ import annotations

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import msda_jax
from msda_jax import theory
from msda_jax.data import load_mnist_subset
from msda_jax.data.transforms import normalize
from msda_jax.theory.atoms import MaskAtoms, swap_coefficients
from msda_jax.train.models import vit_digits
from msda_jax.train.step import sown_output
from theory._output import figure_parser, save_figure, save_numbers
from theory._training import before_and_after
from theory.figure_data_dependent import pair_indices

SIZE, PATCH = 16, 4


def standardise(images: jax.Array) -> jax.Array:
  """Images in [0, 1] as the model reads them (the dataset's mean and std, as the train step does)."""
  return normalize(255.0 * images, dataset="mnist_subset")


def load_digits(size: int) -> tuple[jax.Array, jax.Array]:
  """The embedded subset's 4,000 training digits resized to ``size`` (linear, antialiased) in [0, 1], and labels."""
  train_split, _ = load_mnist_subset()
  images = jnp.asarray(train_split.images, jnp.float32)  # already in [0, 1]
  resized = jax.image.resize(images, (images.shape[0], size, size, 1), method="linear", antialias=True)
  return jnp.clip(resized, 0.0, 1.0), jnp.asarray(train_split.labels, jnp.int32)


def train(images: jax.Array, labels: jax.Array, steps: int, seed: int) -> tuple[nnx.Module, nnx.Module]:
  """``(untrained, trained)`` ViTs: the same initialisation, then ``steps`` SGD steps of 100 unmixed digits."""
  model = vit_digits(10, in_channels=1, rngs=nnx.Rngs(seed))
  schedule = optax.warmup_cosine_decay_schedule(0.0, 0.05, steps // 10, steps)
  tx = optax.sgd(schedule, momentum=0.9, nesterov=True)
  return before_and_after(model, tx, images, labels, steps=steps, seed=seed, preprocess=standardise)


def accuracy(model: nnx.Module, images: jax.Array, labels: jax.Array) -> float:
  predict = nnx.jit(lambda m, x: jnp.argmax(m(x), -1))
  hits = sum(
    int(jnp.sum(predict(model, standardise(images[s : s + 500])) == labels[s : s + 500]))
    for s in range(0, len(images), 500)
  )
  return hits / images.shape[0]


def transmix_weights(
  key: jax.Array, model: nnx.Module, images: jax.Array, draws: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """``(masks [Q, H, W], area [Q], transmix [Q])``: the partner's weights of ``draws`` random pairs."""
  method = msda_jax.TransMix(msda_jax.PatchAligned(msda_jax.CutMix(), patch=PATCH), ratio=0.5)
  key_pairs, key_masks = jax.random.split(key)
  first, second = pair_indices(key_pairs, draws, images.shape[0])
  masks = jax.jit(jax.vmap(lambda k: method.sample(k, shape=(SIZE, SIZE)).mask))(jax.random.split(key_masks, draws))
  attend = nnx.jit(lambda m, x: sown_output(m, "attention", x))
  out = []
  for s in range(0, draws, 512):
    m = masks[s : s + 512, ..., None]
    mixed = m * images[first[s : s + 512]] + (1.0 - m) * images[second[s : s + 512]]
    attention = attend(model, standardise(mixed))
    out.append(np.asarray(method.partner_weight(masks[s : s + 512], attention), np.float64))
  area = 1.0 - np.asarray(masks, np.float64).mean((1, 2))
  return np.asarray(masks), area, np.concatenate(out)


def coefficients(masks: np.ndarray, partner: np.ndarray) -> Any:
  """The general form's coefficients of the atoms ``(M_q, own (1 - N_q) / Q, partner N_q / Q)``."""
  count = masks.shape[0]
  atoms = MaskAtoms(
    jnp.asarray(masks, jnp.float32),
    jnp.asarray((1.0 - partner) / count, jnp.float32),
    jnp.asarray(partner / count, jnp.float32),
    "realised",
    None,
    count,
  )
  return swap_coefficients(atoms)


def render(
  results: dict[str, Any], maps: dict[str, np.ndarray], rows: dict[str, np.ndarray], title: str, out: Any
) -> None:
  import matplotlib.pyplot as plt

  fig, axes = plt.subplots(2, 4, figsize=(16, 7.6))
  extent = (-(SIZE - 1), SIZE - 1, -(SIZE - 1), SIZE - 1)
  top = max(float(v.max()) for v in maps.values())
  for ax, name in zip(axes[0, :2], maps, strict=True):
    im = ax.imshow(maps[name], cmap="viridis", extent=extent, vmin=0.0, vmax=top)
    ax.set_title(f"{name}: E_i a_(i, i+p), exact", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046)
  for ax, name in zip(axes[0, 2:], rows, strict=True):
    im = ax.imshow(rows[name], cmap="magma")
    ax.set_title(f"{name}: a_jk, j the centre pixel", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046)
  for ax, name in zip(axes[1, :2], ("untrained", "trained"), strict=True):
    r = results[name]
    ax.scatter(r["area"], r["transmix"], s=2, alpha=0.3)
    ax.plot([0, 1], [0, 1], color="k", linewidth=0.8)
    ax.set_xlabel("area weight of the partner (CutMix on whole tokens)", fontsize=8)
    ax.set_ylabel("TransMix weight of the partner", fontsize=8)
    ax.set_title(f"{name} ViT (accuracy {100 * r['accuracy']:.1f} %): N(lam) per pair", fontsize=8)
  for ax, name in zip(axes[1, 2:], ("untrained", "trained"), strict=True):
    gap = results[name]["map_gap"]
    lim = float(np.abs(gap).max()) or 1.0
    im = ax.imshow(gap, cmap="coolwarm", extent=extent, vmin=-lim, vmax=lim)
    ax.set_title(f"{name}: E_i a_(i, i+p), TransMix weights - area weights", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  save_figure(fig, out)


def main(argv: list[str] | None = None) -> int:
  parser = figure_parser(__doc__, "figure_vit")
  parser.add_argument("--steps", type=int, default=300, help="training steps of the trained ViT")
  parser.add_argument("--draws", type=int, default=4096, help="pairs per model")
  parser.add_argument("--seed", type=int, default=3)
  parser.add_argument("--examples", type=int, default=4000, help="the first N training digits")
  args = parser.parse_args(argv)
  start = time.perf_counter()
  shape = (SIZE, SIZE)
  images, labels = load_digits(SIZE)
  images, labels = images[: args.examples], labels[: args.examples]
  aligned = msda_jax.PatchAligned(msda_jax.CutMix(), patch=PATCH)
  exact = {"CutMix": theory.method_coefficients(msda_jax.CutMix(), shape=shape)}
  exact["CutMix on 4 x 4 tokens"] = theory.method_coefficients(aligned, shape=shape)
  maps = {k: np.asarray(theory.matrix_translation_map(c.second, shape=shape), np.float64) for k, c in exact.items()}
  centre = (SIZE // 2) * SIZE + SIZE // 2 + 1
  rows = {k: np.asarray(c.second, np.float64)[centre].reshape(shape) for k, c in exact.items()}
  on_tokens = rows["CutMix on 4 x 4 tokens"].reshape(SIZE // PATCH, PATCH, SIZE // PATCH, PATCH)
  untrained, trained = train(images, labels, args.steps, args.seed)
  key = jax.random.key(args.seed)
  results: dict[str, Any] = {}
  summary: dict[str, Any] = {
    "aligned_row_constant_on_tokens": float(np.ptp(on_tokens, axis=(1, 3)).max()),
    "pixel_row_largest_change_within_a_token": float(
      np.ptp(rows["CutMix"].reshape(SIZE // PATCH, PATCH, SIZE // PATCH, PATCH), axis=(1, 3)).max()
    ),
    "aligned_minus_pixel_translation_map_max_abs": float(np.abs(maps["CutMix on 4 x 4 tokens"] - maps["CutMix"]).max()),
  }
  for name, model in (("untrained", untrained), ("trained", trained)):
    masks, area, weights = transmix_weights(key, model, images, args.draws)
    by_area, by_attention = coefficients(masks, area), coefficients(masks, weights)
    gap = np.asarray(theory.matrix_translation_map(by_attention.second - by_area.second, shape=shape), np.float64)
    results[name] = {"area": area, "transmix": weights, "accuracy": accuracy(model, images, labels), "map_gap": gap}
    summary[name] = {
      "accuracy_on_training_digits": results[name]["accuracy"],
      "mean_partner_weight_area_transmix": [float(area.mean()), float(weights.mean())],
      "mean_abs_gap": float(np.abs(weights - area).mean()),
      "correlation": float(np.corrcoef(area, weights)[0, 1]),
      "share_of_pairs_moved_over_0.1": float(np.mean(np.abs(weights - area) > 0.1)),
      "largest_change_of_first_order_coefficient": float(
        np.abs(np.asarray(by_attention.mean) - np.asarray(by_area.mean)).max()
      ),
      "largest_change_of_a_jk": float(np.abs(np.asarray(by_attention.second - by_area.second)).max()),
      "largest_change_of_translation_map": float(np.abs(gap).max()),
    }
  elapsed = time.perf_counter() - start
  title = (
    f"ViT mixers in the theory: exact a_jk of pixel and token-aligned CutMix (Beta(1, 1)), and TransMix's N(lam) "
    f"over {args.draws} pairs of MNIST digits at 16 x 16, ViT untrained and after {args.steps} steps"
  )
  render(results, maps, rows, title, args.out)
  save_numbers(
    args.out,
    {"steps": args.steps, "draws": args.draws, "seed": args.seed, "seconds": round(elapsed, 1), "summary": summary},
  )
  for name, entry in summary.items():
    print(name, entry)
  print(f"written to {args.out.resolve()} ({elapsed:.0f} s)")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
