"""Exact moments of ``1 - M`` (Eq. 9's ``a_jk``) for GridMix, VideoMix, SpecMix and SmoothMix.

Each function returns ``ExactMoments(mean, second, num_positions)`` over the row-major flattened
grid, float64 numpy, computed from the sampler's own law (the same integer sides and widths):

* ``gridmix_moments``: at a fixed ``lam``, cells are independent and equally likely to show the
  partner: ``a_jk = 1 - lam`` in one cell, ``(1 - lam)^2`` across cells, averaged over the
  uniform count of cells;
* ``videomix_moments``: at a fixed ``lam``, the cuboid's extent along each axis is independent
  (CutMix's per-axis coverage along the cut axes, always covered along the others), so ``a_jk``
  is a Kronecker product of per-axis factors;
* ``specmix_moments``: the image is kept where no band of any axis falls, a product of
  independent per-axis events, so ``a_jk = 1 - u_j - u_k + u_jk`` with ``u`` the probability
  that the pixel (pair) is uncovered, each a product over axes of one-dimensional sums over the
  band count, widths and starts;
* ``smoothmix_moments``: a Gauss-Legendre rule over the uniform width (the bump is smooth in
  it) times every centre, so exact to the rule's (exponential) accuracy.

The Monte Carlo path (``moments.mask_moments`` of ``laws.fixed_lam_law`` or ``laws.msda_law``)
estimates the same numbers from the samplers; ``tests/test_theory_family.py`` checks the two
against each other within their standard errors.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from jax.typing import ArrayLike

from msda_jax import _validate
from msda_jax.masks import _box, _gridmix, _smoothmix, _specmix, _videomix
from msda_jax.masks._cutmix import PLACEMENTS
from msda_jax.theory import closed_forms
from msda_jax.theory.enumeration import ExactMoments
from msda_jax.theory.family_atoms import concrete_parameter


def _kron(factors: list[np.ndarray]) -> np.ndarray:
  out = np.ones((1, 1))
  for factor in factors:
    out = np.kron(out, factor)
  return out


def _outer(vectors: list[np.ndarray]) -> np.ndarray:
  out = np.ones(1)
  for vector in vectors:
    out = np.multiply.outer(out, vector).reshape(-1)
  return out


def gridmix_moments(
  lam: float, *, shape: tuple[int, ...], cells: tuple[int, int] = (2, 6), aspect: float = 1.0
) -> ExactMoments:
  """Exact ``E[1 - M]`` and ``a_jk(lam)`` of GridMix (``msda_jax.GridMix``'s law at a fixed ``lam``).

  >>> m = gridmix_moments(0.25, shape=(2, 2), cells=(2, 2))  # one pixel per cell: Bernoulli
  >>> m.second[0].tolist()
  [0.75, 0.5625, 0.5625, 0.5625]
  """
  shape = _validate.check_shape("shape", shape)
  cells = _validate.check_int_range("cells", cells, low=1, what="cells along the first axis")
  lam = float(np.clip(np.float32(lam), 0.0, 1.0))
  second = np.zeros((math.prod(shape), math.prod(shape)))
  counts = range(cells[0], cells[1] + 1)
  for first in counts:
    grid = np.asarray(_gridmix.grid_counts(np.int32(first), np.float32(aspect), shape))
    index = [np.asarray(i) for i in _gridmix.cell_index(grid, shape)]
    cell = np.ravel_multi_index(np.meshgrid(*index, indexing="ij"), tuple(int(g) for g in grid)).reshape(-1)
    same = cell[:, None] == cell[None, :]
    second += np.where(same, 1.0 - lam, (1.0 - lam) ** 2)
  d = math.prod(shape)
  return ExactMoments(np.full(d, 1.0 - lam), second / len(counts), len(counts))


def videomix_moments(
  lam: float, *, shape: tuple[int, ...], kind: str = "spatial", placement: str = "clip", box_sides: str = "floor"
) -> ExactMoments:
  """Exact ``E[1 - M]`` and ``a_jk(lam)`` of VideoMix's cuboid at a fixed ``lam``.

  >>> m = videomix_moments(0.5, shape=(4, 2, 2), kind="temporal", placement="inside")  # 2 of 4 frames
  >>> m.mean.reshape(4, 4)[:, 0].tolist()
  [0.3333333333333333, 0.6666666666666666, 0.6666666666666666, 0.3333333333333333]
  """
  shape = _validate.check_shape("shape", shape)
  _validate.check_choice("kind", kind, tuple(_videomix.KINDS))
  _validate.check_choice("placement", placement, PLACEMENTS)
  if len(shape) != 3:
    raise ValueError(f"VideoMix mixes videos [T, H, W]; got the spatial shape {shape}.")
  axes = _videomix.KINDS[kind]
  cut = tuple(shape[a] for a in axes)
  sides = _box.cut_sizes(np.float32(lam), cut, sides=box_sides)
  # The factors are counts over positions in float32: recover the integer counts, divide in float64.
  positions = [n if placement == "clip" else n - int(side) + 1 for n, side in zip(cut, np.asarray(sides), strict=True)]
  cut_factors = [
    np.round(np.asarray(f, np.float64) * p) / p
    for f, p in zip(closed_forms.box_axis_factors(sides, shape=cut, placement=placement), positions, strict=True)
  ]
  factors = []
  for axis, n in enumerate(shape):
    factors.append(cut_factors[axes.index(axis)] if axis in axes else np.ones((n, n)))
  second = _kron(factors)
  return ExactMoments(np.diag(second).copy(), second, int(np.prod([shape[a] for a in axes])))


def _band_axis(n: int, max_width: float, bands: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
  """``(u [n], u2 [n, n])``: the probability that one axis's bands miss index ``j`` (and ``j, k``)."""
  widest = int(np.asarray(_specmix.max_band_width(np.float32(max_width), n)))
  index = np.arange(n)
  miss_one = np.zeros(n)
  miss_two = np.zeros((n, n))
  for width in range(widest + 1):
    starts = np.arange(n - width + 1)
    covered = (index[None, :] >= starts[:, None]) & (index[None, :] < starts[:, None] + width)  # [starts, n]
    missed = (~covered).astype(np.float64)
    miss_one += missed.mean(0)
    miss_two += missed.T @ missed / len(starts)
  miss_one /= widest + 1
  miss_two /= widest + 1
  counts = range(bands[0], bands[1] + 1)
  u = sum(miss_one**c for c in counts) / len(counts)
  u2 = sum(miss_two**c for c in counts) / len(counts)
  return np.asarray(u), np.asarray(u2)


def specmix_moments(*, shape: tuple[int, ...], max_width: float = 0.3, bands: tuple[int, int] = (1, 3)) -> ExactMoments:
  """Exact ``E[1 - M]`` and ``E[(1 - M_j)(1 - M_k)]`` of SpecMix's band masks (its law draws no ``lam``).

  >>> m = specmix_moments(shape=(3,), max_width=1.0, bands=(1, 1))  # one band of width 0..3
  >>> round(float(m.mean[0]), 6), round(float(m.mean[1]), 6)  # (0 + 1/3 + 1/2 + 1) / 4, (0 + 1/3 + 1 + 1) / 4
  (0.458333, 0.583333)
  """
  shape = _validate.check_shape("shape", shape)
  bands = _validate.check_int_range("bands", bands, low=0, what="bands per axis")
  parts = [_band_axis(n, max_width, bands) for n in shape]
  u = _outer([p[0] for p in parts])
  u2 = _kron([p[1] for p in parts])
  second = 1.0 - u[:, None] - u[None, :] + u2
  return ExactMoments(1.0 - u, second, 0)


def smoothmix_moments(
  *,
  shape: tuple[int, ...],
  sigma_min: float = 0.25,
  sigma_max: float = 0.5,
  profile: str = "circle",
  num_nodes: int = 24,
) -> ExactMoments:
  """``E[1 - M]`` and ``a_jk`` of SmoothMix: Gauss-Legendre over the width, every centre enumerated.

  Exact to the rule's accuracy (the bump is analytic in the width). ``num_positions`` counts
  the masks averaged: nodes x centres.
  """
  shape = _validate.check_shape("shape", shape)
  _validate.check_choice("profile", profile, _smoothmix.PROFILES)
  _validate.check_positive_int("num_nodes", num_nodes)
  nodes, weights = np.polynomial.legendre.leggauss(num_nodes)
  side = _smoothmix.side_scale(shape)
  d = math.prod(shape)
  centres = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, len(shape))
  grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, len(shape))
  offsets = np.abs(grid[None, :, :] - centres[:, None, :]).astype(np.float64)  # [centres, d, axes]
  rho2 = (offsets**2).sum(-1) if profile == "circle" else (offsets**2).max(-1)
  mean, second = np.zeros(d), np.zeros((d, d))
  for node, weight in zip(nodes, weights, strict=True):
    s = sigma_min + (sigma_max - sigma_min) * (node + 1.0) / 2.0
    bump = np.exp(-rho2 / (2.0 * (s * side) ** 2))  # [centres, d]: 1 - M for every centre
    mean += weight / 2.0 * bump.mean(0)
    second += weight / 2.0 * bump.T @ bump / len(centres)
  return ExactMoments(mean, second, num_nodes * len(centres))


