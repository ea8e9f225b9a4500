"""The masks and label weights of the methods that read the model (Remark 2), untrained and trained.

Remark 2 lets the mask depend on the pair; Attentive CutMix and SnapMix let it (or the label
weights) depend on the *model* as well. This script reads the maps those methods read in the
train step, from the small CNN of the main job (``msda_jax.train.models.SmallCNN``, width 8) at
its initialisation and after training it on the embedded MNIST subset (28 x 28 zero-padded to
32 x 32, cross-entropy, no mixing, ``--steps`` SGD steps of 100 images):

* Attentive CutMix (``top_k=None``, an 8 x 8 grid, so ``k = 32`` cells at ``lam = 0.5``): the
  image keeps the cells of largest channel-mean activation of its last stage. Its
  translation-averaged coefficients ``E_i a_(i, i+p)`` (Eq. 9 averaged as in Figure 4) are
  estimated by Monte Carlo over random pairs of distinct images (``figure_data_dependent``'s
  estimator, batches of 128 pairs, standard error over batches), beside the exact map of CutMix
  at the same ``lam``;
* SnapMix: its mask is CutMix's box law (the maps do not move it), but its label weights are the
  class-activation shares ``w_i = 1 - sum_A S_i`` and ``w_j = sum_B S_j``. Theorem 1's
  objective weighs the pair's losses by ``(lam, 1 - lam)``; SnapMix trains
  ``w_i L(y_i) + w_j L(y_j)``, a total weight ``N = w_i + w_j`` times a mix with share
  ``w_i / N``. Reported per model: the mean of ``w_i``, ``w_j`` and ``N`` over ``--draws`` pairs,
  and the same with area weights (the box's share, what CutMix would give), so the objective
  actually trained is compared with the area-weighted one;
* Co-Mixup (partitions of 16 on 4 x 4 blocks, its defaults): it draws no ``lam``; each output's
  own-image mask ``M`` (its source 0) is the example's share. Its ``E_i a_(i, i+p)`` is estimated
  over batches of 128 random digits (``--draws`` outputs) with the input-gradient saliency of
  each model, and with flat maps (every block equally salient: the solver's data-agnostic law,
  driven by its prior and start alone); reported with the mean own share and the mean number of
  inputs an output reads;
* GuidedMixup (its defaults): the per-pixel ratio of the pair's blurred maps, over the same
  random pairs (its greedy pairing left out: the map of a pair given), from each model's input
  gradient (the "ap" variant) and from the spectral residual (the "sr" variant, no model);
* AlignMix: at the last stage the partner's map ``h_j`` is replaced by ``R h_j`` (its Sinkhorn
  assignment onto ``h_i``), so Theorem 1's perturbation ``(1 - lam)(h_j - h_i)`` of Manifold Mixup
  becomes ``(1 - lam)(R h_j - h_i)``; reported per model, over ``--draws`` pairs, the ratio
  ``E|R h_j - h_i|^2 / E|h_j - h_i|^2`` (the quadratic terms R2 and R3 scale with that size).

    python -m theory.figure_model_reading --out outputs/figure_model_reading.png
"""

from __future__ import annotations

import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import msda_jax
from msda_jax import saliency as saliency_lib
from msda_jax.masks import _alignmix, _attentive, _snapmix
from msda_jax.train import hidden
from msda_jax.train.models import SmallCNN
from theory._output import figure_parser, save_figure, save_numbers
from theory._training import before_and_after
from theory.figure4 import exact_maps
from theory.figure_data_dependent import (
  SampledMap,
  load_images,
  map_of_masks,
  offset_norms,
  pair_indices,
  sampled_map,
  summarize_sampled,
)


