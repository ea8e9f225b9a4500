"""CutMix: a box of the partner pasted into the image (Eq. 3).

The box has side ``floor((1 - lam)^(1/d) n_k)`` along each of the ``d`` spatial axes
(``sqrt(1 - lam)`` of each side for images), computed exactly from ``lam`` (``_box.cut_sizes``),
as timm cuts it. ``box_sides="even"`` rounds each side down to an even number, as torchvision's
``CutMix`` and the CutMix paper's code do (``[c - s//2, c + s//2)``): given the same ``lam`` and
centre, those give the same box as this option, and ``"floor"`` differs from them by one row or
column where the floor is odd. With ``placement="clip"`` the centre is uniform over the pixels
and the box is clipped at the border; the label weight is then the realised mask mean, not
``lam``. With ``placement="inside"`` it lies fully inside the image, so its area is exact: the
setting of Eq. (10).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _bits, _validate
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks import _box
from msda_jax.masks._base import MixMethod, Sample

PLACEMENTS = ("clip", "inside")


def check_box_options(placement: str, box_sides: str) -> None:
  """Raises naming the option unless ``placement`` and ``box_sides`` are known (every box family)."""
  _validate.check_choice("placement", placement, PLACEMENTS)
  _validate.check_choice("box_sides", box_sides, _box.BOX_SIDES)


def _cutmix(
  key: jax.Array, lam: jax.Array, shape: tuple[int, ...], placement: str, sides: str
) -> tuple[jax.Array, jax.Array]:
  """``(M, mean(M))``: 0 inside a random box of nominal area ``1 - lam`` (clipped to [0, 1]), 1 outside.

  The mean comes from the box's extent (the share of the grid outside the clipped box).
  """
  start, size = _box.random_cut_extent(key, lam, shape, placement, sides=sides)
  mask = jnp.where(_box.box_indicator(start, size, shape), 0.0, 1.0).astype(jnp.float32)
  return mask, _box.box_complement_fraction(start, size, shape)


@pytree_dataclass
class CutMix(MixMethod):
  """CutMix with ``lam ~ Beta(alpha, alpha)``: 0 in a box of nominal area ``1 - lam``, 1 outside (Eq. 3).

  ``placement``: ``"clip"`` (centre uniform, box clipped at the border) or ``"inside"`` (the box
  lies fully inside: exact area); ``box_sides``: ``"floor"`` (timm) or ``"even"`` (torchvision,
  the official code). The weight is the realised share outside the box.

  ``minmax=(low, high)`` is timm's ``cutmix_minmax``: each side is drawn directly, uniform over the
  integers ``[int(low n_k), int(high n_k))``, the box lies inside at a uniform position, and
  ``lam`` is the realised share outside it (``alpha`` is then unused, and a given ``lam`` raises).

  >>> CutMix(alpha=1.0, placement="inside")
  CutMix(alpha=1.0, placement='inside', box_sides='floor', minmax=None)
  >>> s = CutMix(placement="inside").sample(jax.random.key(0), shape=(8, 8), lam=0.75)
  >>> float(s.mask.mean()), float(s.weight)  # a 4 x 4 box: 1 - 16 / 64
  (0.75, 0.75)
  """

  name = "cutmix"
  _positive = ("alpha",)

  alpha: ArrayLike = 1.0
  placement: str = static_field(default="clip")
  box_sides: str = static_field(default="floor")
  minmax: tuple[float, float] | None = static_field(default=None)

  def _check(self) -> None:
    check_box_options(self.placement, self.box_sides)
    if self.minmax is not None:
      bounds = tuple(self.minmax) if isinstance(self.minmax, (tuple, list)) else ()
      if len(bounds) != 2 or any(isinstance(b, bool) or not isinstance(b, (int, float)) for b in bounds):
        raise ValueError(f"minmax must be a pair (low, high) of side ratios; got {self.minmax!r}.")
      if not 0.0 <= bounds[0] < bounds[1] <= 1.0:
        raise ValueError(f"minmax must satisfy 0 <= low < high <= 1; got {self.minmax!r}.")
      object.__setattr__(self, "minmax", (float(bounds[0]), float(bounds[1])))

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del data
    if self.minmax is not None:
      return _minmax_box(key_lam, key_mask, lam, shape, self.minmax)
    lam = self._beta_lam(key_lam, lam)
    return Sample(lam, *_cutmix(key_mask, lam, shape, self.placement, self.box_sides))


def _minmax_box(
  key_size: jax.Array, key_start: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], minmax: tuple[float, float]
) -> Sample:
  """A box inside the grid with sides uniform in ``[int(low n_k), int(high n_k))``; ``lam`` its complement share."""
  if lam is not None:
    raise ValueError("lam cannot be given to CutMix with minmax: its lam is the share the drawn box leaves.")
  low = [int(n * minmax[0]) for n in shape]
  high = [int(n * minmax[1]) for n in shape]
  if any(h <= lo for lo, h in zip(low, high, strict=True)):
    raise ValueError(f"minmax={minmax} leaves no side length on the grid {shape}: int(low n) must be < int(high n).")
  size = _bits.randint(key_size, (len(shape),), jnp.asarray(low), jnp.asarray(high))
  start = _bits.randint(key_start, (len(shape),), 0, jnp.asarray(shape) - size)
  mask = jnp.where(_box.box_indicator(start, size, shape), 0.0, 1.0).astype(jnp.float32)
  weight = _box.box_complement_fraction(start, size, shape)
  return Sample(weight, mask, weight)