def region_moments(method: object, *, shape: tuple[int, ...], lam: ArrayLike | None = None) -> ExactMoments:
  """The exact moments of a GridMix, VideoMix, SpecMix or SmoothMix method with its own parameters.

  ``lam`` (a concrete float) is required for GridMix and VideoMix (Eq. 9 at that ``lam``) and
  refused for SpecMix and SmoothMix, whose laws draw none.
  """
  name = type(method).name  # type: ignore[attr-defined]
  takes_lam = name in ("gridmix", "videomix")
  if name not in ("gridmix", "videomix", "specmix", "smoothmix"):
    raise ValueError(f"region_moments covers GridMix, VideoMix, SpecMix and SmoothMix; got {type(method).__name__}.")
  if takes_lam and lam is None:
    raise ValueError(f"region_moments: {type(method).__name__} needs lam= (the coefficients at a fixed lam).")
  if not takes_lam and lam is not None:
    raise ValueError(f"region_moments: {type(method).__name__} draws no lam; got lam={lam!r}.")
  if name == "gridmix":
    return gridmix_moments(
      float(lam),  # type: ignore[arg-type]
      shape=shape,
      cells=method.cells,  # type: ignore[attr-defined]
      aspect=concrete_parameter(method, "aspect"),  # type: ignore[arg-type]
    )
  if name == "videomix":
    return videomix_moments(
      float(lam),  # type: ignore[arg-type]
      shape=shape,
      kind=method.kind,  # type: ignore[attr-defined]
      placement=method.placement,  # type: ignore[attr-defined]
      box_sides=method.box_sides,  # type: ignore[attr-defined]
    )
  if name == "specmix":
    return specmix_moments(shape=shape, max_width=concrete_parameter(method, "max_width"), bands=method.bands)  # type: ignore[arg-type, attr-defined]
  return smoothmix_moments(
    shape=shape,
    sigma_min=concrete_parameter(method, "sigma_min"),  # type: ignore[arg-type]
    sigma_max=concrete_parameter(method, "sigma_max"),  # type: ignore[arg-type]
    profile=method.profile,  # type: ignore[attr-defined]
  )


