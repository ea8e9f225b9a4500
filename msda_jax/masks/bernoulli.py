"""I.i.d. Bernoulli pixel masks: ``M_j ~ Bernoulli(lam)`` (the paper's Figure 1 variant)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax.masks._base import MixMethod, method_dataclass


def bernoulli_mask(key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
  """Mask of independent ``Bernoulli(lam)`` pixels, so ``E[M | lam] = lam 1``.

  Args:
    key: a PRNG key.
    lam: traced scalar ratio in [0, 1] (clipped).
    shape: static spatial shape.

  Returns:
    float32 array of ``shape`` with values in {0, 1}.

  >>> m = bernoulli_mask(jax.random.key(0), 1.0, shape=(3,))
  >>> m.tolist()
  [1.0, 1.0, 1.0]
  """
  lam = jnp.clip(jnp.asarray(lam, jnp.float32), 0.0, 1.0)
  return jax.random.bernoulli(key, lam, shape).astype(jnp.float32)


@method_dataclass
class Bernoulli(MixMethod):
  """Bernoulli pixel masks with ``lam ~ Beta(alpha, alpha)``.

  >>> Bernoulli()
  Bernoulli(alpha=1.0)
  """

  name = "bernoulli"
  _positive = ("alpha",)

  alpha: ArrayLike = 1.0

  def mask(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
    return bernoulli_mask(key, lam, shape=shape)
