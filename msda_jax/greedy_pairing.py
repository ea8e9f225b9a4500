"""Saliency-guided pairing (GuidedMixup): one greedy cycle through the block, farthest maps first.

GuidedMixup (Kang and Kim, AAAI 2023) pairs images whose saliency maps are far apart, so that each
keeps its salient part where the other's is weak. Its reference builds one cycle through the batch
greedily from the matrix of L2 distances between the (normalised) maps: the farthest pair
``(r, c)`` starts it (``r``'s partner is ``c``), then from ``c`` the farthest image not yet given a
partner's place, and so on; the last one takes ``r``. Every example has a partner other than
itself, and every example is someone's partner once (a permutation with one cycle).

Inside ``jit`` the cycle is a ``fori_loop`` of ``block - 2`` steps (static), each an ``argmax``
over a row with the visited columns masked; ties go to the first index. Per block (``groups``):
each device pairs its own shard.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def normalized(maps: jax.Array) -> jax.Array:
  """float32 ``[B, d]``: each map flattened and divided by its sum (a map summing to 0: uniform)."""
  flat = jnp.asarray(maps, jnp.float32).reshape(maps.shape[0], -1)
  total = jnp.sum(flat, axis=-1, keepdims=True)
  return jnp.where(total > 0, flat / jnp.where(total > 0, total, 1.0), 1.0 / flat.shape[-1])


def distances(maps: jax.Array) -> jax.Array:
  """float32 ``[n, n]``: the L2 distances between the normalised maps ``[n, *S]``."""
  x = normalized(maps)
  squared = jnp.sum(x * x, -1)[:, None] - 2.0 * x @ x.T + jnp.sum(x * x, -1)[None, :]
  return jnp.sqrt(jnp.maximum(squared, 0.0))


def greedy_cycle(distance: jax.Array) -> jax.Array:
  """int32 ``[n]``: each row's partner along the greedy cycle of ``distance [n, n]`` (``n >= 2``).

  >>> d = jnp.array([[0.0, 1.0, 5.0], [1.0, 0.0, 2.0], [5.0, 2.0, 0.0]])
  >>> greedy_cycle(d).tolist()  # 0 -> 2 (the farthest pair), 2 -> 1, 1 -> 0
  [2, 0, 1]
  """
  n = distance.shape[0]
  d = jnp.where(jnp.eye(n, dtype=bool), -jnp.inf, distance.astype(jnp.float32))
  start = jnp.argmax(d.reshape(-1))
  row, col = start // n, start % n
  order = jnp.zeros((n,), jnp.int32).at[row].set(col.astype(jnp.int32))
  d = d.at[:, row].set(-jnp.inf)

  def step(_: jax.Array, state: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array, jax.Array]:
    order, d, here = state
    nxt = jnp.argmax(d[here]).astype(jnp.int32)
    return order.at[here].set(nxt), d.at[:, here].set(-jnp.inf), nxt

  order, _, last = jax.lax.fori_loop(0, n - 2, step, (order, d, col.astype(jnp.int32)))
  return order.at[last].set(row.astype(jnp.int32))


def greedy_order(saliency: jax.Array, groups: int) -> jax.Array:
  """Each example's partner inside its block, int32 ``[groups, block]``, from the maps ``[B, *S]``."""
  block = saliency.shape[0] // groups
  maps = saliency.reshape(groups, block, *saliency.shape[1:])
  return jax.vmap(lambda m: greedy_cycle(distances(m)))(maps)
