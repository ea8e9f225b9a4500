"""GridMix: the image cut into a grid of cells, each cell taken from the partner with probability ``1 - lam``.

The grid has ``g_0`` cells along the first axis, ``g_0`` uniform over the integers
``[cells[0], cells[1]]`` (static bounds), and along every other axis ``k`` as many as keep the
cells' side ratio ``aspect`` (first-axis side over axis-``k`` side):
``g_k = clip(round(g_0 * aspect * n_k / n_0), 1, n_k)``; ``aspect = 1`` gives square cells.
Pixel ``i`` lies in cell ``floor(i_k g_k / n_k)`` along each axis (cells of equal size up to one
pixel). Every cell keeps the image with probability ``lam ~ Beta(alpha, alpha)``, independently
(``M`` is 1 there), else shows the partner; the label weight is the realised mean of ``M``.

At a fixed ``lam`` and grid the coefficients are exact: ``a_jk = 1 - lam`` for two pixels in one
cell and ``(1 - lam)^2`` otherwise (``msda_jax.theory.regions``). One cell per axis is
Mixup's label law with a hard mask (all or nothing); one pixel per cell is the Bernoulli mask.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _bits, _validate
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks._base import MixMethod, Sample


def grid_counts(first: ArrayLike, aspect: ArrayLike, shape: tuple[int, ...]) -> jax.Array:
  """The cell counts ``g_k`` per axis (int32 ``[d]``) for ``first`` cells along the first axis."""
  first = jnp.clip(jnp.asarray(first, jnp.int32), 1, shape[0])
  counts = [first]
  for n in shape[1:]:
    ideal = first.astype(jnp.float32) * jnp.asarray(aspect, jnp.float32) * (n / shape[0])
    counts.append(jnp.clip(jnp.round(ideal), 1, n).astype(jnp.int32))
  return jnp.stack(counts)


def cell_index(counts: ArrayLike, shape: tuple[int, ...]) -> list[jax.Array]:
  """Per axis, the cell of each index: ``floor(i g_k / n_k)`` (int32 ``[n_k]``)."""
  counts = jnp.asarray(counts, jnp.int32)
  return [(jnp.arange(n, dtype=jnp.int32) * counts[axis]) // n for axis, n in enumerate(shape)]


def grid_mask(lam: ArrayLike, counts: jax.Array, uniforms: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """``M``: 1 on the cells whose uniform is ``< lam``, 0 on the others (float32 of ``shape``).

  Args:
    lam: the probability that a cell keeps the image.
    counts: int ``[d]`` cells per axis, ``1 <= g_k <= n_k``.
    uniforms: float32 ``[m_0, ..., m_{d-1}]`` with ``m_k >= g_k``: the uniform of cell ``c`` is
      ``uniforms[c]`` (the first ``g_k`` entries per axis are used).
    shape: static spatial shape.
  """
  values = uniforms
  for axis, index in enumerate(cell_index(counts, shape)):
    values = jnp.take(values, index, axis=axis)  # one small gather per axis
  return jnp.where(values < jnp.asarray(lam, jnp.float32), 1.0, 0.0).astype(jnp.float32)


@pytree_dataclass
class GridMix(MixMethod):
  """GridMix: a grid of ``g_0 ~ Uniform{cells[0], ..., cells[1]}`` cells along the first axis,
  each kept with probability ``lam ~ Beta(alpha, alpha)`` (the module docstring).

  ``alpha`` and ``aspect`` (the cells' first-axis side over their other sides) are traced;
  ``cells`` is static. A grid whose first-axis count exceeds the image's first side raises.

  >>> GridMix()
  GridMix(alpha=1.0, aspect=1.0, cells=(2, 6))
  >>> s = GridMix(cells=(4, 4)).sample(jax.random.key(0), shape=(8, 8), lam=0.5)
  >>> sorted(set(s.mask.reshape(4, 2, 4, 2).std(axis=(1, 3)).ravel().tolist()))  # constant per cell
  [0.0]
  """

  name = "gridmix"
  _positive = ("alpha", "aspect")

  alpha: ArrayLike = 1.0
  aspect: ArrayLike = 1.0
  cells: tuple[int, int] = static_field(default=(2, 6))

  def _check(self) -> None:
    object.__setattr__(
      self, "cells", _validate.check_int_range("cells", self.cells, low=1, what="cells along the first axis")
    )

  def check_input(self, spatial: tuple[int, ...], block: int | None = None) -> None:
    del block
    if spatial and self.cells[1] > spatial[0]:
      raise ValueError(
        f"cells={self.cells}: up to {self.cells[1]} cells do not fit the first axis of {spatial[0]} pixels "
        f"(spatial shape {spatial}); the high bound must be <= {spatial[0]}."
      )

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del data
    self.check_input(shape)
    lam = jnp.clip(self._beta_lam(key_lam, lam), 0.0, 1.0)
    key_count, key_cells = _bits.split(key_mask)
    first = _bits.randint(key_count, (), self.cells[0], self.cells[1] + 1)
    counts = grid_counts(first, self.aspect, shape)
    # One uniform per possible cell: at most cells[1] along the first axis, n_k along the others.
    table = (min(self.cells[1], shape[0]), *shape[1:])
    mask = grid_mask(lam, counts, jax.random.uniform(key_cells, table, jnp.float32), shape)
    return Sample(lam, mask, jnp.mean(mask))
