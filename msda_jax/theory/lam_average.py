"""Averages of ``lam``-dependent coefficients over ``lam ~ Beta(a, b)`` or ``lam ~ D~`` (Theorem 1).

The MSDA loss draws ``lam ~ Beta(a, b)`` (Eq. 4); Theorem 1 as printed averages the
coefficients over ``D~ = a/(a+b) Beta(a+1, b) + b/(a+b) Beta(b+1, a)``. Two ways:

* smooth families (Mixup, GMix): Gauss-Jacobi quadrature. ``lam = (1 + x) / 2`` turns the Beta
  density ``lam^(a-1) (1 - lam)^(b-1)`` into the Jacobi weight ``(1 - x)^(b-1) (1 + x)^(a-1)``,
  whose nodes and weights come from the Golub-Welsch eigenproblem of the three-term recurrence.
* box families: ``lam`` enters through the integer sides ``floor(((1 - lam) r)^(1/d) n_k)``,
  constant between the breakpoints ``lam = 1 - (m / n_k)^d / r``, and at most polynomially
  otherwise (Stochastic's Mixup part ``(1 - lam)^2``, HMix's outside weight
  ``1 - lam / (1 - A)``). Writing ``a(lam) = sum_k lam^k T_k`` with ``T_k`` constant on each
  interval ``I``, the average is exact: ``sum_I sum_k T_k(I) E[lam^k 1{lam in I}]`` with
  ``E[lam^k 1{lam <= x}] = prod_{i<k} (a+i)/(a+b+i) I_x(a+k, b)`` (the regularised incomplete
  Beta function, ``jax.scipy.special.betainc``).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _validate
from msda_jax.theory import closed_forms

LAWS = ("beta", "d_tilde")
Coefficient = Callable[[jax.Array], jax.Array]


def gauss_jacobi(num_nodes: int, alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
  """Gauss-Jacobi nodes and weights for ``(1 - x)^alpha (1 + x)^beta`` on [-1, 1] (Golub-Welsch).

  The monic Jacobi recurrence has diagonal ``(beta^2 - alpha^2) / ((2k+s)(2k+s+2))`` (``s =
  alpha + beta``; ``(beta - alpha)/(s + 2)`` at ``k = 0``) and squared off-diagonal
  ``4k(k+alpha)(k+beta)(k+s) / ((2k+s)^2 (2k+s+1)(2k+s-1))``; the nodes are the eigenvalues of
  that tridiagonal matrix and the weights ``mu_0 v_0^2`` with
  ``mu_0 = 2^(s+1) Gamma(alpha+1) Gamma(beta+1) / Gamma(s+2)``.

  Args:
    num_nodes: static number of nodes, >= 1.
    alpha: exponent of ``1 - x``, > -1.
    beta: exponent of ``1 + x``, > -1.

  Returns:
    float64 numpy ``(nodes [n], weights [n])``, nodes ascending; exact for polynomials of
    degree ``2n - 1``.

  >>> x, w = gauss_jacobi(2, 0.0, 0.0)  # Gauss-Legendre
  >>> np.round(x, 6).tolist(), np.round(w, 6).tolist()
  ([-0.57735, 0.57735], [1.0, 1.0])
  """
  n, a, b = int(num_nodes), float(alpha), float(beta)
  if n < 1 or a <= -1.0 or b <= -1.0:
    raise ValueError(f"need num_nodes >= 1 and alpha, beta > -1; got {num_nodes}, {alpha}, {beta}.")
  s = a + b
  k = np.arange(n, dtype=np.float64)
  diag = np.empty(n)
  diag[0] = (b - a) / (s + 2.0)
  diag[1:] = (b * b - a * a) / ((2.0 * k[1:] + s) * (2.0 * k[1:] + s + 2.0))
  off = np.empty(max(n - 1, 0))
  if n > 1:
    off[0] = 4.0 * (1.0 + a) * (1.0 + b) / ((2.0 + s) ** 2 * (3.0 + s))
    j = k[2:]
    off[1:] = 4.0 * j * (j + a) * (j + b) * (j + s) / ((2.0 * j + s) ** 2 * (2.0 * j + s + 1.0) * (2.0 * j + s - 1.0))
  matrix = np.diag(diag) + np.diag(np.sqrt(off), 1) + np.diag(np.sqrt(off), -1)
  nodes, vectors = np.linalg.eigh(matrix)
  log_mu0 = (s + 1.0) * math.log(2.0) + math.lgamma(a + 1.0) + math.lgamma(b + 1.0) - math.lgamma(s + 2.0)
  return nodes, math.exp(log_mu0) * vectors[0] ** 2


def _concentrations(a: ArrayLike, b: ArrayLike | None) -> tuple[ArrayLike, ArrayLike]:
  _validate.check_positive("a", a)
  b = a if b is None else b
  _validate.check_positive("b", b)
  return a, b


def lam_quadrature(
  num_nodes: int, a: float, b: float | None = None, *, law: str = "beta"
) -> tuple[np.ndarray, np.ndarray]:
  """Quadrature nodes in [0, 1] and weights (summing to 1) for ``Beta(a, b)`` or ``D~``.

  ``D~`` (Theorem 1) is the mixture ``a/(a+b) Beta(a+1, b) + b/(a+b) Beta(b+1, a)``: the nodes
  of both components, ``2 num_nodes`` in all.

  Args:
    num_nodes: static number of nodes per Beta component.
    a: concrete first concentration, > 0.
    b: concrete second concentration, > 0 (``a`` when omitted).
    law: ``"beta"`` or ``"d_tilde"``.

  Returns:
    float64 numpy ``(lam [n], weights [n])``.

  >>> lam, w = lam_quadrature(3, 1.0)
  >>> round(float(w @ (1 - lam) ** 2), 12)  # E(1 - lam)^2 = 1/3 for Beta(1, 1)
  0.333333333333
  """
  _validate.check_choice("law", law, LAWS)
  first, second = _concentrations(a, b)
  a, b = float(first), float(second)  # type: ignore[arg-type]

  def beta_rule(p: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    x, w = gauss_jacobi(num_nodes, q - 1.0, p - 1.0)
    return (1.0 + x) / 2.0, w / w.sum()

  if law == "beta":
    return beta_rule(a, b)
  (lam1, w1), (lam2, w2) = beta_rule(a + 1.0, b), beta_rule(b + 1.0, a)
  return np.concatenate([lam1, lam2]), np.concatenate([a / (a + b) * w1, b / (a + b) * w2])


def interval_rule(
  lo: float, hi: float, num_nodes: int, a: float, b: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """Nodes in ``(lo, hi)`` and weights for ``E[g(lam) 1{lo <= lam < hi}]``, ``lam ~ Beta(a, b)``.

  The Beta density's endpoint factors go into the weight where the interval touches them:
  ``[0, 1]`` is the Gauss-Jacobi rule of ``lam_quadrature``; ``[0, hi)`` takes ``lam^(a-1)``
  into a Gauss-Jacobi weight and ``[lo, 1]`` takes ``(1 - lam)^(b-1)``, the other factor being
  smooth there; an interior interval is Gauss-Legendre times the density. The rule is exact for
  polynomials of degree ``2 num_nodes - 1`` when ``a = b = 1`` (every interval) and converges
  exponentially for a function ``g`` smooth on the interval otherwise.

  Args:
    lo: concrete lower end, ``0 <= lo < hi``.
    hi: concrete upper end, ``<= 1``.
    num_nodes: static number of nodes, >= 1.
    a: first concentration, > 0.
    b: second concentration, > 0 (``a`` when omitted).

  Returns:
    float64 numpy ``(lam [n], weights [n])``; the weights sum to ``P(lo <= lam < hi)``.

  >>> lam, w = interval_rule(0.0, 0.5, 2, 1.0)
  >>> round(float(w.sum()), 12), round(float(w @ lam), 12)  # P(lam < 1/2), E[lam 1{lam < 1/2}]
  (0.5, 0.125)
  """
  first, second = _concentrations(a, b)
  a, b = float(first), float(second)  # type: ignore[arg-type]
  lo, hi = float(lo), float(hi)
  if not (0.0 <= lo < hi <= 1.0):
    raise ValueError(f"interval_rule needs 0 <= lo < hi <= 1; got lo={lo}, hi={hi}.")
  if lo == 0.0 and hi == 1.0:
    return lam_quadrature(num_nodes, a, b)
  log_norm = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
  half = (hi - lo) / 2.0
  if lo == 0.0:  # lam = hi (1 + x) / 2: lam^(a-1) = (hi / 2)^(a-1) (1 + x)^(a-1)
    x, w = gauss_jacobi(num_nodes, 0.0, a - 1.0)
    lam = hi * (1.0 + x) / 2.0
    weights = w * half**a * (1.0 - lam) ** (b - 1.0)
  elif hi == 1.0:  # 1 - lam = (1 - lo)(1 - x) / 2
    x, w = gauss_jacobi(num_nodes, b - 1.0, 0.0)
    lam = lo + (1.0 - lo) * (1.0 + x) / 2.0
    weights = w * half**b * lam ** (a - 1.0)
  else:
    x, w = gauss_jacobi(num_nodes, 0.0, 0.0)
    lam = lo + half * (1.0 + x)
    weights = w * half * lam ** (a - 1.0) * (1.0 - lam) ** (b - 1.0)
  return lam, weights / math.exp(log_norm)


def average_smooth(
  coefficient: Coefficient, a: float, b: float | None = None, *, law: str = "beta", num_nodes: int = 32
) -> jax.Array:
  """``E_lam[coefficient(lam)]`` by Gauss-Jacobi quadrature, for coefficients smooth in ``lam``.

  The nodes are visited under ``jax.lax.scan``, so memory is one coefficient plus the sum.

  Args:
    coefficient: ``lam -> array`` (traced ``lam``), e.g. ``closed_forms.gmix_plane_coefficients``.
    a: concrete first concentration.
    b: concrete second concentration (``a`` when omitted).
    law: ``"beta"`` (the MSDA law, Eq. 4) or ``"d_tilde"`` (Theorem 1).
    num_nodes: nodes per Beta component.

  Returns:
    the average, of ``coefficient``'s shape.

  >>> mixup = lambda lam: closed_forms.mixup_coefficients(lam, shape=(1,))
  >>> round(float(average_smooth(mixup, 1.0, law="d_tilde")[0, 0]), 6)  # E_{D~}(1 - lam)^2, Beta(2, 1)
  0.166667
  """
  lams, probabilities = lam_quadrature(num_nodes, a, b, law=law)
  nodes, weights = jnp.asarray(lams, jnp.float32), jnp.asarray(probabilities, jnp.float32)
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(coefficient, nodes[0]))

  def step(total: jax.Array, node: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
    return total + node[1] * coefficient(node[0]), None

  return jax.lax.scan(step, zeros, (nodes, weights))[0]


def box_lam_edges(*, shape: tuple[int, ...], r: ArrayLike = 1.0) -> jax.Array:
  """Sorted ``lam`` breakpoints in [0, 1] between which the box sides are constant.

  ``floor(((1 - lam) r)^(1/d) n_k)`` steps at ``lam = 1 - (m / n_k)^d / r``, ``m = 1..n_k``; the
  array has the static length ``2 + sum(n_k)`` (coincident or clipped breakpoints give
  empty intervals), so a traced ``r`` never recompiles.

  Args:
    shape: static spatial shape.
    r: traced HMix box ratio in (0, 1]; 1 for CutMix and Stochastic.

  Returns:
    float32 ``[2 + sum(n_k)]`` edges from 0 to 1.

  >>> box_lam_edges(shape=(2,)).tolist()  # side 2 for lam in [0, 0], 1 up to 0.5, then 0
  [0.0, 0.0, 0.5, 1.0]
  """
  r = jnp.asarray(r, jnp.float32)
  d = len(shape)
  steps = jnp.concatenate([(jnp.arange(1, n + 1, dtype=jnp.float32) / n) ** d for n in shape])
  lams = jnp.clip(1.0 - steps / jnp.where(r > 0.0, r, 1.0), 0.0, 1.0)
  lams = jnp.where(r > 0.0, lams, 0.0)
  return jnp.sort(jnp.concatenate([jnp.zeros(1), lams, jnp.ones(1)]))


def interval_moments(
  edges: jax.Array, a: ArrayLike, b: ArrayLike | None = None, *, law: str = "beta", order: int = 3
) -> jax.Array:
  """``E[lam^k 1{edges_i <= lam < edges_(i+1)}]`` for ``k < order`` (exact, traced ``a``, ``b``).

  Args:
    edges: sorted ``[I + 1]`` interval edges in [0, 1].
    a: first concentration, > 0.
    b: second concentration, > 0 (``a`` when omitted).
    law: ``"beta"`` or ``"d_tilde"``.
    order: static number of powers ``k = 0..order-1``.

  Returns:
    ``[order, I]`` in the default float dtype: float32 (``betainc`` then has errors of about
    1e-6), float64 under ``jax_enable_x64``.

  >>> np.round(interval_moments(jnp.array([0.0, 0.5, 1.0]), 1.0, order=2), 5).tolist()
  [[0.5, 0.5], [0.125, 0.375]]
  """
  _validate.check_choice("law", law, LAWS)
  a, b = _concentrations(a, b)
  dtype = jnp.result_type(float)
  a, b = jnp.asarray(a, dtype), jnp.asarray(b, dtype)
  edges = jnp.asarray(edges, dtype)

  def beta_moments(p: jax.Array, q: jax.Array) -> jax.Array:
    rows, factor = [], jnp.ones((), dtype)
    for k in range(order):
      cdf = jax.scipy.special.betainc(p + k, q, edges)
      rows.append(factor * jnp.diff(cdf))
      factor = factor * (p + k) / (p + q + k)
    return jnp.stack(rows)

  if law == "beta":
    return beta_moments(a, b)
  return a / (a + b) * beta_moments(a + 1.0, b) + b / (a + b) * beta_moments(b + 1.0, a)


def average_piecewise(
  terms: Coefficient, a: ArrayLike, b: ArrayLike | None = None, *, edges: jax.Array, law: str = "beta"
) -> jax.Array:
  """Exact ``E_lam[sum_k lam^k T_k(lam)]`` when every ``T_k`` is constant between the ``edges``.

  Each ``T_k`` is evaluated at the midpoint of its interval; the intervals are visited under
  ``jax.lax.scan`` (memory: one ``terms`` output plus the sum).

  Args:
    terms: ``lam -> [K, ...]`` stacked ``T_k`` (e.g. ``cutmix_lam_terms``).
    a: first concentration (traced).
    b: second concentration (``a`` when omitted).
    edges: sorted ``[I + 1]`` edges from 0 to 1 (``box_lam_edges``).
    law: ``"beta"`` (the MSDA law, Eq. 4) or ``"d_tilde"`` (Theorem 1).

  Returns:
    the average, of ``terms``' shape without the leading ``K``.

  >>> mixup = lambda lam: jnp.stack([jnp.ones(()), -2.0 * jnp.ones(()), jnp.ones(())])  # (1 - lam)^2
  >>> round(float(average_piecewise(mixup, 1.0, edges=jnp.array([0.0, 1.0]))), 6)
  0.333333
  """
  edges = jnp.asarray(edges, jnp.float32)
  mids = (edges[:-1] + edges[1:]) / 2.0
  shape = jax.eval_shape(terms, mids[0])
  moments = interval_moments(edges, a, b, law=law, order=shape.shape[0])

  def step(total: jax.Array, interval: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
    mid, weights = interval
    return total + jnp.tensordot(weights, terms(mid), axes=1), None

  zeros = jnp.zeros(shape.shape[1:], jnp.promote_types(shape.dtype, moments.dtype))
  return jax.lax.scan(step, zeros, (mids, moments.T))[0]


def cutmix_lam_terms(lam: ArrayLike, *, shape: tuple[int, ...], placement: str = "clip") -> jax.Array:
  """CutMix's ``a_jk`` as ``[1, d, d]`` terms: piecewise constant in ``lam`` (``box_lam_edges``).

  >>> cutmix_lam_terms(0.5, shape=(4, 4)).shape
  (1, 16, 16)
  """
  return closed_forms.cutmix_coefficients(lam, shape=shape, placement=placement)[None]


def stochastic_lam_terms(
  lam: ArrayLike, *, shape: tuple[int, ...], q: ArrayLike = 0.5, placement: str = "clip"
) -> jax.Array:
  """Stochastic Mixup & CutMix as ``[3, d, d]`` terms: ``q (1 - 2 lam + lam^2) + (1 - q) a^cutmix``.

  >>> stochastic_lam_terms(0.5, shape=(2, 2)).shape
  (3, 4, 4)
  """
  q = jnp.asarray(q, jnp.float32)
  cutmix = closed_forms.cutmix_coefficients(lam, shape=shape, placement=placement)
  ones = jnp.ones_like(cutmix)
  return jnp.stack([q + (1.0 - q) * cutmix, -2.0 * q * ones, q * ones])


def hmix_lam_terms(lam: ArrayLike, *, shape: tuple[int, ...], r: ArrayLike = 0.5) -> jax.Array:
  """HMix (box inside) as ``[3, d, d]`` terms, constant between ``box_lam_edges(shape, r)``.

  With ``g = 1 / (1 - A)``, ``u = 1 - g lam``, ``S = P_j + P_k`` and ``P = P_jk``:
  ``a = 1 + lam g (S - 2) + lam^2 g^2 (1 - S + P)``.

  >>> t = hmix_lam_terms(0.5, shape=(8, 8), r=0.5)
  >>> round(float(t[0, 0, 0] + 0.5 * t[1, 0, 0] + 0.25 * t[2, 0, 0]), 6)  # a_00 at lam = 0.5
  0.146667
  """
  _, area, factors = closed_forms.hmix_inside_parts(lam, shape=shape, r=r)
  g = jnp.where(area < 1.0, 1.0 / jnp.where(area < 1.0, 1.0 - area, 1.0), 0.0)
  pair = closed_forms.kron_factors(factors)
  single = jnp.diagonal(pair)
  both = single[:, None] + single[None, :]
  return jnp.stack([jnp.ones_like(pair), g * (both - 2.0), g**2 * (1.0 - both + pair)])