# -- Figure 4's maps E_i a_(i, i+p), from per-axis parts (no d x d matrix) ----------------------
def _diagonal_means(factor: np.ndarray) -> np.ndarray:
  """``T(p) = mean_i F[i, i + p]`` over the valid ``i``, for ``p = -(n - 1) ... n - 1`` (``[2n - 1]``)."""
  n = factor.shape[0]
  return np.array([np.diagonal(factor, offset=p).mean() for p in range(-(n - 1), n)])


def _shifted_means(u: np.ndarray, *, shifted: bool) -> np.ndarray:
  """``mean_i u[i]`` (``shifted=False``) or ``mean_i u[i + p]`` over the ``i`` valid for offset ``p``."""
  n = u.shape[0]
  out = []
  for p in range(-(n - 1), n):
    i = np.arange(max(0, -p), min(n, n - p))
    out.append(u[i + p].mean() if shifted else u[i].mean())
  return np.asarray(out)


def _outer_map(vectors: list[np.ndarray]) -> np.ndarray:
  out = np.ones(())
  for vector in vectors:
    out = np.multiply.outer(out, vector)
  return out


def gridmix_translation_map(
  lam: float, *, shape: tuple[int, ...], cells: tuple[int, int] = (2, 6), aspect: float = 1.0
) -> np.ndarray:
  """GridMix's exact ``E_i a_(i, i+p)`` at a fixed ``lam`` (float64 ``[2 n_1 - 1, ...]``).

  ``a_jk = (1 - lam)^2 + lam (1 - lam) 1[same cell]``, and the same-cell indicator is a product
  over axes for each cell count.
  """
  shape = _validate.check_shape("shape", shape)
  cells = _validate.check_int_range("cells", cells, low=1, what="cells along the first axis")
  lam = float(np.clip(np.float32(lam), 0.0, 1.0))
  counts = range(cells[0], cells[1] + 1)
  same = np.zeros(tuple(2 * n - 1 for n in shape))
  for first in counts:
    grid = np.asarray(_gridmix.grid_counts(np.int32(first), np.float32(aspect), shape))
    index = [np.asarray(i) for i in _gridmix.cell_index(grid, shape)]
    same += _outer_map([_diagonal_means((i[:, None] == i[None, :]).astype(float)) for i in index])
  return (1.0 - lam) ** 2 + lam * (1.0 - lam) * same / len(counts)


