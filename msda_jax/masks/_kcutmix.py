"""k-image CutMix by stick breaking: nested boxes with Dirichlet areas (DCutMix, the paper's [32]).

``w ~ Dirichlet(alpha 1_k)``. Stage ``m = 0 ... k - 2`` breaks the stick: with ``v_m`` the share
of what is left that source ``m`` keeps, ``v_m = w_m / prod_{l < m} (1 - v_l)``, a box of
``1 - v_m`` of the current region's area (side ``round(n_k (1 - v_m)^(1/d))`` of the region's
``n_k`` along each axis) is placed uniformly inside the region, source ``m + 1`` fills it, and it
becomes the region of the next stage. Source ``m`` therefore shows in its region minus the next
box, and the last source in the innermost box: nested boxes whose areas are ``w`` up to rounding.
This is the reference code's law (its ``joint_dirichlet`` with ``rand_bbox``), including its rule
that a box as wide as its region along some axis is not moved (start 0 on every axis). Labels are
weighted by the realised areas.

The law draws its own weights: a given ``lam`` raises. Any number of spatial axes.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _bits, lam_laws
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks import _box
from msda_jax.masks._ksources import KSample, KSourceMethod, one_hot_regions


def nested_boxes(keys: jax.Array | None, w: jax.Array, shape: tuple[int, ...], offsets: Any = None) -> jax.Array:
  """The source of every pixel (int32 ``[*S]``) for the weights ``w [k]``, one key per stage ``[k - 1]``.

  ``nested_areas`` gives the sources' shares from the same draws without the pixels.

  ``offsets`` (for comparisons with given draws): a function ``(stage, high) -> int32 [d]`` that
  replaces the uniform draw of each box's offset in ``[0, high)`` inside its region.
  """
  owner = jnp.zeros(shape, jnp.int32)
  for m, (start, size) in enumerate(_boxes(keys, w, shape, offsets)):
    owner = jnp.where(_box.box_indicator(start, size, shape), m + 1, owner)
  return owner


def nested_areas(keys: jax.Array | None, w: jax.Array, shape: tuple[int, ...], offsets: Any = None) -> jax.Array:
  """float32 ``[k]``: each source's share of the grid, ``vol(box_(m-1)) - vol(box_m)`` (exact integers)."""
  volumes = [math.prod(shape)] + [jnp.prod(size) for _, size in _boxes(keys, w, shape, offsets)] + [0]
  return jnp.stack([(volumes[m] - volumes[m + 1]) for m in range(int(w.shape[0]))]).astype(jnp.float32) / math.prod(
    shape
  )


def _boxes(
  keys: jax.Array | None, w: jax.Array, shape: tuple[int, ...], offsets: Any
) -> list[tuple[jax.Array, jax.Array]]:
  """``(start, size)`` of the box of each stage ``m = 0 ... k - 2`` (each inside the one before)."""
  k, d = int(w.shape[0]), len(shape)
  start = jnp.zeros(d, jnp.int32)
  size = jnp.asarray(shape, jnp.int32)
  left = jnp.float32(1.0)
  boxes = []
  for m in range(k - 1):
    keep = jnp.where(left > 0.0, w[m] / jnp.where(left > 0.0, left, 1.0), 1.0)
    left = left * (1.0 - keep)
    scale = jnp.clip(1.0 - keep, 0.0, 1.0) ** (1.0 / d)
    cut = jnp.round(size.astype(jnp.float32) * scale).astype(jnp.int32)
    high = size - cut + 1
    offset = _bits.randint(keys[m], (d,), 0, high) if offsets is None else offsets(m, high)  # type: ignore[index]
    offset = jnp.where(jnp.all(cut < size), offset, 0)
    start = start + offset
    size = cut
    boxes.append((start, size))
  return boxes


@pytree_dataclass
class KCutMix(KSourceMethod):
  """k-image CutMix: ``w ~ Dirichlet(alpha 1_k)``, nested boxes by stick breaking (the module docstring).

  >>> KCutMix(k=3)
  KCutMix(alpha=1.0, k=3)
  >>> s = KCutMix(k=3).sample(jax.random.key(0), shape=(16, 16))
  >>> s.mask.shape, round(float(s.weight.sum()), 6)
  ((3, 16, 16), 1.0)
  """

  name = "k_cutmix"
  _positive = ("alpha",)

  alpha: ArrayLike = 1.0
  k: int = static_field(default=3)

  def _check(self) -> None:
    if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 2:
      raise ValueError(f"k must be an int >= 2 (the number of mixed images); got {self.k!r}.")

  @property
  def sources(self) -> int:  # type: ignore[override]
    """``k``."""
    return int(self.k)

  def _partition(self, key_weights: jax.Array, key_regions: jax.Array, shape: tuple[int, ...]) -> KSample:
    w = lam_laws.sample_dirichlet(key_weights, self.alpha, self.k)
    keys = _bits.split(key_regions, self.k - 1)
    owner = nested_boxes(keys, w, shape)
    return KSample(w, one_hot_regions(owner, self.k), nested_areas(keys, w, shape), None, owner)
