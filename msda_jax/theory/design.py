"""A mask designer: the bounded mask law whose coefficients ``a_jk`` best match a target.

Theorem 2 realises any attainable ``A(lam)`` exactly, but with real-valued masks ``M = lam 1 +
S Z`` that leave [0, 1] (``theorem2``): no image can be mixed with them. The designer stays
inside the masks that mix images. A stochastic switch that picks method ``k`` with probability
``w_k`` (``msda_jax.Mixture``) has the law ``sum_k w_k Law_k``; every quantity the theory takes
an expectation of is linear in the law, so its coefficients are the same convex mixture,

    a_jk(w) = sum_k w_k a^(k)_jk,        E[1 - M](w) = sum_k w_k E[1 - M^(k)],

at a fixed ``lam`` (Eq. 9; every component then draws its mask at that ``lam``) and averaged
over each component's own ``lam`` law (the coefficients of Theorem 1, ``method_coefficients``:
the swap law's moments are linear in the law's weights). Figure 4's translation map
``E_i a_{i, i+p}`` is linear in ``a``, so it mixes the same way. Fitting a target is therefore
a least-squares problem over the probability simplex,

    min_w || sum_k w_k F_k - t ||_2    subject to    w >= 0,  sum_k w_k = 1,

(``F_k`` the candidate's coefficients or map, ``t`` the target), solved by ``simplex_lstsq``,
and the fitted law is realised *exactly* by ``Mixture(candidates, probs=w)``: no approximation
between the fitted coefficients and the law that trains, only the residual of the fit.

The candidates default to a grid over the library's families and their parameters
(``default_candidates``): Mixup, i.i.d. Bernoulli, CutMix, HMix over ``r``, GMix over its width
(the official code's and the text's scale) and, given a key (Monte Carlo), FMix over its decay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import numpy as np
import scipy.optimize
from jax.typing import ArrayLike

from msda_jax import _validate
from msda_jax.masks import Bernoulli, CutMix, FMix, GMix, HMix, Mixture, Mixup
from msda_jax.masks._base import MixMethod
from msda_jax.theory import closed_forms, family_atoms, laws, moments, translation
from msda_jax.theory.enumeration import box_masks, enumerated_moments, gmix_masks

#: HMix box ratios and FMix decay powers of the default grid.
HMIX_RATIOS = (0.25, 0.5, 0.75)
FMIX_DECAYS = (2.0, 3.0, 4.0)
#: weights below this (after the fit) are dropped from the realised mixture and the rest renormalised.
MIN_WEIGHT = 1e-6


class Design(NamedTuple):
  """A fitted bounded mask law.

  Attributes:
    method: ``Mixture`` of the candidates with weight ``> min_weight``, realising the fit exactly.
    weights: ``[K]`` float64 weight of every candidate (``>= 0``, summing to 1).
    candidates: the ``K`` candidate methods, in the order of ``weights``.
    fitted: the fitted coefficients or map, the target's shape (float64 numpy).
    residual: ``||fitted - target||_2``.
    relative_residual: ``residual / ||target||_2``.
    features: ``[K, T]`` every candidate's coefficients or map, flattened (float64 numpy).
  """

  method: Mixture
  weights: np.ndarray
  candidates: tuple[MixMethod, ...]
  fitted: np.ndarray
  residual: float
  relative_residual: float
  features: np.ndarray


def default_candidates(*, with_fmix: bool = False) -> tuple[MixMethod, ...]:
  """The grid of library families the designer mixes (module docstring); FMix only when asked."""
  grid: list[MixMethod] = [Mixup(), Bernoulli(), CutMix()]
  grid += [HMix(r=r) for r in HMIX_RATIOS]
  grid += [GMix(scale="code"), GMix(scale="text")]
  if with_fmix:
    grid += [FMix(decay=decay) for decay in FMIX_DECAYS]
  return tuple(grid)


def simplex_lstsq(features: ArrayLike, target: ArrayLike) -> np.ndarray:
  """``argmin_w ||features^T w - target||_2`` over ``w >= 0``, ``sum w = 1`` (float64).

  The simplex constraint enters non-negative least squares (``scipy.optimize.nnls``) as a
  heavily weighted row of ones; the weights are then refined on their support by the exact
  equality-constrained solution (its KKT system), kept when it stays non-negative and does not
  raise the objective.

  Args:
    features: ``[K, T]`` one row per candidate.
    target: ``[T]``.

  Returns:
    ``[K]`` weights, ``>= 0``, summing to 1.

  >>> simplex_lstsq(np.array([[0.0, 0.0], [2.0, 2.0]]), np.array([0.5, 0.5])).round(6).tolist()
  [0.75, 0.25]
  """
  f = np.asarray(features, np.float64)
  t = np.asarray(target, np.float64).reshape(-1)
  if f.ndim != 2 or f.shape[1] != t.size or f.shape[0] < 1:
    raise ValueError(f"features must be [K, T] with T = target.size = {t.size}; got shape {f.shape}.")
  if not (np.all(np.isfinite(f)) and np.all(np.isfinite(t))):
    raise ValueError("features and target must be finite.")
  scale = max(1.0, float(np.abs(f).max()), float(np.abs(t).max()))
  penalty = 1e4 * scale * math.sqrt(t.size)
  system = np.vstack([f.T, penalty * np.ones((1, f.shape[0]))])
  w, _ = scipy.optimize.nnls(system, np.concatenate([t, [penalty]]), maxiter=50 * f.shape[0])
  w = np.maximum(w, 0.0)
  w = w / w.sum() if w.sum() > 0 else np.full(f.shape[0], 1.0 / f.shape[0])
  support = np.flatnonzero(w > 0)
  objective = lambda v: float(np.sum((v @ f - t) ** 2))
  fs = f[support]
  kkt = np.block([[2.0 * fs @ fs.T, np.ones((len(support), 1))], [np.ones((1, len(support))), np.zeros((1, 1))]])
  rhs = np.concatenate([2.0 * fs @ t, [1.0]])
  solution = np.linalg.lstsq(kkt, rhs, rcond=None)[0][: len(support)]
  if np.all(solution >= 0.0) and abs(solution.sum() - 1.0) < 1e-9:
    refined = np.zeros_like(w)
    refined[support] = solution
    if objective(refined) <= objective(w):
      w = refined
  return w


def fixed_lam_moments(
  method: MixMethod, lam: float, *, shape: tuple[int, ...], key: jax.Array | None = None, num_draws: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
  """``(E[1 - M], a_jk(lam))`` (Eq. 9) of ``method`` at a fixed ``lam``: ``[d]`` and ``[d, d]`` float64.

  Exact for Mixup, Bernoulli, CutMix and HMix (fixed ``r``, floor sides, every box position) and
  GMix (every centre); Monte Carlo (``key`` needed) for the others.
  """
  name = type(method).name
  sides = getattr(method, "box_sides", "floor")
  d = math.prod(shape)
  if name == "mixup":
    return np.full(d, 1.0 - lam), np.asarray(closed_forms.mixup_coefficients(lam, shape=shape), np.float64)
  if name == "bernoulli":
    return np.full(d, 1.0 - lam), np.asarray(closed_forms.bernoulli_coefficients(lam, shape=shape), np.float64)
  if name in ("cutmix", "hmix") and sides == "floor" and getattr(method, "minmax", None) is None:
    if getattr(method, "r_alpha", None) is None:
      r = family_atoms.concrete_parameter(method, "r") if name == "hmix" else 0.5
      masks = box_masks(lam, shape=shape, family=name, placement=method.placement, r=r)  # type: ignore[attr-defined]
      exact = enumerated_moments(masks)
      return exact.mean, exact.second
  if name == "gmix":
    exact = enumerated_moments(gmix_masks(lam, shape=shape, scale=method.scale, symmetric=method.symmetric))  # type: ignore[attr-defined]
    return exact.mean, exact.second
  if key is None:
    raise ValueError(
      f"{type(method).__name__} has no exact a_jk(lam) here; pass key= (and num_draws=) for Monte Carlo."
    )
  sampled = moments.mask_moments(key, laws.fixed_lam_law(method, lam, shape=shape), num_draws=num_draws)
  return np.asarray(sampled.mean, np.float64), np.asarray(sampled.second, np.float64)


def candidate_coefficients(
  method: MixMethod,
  *,
  shape: tuple[int, ...],
  lam: float | None = None,
  form: str = "general",
  label_weight: str = "realised",
  key: jax.Array | None = None,
  num_draws: int = 4096,
) -> np.ndarray:
  """A candidate's ``a_jk`` ``[d, d]`` (float64): at a fixed ``lam``, or Theorem 1's (``method_coefficients``)."""
  if lam is not None:
    return fixed_lam_moments(method, lam, shape=shape, key=key, num_draws=num_draws)[1]
  coefficients = family_atoms.method_coefficients(
    method, shape=shape, form=form, label_weight=label_weight, key=key, num_draws=num_draws
  )
  return np.asarray(coefficients.second, np.float64)


def _target_kind(target: np.ndarray, shape: tuple[int, ...]) -> str:
  d = math.prod(shape)
  if target.shape == (d, d):
    return "matrix"
  if target.shape == translation.map_shape(shape):
    return "map"
  raise ValueError(
    f"target must be a coefficient matrix [d, d] = [{d}, {d}] or a translation map {translation.map_shape(shape)} "
    f"for shape {shape}; got shape {target.shape}."
  )


def design_mask_law(
  target: ArrayLike,
  candidates: Sequence[MixMethod] | None = None,
  *,
  shape: tuple[int, ...],
  lam: float | None = None,
  form: str = "general",
  label_weight: str = "realised",
  key: jax.Array | None = None,
  num_draws: int = 4096,
  min_weight: float = MIN_WEIGHT,
) -> Design:
  """The convex mixture of library methods whose ``a_jk`` (or translation map) best fits ``target``.

  Args:
    target: a coefficient matrix ``[d, d]`` (``a_jk``, Eq. 9) or a translation map
      ``[2 n_1 - 1, ...]`` (Figure 4's ``E_i a_{i, i+p}``).
    candidates: mask-only library methods with concrete hyper-parameters; ``default_candidates``
      when omitted (FMix included when ``key`` is given).
    shape: static spatial shape of the masks.
    lam: fit ``a_jk(lam)`` at this fixed ratio in (0, 1) (the mixture then realises it when
      sampled with ``lam=lam``); ``None`` fits Theorem 1's coefficients averaged over every
      candidate's own ``lam`` law.
    form: ``"general"`` or ``"printed"`` (the lam-averaged coefficients only).
    label_weight: ``"realised"`` or ``"nominal"`` (the lam-averaged coefficients only).
    key: PRNG key for candidates without exact coefficients (FMix, ResizeMix...).
    num_draws: Monte Carlo draws for those.
    min_weight: weights below it are left out of the realised ``Mixture``.

  Returns:
    ``Design``.

  Raises:
    ValueError: a target of another shape or not finite, ``lam`` out of (0, 1), an empty or
      data-dependent candidate list, or a candidate without exact coefficients and no ``key``.

  >>> import msda_jax
  >>> a = 0.3 * candidate_coefficients(msda_jax.Mixup(), shape=(4,), lam=0.5)
  >>> a = a + 0.7 * candidate_coefficients(msda_jax.CutMix(), shape=(4,), lam=0.5)
  >>> design = design_mask_law(a, [msda_jax.Mixup(), msda_jax.CutMix()], shape=(4,), lam=0.5)
  >>> design.weights.round(6).tolist(), design.residual < 1e-9
  ([0.3, 0.7], True)
  """
  shape = tuple(int(n) for n in shape)
  t = np.asarray(target, np.float64)
  kind = _target_kind(t, shape)
  if not np.all(np.isfinite(t)):
    raise ValueError("target must be finite.")
  if lam is not None:
    _validate.check_range("lam", lam, 0.0, 1.0)
    lam = float(lam)
  _validate.check_choice("form", form, ("general", "printed"))
  laws.check_label_weight(label_weight)
  if not 0.0 <= min_weight < 1.0:
    raise ValueError(f"min_weight must be in [0, 1); got {min_weight!r}.")
  if candidates is None:
    candidates = default_candidates(with_fmix=key is not None)
  candidates = tuple(candidates)
  if not candidates:
    raise ValueError("candidates must be a non-empty sequence of MixMethod.")
  Mixture(candidates)  # refuses data-dependent, image-transforming or non-method candidates by name
  keys = [None] * len(candidates) if key is None else list(jax.random.split(key, len(candidates)))
  rows = []
  for method, k in zip(candidates, keys, strict=True):
    a = candidate_coefficients(
      method, shape=shape, lam=lam, form=form, label_weight=label_weight, key=k, num_draws=num_draws
    )
    rows.append(np.asarray(translation.matrix_translation_map(a, shape=shape), np.float64) if kind == "map" else a)
  features = np.stack([row.reshape(-1) for row in rows])
  weights = simplex_lstsq(features, t.reshape(-1))
  fitted = (weights @ features).reshape(t.shape)
  residual = float(np.linalg.norm(fitted - t))
  norm = float(np.linalg.norm(t))
  kept = weights > min_weight
  probs = weights[kept] / weights[kept].sum()
  method = Mixture(tuple(m for m, keep in zip(candidates, kept, strict=True) if keep), probs=probs)
  return Design(method, weights, candidates, fitted, residual, residual / norm if norm > 0 else math.inf, features)
