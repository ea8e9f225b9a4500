"""Pairing each example with a partner inside its batch (or inside its device's shard).

``x~ = M * x_i + (1 - M) * x_partner(i)`` (Eq. 1). The batch axis is viewed as ``groups``
contiguous blocks and partners are chosen inside each block: with ``groups`` equal to the
number of devices the batch axis is sharded over, every pair lives on one device and mixing
adds no cross-device traffic. Odd block sizes are fine (with ``"reverse"`` the middle example
of an odd block is its own partner, which leaves it unmixed).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec

from msda_jax import _validate

PAIRINGS = ("reverse", "roll", "permute")


def check_groups(batch: int, groups: int) -> None:
  """Raises unless ``groups`` is a positive int dividing ``batch``."""
  if not isinstance(groups, int) or groups < 1:
    raise ValueError(f"groups must be a positive int (blocks of the batch axis); got {groups!r}.")
  if batch % groups:
    raise ValueError(f"groups={groups} must divide the batch size {batch}.")


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


def partner_indices(key: jax.Array | None, batch: int, *, pairing: str = "reverse", groups: int = 1) -> jax.Array:
  """Index of each example's partner, int32 ``[batch]``.

  Args:
    key: a PRNG key; used by ``"permute"`` only.
    batch: static batch size.
    pairing: ``"reverse"`` (block reversed, as the official code), ``"roll"`` (partner of ``i``
      is ``i - 1``, as torchvision) or ``"permute"`` (a uniform random permutation per block).
    groups: static number of blocks; pairs never cross a block.

  Returns:
    int32 ``[batch]``.

  >>> partner_indices(None, 6, pairing="reverse", groups=2).tolist()
  [2, 1, 0, 5, 4, 3]
  """
  _validate.check_choice("pairing", pairing, PAIRINGS)
  check_groups(batch, groups)
  return pair(key, jnp.arange(batch, dtype=jnp.int32), pairing=pairing, groups=groups)


def _permutations(key: jax.Array | None, groups: int, block: int) -> jax.Array:
  """One uniform permutation of each block, int32 ``[groups, block]``."""
  if key is None:
    raise ValueError("pairing='permute' needs a PRNG key; got key=None.")
  return jax.vmap(lambda k: jax.random.permutation(k, block))(jax.random.split(key, groups))


def _move(x: jax.Array, groups: int, pairing: str, *, shift: int = 1, order: jax.Array | None = None) -> jax.Array:
  """Rows of ``x`` moved inside each of ``groups`` blocks: flipped, rolled by ``shift`` or permuted."""
  block = x.shape[0] // groups
  blocks = x.reshape((groups, block, *x.shape[1:]))
  if pairing == "reverse":
    moved = jnp.flip(blocks, axis=1)
  elif pairing == "roll":
    moved = jnp.roll(blocks, shift, axis=1)
  else:
    assert order is not None
    moved = jnp.take_along_axis(blocks, order.reshape(order.shape + (1,) * (blocks.ndim - 2)), axis=1)
  return moved.reshape(x.shape)


def pair(key: jax.Array | None, tree: Any, *, pairing: str = "reverse", groups: int = 1) -> Any:
  """Returns the partners of every leaf of ``tree`` (arrays with the batch as axis 0).

  All leaves get the same pairing (one permutation for images and labels alike).

  Args:
    key: a PRNG key; required by ``"permute"``.
    tree: a pytree of arrays ``[B, ...]``.
    pairing: ``"reverse"``, ``"roll"`` or ``"permute"``.
    groups: static number of blocks of the batch axis.

  Returns:
    a pytree like ``tree`` with each leaf's rows replaced by their partners' rows.
  """
  _validate.check_choice("pairing", pairing, PAIRINGS)
  leaves = jax.tree.leaves(tree)
  if not leaves:
    return tree
  batch = leaves[0].shape[0]
  check_groups(batch, groups)
  order = _permutations(key, groups, batch // groups) if pairing == "permute" else None
  one = lambda x: _move(x, groups, pairing, order=order)
  if pairing == "reverse" and groups == 1:
    # A flip of the whole batch axis partitions as it is (one collective-permute, no gather).
    return jax.tree.map(one, tree)
  return jax.tree.map(lambda x: blockwise(one, x, groups), tree)


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


K_PAIRINGS = ("roll", "permute")


def pair_k(key: jax.Array | None, tree: Any, k: int, *, pairing: str = "roll", groups: int = 1) -> tuple[Any, ...]:
  """The ``k`` sources of every row of ``tree`` for k-sample mixing, inside each block.

  Source ``m`` of row ``i`` is its partner ``p_m(i)``; source 0 is the row itself. With
  ``"roll"``, ``p_m(i) = i - m`` modulo the block size (``m = 1`` is the ``"roll"`` pairing of
  ``pair``); with ``"permute"``, ``p_1, ..., p_{k-1}`` are independent uniform permutations of
  each block. All leaves get the same sources.

  Args:
    key: a PRNG key; required by ``"permute"``.
    tree: a pytree of arrays ``[B, ...]``.
    k: static number of sources, ``1 <= k <=`` block size.
    pairing: ``"roll"`` or ``"permute"``.
    groups: static number of blocks of the batch axis; sources never cross a block.

  Returns:
    a tuple of ``k`` pytrees like ``tree``; the ``m``-th holds source ``m`` of every row.

  >>> [s.tolist() for s in pair_k(None, jnp.arange(4), 3)]
  [[0, 1, 2, 3], [3, 0, 1, 2], [2, 3, 0, 1]]
  """
  _validate.check_choice("pairing", pairing, K_PAIRINGS)
  leaves = jax.tree.leaves(tree)
  if not leaves:
    return (tree,) * k
  batch = leaves[0].shape[0]
  check_groups(batch, groups)
  block = batch // groups
  if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= block:
    raise ValueError(f"k must be an int in [1, block size {block}] (batch {batch}, groups={groups}); got {k!r}.")
  keys = jax.random.split(key, k - 1) if pairing == "permute" and k > 1 and key is not None else [None] * (k - 1)
  orders = [_permutations(key_m, groups, block) if pairing == "permute" else None for key_m in keys]

  def source(m: int, x: jax.Array) -> jax.Array:
    return _move(x, groups, pairing, shift=m, order=orders[m - 1])

  sources = [tree] + [
    jax.tree.map(lambda x, m=m: blockwise(lambda y: source(m, y), x, groups), tree) for m in range(1, k)
  ]
  return tuple(sources)


def partner_sets(key: jax.Array | None, batch: int, k: int, *, pairing: str = "roll", groups: int = 1) -> jax.Array:
  """Indices of the ``k`` sources of each example, int32 ``[batch, k]`` (column 0 is the example).

  The same sources as ``pair_k`` with the same key.

  >>> partner_sets(None, 4, 2, groups=2).tolist()
  [[0, 1], [1, 0], [2, 3], [3, 2]]
  """
  check_groups(batch, groups)
  return jnp.stack(pair_k(key, jnp.arange(batch, dtype=jnp.int32), k, pairing=pairing, groups=groups), axis=1)
