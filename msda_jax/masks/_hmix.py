"""HMix (Section 4): a CutMix box of area ``(1 - lam) r``, Mixup outside it.

Inside the box ``M = 0`` (the partner); outside, ``M = lam / (1 - A)`` where ``A`` is the box's
*realised* area fraction (after flooring and clipping), so the mask mean equals ``lam``
exactly and the label weight is ``lam``. The paper writes ``lam / (1 - (1 - lam) r)``, the same
value for the nominal area. ``r -> 0`` is Mixup and ``r = 1`` is CutMix; ``r ~ Beta(g, g)``
with ``g -> 0`` tends to Stochastic Mixup & CutMix. The box's sides are the floor of those of the
area ``(1 - lam) r``, exact for the float32 ``lam`` and ``r`` (``_scaled_sides.scaled_sizes``:
integer arithmetic, so no product is rounded and every compilation cuts the same box); the
official code rounds them down to even numbers,
which ``box_sides="even"`` reproduces (same ``lam``, ``r`` and centre: the same box).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _bits, lam_laws
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks import _box, _scaled_sides
from msda_jax.masks._base import MixMethod, Sample
from msda_jax.masks._cutmix import check_box_options


def _hmix(
  key: jax.Array, lam: jax.Array, r: ArrayLike, shape: tuple[int, ...], placement: str, sides: str
) -> tuple[jax.Array, jax.Array]:
  """``(M, mean(M))``: 0 in a box of nominal area ``(1 - lam) r``, ``lam / (1 - A)`` outside.

  ``lam`` and ``r`` are clipped to [0, 1]; ``A`` is the realised area fraction of the box. The
  mean, ``outside * (1 - A)``, is ``lam`` up to float32 rounding, or 0 when the box covers the grid.
  """
  lam = jnp.clip(jnp.asarray(lam, jnp.float32), 0.0, 1.0)
  r = jnp.clip(jnp.asarray(r, jnp.float32), 0.0, 1.0)
  # The exact sides of the area (1 - lam) r, then the start the same key draws for any box.
  size = _scaled_sides.scaled_sizes(lam, r, shape, sides=sides)
  start = _box.sample_box(key, size, shape, placement)
  kept = 1.0 - _box.box_fraction(start, size, shape)
  outside = jnp.where(kept > 0.0, lam / jnp.where(kept > 0.0, kept, 1.0), 0.0)
  mask = jnp.where(_box.box_indicator(start, size, shape), 0.0, outside).astype(jnp.float32)
  return mask, outside * kept


@pytree_dataclass
class HMix(MixMethod):
  """HMix with ``lam ~ Beta(alpha, alpha)`` and a fixed ``r``, or ``r ~ Beta(r_alpha, r_alpha)``.

  ``placement``: ``"clip"`` (as the official code) or ``"inside"``; ``box_sides``: ``"floor"``
  or ``"even"`` (the official code's). The mask's mean is ``lam``
  (up to float rounding), and so is the weight.

  >>> HMix(alpha=1.0, r=0.75)
  HMix(alpha=1.0, r=0.75, r_alpha=None, placement='clip', box_sides='floor')
  >>> s = HMix(r=0.5).sample(jax.random.key(0), shape=(8, 8), lam=0.5)
  >>> round(float(s.mask.mean()), 6), round(float(s.weight), 6)
  (0.5, 0.5)
  """

  name = "hmix"
  _positive = ("alpha", "r_alpha")
  _unit = ("r",)

  alpha: ArrayLike = 1.0
  r: ArrayLike = 0.5
  r_alpha: ArrayLike | None = None
  placement: str = static_field(default="clip")
  box_sides: str = static_field(default="floor")

  def _check(self) -> None:
    check_box_options(self.placement, self.box_sides)

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del data
    lam = self._beta_lam(key_lam, lam)
    key_r, key_box = _bits.split(key_mask)
    r = self.r if self.r_alpha is None else lam_laws.sample_beta(key_r, self.r_alpha)
    return Sample(lam, *_hmix(key_box, lam, r, shape, self.placement, self.box_sides))
