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
selects run, the same on every platform and compilation. The float32 product ``f = fl(fl(1 - lam) r)``
is within ``2^-23`` of the exact area relative to it, so the exact side is within ``1 + n 2^-23``
of the side of ``f``: the candidates around that side (3 for ``n < 2^22``) are tested side by side
(no loop), elementwise integer work that fuses into a few kernels.
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


Limbs = list[jax.Array]


def _limbs(value: jax.Array) -> Limbs:
  """The ``LIMBS`` limbs of a nonnegative int32 ``value`` (little-endian), each like ``value``."""
  return [(value >> (LIMB_BITS * i)) & _MASK for i in range(LIMBS)]


def _normalise(digits: Limbs) -> Limbs:
  """``digits`` (each of either sign below ``2^30``) carried into limbs; the last limb keeps the
  sign (negative for a negative number)."""
  out, carry = [], jnp.zeros_like(digits[0])
  for i, digit in enumerate(digits):
    total = digit + carry
    if i == len(digits) - 1:
      out.append(total)
    else:
      out.append(total & _MASK)
      carry = total >> LIMB_BITS  # arithmetic: a borrow is -1
  return out


def _multiply(m: jax.Array, b: Limbs) -> Limbs:
  """``m b`` for an int32 ``m < 2^24`` (two limbs) and limbs ``b``; it must fit in ``LIMBS``."""
  low, high = m & _MASK, m >> LIMB_BITS
  return _normalise([low * b[i] + (high * b[i - 1] if i else 0) for i in range(LIMBS)])  # each below 2^25


def _moved(digits: Limbs, whole: jax.Array, steps: range) -> Limbs:
  """``digits`` moved up by ``whole`` limbs (down for negative ``whole``), for ``whole`` in
  ``steps`` (static), zeros shifted in: elementwise selects."""
  zero = jnp.zeros_like(digits[0])
  out = [zero] * LIMBS
  for step in steps:
    chosen = whole == step
    out = [jnp.where(chosen, digits[j - step] if 0 <= j - step < LIMBS else zero, out[j]) for j in range(LIMBS)]
  return out


def _shift_up(a: Limbs, bits: jax.Array) -> Limbs:
  """``a 2^bits`` for a traced ``bits`` in ``[0, 48]``; the result must fit in ``LIMBS``."""
  whole, part = bits // LIMB_BITS, bits % LIMB_BITS
  spread = [x << part for x in a]  # below 2^24
  digits = [(spread[i] & _MASK) + (spread[i - 1] >> LIMB_BITS if i else 0) for i in range(LIMBS)]
  return _normalise(_moved(digits, whole, range(48 // LIMB_BITS + 1)))


def _shift_down(a: Limbs, bits: jax.Array) -> tuple[Limbs, jax.Array]:
  """``(floor(a 2^-bits), a mod 2^bits != 0)`` for normalised limbs and ``0 <= bits <= 12 LIMBS``."""
  whole, part = bits // LIMB_BITS, bits % LIMB_BITS
  low = _moved(a, -whole, range(0, -LIMBS - 1, -1))
  zero = jnp.zeros_like(a[0])
  quotient = [
    (low[i] >> part) | (((low[i + 1] if i + 1 < LIMBS else zero) << (LIMB_BITS - part)) & _MASK) for i in range(LIMBS)
  ]
  below = [jnp.where(i < whole, a[i], jnp.where(i == whole, a[i] & ((1 << part) - 1), 0)) for i in range(LIMBS)]
  return quotient, functools.reduce(jnp.logical_or, [v != 0 for v in below])


def _sign(a: Limbs) -> jax.Array:
  """-1, 0 or 1: the sign of a normalised number (its sign is its last limb's)."""
  nonzero = functools.reduce(jnp.logical_or, [v != 0 for v in a])
  return jnp.where(a[-1] != 0, jnp.sign(a[-1]), nonzero.astype(jnp.int32))


def _window(shape: tuple[int, ...]) -> int:
  """Candidates either side of the float32 product's side: the exact side is within
  ``1 + n 2^-23`` of it (module docstring), so 1 below ``n = 2^22`` (twice the margin)."""
  return 1 + (max(shape) >> 22)


def _reaches(lam: jax.Array, r: jax.Array, powers: jax.Array, volumes: np.ndarray) -> jax.Array:
  """bool like ``powers``: whether ``S <= (1 - lam) r N`` for each ``S`` of ``powers`` (int32
  ``[d, K]``, below ``2^24``) and ``N = volumes[k]`` of its row, exactly.

  With ``X = mR N - S 2^kR`` and ``Y = mL mR N = q 2^kL + rem``: ``2^kL X >= Y`` iff ``X > q``, or
  ``X = q`` and ``rem = 0``. ``mR N < 2^48``; for ``kR >= 48``, ``S 2^kR > mR N`` (``S >= 1``).
  """
  m_lam, k_lam = _decompose(lam)
  m_r, k_r = _decompose(r)
  volume = [jnp.broadcast_to(jnp.asarray(limb[:, None], jnp.int32), powers.shape) for limb in _static_limbs(volumes)]
  product = _multiply(jnp.broadcast_to(m_r, powers.shape), volume)  # mR N
  scaled = _shift_up(_limbs(powers), jnp.broadcast_to(jnp.minimum(k_r, 48), powers.shape))
  x = _normalise([p - q for p, q in zip(product, scaled, strict=True)])
  quotient, remainder = _shift_down(
    _multiply(jnp.broadcast_to(m_lam, powers.shape), product),
    jnp.broadcast_to(jnp.minimum(k_lam, LIMB_BITS * LIMBS), powers.shape),
  )
  excess = _sign(_normalise([p - q for p, q in zip(x, quotient, strict=True)]))
  return (k_r < 48) & ((excess > 0) | ((excess == 0) & ~remainder))


def _static_limbs(values: np.ndarray) -> list[np.ndarray]:
  """The ``LIMBS`` limbs of nonnegative ints (numpy, little-endian)."""
  values = np.asarray(values, np.int64)
  return [((values >> (LIMB_BITS * i)) & _MASK).astype(np.int32) for i in range(LIMBS)]


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
  # The float32 product's sides (exact for that product), then the exact test of the candidates
  # around them: the largest candidate reached is the side.
  rounded = _box.box_sizes((1.0 - lam) * r, shape)
  n = np.array(shape, np.int32)[:, None]
  window = _window(shape)
  candidates = rounded[:, None] + np.arange(-window, window + 1, dtype=np.int32)[None, :]  # [d, K]
  inside = (candidates >= 1) & (candidates <= n)
  s = jnp.clip(candidates, 1, n)
  powers = functools.reduce(lambda acc, _: acc * s, range(d - 1), s)  # s^d <= n^d < 2^24
  reached = inside & _reaches(lam, r, powers, np.array(shape, np.int64) ** d)
  side = jnp.max(jnp.where(reached, candidates, 0), axis=1)
  return _box._finish(list(side), sides)
