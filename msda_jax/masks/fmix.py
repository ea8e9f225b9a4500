"""FMix: binarised low-frequency Fourier masks with an exact area.

A random complex spectrum is attenuated as ``1 / f^decay`` (``f`` the frequency magnitude in
cycles per pixel, floored at ``1 / max(n)``), brought back to the grid by an inverse real FFT,
and the ``round(lam |S|)`` largest values become 1: the mask mean is ``lam`` up to one pixel.
Any number of spatial axes.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax.masks._base import MixMethod, method_dataclass


def frequency_magnitude(shape: tuple[int, ...]) -> np.ndarray:
  """``|f|`` on the grid of ``jnp.fft.rfftn`` for ``shape`` (float32, last axis halved)."""
  axes = [np.fft.fftfreq(n) for n in shape[:-1]] + [np.fft.rfftfreq(shape[-1])]
  grids = np.meshgrid(*axes, indexing="ij")
  return np.sqrt(sum(g**2 for g in grids)).astype(np.float32)


def low_frequency_field(key: jax.Array, decay: ArrayLike, shape: tuple[int, ...]) -> jax.Array:
  """A real Gaussian field with spectrum ``~ 1 / f^decay`` on the grid (float32 of ``shape``)."""
  freq = jnp.asarray(np.maximum(frequency_magnitude(shape), 1.0 / max(shape)))
  amplitude = freq ** (-jnp.asarray(decay, jnp.float32))
  key_re, key_im = jax.random.split(key)
  spectrum = jax.random.normal(key_re, freq.shape) + 1j * jax.random.normal(key_im, freq.shape)
  return jnp.fft.irfftn(spectrum * amplitude, s=shape).astype(jnp.float32)


def sortable_keys(values: jax.Array) -> jax.Array:
  """Order-preserving uint32 keys of float32 ``values``: ``a < b`` iff ``key(a) < key(b)``.

  Flips all bits of negative floats and the sign bit of the others; ``-0.0`` is mapped to
  ``+0.0`` first, so equal floats get equal keys. NaNs are not expected.
  """
  values = jnp.where(values == 0.0, jnp.float32(0.0), values.astype(jnp.float32))
  bits = jax.lax.bitcast_convert_type(values, jnp.uint32)
  return jnp.where(bits >> 31 == 1, ~bits, bits | jnp.uint32(0x80000000))


def top_threshold(values: jax.Array, count: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Key of the ``count``-th largest of ``values`` and how many values reach it.

  A bisection on the 32 bits of ``sortable_keys`` (most significant first) keeps the largest key
  ``t`` with ``#{v : key(v) >= t} >= count``: the key of the ``count``-th largest value. Each step
  is one counting pass, so no sort is needed. ``values >= that value`` holds for ``count`` entries
  plus any ties with it; the second output is that exact number. For ``count = 0`` no finite
  value reaches the key found (all bits set).

  Args:
    values: float32 ``[S]``, finite.
    count: traced int32 scalar in ``[0, S]``.

  Returns:
    ``(threshold, selected)``: a uint32 key and an int32 scalar, ``selected >= count``.

  >>> t, n = top_threshold(jnp.array([0.5, -1.0, 2.0, 0.5]), 2)
  >>> (sortable_keys(jnp.array([0.5, -1.0, 2.0, 0.5])) >= t).tolist(), int(n)
  ([True, False, True, True], 3)
  """
  keys = sortable_keys(values)
  count = jnp.asarray(count, jnp.int32)

  def step(i: jax.Array, state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
    threshold, selected = state
    candidate = threshold | (jnp.uint32(1) << (31 - i).astype(jnp.uint32))
    reached = jnp.sum(keys >= candidate, dtype=jnp.int32)
    take = reached >= count
    return jnp.where(take, candidate, threshold), jnp.where(take, reached, selected)

  start = (jnp.uint32(0), jnp.asarray(values.size, jnp.int32))
  return jax.lax.fori_loop(0, 32, step, start)


def _fmix_select(
  key: jax.Array, lam: ArrayLike, shape: tuple[int, ...], decay: ArrayLike
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """``(keys, threshold, selected)`` of the FMix field: the mask is ``keys >= threshold``."""
  size = math.prod(shape)
  lam = jnp.clip(jnp.asarray(lam, jnp.float32), 0.0, 1.0)
  field = low_frequency_field(key, decay, shape).reshape(-1)
  ones = jnp.round(lam * size).astype(jnp.int32)
  threshold, selected = top_threshold(field, ones)
  return sortable_keys(field), threshold, selected


def fmix_mask(key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...], decay: ArrayLike = 3.0) -> jax.Array:
  """FMix mask: 1 on the ``round(lam |S|)`` highest points of a low-frequency field.

  Args:
    key: a PRNG key.
    lam: traced scalar ratio in [0, 1] (clipped).
    shape: static spatial shape.
    decay: traced decay power of the spectrum (> 0; larger is smoother).

  Returns:
    float32 array of ``shape`` in {0, 1}: 1 where the field is at least its ``round(lam |S|)``-th
    largest value, so exactly ``round(lam |S|)`` ones unless other points tie with that value
    (then all of them are 1; float32 ties are rare but possible). The threshold comes from a
    32-step bisection on the field's bits (``top_threshold``), not from a sort.

  >>> m = fmix_mask(jax.random.key(0), 0.3, shape=(10, 10))
  >>> float(m.sum())
  30.0
  """
  keys, threshold, _ = _fmix_select(key, lam, shape, decay)
  return (keys >= threshold).astype(jnp.float32).reshape(shape)


def fmix_mask_mean(key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...], decay: ArrayLike = 3.0) -> jax.Array:
  """Mean of ``fmix_mask`` with the same arguments (float32 scalar): the selected count over ``|S|``.

  ``round(lam |S|) / |S|`` unless ties add points. Shares the field and bisection with
  ``fmix_mask``, which a compiled program computes once for both.

  >>> round(float(fmix_mask_mean(jax.random.key(0), 0.3, shape=(10, 10))), 6)
  0.3
  """
  _, _, selected = _fmix_select(key, lam, shape, decay)
  return selected.astype(jnp.float32) * (np.float32(1.0) / np.float32(math.prod(shape)))


@method_dataclass
class FMix(MixMethod):
  """FMix with ``lam ~ Beta(alpha, alpha)`` and spectrum decay power ``decay``.

  >>> FMix()
  FMix(alpha=1.0, decay=3.0)
  """

  name = "fmix"
  masks_in_chunks = True
  _positive = ("alpha", "decay")

  alpha: ArrayLike = 1.0
  decay: ArrayLike = 3.0

  def mask(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
    return fmix_mask(key, lam, shape=shape, decay=self.decay)

  def mask_mean(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
    return fmix_mask_mean(key, lam, shape=shape, decay=self.decay)

  def mask_and_mean(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    keys, threshold, selected = _fmix_select(key, lam, shape, self.decay)
    mask = (keys >= threshold).astype(jnp.float32).reshape(shape)
    return mask, selected.astype(jnp.float32) * (np.float32(1.0) / np.float32(math.prod(shape)))
