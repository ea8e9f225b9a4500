"""HMix (Section 4): a CutMix box of area ``(1 - lam) r``, Mixup outside it.

Inside the box ``M = 0`` (the partner); outside, ``M = lam / (1 - A)`` where ``A`` is the box's
*realised* area fraction (after flooring and clipping), so the mask mean equals ``lam``
exactly and the label weight is ``lam``. The paper writes ``lam / (1 - (1 - lam) r)``, the same
value for the nominal area. ``r -> 0`` is Mixup and ``r = 1`` is CutMix; ``r ~ Beta(g, g)``
with ``g -> 0`` tends to Stochastic Mixup & CutMix.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _validate
from msda_jax import lam as lam_laws
from msda_jax.masks import _box
from msda_jax.masks._base import MixMethod, method_dataclass, static_field
from msda_jax.masks.cutmix import PLACEMENTS


def hmix_mask(
  key: jax.Array,
  lam: ArrayLike,
  *,
  shape: tuple[int, ...],
  r: ArrayLike = 0.5,
  placement: str = "clip",
) -> jax.Array:
  """HMix mask: 0 in a box of nominal area ``(1 - lam) r``, ``lam / (1 - A)`` outside.

  Args:
    key: a PRNG key (box position).
    lam: traced scalar ratio in [0, 1] (clipped).
    shape: static spatial shape.
    r: traced box ratio in [0, 1].
    placement: ``"clip"`` (as the official code) or ``"inside"``.

  Returns:
    float32 array of ``shape``; its mean is ``lam`` exactly (up to float rounding).

  >>> m = hmix_mask(jax.random.key(0), 0.5, shape=(8, 8), r=0.5)
  >>> round(float(m.mean()), 6)
  0.5
  """
  start, size, outside, _ = _hmix_parts(key, lam, shape=shape, r=r, placement=placement)
  return jnp.where(_box.box_indicator(start, size, shape), 0.0, outside).astype(jnp.float32)


def hmix_mask_mean(
  key: jax.Array,
  lam: ArrayLike,
  *,
  shape: tuple[int, ...],
  r: ArrayLike = 0.5,
  placement: str = "clip",
) -> jax.Array:
  """Mean of ``hmix_mask`` with the same arguments (float32 scalar), without the mask.

  It is ``outside * (1 - A)``: ``lam`` up to float32 rounding, or 0 when the box covers the grid.

  >>> round(float(hmix_mask_mean(jax.random.key(0), 0.5, shape=(8, 8), r=0.5)), 6)
  0.5
  """
  _, _, outside, kept = _hmix_parts(key, lam, shape=shape, r=r, placement=placement)
  return outside * kept


def _hmix_parts(
  key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...], r: ArrayLike, placement: str
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """``(start, size, outside, kept)``: the box, the mask value outside it and ``1 - A``."""
  _validate.check_range("r", r, 0.0, 1.0)
  _validate.check_choice("placement", placement, PLACEMENTS)
  lam = jnp.clip(jnp.asarray(lam, jnp.float32), 0.0, 1.0)
  r = jnp.clip(jnp.asarray(r, jnp.float32), 0.0, 1.0)
  start, size = _box.random_box_extent(key, (1.0 - lam) * r, shape, placement)
  kept = 1.0 - _box.box_fraction(start, size, shape)
  outside = jnp.where(kept > 0.0, lam / jnp.where(kept > 0.0, kept, 1.0), 0.0)
  return start, size, outside, kept


@method_dataclass
class HMix(MixMethod):
  """HMix with ``lam ~ Beta(alpha, alpha)`` and a fixed ``r``, or ``r ~ Beta(r_alpha, r_alpha)``.

  >>> HMix(alpha=1.0, r=0.75)
  HMix(alpha=1.0, r=0.75, r_alpha=None, placement='clip')
  """

  name = "hmix"
  _positive = ("alpha", "r_alpha")
  _unit = ("r",)

  alpha: ArrayLike = 1.0
  r: ArrayLike = 0.5
  r_alpha: ArrayLike | None = None
  placement: str = static_field(default="clip")

  def _check(self) -> None:
    _validate.check_choice("placement", self.placement, PLACEMENTS)

  def mask(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
    key_r, key_box = jax.random.split(key)
    r = self.r if self.r_alpha is None else lam_laws.sample_beta(key_r, self.r_alpha)
    return hmix_mask(key_box, lam, shape=shape, r=r, placement=self.placement)

  def mask_mean(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
    key_r, key_box = jax.random.split(key)
    r = self.r if self.r_alpha is None else lam_laws.sample_beta(key_r, self.r_alpha)
    return hmix_mask_mean(key_box, lam, shape=shape, r=r, placement=self.placement)
