"""PuzzleMix's transport: moving an image's salient patches to where its mask keeps them.

On a ``t x t`` grid of patches (``N = t^2``), moving patch ``i`` to place ``j`` costs

    cost[i, j] = eps * C[i, j] - s_i * z_j,

``C`` the squared distance between the places divided by ``(t - 1)^2``, ``s`` the patch
saliency and ``z_j`` whether the mask keeps any of the image at place ``j``. The plan is found by
a fixed number of rounds (``t``) of a greedy auction: every patch claims its cheapest place; each
place goes to the claimant of lowest cost, counting the zeros of the patches that did not claim
it (as the reference computes it); every losing claim costs 1 more in the next round. The plan
of the last round is applied: place ``j`` receives the patch that won it, and a patch that won
nothing is dropped. A place that no patch won gets zeros in ``apply_plan`` (the reference's
normalised zero, its mean colour) and keeps its own patch in ``gather_pixels`` (the one
``PuzzleMix`` uses: defined in any units, and the image's own content). Such places are almost
always where the mask does not keep the image (none were visible in 800 random 32 x 32 pairs,
seed 0), so the choice rarely shows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _backend


def place_distances(t: int) -> np.ndarray:
  """``C [t^2, t^2]``: squared distance between the places of a ``t x t`` grid over ``(t - 1)^2`` (float32)."""
  rows, cols = np.divmod(np.arange(t * t), t)
  squared = (rows[:, None] - rows[None, :]) ** 2 + (cols[:, None] - cols[None, :]) ** 2
  return (squared / max(t - 1, 1) ** 2).astype(np.float32)


def transport_plan(saliency: ArrayLike, kept: ArrayLike, *, t: int, eps: ArrayLike) -> jax.Array:
  """The 0/1 plan ``[N, N]`` (row: patch, column: place) of the module docstring, ``N = t^2``.

  Args:
    saliency: float ``[N]`` patch saliency (row-major).
    kept: float or bool ``[N]``: 1 where the mask keeps any of the image.
    t: static grid side.
    eps: traced weight of the distance (the reference's ``t_eps``).

  Returns:
    float32 ``[N, N]`` with at most one 1 per row and per column.

  >>> plan = transport_plan(jnp.array([0.1, 0.2, 0.3, 0.4]), jnp.ones(4), t=2, eps=0.8)
  >>> plan.tolist() == jnp.eye(4).tolist()
  True
  """
  return plan_from_cost(transport_cost(saliency, kept, t=t, eps=eps), t=t)


def transport_cost(saliency: ArrayLike, kept: ArrayLike, *, t: int, eps: ArrayLike) -> jax.Array:
  """``cost[i, j] = eps * C[i, j] - s_i * z_j`` (float32 ``[N, N]``), the module docstring's."""
  saliency = jnp.asarray(saliency, jnp.float32)
  kept = jnp.asarray(kept, jnp.float32)
  return jnp.asarray(eps, jnp.float32) * place_distances(t) - saliency[:, None] * kept[None, :]


def plan_from_cost(cost: ArrayLike, *, t: int) -> jax.Array:
  """The plan of the last of ``t`` auction rounds started from ``cost`` (float32 ``[N, N]``)."""
  n = jnp.shape(cost)[0]
  sources = transport_sources(cost, t=t)
  return ((sources[None, :] == jnp.arange(n)[:, None]) & (sources[None, :] >= 0)).astype(jnp.float32)


def transport_sources(cost: ArrayLike, *, t: int) -> jax.Array:
  """For each place, the patch that won it in the last of ``t`` auction rounds, or -1 (int32 ``[N]``).

  The rounds of the module docstring, computed without ``[N, N]`` work per round: a patch only
  ever claims among its ``t`` cheapest places (in ``t`` rounds at most ``t - 1`` of its claims
  are raised by 1, so its cheapest place is always among its ``t`` cheapest at the start, ties
  to the lower index as ``argmin`` breaks them), so one ``top_k`` of the cost and ``[N, t]``
  rounds suffice. A place goes to the lowest claim when it is negative; to the first claim of
  cost 0 unless a patch that did not claim it comes first (the zeros of the non-claimants
  count, as in the reference); with positive claims only, to a non-claimant (no patch) unless
  every patch claimed it. The same plan as the ``[N, N]`` rounds, bit for bit
  (``tests/test_transport.py``).
  """
  cost = jnp.asarray(cost, jnp.float32)
  n = cost.shape[0]
  k = min(t, n)
  neg, cols = jax.lax.top_k(-cost, k)  # the k cheapest places of each patch, ties to the lower index
  current = -neg
  rows = jnp.arange(n, dtype=jnp.int32)
  cols = cols.astype(jnp.int32)

  def round_(step: int, state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
    del step
    current, _ = state
    # Each patch claims its cheapest place (the lowest place index among equal costs).
    cheapest = jnp.min(current, axis=1, keepdims=True)
    pick = jnp.argmin(jnp.where(current == cheapest, cols, n), axis=1)
    claimed = jnp.take_along_axis(cols, pick[:, None], axis=1)[:, 0]
    value = jnp.take_along_axis(current, pick[:, None], axis=1)[:, 0]
    low = jax.ops.segment_min(value, claimed, num_segments=n)  # +inf where nobody claims
    first = jax.ops.segment_min(jnp.where(value == low[claimed], rows, n), claimed, num_segments=n)
    count = jax.ops.segment_sum(jnp.ones_like(rows), claimed, num_segments=n)
    # The first patch that did not claim a place: 0, except for the place patch 0 claimed.
    others = claimed != claimed[0]
    after = jnp.where(jnp.any(others), jnp.argmax(others), n).astype(jnp.int32)
    first_other = jnp.where(jnp.arange(n) == claimed[0], after, 0)
    winner = jnp.where(
      low < 0,
      first,
      jnp.where(low == 0, jnp.where(first < first_other, first, -1), jnp.where(count < n, -1, first)),
    )
    lost = winner[claimed] != rows
    raised = jnp.where(lost, value + 1.0, value)  # the same float32 steps as the [N, N] rounds
    current = jnp.where(jnp.arange(k)[None, :] == pick[:, None], raised[:, None], current)
    return current, winner.astype(jnp.int32)

  start = jnp.full((n,), -1, jnp.int32) + _backend.varying_like(jnp.float32(0.0), cost).astype(jnp.int32)
  _, sources = jax.lax.fori_loop(0, t, round_, (current, start))
  return sources


def apply_plan(plan: ArrayLike, image: ArrayLike, *, t: int) -> jax.Array:
  """``image [H, W, C]`` with its ``t x t`` patches moved by ``plan`` (place ``j`` gets ``sum_i plan[i, j] patch_i``).

  ``H`` and ``W`` must be multiples of ``t``. The result has the image's dtype.
  """
  image = jnp.asarray(image)
  h, w, c = image.shape
  if h % t or w % t:
    raise ValueError(f"the image sides {h} x {w} must be multiples of the transport grid t={t}.")
  ph, pw = h // t, w // t
  patches = image.reshape(t, ph, t, pw, c).transpose(0, 2, 1, 3, 4).reshape(t * t, ph * pw * c)
  moved = jnp.einsum("ij,ip->jp", jnp.asarray(plan, jnp.float32), patches.astype(jnp.float32))
  return moved.reshape(t, t, ph, pw, c).transpose(0, 2, 1, 3, 4).reshape(h, w, c).astype(image.dtype)


def plan_index(sources: ArrayLike, *, t: int, side: int) -> jax.Array:
  """The plan as a gather: for each pixel of the moved ``side x side`` image, its source pixel.

  Args:
    sources: int ``[t^2]`` the patch each place receives, or -1 (``transport_sources``).
    t: static grid side; divides ``side``.
    side: static image side.

  Returns int32 ``[side^2]`` (row-major) holding the flat index of the pixel that lands there, or
  ``-1`` where the place received no patch; ``gather_pixels`` with it equals ``apply_plan`` of
  the plan at every place some patch won. The index has the same shape for every grid ``t``.
  """
  sources = jnp.asarray(sources, jnp.int32)
  if side % t:
    raise ValueError(f"the image side {side} must be a multiple of the transport grid t={t}.")
  patch = side // t
  rows, cols = np.divmod(np.arange(side * side), side)
  place = (rows // patch) * t + cols // patch  # static: the place of each destination pixel
  source = sources[place]
  pixel = ((source // t) * patch + rows % patch) * side + (source % t) * patch + cols % patch
  return jnp.where(source >= 0, pixel, -1).astype(jnp.int32)


def gather_pixels(index: ArrayLike, image: ArrayLike) -> jax.Array:
  """``image [H, W, ...]`` with pixel ``q`` taken from flat pixel ``index[q]`` (kept where it is -1); dtype kept."""
  image = jnp.asarray(image)
  index = jnp.asarray(index)
  flat = image.reshape(-1, *image.shape[2:])
  taken = flat[jnp.maximum(index, 0)]
  filled = (index >= 0).reshape((-1,) + (1,) * (flat.ndim - 1))
  return jnp.where(filled, taken, flat).reshape(image.shape)
