"""Mixup: the constant mask ``M = lam 1`` (Eq. 2)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax._dataclass import pytree_dataclass
from msda_jax.masks._base import MixMethod, Sample


def _mixup(lam: ArrayLike, shape: tuple[int, ...]) -> Sample:
  """Mixup's mask ``M = lam 1`` (Eq. 2) and its weight ``lam``; ``lam`` is not clipped.

  Values of ``lam`` outside [0, 1] give the unbounded masks of Figure 2.
  """
  lam = jnp.asarray(lam, jnp.float32)
  return Sample(lam, jnp.full(shape, lam, dtype=jnp.float32), lam)


@pytree_dataclass
class Mixup(MixMethod):
  """Mixup with ``lam ~ Beta(alpha, alpha)``: ``M = lam 1`` (Eq. 2), weight ``lam``.

  ``lam`` is not clipped: a given value outside [0, 1] gives the unbounded masks of Figure 2.

  >>> Mixup(alpha=0.8)
  Mixup(alpha=0.8...)
  >>> Mixup().sample(jax.random.key(0), shape=(2, 3), lam=0.25).mask.tolist()
  [[0.25, 0.25, 0.25], [0.25, 0.25, 0.25]]
  """

  name = "mixup"
  _positive = ("alpha",)

  alpha: ArrayLike = 1.0

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del key_mask, data
    return _mixup(self._beta_lam(key_lam, lam), shape)
