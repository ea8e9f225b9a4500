"""Exact box sides for an area of two traced factors: ``floor(((1 - lam) r)^(1/d) n)`` (HMix).

HMix cuts a box of nominal area ``(1 - lam) r``. Rounding that product to float32 before taking
the side (``_box.box_sizes``) is one off next to a side boundary, and which way can depend on how
a compiler evaluates it. Here the side along an axis of ``n`` cells is the largest ``s`` in
``[0, n]`` with ``s^d <= (1 - lam) r n^d`` for the float32 values of ``lam`` and ``r``, decided
in exact integer arithmetic: every float32 is ``m 2^-k`` (an integer ``m < 2^24``), so with
``N = n^d`` and ``S = s^d``

    (1 - lam) r N >= S  <=>  2^kL (mR N - S 2^kR) >= mL mR N,

a comparison of integers below ``2^120``. They are held as 12-bit limbs in int32 (a limb product
is below ``2^24``, a sum of a few below ``2^31``), so only integer adds, multiplies, shifts and
selects run, the same on every platform and compilation. Every candidate ``s`` is tested side by
side (no loop): ``n`` comparisons of a few dozen limbs per axis.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax.masks import _box  # the float32 fallback and the "even" rule

#: bits per limb: a product of two limbs fits in 24 bits, a sum of a few of them in int32.
LIMB_BITS = 12
#: limbs of every number here: 72 bits hold ``mL mR N`` for ``N < 2^24``.
LIMBS = 6
_MASK = (1 << LIMB_BITS) - 1
#: the largest ``n^d`` handled exactly (below ``2^24``); larger grids take the float32 product.
MAX_VOLUME = 2**24 - 1


def _decompose(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``(m, k)`` int32 with ``x = m 2^-k`` for float32 ``x`` in ``[0, 1]`` (``m = 0`` for 0)."""
  bits = jax.lax.bitcast_convert_type(x, jnp.uint32).astype(jnp.int32)
  exponent = (bits >> 23) & 0xFF
  fraction = bits & 0x7FFFFF
  m = jnp.where(exponent > 0, fraction | 0x800000, fraction)  # subnormals: m 2^-149
  return m, 150 - jnp.maximum(exponent, 1)


def _limbs(value: ArrayLike) -> jax.Array:
  """int32 ``[..., LIMBS]``: the limbs of a nonnegative int32 ``value`` (little-endian)."""
  shifts = LIMB_BITS * np.arange(LIMBS, dtype=np.int32)
  return (jnp.asarray(value, jnp.int32)[..., None] >> shifts) & _MASK


def _normalise(digits: jax.Array) -> jax.Array:
  """``digits`` (``[..., LIMBS]``, each of either sign below ``2^30``) carried into limbs; the
  last limb keeps the sign (negative for a negative number)."""
  out: list[jax.Array] = []
  carry = jnp.zeros_like(digits[..., 0])
  for i in range(LIMBS):
    total = digits[..., i] + carry
    if i == LIMBS - 1:
      out.append(total)
    else:
      out.append(total & _MASK)
      carry = total >> LIMB_BITS  # arithmetic: a borrow is -1
  return jnp.stack(out, axis=-1)


@functools.cache
def _diagonals() -> np.ndarray:
  """int32 ``[LIMBS, LIMBS, LIMBS]``: 1 where ``i + j = k`` (the columns of a product)."""
  i, j, k = np.meshgrid(*(np.arange(LIMBS),) * 3, indexing="ij")
  return (i + j == k).astype(np.int32)


def _multiply(a: jax.Array, b: jax.Array) -> jax.Array:
  """``a b`` (limbs; the product must fit in ``LIMBS``)."""
  a, b = jnp.broadcast_arrays(a, b)
  outer = a[..., :, None] * b[..., None, :]  # each below 2^24; a column sums at most 6
  return _normalise(jnp.einsum("...ij,ijk->...k", outer, _diagonals()))


def _moved(digits: jax.Array, whole: jax.Array, steps: range) -> jax.Array:
  """``digits`` moved up by ``whole`` limbs (down for negative ``whole``), for ``whole`` in
  ``steps`` (static), zeros shifted in: one select per step."""
  zero = jnp.zeros_like(digits)
  out = zero
  for step in steps:
    if step >= 0:
      shifted = jnp.concatenate([zero[..., :step], digits[..., : LIMBS - step]], -1)
    else:
      shifted = jnp.concatenate([digits[..., -step:], zero[..., :-step]], -1)
    out = jnp.where((whole == step)[..., None], shifted, out)
  return out


