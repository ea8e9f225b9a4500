"""Theorem 2: a real-valued mask that realises any attainable coefficient matrix ``A(lam)``.

Theorem 2 states that when ``A(lam) - (1 - lam)^2 1 1^T`` is positive semi-definite there is a
real-valued mask ``M`` with ``E[(1 - M_j)(1 - M_k)] = a_jk`` (Eq. 9) for all pixels ``j, k``.
``Gamma-bar`` in the paper is read as the all-ones vector ``1``. The construction that
realises ``A`` is

    M = lam 1 + S Z,    S = (A - (1 - lam)^2 1 1^T)^(1/2),    Z ~ N(0, I),

so ``1 - M = (1 - lam) 1 - S Z`` has mean ``(1 - lam) 1`` and covariance ``S S^T``, and
``E[(1 - M)(1 - M)^T] = (1 - lam)^2 1 1^T + A - (1 - lam)^2 1 1^T = A``. ``E[M] = lam 1``, so
the label weight ``lam`` is the mask mean in expectation.

The proof as printed sets ``M = 1 - lam + S Z``; then ``1 - M = lam 1 - S Z`` and
``E[(1 - M)(1 - M)^T] = lam^2 1 1^T + A - (1 - lam)^2 1 1^T = A + (2 lam - 1) 1 1^T``, which
misses ``A`` by ``(2 lam - 1)`` in every entry (it is right only at ``lam = 1/2``).
``theorem2_printed_mask`` keeps that form for comparison.

Masks leave [0, 1] (Figure 2 shows such unbounded masks).

The condition is a real restriction. For any mask law, ``A - b b^T`` is the covariance of
``1 - M`` with ``b = E[1 - M]``, so the condition holds whenever ``b = (1 - lam) 1`` (Mixup,
i.i.d. Bernoulli masks, a box that wraps around the image with exact area). The CutMix box that
stays inside the image, or is clipped at its border, covers border pixels less often than
central ones; its exact ``A`` then fails the condition (the quadratic form is negative near
the all-ones direction; exact enumeration finds a negative eigenvalue for every ``lam`` in
0.05 .. 0.95 on 4 x 4 to 16 x 16 images), so ``theorem2_root`` raises.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

#: Default relative tolerance, in units of the dtype's machine epsilon: eigenvalues of
#: ``A - (1 - lam)^2 1 1^T`` within it of zero count as rounding and are set to zero.
DEFAULT_RTOL_EPS = 10.0


class Theorem2Check(NamedTuple):
  """Monte Carlo comparison of ``E[(1 - M)(1 - M)^T]`` with the target ``A``.

  Attributes:
    max_abs_error: float scalar, ``max_jk |mean(u_j u_k) - a_jk|`` with ``u = 1 - M``.
    standard_error: float scalar, the largest per-entry standard error of that mean.
  """

  max_abs_error: jax.Array
  standard_error: jax.Array


def _float_dtype(a: jax.Array) -> jnp.dtype:
  return jnp.dtype(a.dtype) if jnp.issubdtype(a.dtype, jnp.floating) else jnp.dtype(jnp.float32)


def _check_matrix(a: jax.Array) -> int:
  if a.ndim != 2 or a.shape[0] != a.shape[1]:
    raise ValueError(f"A must be a square matrix [d, d] over the flattened pixels; got shape {tuple(a.shape)}.")
  return int(a.shape[0])


def _is_concrete(*values: jax.Array) -> bool:
  return not any(isinstance(v, jax.core.Tracer) for v in values)


def theorem2_root(a: ArrayLike, lam: ArrayLike, *, rtol: float | None = None) -> jax.Array:
  """The symmetric square root ``S = (A - (1 - lam)^2 1 1^T)^(1/2)`` of Theorem 2.

  ``S = V diag(sqrt(w)) V^T`` from the eigen-decomposition ``V diag(w) V^T`` (``eigh``).
  Eigenvalues in ``[-tol, tol]`` are rounding and are set to 0, with
  ``tol = rtol * (||A||_F + (1 - lam)^2 d)``; an eigenvalue below ``-tol`` means the target is
  not attainable by Theorem 2's construction.

  Args:
    a: ``[d, d]`` symmetric target coefficient matrix ``A(lam)`` over the flattened pixels.
    lam: scalar mixing ratio (traced).
    rtol: relative tolerance; default ``10 * eps`` of the dtype (1.2e-6 in float32).

  Returns:
    ``[d, d]`` symmetric positive semi-definite ``S`` with ``S S = A - (1 - lam)^2 1 1^T`` (up
    to the clipped rounding), in ``A``'s float dtype (float32 for integers).

  Raises:
    ValueError: when ``A`` is not square, or, for concrete inputs, not symmetric within
      ``tol`` or when the smallest eigenvalue is below ``-tol`` (the message gives both). Under
      ``jax.jit`` the checks cannot raise; ``S`` is then all NaN instead.

  >>> s = theorem2_root(jnp.array([[0.5, 0.25], [0.25, 0.5]]), 0.5)
  >>> [round(v, 4) for v in s.ravel().tolist()]
  [0.5, 0.0, 0.0, 0.5]
  """
  a = jnp.asarray(a)
  d = _check_matrix(a)
  dtype = _float_dtype(a)
  a = a.astype(dtype)
  lam = jnp.asarray(lam, dtype)
  rtol = DEFAULT_RTOL_EPS * float(jnp.finfo(dtype).eps) if rtol is None else float(rtol)
  if not rtol >= 0.0:
    raise ValueError(f"rtol must be >= 0; got {rtol!r}.")

  c2 = (1.0 - lam) ** 2
  target = a - c2 * jnp.ones((d, d), dtype)
  tol = rtol * (jnp.linalg.norm(a) + c2 * d)
  asymmetry = jnp.max(jnp.abs(a - a.T))
  w, v = jnp.linalg.eigh(target, symmetrize_input=True)
  smallest = w[0]
  if _is_concrete(smallest, tol, asymmetry):
    if float(asymmetry) > float(tol):
      raise ValueError(
        f"A must be symmetric: max |A - A^T| = {float(asymmetry):.3g} exceeds the tolerance {float(tol):.3g}."
      )
    if float(smallest) < -float(tol):
      raise ValueError(
        "Theorem 2's target is not attainable: A - (1 - lam)^2 1 1^T is not positive semi-definite "
        f"(lam = {float(lam):.6g}; smallest eigenvalue {float(smallest):.6g} < -tolerance = {-float(tol):.3g}, "
        f"where tolerance = rtol {rtol:.3g} * (||A||_F + (1 - lam)^2 d)). Coefficients of a mask law with "
        "E[M] = lam 1 always satisfy it."
      )
  # Eigenvalues within rounding of 0 (either sign) are set to 0: S S then differs from the target
  # by at most tol, and a Mixup target gives S = 0 exactly instead of sqrt(rounding).
  root = (v * jnp.sqrt(jnp.where(w > tol, w, 0.0))[None, :]) @ v.T
  valid = (smallest >= -tol) & (asymmetry <= tol)
  return jnp.where(valid, root, jnp.nan)


def _root_and_size(a: ArrayLike, lam: ArrayLike, shape: tuple[int, ...], rtol: float | None) -> jax.Array:
  root = theorem2_root(a, lam, rtol=rtol)
  shape = tuple(int(n) for n in shape)
  if math.prod(shape) != root.shape[0]:
    raise ValueError(f"shape {shape} has {math.prod(shape)} pixels but A is [{root.shape[0]}, {root.shape[0]}].")
  return root


def theorem2_mask(
  key: jax.Array, a: ArrayLike, lam: ArrayLike, *, shape: tuple[int, ...], rtol: float | None = None
) -> jax.Array:
  """A real-valued mask with ``E[(1 - M)(1 - M)^T] = A`` (Theorem 2, corrected).

  ``M = lam 1 + S Z`` with ``S = theorem2_root(A, lam)`` and ``Z ~ N(0, I_d)`` (see the module
  docstring for why the printed ``M = 1 - lam + S Z`` is wrong). ``M`` may leave [0, 1].

  Args:
    key: a PRNG key (the draw of ``Z``).
    a: ``[d, d]`` target coefficient matrix over the pixels flattened in row-major order.
    lam: scalar mixing ratio (traced).
    shape: static spatial shape with ``prod(shape) == d``.
    rtol: relative tolerance of ``theorem2_root``.

  Returns:
    ``M`` of ``shape`` in ``A``'s float dtype.

  Raises:
    ValueError: as ``theorem2_root``, or when ``shape`` does not have ``d`` pixels.

  >>> a = jnp.full((4, 4), 0.25) + 0.1 * jnp.eye(4)  # (1 - lam)^2 1 1^T + 0.1 I at lam = 0.5
  >>> theorem2_mask(jax.random.key(0), a, 0.5, shape=(2, 2)).shape
  (2, 2)
  """
  root = _root_and_size(a, lam, shape, rtol)
  z = jax.random.normal(key, (root.shape[0],), root.dtype)
  return (jnp.asarray(lam, root.dtype) + root @ z).reshape(shape)


def theorem2_printed_mask(
  key: jax.Array, a: ArrayLike, lam: ArrayLike, *, shape: tuple[int, ...], rtol: float | None = None
) -> jax.Array:
  """The mask of Theorem 2's proof as printed, ``M = (1 - lam) 1 + S Z``, kept for comparison.

  It realises ``E[(1 - M)(1 - M)^T] = A + (2 lam - 1) 1 1^T``, not ``A`` (unless ``lam = 1/2``);
  use ``theorem2_mask``.

  Args:
    key: a PRNG key (the draw of ``Z``).
    a: ``[d, d]`` target coefficient matrix.
    lam: scalar mixing ratio (traced).
    shape: static spatial shape with ``prod(shape) == d``.
    rtol: relative tolerance of ``theorem2_root``.

  Returns:
    ``M`` of ``shape``.

  >>> float(theorem2_printed_mask(jax.random.key(0), jnp.full((1, 1), 0.09), 0.7, shape=(1,))[0])
  0.3...
  """
  root = _root_and_size(a, lam, shape, rtol)
  z = jax.random.normal(key, (root.shape[0],), root.dtype)
  return (1.0 - jnp.asarray(lam, root.dtype) + root @ z).reshape(shape)


def sampled_coefficients(masks: ArrayLike) -> tuple[jax.Array, jax.Array]:
  """Monte Carlo ``E[(1 - M)(1 - M)^T]`` (Eq. 9) from masks, and each entry's standard error.

  With ``u = 1 - M`` flattened, the estimate is ``U^T U / N`` and the standard error of entry
  ``jk`` is ``sqrt((mean(u_j^2 u_k^2) - mean(u_j u_k)^2) / (N - 1))``; no ``[N, d, d]`` array is
  formed.

  Args:
    masks: ``[N, *shape]`` independent draws of ``M``, ``N >= 2``.

  Returns:
    ``(estimate, standard_error)``, both ``[d, d]`` with ``d = prod(shape)``.

  >>> est, se = sampled_coefficients(jnp.full((3, 2), 0.5))
  >>> est.tolist(), se.tolist()
  ([[0.25, 0.25], [0.25, 0.25]], [[0.0, 0.0], [0.0, 0.0]])
  """
  masks = jnp.asarray(masks)
  n = masks.shape[0]
  if masks.ndim < 2 or n < 2:
    raise ValueError(f"masks must be [N, *shape] with N >= 2 draws; got shape {tuple(masks.shape)}.")
  u = 1.0 - masks.reshape(n, -1)
  mean = u.T @ u / n
  mean_sq = (u * u).T @ (u * u) / n
  se = jnp.sqrt(jnp.clip(mean_sq - mean * mean, 0.0, None) / (n - 1))
  return mean, se


def theorem2_check(
  key: jax.Array,
  a: ArrayLike,
  lam: ArrayLike,
  *,
  shape: tuple[int, ...],
  num_draws: int,
  printed: bool = False,
  rtol: float | None = None,
) -> Theorem2Check:
  """Compares the Monte Carlo ``E[(1 - M)(1 - M)^T]`` of Theorem 2's mask with the target ``A``.

  Draws ``num_draws`` masks ``M = lam 1 + S Z`` (or the printed ``(1 - lam) 1 + S Z`` with
  ``printed=True``) from one square root, and reports the largest entry-wise error and the
  largest entry-wise standard error. Memory is ``num_draws * d`` plus ``O(d^2)``.

  Args:
    key: a PRNG key.
    a: ``[d, d]`` target coefficient matrix.
    lam: scalar mixing ratio (traced).
    shape: static spatial shape with ``prod(shape) == d``.
    num_draws: static number of masks, ``>= 2``.
    printed: static; check the printed construction instead of the corrected one.
    rtol: relative tolerance of ``theorem2_root``.

  Returns:
    ``Theorem2Check(max_abs_error, standard_error)``.

  >>> a = jnp.full((4, 4), 0.25) + 0.1 * jnp.eye(4)
  >>> err, se = theorem2_check(jax.random.key(0), a, 0.5, shape=(2, 2), num_draws=20000)
  >>> bool(err < 5 * se)
  True
  """
  if not isinstance(num_draws, int | np.integer) or num_draws < 2:
    raise ValueError(f"num_draws must be an int >= 2; got {num_draws!r}.")
  root = _root_and_size(a, lam, shape, rtol)
  lam = jnp.asarray(lam, root.dtype)
  z = jax.random.normal(key, (int(num_draws), root.shape[0]), root.dtype)
  offset = 1.0 - lam if printed else lam
  masks = offset + z @ root.T
  estimate, se = sampled_coefficients(masks)
  error = jnp.max(jnp.abs(estimate - jnp.asarray(a, root.dtype)))
  return Theorem2Check(error, jnp.max(se))
