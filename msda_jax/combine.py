"""The convex combination of a pixel's (or a label's) sources, in the sources' dtype (Eq. 1).

``x~ = sum_m W_m x_m`` with weights that sum to 1: two sources (``W_0 = M``, ``W_1 = 1 - M``)
for the two-sample methods, ``k`` for k-sample mixing. One function serves both, images and
targets alike, so every method mixes with the same arithmetic and the same dtype rules.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def combine(sources: Sequence[jax.Array], weights: Sequence[ArrayLike]) -> jax.Array:
  """``sum_{m<k-1} W_m x_m + (1 - sum_{m<k-1} W_m) x_{k-1}``, in the dtype of ``sources[0]``.

  The last source takes the rest of the weight, so the weights need not be given for it
  (``weights`` may have ``k - 1`` or ``k`` entries; a ``k``-th is not read). The sum runs in
  float32 (float64 kept) and is exact where a weight is 0 or 1: the result is then a source,
  bit for bit. uint8 rounds, then clips into [0, 255] (a no-op for weights in [0, 1]; weights
  outside it, as an unbounded ``lam``, can leave the range).

  Args:
    sources: ``k >= 2`` arrays of one shape and dtype (float or uint8), e.g. ``[B, *S, C]``.
    weights: ``k - 1`` (or ``k``) arrays broadcasting against the sources: ``[B, *S, 1]`` masks
      for images, ``[B, 1]`` weights for label rows.

  Returns:
    the combination, shaped and typed like ``sources[0]``.

  >>> x, xp = jnp.array([[0, 200]], jnp.uint8), jnp.array([[100, 100]], jnp.uint8)
  >>> combine((x, xp), (jnp.array([[0.25, 1.0]]),)).tolist()
  [[75, 200]]
  """
  dtype = sources[0].dtype
  compute = jnp.float64 if dtype == jnp.float64 else jnp.float32
  w = jnp.asarray(weights[0]).astype(compute)
  mixed, rest = w * sources[0].astype(compute), 1.0 - w
  for x, given in zip(sources[1:-1], weights[1 : len(sources) - 1], strict=True):
    w = jnp.asarray(given).astype(compute)
    mixed, rest = mixed + w * x.astype(compute), rest - w
  mixed = mixed + rest * sources[-1].astype(compute)
  if dtype == jnp.uint8:
    mixed = jnp.clip(jnp.round(mixed), 0, 255)
  return mixed.astype(dtype)


def perturb(images: jax.Array, noise: jax.Array, where: jax.Array) -> jax.Array:
  """``clip(x + noise)`` to the pixel range (0-255 for uint8, else [0, 1]) where ``where [B]``, else ``x``.

  >>> perturb(jnp.array([[0.5], [0.5]]), jnp.array([[0.7], [0.7]]), jnp.array([True, False])).tolist()
  [[1.0], [0.5]]
  """
  top = 255.0 if images.dtype == jnp.uint8 else 1.0
  moved = jnp.clip(images.astype(jnp.float32) + noise, 0.0, top)
  if images.dtype == jnp.uint8:
    moved = jnp.round(moved)
  moved = moved.astype(images.dtype)
  return jnp.where(where.reshape((-1,) + (1,) * (images.ndim - 1)), moved, images)


def shifted(images: jax.Array, shifts: jax.Array, spatial_ndim: int) -> jax.Array:
  """``out[b, i] = images[b, (i + shifts[b]) mod n]`` per spatial axis, ``shifts`` int32 ``[B | 1, d]``.

  One gather of whole pixels (their channels) from the flattened batch: the output's index
  ``(b, i)`` reads ``(b, (i + shifts[b]) mod n)``, computed from one index per axis.

  >>> shifted(jnp.arange(4.0).reshape(1, 4, 1), jnp.array([[1]]), 1)[0, :, 0].tolist()
  [1.0, 2.0, 3.0, 0.0]
  """
  batch, spatial = images.shape[0], images.shape[1 : 1 + spatial_ndim]
  shifts = jnp.broadcast_to(shifts, (batch, spatial_ndim))
  flat = jnp.arange(batch, dtype=jnp.int32).reshape((batch,) + (1,) * spatial_ndim)
  for axis, n in enumerate(spatial):
    view = [batch] + [1] * spatial_ndim
    index = (jnp.arange(n, dtype=jnp.int32)[None, :] + shifts[:, axis : axis + 1]) % n
    view[axis + 1] = n
    flat = flat * n + index.reshape(view)
  rows = images.reshape((-1, *images.shape[1 + spatial_ndim :]))
  return rows[flat.reshape(-1)].reshape(images.shape)


def selected(images: jax.Array, owner: jax.Array, partners: jax.Array, moves: jax.Array | None) -> jax.Array:
  """``out[b, i] = images[partners[b, m], i + moves[b, m]]`` with ``m = owner[b, i]`` (one gather).

  The mix of one-hot source regions (RICAP, k-image CutMix) as a selection: each output pixel is
  read once from the batch, instead of every source being moved and weighted.

  Args:
    images: ``[B, *S, ...]`` (images, or dense targets).
    owner: int ``[B | 1, *S]`` the source of each pixel.
    partners: int ``[B, k]`` the example of each source (column 0: the example itself).
    moves: int ``[B | 1, k, d]`` where each source is read from (cyclically), or ``None``.

  >>> x = jnp.arange(8.0).reshape(2, 4, 1)  # two 1-D images of 4 pixels
  >>> selected(x, jnp.array([[0, 0, 1, 1]]), jnp.array([[0, 1], [1, 0]]), None)[..., 0].tolist()
  [[0.0, 1.0, 6.0, 7.0], [4.0, 5.0, 2.0, 3.0]]
  """
  batch, k = partners.shape
  spatial = owner.shape[1:]

  def per_pixel(values: jax.Array) -> jax.Array:
    """``values[b, owner[b, i]]`` for ``values [B | 1, k]``: k selects, no gather."""
    view = (values.shape[0],) + (1,) * len(spatial)
    out = jnp.broadcast_to(values[:, 0].reshape(view), (batch, *spatial))
    for m in range(1, k):
      out = jnp.where(owner == m, values[:, m].reshape(view), out)
    return out

  flat = per_pixel(partners)
  for axis, n in enumerate(spatial):
    view = [1] * (len(spatial) + 1)
    view[axis + 1] = n
    index = jnp.arange(n, dtype=jnp.int32).reshape(view)
    if moves is not None:
      index = (index + per_pixel(moves[..., axis])) % n
    flat = flat * n + index
  rows = images.reshape((-1, *images.shape[1 + len(spatial) :]))
  return rows[flat.reshape(-1)].reshape(images.shape)
