"""Pairing each example with a partner inside its batch (or inside its device's shard).

``x~ = M * x_i + (1 - M) * x_partner(i)`` (Eq. 1). The batch axis is viewed as ``groups``
contiguous blocks and partners are chosen inside each block: with ``groups`` equal to the
number of devices the batch axis is sharded over, every pair lives on one device and mixing
adds no cross-device traffic. Odd block sizes are fine. Who is their own partner: with
``"reverse"``, the middle example of an odd block (``mix_batch`` leaves it unmixed and marks it
not applied); with ``"permute"``, each example with probability ``1 / block`` (one fixed point
per block on average: 3% of a block of 32); with ``"roll"``, nobody in blocks of 2 or more;
with ``"derange"``, nobody (a uniform permutation without fixed points; blocks of one example
are refused); with ``"transport"``, nobody (partners matched by minimal total distance between
consecutive chunks of ``transport_k`` examples, ``msda_jax.transport_pairing``); with ``"greedy"``,
nobody (GuidedMixup's one cycle through the block, farthest saliency maps first,
``msda_jax.greedy_pairing``).

The helpers that read the batch axis's sharding live in ``msda_jax._sharding``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from msda_jax import _backend, _bits, _validate
from msda_jax._sharding import blockwise
from msda_jax.greedy_pairing import greedy_order
from msda_jax.transport_pairing import transport_order

PAIRINGS = ("reverse", "roll", "permute", "derange", "transport", "greedy")

#: the default rounds of rejection ``"derange"`` draws before its fallback (see ``_derangements``).
DERANGE_ROUNDS = 64


def partner_indices(
  key: jax.Array | None, batch: int, *, pairing: str = "reverse", groups: int = 1, platform: str = "auto"
) -> jax.Array:
  """Index of each example's partner, int32 ``[batch]``.

  Args:
    key: a PRNG key; used by ``"permute"`` and ``"derange"`` only.
    batch: static batch size.
    pairing: ``"reverse"`` (block reversed, as the official code; the middle example of an odd
      block is its own partner), ``"roll"`` (partner of ``i`` is ``i - 1``, as torchvision),
      ``"permute"`` (a uniform random permutation per block, fixed points included) or
      ``"derange"`` (a uniform random permutation without fixed points per block: nobody is
      their own partner; blocks of at least 2 examples).
    groups: static number of blocks; pairs never cross a block.
    platform: static form of ``"derange"``'s rounds (``msda_jax._backend.PLATFORMS``; the same result).

  Returns:
    int32 ``[batch]``.

  >>> partner_indices(None, 6, pairing="reverse", groups=2).tolist()
  [2, 1, 0, 5, 4, 3]
  """
  _validate.check_choice("pairing", pairing, PAIRINGS)
  _validate.check_groups(batch, groups)
  return pair(key, jnp.arange(batch, dtype=jnp.int32), pairing=pairing, groups=groups, platform=platform)


def _permutations(key: jax.Array | None, groups: int, block: int) -> jax.Array:
  """One uniform permutation of each block, int32 ``[groups, block]``."""
  if key is None:
    raise ValueError("pairing='permute' needs a PRNG key; got key=None.")
  return jax.vmap(lambda k: jax.random.permutation(k, block))(jax.random.split(key, groups))


def _derangements(
  key: jax.Array | None, groups: int, block: int, rounds: int = DERANGE_ROUNDS, platform: str = "auto"
) -> jax.Array:
  """One random derangement of each block, int32 ``[groups, block]`` (``order[g, i] != i``).

  Law: rejection sampling. Round ``t = 0, 1, ...`` of block ``g`` draws the uniform permutation
  ``jax.random.permutation(fold_in(key_g, t), block)``; the first one without fixed points is
  kept, so the result is uniform over the ``!block`` derangements (9 for a block of 4). A round
  succeeds with probability ``!block / block! >= 1/3`` (-> ``1/e``), so the expected number of
  rounds is at most 3, and at most ``rounds`` (default ``DERANGE_ROUNDS``, 64) count: if every one
  has a fixed point (probability ``<= (2/3)^64 < 1e-11``) the fallback is the cycle
  ``i -> s(s^-1(i) + 1)`` built from the last round's permutation ``s``, a derangement but not a
  uniform one.

  Two forms with the same result (``_backend.by_platform``): on the CPU a ``lax.while_loop``
  draws the rounds until one succeeds (about 3); on an accelerator all ``rounds`` permutations
  are drawn side by side (one batched sort) and the first without a fixed point is selected, so
  the program has no loop whose predicate the host must read.
  """
  if key is None:
    raise ValueError("pairing='derange' needs a PRNG key; got key=None.")
  index = jnp.arange(block, dtype=jnp.int32)
  draw = lambda key_g, t: jax.random.permutation(jax.random.fold_in(key_g, t), block).astype(jnp.int32)

  def fallback(order: jax.Array) -> jax.Array:
    # Used only if all rounds failed: the cycle through the last round's values in turn.
    cycle = jnp.zeros(block, jnp.int32).at[order].set(order[(index + 1) % block])
    return jnp.where(jnp.any(order == index), cycle, order)

  def in_turn(key_g: jax.Array) -> jax.Array:
    def searching(state: tuple[jax.Array, jax.Array]) -> jax.Array:
      t, order = state
      return (t < rounds) & jnp.any(order == index)

    def next_round(state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
      t, _ = state
      return t + 1, draw(key_g, t)

    return fallback(jax.lax.while_loop(searching, next_round, (jnp.int32(1), draw(key_g, 0)))[1])

  def side_by_side(key_g: jax.Array) -> jax.Array:
    orders = jax.vmap(lambda t: draw(key_g, t))(jnp.arange(rounds))  # [rounds, block]
    deranged = ~jnp.any(orders == index[None], axis=1)
    first = jnp.where(jnp.any(deranged), jnp.argmax(deranged), rounds - 1)
    return fallback(orders[first])

  keys = _bits.split(key, groups)
  return _backend.by_platform(
    lambda k: jax.vmap(in_turn)(k), lambda k: jax.vmap(side_by_side)(k), keys, platform=platform
  )


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


def pair(
  key: jax.Array | None,
  tree: Any,
  *,
  pairing: str = "reverse",
  groups: int = 1,
  derange_rounds: int = DERANGE_ROUNDS,
  platform: str = "auto",
  images: jax.Array | None = None,
  transport_k: int = 8,
  saliency: jax.Array | None = None,
) -> Any:
  """Returns the partners of every leaf of ``tree`` (arrays with the batch as axis 0).

  All leaves get the same pairing (one permutation for images and labels alike).

  Args:
    key: a PRNG key; required by ``"permute"`` and ``"derange"``.
    tree: a pytree of arrays ``[B, ...]``.
    pairing: ``"reverse"``, ``"roll"``, ``"permute"`` or ``"derange"`` (see ``partner_indices``).
    groups: static number of blocks of the batch axis.
    derange_rounds: static bound on the rejection rounds of ``"derange"`` (see ``_derangements``).
    platform: static form of ``"derange"``'s rounds (``msda_jax._backend.PLATFORMS``).
    images: ``[B, ...]`` the examples whose distances ``"transport"`` matches by.
    transport_k: static chunk size of ``"transport"`` (``msda_jax.transport_pairing``).
    saliency: ``[B, *S]`` the maps ``"greedy"`` pairs by (``msda_jax.greedy_pairing``).

  Returns:
    a pytree like ``tree`` with each leaf's rows replaced by their partners' rows.
  """
  _validate.check_choice("pairing", pairing, PAIRINGS)
  leaves = jax.tree.leaves(tree)
  if not leaves:
    return tree
  batch = leaves[0].shape[0]
  _validate.check_groups(batch, groups)
  if pairing == "derange" and batch // groups < 2:
    raise ValueError(
      f"pairing='derange' needs blocks of at least 2 examples (a lone example has no other partner); "
      f"got block size {batch // groups} (batch {batch}, groups={groups})."
    )
  order = None
  if pairing == "permute":
    order = _permutations(key, groups, batch // groups)
  elif pairing == "derange":
    order = _derangements(key, groups, batch // groups, derange_rounds, platform)
  elif pairing == "transport":
    if images is None:
      raise ValueError("pairing='transport' matches examples by their images: pass images=.")
    order = transport_order(images, groups, transport_k)
  elif pairing == "greedy":
    if saliency is None:
      raise ValueError(
        "pairing='greedy' pairs examples by their saliency maps: pass saliency= (GuidedMixup reads them)."
      )
    if batch // groups < 2:
      raise ValueError(f"pairing='greedy' needs blocks of at least 2 examples; got block size {batch // groups}.")
    order = greedy_order(saliency, groups)
  one = lambda x: _move(x, groups, pairing, order=order)
  if pairing == "reverse" and groups == 1:
    # A flip of the whole batch axis partitions as it is (one collective-permute, no gather).
    return jax.tree.map(one, tree)
  return jax.tree.map(lambda x: blockwise(one, x, groups), tree)


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
  _validate.check_groups(batch, groups)
  block = batch // groups
  if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= block:
    raise ValueError(f"k must be an int in [1, block size {block}] (batch {batch}, groups={groups}); got {k!r}.")
  keys = _bits.split(key, k - 1) if pairing == "permute" and k > 1 and key is not None else [None] * (k - 1)
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
  _validate.check_groups(batch, groups)
  return jnp.stack(pair_k(key, jnp.arange(batch, dtype=jnp.int32), k, pairing=pairing, groups=groups), axis=1)