def specmix_translation_map(
  *, shape: tuple[int, ...], max_width: float = 0.3, bands: tuple[int, int] = (1, 3)
) -> np.ndarray:
  """SpecMix's exact ``E_i a_(i, i+p)``: ``1 - E u_i - E u_(i+p) + E u_(i, i+p)``, each a product over axes."""
  shape = _validate.check_shape("shape", shape)
  bands = _validate.check_int_range("bands", bands, low=0, what="bands per axis")
  parts = [_band_axis(n, max_width, bands) for n in shape]
  first = _outer_map([_shifted_means(u, shifted=False) for u, _ in parts])
  second = _outer_map([_shifted_means(u, shifted=True) for u, _ in parts])
  both = _outer_map([_diagonal_means(u2) for _, u2 in parts])
  return 1.0 - first - second + both


def smoothmix_translation_map(
  *, shape: tuple[int, ...], sigma_min: float = 0.25, sigma_max: float = 0.5, num_nodes: int = 24
) -> np.ndarray:
  """SmoothMix's ``E_i a_(i, i+p)`` for the circle profile: separable at each width, Gauss-Legendre over it.

  At a width ``sigma`` the bump is ``prod_k g(i_k - c_k)`` with independent uniform centre
  coordinates, so ``a_jk = prod_k F_k[j_k, k_k]`` with ``F_k = mean_c g(j - c) g(k - c)``.
  """
  shape = _validate.check_shape("shape", shape)
  _validate.check_positive_int("num_nodes", num_nodes)
  nodes, weights = np.polynomial.legendre.leggauss(num_nodes)
  side = _smoothmix.side_scale(shape)
  total = np.zeros(tuple(2 * n - 1 for n in shape))
  for node, weight in zip(nodes, weights, strict=True):
    sigma = (sigma_min + (sigma_max - sigma_min) * (node + 1.0) / 2.0) * side
    factors = []
    for n in shape:
      g = np.exp(-((np.arange(n)[None, :] - np.arange(n)[:, None]) ** 2) / (2.0 * sigma**2))  # [centre, index]
      factors.append(_diagonal_means(g.T @ g / n))
    total += weight / 2.0 * _outer_map(factors)
  return total


