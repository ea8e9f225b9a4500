"""Translation-averaged coefficients ``E_i a_{i, i+p}`` of the data-dependent methods (Remark 2), lam = 0.5.

Remark 2 extends the analysis to masks that read the pair ``(z_i, z_j)``. For such a method the
coefficient ``a_jk = E[(1 - M_j)(1 - M_k)]`` (Eq. 9) is an expectation over the pair of images as
well as over the mask draw, and ``E_i a_{i, i+p}`` averages it over the translations as Figure 4
does. (The map says where a data-dependent mask puts the partner; it does not by itself give the
second-order term, since ``M`` and the images are no longer independent.)

This script estimates the map by Monte Carlo over random pairs ``(i, j)``, ``i != j``, of real
images shipped with the packages: the embedded MNIST subset (``msda_jax.data.load_mnist_subset``,
its 4,000 training digits, 28 x 28 zero-padded to 32 x 32) or scikit-learn's 8 x 8 digits
(``--dataset digits``, each pixel repeated to the size). The saliency map needs no trained model:
by default it is the image's gradient magnitude (``sobel``: 3 x 3 Sobel differences, zero padded,
RMS over channels); ``--saliency linear`` uses ``msda_jax.saliency.input_saliency`` of a
softmax regression fitted to the images by full-batch gradient descent. Methods:

* PuzzleMix with the library's defaults (``grid_sizes`` (2, 4, 8, 16) unless ``--grid-sizes`` is
  given, one side drawn per batch of pairs; its transport moves patches of the images but leaves
  ``M`` as it is), the same with a uniform saliency map (only the prior and the boundary term read
  the data), and PuzzleMix with a single grid side ``b`` (``grid_sizes=(b,)``) for every ``b``;
* SaliencyMix (CutMix's box centred at the partner's saliency peak);

all at the fixed ``lam``. Draws come in jitted batches of pairs; batch ``t`` uses the same pairs
for every method. Each batch's map is ``translation_map_of_masks`` of its masks (the FFT
autocorrelation of ``1 - M`` over ``N(p)``); the estimate is the mean over batches and its
standard error the batches' standard deviation over ``sqrt(batches)`` (batches are independent;
pairs within a PuzzleMix batch share the grid side, so single pairs are not). The data-agnostic
methods' exact maps at the same ``lam`` and shape come from ``theory.figure4.exact_maps``.

Reported: the ``p = (x, 0)`` profile, the mean of ``a_jk`` over pixel pairs at short
(``1 <= |j - k| <= 4``) and long (``|j - k| >= n / 2``) distances, the mean of ``a_jk`` over all
pixel pairs (``E[(1 - mean_i M_i)^2]``), the realised mean of ``M`` against ``lam``, the share of
half-valued PuzzleMix pixels, and all of these per grid side.

    python -m theory.figure_data_dependent --out outputs/figure_data_dependent.png
"""

from __future__ import annotations

import functools
import pathlib
import sys
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import msda_jax
from msda_jax.theory import translation
from theory._output import figure_parser, save_figure, save_numbers
from theory.figure4 import exact_maps

#: PuzzleMix's default grid sides (for 32 x 32; each must divide the side, e.g. 2,4,7,14 for 28 x 28).
GRID_SIZES = (2, 4, 8, 16)
#: offsets ``x`` of the ``p = (x, 0)`` profile written to the summary.
PROFILE_OFFSETS = (0, 1, 2, 4, 8, 12, 16, 24)
#: ``1 <= |p| <= SHORT_RANGE`` is "short"; ``|p| >= n / 2`` is "long" (Euclidean ``|p|``).
SHORT_RANGE = 4


# --- data ------------------------------------------------------------------------------------------


