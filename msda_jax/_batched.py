"""Mapping a per-example function over a batch a few examples at a time, inside each group.

``jax.vmap`` over a whole batch materialises every intermediate of every example at once: for
ResizeMix's resample (float32 whatever the input) that is over two batches of temporary memory
and, at 224 x 224, a working set far beyond the caches (``benchmarks/README.md`` has the
figures). ``map_in_chunks`` runs the same function on ``chunk`` examples of each group per step
of a ``fori_loop`` and writes each result into place, so the temporaries are those of one chunk;
the results are those of ``jax.vmap``.

The batch axis is viewed as ``[groups, B / groups]`` and the loop slices the second axis: with
``groups`` equal to the number of devices the batch is sharded over (as ``mix_batch`` asks),
every step reads and writes its own device's examples.

This is a CPU form (``_backend``): in a program compiled for an accelerator (GPU, TPU) the whole
batch is one ``vmap``, since memory is plentiful there and a loop of small steps would serialise
the device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from msda_jax import _backend, _sharding, _validate

#: the default working set of one step, in bytes of the widest per-example array: about an L2 cache.
CHUNK_BYTES = 2**20


def chunk_size(per_group: int, example_bytes: int, target_bytes: int = CHUNK_BYTES) -> int:
  """The largest divisor of ``per_group`` whose examples fit in ``target_bytes`` (at least 1).

  >>> chunk_size(128, 600_000), chunk_size(256, 12_288)
  (1, 64)
  """
  fit = max(1, target_bytes // max(1, example_bytes))
  return max(d for d in range(1, min(per_group, fit) + 1) if per_group % d == 0)


def map_in_chunks(
  fn: Callable[..., Any], *args: jax.Array, groups: int = 1, chunk_bytes: int = CHUNK_BYTES, platform: str = "auto"
) -> Any:
  """``jax.vmap(fn)(*args)``, computed ``chunk`` examples of each group at a time.

  Args:
    fn: a per-example function of one slice of each of ``args``, returning a pytree of arrays.
    *args: arrays (typed keys included) with the batch ``B`` on axis 0.
    groups: static number of contiguous blocks of the batch axis; divides ``B``.
    chunk_bytes: static working set of one step, in bytes of the widest per-example array.
    platform: static form (``_backend.PLATFORMS``): ``"auto"`` loops on the CPU only.

  Returns:
    the pytree of ``[B, ...]`` arrays that ``jax.vmap(fn)(*args)`` returns, with equal values.

  >>> double = lambda x: 2 * x
  >>> map_in_chunks(double, jnp.arange(6.0), groups=2).tolist()
  [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
  """
  batch = args[0].shape[0]
  _validate.check_groups(batch, groups)
  out = jax.eval_shape(jax.vmap(fn), *args)
  # Intermediates run in float32 at least: count 4 bytes an element of the largest array.
  arrays = [a for a in (*args, *jax.tree.leaves(out)) if not jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)]
  per_group = batch // groups
  size = chunk_size(per_group, 4 * max(math.prod(a.shape[1:]) for a in arrays), chunk_bytes)
  steps = per_group // size
  if steps == 1 or _sharding.batch_shards(args[-1])[1] > 1:
    # One step, or a batch axis sharded in the type (explicit mesh, which vmap keeps): the whole
    # batch at once.
    return jax.vmap(fn)(*args)
  return _backend.by_platform(
    lambda *a: _chunked(fn, a, out, groups, per_group, size, steps),
    lambda *a: jax.vmap(fn)(*a),
    *args,
    platform=platform,
  )


def _chunked(fn: Callable[..., Any], args: Any, out: Any, groups: int, per_group: int, size: int, steps: int) -> Any:
  """``jax.vmap(fn)(*args)`` as a ``fori_loop`` over ``steps`` chunks of ``size`` examples per group."""
  grouped = [_as_bits(a).reshape(groups, per_group, *a.shape[1:]) for a in args]
  # One example per step runs fn itself, not its vmap: a lax.switch inside fn then takes one
  # branch instead of evaluating all of them.
  each = fn if size == 1 else jax.vmap(fn)
  each = each if groups == 1 else jax.vmap(each)

  def step(i: jax.Array, result: Any) -> Any:
    part = [jax.lax.dynamic_slice_in_dim(a, i * size, size, axis=1) for a in grouped]
    part = [p.reshape(p.shape[(groups == 1) : 1] + p.shape[1 + (size == 1) :]) for p in part]
    part = [_from_bits(p, a.dtype) for p, a in zip(part, args, strict=True)]

    def put(whole: jax.Array, piece: jax.Array) -> jax.Array:
      piece = _as_bits(piece).reshape(groups, size, *whole.shape[2:])
      return jax.lax.dynamic_update_slice_in_dim(whole, piece, i * size, axis=1)

    return jax.tree.map(put, result, each(*part))

  result = jax.tree.map(lambda o: jnp.zeros((groups, per_group, *o.shape[1:]), _bits_dtype(o.dtype)), out)
  result = jax.lax.fori_loop(0, steps, step, result)
  return jax.tree.map(lambda r, o: _from_bits(r.reshape(o.shape), o.dtype), result, out)


# XLA:CPU slices and updates 16-bit floats in place far slower than 16-bit integers
# (benchmarks/README.md): the loop moves their bits as uint16.
_HALF = (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))


def _bits_dtype(dtype: Any) -> Any:
  return jnp.uint16 if dtype in _HALF else dtype


def _as_bits(a: jax.Array) -> jax.Array:
  return jax.lax.bitcast_convert_type(a, jnp.uint16) if a.dtype in _HALF else a


def _from_bits(a: jax.Array, dtype: Any) -> jax.Array:
  return jax.lax.bitcast_convert_type(a, dtype) if dtype in _HALF else a
