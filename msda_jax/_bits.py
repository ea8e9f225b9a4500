"""Random words that fuse into the pass that uses them: ``jax.random.bits``, element by element.

With the default threefry keys, ``jax.random.bits(key, (n,), jnp.uint32)[i]`` is one Threefry-2x32
hash (20 rounds) of the counter ``i`` under the key's two words, the two
output words xor-ed together (JAX's partitionable layout, its default). On the CPU JAX runs that
hash as a loop of five rounds over whole arrays, which a compiled program cannot fuse with what
follows: a per-pixel mask then costs the words, the loop's passes over them and the mask in
memory. ``bits_at`` computes the same words as plain integer arithmetic of their counters, so the
compiler fuses them into the mask and the mixing pass (Bernoulli's pixels, FMix's fields), and
``uniform`` and ``normal`` turn them into ``jax.random.uniform``'s and ``jax.random.normal``'s
floats, bit for bit. ``benchmarks/README.md`` has the timings.

The words are JAX's, bit for bit: the first use in a process checks a few of them against
``jax.random.bits``, and any key that is not a threefry key, or a JAX whose layout differs (the
check fails, or ``jax_threefry_partitionable`` is off), takes ``jax.random.bits`` itself.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _backend

# Threefry-2x32: rotation constants of the even and odd groups of four rounds, key-schedule parity.
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA


def threefry2x32(k0: jax.Array, k1: jax.Array, c0: jax.Array, c1: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The Threefry-2x32 hash (20 rounds) of counters ``(c0, c1)`` under key ``(k0, k1)``, uint32.

  Elementwise with broadcasting; no loop, so it fuses with its producers and consumers.

  >>> x0, x1 = threefry2x32(*(jnp.uint32(v) for v in (0, 0, 0, 0)))
  >>> hex(int(x0)), hex(int(x1))
  ('0x6b200159', '0x99ba4efe')
  """
  u32 = jnp.uint32
  keys = (k0, k1, k0 ^ k1 ^ u32(_PARITY))
  x0, x1 = c0 + keys[0], c1 + keys[1]
  for group in range(5):
    for rotation in _ROTATIONS[group % 2]:
      x0 = x0 + x1
      x1 = ((x1 << u32(rotation)) | (x1 >> u32(32 - rotation))) ^ x0
    x0 = x0 + keys[(group + 1) % 3]
    x1 = x1 + keys[(group + 2) % 3] + u32(group + 1)
  return x0, x1


def _partitionable() -> bool:
  return bool(getattr(jax.config, "jax_threefry_partitionable", False))


@functools.cache
def _layout_matches() -> bool:
  """Whether ``jax.random.bits`` is the counter hash above here, with the partitionable layout on
  (checked once per process, eagerly; ``fusable`` asks only while that layout is on)."""
  with jax.ensure_compile_time_eval():
    key = jax.random.key(20221128)
    expected = np.asarray(jax.random.bits(key, (3, 5), jnp.uint32))
    k0, k1 = key_words(key)
    counters = jnp.arange(15, dtype=jnp.uint32).reshape(3, 5)
    x0, x1 = threefry2x32(k0, k1, jnp.zeros_like(counters), counters)
    return bool(np.array_equal(np.asarray(x0 ^ x1), expected))


def is_threefry(key: jax.Array) -> bool:
  """Whether ``key`` is a Threefry-2x32 key (JAX's default), whose two words ``threefry2x32`` takes."""
  return str(jax.random.key_impl(key)) == "threefry2x32"


def key_words(key: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The two uint32 words of a threefry key (typed or raw), each shaped like the key's batch."""
  data = jax.random.key_data(key) if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) else key
  data = jnp.asarray(data, jnp.uint32)
  return data[..., 0], data[..., 1]


def fusable(key: jax.Array) -> bool:
  """Whether ``bits_at`` computes ``key``'s words itself (a threefry key on a matching JAX)."""
  return is_threefry(key) and _partitionable() and _layout_matches()


def bits_at(key: jax.Array, index: jax.Array, size: int) -> jax.Array:
  """``jax.random.bits(key, (size,), jnp.uint32)[index]``, computed where it is used.

  Args:
    key: one PRNG key (typed or raw); under ``jax.vmap`` a batch of them.
    index: integer array of word positions in ``[0, size)``, any shape.
    size: static length of the word sequence drawn (below ``2^32``).

  Returns:
    uint32 array shaped like ``index``: the words ``jax.random.bits`` gives at those positions.

  >>> key = jax.random.key(0)
  >>> bool((bits_at(key, jnp.arange(6), 6) == jax.random.bits(key, (6,), jnp.uint32)).all())
  True
  """
  if not 0 < size < 2**32:
    raise ValueError(f"size must be in [1, 2^32); got {size}.")
  if not fusable(key):
    return jax.random.bits(key, (size,), jnp.uint32)[index]
  counters = jnp.asarray(index).astype(jnp.uint32)
  k0, k1 = key_words(key)
  x0, x1 = threefry2x32(k0, k1, jnp.zeros_like(counters), counters)
  return x0 ^ x1