def attentive_centre_vs_border(share: np.ndarray) -> list[float]:
  """``E[1 - M]`` over the central quarter of the pixels and over the rest (the partner's share)."""
  h, w = share.shape
  centre = np.zeros(share.shape, bool)
  centre[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = True
  return [float(share[centre].mean()), float(share[~centre].mean())]


def train(images: jax.Array, labels: jax.Array, steps: int, seed: int) -> tuple[nnx.Module, nnx.Module]:
  """``(untrained, trained)`` small CNNs: the same initialisation, then ``steps`` SGD steps of 100 images."""
  model = SmallCNN(10, width=8, in_channels=1, rngs=nnx.Rngs(seed))
  tx = optax.sgd(0.05, momentum=0.9)
  return before_and_after(model, tx, images, labels, steps=steps, seed=seed, weight_decay=5e-4)


def model_maps(model: nnx.Module, images: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array, float]:
  """``(attention [N, H, W], class-activation maps [N, H, W], accuracy)``: what Attentive CutMix
  and SnapMix read in the train step (their ``prepare``), in batches of 500."""
  view = lambda batch: msda_jax.ModelView(
    loss=jnp.sum,
    to_input=lambda x: x,
    features=functools.partial(hidden.features_at, model),
    head=lambda f, layer: hidden.head_after(model, batch.shape, f, layer),
  )
  attentive, snap = msda_jax.AttentiveCutMix(top_k=None, grid=8), msda_jax.SnapMix()
  out_a, out_s, correct = [], [], 0
  for start in range(0, images.shape[0], 500):
    x, y = images[start : start + 500], labels[start : start + 500]
    out_a.append(attentive.prepare(jax.random.key(0), view(x), x, y)["saliency"])
    out_s.append(snap.prepare(jax.random.key(0), view(x), x, y)["saliency"])
    correct += int(jnp.sum(jnp.argmax(model(x), -1) == y))
  return jnp.concatenate(out_a), jnp.concatenate(out_s), correct / images.shape[0]


@functools.partial(jax.jit, static_argnames=("count",))
def snapmix_weights(key: jax.Array, maps: jax.Array, lam: jax.Array, count: int) -> tuple[jax.Array, ...]:
  """``(w_i, w_j, area_i, area_j)`` ``[count]`` each, for random pairs of distinct images at a fixed ``lam``
  (box ``B``'s ratio drawn, ``Beta(1, 1)``, as SnapMix draws it)."""
  key_pairs, key_boxes = jax.random.split(key)
  first, second = pair_indices(key_pairs, count, maps.shape[0])
  shape = maps.shape[1:]

  def one(k: jax.Array, s_i: jax.Array, s_j: jax.Array) -> tuple[jax.Array, ...]:
    key_a, key_lam, key_b = jax.random.split(k, 3)
    box_a = _snapmix.reference_box(key_a, lam, shape)
    box_b = _snapmix.reference_box(key_b, msda_jax.lam_laws.sample_beta(key_lam, 1.0), shape)
    inside_a, inside_b = _snapmix.box_mask(*box_a, shape), _snapmix.box_mask(*box_b, shape)
    w_i = 1.0 - _snapmix.semantic_share(s_i, inside_a)
    w_j = _snapmix.semantic_share(s_j, inside_b)
    return w_i, w_j, 1.0 - jnp.mean(inside_a), jnp.mean(inside_b)

  return jax.vmap(one)(jax.random.split(key_boxes, count), maps[first], maps[second])


@functools.partial(jax.jit, static_argnums=0, static_argnames=("flat",))
def _comixup_batch(
  graphdef: Any, state: Any, key: jax.Array, x: jax.Array, y: jax.Array, *, flat: bool
) -> tuple[jax.Array, jax.Array]:
  """Co-Mixup (partitions of 16) of one batch: ``(own-image masks [B, H, W], inputs read per output [B])``."""
  if flat:
    s = jnp.ones(x.shape[:-1], jnp.float32)
  else:
    net = nnx.merge(graphdef, state)
    loss = lambda z: optax.softmax_cross_entropy_with_integer_labels(net(z), y).mean()
    s = saliency_lib.input_saliency(loss, x)
  _, _, info = msda_jax.mix_batch_with_info(key, x, y, msda_jax.CoMixup(part=16), num_classes=10, saliency=s)
  return info.mask[:, 0], jnp.sum(info.weight > 0, axis=1)


@functools.partial(jax.jit, static_argnums=0)
def _alignment_distances(graphdef: Any, state: Any, first: jax.Array, second: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``(|R h_j - h_i|^2, |h_j - h_i|^2)`` per pair at the last stage (AlignMix's ``R``: eps 0.1, 100 steps)."""
  net = nnx.merge(graphdef, state)
  h_i, h_j = hidden.features_at(net, first, -1), hidden.features_at(net, second, -1)
  r = _alignmix.assignments(h_i, h_j, 0.1, 100)
  flat = lambda h: h.reshape(h.shape[0], -1, h.shape[-1])
  moved = jnp.einsum("bpq,bqc->bpc", r, flat(h_j))
  return jnp.sum((moved - flat(h_i)) ** 2, axis=(1, 2)), jnp.sum((flat(h_j) - flat(h_i)) ** 2, axis=(1, 2))


def alignment_ratio(key: jax.Array, model: nnx.Module, images: jax.Array, draws: int) -> float:
  """``E|R h_j - h_i|^2 / E|h_j - h_i|^2`` over ``draws`` random pairs of distinct images (batches of 512)."""
  graphdef, state = nnx.split(model)
  aligned, plain = 0.0, 0.0
  for t in range(-(-draws // 512)):
    first, second = pair_indices(jax.random.fold_in(key, t), 512, images.shape[0])
    a, p = _alignment_distances(graphdef, state, images[first], images[second])
    aligned, plain = aligned + float(a.sum()), plain + float(p.sum())
  return aligned / plain


@functools.partial(jax.jit, static_argnums=0)
def _gradient_maps(graphdef: Any, state: Any, x: jax.Array, y: jax.Array) -> jax.Array:
  """The input-gradient saliency ``[N, H, W]`` of the model's cross-entropy (what GuidedMixup's "ap" reads)."""
  net = nnx.merge(graphdef, state)
  loss = lambda z: optax.softmax_cross_entropy_with_integer_labels(net(z), y).mean()
  return saliency_lib.input_saliency(loss, x)


def gradient_maps(model: nnx.Module, images: jax.Array, labels: jax.Array) -> jax.Array:
  """``_gradient_maps`` of every image, in batches of 500."""
  graphdef, state = nnx.split(model)
  parts = [
    _gradient_maps(graphdef, state, images[start : start + 500], labels[start : start + 500])
    for start in range(0, images.shape[0], 500)
  ]
  return jnp.concatenate(parts)


def comixup_map(
  key: jax.Array, model: nnx.Module | None, images: jax.Array, labels: jax.Array, draws: int, batch: int = 128
) -> tuple[SampledMap, float, np.ndarray]:
  """Co-Mixup's own-image masks over ``draws // batch`` batches of random digits.

  Returns ``(map, mean number of inputs per output, the first output's mask)``.

  The saliency is the input gradient of ``model``'s cross-entropy (its ``prepare``), or flat maps
  when ``model`` is ``None``.
  """
  graphdef, state = nnx.split(SmallCNN(10, width=8, in_channels=1, rngs=nnx.Rngs(0)) if model is None else model)
  one = functools.partial(_comixup_batch, graphdef, state, flat=model is None)
  rng = np.random.default_rng(0)
  masks, counts = [], []
  for t in range(max(2, draws // batch)):
    index = jnp.asarray(rng.choice(images.shape[0], batch, replace=False))
    m, c = one(jax.random.fold_in(key, t), images[index], labels[index])
    masks.append(m)
    counts.append(np.asarray(c))
  return map_of_masks(masks), float(np.mean(np.concatenate(counts))), np.asarray(masks[0][0])


def guided_summary(result: SampledMap, shape: tuple[int, int]) -> dict[str, Any]:
  """GuidedMixup's map functionals (``summarize_sampled`` at the realised mean share)."""
  return summarize_sampled(result, shape, float(result.mask_means.mean()))


def comixup_summary(result: SampledMap, inputs: float, shape: tuple[int, int]) -> dict[str, Any]:
  """The map's functionals (``summarize_sampled`` at the realised mean share) and the inputs per output."""
  share = float(result.mask_means.mean())
  return {"mean_own_share": share, "inputs_per_output": inputs, **summarize_sampled(result, shape, share)}


def render(
  results: dict[str, Any], cutmix: np.ndarray, shape: tuple[int, int], lam: float, title: str, out: Any
) -> None:
  import matplotlib.pyplot as plt

  h, w = shape
  fig, axes = plt.subplots(4, 5, figsize=(16, 12.4))
  extent = (-(w - 1), w - 1, -(h - 1), h - 1)
  inner = offset_norms(shape) <= h / 2  # the far corners hold a few pixel pairs each
  scale = max(float(np.abs(results[name]["attentive"].mean - cutmix)[inner].max()) for name in ("untrained", "trained"))
  top = max(float(results[name]["attentive"].mean.max()) for name in ("untrained", "trained"))
  for row, name in zip(axes[:2], ("untrained", "trained"), strict=True):
    r = results[name]
    row[0].imshow(r["example_attention"], cmap="magma")
    row[0].set_title(f"{name}: last-stage attention of one digit", fontsize=8)
    row[1].imshow(r["example_mask"], cmap="gray", vmin=0, vmax=1)
    row[1].set_title("Attentive CutMix M (1: the digit kept)", fontsize=8)
    im = row[2].imshow(r["attentive"].mean, cmap="viridis", extent=extent, vmin=0.0, vmax=top)
    row[2].set_title("Attentive CutMix, E_i a_(i, i+p)", fontsize=8)
    fig.colorbar(im, ax=row[2], fraction=0.046)
    im = row[3].imshow(r["attentive"].mean - cutmix, cmap="coolwarm", extent=extent, vmin=-scale, vmax=scale)
    row[3].set_title("Attentive CutMix - CutMix (exact); scale of |p| <= n / 2", fontsize=8)
    fig.colorbar(im, ax=row[3], fraction=0.046)
    row[4].hist(r["w_total"], bins=40, alpha=0.6, label="SnapMix w_i + w_j")
    row[4].hist(r["area_total"], bins=40, alpha=0.6, label="areas (CutMix)")
    row[4].set_title(f"total label weight N, lam = {lam}", fontsize=8)
    row[4].legend(fontsize=7)
    for ax in row[:2]:
      ax.axis("off")
  row = axes[2]
  co = {name: results[name]["comixup"].mean for name in ("flat", "untrained", "trained")}
  co_top = max(float(v.max()) for v in co.values())
  row[0].imshow(results["trained"]["comixup_example"], cmap="gray", vmin=0, vmax=1)
  row[0].set_title("Co-Mixup M, one output (1: own digit)", fontsize=8)
  row[0].axis("off")
  for ax, name in zip(row[1:4], co, strict=True):
    im = ax.imshow(co[name], cmap="viridis", extent=extent, vmin=0.0, vmax=co_top)
    ax.set_title(f"Co-Mixup, E_i a_(i, i+p): {name} saliency", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046)
  gap = co["trained"] - co["flat"]
  lim = float(np.abs(gap[inner]).max())
  im = row[4].imshow(gap, cmap="coolwarm", extent=extent, vmin=-lim, vmax=lim)
  row[4].set_title("Co-Mixup, trained - flat; scale of |p| <= n / 2", fontsize=8)
  fig.colorbar(im, ax=row[4], fraction=0.046)
  row = axes[3]
  gm = {"spectral residual": results["flat"]["guided"], **{n: results[n]["guided"] for n in ("untrained", "trained")}}
  gm_top = max(float(v.mean.max()) for v in gm.values())
  im = row[0].imshow(gm["trained"].partner_share, cmap="viridis", vmin=0.0, vmax=1.0)
  row[0].set_title("GuidedMixup, E[1 - M] per pixel (trained)", fontsize=8)
  fig.colorbar(im, ax=row[0], fraction=0.046)
  for ax, name in zip(row[1:4], gm, strict=True):
    im = ax.imshow(gm[name].mean, cmap="viridis", extent=extent, vmin=0.0, vmax=gm_top)
    ax.set_title(f"GuidedMixup, E_i a_(i, i+p): {name}", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046)
  gap = gm["trained"].mean - gm["spectral residual"].mean
  lim = float(np.abs(gap[inner]).max())
  im = row[4].imshow(gap, cmap="coolwarm", extent=extent, vmin=-lim, vmax=lim)
  row[4].set_title("GuidedMixup, trained - spectral residual", fontsize=8)
  fig.colorbar(im, ax=row[4], fraction=0.046)
  fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  save_figure(fig, out)


def main(argv: list[str] | None = None) -> int:
  parser = figure_parser(__doc__, "figure_model_reading")
  parser.add_argument("--lam", type=float, default=0.5)
  parser.add_argument("--steps", type=int, default=300, help="training steps of the trained model")
  parser.add_argument("--draws", type=int, default=4096, help="pairs per method and model")
  parser.add_argument("--seed", type=int, default=3)
  parser.add_argument("--examples", type=int, default=4000, help="the first N training digits")
  args = parser.parse_args(argv)
  start = time.perf_counter()
  size = 32
  shape = (size, size)
  images_np, labels_np = load_images("mnist", size)
  images, labels = jnp.asarray(images_np[: args.examples]), jnp.asarray(labels_np[: args.examples])
  untrained, trained = train(images, labels, args.steps, args.seed)
  cutmix = exact_maps(args.lam, shape, names=("CutMix",))["CutMix"][1]
  key = jax.random.key(args.seed)
  results: dict[str, Any] = {}
  summary: dict[str, Any] = {}
  flat, flat_inputs, _ = comixup_map(key, None, images, labels, args.draws)
  residual = sampled_map(
    key, msda_jax.GuidedMixup(), images, saliency_lib.spectral_residual(images), lam=args.lam, num_draws=args.draws
  )
  results["flat"] = {"comixup": flat, "guided": residual}
  summary["flat_saliency"] = {"comixup": comixup_summary(flat, flat_inputs, shape)}
  summary["spectral_residual"] = {"guidedmixup": guided_summary(residual, shape)}
  for name, model in (("untrained", untrained), ("trained", trained)):
    attention, cams, accuracy = model_maps(model, images, labels)
    attentive = sampled_map(
      key, msda_jax.AttentiveCutMix(top_k=None, grid=8), images, attention, lam=args.lam, num_draws=args.draws
    )
    w_i, w_j, area_i, area_j = (
      np.asarray(v, np.float64) for v in snapmix_weights(key, cams, jnp.float32(args.lam), args.draws)
    )
    example_mask = _attentive.cells_to_pixels(
      _attentive.top_cells(_attentive.cell_means(attention[0], 8), jnp.asarray(int(args.lam * 64))), 8, shape
    )
    comixup, comixup_inputs, comixup_example = comixup_map(key, model, images, labels, args.draws)
    guided = sampled_map(
      key, msda_jax.GuidedMixup(), images, gradient_maps(model, images, labels), lam=args.lam, num_draws=args.draws
    )
    results[name] = {
      "guided": guided,
      "comixup": comixup,
      "comixup_example": comixup_example,
      "attentive": attentive,
      "example_attention": np.asarray(attention[0]),
      "example_mask": np.asarray(example_mask),
      "w_total": w_i + w_j,
      "area_total": area_i + area_j,
    }
    # Offsets up to half the side (the far corners hold a few pixel pairs each).
    inner = offset_norms(shape) <= size / 2
    difference = (attentive.mean - cutmix)[inner]
    stderr = attentive.stderr[inner]
    summary[name] = {
      "train_accuracy": accuracy,
      "guidedmixup": guided_summary(guided, shape),
      "alignmix_aligned_to_plain_squared_distance": alignment_ratio(key, model, images, args.draws),
      "comixup": comixup_summary(comixup, comixup_inputs, shape),
      "attentive_cutmix": summarize_sampled(attentive, shape, args.lam),
      "attentive_minus_cutmix_max_abs_within_half_side": float(np.abs(difference).max()),
      "attentive_largest_stderr_within_half_side": float(stderr.max()),
      "attentive_partner_share_centre_vs_border": attentive_centre_vs_border(attentive.partner_share),
      "snapmix_mean_w_i_w_j_total": [float(w_i.mean()), float(w_j.mean()), float((w_i + w_j).mean())],
      "snapmix_std_total": float((w_i + w_j).std()),
      "area_mean_i_j_total": [float(area_i.mean()), float(area_j.mean()), float((area_i + area_j).mean())],
      "snapmix_share_of_total_below_0.9": float(np.mean(w_i + w_j < 0.9)),
      "area_std_total": float((area_i + area_j).std()),
      "area_share_of_total_below_0.9": float(np.mean(area_i + area_j < 0.9)),
    }
  elapsed = time.perf_counter() - start
  title = (
    f"Methods that read the model, lam = {args.lam}, MNIST subset 32 x 32, small CNN untrained and after "
    f"{args.steps} steps, {args.draws} pairs each"
  )
  render(results, cutmix, shape, args.lam, title, args.out)
  numbers = {
    "lam": args.lam,
    "steps": args.steps,
    "draws": args.draws,
    "seed": args.seed,
    "seconds": round(elapsed, 1),
    "summary": summary,
    "attentive_maps": {
      name: np.round(results[name]["attentive"].mean, 6).tolist() for name in ("untrained", "trained")
    },
    "comixup_maps": {name: np.round(r["comixup"].mean, 6).tolist() for name, r in results.items()},
    "cutmix_exact": np.round(cutmix, 6).tolist(),
  }
  save_numbers(args.out, numbers)
  for name, entry in summary.items():
    print(name, {k: v for k, v in entry.items() if k != "attentive_cutmix"})
  print(f"written to {args.out.resolve()} ({elapsed:.0f} s)")
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
