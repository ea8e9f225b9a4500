"""Axis-aligned boxes on a grid of static shape, built from ``arange`` comparisons.

A box is a ``start`` and a ``size`` per spatial axis, both traced int32 vectors ``[d]``; its
indicator is the outer product of ``start_k <= i_k < start_k + size_k`` over the axes, so no
dynamic slicing is needed and every shape stays static. Works for any number of spatial axes
(1-D audio, 2-D images, 3-D video).

Sides follow from a nominal area by comparing one float32 number (the area fraction, or ``lam``
itself for CutMix's ``1 - lam``) with a static table of the float32 steps of that axis, built
once per ``(n_k, d)`` in exact integer arithmetic on the host: the floor is exact, with no
float32 root or product rounded across a step. ``sides="even"`` halves each side to an even
one, the convention of torchvision and the reference CutMix and HMix code (``BOX_SIDES``).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _bits, _validate

#: How a box's side follows from its nominal area ``f``: ``"floor"``, ``floor(f^(1/d) n_k)`` (as
#: timm's current ``rand_bbox``), or ``"even"``, ``2 * (floor(f^(1/d) n_k) // 2)``: the box
#: ``[c - h, c + h)`` around the centre ``c`` with ``h = floor(f^(1/d) n_k) // 2`` that
#: torchvision's ``CutMix``, the CutMix paper's code and the HMix/GMix code cut.
BOX_SIDES = ("floor", "even")


def box_sizes(area_fraction: ArrayLike, shape: tuple[int, ...], *, sides: str = "floor") -> jax.Array:
  """Side lengths of a box with ``area_fraction`` of the volume: ``floor(f^(1/d) n_k)`` exactly.

  The side along axis ``k`` is the largest ``s`` in ``[0, n_k]`` with ``s^d <= f n_k^d`` for the
  float32 value ``f`` of ``area_fraction`` (clipped to [0, 1]), in exact arithmetic: ``f`` is
  compared with a static table of the ``n_k`` float32 steps ``(s / n_k)^d`` rounded up, so no
  root or product is rounded. With ``sides="even"`` the side is ``2 * (that // 2)``. A NaN
  fraction gives sides 0.

  Args:
    area_fraction: traced scalar in [0, 1] (clipped), e.g. ``(1 - lam) r`` for HMix.
    shape: static spatial shape ``(n_1, ..., n_d)``.
    sides: static, ``"floor"`` or ``"even"`` (``BOX_SIDES``).

  Returns:
    int32 ``[d]`` side lengths, each in ``[0, n_k]``.

  >>> box_sizes(0.25, (32, 16)).tolist()
  [16, 8]
  >>> box_sizes(0.3, (10,), sides="even").tolist()  # floor(3.0) = 3, cut as 1 on either side
  [2]
  """
  _validate.check_choice("sides", sides, BOX_SIDES)
  fraction = jnp.clip(jnp.asarray(area_fraction, jnp.float32), 0.0, 1.0)
  d = len(shape)
  counts = [jnp.sum(fraction >= _fraction_steps(n, d)) for n in shape]
  return _finish(counts, sides)


def cut_sizes(lam: ArrayLike, shape: tuple[int, ...], *, sides: str = "floor") -> jax.Array:
  """Side lengths of the box of nominal area ``1 - lam`` cut by CutMix, from ``lam`` itself.

  The side along axis ``k`` is ``floor(n_k (1 - lam)^(1/d))`` as float64 arithmetic computes it
  from the float32 value of ``lam`` (clipped to [0, 1]): ``1 - lam`` is not rounded to float32,
  so near a step the side is not one too large. That is the exact floor (the largest ``s`` with
  ``s^d <= (1 - lam) n_k^d``) for every float32 ``lam`` but the tiniest: where float64 rounds
  ``1 - lam`` (or its root) to 1, the side is ``n_k`` as in the reference (``lam <= 2^-54``;
  ``lam < 1.5 * 2^-53`` for ``d = 3``), not ``n_k - 1``. ``lam`` is compared with a static table
  of the ``n_k`` float32 steps, so only float32 comparisons run on the device. With ``sides="even"`` the side
  is ``2 * (that // 2)``, as torchvision's ``CutMix`` and the CutMix paper's code compute it
  (``2 * int(0.5 * sqrt(1 - lam) * W)``, ``2 * (int(W * sqrt(1 - lam)) // 2)``). A NaN ``lam``
  gives sides 0.

  Args:
    lam: traced scalar ratio in [0, 1] (clipped).
    shape: static spatial shape ``(n_1, ..., n_d)``.
    sides: static, ``"floor"`` or ``"even"`` (``BOX_SIDES``).

  Returns:
    int32 ``[d]`` side lengths, each in ``[0, n_k]``.

  >>> cut_sizes(0.75, (32, 16)).tolist()
  [16, 8]
  >>> lam = np.float32(0.48339847)  # just above 1 - (23/32)^2: the side is 22
  >>> cut_sizes(lam, (32, 32)).tolist(), box_sizes(1 - lam, (32, 32)).tolist()  # float32 1 - lam: 23
  ([22, 22], [23, 23])
  """
  _validate.check_choice("sides", sides, BOX_SIDES)
  lam = jnp.clip(jnp.asarray(lam, jnp.float32), 0.0, 1.0)
  d = len(shape)
  counts = [jnp.sum(lam <= _cut_steps(n, d)) for n in shape]
  return _finish(counts, sides)


def _finish(counts: list[jax.Array], sides: str) -> jax.Array:
  """int32 ``[d]`` sides from the per-axis step counts, halved to even ones for ``"even"``."""
  size = jnp.stack(counts).astype(jnp.int32)
  return 2 * (size // 2) if sides == "even" else size


def _float32_around(num: int, den: int) -> tuple[np.float32, np.float32]:
  """``(below, above)``: the largest float32 <= ``num / den`` and the smallest float32 >= it (``num >= 0``)."""
  guess = np.float32(num / den)
  ratio = lambda x: float(x).as_integer_ratio()
  up, down = np.float32(np.inf), np.float32(-np.inf)
  # Settle the double rounding of num / den -> float64 -> float32 (an ulp at most): bounded steps.
  for _ in range(8):
    p, q = ratio(guess)
    if p * den > num * q:
      guess = np.nextafter(guess, down)
      continue
    nxt = np.nextafter(guess, up)
    p, q = ratio(nxt)
    if p * den <= num * q:
      guess = nxt
      continue
    break
  else:
    raise ArithmeticError(f"no float32 bracket found for {num} / {den} in 8 steps.")
  p, q = ratio(guess)
  return guess, (guess if p * den == num * q else np.nextafter(guess, up))


@functools.lru_cache(maxsize=64)
def _fraction_steps(n: int, d: int) -> np.ndarray:
  """float32 ``[n]``: entry ``s - 1`` is the smallest float32 ``>= (s / n)^d``, for ``s = 1..n``.

  A float32 ``f`` has ``f >= (s / n)^d`` exactly when it is at least that entry, so the count of
  entries ``<= f`` is ``floor(f^(1/d) n)``.
  """
  return np.array([_float32_around(s**d, n**d)[1] for s in range(1, n + 1)], np.float32)


@functools.lru_cache(maxsize=64)
def _cut_steps(n: int, d: int) -> np.ndarray:
  """float32 ``[n]``: entry ``s - 1`` is the largest float32 ``lam`` whose side is at least ``s``.

  For ``s < n`` that is the largest float32 ``<= 1 - (s / n)^d`` (then ``1 - lam >= (s / n)^d``
  exactly). For ``s = n`` it is the largest ``lam`` for which the float64 reference gives
  ``n (1 - lam)^(1/d) >= n``: float64 rounds ``1 - lam`` to ``1 - q 2^-53`` with ``q`` the
  integer nearest ``lam 2^53`` (ties to even), and the largest such ``q`` is found by
  evaluating the reference on the host (``q = 0`` for ``d <= 2``, 1 for ``d = 3``).
  """
  steps = [_float32_around(n**d - s**d, n**d)[0] for s in range(1, n)]
  last = 0
  while last < 64 and _reference_side(1.0 - (last + 1) * 2.0**-53, n, d) >= n:
    last += 1
  tie = np.float32((2 * last + 1) * 2.0**-54)  # lam 2^53 = last + 1/2: rounds to last when it is even
  steps.append(tie if last % 2 == 0 else np.nextafter(tie, np.float32(0)))
  return np.array(steps, np.float32)


def _reference_side(complement: float, n: int, d: int) -> int:
  """``floor(n complement^(1/d))`` in float64, as the reference implementations evaluate it."""
  root = complement if d == 1 else math.sqrt(complement) if d == 2 else complement ** (1.0 / d)
  return math.floor(n * root)


def box_indicator(start: jax.Array, size: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """Indicator of ``{i : start_k <= i_k < start_k + size_k for every k}`` on the grid.

  Parts of the box outside the grid are dropped (clipping).

  Args:
    start: int ``[d]`` first index per axis (may be negative).
    size: int ``[d]`` side lengths.
    shape: static spatial shape.

  Returns:
    bool array of ``shape``.

  >>> box_indicator(jnp.array([1]), jnp.array([2]), (4,)).tolist()
  [False, True, True, False]
  """
  inside = jnp.ones(shape, dtype=bool)
  for axis, n in enumerate(shape):
    index = jnp.arange(n)
    along = (index >= start[axis]) & (index < start[axis] + size[axis])
    view = [1] * len(shape)
    view[axis] = n
    inside = inside & along.reshape(view)
  return inside


def box_volume(start: jax.Array, size: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """Number of grid points in the clipped box, ``prod_k (clip(start_k + size_k) - clip(start_k))``.

  Counts exactly the ``True`` entries of ``box_indicator(start, size, shape)`` without building
  it (float32 scalar, exact while the volume is below ``2^24``).

  Args:
    start: int ``[d]`` first index per axis (may be negative).
    size: int ``[d]`` side lengths.
    shape: static spatial shape.

  Returns:
    float32 scalar in ``[0, prod(shape)]``.

  >>> float(box_volume(jnp.array([-1, 2]), jnp.array([3, 5]), (4, 6)))
  8.0
  """
  dims = jnp.asarray(shape, jnp.int32)
  low = jnp.clip(start, 0, dims)
  high = jnp.clip(start + size, 0, dims)
  return jnp.prod(jnp.maximum(high - low, 0).astype(jnp.float32))


def box_fraction(start: jax.Array, size: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """Share of the grid inside the clipped box: the mean of ``box_indicator(start, size, shape)``.

  ``prod_k (clip(start_k + size_k, 0, n_k) - clip(start_k, 0, n_k)) / prod_k n_k``, with the
  same float32 rounding as averaging the indicator (an exact count times ``1 / volume``).

  Args:
    start: int ``[d]`` first index per axis (may be negative).
    size: int ``[d]`` side lengths.
    shape: static spatial shape.

  Returns:
    float32 scalar in [0, 1].

  >>> float(box_fraction(jnp.array([-1, 2]), jnp.array([3, 5]), (4, 6)))
  0.3333333432674408
  """
  return box_volume(start, size, shape) * _reciprocal_volume(shape)


def box_complement_fraction(start: jax.Array, size: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """Share of the grid outside the clipped box: the mean of ``~box_indicator(start, size, shape)``.

  Returns:
    float32 scalar in [0, 1], rounded as averaging the complement indicator.
  """
  volume = np.float32(math.prod(shape))
  return (volume - box_volume(start, size, shape)) * _reciprocal_volume(shape)


def _reciprocal_volume(shape: tuple[int, ...]) -> np.float32:
  """``1 / prod(shape)`` rounded to float32: compiled means multiply by it (XLA rewrites the
  division by a constant), so the closed forms round as averaging the indicator does."""
  return np.float32(1.0) / np.float32(math.prod(shape))


def sample_box(key: jax.Array, size: jax.Array, shape: tuple[int, ...], placement: str) -> jax.Array:
  """Draws the start of a box of ``size`` on the grid.

  ``placement="clip"``: the centre ``c`` is uniform over the pixels, the box starts at
  ``c - size // 2`` and is clipped at the border, as in the CutMix paper's code, timm and
  torchvision: with even sides (``sides="even"``) it is their ``[c - h, c + h)``; with an odd
  side the extra row lies after ``c``, as timm's current ``[c - cut // 2, c + (cut + 1) // 2)``.
  ``placement="inside"``: the start is uniform over the
  ``n_k - size_k + 1`` positions that keep the box fully inside, so the area is exact (the
  setting of Eq. 10).

  Args:
    key: a PRNG key.
    size: int32 ``[d]`` side lengths.
    shape: static spatial shape.
    placement: ``"clip"`` or ``"inside"``.

  Returns:
    int32 ``[d]`` start indices.
  """
  dims = jnp.asarray(shape, jnp.int32)
  if placement == "clip":
    centre = _bits.randint(key, (len(shape),), 0, dims)
    return centre - size // 2
  if placement == "inside":
    return _bits.randint(key, (len(shape),), 0, dims - size + 1)
  raise ValueError(f"placement must be 'clip' or 'inside'; got {placement!r}.")


def random_box_extent(
  key: jax.Array, area_fraction: ArrayLike, shape: tuple[int, ...], placement: str, *, sides: str = "floor"
) -> tuple[jax.Array, jax.Array]:
  """``(start, size)`` (int32 ``[d]`` each) of a random box of nominal ``area_fraction``.

  ``size`` is ``box_sizes(area_fraction, shape, sides=sides)`` and ``start`` is drawn by
  ``sample_box(key, size, shape, placement)``.
  """
  size = box_sizes(area_fraction, shape, sides=sides)
  return sample_box(key, size, shape, placement), size


def random_cut_extent(
  key: jax.Array, lam: ArrayLike, shape: tuple[int, ...], placement: str, *, sides: str = "floor"
) -> tuple[jax.Array, jax.Array]:
  """``(start, size)`` (int32 ``[d]`` each) of CutMix's random box for ratio ``lam``.

  As ``random_box_extent(key, 1 - lam, ...)`` with the sides of ``cut_sizes(lam, shape,
  sides=sides)``, so ``1 - lam`` is never rounded to float32; the same key draws the same start.
  """
  size = cut_sizes(lam, shape, sides=sides)
  return sample_box(key, size, shape, placement), size


def random_box(
  key: jax.Array, area_fraction: ArrayLike, shape: tuple[int, ...], placement: str, *, sides: str = "floor"
) -> jax.Array:
  """Indicator of a random box of nominal ``area_fraction`` (bool array of ``shape``)."""
  start, size = random_box_extent(key, area_fraction, shape, placement, sides=sides)
  return box_indicator(start, size, shape)
