"""Optimal-transport pairing (k-mixup, the paper's [23]): partners matched by minimal total distance.

Each block of the batch (``groups``) is cut into consecutive chunks of ``k`` examples; chunk ``c``
is paired with chunk ``c + 1`` (the last with the first), and inside that pair the examples are
matched by the permutation ``s`` that minimises the total squared distance
``sum_i ||x_(c, i) - x_(c + 1, s(i))||^2`` between the images: the optimal transport between two
empirical measures of ``k`` points, whose solution is a permutation (k-mixup's matching). Each
example's partner is its match: ``x~ = M * x_i + (1 - M) * x_(s(i))``. Since the data loader
shuffles, consecutive chunks are random subsets, as k-mixup draws them.

The assignment is exact for any ``k``: the Hungarian method's shortest augmenting paths with a
fixed trip count (``msda_jax._assignment``, ``O(k^3)``, no data-dependent loop), optimal up to
float32 rounding of its potentials; ties (measure zero for real images) go to whichever optimum
the search reaches first. A block must hold at least two chunks. Partners are never the example
itself (they lie in another chunk).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from msda_jax._assignment import assignment


def check_transport(k: int, block: int | None = None) -> None:
  """Raises naming ``transport_k`` unless it is a positive int dividing ``block`` at least twice."""
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
    raise ValueError(f"transport_k must be a positive int (the chunk of examples matched together); got {k!r}.")
  if block is not None and (block % k or block < 2 * k):
    raise ValueError(
      f"transport_k={k} must divide the block size {block} (batch / groups) at least twice: each chunk of k "
      "examples is matched with the next one."
    )


def matching(a: jax.Array, b: jax.Array) -> jax.Array:
  """The permutation ``s`` (int32 ``[k]``) minimising ``sum_i ||a_i - b_(s(i))||^2`` for ``a, b [k, D]``.

  >>> a = jnp.array([[0.0], [10.0], [20.0]]); b = jnp.array([[19.0], [1.0], [11.0]])
  >>> matching(a, b).tolist()
  [1, 2, 0]
  """
  cost = jnp.sum(a * a, -1)[:, None] - 2.0 * a @ b.T + jnp.sum(b * b, -1)[None, :]  # [k, k]
  return assignment(cost)


def transport_order(images: jax.Array, groups: int, k: int) -> jax.Array:
  """Each example's partner inside its block, int32 ``[groups, block]`` (``images [B, ...]``)."""
  batch = images.shape[0]
  block = batch // groups
  check_transport(k, block)
  chunks = block // k
  x = images.reshape(groups, chunks, k, -1).astype(jnp.float32)
  nxt = jnp.roll(x, -1, axis=1)
  s = jax.vmap(jax.vmap(matching))(x, nxt)  # [groups, chunks, k]
  start = ((jnp.arange(chunks, dtype=jnp.int32) + 1) % chunks * k)[None, :, None]
  return (start + s).reshape(groups, block)