# -- k sources: RICAP's four tiles --------------------------------------------------------------
def rounded_beta_probabilities(n: int, beta: float) -> np.ndarray:
  """``P(round(n B) = w)`` for ``w = 0 ... n`` with ``B ~ Beta(beta, beta)`` (float64 ``[n + 1]``)."""
  from scipy import special

  edges = np.clip((np.arange(n + 2) - 0.5) / n, 0.0, 1.0)
  return np.diff(special.betainc(beta, beta, edges))


def ricap_moments(*, shape: tuple[int, ...], beta: float = 0.3) -> ExactMoments:
  """Exact moments of RICAP's source masks, flattened over (source, pixel): ``[4 d]`` and ``[4 d, 4 d]``.

  ``mean[a] = E[1 - M_a]`` and ``second[a, b] = E[(1 - M_a)(1 - M_b)]`` for ``a = m d + j`` (source
  ``m``, pixel ``j``), the quantities ``moments.mask_moments`` estimates from ``laws.source_law``.
  The tiles are fixed given the boundary point, whose coordinates are independent rounded Betas:
  the sum runs over all ``(H + 1)(W + 1)`` points. The block ``[:d, :d]`` is the example's own
  ``a_jk`` (Eq. 9).

  >>> m = ricap_moments(shape=(2, 2), beta=1.0)  # boundary coordinates 0, 1, 2 w.p. 1/4, 1/2, 1/4
  >>> round(float(1 - m.mean[0]), 6)  # the top-left pixel is source 0's when w, h >= 1
  0.5625
  """
  shape = _validate.check_shape("shape", shape)
  if len(shape) != 2:
    raise ValueError(f"RICAP tiles images: shape must have two axes; got {shape}.")
  rows, cols = (rounded_beta_probabilities(n, beta) for n in shape)
  masks, probs = [], []
  for w, h in itertools.product(range(shape[0] + 1), range(shape[1] + 1)):
    owner = (np.arange(shape[0])[:, None] >= w).astype(int) + 2 * (np.arange(shape[1])[None, :] >= h)
    masks.append(np.eye(4)[owner].transpose(2, 0, 1).reshape(-1))
    probs.append(rows[w] * cols[h])
  x = 1.0 - np.asarray(masks)
  p = np.asarray(probs)
  return ExactMoments(p @ x, (x * p[:, None]).T @ x, len(p))


def ricap_translation_map(*, shape: tuple[int, ...], beta: float = 0.3) -> np.ndarray:
  """RICAP's own ``E_i a_(i, i+p)`` (source 0, the example itself) from per-axis parts.

  Source 0 keeps the tile ``[0, w) x [0, h)``: ``M_0`` is a product of one indicator per axis
  with independent ``w`` and ``h``, so ``a_jk = 1 - E M_j - E M_k + E[M_j M_k]`` is a sum of
  products over the axes.
  """
  shape = _validate.check_shape("shape", shape)
  if len(shape) != 2:
    raise ValueError(f"RICAP tiles images: shape must have two axes; got {shape}.")
  ones, twos = [], []
  for n in shape:
    probs = rounded_beta_probabilities(n, beta)
    index = np.arange(n)
    inside = (index[None, :] < np.arange(n + 1)[:, None]).astype(np.float64)  # [boundary, index]
    ones.append(probs @ inside)  # P(index kept by source 0)
    twos.append((inside * probs[:, None]).T @ inside)  # P(both kept)
  first = _outer_map([_shifted_means(u, shifted=False) for u in ones])
  second = _outer_map([_shifted_means(u, shifted=True) for u in ones])
  both = _outer_map([_diagonal_means(u2) for u2 in twos])
  return 1.0 - first - second + both
