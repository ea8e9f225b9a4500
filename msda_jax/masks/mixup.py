"""Mixup: the constant mask ``M = lam 1`` (Eq. 2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax.masks._base import MixMethod, method_dataclass


def mixup_mask(key: jax.Array | None, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
  """Mixup mask ``M = lam 1`` (Eq. 2); the key is unused.

  ``lam`` is not clipped: values outside [0, 1] give the unbounded masks of Figure 2.

  Args:
    key: unused (kept for the common sampler signature).
    lam: traced scalar ratio.
    shape: static spatial shape.

  Returns:
    float32 array of ``shape`` filled with ``lam``.

  >>> mixup_mask(None, 0.25, shape=(2, 3)).tolist()
  [[0.25, 0.25, 0.25], [0.25, 0.25, 0.25]]
  """
  del key
  return jnp.full(shape, jnp.asarray(lam, jnp.float32), dtype=jnp.float32)


@method_dataclass
class Mixup(MixMethod):
  """Mixup with ``lam ~ Beta(alpha, alpha)``.

  >>> Mixup(alpha=0.8)
  Mixup(alpha=0.8...)
  """

  name = "mixup"
  _positive = ("alpha",)

  alpha: ArrayLike = 1.0

  def mask(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
    return mixup_mask(key, lam, shape=shape)

  def mask_mean(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
    del key, shape
    return jnp.asarray(lam, jnp.float32)
