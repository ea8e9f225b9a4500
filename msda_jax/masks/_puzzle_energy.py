"""PuzzleMix's labeling energy for one pair of images, built from their saliency and local statistics.

On a ``b x b`` grid of blocks, label ``k`` of ``n`` keeps ``m_k = 1 - k / (n - 1)`` of the first
image. A block that keeps the first image loses the partner's saliency there and vice versa, so
the unary cost is ``m A + (1 - m) B + prior`` with ``A`` the partner's block saliency and ``B``
the image's (each normalised to sum 1), and ``prior = eta / b^2 * -log(Binomial(n - 1 - k; n - 1,
lam))``. Neighbouring blocks pay for the boundary they create: for each edge and each choice
(first image or partner on either side) the mean absolute difference between the pooled rows (or
columns) that meet there, times ``beta' gamma`` with ``beta' = beta / (16 b)``. That table of
four costs per edge is rewritten as unary shares plus one weight ``w = (p10 + p01 - p11 - p00) / 2
+ beta'`` on ``(m_u - m_v)^2`` (exact for the binary labels, up to a constant), which is the form
the solvers in ``_labeling`` take. Images are in pixel units (``[0, 1]``).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax.masks import _labeling, _transport


def _pool(x: jax.Array, size: int) -> jax.Array:
  """Mean over ``size x size`` windows of ``[H, W, ...]`` (``H`` and ``W`` multiples of ``size``)."""
  h, w = x.shape[:2]
  return x.reshape(h // size, size, w // size, size, *x.shape[2:]).mean(axis=(1, 3))


def block_saliency(saliency: ArrayLike, b: int) -> jax.Array:
  """``[H, W]`` saliency averaged over a ``b x b`` grid of blocks and normalised to sum 1 (float32).

  A map that is zero everywhere gives the uniform ``1 / b^2`` (the reference divides by 0 there).
  """
  saliency = jnp.asarray(saliency, jnp.float32)
  pooled = _pool(saliency, saliency.shape[0] // b)
  total = jnp.sum(pooled)
  return jnp.where(total > 0, pooled / jnp.where(total > 0, total, 1.0), 1.0 / (b * b))


def boundary_differences(upper: jax.Array, lower: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
  """Mean absolute differences where blocks meet: ``([b - 1, b], [b, b - 1])`` (rows, then columns).

  ``upper`` and ``lower`` are pooled images ``[G, G, C]`` (``G = b k``): the last pooled row of
  each block of ``upper`` against the first of the next block of ``lower``, averaged over the
  ``k`` pooled columns of the block and the channels; the same along columns.
  """
  g = upper.shape[0]
  b = g // k
  rows = jnp.abs(upper[k - 1 : g - 1 : k] - lower[k:g:k]).mean(-1)  # [b - 1, G]
  cols = jnp.abs(upper[:, k - 1 : g - 1 : k] - lower[:, k:g:k]).mean(-1)  # [G, b - 1]
  return rows.reshape(b - 1, b, k).mean(-1), cols.reshape(b, k, b - 1).mean(1)


class PuzzleEnergy(NamedTuple):
  """PuzzleMix's labeling energy of one pair, term by term, with the labeling its solver returns.

  Label ``k`` of ``n`` keeps ``levels[k]`` of the first image in its block. The solver minimises
  ``E(l) = sum_i unary[i, l_i] + sum_(u,v) w_uv (levels[l_u] - levels[l_v])^2`` (``energy``).

  Attributes:
    saliency: float32 ``[b, b, n]`` saliency lost: ``m A + (1 - m) B`` with ``A`` (``B``) the
      partner's (image's) block saliency normalised to sum 1, ``m = levels[k]``.
    boundary: float32 ``[b, b, n]`` the boundary costs' shares that depend on one block only.
    prior: float32 ``[b, b, n]`` ``eta / b^2 * -log Binomial(n - 1 - k; n - 1, lam)`` (the same
      in every block).
    unary: float32 ``[b, b, n]`` the unary cost the solver reads: the three above summed (in the
      solver's order of additions; equal to their sum up to float32 rounding).
    vertical: float32 ``[b - 1, b]`` weight of the edge between blocks ``(r, c)`` and ``(r + 1, c)``.
    horizontal: float32 ``[b, b - 1]`` weight of the edge between ``(r, c)`` and ``(r, c + 1)``.
    levels: float32 ``[n]`` mask value of each label.
    labels: int32 ``[b, b]`` the labeling the method's solver returns for this energy.
  """

  saliency: jax.Array
  boundary: jax.Array
  prior: jax.Array
  unary: jax.Array
  vertical: jax.Array
  horizontal: jax.Array
  levels: jax.Array
  labels: jax.Array

  def energy(self, labels: ArrayLike) -> jax.Array:
    """``E(labels)`` (float32 scalar) for an int ``[b, b]`` labeling."""
    return _labeling.grid_energy(labels, self.unary, self.vertical, self.horizontal, self.levels)


@functools.partial(jax.jit, static_argnames=("b", "n_labels", "neigh_size"))
def energy_terms(
  saliency: ArrayLike,
  partner_saliency: ArrayLike,
  image: ArrayLike,
  partner: ArrayLike,
  lam: ArrayLike,
  *,
  b: int,
  n_labels: int = 3,
  beta: ArrayLike = 1.2,
  gamma: ArrayLike = 0.5,
  eta: ArrayLike = 0.2,
  neigh_size: int = 4,
) -> PuzzleEnergy:
  """``puzzle_energy`` term by term, and the labels ``solve_labels`` returns (a ``PuzzleEnergy``).

  Arguments as ``puzzle_energy``'s; ``unary``, ``vertical`` and ``horizontal`` are its outputs.
  Jitted (``b``, ``n_labels`` and ``neigh_size`` static): one compiled program per grid and
  shapes when called outside a trace, as in a notebook.
  """
  unary, vertical, horizontal, parts = _energy(
    saliency, partner_saliency, image, partner, lam,
    b=b, n_labels=n_labels, beta=beta, gamma=gamma, eta=eta, neigh_size=neigh_size,
  )  # fmt: skip
  levels = jnp.asarray(_labeling.labeling_levels(n_labels))
  labels = solve_labels(unary, vertical, horizontal, levels).astype(jnp.int32)
  return PuzzleEnergy(*parts, unary, vertical, horizontal, levels, labels)


def puzzle_energy(
  saliency: ArrayLike,
  partner_saliency: ArrayLike,
  image: ArrayLike,
  partner: ArrayLike,
  lam: ArrayLike,
  *,
  b: int,
  n_labels: int = 3,
  beta: ArrayLike = 1.2,
  gamma: ArrayLike = 0.5,
  eta: ArrayLike = 0.2,
  neigh_size: int = 4,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """``(unary [b, b, n], vertical [b - 1, b], horizontal [b, b - 1])`` of the module docstring.

  Args:
    saliency: ``[H, W]`` the image's saliency (any non-negative map; pooled and normalised here).
    partner_saliency: ``[H, W]`` the partner's.
    image: ``[H, W, C]`` in pixel units; ``partner`` likewise.
    partner: ``[H, W, C]``.
    lam: traced mixing ratio in [0, 1].
    b: static grid side; divides ``H`` and ``W``.
    n_labels: static number of mask values.
    beta, gamma, eta: traced weights of the boundary and prior terms.
    neigh_size: static pooling window of the local statistics (``window(H / b, neigh_size)`` is used).
  """
  unary, vertical, horizontal, _ = _energy(
    saliency, partner_saliency, image, partner, lam,
    b=b, n_labels=n_labels, beta=beta, gamma=gamma, eta=eta, neigh_size=neigh_size,
  )  # fmt: skip
  return unary, vertical, horizontal


def _energy(
  saliency: ArrayLike,
  partner_saliency: ArrayLike,
  image: ArrayLike,
  partner: ArrayLike,
  lam: ArrayLike,
  *,
  b: int,
  n_labels: int,
  beta: ArrayLike,
  gamma: ArrayLike,
  eta: ArrayLike,
  neigh_size: int,
) -> tuple[jax.Array, jax.Array, jax.Array, tuple[jax.Array, jax.Array, jax.Array]]:
  """``(unary, vertical, horizontal, (saliency, boundary, prior))``: ``puzzle_energy`` and its unary terms."""
  image = jnp.asarray(image, jnp.float32)
  partner = jnp.asarray(partner, jnp.float32)
  h, w = image.shape[:2]
  if h != w or h % b:
    raise ValueError(f"puzzle_energy needs square images whose side is a multiple of b={b}; got {h} x {w}.")
  block = h // b
  pool = window(block, neigh_size)
  k = block // pool
  s1, s2 = block_saliency(saliency, b), block_saliency(partner_saliency, b)
  scale = jnp.asarray(beta, jnp.float32) / (16.0 * b)
  p1, p2 = _pool(image, pool), _pool(partner, pool)
  weight = scale * jnp.asarray(gamma, jnp.float32)
  # table[a][c]: the boundary cost with the upper (left) block from a and the lower (right) from c
  # (1: the image, 0: the partner).
  sources = (p2, p1)
  rows = [[weight * boundary_differences(sources[a], sources[c], k)[0] for c in (0, 1)] for a in (0, 1)]
  cols = [[weight * boundary_differences(sources[a], sources[c], k)[1] for c in (0, 1)] for a in (0, 1)]
  keep_first, keep_partner = s2, s1  # the cost of a block taking the image / the partner
  edges_first, edges_partner = jnp.zeros_like(s1), jnp.zeros_like(s1)  # their boundary shares alone
  for table, axis in ((rows, 0), (cols, 1)):
    share_first_u = (table[1][0] + table[1][1]) / 2  # the upper (left) block takes the image
    share_partner_u = (table[0][1] + table[0][0]) / 2
    share_first_v = (table[0][1] + table[1][1]) / 2  # the lower (right) block takes the image
    share_partner_v = (table[1][0] + table[0][0]) / 2
    pad_u = ((0, 1), (0, 0)) if axis == 0 else ((0, 0), (0, 1))
    pad_v = ((1, 0), (0, 0)) if axis == 0 else ((0, 0), (1, 0))
    keep_first = keep_first + jnp.pad(share_first_u, pad_u) + jnp.pad(share_first_v, pad_v)
    keep_partner = keep_partner + jnp.pad(share_partner_u, pad_u) + jnp.pad(share_partner_v, pad_v)
    edges_first = edges_first + jnp.pad(share_first_u, pad_u) + jnp.pad(share_first_v, pad_v)
    edges_partner = edges_partner + jnp.pad(share_partner_u, pad_u) + jnp.pad(share_partner_v, pad_v)
  vertical = (rows[1][0] + rows[0][1] - rows[1][1] - rows[0][0]) / 2 + scale
  horizontal = (cols[1][0] + cols[0][1] - cols[1][1] - cols[0][0]) / 2 + scale
  levels = jnp.asarray(_labeling.labeling_levels(n_labels))
  prior = jnp.asarray(eta, jnp.float32) / (b * b) * _labeling.binomial_prior(lam, n_labels)
  levels, prior = levels[None, None, :], prior[None, None, :]
  unary = levels * keep_first[..., None] + (1.0 - levels) * keep_partner[..., None] + prior
  lost = levels * s2[..., None] + (1.0 - levels) * s1[..., None]
  edges = levels * edges_first[..., None] + (1.0 - levels) * edges_partner[..., None]
  return unary, vertical, horizontal, (lost, edges, jnp.broadcast_to(prior, unary.shape))


def solve_labels(unary: jax.Array, vertical: jax.Array, horizontal: jax.Array, levels: jax.Array) -> jax.Array:
  """The labeling of a ``b x b`` energy by the solver its size allows (int32 ``[b, b]``).

  Exact for ``b <= 4`` with three labels (every labeling for 2 x 2, the row DP up to 4 x 4), the
  fixed-iteration solver above.
  """
  b, _, n = unary.shape
  if n ** (b * b) <= _labeling.MAX_ENUMERATED:
    return _labeling.solve_exhaustive(unary, vertical, horizontal, levels)
  if n**b <= _labeling.MAX_ROW_STATES:
    return _labeling.solve_rows(unary, vertical, horizontal, levels)
  return _labeling.solve_iterative(unary, vertical, horizontal, levels)


def window(block: int, size: int) -> int:
  """The divisor of ``block`` nearest to ``size``, the larger on a tie (``size = -1``: the block).

  The pooling window of the boundary statistics (``neigh_size``) and the transport patch
  (``t_size``) inside a block of ``block`` pixels: ``min(size, block)`` for the power-of-two
  sides of the reference; 7 for a block of 7 and size 4 (a 1-pixel patch would make a grid of
  every pixel), 2 for a block of 14.
  """
  if size == -1 or size >= block:
    return block
  divisors = [d for d in range(1, block + 1) if block % d == 0]
  return min(divisors, key=lambda d: (abs(d - size), -d))


def solve_pair(
  image: ArrayLike,
  partner: ArrayLike,
  saliency: ArrayLike,
  partner_saliency: ArrayLike,
  lam: ArrayLike,
  *,
  b: int,
  t_size: int = 4,
  t_eps: ArrayLike = 0.8,
  transport: bool = True,
  n_labels: int = 3,
  beta: ArrayLike = 1.2,
  gamma: ArrayLike = 0.5,
  eta: ArrayLike = 0.2,
  neigh_size: int = 4,
) -> tuple[jax.Array, jax.Array | None, jax.Array | None]:
  """One PuzzleMix pair: ``(mask [H, W], image_index, partner_index)``.

  The labels of ``puzzle_energy`` give the block mask (values ``1 - k / (n - 1)``), upsampled to
  the pixels. With ``transport`` each image's patches (side ``window(H / b, t_size)`` pixels;
  ``t_size = -1``: the blocks) are moved within it (``_transport``): the image's towards where
  the mask keeps any of it, the partner's towards where ``1 - mask`` does, each by its own
  saliency pooled on that grid; the moves are returned as gathers (``_transport.plan_index``,
  int32 ``[H * W]``), ``None`` without transport. The pair is then
  ``mask * gather(image) + (1 - mask) * gather(partner)``.
  """
  image = jnp.asarray(image, jnp.float32)
  partner = jnp.asarray(partner, jnp.float32)
  h = image.shape[0]
  levels = jnp.asarray(_labeling.labeling_levels(n_labels))
  energy = puzzle_energy(
    saliency, partner_saliency, image, partner, lam,
    b=b, n_labels=n_labels, beta=beta, gamma=gamma, eta=eta, neigh_size=neigh_size,
  )  # fmt: skip
  block_mask = levels[solve_labels(*energy, levels)]
  mask = jnp.repeat(jnp.repeat(block_mask, h // b, axis=0), h // b, axis=1)
  if not transport:
    return mask, None, None
  t = h // window(h // b, t_size)
  mask_t = jnp.repeat(jnp.repeat(block_mask, t // b, axis=0), t // b, axis=1)
  indices = []
  for s, kept in ((saliency, mask_t > 0), (partner_saliency, (1.0 - mask_t) > 0)):
    cost = _transport.transport_cost(block_saliency(s, t).reshape(-1), kept.reshape(-1), t=t, eps=t_eps)
    indices.append(_transport.plan_index(_transport.transport_sources(cost, t=t), t=t, side=h))
  return mask, indices[0], indices[1]


def mix_pair(
  image: ArrayLike,
  partner: ArrayLike,
  saliency: ArrayLike,
  partner_saliency: ArrayLike,
  lam: ArrayLike,
  *,
  b: int,
  **options: Any,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """``(mixed [H, W, C], mask [H, W], weight)`` of ``solve_pair`` (same options), ``weight`` the mask's mean."""
  image = jnp.asarray(image, jnp.float32)
  partner = jnp.asarray(partner, jnp.float32)
  mask, image_index, partner_index = solve_pair(image, partner, saliency, partner_saliency, lam, b=b, **options)
  if image_index is not None and partner_index is not None:
    image, partner = _transport.gather_pixels(image_index, image), _transport.gather_pixels(partner_index, partner)
  mixed = mask[..., None] * image + (1.0 - mask[..., None]) * partner
  return mixed, mask, jnp.mean(mask)