def _shift_up(a: jax.Array, bits: jax.Array) -> jax.Array:
  """``a 2^bits`` (limbs) for a traced ``bits`` in ``[0, 48]``; the result must fit in ``LIMBS``."""
  whole, part = bits // LIMB_BITS, bits % LIMB_BITS
  spread = a << part[..., None]  # below 2^24
  digits = (spread & _MASK) + jnp.concatenate([jnp.zeros_like(spread[..., :1]), spread[..., :-1] >> LIMB_BITS], -1)
  return _normalise(_moved(digits, whole, range(48 // LIMB_BITS + 1)))


def _shift_down(a: jax.Array, bits: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``(floor(a 2^-bits), a mod 2^bits != 0)`` for normalised limbs and ``0 <= bits <= 12 LIMBS``."""
  whole, part = bits // LIMB_BITS, bits % LIMB_BITS
  low = _moved(a, -whole, range(0, -LIMBS - 1, -1))
  high = jnp.concatenate([low[..., 1:], jnp.zeros_like(low[..., :1])], -1)
  part = part[..., None]
  quotient = (low >> part) | ((high << (LIMB_BITS - part)) & _MASK)
  index = jnp.broadcast_to(np.arange(LIMBS, dtype=np.int32), a.shape)
  whole = jnp.broadcast_to(whole[..., None], a.shape)
  below = jnp.where(index < whole, a, jnp.where(index == whole, a & ((1 << part) - 1), 0))
  return quotient, jnp.any(below != 0, axis=-1)


def _sign(a: jax.Array) -> jax.Array:
  """-1, 0 or 1: the sign of a normalised number (its sign is its last limb's)."""
  top = a[..., -1]
  return jnp.where(top != 0, jnp.sign(top), jnp.any(a != 0, axis=-1).astype(jnp.int32))


@functools.lru_cache(maxsize=64)
def _tables(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
  """Static int32 limbs: ``n_k^d`` per axis ``[d, LIMBS]``, and ``s^d`` for ``s = 1..max(n)``
  ``[max(n), LIMBS]``."""
  d = len(shape)
  limbs = lambda v: [(v >> (LIMB_BITS * i)) & _MASK for i in range(LIMBS)]
  volumes = np.array([limbs(n**d) for n in shape], np.int32)
  powers = np.array([limbs(s**d) for s in range(1, max(shape) + 1)], np.int32)
  return volumes, powers


def _reaches(lam: jax.Array, r: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """bool ``[d, max(n)]``: whether ``s^d <= (1 - lam) r n_k^d`` for ``s = 1..max(n)``, exactly.

  With ``X = mR N - S 2^kR`` and ``Y = mL mR N = q 2^kL + rem``: ``2^kL X >= Y`` iff ``X > q``, or
  ``X = q`` and ``rem = 0``. ``mR N < 2^48``; for ``kR >= 48``, ``S 2^kR > mR N`` (``S >= 1``).
  Every axis at once (the candidates past an axis's ``n_k`` are not counted by the caller).
  """
  volumes, powers = _tables(shape)
  m_lam, k_lam = _decompose(lam)
  m_r, k_r = _decompose(r)
  d, count = len(shape), len(powers)
  product = _multiply(_limbs(m_r), jnp.asarray(volumes))[:, None, :]  # mR N, [d, 1, LIMBS]
  scaled = _shift_up(jnp.asarray(powers), jnp.broadcast_to(jnp.minimum(k_r, 48), (count,)))
  x = _normalise(jnp.broadcast_to(product, (d, count, LIMBS)) - jnp.broadcast_to(scaled, (d, count, LIMBS)))
  quotient, remainder = _shift_down(
    _multiply(_limbs(m_lam), product), jnp.broadcast_to(jnp.minimum(k_lam, LIMB_BITS * LIMBS), product.shape[:-1])
  )
  excess = _sign(_normalise(x - jnp.broadcast_to(quotient, x.shape)))
  return (k_r < 48) & ((excess > 0) | ((excess == 0) & ~jnp.broadcast_to(remainder, excess.shape)))


def scaled_sizes(lam: ArrayLike, r: ArrayLike, shape: tuple[int, ...], *, sides: str = "floor") -> jax.Array:
  """Side lengths of the box of nominal area ``(1 - lam) r``: ``floor(((1 - lam) r)^(1/d) n_k)`` exactly.

  The side along axis ``k`` is the largest ``s`` in ``[0, n_k]`` with ``s^d <= (1 - lam) r n_k^d``
  for the float32 values of ``lam`` and ``r`` (each clipped to [0, 1]; NaN gives sides 0), in
  exact integer arithmetic (module docstring); with ``sides="even"`` it is ``2 * (that // 2)``.
  A grid with some ``n_k^d > MAX_VOLUME`` takes ``_box.box_sizes`` of the float32 product instead.

  Args:
    lam: traced scalar in [0, 1].
    r: traced scalar in [0, 1].
    shape: static spatial shape ``(n_1, ..., n_d)``.
    sides: static, ``"floor"`` or ``"even"``.

  Returns:
    int32 ``[d]`` side lengths, each in ``[0, n_k]``.

  >>> scaled_sizes(0.5, 0.5, (32, 16)).tolist()
  [16, 8]
  >>> lam = np.float32(0.4355469)  # (1 - lam) 0.5 32^2 = 288.99998..., below 17^2
  >>> scaled_sizes(lam, 0.5, (32, 32)).tolist(), _box.box_sizes((1 - lam) * 0.5, (32, 32)).tolist()
  ([16, 16], [17, 17])
  """
  lam = jnp.clip(jnp.asarray(lam, jnp.float32), 0.0, 1.0)
  r = jnp.clip(jnp.asarray(r, jnp.float32), 0.0, 1.0)
  valid = ~(jnp.isnan(lam) | jnp.isnan(r))
  lam, r = jnp.where(valid, lam, 1.0), jnp.where(valid, r, 0.0)
  d = len(shape)
  if any(n**d > MAX_VOLUME for n in shape):
    return _box.box_sizes((1.0 - lam) * r, shape, sides=sides)
  within = np.arange(1, max(shape) + 1)[None, :] <= np.array(shape)[:, None]  # s <= n_k
  reached = _reaches(lam, r, shape) & within
  return _box._finish(list(jnp.sum(reached, axis=1)), sides)