def split(key: jax.Array, num: int = 2) -> jax.Array:
  """``jax.random.split(key, num)``, bit for bit, as fused integer arithmetic (``bits_at``).

  With the partitionable layout, key ``i`` of the split is the hash of the counter ``(0, i)``
  under the parent's words, both output words kept. JAX runs that hash as a loop on the CPU
  (a loop call per split); there (``_backend.by_platform``) it is a few fused ops. An
  accelerator's program keeps JAX's split, whose hash is already unrolled there. One example's
  draw of a batch (traced inside ``_backend.per_example``) keeps it too: mapped over the batch,
  its loop runs on whole vectors, which measured faster on this CPU.

  >>> key = jax.random.key(3)
  >>> bool((jax.random.key_data(split(key, 3)) == jax.random.key_data(jax.random.split(key, 3))).all())
  True
  """
  if not isinstance(num, int) or not 0 < num < 2**32:
    raise ValueError(f"num must be an int in [1, 2^32); got {num!r}.")
  if not fusable(key) or _backend.is_per_example():
    return jax.random.split(key, num)
  return _backend.by_platform(lambda k: _fused_split(k, num), lambda k: jax.random.split(k, num), key)


def _fused_split(key: jax.Array, num: int) -> jax.Array:
  k0, k1 = key_words(key)
  counters = jnp.arange(num, dtype=jnp.uint32)
  x0, x1 = threefry2x32(k0[..., None], k1[..., None], jnp.zeros_like(counters), counters)
  # Kept apart from its consumers: fused into each, the hash would be computed again per use.
  data = jax.lax.optimization_barrier(jnp.stack([x0, x1], axis=-1))
  if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
    return jax.random.wrap_key_data(data, impl=jax.random.key_impl(key))
  return data


def randint(key: jax.Array, shape: tuple[int, ...], minval: ArrayLike, maxval: ArrayLike) -> jax.Array:
  """``jax.random.randint(key, shape, minval, maxval)`` (int32), bit for bit, fusable.

  JAX's method: two words per value from the two halves of ``split(key)``, ``(hi mod span)
  (2^32 mod span) + lo mod span`` reduced mod ``span = maxval - minval`` (1 where ``maxval <=
  minval``, so ``minval`` is returned), in uint32 arithmetic. ``minval`` and ``maxval`` are int32
  (or Python ints), broadcastable to ``shape``. On an accelerator, with 64-bit mode on, a key
  ``fusable`` refuses, or inside ``_backend.per_example`` (as ``split``), it is
  ``jax.random.randint`` itself.

  >>> key = jax.random.key(4)
  >>> bool((randint(key, (5,), 0, 7) == jax.random.randint(key, (5,), 0, 7)).all())
  True
  """
  if not fusable(key) or _backend.is_per_example() or jax.config.read("jax_enable_x64") or math.prod(shape) == 0:
    return jax.random.randint(key, shape, minval, maxval)
  minval = jnp.broadcast_to(jnp.asarray(minval, jnp.int32), shape)
  maxval = jnp.broadcast_to(jnp.asarray(maxval, jnp.int32), shape)
  fused = functools.partial(_fused_randint, shape=shape)
  return _backend.by_platform(fused, lambda k, lo, hi: jax.random.randint(k, shape, lo, hi), key, minval, maxval)


def _fused_randint(key: jax.Array, minval: jax.Array, maxval: jax.Array, *, shape: tuple[int, ...]) -> jax.Array:
  key_high, key_low = _fused_split(key, 2)
  high, low = _words(key_high, shape), _words(key_low, shape)
  u32 = jnp.uint32
  span = jnp.where(maxval <= minval, u32(1), (maxval - minval).astype(u32))
  multiplier = (u32(2**16) % span) * (u32(2**16) % span) % span
  offset = ((high % span) * multiplier + low % span) % span
  return minval + offset.astype(jnp.int32)


def _words(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  size = math.prod(shape)
  return bits_at(key, jnp.arange(size, dtype=jnp.uint32).reshape(shape), size)


def _unit_floats(words: jax.Array) -> jax.Array:
  """``[1, 2) - 1`` from the top 23 bits of each word, as ``jax.random.uniform`` makes them."""
  mantissa = (words >> jnp.uint32(32 - 23)) | jnp.uint32(0x3F800000)
  return jax.lax.bitcast_convert_type(mantissa, jnp.float32) - jnp.float32(1.0)


def _scaled(floats: jax.Array, low: np.float32, high: np.float32) -> jax.Array:
  """``max(low, floats (high - low) + low)`` in float32, the operations of ``jax.random.uniform``."""
  return jnp.maximum(jnp.float32(low), floats * (jnp.float32(high) - jnp.float32(low)) + jnp.float32(low))


def uniform(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """``jax.random.uniform(key, shape)`` (float32 in [0, 1)), bit for bit, fusable (``bits_at``).

  >>> key = jax.random.key(1)
  >>> bool((uniform(key, (2, 3)) == jax.random.uniform(key, (2, 3))).all())
  True
  """
  if not fusable(key) or math.prod(shape) == 0:
    return jax.random.uniform(key, shape, jnp.float32)
  return _scaled(_unit_floats(_words(key, shape)), np.float32(0.0), np.float32(1.0))


def normal(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """``jax.random.normal(key, shape)`` (float32), bit for bit, fusable (``bits_at``).

  ``sqrt(2) erfinv(u)`` for ``u`` uniform on ``(-1, 1)``, as JAX draws it.

  >>> key = jax.random.key(1)
  >>> bool((normal(key, (4,)) == jax.random.normal(key, (4,))).all())
  True
  """
  if not fusable(key) or math.prod(shape) == 0:
    return jax.random.normal(key, shape, jnp.float32)
  low = np.nextafter(np.float32(-1.0), np.float32(0.0))
  u = _scaled(_unit_floats(_words(key, shape)), low, np.float32(1.0))
  return jnp.float32(np.sqrt(2)) * jax.lax.erf_inv(u)
