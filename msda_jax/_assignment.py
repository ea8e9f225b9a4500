"""The linear assignment problem inside ``jit``: shortest augmenting paths with a fixed trip count.

``assignment(cost)`` returns the permutation ``s`` minimising ``sum_i cost[i, s(i)]`` for a square
``cost [k, k]``, by the Hungarian method in its shortest-augmenting-path form (row potentials
``u``, column potentials ``v``, reduced costs ``cost[i, j] - u[i] - v[j] >= 0``). Row ``r`` is
added to the matching by a Dijkstra search over the columns from ``r`` that ends at the first
free column reached; the potentials then keep the matching optimal on the rows added so far.

Every loop has a static trip count, so the program is the same for every cost matrix and ``vmap``
batches it: ``k`` rows, each with ``k`` search steps (a search visits at most one new column per
step and ends at a free one by step ``r + 1``) and ``k`` steps of the augmentation (the path
holds at most ``r + 1`` columns); steps after the end change nothing. That is ``2 k^2`` sequential
steps of ``O(k)`` vector work, ``O(k^3)`` in all, against the ``k! k`` of an enumeration.

The result is optimal up to floating-point rounding of the potentials (float32 costs: the total
agrees with scipy's float64 solver to float32 rounding, ``tests/test_transport_pairing.py``).
Non-finite costs are not defined (the costs of ``msda_jax.transport_pairing`` are finite
squared distances).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def assignment(cost: jax.Array) -> jax.Array:
  """int32 ``[k]``: the column ``s(i)`` of every row in a minimal-cost assignment of ``cost [k, k]``.

  >>> assignment(jnp.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])).tolist()
  [1, 0, 2]
  """
  k = cost.shape[0]
  if cost.shape != (k, k):
    raise ValueError(f"cost must be a square matrix [k, k]; got shape {cost.shape}.")
  dtype = jnp.result_type(cost.dtype, jnp.float32)
  # One-based rows and columns, column 0 a virtual one holding the row being added (the classic
  # layout): a[i, j] for rows 1..k and columns 1..k, row 0 and column 0 unused.
  a = jnp.pad(jnp.asarray(cost, dtype), ((1, 0), (1, 0)))
  big = jnp.asarray(jnp.finfo(dtype).max / 4, dtype)
  columns = jnp.arange(k + 1)
  # Every carry starts from the costs (zeros_like): inside shard_map it then varies over the
  # same mesh axes as the costs, as the loops' outputs do.
  row_zeros = jnp.zeros_like(a[0])
  index_zeros = jnp.zeros_like(a[0], dtype=jnp.int32)

  def add_row(row: jax.Array, state: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, ...]:
    u, v, owner = state  # potentials [k + 1], the row matched to each column [k + 1] (0: free)
    owner = owner.at[0].set(row)

    def search(_: jax.Array, s: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
      j0, slack, used, way, u, v, done = s
      used_now = used | (columns == j0)
      i0 = owner[j0]
      reduced = a[i0] - u[i0] - v
      better = ~used_now & (reduced < slack)
      slack_now = jnp.where(better, reduced, slack)
      way_now = jnp.where(better, j0, way)
      open_slack = jnp.where(used_now, big, slack_now)
      j1 = jnp.argmin(open_slack)
      delta = open_slack[j1]
      u_now = u.at[owner].add(jnp.where(used_now, delta, 0.0))
      v_now = jnp.where(used_now, v - delta, v)
      slack_now = jnp.where(used_now, slack_now, slack_now - delta)
      new = (j1, slack_now, used_now, way_now, u_now, v_now, owner[j1] == 0)
      return tuple(jnp.where(done, old, fresh) for old, fresh in zip(s, new, strict=True))

    start = (index_zeros[0], row_zeros + big, index_zeros != 0, index_zeros, u, v, index_zeros[0] != 0)
    j0, _, _, way, u, v, _ = jax.lax.fori_loop(0, k, search, start)

    def augment(_: jax.Array, s: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
      j0, owner = s
      j1 = way[j0]
      moved = owner.at[j0].set(owner[j1])
      return jnp.where(j0 == 0, j0, j1), jnp.where(j0 == 0, owner, moved)

    _, owner = jax.lax.fori_loop(0, k, augment, (j0.astype(jnp.int32), owner))
    return u, v, owner

  _, _, owner = jax.lax.fori_loop(1, k + 1, add_row, (row_zeros, row_zeros, index_zeros))
  return index_zeros[1:].at[owner[1:] - 1].set(jnp.arange(k, dtype=jnp.int32))
