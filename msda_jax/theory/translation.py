"""Translation-averaged coefficients ``E_i a_{i, i+p}`` (Figure 4) without ``d x d`` matrices.

For an offset ``p`` with ``-(n_k - 1) <= p_k <= n_k - 1`` the average runs over the
``N(p) = prod_k (n_k - |p_k|)`` pixels ``i`` with ``i + p`` on the grid:

    T(p) = (1 / N(p)) sum_i a_{i, i+p} = E_M[(1 / N(p)) sum_i (1 - M_i)(1 - M_{i+p})].

The inner sum is the zero-padded autocorrelation of ``1 - M``, one FFT per mask, so Monte Carlo
needs ``O(d log d)`` per draw. For separable coefficients ``a_jk = prod_k F_k[j_k, k_k]`` the
valid ``i`` form a product set and the average factorises: ``T(p) = prod_k T_k(p_k)`` with
``T_k(p_k)`` the mean of the ``p_k``-th diagonal of ``F_k``. Maps have shape
``[2 n_1 - 1, ..., 2 n_d - 1]``, offset ``p`` at index ``p + n - 1`` (``p = 0`` in the centre).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax.theory import closed_forms
from msda_jax.theory._chunks import chunked_sum, mean_and_stderr
from msda_jax.theory.laws import MaskLaw


def map_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
  """Shape ``(2 n_1 - 1, ..., 2 n_d - 1)`` of a translation map."""
  return tuple(2 * n - 1 for n in shape)


def offsets(n: int) -> np.ndarray:
  """The offsets ``-(n - 1), ..., n - 1`` along an axis of length ``n`` (int numpy)."""
  return np.arange(-(n - 1), n)


def valid_counts(shape: tuple[int, ...]) -> jax.Array:
  """``N(p) = prod_k (n_k - |p_k|)``, the number of ``i`` with ``i + p`` on the grid (float32 map).

  >>> valid_counts((3,)).tolist()
  [1.0, 2.0, 3.0, 2.0, 1.0]
  """
  return _outer([jnp.asarray(n - np.abs(offsets(n)), jnp.float32) for n in shape])


def _outer(vectors: list[jax.Array]) -> jax.Array:
  """Outer product of per-axis vectors: ``[m_1] x ... x [m_d] -> [m_1, ..., m_d]``."""
  return functools.reduce(lambda x, y: x[..., None] * y.reshape((1,) * x.ndim + y.shape), vectors)


def _window_sums(x: jax.Array, *, second: bool) -> jax.Array:
  """``sum_i x_i`` (or ``sum_i x_{i+p}`` when ``second``) over the valid ``i`` of every offset ``p``."""
  for axis, n in enumerate(x.shape):
    p = offsets(n)
    low, high = (np.maximum(p, 0), n + np.minimum(p, 0)) if second else (np.maximum(-p, 0), n - np.maximum(p, 0))
    zero = jnp.zeros_like(jnp.take(x, jnp.arange(1), axis=axis))
    cumulative = jnp.concatenate([zero, jnp.cumsum(x, axis=axis)], axis=axis)
    x = jnp.take(cumulative, jnp.asarray(high), axis=axis) - jnp.take(cumulative, jnp.asarray(low), axis=axis)
  return x


def autocorrelation(x: jax.Array) -> jax.Array:
  """``sum_i x_i x_{i+p}`` over the valid ``i``, for every offset, by a zero-padded FFT.

  The FFT runs on the centred ``y = x - c`` (``c`` the mean of ``x``) and
  ``sum_i x_i x_{i+p} = sum_i y_i y_{i+p} + c (sum_i y_i + sum_i y_{i+p}) + c^2 N(p)`` restores the
  rest with exact window sums, so a constant mask (Mixup) is exact and the float32 FFT's error,
  about ``1e-7 sum_i y_i^2`` per offset, only scales with the mask's variation.

  Args:
    x: float array of a spatial shape ``(n_1, ..., n_d)``.

  Returns:
    float32 ``[2 n_1 - 1, ..., 2 n_d - 1]``, offset ``p`` at index ``p + n - 1``.

  >>> [round(v, 4) for v in autocorrelation(jnp.array([1.0, 2.0, 3.0])).tolist()]
  [3.0, 8.0, 14.0, 8.0, 3.0]
  """
  shape = x.shape
  x = x.astype(jnp.float32)
  centre = jnp.mean(x)
  y = x - centre
  padded = tuple(2 * n for n in shape)  # >= 2n - 1: no wrap-around
  spectrum = jnp.fft.rfftn(y, s=padded)
  circular = jnp.fft.irfftn(spectrum * jnp.conj(spectrum), s=padded)
  for axis, n in enumerate(shape):
    circular = jnp.take(circular, jnp.asarray(offsets(n) % (2 * n)), axis=axis)
  windows = _window_sums(y, second=False) + _window_sums(y, second=True)
  return circular + centre * windows + centre**2 * valid_counts(shape)


class TranslationMap(NamedTuple):
  """A sampled translation map (float32 JAX arrays).

  Attributes:
    mean: ``[2 n_1 - 1, ...]`` estimate of ``E_i a_{i, i+p}``.
    stderr: its standard error over draws.
    num_draws: number of sampled masks.
  """

  mean: jax.Array
  stderr: jax.Array
  num_draws: int


def translation_map_monte_carlo(
  key: jax.Array, law: MaskLaw, *, num_draws: int, chunk_size: int = 256
) -> TranslationMap:
  """Monte Carlo ``E_i a_{i, i+p}`` (Figure 4): averaged FFT autocorrelations of ``1 - M`` over ``N(p)``.

  Uses the same draws as ``moments.mask_moments`` for the same ``key``, ``num_draws`` and
  ``chunk_size``. Memory is ``chunk_size`` padded grids; no ``d x d`` matrix is formed.

  Args:
    key: a PRNG key (typed, ``jax.random.key``).
    law: a mask law ``key -> (lam, M)`` (``msda_jax.theory.laws``).
    num_draws: static number of masks.
    chunk_size: static number of masks transformed at once.

  Returns:
    ``TranslationMap``.

  >>> import msda_jax
  >>> from msda_jax.theory.laws import fixed_lam_law
  >>> law = fixed_lam_law(msda_jax.Mixup(), 0.5, shape=(4, 4))
  >>> t = translation_map_monte_carlo(jax.random.key(0), law, num_draws=2)
  >>> t.mean.shape, round(float(t.mean.max()), 6)
  ((7, 7), 0.25)
  """
  shape = jax.eval_shape(law, key)[1].shape
  counts = valid_counts(shape)

  def chunk_fn(keys: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    _, masks = jax.vmap(law)(keys)
    values = jax.vmap(autocorrelation)(1.0 - masks) / counts[None]
    w = weights.reshape(-1, *([1] * len(shape)))
    return (w * values).sum(0), (w * values**2).sum(0)

  total, total_sq = chunked_sum(key, chunk_fn, num_draws=num_draws, chunk_size=chunk_size)
  mean, stderr = mean_and_stderr(total, total_sq, num_draws)
  return TranslationMap(mean, stderr, int(num_draws))


def translation_map_of_masks(masks: ArrayLike, *, chunk_size: int = 256) -> jax.Array:
  """Exact ``E_i a_{i, i+p}`` of equally likely masks ``[P, *shape]`` (e.g. from ``enumeration``).

  Args:
    masks: ``[P, *shape]`` masks ``M``, each of probability ``1 / P``.
    chunk_size: static number of masks transformed at once.

  Returns:
    float32 ``[2 n_1 - 1, ...]``.

  >>> translation_map_of_masks(jnp.array([[0.0, 1.0], [1.0, 0.0]])).tolist()  # boxes of one pixel
  [0.0, 0.5, 0.0]
  """
  masks = jnp.asarray(masks, jnp.float32)
  shape = masks.shape[1:]
  num, chunk = masks.shape[0], min(chunk_size, masks.shape[0])
  padded = -(-num // chunk) * chunk
  complements = jnp.concatenate([1.0 - masks, jnp.zeros((padded - num, *shape), jnp.float32)])
  sums = jax.lax.map(lambda x: jax.vmap(autocorrelation)(x).sum(0), complements.reshape(-1, chunk, *shape))
  return sums.sum(0) / (num * valid_counts(shape))


def _offset_sums(x: jax.Array, n: int) -> jax.Array:
  """``sum_i x[i, i + p]`` over the valid ``i`` for every offset: ``[n, n, ...] -> [2n - 1, ...]``."""
  i = np.arange(n)[None, :]
  j = i + offsets(n)[:, None]
  valid = jnp.asarray((j >= 0) & (j < n)).reshape(2 * n - 1, n, *([1] * (x.ndim - 2)))
  return jnp.where(valid, x[i, np.clip(j, 0, n - 1)], 0.0).sum(1)


def matrix_translation_map(a: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
  """``E_i a_{i, i+p}`` straight from a ``[d, d]`` coefficient matrix (the brute-force reference).

  Args:
    a: ``[d, d]`` coefficients over the row-major flattened grid.
    shape: static spatial shape, ``d = prod(shape)``.

  Returns:
    float32 ``[2 n_1 - 1, ...]``.

  >>> matrix_translation_map(jnp.eye(3), shape=(3,)).tolist()
  [0.0, 0.0, 1.0, 0.0, 0.0]
  """
  d = len(shape)
  x = jnp.asarray(a, jnp.float32).reshape(*shape, *shape)
  x = jnp.transpose(x, [axis for k in range(d) for axis in (k, d + k)])  # i_0, j_0, i_1, j_1, ...
  for n in shape:
    x = jnp.moveaxis(_offset_sums(x, n), 0, -1)
  return x / valid_counts(shape)


def axis_offset_means(factor: jax.Array) -> jax.Array:
  """Mean of each diagonal of an ``[n, n]`` per-axis factor: ``T_k(p) = mean_i F[i, i + p]``, ``[2n - 1]``."""
  n = factor.shape[0]
  return _offset_sums(factor, n) / jnp.asarray(n - np.abs(offsets(n)), jnp.float32)


def separable_translation_map(factors: tuple[jax.Array, ...]) -> jax.Array:
  """``E_i a_{i, i+p} = prod_k T_k(p_k)`` for ``a_jk = prod_k F_k[j_k, k_k]``.

  >>> separable_translation_map((jnp.ones((2, 2)), jnp.eye(2))).tolist()
  [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
  """
  return _outer([axis_offset_means(f) for f in factors])


def mixup_translation_map(lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
  """Mixup: ``E_i a_{i, i+p} = (1 - lam)^2`` for every offset (flat, Figure 4).

  >>> mixup_translation_map(0.5, shape=(2,)).tolist()
  [0.25, 0.25, 0.25]
  """
  return jnp.full(map_shape(shape), (1.0 - jnp.asarray(lam, jnp.float32)) ** 2)


def cutmix_translation_map(lam: ArrayLike, *, shape: tuple[int, ...], placement: str = "clip") -> jax.Array:
  """CutMix's exact ``E_i a_{i, i+p}`` from its per-axis factors (peaked at ``p = 0``).

  Args:
    lam: traced scalar ratio.
    shape: static spatial shape.
    placement: ``"clip"`` or ``"inside"``.

  Returns:
    float32 ``[2 n_1 - 1, ...]``; the centre is the mean box area fraction.

  >>> t = cutmix_translation_map(0.75, shape=(8, 8), placement="inside")
  >>> round(float(t[7, 7]), 6)  # p = 0: the 4 x 4 box covers 1/4 of the image
  0.25
  """
  return separable_translation_map(closed_forms.cutmix_axis_factors(lam, shape=shape, placement=placement))


def stochastic_translation_map(
  lam: ArrayLike, *, shape: tuple[int, ...], q: ArrayLike = 0.5, placement: str = "clip"
) -> jax.Array:
  """Stochastic Mixup & CutMix: ``q (1 - lam)^2 + (1 - q) T^cutmix(p)``.

  >>> t = stochastic_translation_map(0.75, shape=(8, 8), q=0.5, placement="inside")
  >>> round(float(t[7, 7]), 6)
  0.15625
  """
  q = jnp.asarray(q, jnp.float32)
  cutmix = cutmix_translation_map(lam, shape=shape, placement=placement)
  return q * (1.0 - jnp.asarray(lam, jnp.float32)) ** 2 + (1.0 - q) * cutmix


def hmix_translation_map(lam: ArrayLike, *, shape: tuple[int, ...], r: ArrayLike = 0.5) -> jax.Array:
  """HMix (box inside): ``u^2 + u (1 - u)(E_i P_i + E_i P_{i+p}) + (1 - u)^2 E_i P_{i, i+p}``.

  Each average over the valid ``i`` factorises over the axes.

  Args:
    lam: traced scalar ratio in [0, 1].
    shape: static spatial shape.
    r: traced box ratio in [0, 1].

  Returns:
    float32 ``[2 n_1 - 1, ...]``.

  >>> t = hmix_translation_map(0.5, shape=(8, 8), r=0.0)  # no box: Mixup
  >>> round(float(t.min()), 6), round(float(t.max()), 6)
  (0.25, 0.25)
  """
  u, _, factors = closed_forms.hmix_inside_parts(lam, shape=shape, r=r)
  first = _outer([axis_offset_means(jnp.broadcast_to(jnp.diagonal(f)[:, None], f.shape)) for f in factors])
  second = _outer([axis_offset_means(jnp.broadcast_to(jnp.diagonal(f)[None, :], f.shape)) for f in factors])
  pair = separable_translation_map(factors)
  return u**2 + u * (1.0 - u) * (first + second) + (1.0 - u) ** 2 * pair


def gmix_plane_translation_map(
  lam: ArrayLike, *, shape: tuple[int, ...], scale: str = "code", symmetric: bool = True
) -> jax.Array:
  """GMix's infinite-plane ``a(||p||^2)`` on the offsets: the translation map of the plane form.

  The sampled map falls below it at large ``|p|`` and, for wide bumps, everywhere: the border
  truncates the bump (use ``translation_map_of_masks(enumeration.gmix_masks(...))`` for the
  exact finite-grid map).

  >>> t = gmix_plane_translation_map(0.5, shape=(16, 16), symmetric=False)
  >>> float(t[15, 15])  # (1 - lam) / 2 at p = 0
  0.25
  """
  squared = jnp.zeros(map_shape(shape), jnp.float32)
  for axis, n in enumerate(shape):
    view = [1] * len(shape)
    view[axis] = 2 * n - 1
    squared = squared + jnp.asarray(offsets(n) ** 2, jnp.float32).reshape(view)
  return closed_forms.gmix_plane_kernel(lam, squared, shape=shape, scale=scale, symmetric=symmetric)


def distance_profile(values: ArrayLike, *, reduce: str = "mean") -> tuple[np.ndarray, np.ndarray]:
  """A map over offsets as a function of the pixel distance ``|p|`` (rounded to an integer).

  For Figure 5 beside Figure 4: a translation map ``E_i a_{i, i+p}`` or a partial gradient
  product map (both ``[2 n_1 - 1, ...]`` with ``p = 0`` in the centre) reduced over the offsets
  whose Euclidean length rounds to the same integer ``r = 0, 1, ...``.

  Args:
    values: a map of shape ``[2 n_1 - 1, ..., 2 n_d - 1]``.
    reduce: ``"mean"`` or ``"max"`` over the offsets of one distance.

  Returns:
    ``(distances, profile)``: int ``[R]`` and float64 ``[R]`` numpy arrays, ``R`` the number of
    distances that occur.

  >>> distance_profile(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]))[1].tolist()
  [5.0, 5.0]
  """
  if reduce not in ("mean", "max"):
    raise ValueError(f"reduce must be one of ('mean', 'max'); got {reduce!r}.")
  array = np.asarray(values, np.float64)
  if array.ndim < 1 or any(n % 2 == 0 for n in array.shape):
    raise ValueError(f"values must be a map over offsets, every side 2 n - 1 (odd); got shape {array.shape}.")
  grids = np.meshgrid(*[offsets((n + 1) // 2) for n in array.shape], indexing="ij")
  distance = np.rint(np.sqrt(sum(g.astype(np.float64) ** 2 for g in grids))).astype(int)
  distances = np.unique(distance)
  pick = np.mean if reduce == "mean" else np.max
  return distances, np.array([pick(array[distance == r]) for r in distances])
