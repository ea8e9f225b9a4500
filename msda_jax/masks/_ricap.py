"""RICAP: four images cropped and tiled around a random boundary point (Takahashi et al.).

The boundary point is ``(w, h) = (round(beta_0 H), round(beta_1 W))`` with
``beta_k ~ Beta(beta, beta)`` independently (the reference's default ``beta = 0.3``). It splits
the image into four tiles, in the reference's order: tile 0 rows ``[0, w)`` x columns ``[0, h)``,
tile 1 rows ``[w, H)`` x ``[0, h)``, tile 2 ``[0, w)`` x ``[h, W)``, tile 3 ``[w, H)`` x ``[h, W)``.
Tile ``m`` shows a crop of source ``m`` of the tile's size taken at a uniform position inside
that image (``x_m`` read at ``i + shift_m``, ``msda_jax.masks._ksources``). Source 0 is the
example itself; with the default ``pairing="permute"`` the three others are independent random
permutations of its block, as the reference's four ``randperm`` are up to the order of the batch.
The label weights are the four tile areas ``w_m h_m / (H W)``, which are also the ``lam``.

The tiles are fixed given ``(w, h)``, so the coefficients are exact: a sum over the ``(H + 1)
(W + 1)`` boundary points, each with its probability under the rounded Beta law
(``msda_jax.theory.ricap_moments``). Images only (two spatial axes).
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _bits, lam_laws
from msda_jax._dataclass import pytree_dataclass
from msda_jax.masks._ksources import KSample, KSourceMethod, one_hot_regions


def boundary_point(fractions: jax.Array, shape: tuple[int, int]) -> jax.Array:
  """int32 ``[2]`` ``(w, h) = round(fractions * (H, W))``, halves to even (numpy's ``round``)."""
  return jnp.round(jnp.asarray(fractions, jnp.float32) * jnp.asarray(shape, jnp.float32)).astype(jnp.int32)


def tile_owner(boundary: jax.Array, shape: tuple[int, int]) -> jax.Array:
  """The tile (source) of every pixel, int32 ``[H, W]``: ``(row >= w) + 2 (column >= h)``."""
  rows = (jnp.arange(shape[0]) >= boundary[0]).astype(jnp.int32)[:, None]
  cols = (jnp.arange(shape[1]) >= boundary[1]).astype(jnp.int32)[None, :]
  return rows + 2 * cols


def tile_sizes(boundary: jax.Array, shape: tuple[int, int]) -> jax.Array:
  """int32 ``[4, 2]`` the (rows, columns) of the four tiles."""
  w, h = boundary[0], boundary[1]
  rows = jnp.stack([w, shape[0] - w, w, shape[0] - w])
  cols = jnp.stack([h, h, shape[1] - h, shape[1] - h])
  return jnp.stack([rows, cols], axis=-1).astype(jnp.int32)


def tile_starts(boundary: jax.Array) -> jax.Array:
  """int32 ``[4, 2]`` the top-left pixel of each tile."""
  w, h = boundary[0], boundary[1]
  zero = jnp.zeros((), jnp.int32)
  return jnp.stack([jnp.stack([zero, zero]), jnp.stack([w, zero]), jnp.stack([zero, h]), jnp.stack([w, h])]).astype(
    jnp.int32
  )


@pytree_dataclass
class RICAP(KSourceMethod):
  """RICAP: four crops tiled around ``(round(beta_0 H), round(beta_1 W))``, ``beta_k ~ Beta(beta, beta)``.

  >>> RICAP()
  RICAP(beta=0.3)
  >>> s = RICAP().sample(jax.random.key(0), shape=(8, 8))
  >>> s.mask.shape, round(float(s.weight.sum()), 6), bool((s.mask.sum(0) == 1).all())
  ((4, 8, 8), 1.0, True)
  """

  name = "ricap"
  sources: ClassVar[int] = 4
  _positive = ("beta",)

  beta: ArrayLike = 0.3

  def check_input(self, spatial: tuple[int, ...], block: int | None = None) -> None:
    if len(spatial) != 2:
      raise ValueError(f"RICAP tiles images [B, H, W, C] (spatial_ndim=2); got {len(spatial)} spatial axes {spatial}.")
    super().check_input(spatial, block)

  def _partition(self, key_weights: jax.Array, key_regions: jax.Array, shape: tuple[int, ...]) -> KSample:
    boundary = boundary_point(lam_laws.sample_beta(key_weights, self.beta, shape=(2,)), shape)  # type: ignore[arg-type]
    sizes = tile_sizes(boundary, shape)  # type: ignore[arg-type]
    # The crop of source m starts uniformly inside its image: [0, n - size] per axis.
    crop = _bits.randint(key_regions, (4, 2), 0, jnp.asarray(shape, jnp.int32)[None, :] - sizes + 1)
    return tiled(boundary, crop, shape)  # type: ignore[arg-type]


def tiled(boundary: jax.Array, crop: jax.Array, shape: tuple[int, int]) -> KSample:
  """The partition of a boundary point ``(w, h)`` (int ``[2]``) with crops starting at ``crop`` (int ``[4, 2]``).

  Tile ``m`` shows source ``m`` read from ``crop[m]`` on: its shift is ``crop[m]`` minus the tile's
  top-left pixel. The weights (and ``lam``) are the four tile areas.

  >>> s = tiled(jnp.array([1, 2]), jnp.zeros((4, 2), jnp.int32), (4, 4))
  >>> s.weight.tolist(), s.owner[:, 0].tolist(), s.shifts[3].tolist()
  ([0.125, 0.375, 0.125, 0.375], [0, 1, 1, 1], [-1, -2])
  """
  sizes = tile_sizes(boundary, shape)
  owner = tile_owner(boundary, shape)
  areas = jnp.prod(sizes, axis=-1).astype(jnp.float32) / float(shape[0] * shape[1])
  shifts = jnp.asarray(crop, jnp.int32) - tile_starts(boundary)
  return KSample(areas, one_hot_regions(owner, 4), areas, shifts, owner)
