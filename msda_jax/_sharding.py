"""Where the batch axis lives: explicit shardings of axis 0, and work that respects them.

Under an explicit mesh (``jax.make_mesh`` with ``AxisType.Explicit``) the sharding of an array
is part of its type. Pairing and per-example maps move rows only inside blocks of the batch
axis; these helpers read that sharding and keep derived arrays (keys, per-example draws) on the
same devices as the rows they belong to.
"""

from __future__ import annotations

import math
from typing import Any

import jax
from jax.sharding import PartitionSpec


def batch_shards(x: Any) -> tuple[Any, int]:
  """The mesh axes that explicitly shard axis 0 of ``x`` and how many shards they make.

  ``(None, 1)`` unless ``x`` carries an explicit sharding of its batch axis (a mesh with
  ``AxisType.Explicit``, the default of ``jax.make_mesh``); automatic and manual
  (``shard_map``) axes are not part of the type and count as unsharded.
  """
  sharding = getattr(jax.typeof(x), "sharding", None)
  spec = getattr(sharding, "spec", None)
  if not spec or spec[0] is None:
    return None, 1
  axes = spec[0] if isinstance(spec[0], tuple) else (spec[0],)
  return spec[0], math.prod(sharding.mesh.shape[a] for a in axes)  # type: ignore[union-attr]


def shard_like_batch(x: jax.Array, ref: Any) -> jax.Array:
  """``x`` with axis 0 sharded like the batch axis of ``ref`` (a no-op unless explicit)."""
  axis, shards = batch_shards(ref)
  if shards == 1:
    return x
  sharding = jax.typeof(ref).sharding
  return jax.sharding.reshard(x, sharding.update(spec=PartitionSpec(axis, *(None,) * (x.ndim - 1))))


def blockwise(fn: Any, x: jax.Array, groups: int) -> jax.Array:
  """``fn(x)`` for a ``fn`` that works inside ``groups`` blocks of the batch axis.

  Under explicit sharding of the batch axis over ``n`` devices with ``groups % n != 0`` the
  blocks straddle devices: the batch axis is gathered first (the communication is then
  explicit) and the result is sliced back to the input's sharding. Otherwise ``fn(x)``.
  """
  _, shards = batch_shards(x)
  if shards == 1 or groups % shards == 0:
    return fn(x)
  sharding = jax.typeof(x).sharding
  gathered = jax.sharding.reshard(x, sharding.update(spec=PartitionSpec(None, *sharding.spec[1:])))
  return jax.sharding.reshard(fn(gathered), sharding)


def map_local(fn: Any, *args: Any) -> Any:
  """``jax.vmap(fn)(*args)``, run on each device's own rows when axis 0 is explicitly sharded.

  ``args`` are pytrees of ``[B, ...]`` arrays; the sharding of the last leaf decides.

  Under an explicit mesh some per-example functions (reshapes of an example's axes) have no
  sharding rule under ``vmap``; the examples are independent, so each device maps its shard
  inside ``jax.shard_map`` instead (no communication). Otherwise a plain ``vmap``.
  """
  first = jax.tree.leaves(args)[-1]
  axis, shards = batch_shards(first)
  if shards == 1:
    return jax.vmap(fn)(*args)
  mesh = jax.typeof(first).sharding.mesh
  spec = PartitionSpec(axis)
  args = jax.tree.map(lambda a: shard_like_batch(a, first), args)
  return jax.shard_map(jax.vmap(fn), mesh=mesh, in_specs=spec, out_specs=spec)(*args)
