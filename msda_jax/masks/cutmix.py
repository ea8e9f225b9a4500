"""CutMix: a box of the partner pasted into the image (Eq. 3).

The box has side ``floor((1 - lam)^(1/d) n_k)`` along each of the ``d`` spatial axes
(``sqrt(1 - lam)`` of each side for images). With ``placement="clip"`` its centre is uniform
over the pixels and it is clipped at the border, as in the CutMix paper's code, timm and
torchvision; the label weight is then the realised mask mean, not ``lam``. With
``placement="inside"`` it lies fully inside the image, so its area is exact: the setting of
Eq. (10).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _validate
from msda_jax.masks import _box
from msda_jax.masks._base import MixMethod, method_dataclass, static_field

PLACEMENTS = ("clip", "inside")


def cutmix_mask(key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...], placement: str = "clip") -> jax.Array:
  """CutMix mask: 0 inside a random box of nominal area ``1 - lam``, 1 outside (Eq. 3).

  Args:
    key: a PRNG key (box position).
    lam: traced scalar ratio in [0, 1] (clipped).
    shape: static spatial shape, any number of axes.
    placement: ``"clip"`` (centre uniform, box clipped) or ``"inside"`` (exact area).

  Returns:
    float32 array of ``shape`` with values in {0, 1}.

  >>> m = cutmix_mask(jax.random.key(0), 0.75, shape=(8, 8), placement="inside")
  >>> float(m.mean())  # a 4 x 4 box: 1 - 16 / 64
  0.75
  """
  _validate.check_choice("placement", placement, PLACEMENTS)
  start, size = _box.random_box_extent(key, 1.0 - jnp.asarray(lam, jnp.float32), shape, placement)
  return jnp.where(_box.box_indicator(start, size, shape), 0.0, 1.0).astype(jnp.float32)


def cutmix_mask_mean(key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...], placement: str = "clip") -> jax.Array:
  """Mean of ``cutmix_mask`` with the same arguments (float32 scalar), from the box's extent.

  >>> float(cutmix_mask_mean(jax.random.key(0), 0.75, shape=(8, 8), placement="inside"))
  0.75
  """
  _validate.check_choice("placement", placement, PLACEMENTS)
  start, size = _box.random_box_extent(key, 1.0 - jnp.asarray(lam, jnp.float32), shape, placement)
  return _box.box_complement_fraction(start, size, shape)


@method_dataclass
class CutMix(MixMethod):
  """CutMix with ``lam ~ Beta(alpha, alpha)``.

  >>> CutMix(alpha=1.0, placement="inside")
  CutMix(alpha=1.0, placement='inside')
  """

  name = "cutmix"
  _positive = ("alpha",)

  alpha: ArrayLike = 1.0
  placement: str = static_field(default="clip")

  def _check(self) -> None:
    _validate.check_choice("placement", self.placement, PLACEMENTS)

  def mask(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
    return cutmix_mask(key, lam, shape=shape, placement=self.placement)

  def mask_mean(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
    return cutmix_mask_mean(key, lam, shape=shape, placement=self.placement)
