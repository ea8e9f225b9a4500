"""Shrinking a whole image into a box: linear, antialiased, separable, with bounded work.

``jax.image.scale_and_translate(..., method="linear", antialias=True)`` contracts every axis
with a dense ``[n, n]`` weight matrix: ``n`` multiply-adds per output element (224 at 224 x 224),
although a shrink by ``s`` has about ``2 / s`` nonzero weights per output and only the ``s n``
outputs inside the box matter. ``paste_resized`` computes the same weights (the triangle kernel
widened by ``1 / s``, normalised per output, as that function does) and applies them per axis
in one of ``BUCKETS + 1`` static forms, chosen by ``lax.switch`` from the box size: when
``n / 2^(k+1) < size <= n / 2^k``, only ``ceil(n / 2^k)`` output rows around the box are made,
each from ``2^(k+2) + 2`` gathered input rows; boxes at most ``n / 2^BUCKETS`` long use the
dense weights for their ``ceil(n / 2^BUCKETS)`` rows. Either way about ``4 + 2 / 2^k`` (or
``n / 2^BUCKETS``) multiply-adds per output element instead of ``n``. Under ``jax.vmap`` the
switch evaluates every form (still far below the dense contraction).

Values agree with ``jax.image.scale_and_translate`` inside the box up to float rounding; outside
the box the result is 0 (the ResizeMix mask keeps the image there). This is a CPU optimisation:
on an accelerator, and for axes of at most ``DENSE_MAX``, ``paste_resized`` calls the dense
resample itself.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from msda_jax import _backend

BUCKETS = 4
#: axes up to this length use the dense weights (as cheap as a gather there, and no switch).
DENSE_MAX = 64


def triangle_weights(n: int, scale: jax.Array, shift: jax.Array) -> jax.Array:
  """Weights ``[n_in, n_out]`` of a linear antialiased resample on one axis of length ``n``.

  Output ``o`` samples the input at ``f = (o + 0.5 - shift) / scale - 0.5``; input ``i`` gets
  ``max(0, 1 - |f - i| / max(1 / scale, 1))``, normalised over ``i``; outputs whose ``f`` lies
  outside ``[-0.5, n - 0.5]`` get no weight.

  >>> w = triangle_weights(4, jnp.float32(0.5), jnp.float32(0.0))
  >>> [round(float(v), 3) for v in w[:, 0]]
  [0.429, 0.429, 0.143, 0.0]
  """
  inv_scale = 1.0 / scale
  sample = (jnp.arange(n, dtype=jnp.float32) + 0.5) * inv_scale - shift * inv_scale - 0.5
  width = jnp.maximum(inv_scale, 1.0)
  weights = jnp.maximum(0.0, 1.0 - jnp.abs(sample[None, :] - jnp.arange(n, dtype=jnp.float32)[:, None]) / width)
  total = jnp.sum(weights, axis=0, keepdims=True)
  weights = jnp.where(
    jnp.abs(total) > 1000.0 * float(np.finfo(np.float32).eps), weights / jnp.where(total != 0, total, 1), 0
  )
  inside = (sample >= -0.5) & (sample <= n - 0.5)
  return jnp.where(inside[None, :], weights, 0.0)


def _window(n: int, rows: int, shift: jax.Array) -> jax.Array:
  """First of ``rows`` consecutive output positions that cover a box starting at ``shift``."""
  return jnp.clip(shift.astype(jnp.int32), 0, n - rows)


def _gathered(
  x: jax.Array, weights: jax.Array, scale: jax.Array, shift: jax.Array, *, rows: int, taps: int
) -> jax.Array:
  n = x.shape[0]
  first = _window(n, rows, shift)
  outputs = first + jnp.arange(rows)
  inv_scale = 1.0 / scale
  sample = (outputs.astype(jnp.float32) + 0.5) * inv_scale - shift * inv_scale - 0.5  # as in the weights
  width = jnp.maximum(inv_scale, 1.0)
  # Every input with a nonzero weight lies in (sample - width, sample + width): at most
  # 2 width + 2 <= taps of them from floor(sample - width) on; weights beyond are exactly 0.
  start = jnp.clip(jnp.floor(sample - width).astype(jnp.int32), 0, n - taps)
  inputs = start[:, None] + jnp.arange(taps)[None, :]
  taken = weights[inputs, outputs[:, None]].astype(x.dtype)
  # Tap by tap: one fused pass of gathered rows, no [rows, taps, ...] intermediate.
  expand = (slice(None),) + (None,) * (x.ndim - 1)
  window = sum(taken[:, t][expand] * x[inputs[:, t]] for t in range(taps))
  return jax.lax.dynamic_update_slice_in_dim(jnp.zeros_like(x), window, first, axis=0)


def _dense(x: jax.Array, weights: jax.Array, scale: jax.Array, shift: jax.Array, *, rows: int) -> jax.Array:
  del scale
  n = x.shape[0]
  first = _window(n, rows, shift)
  columns = jax.lax.dynamic_slice_in_dim(weights, first, rows, axis=1).astype(x.dtype)
  window = jnp.einsum("ir,i...->r...", columns, x)
  return jax.lax.dynamic_update_slice_in_dim(jnp.zeros_like(x), window, first, axis=0)


def _resample_leading(x: jax.Array, size: jax.Array, shift: jax.Array) -> jax.Array:
  """Axis 0 of ``x`` (length ``n``) shrunk to ``size`` outputs starting at ``shift``; 0 elsewhere."""
  n = x.shape[0]
  size = jnp.maximum(size, 1)
  scale = size.astype(jnp.float32) / n
  shift = shift.astype(jnp.float32)
  weights = triangle_weights(n, scale, shift)
  if n <= DENSE_MAX:
    # Short axes: n multiply-adds per output beat any gather.
    return _dense(x, weights, scale, shift, rows=n)
  forms = []
  for k in range(BUCKETS):
    rows = -(-n // 2**k)
    forms.append(functools.partial(_gathered, rows=rows, taps=min(n, 2 ** (k + 2) + 2)))
  forms.append(functools.partial(_dense, rows=-(-n // 2**BUCKETS)))
  # k halvings keep the box inside ceil(n / 2^k) rows; below n / 2^BUCKETS the dense form.
  k = sum((size * 2**j <= n).astype(jnp.int32) for j in range(1, BUCKETS + 1))
  return jax.lax.switch(k, forms, x, weights, scale, shift)


def paste_resized(image: jax.Array, start: jax.Array, size: jax.Array) -> jax.Array:
  """``image [*S, C]`` shrunk (linear, antialiased) into the box ``start, size`` (int ``[d]``).

  Args:
    image: ``[*S, C]`` float array (computed in its dtype).
    start: int32 ``[d]`` first index of the box on each spatial axis.
    size: int32 ``[d]`` box side lengths, at most the axis lengths (0 counts as 1).

  Returns:
    ``[*S, C]``: the shrunk image on the box, 0 elsewhere.

  >>> out = paste_resized(jnp.ones((8, 8, 1)), jnp.array([2, 2]), jnp.array([4, 4]))
  >>> float(out[2:6, 2:6].min()), float(out.sum())
  (1.0, 16.0)
  """
  shape = image.shape[:-1]

  def dense(image: jax.Array, start: jax.Array, size: jax.Array) -> jax.Array:
    # The dense contraction itself: for small images, and on an accelerator, where dense
    # contractions are what it does best and a switch under vmap would evaluate every form.
    scale = jnp.maximum(size, 1).astype(jnp.float32) / jnp.asarray(shape, jnp.float32)
    spatial = tuple(range(len(shape)))
    pasted = jax.image.scale_and_translate(
      image, image.shape, spatial, scale, start.astype(jnp.float32), method="linear", antialias=True
    )
    return pasted.astype(image.dtype)

  def sparse(image: jax.Array, start: jax.Array, size: jax.Array) -> jax.Array:
    out = image
    for axis in range(image.ndim - 1):
      moved = jnp.moveaxis(out, axis, 0)
      out = jnp.moveaxis(_resample_leading(moved, size[axis], start[axis]), 0, axis)
    return out

  if max(shape) <= DENSE_MAX:
    return dense(image, start, size)
  return _backend.by_platform(sparse, dense, image, start, size, platform="auto")  # the compiled platform's
