"""I.i.d. Bernoulli pixel masks: ``M_j ~ Bernoulli(lam)`` (the paper's Figure 1 variant)."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _bits
from msda_jax._dataclass import pytree_dataclass
from msda_jax.masks._base import MixMethod, Sample

#: resolution of the pixel probability: ``P(M_j = 1) = round(LEVELS lam) / LEVELS``.
LEVELS = 1 << 16


def bernoulli_probability(lam: ArrayLike) -> jax.Array:
  """The realised ``P(M_j = 1)`` for a ratio ``lam``: ``round(65536 lam) / 65536`` (float32).

  Within ``2^-17`` of ``lam`` (clipped to [0, 1]); exactly ``lam`` for 0, 1 and multiples of
  ``2^-16``.

  >>> float(bernoulli_probability(0.3))
  0.3000030517578125
  """
  lam = jnp.clip(jnp.asarray(lam, jnp.float32), 0.0, 1.0)
  return jnp.round(lam * LEVELS) / LEVELS


def _bernoulli(key: jax.Array, lam: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """Mask of independent Bernoulli pixels with ``P(M_j = 1) = round(65536 lam) / 65536`` (float32 {0, 1}).

  Each 32-bit random word of ``jax.random.bits(key, (ceil(S / 2),))`` gives two pixels: its two
  16-bit halves are uniform integers ``u`` in ``[0, 65536)``, and ``M_j = [u_j < round(65536 lam)]``.
  The probability is therefore ``lam`` (clipped to [0, 1]) quantised to multiples of ``2^-16``
  (error at most ``2^-17``, see ``bernoulli_probability``).
  """
  lam = jnp.clip(jnp.asarray(lam, jnp.float32), 0.0, 1.0)
  threshold = jnp.round(lam * LEVELS).astype(jnp.uint32)
  size = math.prod(shape)
  half = (size + 1) // 2
  # Pixel j < half takes the low half of word j, the others the high half of word j - half; each
  # pixel computes its word where it is used (_bits), so no array of words is ever made.
  pixel = jnp.arange(size, dtype=jnp.uint32)
  high = pixel >= half
  words = _bits.bits_at(key, jnp.where(high, pixel - half, pixel), half)
  halves = jnp.where(high, words >> 16, words & jnp.uint32(0xFFFF))
  return (halves < threshold).astype(jnp.float32).reshape(shape)


@pytree_dataclass
class Bernoulli(MixMethod):
  """Bernoulli pixel masks with ``lam ~ Beta(alpha, alpha)``: ``M_j ~ Bernoulli(lam)`` i.i.d.

  The pixel probability is ``lam`` quantised to multiples of ``2^-16`` (``bernoulli_probability``);
  the weight is the realised mean of the mask.

  >>> Bernoulli()
  Bernoulli(alpha=1.0)
  >>> Bernoulli().sample(jax.random.key(0), shape=(3,), lam=1.0).mask.tolist()
  [1.0, 1.0, 1.0]
  """

  name = "bernoulli"
  _positive = ("alpha",)

  alpha: ArrayLike = 1.0

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del data
    lam = self._beta_lam(key_lam, lam)
    mask = _bernoulli(key_mask, lam, shape)
    return Sample(lam, mask, jnp.mean(mask, dtype=jnp.float32))
