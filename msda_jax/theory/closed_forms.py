"""Closed forms of the coefficients ``a_jk(lam) = E[(1 - M_j)(1 - M_k)]`` (Eq. 9).

Pixels are flattened row-major (as ``M.reshape(-1)``), so a separable coefficient
``a_jk = prod_k F_k[j_k, k_k]`` is the Kronecker product of its per-axis factors ``F_k``
(``[n_k, n_k]``). Every function here is pure JAX: ``lam``, ``q`` and ``r`` may be traced,
shapes are static; results are float32 JAX arrays. Box sides come from the samplers' own
``floor(f^(1/d) n_k)`` (``_box.cut_sizes``, ``_scaled_sides.scaled_sizes``), so each form is the law actually
sampled.

* Mixup (Eq. 2): ``(1 - lam)^2 11^T``; i.i.d. Bernoulli: ``(1 - lam)^2 + lam (1 - lam) delta_jk``.
* CutMix, box fully inside (Eq. 10's setting): per axis, (starts covering ``j`` and ``k``) /
  ``(n - s + 1)``. Eq. (10) as printed misses one start per axis and divides by ``n - s``:
  see ``eq10_printed_coefficients`` and ``eq10_difference``.
* CutMix, centre uniform and box clipped (the practical one): per axis, (centres whose
  clipped box covers ``j`` and ``k``) / ``n``.
* Stochastic Mixup & CutMix: ``q a^mixup + (1 - q) a^cutmix``.
* HMix, box inside (``A`` constant): with ``u = 1 - lam / (1 - A)`` the value of ``1 - M``
  outside the box and ``P_j``, ``P_jk`` the box coverage probabilities,
  ``a_jk = u^2 + u (1 - u)(P_j + P_k) + (1 - u)^2 P_jk``.
* GMix on the infinite plane: ``1 - M = exp(-pi ||i - p||^2 / c)`` and
  ``||j - p||^2 + ||k - p||^2 = 2 ||p - (j + k)/2||^2 + ||j - k||^2 / 2`` give, for ``p`` uniform
  over a grid of volume ``V``, ``E[B_j B_k] = (c / 2)^(d/2) / V exp(-pi ||j - k||^2 / (2 c))`` and
  ``E[B_j] = c^(d/2) / V``. The official code's ``c = ((1 - lam) V)^(2/d)`` gives
  ``(1 - lam) 2^(-d/2) exp(-pi ||j - k||^2 / (2 c))``, i.e. ``(1 - lam)/2 exp(-pi ||j - k||^2 /
  (2 (1 - lam) N^2))`` for ``N x N`` images; the text's ``c = 2 ((1 - lam) V)^(2/d)`` gives
  ``(1 - lam) exp(-pi ||(j - k)/2||^2 / ((1 - lam) N^2))``, Eq. (11). With ``symmetric=True``
  and ``lam < 0.5`` the bump ``B`` (of weight ``lam``) is ``M``: ``a = 1 - 2 E[B] + E[B_j B_k]``.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _validate
from msda_jax.masks import _box, _gmix, _scaled_sides
from msda_jax.masks._cutmix import PLACEMENTS


def kron_factors(factors: tuple[jax.Array, ...]) -> jax.Array:
  """``[d, d]`` matrix of a separable coefficient from its per-axis ``[n_k, n_k]`` factors (row-major)."""
  return functools.reduce(jnp.kron, factors)


def mixup_coefficients(lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
  """Mixup (Eq. 2, ``M = lam 1``): ``a_jk = (1 - lam)^2`` for every pair (Eq. 9).

  Args:
    lam: traced scalar ratio.
    shape: static spatial shape, ``d = prod(shape)``.

  Returns:
    float32 ``[d, d]``.

  >>> mixup_coefficients(0.5, shape=(2,)).tolist()
  [[0.25, 0.25], [0.25, 0.25]]
  """
  d = math.prod(shape)
  return jnp.full((d, d), (1.0 - jnp.asarray(lam, jnp.float32)) ** 2)


def bernoulli_coefficients(lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
  """I.i.d. ``M_j ~ Bernoulli(lam)``: ``a_jk = (1 - lam)^2 + lam (1 - lam) delta_jk`` (Eq. 9).

  Args:
    lam: traced scalar ratio in [0, 1].
    shape: static spatial shape.

  Returns:
    float32 ``[d, d]``.

  >>> bernoulli_coefficients(0.5, shape=(2,)).tolist()
  [[0.5, 0.25], [0.25, 0.5]]
  """
  lam = jnp.clip(jnp.asarray(lam, jnp.float32), 0.0, 1.0)
  d = math.prod(shape)
  return (1.0 - lam) ** 2 + lam * (1.0 - lam) * jnp.eye(d, dtype=jnp.float32)


def box_axis_factors(sides: jax.Array, *, shape: tuple[int, ...], placement: str) -> tuple[jax.Array, ...]:
  """Per-axis probabilities that a random box covers both ``j_k`` and ``k_k``.

  Along an axis of length ``n`` with side ``s``, the box covers ``[t, t + s - 1]``. Inside:
  ``t`` uniform in ``[0, n - s]``, and both are covered for ``t`` in
  ``[max(j, k) - s + 1, min(j, k)]``. Clip: ``t = c - s // 2`` with the centre ``c`` uniform in
  ``[0, n)``, so ``c`` in ``[max(j, k) - s + 1 + s // 2, min(j, k) + s // 2]``. The axes are
  independent, so the box covers both pixels with probability ``prod_k F_k[j_k, k_k]``.

  Args:
    sides: int ``[d]`` box sides (traced).
    shape: static spatial shape.
    placement: ``"clip"`` or ``"inside"``.

  Returns:
    one float32 ``[n_k, n_k]`` factor per axis; the diagonal is the coverage probability.

  >>> box_axis_factors(jnp.array([2]), shape=(3,), placement="inside")[0].tolist()
  [[0.5, 0.5, 0.0], [0.5, 1.0, 0.5], [0.0, 0.5, 0.5]]
  """
  _validate.check_choice("placement", placement, PLACEMENTS)
  factors = []
  for axis, n in enumerate(shape):
    side = sides[axis]
    index = jnp.arange(n)
    low = jnp.minimum(index[:, None], index[None, :])
    high = jnp.maximum(index[:, None], index[None, :])
    if placement == "inside":
      first, last = jnp.maximum(0, high - side + 1), jnp.minimum(n - side, low)
      positions = (n - side + 1).astype(jnp.float32)
    else:
      first, last = jnp.maximum(0, high - side + 1 + side // 2), jnp.minimum(n - 1, low + side // 2)
      positions = jnp.asarray(n, jnp.float32)
    count = jnp.maximum(last - first + 1, 0)
    factors.append(count.astype(jnp.float32) / positions)
  return tuple(factors)


def cutmix_axis_factors(lam: ArrayLike, *, shape: tuple[int, ...], placement: str = "clip") -> tuple[jax.Array, ...]:
  """Per-axis factors of CutMix's ``a_jk`` (Eq. 9), sides ``floor((1 - lam)^(1/d) n_k)``.

  Args:
    lam: traced scalar ratio.
    shape: static spatial shape, any number of axes, not necessarily square.
    placement: ``"clip"`` (centre uniform, box clipped) or ``"inside"`` (Eq. 10's setting).

  Returns:
    one float32 ``[n_k, n_k]`` factor per axis; ``a_jk = prod_k F_k[j_k, k_k]``.

  >>> [f.shape for f in cutmix_axis_factors(0.5, shape=(4, 6))]
  [(4, 4), (6, 6)]
  """
  sides = _box.cut_sizes(lam, shape)
  return box_axis_factors(sides, shape=shape, placement=placement)


def cutmix_coefficients(lam: ArrayLike, *, shape: tuple[int, ...], placement: str = "clip") -> jax.Array:
  """CutMix's exact ``a_jk(lam)`` (Eq. 9): the probability that the box covers ``j`` and ``k``.

  Args:
    lam: traced scalar ratio.
    shape: static spatial shape.
    placement: ``"clip"`` or ``"inside"``.

  Returns:
    float32 ``[d, d]``.

  >>> a = cutmix_coefficients(0.75, shape=(8, 8), placement="inside")  # 4 x 4 box, 5 x 5 starts
  >>> round(float(a[0, 0]), 6), round(float(a[36, 36]), 6)  # pixels (0, 0) and (4, 4)
  (0.04, 0.64)
  """
  return kron_factors(cutmix_axis_factors(lam, shape=shape, placement=placement))


def eq10_printed_coefficients(lam: ArrayLike, *, n: int) -> jax.Array:
  """Eq. (10) exactly as printed, for an ``n x n`` image (0-based pixel indices).

  ``a_jk = prod_{t=1,2} max(min(h(j_t) - l(k_t), h(k_t) - l(j_t)), 0) / (n - s)^2`` with
  ``h(t) = min(t, n - s)``, ``l(t) = max(t - s, 0)``, ``s = floor(sqrt(1 - lam) n)``. Per axis the
  numerator counts the starts in ``[max(j, k) - s + 1, min(j, k)] & [1, n - s]``: it is the law
  of a box whose start is uniform over ``n - s`` of the ``n - s + 1`` positions, never touching
  the first row and column (with 1-based indices, never the last ones). Undefined at ``lam = 0``.

  Args:
    lam: traced scalar ratio in (0, 1].
    n: static side of the square image.

  Returns:
    float32 ``[n^2, n^2]``.

  >>> a = eq10_printed_coefficients(0.75, n=8)
  >>> float(a[0, 0]), float(a[36, 36])  # the exact values are 0.04 and 0.64
  (0.0, 1.0)
  """
  side = _box.cut_sizes(lam, (n, n))[0]
  index = jnp.arange(n)
  h = jnp.minimum(index, n - side)
  low = jnp.maximum(index - side, 0)
  count = jnp.maximum(jnp.minimum(h[:, None] - low[None, :], h[None, :] - low[:, None]), 0)
  factor = count.astype(jnp.float32) / (n - side).astype(jnp.float32)
  return jnp.kron(factor, factor)


class Eq10Difference(NamedTuple):
  """Eq. (10) as printed against the exact count (float32 JAX arrays).

  Attributes:
    printed: ``[n^2, n^2]`` Eq. (10) as printed.
    exact: ``[n^2, n^2]`` the exact ``a_jk`` of a box placed uniformly inside the image.
    max_abs_difference: scalar ``max |printed - exact|``.
    worst_pair: int ``[2]`` flattened pixel indices ``(j, k)`` where it is reached.
  """

  printed: jax.Array
  exact: jax.Array
  max_abs_difference: jax.Array
  worst_pair: jax.Array


def eq10_difference(lam: ArrayLike, *, n: int) -> Eq10Difference:
  """Where and by how much Eq. (10) as printed differs from the exact inside-box ``a_jk``.

  Per axis the printed numerator is the exact count minus one when both pixels lie within the
  first ``s`` rows (the start 0 covers them), and the denominator is ``n - s`` instead of the
  ``n - s + 1`` starts. So pixels closer to the (first) border than ``s`` are too small (corner
  ``a_jj = 0``: never covered) and pixels away from it are too large by ``((n-s+1)/(n-s))^2``.

  Args:
    lam: traced scalar ratio in (0, 1].
    n: static side of the square image.

  Returns:
    ``Eq10Difference``.

  >>> diff = eq10_difference(0.75, n=8)  # s = 4: 5 starts per axis, Eq. (10) divides by 4
  >>> round(float(diff.max_abs_difference), 6), diff.worst_pair.tolist()
  (0.36, [36, 36])
  """
  printed = eq10_printed_coefficients(lam, n=n)
  exact = cutmix_coefficients(lam, shape=(n, n), placement="inside")
  difference = jnp.abs(printed - exact)
  worst = jnp.argmax(difference)
  return Eq10Difference(printed, exact, difference.reshape(-1)[worst], jnp.stack(jnp.divmod(worst, n * n)))


def stochastic_coefficients(
  lam: ArrayLike, *, shape: tuple[int, ...], q: ArrayLike = 0.5, placement: str = "clip"
) -> jax.Array:
  """Stochastic Mixup & CutMix: ``q a^mixup + (1 - q) a^cutmix`` (Section 4, Mixup with probability ``q``).

  Args:
    lam: traced scalar ratio.
    shape: static spatial shape.
    q: traced probability of the Mixup branch.
    placement: CutMix box placement.

  Returns:
    float32 ``[d, d]``.

  >>> round(float(stochastic_coefficients(0.75, shape=(8, 8), q=0.5, placement="inside")[0, 0]), 6)
  0.05125
  """
  q = jnp.asarray(q, jnp.float32)
  cutmix = cutmix_coefficients(lam, shape=shape, placement=placement)
  return q * (1.0 - jnp.asarray(lam, jnp.float32)) ** 2 + (1.0 - q) * cutmix


class HMixInside(NamedTuple):
  """HMix with the box inside, as ``1 - M = u + (1 - u) B`` with ``B`` the box indicator.

  Attributes:
    outside: scalar ``u = 1 - lam / (1 - A)``, the value of ``1 - M`` outside the box.
    area: scalar realised area fraction ``A = prod_k s_k / n_k`` (constant for inside boxes).
    axis_factors: per-axis ``[n_k, n_k]`` box factors; ``P_jk = prod_k F_k[j_k, k_k]`` and
      ``P_j = P_jj``.
  """

  outside: jax.Array
  area: jax.Array
  axis_factors: tuple[jax.Array, ...]


def hmix_inside_parts(lam: ArrayLike, *, shape: tuple[int, ...], r: ArrayLike = 0.5) -> HMixInside:
  """The pieces of HMix's ``a_jk`` with the box inside (nominal area ``(1 - lam) r``).

  Args:
    lam: traced scalar ratio in [0, 1].
    shape: static spatial shape.
    r: traced box ratio in [0, 1].

  Returns:
    ``HMixInside``; ``u = 0`` when the box fills the image (then ``1 - M = 1``).

  >>> parts = hmix_inside_parts(0.5, shape=(8, 8), r=0.5)  # 4 x 4 box: A = 1/4, u = 1/3
  >>> round(float(parts.outside), 6)
  0.333333
  """
  lam = jnp.clip(jnp.asarray(lam, jnp.float32), 0.0, 1.0)
  r = jnp.clip(jnp.asarray(r, jnp.float32), 0.0, 1.0)
  sides = _scaled_sides.scaled_sizes(lam, r, shape)
  area = jnp.prod(sides.astype(jnp.float32) / jnp.asarray(shape, jnp.float32))
  kept = 1.0 - area
  outside = jnp.where(kept > 0.0, 1.0 - lam / jnp.where(kept > 0.0, kept, 1.0), 0.0)
  return HMixInside(outside, area, box_axis_factors(sides, shape=shape, placement="inside"))


def hmix_coefficients(lam: ArrayLike, *, shape: tuple[int, ...], r: ArrayLike = 0.5) -> jax.Array:
  """HMix's exact ``a_jk(lam)`` (Eq. 9) with the box inside: ``u^2 + u(1-u)(P_j + P_k) + (1-u)^2 P_jk``.

  With ``placement="clip"`` the outside weight changes with the position; use
  ``msda_jax.theory.enumeration.box_moments`` for it.

  Args:
    lam: traced scalar ratio in [0, 1].
    shape: static spatial shape.
    r: traced box ratio in [0, 1]; ``r = 0`` is Mixup, ``r = 1`` is CutMix.

  Returns:
    float32 ``[d, d]``.

  >>> a = hmix_coefficients(0.5, shape=(8, 8), r=0.0)  # no box: Mixup
  >>> float(a.min()), float(a.max())
  (0.25, 0.25)
  """
  u, _, factors = hmix_inside_parts(lam, shape=shape, r=r)
  pair = kron_factors(factors)
  single = jnp.diagonal(pair)
  return u**2 + u * (1.0 - u) * (single[:, None] + single[None, :]) + (1.0 - u) ** 2 * pair


def gmix_plane_kernel(
  lam: ArrayLike,
  squared_distance: ArrayLike,
  *,
  shape: tuple[int, ...],
  scale: str = "code",
  symmetric: bool = True,
) -> jax.Array:
  """GMix's infinite-plane ``a_jk`` as a function of ``||j - k||^2`` (Eq. 11 for ``scale="text"``).

  ``E[B_j B_k] = (c/2)^(d/2) / V exp(-pi ||j - k||^2 / (2c))`` for the bump ``B`` of width ``c``
  (``msda_jax.masks._gmix.gaussian_width``); with ``symmetric`` and ``lam < 0.5``,
  ``a = 1 - 2 c^(d/2) / V + E[B_j B_k]``. Exact when both pixels are far from the border
  (several ``sqrt(c / 2 pi)``) and the bump spans more than a pixel.

  Args:
    lam: traced scalar ratio in [0, 1].
    squared_distance: traced ``||j - k||^2`` (any shape).
    shape: static spatial shape (its volume ``V`` and rank ``d``).
    scale: ``"code"`` or ``"text"``.
    symmetric: as ``msda_jax.masks._gmix.gmix_mask``.

  Returns:
    float32 array of ``squared_distance``'s shape.

  >>> float(gmix_plane_kernel(0.5, 0.0, shape=(64, 64), scale="text"))  # Eq. (11) at j = k: 1 - lam
  0.5
  """
  _validate.check_choice("scale", scale, _gmix.SCALES)
  lam = jnp.clip(jnp.asarray(lam, jnp.float32), 0.0, 1.0)
  squared_distance = jnp.asarray(squared_distance, jnp.float32)
  bump_is_mask = (lam < 0.5) if symmetric else jnp.asarray(False)
  width = _gmix.gaussian_width(jnp.where(bump_is_mask, lam, 1.0 - lam), shape, scale)
  safe = jnp.where(width > 0.0, width, 1.0)
  d, volume = len(shape), float(math.prod(shape))
  pair = jnp.where(
    width > 0.0, (safe / 2.0) ** (d / 2.0) / volume * jnp.exp(-math.pi * squared_distance / (2.0 * safe)), 0.0
  )
  mean = jnp.where(width > 0.0, safe ** (d / 2.0) / volume, 0.0)
  return jnp.where(bump_is_mask, 1.0 - 2.0 * mean + pair, pair)


def gmix_plane_mean(
  lam: ArrayLike, *, shape: tuple[int, ...], scale: str = "code", symmetric: bool = True
) -> jax.Array:
  """GMix's infinite-plane ``E[1 - M_j]``: ``c^(d/2) / V`` (``1 - lam`` for the code scale).

  The text scale gives ``2^(d/2) (1 - lam)``: twice the nominal weight for images.

  >>> float(gmix_plane_mean(0.75, shape=(32, 32), scale="text", symmetric=False))
  0.5
  """
  lam = jnp.clip(jnp.asarray(lam, jnp.float32), 0.0, 1.0)
  bump_is_mask = (lam < 0.5) if symmetric else jnp.asarray(False)
  width = _gmix.gaussian_width(jnp.where(bump_is_mask, lam, 1.0 - lam), shape, scale)
  mean = width ** (len(shape) / 2.0) / float(math.prod(shape))
  return jnp.where(bump_is_mask, 1.0 - mean, mean)


def grid_squared_distances(shape: tuple[int, ...]) -> jax.Array:
  """``||j - k||^2`` for every pair of flattened pixels: float32 ``[d, d]``."""
  coords = jnp.stack(jnp.meshgrid(*[jnp.arange(n, dtype=jnp.float32) for n in shape], indexing="ij"), -1)
  coords = coords.reshape(-1, len(shape))
  return ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1)


def gmix_plane_coefficients(
  lam: ArrayLike, *, shape: tuple[int, ...], scale: str = "code", symmetric: bool = True
) -> jax.Array:
  """GMix's infinite-plane ``a_jk`` (Eq. 11 for ``scale="text"``) on every pair of the grid.

  Args:
    lam: traced scalar ratio in [0, 1].
    shape: static spatial shape.
    scale: ``"code"`` or ``"text"``.
    symmetric: as ``msda_jax.masks._gmix.gmix_mask``.

  Returns:
    float32 ``[d, d]``; matches the sampled law only away from the border.

  >>> a = gmix_plane_coefficients(0.5, shape=(16, 16), symmetric=False)
  >>> float(a[0, 0])  # code scale: (1 - lam) / 2 on the diagonal for images
  0.25
  """
  return gmix_plane_kernel(lam, grid_squared_distances(shape), shape=shape, scale=scale, symmetric=symmetric)
