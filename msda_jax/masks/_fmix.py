"""FMix: binarised low-frequency Fourier masks with an exact area.

A random complex spectrum is attenuated as ``1 / f^decay`` (``f`` the frequency magnitude in
cycles per pixel, floored at ``1 / max(n)``), brought back to the grid by an inverse real FFT,
and the ``round(lam |S|)`` largest values become 1: the mask mean is ``lam`` up to one pixel.
Any number of spatial axes.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _backend, _bits
from msda_jax._dataclass import pytree_dataclass
from msda_jax.masks._base import MixMethod, Sample


def frequency_magnitude(shape: tuple[int, ...]) -> np.ndarray:
  """``|f|`` on the grid of ``jnp.fft.rfftn`` for ``shape`` (float32, last axis halved)."""
  axes = [np.fft.fftfreq(n) for n in shape[:-1]] + [np.fft.rfftfreq(shape[-1])]
  grids = np.meshgrid(*axes, indexing="ij")
  return np.sqrt(sum(g**2 for g in grids)).astype(np.float32)


def low_frequency_field(key: jax.Array, decay: ArrayLike, shape: tuple[int, ...]) -> jax.Array:
  """A real Gaussian field with spectrum ``~ 1 / f^decay`` on the grid (float32 of ``shape``)."""
  freq = jnp.asarray(np.maximum(frequency_magnitude(shape), 1.0 / max(shape)))
  amplitude = freq ** (-jnp.asarray(decay, jnp.float32))
  key_re, key_im = _bits.split(key)
  # jax.random.normal's draws, made where they are used (no rolled threefry loop; _bits).
  spectrum = _bits.normal(key_re, freq.shape) + 1j * _bits.normal(key_im, freq.shape)
  return jnp.fft.irfftn(spectrum * amplitude, s=shape).astype(jnp.float32)


def sortable_keys(values: jax.Array) -> jax.Array:
  """Order-preserving uint32 keys of float32 ``values``: ``a < b`` iff ``key(a) < key(b)``.

  Flips all bits of negative floats and the sign bit of the others; ``-0.0`` is mapped to
  ``+0.0`` first, so equal floats get equal keys. NaNs are not expected.
  """
  values = jnp.where(values == 0.0, jnp.float32(0.0), values.astype(jnp.float32))
  bits = jax.lax.bitcast_convert_type(values, jnp.uint32)
  return jnp.where(bits >> 31 == 1, ~bits, bits | jnp.uint32(0x80000000))


def key_values(keys: jax.Array) -> jax.Array:
  """The float32 values whose ``sortable_keys`` are ``keys`` (uint32): the inverse map."""
  keys = jnp.asarray(keys, jnp.uint32)
  bits = jnp.where(keys >> 31 == 1, keys ^ jnp.uint32(0x80000000), ~keys)
  return jax.lax.bitcast_convert_type(bits, jnp.float32)


# The search of ``top_threshold``: a strided sample of at most SAMPLE_MAX keys (one in
# SAMPLE_STRIDE or sparser) brackets the threshold; then each counting pass tries three keys.
SAMPLE_MAX = 1024
SAMPLE_STRIDE = 16
SAMPLE_MARGIN = 1.0  # the bracket: binomial standard deviations of the sample rank, either side
SPREAD = 0.25  # the two outer keys of a pass: this many sqrt(count in the interval) either side

_Bracket = tuple[jax.Array, jax.Array, jax.Array, jax.Array]


def _narrow(keys: jax.Array, count: jax.Array, bracket: _Bracket, candidates: jax.Array) -> _Bracket:
  """One counting pass over ``keys`` for a few candidate keys: the tightest bracket they give.

  ``bracket = (lo, reach_lo, hi, reach_hi)`` with ``reach_x = #{key >= x}`` and
  ``reach_lo >= count > reach_hi``; candidates are clipped into ``(lo, hi)`` first.
  """
  lo, reach_lo, hi, reach_hi = bracket
  candidates = jnp.clip(candidates, lo + 1, hi - 1)
  reach = jnp.sum(keys[None, :] >= candidates[:, None], axis=1, dtype=jnp.int32)
  enough = reach >= count
  return (
    jnp.maximum(lo, jnp.max(jnp.where(enough, candidates, jnp.uint32(0)))),
    jnp.minimum(reach_lo, jnp.min(jnp.where(enough, reach, reach_lo))),
    jnp.minimum(hi, jnp.min(jnp.where(enough, jnp.uint32(0xFFFFFFFF), candidates))),
    jnp.maximum(reach_hi, jnp.max(jnp.where(enough, reach_hi, reach))),
  )


def top_threshold(values: jax.Array, count: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Key of the ``count``-th largest of ``values`` and how many values reach it.

  The threshold is the largest key ``t`` (of ``sortable_keys``) with ``#{v : key(v) >= t} >= count``:
  the key of the ``count``-th largest value. It is found by counting passes, without a full sort,
  keeping a bracket ``lo <= t < hi`` with the number of keys reaching each end:

  1. the order statistics of a strided sample of at most ``SAMPLE_MAX`` keys (sorted) around the
     sample rank of ``count``, ``SAMPLE_MARGIN`` binomial standard deviations either side, give
     the first two candidates;
  2. each further pass counts three candidates: the values that linear interpolation between the
     bracket's ends puts at the wanted rank and ``SPREAD * sqrt(m)`` ranks either side of it (``m``
     keys in the bracket), the middle one replaced by the bracket's midpoint key whenever the
     last pass did not halve it, which bounds the search by twice the 32 steps of a bisection;
  3. it stops when ``lo`` is reached by exactly ``count`` keys (``values >= value(lo)`` then
     selects the same points as the threshold) or the bracket is one key wide; one more pass
     takes the smallest key at or above ``lo``.

  On smooth fields it takes a few passes of step 2 (``benchmarks/README.md`` counts them),
  against the 32 passes of a bisection. Ties and extreme or subnormal values only lengthen it.
  ``values >= that value`` holds for ``count`` entries plus any ties with it; the second output
  is that exact number. For ``count = 0`` the key is all bits set, which no finite value reaches.

  Args:
    values: float32 ``[S]``, finite.
    count: traced int32 scalar in ``[0, S]``.

  Returns:
    ``(threshold, selected)``: a uint32 key and an int32 scalar, ``selected >= count``.

  >>> t, n = top_threshold(jnp.array([0.5, -1.0, 2.0, 0.5]), 2)
  >>> (sortable_keys(jnp.array([0.5, -1.0, 2.0, 0.5])) >= t).tolist(), int(n)
  ([True, False, True, True], 3)
  """
  keys = sortable_keys(values).reshape(-1)
  size = keys.size
  count = jnp.asarray(count, jnp.int32)
  none = jnp.uint32(0xFFFFFFFF)

  n = max(1, min(SAMPLE_MAX, size // SAMPLE_STRIDE))
  stride = size // n
  sample = jnp.sort(keys[: n * stride : stride])
  rank = count.astype(jnp.float32) * np.float32(n / size)  # expected sample keys above t
  margin = SAMPLE_MARGIN * jnp.sqrt(rank * (1.0 - rank / n)) + 1.0
  picks = jnp.stack([n - 1 - jnp.floor(rank + margin), n - jnp.floor(rank - margin)]).astype(jnp.int32)
  bracket = (jnp.min(keys), jnp.asarray(size, jnp.int32), jnp.max(keys) + jnp.uint32(1), jnp.int32(0))
  bracket = _narrow(keys, count, bracket, sample[jnp.clip(picks, 0, n - 1)])

  def searching(state: tuple[_Bracket, jax.Array]) -> jax.Array:
    lo, reach_lo, hi, _ = state[0]
    return (count > 0) & (reach_lo != count) & (hi - lo > 1)

  def step(state: tuple[_Bracket, jax.Array]) -> tuple[_Bracket, jax.Array]:
    (lo, reach_lo, hi, reach_hi), halved = state
    inside = (reach_lo - reach_hi).astype(jnp.float32)
    below = (reach_lo - count).astype(jnp.float32)  # keys in [lo, t)
    spread = SPREAD * jnp.sqrt(inside)
    low_value, high_value = key_values(lo), key_values(hi - 1)
    fractions = jnp.stack([below - spread, below + 0.5, below + spread]) / inside
    guesses = sortable_keys(low_value + fractions * (high_value - low_value))
    width = hi - lo
    middle = jnp.where(halved, guesses[1], lo + width // 2)
    new = _narrow(keys, count, state[0], jnp.stack([guesses[0], middle, guesses[2]]))
    return new, new[2] - new[0] <= width - width // 2

  # The first flag is True and, inside jax.shard_map, varies over the mesh axes as the keys do.
  first = bracket[1] >= 0
  (lo, reach_lo, _, _), _ = jax.lax.while_loop(searching, step, (bracket, first))
  exact = jnp.min(jnp.where(keys >= lo, keys, none))
  threshold = jnp.where(count == 0, none, exact)
  selected = jnp.where(count == 0, jnp.sum(keys >= none, dtype=jnp.int32), reach_lo)
  return threshold, selected


def top_threshold_by_sort(values: jax.Array, count: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """``top_threshold``'s result from one sort of the keys: no loop (the accelerator's form).

  The ``count``-th largest key is element ``size - count`` of the keys sorted ascending; for
  ``count = 0`` the key is all bits set. Equal to ``top_threshold`` for every input.

  >>> t, n = top_threshold_by_sort(jnp.array([0.5, -1.0, 2.0, 0.5]), 2)
  >>> int(t) == int(top_threshold(jnp.array([0.5, -1.0, 2.0, 0.5]), 2)[0]), int(n)
  (True, 3)
  """
  keys = sortable_keys(values).reshape(-1)
  count = jnp.clip(jnp.asarray(count, jnp.int32), 0, keys.size)
  none = jnp.uint32(0xFFFFFFFF)
  ranked = jnp.sort(keys)[jnp.maximum(keys.size - count, 0) % keys.size]
  threshold = jnp.where(count == 0, none, ranked)
  return threshold, jnp.sum(keys >= threshold, dtype=jnp.int32)


def _fmix(key: jax.Array, lam: jax.Array, shape: tuple[int, ...], decay: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """``(M, mean(M))``: 1 on the ``round(lam |S|)`` highest points of a low-frequency field.

  ``lam`` is clipped to [0, 1]. ``M`` is 1 where the field is at least its ``round(lam |S|)``-th
  largest value, so exactly ``round(lam |S|)`` ones unless other points tie with that value
  (then all of them are 1; float32 ties are rare but possible). The threshold comes from a
  counting search on the field's bits (``top_threshold``) on the CPU and from one sort on an
  accelerator (``top_threshold_by_sort``, no loop; the same threshold), and the mean is the
  selected count over ``|S|``.
  """
  size = math.prod(shape)
  lam = jnp.clip(jnp.asarray(lam, jnp.float32), 0.0, 1.0)
  field = low_frequency_field(key, decay, shape).reshape(-1)
  count = jnp.round(lam * size).astype(jnp.int32)
  threshold, selected = _backend.by_platform(top_threshold, top_threshold_by_sort, field, count)
  mask = (sortable_keys(field) >= threshold).astype(jnp.float32).reshape(shape)
  return mask, selected.astype(jnp.float32) * (np.float32(1.0) / np.float32(size))


@pytree_dataclass
class FMix(MixMethod):
  """FMix with ``lam ~ Beta(alpha, alpha)`` and spectrum decay power ``decay`` (> 0; larger is smoother).

  >>> FMix()
  FMix(alpha=1.0, decay=3.0)
  >>> s = FMix().sample(jax.random.key(0), shape=(10, 10), lam=0.3)
  >>> float(s.mask.sum()), round(float(s.weight), 6)
  (30.0, 0.3)
  """

  name = "fmix"
  masks_in_chunks = True
  _positive = ("alpha", "decay")

  alpha: ArrayLike = 1.0
  decay: ArrayLike = 3.0

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del data
    lam = self._beta_lam(key_lam, lam)
    return Sample(lam, *_fmix(key_mask, lam, shape, self.decay))
