"""SpecMix: bands of a spectrogram ``[T, F]`` taken from the partner, across time and frequency.

Along each spatial axis ``k`` (time and frequency for a spectrogram; every axis of any grid) the
mask cuts ``b_k ~ Uniform{bands[0], ..., bands[1]}`` bands, each of width
``w ~ Uniform{0, ..., floor(max_width n_k)}`` at a start uniform over ``[0, n_k - w]``, all
independent. A band along axis ``k`` spans every other axis whole (a time band is a stretch of
frames at every frequency, a frequency band a range of bins over the whole clip). The partner
fills the union of the bands (``M = 0`` there, SpecAugment's masks with the partner's values
instead of zeros) and the image the rest; ``lam`` and the label weight are the realised share
``mean(M)``, as the SpecMix paper sets them. The law draws no ``lam``: a given one raises.

The coefficients are exact (``msda_jax.theory.regions``): the uncovered set is a product
of independent per-axis sets, so ``a_jk`` factors into one-dimensional sums over band widths
and starts.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _bits, _validate
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks._base import MixMethod, Sample


def max_band_width(max_width: ArrayLike, n: int) -> jax.Array:
  """``floor(max_width n)`` in float32 arithmetic, clipped to ``[0, n]`` (int32): the widest band."""
  return jnp.clip(jnp.floor(jnp.asarray(max_width, jnp.float32) * jnp.float32(n)), 0, n).astype(jnp.int32)


def band_cover(key: jax.Array, n: int, max_width: ArrayLike, bands: tuple[int, int]) -> jax.Array:
  """Whether each index of an axis of ``n`` lies in one of the axis's random bands (bool ``[n]``)."""
  key_count, key_width, key_start = _bits.split(key, 3)
  count = _bits.randint(key_count, (), bands[0], bands[1] + 1)
  width = _bits.randint(key_width, (bands[1],), 0, max_band_width(max_width, n) + 1)
  start = _bits.randint(key_start, (bands[1],), 0, n - width + 1)
  index = jnp.arange(n)[:, None]
  used = (jnp.arange(bands[1]) < count)[None, :]
  return jnp.any(used & (index >= start[None, :]) & (index < (start + width)[None, :]), axis=-1)


def band_mask(key: jax.Array, shape: tuple[int, ...], max_width: ArrayLike, bands: tuple[int, int]) -> jax.Array:
  """``M``: 0 on the union of every axis's bands, 1 elsewhere (float32 of ``shape``)."""
  keep = jnp.ones(shape, bool)
  for axis, key_axis in enumerate(_bits.split(key, len(shape))):
    view = [1] * len(shape)
    view[axis] = shape[axis]
    keep = keep & ~band_cover(key_axis, shape[axis], max_width, bands).reshape(view)
  return keep.astype(jnp.float32)


@pytree_dataclass
class SpecMix(MixMethod):
  """SpecMix: the partner in ``bands``-many random bands per axis of width up to ``max_width`` of it.

  ``max_width`` is traced (in [0, 1]), ``bands`` static (``0 <= low <= high``). The weight and
  ``lam`` are the realised share of the image.

  >>> SpecMix()
  SpecMix(max_width=0.3, bands=(1, 3))
  >>> s = SpecMix().sample(jax.random.key(0), shape=(32, 16))
  >>> bool(abs(float(s.weight) - float(s.mask.mean())) < 1e-6)
  True
  """

  name = "specmix"
  takes_lam = False
  _unit = ("max_width",)

  max_width: ArrayLike = 0.3
  bands: tuple[int, int] = static_field(default=(1, 3))

  def _check(self) -> None:
    object.__setattr__(self, "bands", _validate.check_int_range("bands", self.bands, low=0, what="bands per axis"))

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del data, key_lam
    if lam is not None:
      raise ValueError(self._no_lam_message())
    mask = band_mask(key_mask, shape, self.max_width, self.bands)
    weight = jnp.mean(mask)
    return Sample(weight, mask, weight)
