"""Attentive CutMix: the image keeps the grid cells where its own attention map is highest.

The image's map (any non-negative ``[*S]`` map: the train step's is the channel mean of the
model's own features at ``layer``, ``prepare``; or a given one, e.g. from a pretrained extractor)
is averaged over a grid of ``grid`` cells per axis; the ``k`` cells with the largest means keep
the image and the others take the partner:
``x~ = M * x_i + (1 - M) * x_j`` with ``M = 1`` on those cells, label weight the realised mean
``k / grid^d`` (Walawalkar et al. 2020). With ``top_k`` set, ``k`` is that number (the reference's
6 of 7 x 7 cells) and no ``lam`` is drawn; with ``top_k=None`` (the "AttentiveMix+" rule)
``lam ~ Beta(alpha, alpha)`` and ``k = clip(floor(lam * cells), 1, cells)``.

The reference pastes the *image's* attentive cells onto a random partner (its label weight
``k / 49`` goes to the image's class), which is this mask. It reads the last channel of a
pretrained ResNet-50's last feature map; OpenMixup's version (and the train step here) the mean
over channels. Ties between cells go to the first in row-major order.

The grid must divide every spatial axis (a clear error otherwise); any number of spatial axes.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks._base import Sample
from msda_jax.masks._data import DataMixMethod, PairData
from msda_jax.needs import ModelView


def cell_means(saliency: jax.Array, grid: int) -> jax.Array:
  """float32 ``[grid^d]``: the map ``[*S]`` averaged over each cell of a ``grid``-per-axis grid, row-major.

  >>> cell_means(jnp.arange(16.0).reshape(4, 4), 2).tolist()
  [2.5, 4.5, 10.5, 12.5]
  """
  shape = saliency.shape
  split = [v for n in shape for v in (grid, n // grid)]
  blocks = jnp.asarray(saliency, jnp.float32).reshape(split)
  return jnp.mean(blocks, axis=tuple(range(1, 2 * len(shape), 2))).reshape(-1)


def top_cells(means: jax.Array, k: jax.Array) -> jax.Array:
  """bool ``[cells]``: the ``k`` (traced) cells of largest mean, ties to the first index.

  >>> top_cells(jnp.array([1.0, 3.0, 3.0, 0.0]), jnp.asarray(2)).tolist()
  [False, True, True, False]
  """
  order = jnp.argsort(-means, stable=True)
  rank = jnp.zeros_like(order).at[order].set(jnp.arange(means.shape[0], dtype=order.dtype))
  return rank < k


def cells_to_pixels(cells: jax.Array, grid: int, shape: tuple[int, ...]) -> jax.Array:
  """float32 ``[*S]``: the per-cell values ``[grid^d]`` spread over their pixels."""
  out = cells.astype(jnp.float32).reshape((grid,) * len(shape))
  for axis, n in enumerate(shape):
    out = jnp.repeat(out, n // grid, axis=axis, total_repeat_length=n)
  return out


def attention_map(features: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """float32 ``[B, *S]`` from features ``[B, *S_l, C_l]``: the channel mean, resized to ``shape``
  (nearest) and shifted to a minimum of 0 per example (the order of the cells is kept)."""
  activation = jnp.mean(jnp.asarray(features, jnp.float32), axis=-1)
  resized = jax.image.resize(activation, (activation.shape[0], *shape), method="nearest")
  return resized - jnp.min(resized, axis=tuple(range(1, resized.ndim)), keepdims=True)


@pytree_dataclass
class AttentiveCutMix(DataMixMethod):
  """Attentive CutMix: the image keeps its ``top_k`` most attended of ``grid^d`` cells.

  ``alpha`` (traced) draws ``lam`` for ``top_k=None``; ``top_k`` (int or None), ``grid`` (cells
  per axis) and ``layer`` (the model layer the train step reads: 0 the input, ``s`` after stage
  ``s``, -1 the last stage) are static.

  >>> import numpy as np
  >>> s = np.zeros((8, 8)); s[0:4, 4:8] = 1.0  # the image attends to its top-right quarter
  >>> data = PairData(jnp.zeros((8, 8, 3)), jnp.ones((8, 8, 3)), jnp.asarray(s), jnp.zeros((8, 8)))
  >>> out = AttentiveCutMix(grid=2, top_k=1).sample(jax.random.key(0), shape=(8, 8), data=data)
  >>> np.asarray(out.mask)[::4, ::4].tolist(), float(out.weight)
  ([[0.0, 1.0], [0.0, 0.0]], 0.25)
  """

  name = "attentive_cutmix"
  _positive = ("alpha",)

  alpha: ArrayLike = 1.0
  top_k: int | None = static_field(default=6)
  grid: int = static_field(default=8)
  layer: int = static_field(default=-1)

  def _check(self) -> None:
    if isinstance(self.grid, bool) or not isinstance(self.grid, int) or self.grid < 1:
      raise ValueError(f"grid must be a positive int (cells per axis); got {self.grid!r}.")
    if self.top_k is not None and (isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1):
      raise ValueError(f"top_k must be a positive int or None (k from lam); got {self.top_k!r}.")
    if isinstance(self.layer, bool) or not isinstance(self.layer, int) or self.layer < -1:
      raise ValueError(f"layer must be an int >= -1 (0 the input, s after stage s, -1 the last); got {self.layer!r}.")

  @property
  def takes_lam(self) -> bool:  # type: ignore[override]
    """A given ``lam`` sets ``k`` only when ``top_k`` is ``None``."""
    return self.top_k is None

  def _no_lam_message(self) -> str:
    return (
      f"lam cannot be given to {type(self).__name__} with top_k={self.top_k}: k is fixed and the weight is "
      "k / cells (top_k=None draws k from lam)."
    )

  def check_input(self, spatial: tuple[int, ...], block: int | None = None) -> None:
    del block
    bad = [n for n in spatial if n % self.grid]
    if bad:
      raise ValueError(
        f"grid={self.grid} must divide every spatial axis {tuple(spatial)} (cells of equal size); {bad} do not."
      )
    cells = self.grid ** len(spatial)
    if self.top_k is not None and self.top_k > cells:
      raise ValueError(f"top_k={self.top_k} must not exceed the {cells} cells of grid={self.grid}.")

  def check_model(self, num_stages: int) -> None:
    """Raises naming ``layer`` when it is past the model's ``num_stages`` stages."""
    if self.layer > num_stages:
      raise ValueError(
        f"layer={self.layer}: the model has layers 0 (the input) to {num_stages} (after its last stage), or -1."
      )

  def draw_lam(self, key: jax.Array, count: int | None = None) -> jax.Array:
    """``Beta(alpha, alpha)`` for ``top_k=None``; else 0 (unread: ``k`` is fixed)."""
    if self.top_k is None:
      return super().draw_lam(key, count)
    return jnp.zeros(() if count is None else (count,), jnp.float32)

  def prepare(self, key: jax.Array, model: ModelView, images: jax.Array, labels: jax.Array) -> dict[str, Any]:
    """``{"saliency": [B, *S]}``: the channel mean of the model's features at ``layer`` (one forward pass)."""
    del key, labels
    if model.features is None:
      raise ValueError(f"{type(self).__name__} reads the model's features: the ModelView has no features function.")
    features = jax.lax.stop_gradient(model.features(model.to_input(images), self.layer))
    return {"saliency": attention_map(features, images.shape[1:-1])}

  def _pair(self, key: jax.Array, lam: jax.Array, shape: tuple[int, ...], data: PairData) -> Sample:
    del key
    cells = self.grid ** len(shape)
    if self.top_k is None:
      k = jnp.clip(jnp.floor(lam * cells), 1, cells).astype(jnp.int32)
    else:
      k = jnp.asarray(min(self.top_k, cells), jnp.int32)
    kept = top_cells(cell_means(data.saliency, self.grid), k)
    mask = cells_to_pixels(kept, self.grid, shape)
    weight = k.astype(jnp.float32) / float(math.prod((self.grid,) * len(shape)))
    return Sample(weight if self.top_k is not None else lam, mask, weight)