def load_images(dataset: str, size: int) -> tuple[np.ndarray, np.ndarray]:
  """Real images ``[N, size, size, 1]`` float32 in [0, 1] and labels ``[N]`` int32.

  ``"mnist"``: the embedded subset's 4,000 training digits, 28 x 28 zero-padded (``size >= 28``).
  ``"digits"``: scikit-learn's 1,797 digits, 8 x 8 grey levels / 16, each pixel repeated
  ``size / 8`` times along each axis (``size`` a multiple of 8).
  """
  if dataset == "mnist":
    from msda_jax.data import load_mnist_subset

    if size < 28:
      raise ValueError(f"the MNIST subset is 28 x 28: size must be >= 28; got {size}.")
    train, _ = load_mnist_subset()
    before = (size - 28) // 2
    pad = ((0, 0), (before, size - 28 - before), (before, size - 28 - before), (0, 0))
    return np.pad(train.images, pad).astype(np.float32), np.asarray(train.labels, np.int32)
  if dataset == "digits":
    from sklearn.datasets import load_digits

    if size % 8:
      raise ValueError(f"scikit-learn's digits are 8 x 8: size must be a multiple of 8; got {size}.")
    digits = load_digits()
    images = np.kron(digits.images / 16.0, np.ones((1, size // 8, size // 8)))[..., None]
    return images.astype(np.float32), np.asarray(digits.target, np.int32)
  raise ValueError(f"dataset must be 'mnist' or 'digits'; got {dataset!r}.")


def sobel_saliency(images: Any) -> jax.Array:
  """The image gradient magnitude, a saliency map that needs no model: float32 ``[N, H, W]``.

  3 x 3 Sobel differences (divided by 8, so a unit ramp has gradient 1) with zeros outside the
  image, ``sqrt(mean_c (g_x^2 + g_y^2))`` over the channels.

  >>> ramp = jnp.tile(jnp.arange(5.0), (5, 1))[None, :, :, None]
  >>> [round(v, 3) for v in sobel_saliency(ramp)[0, 2].tolist()]  # inside: 1; the border sees the zeros
  [0.5, 1.0, 1.0, 1.0, 1.5]
  """
  x = jnp.asarray(images, jnp.float32)
  h, w = x.shape[1:3]
  padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))

  def shifted(dy: int, dx: int) -> jax.Array:
    return padded[:, 1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]

  gx = (shifted(-1, 1) + 2 * shifted(0, 1) + shifted(1, 1) - shifted(-1, -1) - 2 * shifted(0, -1) - shifted(1, -1)) / 8
  gy = (shifted(1, -1) + 2 * shifted(1, 0) + shifted(1, 1) - shifted(-1, -1) - 2 * shifted(-1, 0) - shifted(-1, 1)) / 8
  return jnp.sqrt(jnp.mean(gx**2 + gy**2, axis=-1))


def linear_model_saliency(images: Any, labels: Any, *, steps: int = 200, learning_rate: float = 0.5) -> jax.Array:
  """``msda_jax.saliency.input_saliency`` of a softmax regression fitted to ``(images, labels)``.

  Full-batch gradient descent on the mean cross-entropy from zero weights; the saliency is the
  input gradient of that loss at the clean images (RMS over channels), float32 ``[N, H, W]``.
  """
  x = jnp.asarray(images, jnp.float32)
  y = jnp.asarray(labels, jnp.int32)
  classes = int(y.max()) + 1
  features = x.reshape(x.shape[0], -1)

  def loss(params: tuple[jax.Array, jax.Array], inputs: jax.Array) -> jax.Array:
    logits = inputs.reshape(inputs.shape[0], -1) @ params[0] + params[1]
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))

  @jax.jit
  def fit(params: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
    def step(p: tuple[jax.Array, jax.Array], _: None) -> tuple[tuple[jax.Array, jax.Array], None]:
      grads = jax.grad(loss)(p, x)
      return jax.tree.map(lambda v, g: v - learning_rate * g, p, grads), None

    return jax.lax.scan(step, params, None, length=steps)[0]

  params = fit((jnp.zeros((features.shape[1], classes)), jnp.zeros((classes,))))
  return msda_jax.saliency.input_saliency(lambda inputs: loss(params, inputs), x)


# --- sampling --------------------------------------------------------------------------------------


def pair_indices(key: jax.Array, count: int, num_images: int) -> tuple[jax.Array, jax.Array]:
  """``count`` uniform pairs ``(i, j)`` of distinct images: int32 ``[count]`` each."""
  key_first, key_shift = jax.random.split(key)
  first = jax.random.randint(key_first, (count,), 0, num_images)
  second = (first + jax.random.randint(key_shift, (count,), 1, num_images)) % num_images
  return first, second


@functools.partial(jax.jit, static_argnames=("shape", "batch_size"))
def _batch_masks(
  method: msda_jax.MixMethod,
  key: jax.Array,
  lam: jax.Array,
  images: jax.Array,
  saliency: jax.Array,
  *,
  shape: tuple[int, int],
  batch_size: int,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """``(masks [batch_size, *shape], first, second)``; the method is a pytree (its options static)."""
  key_pairs, key_mask = jax.random.split(key)
  first, second = pair_indices(key_pairs, batch_size, images.shape[0])
  data = msda_jax.PairData(images[first], images[second], saliency[first], saliency[second])
  lams = jnp.full((batch_size,), lam, jnp.float32)
  return method.sample_pairs(key_mask, shape=shape, lam=lams, data=data).mask, first, second


def batch_masks(
  key: jax.Array,
  method: msda_jax.MixMethod,
  images: Any,
  saliency: Any,
  *,
  lam: float,
  batch_size: int,
  batch: int,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The masks ``[batch_size, H, W]`` of batch number ``batch`` and its pairs ``(first, second)``.

  Batch ``t`` draws its pairs and masks from ``fold_in(key, t)``: for one ``key`` every method
  sees the same pairs in batch ``t`` (and PuzzleMix variants the same grid-side draw).
  """
  shape = (int(np.shape(images)[1]), int(np.shape(images)[2]))
  return _batch_masks(
    method,
    jax.random.fold_in(key, batch),
    jnp.float32(lam),
    jnp.asarray(images),
    jnp.asarray(saliency),
    shape=shape,
    batch_size=int(batch_size),
  )


@jax.jit
def _batch_statistics(masks: jax.Array) -> tuple[jax.Array, ...]:
  """``(translation map, per-pair mean of M, per-pixel mean of 1 - M, share of half values)`` of a batch."""
  halves = jnp.mean((masks > 0.25) & (masks < 0.75))
  return translation.translation_map_of_masks(masks), masks.mean(axis=(1, 2)), jnp.mean(1.0 - masks, axis=0), halves


class SampledMap(NamedTuple):
  """A Monte Carlo translation map of a data-dependent method (numpy float64).

  Attributes:
    mean: ``[2 H - 1, 2 W - 1]`` estimate of ``E_i a_{i, i+p}`` (offset ``p`` at ``p + n - 1``).
    stderr: its standard error over the batches.
    batch_maps: ``[batches, 2 H - 1, 2 W - 1]`` each batch's map (for standard errors of functionals).
    mask_means: ``[draws]`` realised mean of ``M`` per pair.
    partner_share: ``[H, W]`` ``E[1 - M_i]`` per pixel.
    half_share: share of pixels with ``M`` strictly between 1/4 and 3/4 (PuzzleMix's 1/2).
    num_draws: number of masks.
  """

  mean: np.ndarray
  stderr: np.ndarray
  batch_maps: np.ndarray
  mask_means: np.ndarray
  partner_share: np.ndarray
  half_share: float
  num_draws: int


def sampled_map(
  key: jax.Array,
  method: msda_jax.MixMethod,
  images: Any,
  saliency: Any,
  *,
  lam: float,
  num_draws: int,
  batch_size: int = 128,
) -> SampledMap:
  """Monte Carlo ``E_i a_{i, i+p}`` of ``method`` over random pairs of ``images`` at the fixed ``lam``.

  ``ceil(num_draws / batch_size)`` batches (``batch_masks``); the standard error needs two or more.
  """
  batch_size = min(int(batch_size), int(num_draws))
  num_batches = -(-int(num_draws) // batch_size)
  batches = (
    batch_masks(key, method, images, saliency, lam=lam, batch_size=batch_size, batch=batch)[0]
    for batch in range(num_batches)
  )
  return map_of_masks(batches)


def map_of_masks(batches: Any) -> SampledMap:
  """A ``SampledMap`` from batches of masks ``[batch, H, W]`` (an iterable; two or more for the standard error)."""
  maps, means, shares, halves, draws = [], [], [], [], 0
  for masks in batches:
    t, m, share, half = _batch_statistics(masks)
    maps.append(t)
    means.append(m)
    shares.append(share)
    halves.append(half)
    draws += int(masks.shape[0])
  num_batches = len(maps)
  batch_maps = np.asarray(jnp.stack(maps), np.float64)
  stderr = batch_maps.std(0, ddof=1) / np.sqrt(num_batches) if num_batches > 1 else np.zeros(batch_maps.shape[1:])
  return SampledMap(
    batch_maps.mean(0),
    stderr,
    batch_maps,
    np.asarray(jnp.concatenate(means), np.float64),
    np.asarray(jnp.stack(shares), np.float64).mean(0),
    float(np.mean(np.asarray(jnp.stack(halves)))),
    draws,
  )


# --- summaries -------------------------------------------------------------------------------------


def offset_norms(shape: tuple[int, int]) -> np.ndarray:
  """Euclidean ``|p|`` of every offset of a ``[2 H - 1, 2 W - 1]`` map."""
  y, x = (translation.offsets(n).astype(np.float64) for n in shape)
  return np.sqrt(y[:, None] ** 2 + x[None, :] ** 2)


def pair_mean(values: np.ndarray, shape: tuple[int, int], band: np.ndarray | None = None) -> np.ndarray:
  """Mean of ``a_jk`` over the pixel pairs ``(j, k)`` whose offset lies in ``band`` (all when ``None``).

  ``sum_p N(p) T(p) / sum_p N(p)`` over the band, for one map ``[...]`` or a stack ``[B, ...]``. Over
  every offset it is ``E[(1 - mean_i M_i)^2]``, since ``sum_(j, k) (1 - M_j)(1 - M_k) = (sum_j (1 - M_j))^2``.
  """
  weights = np.asarray(translation.valid_counts(shape), np.float64)
  if band is not None:
    weights = weights * band
  return np.tensordot(values, weights, axes=((-2, -1), (0, 1))) / weights.sum()


def map_functionals(values: np.ndarray, shape: tuple[int, int]) -> dict[str, np.ndarray]:
  """The reported functionals of a map ``[...]`` or of a stack of maps ``[B, ...]``."""
  h, w = shape
  norms = offset_norms(shape)
  out = {
    "centre": values[..., h - 1, w - 1],
    "short_range_pairs": pair_mean(values, shape, (norms >= 1) & (norms <= SHORT_RANGE)),
    "long_range_pairs": pair_mean(values, shape, norms >= min(shape) / 2),
    "all_pairs": pair_mean(values, shape),
  }
  for x in PROFILE_OFFSETS:
    if x < w:
      out[f"profile_x{x}"] = values[..., h - 1, w - 1 + x]
  return out


def summarize_exact(values: np.ndarray, shape: tuple[int, int]) -> dict[str, float]:
  """The functionals of an exact map."""
  return {name: float(v) for name, v in map_functionals(np.asarray(values, np.float64), shape).items()}


def summarize_sampled(result: SampledMap, shape: tuple[int, int], lam: float) -> dict[str, Any]:
  """Functionals of a sampled map with their standard errors, and what the masks realise."""
  per_batch = map_functionals(result.batch_maps, shape)
  count = result.batch_maps.shape[0]
  out: dict[str, Any] = {}
  for name, values in per_batch.items():
    out[name] = float(values.mean())
    out[f"{name}_stderr"] = float(values.std(ddof=1) / np.sqrt(count)) if count > 1 else 0.0
  means = result.mask_means
  out.update(
    lam=lam,
    mask_mean=float(means.mean()),
    mask_mean_stderr=float(means.std(ddof=1) / np.sqrt(means.size)) if means.size > 1 else 0.0,
    mask_mean_std_over_pairs=float(means.std()),
    mask_mean_quantiles_5_50_95=[float(q) for q in np.quantile(means, [0.05, 0.5, 0.95])],
    # E[(1 - mean M)^2] from the masks directly: equals all_pairs up to float rounding.
    squared_partner_share=float(np.mean((1.0 - means) ** 2)),
    half_valued_pixels=result.half_share,
    partner_share_centre_vs_border=_centre_vs_border(result.partner_share),
    max_stderr=float(result.stderr.max()),
    num_draws=result.num_draws,
    num_batches=count,
  )
  return out


def _centre_vs_border(share: np.ndarray) -> list[float]:
  """``E[1 - M]`` averaged over the central half-side square and over the rest of the image."""
  h, w = share.shape
  centre = np.zeros_like(share, dtype=bool)
  centre[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
  return [float(share[centre].mean()), float(share[~centre].mean())]


# --- the figure ------------------------------------------------------------------------------------


def render(
  exact: dict[str, tuple[str, np.ndarray]],
  sampled: dict[str, SampledMap],
  per_grid: dict[int, SampledMap],
  example: dict[str, np.ndarray],
  shape: tuple[int, int],
  lam: float,
  title: str,
  out: pathlib.Path,
) -> None:
  """Example masks, the exact data-agnostic maps, the sampled data-dependent ones and the profiles."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  h, w = shape
  extent = (-(w - 1), w - 1, -(h - 1), h - 1)
  maps = [v for _, v in exact.values()] + [r.mean for r in sampled.values()] + [r.mean for r in per_grid.values()]
  vmax = max(float(np.max(v)) for v in maps)
  fig = plt.figure(figsize=(19.0, 13.0), layout="constrained")
  maps_part, profile_part = fig.subfigures(1, 2, width_ratios=[2.9 * 5, 5.6])
  axes = maps_part.subplots(4, 5)
  for ax in axes.flat:
    ax.tick_params(labelsize=7)

  def show_map(ax: Any, values: np.ndarray, name: str) -> Any:
    ax.set_title(name, fontsize=9)
    return ax.imshow(values, origin="lower", extent=extent, cmap="viridis", vmin=0.0, vmax=vmax)

  # Row 0: one pair, the saliency, and the two methods' masks on it (M: share of the first image).
  panels = [
    ("image x_i", example["image"], "gray", 1.0),
    ("partner x_j", example["partner"], "gray", 1.0),
    ("saliency of x_j", example["partner_saliency"], "magma", None),
    ("PuzzleMix M (x_i, x_j)", example["puzzlemix"], "gray", 1.0),
    ("SaliencyMix M (x_i, x_j)", example["saliencymix"], "gray", 1.0),
  ]
  for ax, (name, values, cmap, top) in zip(axes[0], panels, strict=True):
    ax.imshow(values, cmap=cmap, vmin=0.0, vmax=top)
    ax.set_title(name, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
  axes[0, 0].set_ylabel(f"one pair, lam = {lam:g}", fontsize=9)
  image = None
  for ax, (name, (kind, values)) in zip(axes[1], exact.items(), strict=True):
    image = show_map(ax, values, f"{name}\n({kind})")
  axes[1, 0].set_ylabel("data-agnostic, exact\ny", fontsize=9)
  row = axes[2]
  for ax, (name, result) in zip(row[:3], sampled.items(), strict=True):
    show_map(ax, result.mean, name)
  for ax, name in zip(row[3:], ("PuzzleMix", "SaliencyMix"), strict=True):
    share = ax.imshow(sampled[name].partner_share, cmap="magma", vmin=0.0, vmax=1.0)
    values = sampled[name].partner_share
    ax.set_title(f"{name}: E[1 - M_i] per pixel\n(range {values.min():.2f} to {values.max():.2f})", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
  maps_part.colorbar(share, ax=row[3:], location="bottom", shrink=0.6, label="E[1 - M_i]", aspect=30)
  row[0].set_ylabel("data-dependent, Monte Carlo\ny", fontsize=9)
  row = axes[3]
  for ax, (b, result) in zip(row[:4], per_grid.items(), strict=False):  # the first four sides
    show_map(ax, result.mean, f"PuzzleMix, grid_sizes=({b},)")
    ax.set_xlabel("x", fontsize=8)
  for ax in row[len(per_grid) : 4]:
    ax.axis("off")
  row[0].set_ylabel("PuzzleMix per grid side\ny", fontsize=9)
  difference = sampled["SaliencyMix"].mean - exact["CutMix"][1]
  limit = float(np.abs(difference).max()) or 1.0
  diff_image = row[4].imshow(difference, origin="lower", extent=extent, cmap="RdBu_r", vmin=-limit, vmax=limit)
  row[4].set_title("SaliencyMix - CutMix", fontsize=9)
  row[4].set_xlabel("x", fontsize=8)
  maps_part.colorbar(diff_image, ax=row[4], location="right", shrink=0.8)
  maps_part.colorbar(image, ax=axes[1:, :3], location="left", shrink=0.6, label="E_i a_(i, i+p)", pad=0.06)

  top, bottom = profile_part.subplots(2, 1)
  x = np.arange(-(w - 1), w)
  for index, (name, (_, values)) in enumerate(exact.items()):
    top.plot(x, values[h - 1], color=f"C{index}", linestyle="--", linewidth=1.0, label=f"{name} (exact)", zorder=3)
  for colour, (name, result) in zip(("k", "C6", "C9"), sampled.items(), strict=True):
    centre, spread = result.mean[h - 1], 2.0 * result.stderr[h - 1]
    top.plot(x, centre, color=colour, linewidth=1.6, label=f"{name} (Monte Carlo)")
    top.fill_between(x, centre - spread, centre + spread, color=colour, alpha=0.3, linewidth=0)
  top.set_title("p = (x, 0); bands: +- 2 standard errors", fontsize=9)
  for index, (b, result) in enumerate(per_grid.items()):
    centre, spread = result.mean[h - 1], 2.0 * result.stderr[h - 1]
    bottom.plot(x, centre, color=f"C{index}", label=f"PuzzleMix, b = {b}")
    bottom.fill_between(x, centre - spread, centre + spread, color=f"C{index}", alpha=0.3, linewidth=0)
  bottom.plot(x, sampled["PuzzleMix"].mean[h - 1], color="k", linewidth=1.6, label="PuzzleMix, b drawn")
  bottom.axhline((1.0 - lam) ** 2, color="grey", linestyle=":", linewidth=1.0, label="Mixup (1 - lam)^2")
  bottom.set_title("PuzzleMix per grid side b, p = (x, 0)", fontsize=9)
  for ax in (top, bottom):
    ax.set_xlabel("x")
    ax.set_ylabel("E_i a_(i, i+p)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.suptitle(title, fontsize=11)
  save_figure(fig, out)


# --- the script ------------------------------------------------------------------------------------


def methods(grid_sizes: tuple[int, ...]) -> dict[str, msda_jax.MixMethod]:
  """The data-dependent methods drawn (PuzzleMix with the given grid sides)."""
  return {
    "PuzzleMix": msda_jax.PuzzleMix(grid_sizes=grid_sizes),
    "PuzzleMix, uniform saliency": msda_jax.PuzzleMix(grid_sizes=grid_sizes),
    "SaliencyMix": msda_jax.SaliencyMix(),
  }


def main(argv: list[str] | None = None) -> int:
  parser = figure_parser(__doc__, "figure_data_dependent")
  parser.add_argument("--lam", type=float, default=0.5)
  parser.add_argument("--size", type=int, default=32)
  parser.add_argument("--draws", type=int, default=8192, help="masks per method and per grid side")
  parser.add_argument("--batch-size", type=int, default=128)
  parser.add_argument("--dataset", choices=("mnist", "digits"), default="mnist")
  parser.add_argument("--saliency", choices=("sobel", "linear"), default="sobel")
  parser.add_argument("--seed", type=int, default=2)
  parser.add_argument(
    "--grid-sizes",
    type=lambda text: tuple(int(v) for v in text.split(",")),
    default=GRID_SIZES,
    help="PuzzleMix's grid sides, comma separated; each divides --size",
  )
  args = parser.parse_args(argv)
  start = time.perf_counter()
  shape = (args.size, args.size)
  grid_sizes = tuple(args.grid_sizes)
  images, labels = load_images(args.dataset, args.size)
  saliency = sobel_saliency(images) if args.saliency == "sobel" else linear_model_saliency(images, labels)
  images = jnp.asarray(images)
  uniform = jnp.ones_like(saliency)
  key = jax.random.key(args.seed)
  draw = functools.partial(sampled_map, key, lam=args.lam, num_draws=args.draws, batch_size=args.batch_size)
  sampled = {
    name: draw(method, images, uniform if "uniform" in name else saliency)
    for name, method in methods(grid_sizes).items()
  }
  per_grid = {b: draw(msda_jax.PuzzleMix(grid_sizes=(b,)), images, saliency) for b in grid_sizes}
  exact = exact_maps(args.lam, shape, names=("Mixup", "CutMix", "Stochastic", "HMix", "GMix"))
  # One pair of the first batch, for the example panels.
  masks = {
    name: batch_masks(
      key, methods(grid_sizes)[name], images, saliency, lam=args.lam, batch_size=args.batch_size, batch=0
    )
    for name in ("PuzzleMix", "SaliencyMix")
  }
  first, second = (int(v[0]) for v in masks["PuzzleMix"][1:])
  example = {
    "image": np.asarray(images[first, ..., 0]),
    "partner": np.asarray(images[second, ..., 0]),
    "partner_saliency": np.asarray(saliency[second]),
    "puzzlemix": np.asarray(masks["PuzzleMix"][0][0]),
    "saliencymix": np.asarray(masks["SaliencyMix"][0][0]),
  }
  summary: dict[str, Any] = {name: {"exact": kind, **summarize_exact(v, shape)} for name, (kind, v) in exact.items()}
  for name, result in sampled.items():
    summary[name] = summarize_sampled(result, shape, args.lam)
  # b is uniform over the grid sides and independent of the pair: the mixture of the per-side maps
  # is a second estimate of the default PuzzleMix map.
  mixture = np.mean([r.mean for r in per_grid.values()], axis=0)
  mixture_stderr = np.sqrt(np.sum([r.stderr**2 for r in per_grid.values()], axis=0)) / len(per_grid)
  combined = np.sqrt(mixture_stderr**2 + sampled["PuzzleMix"].stderr ** 2)
  summary["PuzzleMix"]["per_side_mixture_max_difference_in_stderr"] = float(
    (np.abs(mixture - sampled["PuzzleMix"].mean) / np.maximum(combined, 1e-6)).max()
  )
  summary["SaliencyMix"]["max_abs_difference_to_cutmix"] = float(
    np.abs(sampled["SaliencyMix"].mean - exact["CutMix"][1]).max()
  )
  grid_summary = {str(b): summarize_sampled(r, shape, args.lam) for b, r in per_grid.items()}
  elapsed = time.perf_counter() - start
  title = (
    f"E_i a_(i, i+p) of data-dependent masks, lam = {args.lam}, {shape[0]} x {shape[1]}, "
    f"{args.dataset} pairs, {args.saliency} saliency, {args.draws} draws each"
  )
  render(exact, sampled, per_grid, example, shape, args.lam, title, args.out)
  numbers = {
    "lam": args.lam,
    "shape": list(shape),
    "dataset": args.dataset,
    "saliency": args.saliency,
    "num_draws": args.draws,
    "batch_size": args.batch_size,
    "seed": args.seed,
    "grid_sizes": list(grid_sizes),
    "offsets": "map[y + n - 1][x + n - 1] = E_i a_(i, i + (y, x))",
    "bands": f"short: 1 <= |p| <= {SHORT_RANGE}, long: |p| >= n / 2; means of a_jk over pixel pairs",
    "seconds": round(elapsed, 1),
    "methods": summary,
    "puzzlemix_per_grid_side": grid_summary,
    "monte_carlo": {name: np.round(r.mean, 6).tolist() for name, r in sampled.items()},
    "monte_carlo_stderr": {name: np.round(r.stderr, 6).tolist() for name, r in sampled.items()},
    "puzzlemix_per_grid_side_maps": {str(b): np.round(r.mean, 6).tolist() for b, r in per_grid.items()},
    "exact": {name: np.round(v, 6).tolist() for name, (_, v) in exact.items()},
  }
  save_numbers(args.out, numbers)
  print(format_summary(summary, grid_summary, args))
  print(f"written to {args.out.resolve()} and {args.out.with_suffix('.json').resolve()} ({elapsed:.0f} s)")
  return 0


def format_summary(summary: dict[str, Any], grid_summary: dict[str, Any], args: Any) -> str:
  """A table of the reported functionals (standard errors in brackets where sampled)."""

  def cell(entry: dict[str, Any], name: str) -> str:
    if name not in entry:
      return "-"
    if f"{name}_stderr" in entry:
      return f"{entry[name]:.4f}({entry[f'{name}_stderr']:.4f})"
    return f"{entry[name]:.4f}"

  columns = {
    "centre": "T(0)",
    "profile_x4": "T(4,0)",
    "profile_x8": "T(8,0)",
    "profile_x16": "T(16,0)",
    "short_range_pairs": f"a, |p|<={SHORT_RANGE}",
    "long_range_pairs": "a, |p|>=n/2",
    "all_pairs": "a, all",
    "mask_mean": "mean M",
  }
  rows = [(name, entry) for name, entry in summary.items()]
  rows += [(f"PuzzleMix b={b}", entry) for b, entry in grid_summary.items()]
  lines = [
    f"lam = {args.lam}, {args.size} x {args.size}, {args.dataset}, {args.saliency} saliency, {args.draws} draws; "
    "T(p) = E_i a_(i, i+p), a = mean of a_jk over pixel pairs, (standard error)",
    f"{'method':<28}" + "".join(f"{c:>16}" for c in columns.values()) + f"{'M = 1/2':>9}",
  ]
  for name, entry in rows:
    halves = f"{entry['half_valued_pixels']:.3f}" if "half_valued_pixels" in entry else "-"
    lines.append(f"{name:<28}" + "".join(f"{cell(entry, c):>16}" for c in columns) + f"{halves:>9}")
  pm = summary["PuzzleMix"]
  lines.append(
    f"PuzzleMix realised mean M over pairs: 5/50/95 % quantiles {pm['mask_mean_quantiles_5_50_95']}, "
    f"std {pm['mask_mean_std_over_pairs']:.4f}; E[1 - M] centre/border {pm['partner_share_centre_vs_border']}; "
    f"per-side mixture vs drawn map: max |difference| / stderr {pm['per_side_mixture_max_difference_in_stderr']:.2f}"
  )
  sm = summary["SaliencyMix"]
  lines.append(
    f"SaliencyMix: E[1 - M] centre/border {sm['partner_share_centre_vs_border']}; "
    f"CutMix's realised mean M (binary masks: 1 - T(0)) {1.0 - summary['CutMix']['centre']:.4f}; "
    f"max |map - CutMix's exact map| {sm['max_abs_difference_to_cutmix']:.4f}"
  )
  return "\n".join(lines)


if __name__ == "__main__":
  sys.exit(main())
