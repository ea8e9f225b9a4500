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


def fmix_mask(key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...], decay: ArrayLike = 3.0) -> jax.Array:
  """FMix mask: 1 on the ``round(lam |S|)`` highest points of a low-frequency field.

  Args:
    key: a PRNG key.
    lam: traced scalar ratio in [0, 1] (clipped).
    shape: static spatial shape.
    decay: traced decay power of the spectrum (> 0; larger is smoother).

  Returns:
    float32 array of ``shape`` in {0, 1} with exactly ``round(lam |S|)`` ones (ties aside).

  >>> m = fmix_mask(jax.random.key(0), 0.3, shape=(10, 10))
  >>> float(m.sum())
  30.0
  """
  size = math.prod(shape)
  lam = jnp.clip(jnp.asarray(lam, jnp.float32), 0.0, 1.0)
  field = low_frequency_field(key, decay, shape).reshape(-1)
  ones = jnp.round(lam * size).astype(jnp.int32)
  thresholds = jnp.concatenate([jnp.sort(field), jnp.full((1,), jnp.inf, field.dtype)])
  threshold = thresholds[size - ones]
  return (field >= threshold).astype(jnp.float32).reshape(shape)


@method_dataclass
class FMix(MixMethod):
  """FMix with ``lam ~ Beta(alpha, alpha)`` and spectrum decay power ``decay``.

  >>> FMix()
  FMix(alpha=1.0, decay=3.0)
  """

  name = "fmix"
  _positive = ("alpha", "decay")

  alpha: ArrayLike = 1.0
  decay: ArrayLike = 3.0

  def mask(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
    return fmix_mask(key, lam, shape=shape, decay=self.decay)
