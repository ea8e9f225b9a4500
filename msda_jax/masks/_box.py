"""Axis-aligned boxes on a grid of static shape, built from ``arange`` comparisons.

A box is a ``start`` and a ``size`` per spatial axis, both traced int32 vectors ``[d]``; its
indicator is the outer product of ``start_k <= i_k < start_k + size_k`` over the axes, so no
dynamic slicing is needed and every shape stays static. Works for any number of spatial axes
(1-D audio, 2-D images, 3-D video).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike


def box_sizes(area_fraction: ArrayLike, shape: tuple[int, ...]) -> jax.Array:
  """Side lengths of a box with ``area_fraction`` of the volume: ``floor(f^(1/d) n_k)``.

  Args:
    area_fraction: traced scalar in [0, 1] (clipped), e.g. ``1 - lam`` for CutMix.
    shape: static spatial shape ``(n_1, ..., n_d)``.

  Returns:
    int32 ``[d]`` side lengths, each in ``[0, n_k]``.

  >>> box_sizes(0.25, (32, 16)).tolist()
  [16, 8]
  """
  d = len(shape)
  fraction = jnp.clip(jnp.asarray(area_fraction, jnp.float32), 0.0, 1.0)
  dims = jnp.asarray(shape, jnp.float32)
  sizes = jnp.clip(jnp.floor(fraction ** (1.0 / d) * dims), 0, dims)
  if d >= 3:
    # A float32 root of order >= 3 is not correctly rounded (the cube root of 1/64 lands just
    # below 1/4, giving a side one short), so settle the floor with the integer test
    # s^d <= f n^d, exact for perfect powers while n^d < 2^24. Square roots are exact already.
    target = fraction * dims**d
    sizes = sizes + ((sizes < dims) & ((sizes + 1.0) ** d <= target)) - (sizes**d > target)
  return sizes.astype(jnp.int32)


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

  ``placement="clip"``: the centre is uniform over the pixels, the box is centred there
  (``start = centre - size // 2``) and clipped at the border, as in the CutMix paper's code, timm
  and torchvision. ``placement="inside"``: the start is uniform over the
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
    centre = jax.random.randint(key, (len(shape),), 0, dims)
    return centre - size // 2
  if placement == "inside":
    return jax.random.randint(key, (len(shape),), 0, dims - size + 1)
  raise ValueError(f"placement must be 'clip' or 'inside'; got {placement!r}.")


def random_box_extent(
  key: jax.Array, area_fraction: ArrayLike, shape: tuple[int, ...], placement: str
) -> tuple[jax.Array, jax.Array]:
  """``(start, size)`` (int32 ``[d]`` each) of a random box of nominal ``area_fraction``."""
  size = box_sizes(area_fraction, shape)
  return sample_box(key, size, shape, placement), size


def random_box(key: jax.Array, area_fraction: ArrayLike, shape: tuple[int, ...], placement: str) -> jax.Array:
  """Indicator of a random box of nominal ``area_fraction`` (bool array of ``shape``)."""
  start, size = random_box_extent(key, area_fraction, shape, placement)
  return box_indicator(start, size, shape)
