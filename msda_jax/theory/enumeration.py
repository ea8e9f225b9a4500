"""Exact coefficients ``a_jk(lam)`` (Eq. 9) by enumerating every mask position at a fixed ``lam``.

At a fixed ``lam`` a box mask (CutMix, HMix) has a uniformly random position and a GMix mask a
uniformly random centre, so ``a_jk = (1 / P) sum_positions (1 - M_j)(1 - M_k)`` over the ``P``
positions, exactly:

* ``placement="clip"``: every centre ``c`` of the grid, ``start = c - side // 2``, box clipped;
* ``placement="inside"``: every start in ``[0, n_k - side_k]`` per axis (Eq. 10's setting);
* HMix: 0 in the box and ``lam / (1 - A)`` outside, ``A`` the *realised* area fraction at that
  position (with clipping it changes with the position);
* GMix: every centre, the bump of ``msda_jax.masks._gmix``.

These are the references that the closed forms and the Monte Carlo estimates are tested
against. Everything is float64 numpy; the box sides and Gaussian widths come from the samplers'
own float32 functions, so the enumerated law is the sampled one.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from jax.typing import ArrayLike

from msda_jax import _validate
from msda_jax.masks import _box, _gmix, _scaled_sides
from msda_jax.masks._cutmix import PLACEMENTS

FAMILIES = ("cutmix", "hmix")


class ExactMoments(NamedTuple):
  """Exact moments of ``1 - M`` over all positions (float64 numpy).

  Attributes:
    mean: ``[d]`` ``E[1 - M_j]``.
    second: ``[d, d]`` ``a_jk = E[(1 - M_j)(1 - M_k)]`` (Eq. 9).
    num_positions: number of equally likely mask positions enumerated.
  """

  mean: np.ndarray
  second: np.ndarray
  num_positions: int


def box_sides(lam: ArrayLike, *, shape: tuple[int, ...], family: str = "cutmix", r: ArrayLike = 0.5) -> np.ndarray:
  """Integer box sides ``floor(f^(1/d) n_k)`` exactly as the samplers compute them.

  ``f = 1 - lam`` for CutMix and ``(1 - lam) r`` for HMix, in float32 as in
  ``msda_jax.masks._cutmix`` and ``msda_jax.masks._hmix``.

  Args:
    lam: concrete scalar ratio.
    shape: static spatial shape.
    family: ``"cutmix"`` or ``"hmix"``.
    r: HMix box ratio.

  Returns:
    int64 numpy ``[d]`` sides.

  >>> box_sides(0.75, shape=(8, 12)).tolist()
  [4, 6]
  """
  _validate.check_choice("family", family, FAMILIES)
  if family == "cutmix":
    return np.asarray(_box.cut_sizes(lam, shape), dtype=np.int64)
  return np.asarray(_scaled_sides.scaled_sizes(lam, r, shape), dtype=np.int64)


def box_masks(
  lam: float,
  *,
  shape: tuple[int, ...],
  family: str = "cutmix",
  placement: str = "clip",
  r: float = 0.5,
) -> np.ndarray:
  """The mask ``M`` at every box position, each equally likely (float64 numpy).

  Args:
    lam: concrete ratio in [0, 1].
    shape: static spatial shape, any number of axes.
    family: ``"cutmix"`` (0 in the box, 1 outside) or ``"hmix"`` (0 in the box of nominal area
      ``(1 - lam) r``, ``lam / (1 - A)`` outside).
    placement: ``"clip"`` (every centre) or ``"inside"`` (every start keeping the box inside).
    r: HMix box ratio in [0, 1].

  Returns:
    ``[P, *shape]`` masks, ``P = prod(n_k)`` (clip) or ``prod(n_k - side_k + 1)`` (inside).

  >>> box_masks(0.5, shape=(4,), placement="inside").tolist()  # side 2, 3 starts
  [[0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 0.0, 0.0]]
  """
  _validate.check_choice("placement", placement, PLACEMENTS)
  sides = box_sides(lam, shape=shape, family=family, r=r)
  covered_axes, fractions = [], []
  for n, side in zip(shape, sides, strict=True):
    starts = np.arange(n) - side // 2 if placement == "clip" else np.arange(n - side + 1)
    index = np.arange(n)
    covered = (index[None, :] >= starts[:, None]) & (index[None, :] < starts[:, None] + side)
    covered_axes.append(covered)
    fractions.append(covered.sum(1) / n)
  d = len(shape)
  box = np.ones((1,) * (2 * d), dtype=bool)
  area = np.ones((1,) * d)
  for axis, (covered, fraction) in enumerate(zip(covered_axes, fractions, strict=True)):
    view = [1] * (2 * d)
    view[axis], view[d + axis] = covered.shape
    box = box & covered.reshape(view)
    area = area * fraction.reshape([len(fraction) if k == axis else 1 for k in range(d)])
  box = box.reshape(-1, *shape)
  if family == "cutmix":
    return np.where(box, 0.0, 1.0)
  kept = (1.0 - area).reshape(-1, *([1] * d))
  lam = float(np.clip(lam, 0.0, 1.0))
  outside = np.divide(lam, kept, out=np.zeros_like(kept), where=kept > 0.0)
  return np.where(box, 0.0, outside)


def gmix_masks(lam: float, *, shape: tuple[int, ...], scale: str = "code", symmetric: bool = True) -> np.ndarray:
  """The GMix mask ``M`` for every centre of the grid, each equally likely (float64 numpy).

  ``1 - M = exp(-pi ||i - p||^2 / c)`` with ``c`` from ``msda_jax.masks._gmix.gaussian_width``;
  with ``symmetric=True`` and ``lam < 0.5`` the bump (of nominal mean ``lam``) is ``M`` itself.

  Args:
    lam: concrete ratio in [0, 1].
    shape: static spatial shape.
    scale: ``"code"`` or ``"text"``.
    symmetric: as ``msda_jax.masks._gmix.gmix_mask``.

  Returns:
    ``[prod(shape), *shape]`` masks, one per centre (row-major order).

  >>> gmix_masks(0.9, shape=(5, 5)).shape
  (25, 5, 5)
  """
  _validate.check_choice("scale", scale, _gmix.SCALES)
  lam = float(np.clip(lam, 0.0, 1.0))
  bump_is_mask = symmetric and lam < 0.5
  width = float(_gmix.gaussian_width(lam if bump_is_mask else 1.0 - lam, shape, scale))
  d = len(shape)
  distance = np.zeros((1,) * (2 * d))
  for axis, n in enumerate(shape):  # ||i - p||^2 as [p_1, ..., p_d, i_1, ..., i_d], one axis at a time
    view = [1] * (2 * d)
    view[axis], view[d + axis] = n, n
    index = np.arange(n, dtype=np.float64)
    distance = distance + ((index[None, :] - index[:, None]) ** 2).reshape(view)
  distance = distance.reshape(-1, *shape)
  bump = np.exp(-math.pi * distance / width) if width > 0.0 else np.zeros_like(distance)
  return bump if bump_is_mask else 1.0 - bump


def enumerated_moments(masks: np.ndarray) -> ExactMoments:
  """Exact ``E[1 - M]`` and ``a_jk`` (Eq. 9) for equally likely masks ``[P, *shape]``.

  Args:
    masks: ``[P, *shape]`` masks ``M``, each of probability ``1 / P``.

  Returns:
    ``ExactMoments`` over the flattened grid (float64 numpy).

  >>> moments = enumerated_moments(np.array([[0.0, 1.0], [1.0, 0.0]]))
  >>> moments.second.tolist()
  [[0.5, 0.0], [0.0, 0.5]]
  """
  x = 1.0 - np.asarray(masks, np.float64).reshape(masks.shape[0], -1)
  return ExactMoments(x.mean(0), x.T @ x / x.shape[0], int(x.shape[0]))


def box_moments(
  lam: float,
  *,
  shape: tuple[int, ...],
  family: str = "cutmix",
  placement: str = "clip",
  r: float = 0.5,
) -> ExactMoments:
  """Exact ``a_jk(lam)`` (Eq. 9) of CutMix or HMix by enumerating every box position.

  Args:
    lam: concrete ratio in [0, 1].
    shape: static spatial shape, any number of axes, not necessarily square.
    family: ``"cutmix"`` or ``"hmix"``.
    placement: ``"clip"`` (every centre; the HMix outside weight follows the realised area) or
      ``"inside"`` (every start).
    r: HMix box ratio.

  Returns:
    ``ExactMoments`` (float64 numpy).

  >>> moments = box_moments(0.75, shape=(8, 8), placement="inside")  # 4 x 4 box, 5 x 5 starts
  >>> float(moments.second[0, 0])  # a corner pixel: covered by 1 start of 5 per axis
  0.04
  """
  return enumerated_moments(box_masks(lam, shape=shape, family=family, placement=placement, r=r))
