"""Statistical tests of the lam laws and mask samplers against independent references.

Every reference here is computed from first principles in numpy/scipy (closed-form CDFs, exact
rational box sides, enumeration over every box position or bump centre), never with the
library's own helpers. Each test states its seed, its number of draws and its tolerance. Draws
are batched as ``jax.jit(jax.vmap(...))`` over ``jax.random.split(jax.random.key(seed), n)``;
several methods share one compiled program to keep compilation time down.

Tolerances: Kolmogorov-Smirnov and chi-square tests pass at ``p > 1e-3``; per-pixel means must
lie within ``Z_PIXEL`` standard errors (exact variances from the enumeration) and a global
linear statistic within ``Z_GLOBAL``. Several tests also feed a deliberately wrong reference to
show that the same statistic rejects it.
"""

from __future__ import annotations

import functools
import itertools
import math
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from msda_jax import _gamma, lam_laws
from msda_jax.masks import (
  Bernoulli,
  CutMix,
  FMix,
  GMix,
  HMix,
  Mixup,
  ResizeMix,
  StochasticMixupCutMix,
)

pytestmark = pytest.mark.slow

P_MIN = 1e-3  # smallest accepted p-value of a goodness-of-fit test
P_POWER = 1e-6  # largest p-value accepted as a rejection of a wrong law
Z_PIXEL = 4.5  # largest accepted |z| of one pixel's mean (about 200 pixels per check)
Z_GLOBAL = 4.0  # largest accepted |z| of a global linear statistic
KS_TOP = 1.0 - 1e-5  # the KS supremum is taken over x <= KS_TOP (see ks_pvalue)

GRID_2D = (12, 17)
GRID_1D = (23,)
GRID_3D = (4, 6, 8)


def shape_id(shape) -> str:
  return "x".join(map(str, shape))


# -- drawing -----------------------------------------------------------------------------------


def keys_for(seed: int, n: int) -> jax.Array:
  return jax.random.split(jax.random.key(seed), n)


def to_numpy(tree):
  return jax.tree.map(lambda x: np.asarray(x, dtype=np.float64), tree)


@functools.partial(jax.jit, static_argnames="shape")
def _laws_batch(methods, keys, *, shape):
  """Per key and per method: the ``lam`` of an image sample (4 x 5) and of ``sample(key, shape=shape)``."""
  image = lambda m, key: m.sample(jax.random.fold_in(key, 7), shape=(4, 5)).lam
  return jax.vmap(lambda key: tuple((image(m, key), m.sample(key, shape=shape).lam) for m in methods))(keys)


@functools.partial(jax.jit, static_argnames="shape")
def _masks_batch(methods, keys, lams, *, shape):
  """Per (key, lam) and per method: ``sample(key, shape=shape, lam=lam).mask``."""
  return jax.vmap(lambda key, lam: tuple(m.sample(key, shape=shape, lam=lam).mask for m in methods))(keys, lams)


def masks_at(methods, lam, shape, seed: int, n: int) -> tuple[jax.Array, ...]:
  """``n`` masks of each method at a fixed ``lam`` (float32 arrays ``[n, *shape]``)."""
  lams = jnp.full((n,), lam, jnp.float32)
  return _masks_batch(tuple(methods), keys_for(seed, n), lams, shape=shape)


def ks_pvalue(sample: np.ndarray, cdf) -> float:
  """Two-sided Kolmogorov-Smirnov p-value, the supremum taken over ``x <= KS_TOP`` only.

  float32 spaces values near 1 by 6e-8, and a law with a parameter below 1 puts a few percent
  of its mass within 1e-7 of 1 (``Beta(1.2, 0.2)``: 3 %), which lands on a handful of float32
  values; ``scipy.stats.kstest`` reads those atoms as a deviation of that size. Leaving
  ``(KS_TOP, 1]`` out of the supremum can only lower the statistic under the null, so the
  ``kstwo`` p-value stays valid (conservative); the share of draws above the cut still counts
  through ``F_n(KS_TOP)``. Without draws above the cut this is ``scipy.stats.kstest`` exactly.
  """
  x = np.sort(np.asarray(sample, np.float64))
  n = len(x)
  below = x[x <= KS_TOP]
  i = np.arange(1, len(below) + 1)
  f = cdf(below)
  d = max((i / n - f).max(initial=0.0), (f - (i - 1) / n).max(initial=0.0), abs(len(below) / n - cdf(KS_TOP)))
  return float(stats.kstwo(n).sf(d))


# -- independent references ----------------------------------------------------------------------


def f32(x) -> float:
  """The float32 value of ``x`` as an exact Python float."""
  return float(np.float32(x))


def exact_side(fraction: float, n: int, d: int) -> int:
  """``floor(fraction^(1/d) n)`` in exact rational arithmetic: the largest ``s`` with ``(s/n)^d <= f``."""
  f = min(max(Fraction(fraction), Fraction(0)), Fraction(1))
  s = min(max(math.floor(float(f) ** (1.0 / d) * n), 0), n)
  while s < n and Fraction(s + 1, n) ** d <= f:
    s += 1
  while s > 0 and Fraction(s, n) ** d > f:
    s -= 1
  return s


def exact_sides(fraction: float, shape) -> list[int]:
  return [exact_side(fraction, n, len(shape)) for n in shape]


def cut_fraction(lam: float, r: float = 1.0) -> float:
  """The box's nominal area fraction ``(1 - lam) r``, evaluated in float32 like the inputs."""
  return float((np.float32(1.0) - np.float32(lam)) * np.float32(r))


def all_boxes(shape, sides, placement: str) -> np.ndarray:
  """Every equally likely box (bool ``[P, *shape]``) for a uniform position per axis.

  ``"clip"``: centre ``c`` uniform over ``range(n)``, start ``c - s // 2``, clipped by the grid.
  ``"inside"``: start uniform over ``range(n - s + 1)``.
  """
  per_axis = []
  for n, s in zip(shape, sides, strict=True):
    starts = np.arange(n) - s // 2 if placement == "clip" else np.arange(n - s + 1)
    index = np.arange(n)
    per_axis.append((index[None, :] >= starts[:, None]) & (index[None, :] < starts[:, None] + s))
  return np.stack([functools.reduce(np.multiply.outer, rows) for rows in itertools.product(*per_axis)]).astype(bool)


def moments(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per-pixel mean and variance over equally likely masks ``[P, *shape]``."""
  mean = masks.mean(0)
  return mean, np.maximum((masks**2).mean(0) - mean**2, 0.0)


def cutmix_moments(lam: float, shape, placement: str) -> tuple[np.ndarray, np.ndarray]:
  return moments(1.0 - all_boxes(shape, exact_sides(cut_fraction(lam), shape), placement))


def hmix_moments(lam: float, r: float, shape, placement: str) -> tuple[np.ndarray, np.ndarray]:
  boxes = all_boxes(shape, exact_sides(cut_fraction(lam, r), shape), placement)
  kept = 1.0 - boxes.reshape(len(boxes), -1).mean(1)
  outside = np.where(kept > 0, f32(lam) / np.where(kept > 0, kept, 1.0), 0.0)
  return moments(np.where(boxes, 0.0, outside.reshape((-1,) + (1,) * len(shape))))


def gmix_moments(lam: float, shape, scale: str, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
  """Exact moments of the GMix mask: the bump ``exp(-pi ||i - p||^2 / c)``, ``p`` uniform over pixels.

  The bump carries the nominal weight ``w = 1 - lam`` (or ``min(lam, 1 - lam)`` when
  symmetric, on ``M`` itself when ``lam < 0.5``), ``c = (w V)^(2/d)``, twice that for the text
  scale. It factorises over axes, so its moments are outer products of per-axis averages.
  """
  lam = f32(lam)
  on_mask = symmetric and lam < 0.5
  weight = lam if on_mask else 1.0 - lam
  width = (weight * math.prod(shape)) ** (2.0 / len(shape)) * (2.0 if scale == "text" else 1.0)
  first, second = [], []
  for n in shape:
    offsets = np.arange(n)[None, :] - np.arange(n)[:, None]
    factor = np.exp(-math.pi * offsets**2 / width)
    first.append(factor.mean(0))
    second.append((factor**2).mean(0))
  bump = functools.reduce(np.multiply.outer, first)
  bump_sq = functools.reduce(np.multiply.outer, second)
  var = np.maximum(bump_sq - bump**2, 0.0)
  return (bump, var) if on_mask else (1.0 - bump, var)


def pixel_mean_failures(masks: np.ndarray, mean: np.ndarray, var: np.ndarray, what: str) -> list[str]:
  """Compares draws ``[n, *shape]`` with the exact per-pixel mean and variance; returns failures.

  * Pixels of zero exact variance must match to 1e-6; the others within ``Z_PIXEL`` SE.
  * Two global statistics, each iid across draws (SE estimated from the draws), within
    ``Z_GLOBAL`` SE: the mask total and the projection of ``M`` on the centred exact mean
    pattern, which catch a bias spread thinly over many pixels. A statistic that is fixed up
    to float32 rounding (the HMix total) must match to 1e-5 per unit weight instead.
  """
  n = masks.shape[0]
  got = masks.mean(0)
  failures = []
  fixed = var < 1e-12
  if fixed.any() and np.abs(got - mean)[fixed].max() > 1e-6:
    failures.append(f"{what}: zero-variance pixels off by {np.abs(got - mean)[fixed].max():.2e}")
  if (~fixed).any():
    z = float((np.abs(got - mean)[~fixed] / np.sqrt(var[~fixed] / n)).max())
    if not z < Z_PIXEL:
      failures.append(f"{what}: max per-pixel |z| = {z:.2f} >= {Z_PIXEL} over {n} draws")
  flat = masks.reshape(n, -1)
  for name, weights in (("total", np.ones(mean.size)), ("contrast", (mean - mean.mean()).ravel())):
    t = flat @ weights
    expected = float(mean.ravel() @ weights)
    scale = 1e-5 * max(1.0, float(np.abs(weights).sum()))  # float32 rounding of a fixed total
    if t.std() < scale:
      z = 0.0 if abs(t.mean() - expected) < scale else math.inf
    else:
      z = abs(t.mean() - expected) / (t.std(ddof=1) / math.sqrt(n))
    if not z < Z_GLOBAL:
      failures.append(f"{what}: global {name} |z| = {z:.2f} >= {Z_GLOBAL} over {n} draws")
  return failures


def pixel_z_max(masks: np.ndarray, mean: np.ndarray, var: np.ndarray) -> float:
  """The largest per-pixel |z| (pixels of positive variance only), for power checks."""
  z = np.abs(masks.mean(0) - mean) / np.sqrt(np.maximum(var, 1e-12) / masks.shape[0])
  return float(z[var > 1e-12].max())


# -- 1. lam laws -----------------------------------------------------------------------------------


def test_ks_pvalue_is_scipy_kstest_below_the_cut():
  # seed 900, N = 3000 uniform draws (none above the cut): the helper equals scipy.stats.kstest
  # to 1e-9, for the true law and for a wrong one.
  sample = np.random.default_rng(900).uniform(0.0, 0.99, size=3000)
  for cdf in (stats.uniform(0.0, 0.99).cdf, stats.beta(1.1, 1.0).cdf):
    assert abs(ks_pvalue(sample, cdf) - stats.kstest(sample, cdf).pvalue) < 1e-9


BETA_METHODS = {
  "mixup": Mixup,
  "cutmix": CutMix,
  "hmix": HMix,
  "gmix": GMix,
  "bernoulli": Bernoulli,
  "fmix": FMix,
}


@pytest.mark.parametrize("alpha", [0.2, 0.5, 1.0, 2.0])
def test_lam_law_is_symmetric_beta(alpha):
  # seed 1000, N = 5000 draws per method of sample_lam and of sample (4 x 5 grid): KS against
  # Beta(alpha, alpha) at p > 1e-3 for both; power: each sample_lam sample rejects
  # Beta(alpha, 2 alpha) at p < 1e-6. Also HMix with r ~ Beta(0.5, 0.5).
  methods = {name: cls(alpha=alpha) for name, cls in BETA_METHODS.items()}
  methods["hmix(r_alpha=0.5)"] = HMix(alpha=alpha, r_alpha=0.5)
  draws = to_numpy(_laws_batch(tuple(methods.values()), keys_for(1000, 5000), shape=(4, 5)))
  law, wrong = stats.beta(alpha, alpha).cdf, stats.beta(alpha, 2 * alpha).cdf
  for name, (lam, lam_joint) in zip(methods, draws, strict=True):
    p = ks_pvalue(lam, law)
    assert p > P_MIN, f"{name}(alpha={alpha}).sample_lam: KS p = {p:.2e} vs Beta({alpha}, {alpha}), N = 5000"
    p = ks_pvalue(lam_joint, law)
    assert p > P_MIN, f"{name}(alpha={alpha}).sample: KS p = {p:.2e} vs Beta({alpha}, {alpha}), N = 5000"
    p_wrong = ks_pvalue(lam, wrong)
    assert p_wrong < P_POWER, f"{name}(alpha={alpha}): KS fails to reject Beta({alpha}, {2 * alpha}): p = {p_wrong:.2e}"


def d_tilde_cdf(a: float, b: float, first: float | None = None):
  """CDF of ``w Beta(a+1, b) + (1 - w) Beta(b+1, a)``, ``w = a / (a + b)`` unless ``first`` is given."""
  w = a / (a + b) if first is None else first
  return lambda x: w * stats.beta(a + 1, b).cdf(x) + (1 - w) * stats.beta(b + 1, a).cdf(x)


@pytest.mark.parametrize(("a", "b"), [(0.5, 2.0), (1.0, 1.0), (2.0, 0.3), (0.2, None)])
def test_d_tilde_law(a, b):
  # seed 1200, N = 5000: KS against a/(a+b) Beta(a+1, b) + b/(a+b) Beta(b+1, a) at p > 1e-3;
  # power: the same sample rejects the untilded Beta(a, b) and, for a != b, the mixture with
  # swapped weights, at p < 1e-6.
  lam = np.asarray(lam_laws.sample_d_tilde(jax.random.key(1200), a, b, shape=(5000,)), dtype=np.float64)
  b = a if b is None else b
  p = ks_pvalue(lam, d_tilde_cdf(a, b))
  assert p > P_MIN, f"D~({a}, {b}): KS p = {p:.2e}, N = 5000"
  p_plain = ks_pvalue(lam, stats.beta(a, b).cdf)
  assert p_plain < P_POWER, f"D~({a}, {b}): KS fails to reject Beta({a}, {b}): p = {p_plain:.2e}"
  if a != b:
    p_swapped = ks_pvalue(lam, d_tilde_cdf(a, b, first=b / (a + b)))
    assert p_swapped < P_POWER, f"D~({a}, {b}): KS fails to reject swapped weights: p = {p_swapped:.2e}"


MIX_ALPHA, CUT_ALPHA, Q = 0.3, 2.0, 0.4
STOCHASTIC_SHAPE = (4, 5)


def stochastic_cdf(x):
  return Q * stats.beta(MIX_ALPHA, MIX_ALPHA).cdf(x) + (1 - Q) * stats.beta(CUT_ALPHA, CUT_ALPHA).cdf(x)


@jax.jit
def _stochastic_batch(method, keys):
  """Per key: ``sample_lam``, ``sample`` and a decoupled draw (lam and mask from separate keys)."""

  def one(key):
    key_lam, key_mask = jax.random.split(jax.random.fold_in(key, 1))
    lam = method.sample(key_lam, shape=STOCHASTIC_SHAPE).lam
    decoupled = (lam, method.sample(key_mask, shape=STOCHASTIC_SHAPE, lam=lam).mask)
    joint = method.sample(key, shape=STOCHASTIC_SHAPE)
    return method.sample(jax.random.fold_in(key, 2), shape=STOCHASTIC_SHAPE).lam, (joint.lam, joint.mask), decoupled

  return jax.vmap(one)(keys)


def mixup_branch(lam: np.ndarray, masks: np.ndarray) -> np.ndarray:
  """Whether each draw took the Mixup branch: its mask is the constant ``lam``.

  A CutMix mask is 0/1-valued, so it equals ``lam`` everywhere only for ``lam`` in {0, 1},
  which Beta(2, 2) in float32 essentially never gives.
  """
  return np.all(masks == lam.reshape((-1,) + (1,) * (masks.ndim - 1)), axis=tuple(range(1, masks.ndim)))


def test_stochastic_lam_laws():
  # seed 1300, N = 6000 draws on 4 x 5 of stochastic_mixup_cutmix(0.3, 2.0, q=0.4).
  # Marginal: sample_lam and sample's lam follow 0.4 Beta(0.3, 0.3) + 0.6 Beta(2, 2) (KS p > 1e-3).
  # Joint: the Mixup-branch frequency is within 4 SE of 0.4, Mixup-branch lam follows
  # Beta(0.3, 0.3) and CutMix-branch lam Beta(2, 2) (KS p > 1e-3 each). Power: with lam and mask
  # from independent keys, the Mixup-branch lam (then the mixture) is rejected at p < 1e-6.
  n = 6000
  method = StochasticMixupCutMix(mixup_alpha=MIX_ALPHA, cutmix_alpha=CUT_ALPHA, q=Q)
  lam_only, (lam, masks), (lam_dec, masks_dec) = to_numpy(_stochastic_batch(method, keys_for(1300, n)))
  for what, sample in (("sample_lam", lam_only), ("sample", lam)):
    p = ks_pvalue(sample, stochastic_cdf)
    assert p > P_MIN, f"stochastic {what}: KS p = {p:.2e} vs 0.4 Beta(0.3, 0.3) + 0.6 Beta(2, 2), N = {n}"
  mixup = mixup_branch(lam, masks)
  z = abs(mixup.mean() - Q) / math.sqrt(Q * (1 - Q) / n)
  assert z < Z_GLOBAL, f"Mixup-branch frequency {mixup.mean():.4f} vs q = {Q}: |z| = {z:.2f}, N = {n}"
  assert np.all(np.isin(masks[~mixup], (0.0, 1.0))), "CutMix-branch masks must be 0/1"
  p = ks_pvalue(lam[mixup], stats.beta(MIX_ALPHA, MIX_ALPHA).cdf)
  assert p > P_MIN, f"Mixup-branch lam: KS p = {p:.2e} vs Beta(0.3, 0.3), {mixup.sum()} draws"
  p = ks_pvalue(lam[~mixup], stats.beta(CUT_ALPHA, CUT_ALPHA).cdf)
  assert p > P_MIN, f"CutMix-branch lam: KS p = {p:.2e} vs Beta(2, 2), {(~mixup).sum()} draws"
  decoupled = mixup_branch(lam_dec, masks_dec)
  p = ks_pvalue(lam_dec[decoupled], stats.beta(MIX_ALPHA, MIX_ALPHA).cdf)
  assert p < P_POWER, f"decoupled branch and lam not rejected: KS p = {p:.2e}"


def resizemix_cdf(d: int, low: float = 0.1, high: float = 0.8):
  """CDF of ``1 - tau^d`` with ``tau ~ U(low, high)``: ``P(tau >= (1 - x)^(1/d))``."""
  return lambda x: np.clip((high - np.clip(1.0 - x, 0.0, 1.0) ** (1.0 / d)) / (high - low), 0.0, 1.0)


@pytest.mark.parametrize("shape", [GRID_2D, GRID_3D], ids=shape_id)
def test_resizemix_lam_law(shape):
  # seed 1400, N = 5000: sample_lam follows 1 - tau^2 and sample's lam 1 - tau^d, tau ~ U(0.1, 0.8)
  # (KS p > 1e-3); power: sample_lam rejects 1 - tau^3 and 1 - tau at p < 1e-6.
  d = len(shape)
  lam_only, lam = to_numpy(_laws_batch((ResizeMix(),), keys_for(1400, 5000), shape=shape))[0]
  p = ks_pvalue(lam_only, resizemix_cdf(2))
  assert p > P_MIN, f"resizemix sample_lam: KS p = {p:.2e} vs 1 - tau^2, N = 5000"
  p = ks_pvalue(lam, resizemix_cdf(d))
  assert p > P_MIN, f"resizemix sample on {shape}: KS p = {p:.2e} vs 1 - tau^{d}, N = 5000"
  for wrong in (3, 1):
    p_bad = ks_pvalue(lam_only, resizemix_cdf(wrong))
    assert p_bad < P_POWER, f"resizemix: KS fails to reject 1 - tau^{wrong}: p = {p_bad:.2e}"


# -- 2. per-pixel means at fixed lam ---------------------------------------------------------------

N_PIXEL = 8000  # draws per family and lam in the per-pixel tests
GMIX_OPTIONS = tuple(itertools.product(("code", "text"), (True, False)))


def fmix_moments(lam: float, shape) -> tuple[np.ndarray, np.ndarray]:
  """The field is stationary and its top ``k = round(lam |S|)`` pixels become 1: mean ``k / |S|``."""
  size = math.prod(shape)
  p = np.full(shape, round(Fraction(f32(lam)) * size) / size)
  return p, p * (1 - p)


def stochastic_moments(lam: float, q: float, shape) -> tuple[np.ndarray, np.ndarray]:
  """Mixup (``M = lam``) with probability ``q``, CutMix clip otherwise."""
  cut_mean, _ = cutmix_moments(lam, shape, "clip")
  mean = q * f32(lam) + (1 - q) * cut_mean
  return mean, q * f32(lam) ** 2 + (1 - q) * cut_mean - mean**2


def bernoulli_moments(lam: float, shape) -> tuple[np.ndarray, np.ndarray]:
  """``P(M_j = 1)`` is ``lam`` quantised to multiples of ``2^-16`` (two 16-bit uniforms per word)."""
  p = np.full(shape, round(Fraction(f32(lam)) * 65536) / 65536)
  return p, p * (1 - p)


def mixup_moments(lam: float, shape) -> tuple[np.ndarray, np.ndarray]:
  return np.full(shape, f32(lam)), np.zeros(shape)


def box_reference(placement: str, r: float | None = None):
  """The CutMix (``r`` None) or HMix reference for one placement, as ``(lam, shape) -> moments``."""
  if r is None:
    return lambda lam, shape: cutmix_moments(lam, shape, placement)
  return lambda lam, shape: hmix_moments(lam, r, shape, placement)


def gmix_reference(scale: str, symmetric: bool):
  return lambda lam, shape: gmix_moments(lam, shape, scale, symmetric)


PIXEL_FAMILIES = {
  "mixup": (Mixup(), mixup_moments),
  "bernoulli": (Bernoulli(), bernoulli_moments),
  "fmix": (FMix(), fmix_moments),
  "cutmix clip": (CutMix(), box_reference("clip")),
  "cutmix inside": (CutMix(placement="inside"), box_reference("inside")),
  **{
    f"hmix r={r} {placement}": (HMix(r=r, placement=placement), box_reference(placement, r))
    for r in (0.5, 1.0)
    for placement in ("clip", "inside")
  },
  **{
    f"gmix {scale} symmetric={symmetric}": (GMix(scale=scale, symmetric=symmetric), gmix_reference(scale, symmetric))
    for scale, symmetric in GMIX_OPTIONS
  },
  "stochastic q=0.4": (StochasticMixupCutMix(q=0.4), lambda lam, shape: stochastic_moments(lam, 0.4, shape)),
}


@pytest.mark.parametrize("lam", [0.3, 0.5, 0.8])
@pytest.mark.parametrize("shape", [GRID_2D, GRID_1D], ids=shape_id)
def test_pixel_means_match_exact_references(shape, lam):
  # seed 2000, N = 8000 masks per family at a fixed lam on a 12 x 17 or a 23-pixel grid. Exact
  # per-pixel mean and variance of M, from numpy:
  # * Mixup: lam (zero variance); Bernoulli: round(65536 lam) / 65536 (binomial);
  # * FMix: round(lam |S|) / |S| (stationary field, top pixels set);
  # * CutMix clip / inside: 1 - P(box covers the pixel), enumerating every centre (start
  #   centre - s // 2, clipped) or every inside start, sides floor(sqrt(1 - lam) n_k) exactly;
  # * HMix (r = 0.5, 1.0; clip, inside): M = 0 in the box and lam / (1 - A) outside,
  #   enumerating every position; its image mean is lam but its per-pixel mean is not;
  # * GMix (code / text scale, symmetric or not): exp(-pi ||i - p||^2 / c) over every centre p;
  # * Stochastic (q = 0.4): q lam + (1 - q) (CutMix clip).
  # Tolerance: 4.5 SE per pixel, 4 SE for the mask total and a centred contrast (see
  # pixel_mean_failures). Power: the HMix draws reject a per-pixel mean of lam and the
  # symmetric GMix draws at lam < 0.5 the non-symmetric law, at |z| > 6.
  names = list(PIXEL_FAMILIES)
  draws = masks_at([PIXEL_FAMILIES[name][0] for name in names], lam, shape, seed=2000, n=N_PIXEL)
  failures = []
  for name, masks in zip(names, draws, strict=True):
    masks = np.asarray(masks, np.float64)
    mean, var = PIXEL_FAMILIES[name][1](lam, shape)
    failures += pixel_mean_failures(masks, mean, var, f"{name} lam={lam} {shape}")
    if name.startswith("hmix"):
      assert abs(mean.mean() - f32(lam)) < 1e-9, "HMix reference: the image mean must be lam"
      z = pixel_z_max(masks, np.full(shape, f32(lam)), var)
      if not z > 6:
        failures.append(f"{name} lam={lam} {shape}: a flat per-pixel mean lam is not rejected (|z| = {z:.2f})")
    if name.startswith("gmix") and "symmetric=True" in name and lam < 0.5:
      wrong_mean, wrong_var = gmix_moments(lam, shape, name.split()[1], symmetric=False)
      z = pixel_z_max(masks, wrong_mean, wrong_var)
      if not z > 6:
        failures.append(f"{name} lam={lam} {shape}: the non-symmetric law is not rejected (|z| = {z:.2f})")
  assert not failures, "\n".join(failures)


def realised_boxes(masks: np.ndarray) -> list[tuple[int, ...]]:
  """Per draw, the first and last index of the box (``M == 0``) along each axis."""
  out = []
  for box in masks == 0:
    bounds = []
    for axis in range(box.ndim):
      covered = np.nonzero(box.any(axis=tuple(a for a in range(box.ndim) if a != axis)))[0]
      bounds += [int(covered[0]), int(covered[-1])] if covered.size else [-1, -1]
    out.append(tuple(bounds))
  return out


def test_cutmix_clip_box_law_chi_square():
  # seed 2300, N = 8000 masks at lam = 0.5 on 12 x 17 (sides 8 x 12, even, so the centring
  # convention matters). Chi-square of the realised clipped box (first and last covered row and
  # column) against the exact law from the 204 equally likely centres, p > 1e-3. Power: the
  # per-pixel means reject the other centring convention (start = centre - (s - 1) // 2) at
  # |z| > 10.
  lam, shape, n = 0.5, GRID_2D, 8000
  (masks,) = masks_at([CutMix()], lam, shape, seed=2300, n=n)
  masks = np.asarray(masks, np.float64)
  sides = exact_sides(cut_fraction(lam), shape)
  assert sides == [8, 12]
  expected: dict[tuple[int, ...], int] = {}
  for cell in realised_boxes(1.0 - all_boxes(shape, sides, "clip")):
    expected[cell] = expected.get(cell, 0) + 1
  observed = realised_boxes(masks)
  assert set(observed) <= set(expected), "a realised box that no centre produces"
  cells = sorted(expected)
  counts = np.array([observed.count(c) for c in cells], dtype=np.float64)
  probs = np.array([expected[c] for c in cells], dtype=np.float64) / sum(expected.values())
  p = stats.chisquare(counts, probs * n).pvalue
  assert p > P_MIN, f"cutmix clip box law: chi-square p = {p:.2e} over {len(cells)} cells, N = {n}"
  per_axis = []
  for size, side in zip(shape, sides, strict=True):
    starts = np.arange(size) - (side - 1) // 2
    index = np.arange(size)
    per_axis.append(((index[None, :] >= starts[:, None]) & (index[None, :] < starts[:, None] + side)).mean(0))
  wrong = 1.0 - functools.reduce(np.multiply.outer, per_axis)
  z_wrong = pixel_z_max(masks, wrong, wrong * (1 - wrong))
  assert z_wrong > 10, f"the other centring convention is not rejected: max |z| = {z_wrong:.2f}"


# -- 3. exactness ----------------------------------------------------------------------------------

EXACT_SHAPES = [GRID_2D, (16, 16), GRID_1D, GRID_3D, (8, 8, 8)]


def special_lams(n: int = 16) -> np.ndarray:
  """lam in {0, 1}, the perfect squares ``1 - (k/n)^2`` and cubes ``1 - (k/n)^3`` (exact in float32)."""
  k = np.arange(n + 1)
  return np.unique(np.concatenate([[0.0, 1.0], 1.0 - (k / n) ** 2, 1.0 - (k / n) ** 3])).astype(np.float32)


@functools.partial(jax.jit, static_argnames="shape")
def _exact_batch(keys, lams, rs, *, shape):
  def one(key, lam, r):
    return {
      "cutmix inside": CutMix(placement="inside").sample(key, shape=shape, lam=lam).mask,
      "hmix clip": HMix(r=r).sample(key, shape=shape, lam=lam).mask,
      "hmix inside": HMix(r=r, placement="inside").sample(key, shape=shape, lam=lam).mask,
      "fmix": FMix().sample(key, shape=shape, lam=lam).mask,
      "resizemix": ResizeMix().sample(key, shape=shape, lam=lam).mask,
      "gmix": jnp.stack([GMix(scale=s, symmetric=y).sample(key, shape=shape, lam=lam).mask for s, y in GMIX_OPTIONS]),
    }

  return jax.vmap(one)(keys, lams, rs)


@functools.cache
def exact_draws(shape) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
  """Seed 3000: 300 uniform (lam, r), the special lams with r = 1, and (lam, r) corners."""
  rng = np.random.default_rng(3000)
  special = special_lams()
  corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [0.5, 0.0], [0.5, 1.0]])
  lams = np.concatenate([rng.uniform(size=300), special, corners[:, 0]]).astype(np.float32)
  rs = np.concatenate([rng.uniform(size=300), np.ones(len(special)), corners[:, 1]]).astype(np.float32)
  masks = _exact_batch(keys_for(3000, len(lams)), jnp.asarray(lams), jnp.asarray(rs), shape=shape)
  return lams, rs, {name: np.asarray(m, np.float64) for name, m in masks.items()}


def box_of(zero: np.ndarray) -> tuple[list[int], bool]:
  """Bounding-box sides of a zero set, and whether the set is exactly that box (empty: zeros)."""
  if not zero.any():
    return [0] * zero.ndim, True
  sides = []
  for axis in range(zero.ndim):
    covered = np.nonzero(zero.any(axis=tuple(a for a in range(zero.ndim) if a != axis)))[0]
    sides.append(int(covered[-1] - covered[0] + 1))
  return sides, int(zero.sum()) == math.prod(sides)


def nonempty_sides(fraction: float, shape) -> list[int]:
  """Exact box sides; all zero when any side is zero (the box is then empty)."""
  sides = exact_sides(fraction, shape)
  return [0] * len(shape) if min(sides) == 0 else sides


@pytest.mark.parametrize("shape", EXACT_SHAPES, ids=shape_id)
def test_cutmix_inside_box_sides_are_exact(shape):
  # seed 3000: 300 uniform lam plus lam in {0, 1}, the perfect squares and cubes on a 16-grid;
  # the box (M == 0) is exactly a box with sides floor((1 - lam)^(1/d) n_k) in exact rational
  # arithmetic (tolerance 0), so its area is the product of those sides.
  lams, _, masks = exact_draws(shape)
  for lam, mask in zip(lams, masks["cutmix inside"], strict=True):
    want = nonempty_sides(cut_fraction(lam), shape)
    sides, is_box = box_of(mask == 0)
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert is_box and sides == want, f"lam={lam!r} on {shape}: box {sides} (is a box: {is_box}), expected {want}"
    assert (mask == 0).sum() == math.prod(want)


@pytest.mark.parametrize("shape", EXACT_SHAPES, ids=shape_id)
def test_hmix_mask_mean_and_values_are_exact(shape):
  # seed 3000: 300 uniform (lam, r), special lams with r = 1, and corners, both placements:
  # the mask mean equals lam to 1e-6; M = 0 exactly on a box and lam / (1 - A) elsewhere
  # (relative 1e-6, A the box's area fraction); inside placement: the box sides are
  # floor(((1 - lam) r)^(1/d) n_k) exactly; clip placement: no larger than those.
  lams, rs, masks = exact_draws(shape)
  for placement in ("clip", "inside"):
    drawn = masks[f"hmix {placement}"]
    np.testing.assert_allclose(drawn.reshape(len(lams), -1).mean(1), lams, rtol=0, atol=1e-6)
    for lam, r, mask in zip(lams, rs, drawn, strict=True):
      what = f"hmix {placement} lam={lam!r} r={r!r} {shape}"
      if lam == 0:
        assert np.all(mask == 0), what
        continue
      box = mask == 0
      sides, is_box = box_of(box)
      assert is_box, f"{what}: the zero set is not a box"
      np.testing.assert_allclose(mask[~box], f32(lam) / (1 - box.mean()), rtol=1e-6, err_msg=what)
      want = nonempty_sides(cut_fraction(lam, r), shape)
      if placement == "inside":
        assert sides == want, f"{what}: sides {sides}, expected {want}"
      else:
        assert all(s <= w for s, w in zip(sides, want, strict=True)), f"{what}: sides {sides} exceed {want}"


@pytest.mark.parametrize("shape", EXACT_SHAPES, ids=shape_id)
def test_fmix_has_exactly_round_lam_ones(shape):
  # seed 3000: every lam of exact_draws; the mask is 0/1 with exactly round(lam |S|) ones
  # (round half to even, exact rational lam; tolerance 0).
  lams, _, masks = exact_draws(shape)
  assert set(np.unique(masks["fmix"])) <= {0.0, 1.0}
  size = math.prod(shape)
  want = np.array([round(Fraction(float(lam)) * size) for lam in lams])
  np.testing.assert_array_equal(masks["fmix"].reshape(len(lams), -1).sum(1), want)


@pytest.mark.parametrize("shape", EXACT_SHAPES, ids=shape_id)
def test_resizemix_mask_is_its_box(shape):
  # seed 3000: every lam of exact_draws; the zero set is a box fully inside the grid with sides
  # max(floor((1 - lam)^(1/d) n_k), 1) in exact arithmetic, and no box at lam = 1 (tolerance 0).
  lams, _, masks = exact_draws(shape)
  for lam, mask in zip(lams, masks["resizemix"], strict=True):
    want = [0] * len(shape) if lam >= 1 else [max(s, 1) for s in exact_sides(cut_fraction(lam), shape)]
    sides, is_box = box_of(mask == 0)
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert is_box and sides == want, f"resizemix lam={lam!r} {shape}: box {sides}, expected {want}"


@pytest.mark.parametrize("shape", EXACT_SHAPES, ids=shape_id)
def test_gmix_masks_lie_in_unit_interval(shape):
  # seed 3000: every lam of exact_draws, each scale and symmetry: values finite in [0, 1]; the
  # bump reaches exactly 1 at its centre when its nominal weight is > 0 and is 0 otherwise.
  lams, _, masks = exact_draws(shape)
  for index, (scale, symmetric) in enumerate(GMIX_OPTIONS):
    drawn = masks["gmix"][:, index].reshape(len(lams), -1)
    what = f"gmix {scale} symmetric={symmetric} {shape}"
    assert np.all(np.isfinite(drawn)) and drawn.min() >= 0.0 and drawn.max() <= 1.0, what
    bump_on_mask = symmetric & (lams < 0.5)
    weight = np.where(bump_on_mask, lams, 1.0 - lams)
    peak = np.where(bump_on_mask, drawn.max(1), 1.0 - drawn.min(1))
    np.testing.assert_array_equal(peak[weight > 0], 1.0, err_msg=what)
    np.testing.assert_array_equal(peak[weight == 0], 0.0, err_msg=what)


# -- 4. video (3-D) shapes ---------------------------------------------------------------------------


@pytest.mark.parametrize("lam", [0.4, 1 - 0.5**3])
def test_box_voxel_means_3d(lam):
  # seed 4000, N = 8000 masks per family on 4 x 6 x 8: CutMix clip (sides
  # floor((1 - lam)^(1/3) n_k), exponent 1/3: at lam = 7/8 exactly half of each side) and HMix
  # r = 0.75 clip / inside (sides floor(((1 - lam) r)^(1/3) n_k)); exact per-voxel moments by
  # enumeration over the 192 centres or every inside start; 4.5 SE per voxel, 4 SE global.
  if lam == 1 - 0.5**3:
    assert exact_sides(cut_fraction(lam), GRID_3D) == [2, 3, 4]
  families = {
    "cutmix clip": (CutMix(), box_reference("clip")),
    "hmix r=0.75 clip": (HMix(r=0.75), box_reference("clip", 0.75)),
    "hmix r=0.75 inside": (HMix(r=0.75, placement="inside"), box_reference("inside", 0.75)),
  }
  draws = masks_at([method for method, _ in families.values()], lam, GRID_3D, seed=4000, n=N_PIXEL)
  failures = []
  for (name, (_, reference)), masks in zip(families.items(), draws, strict=True):
    mean, var = reference(lam, GRID_3D)
    failures += pixel_mean_failures(np.asarray(masks, np.float64), mean, var, f"{name} 3-D lam={lam}")
  assert not failures, "\n".join(failures)


# -- the vectorised Marsaglia-Tsang sampler behind every Beta(alpha, alpha) lam ------------------


@functools.partial(jax.jit, static_argnames=("n", "proposals", "rounds"))
def _beta_draws(key, a, b, *, n, proposals, rounds=_gamma.ROUNDS):
  return _gamma.beta(key, a, b, (n,), proposals=proposals, rounds=rounds)


@pytest.mark.parametrize(("rounds", "proposals"), [(2, 4), (8, 1)])
@pytest.mark.parametrize(("a", "b"), [(0.1, 0.1), (0.4, 0.4), (1.0, 1.0), (0.5, 3.0), (8.0, 8.0), (1.2, 0.2)])
def test_vectorised_beta_law(a, b, rounds, proposals):
  # seed 1500, N = 20000: KS against scipy's Beta(a, b) at p > 1e-3; power: the same draws reject
  # Beta(a, 1.5 b) at p < 1e-6. 8 rounds of 1 proposal take about 5 % of the draws from the later
  # rounds, so a fault in the selection across rounds would show as a 5 % contamination.
  lam = np.asarray(_beta_draws(jax.random.key(1500), a, b, n=20000, proposals=proposals, rounds=rounds), np.float64)
  assert np.all((lam >= 0.0) & (lam <= 1.0))
  p = ks_pvalue(lam, stats.beta(a, b).cdf)
  assert p > P_MIN, f"Beta({a}, {b}), {rounds} x {proposals} proposals: KS p = {p:.2e}, N = 20000"
  p_wrong = ks_pvalue(lam, stats.beta(a, 1.5 * b).cdf)
  assert p_wrong < P_POWER, f"Beta({a}, {b}): KS fails to reject Beta({a}, {1.5 * b}): p = {p_wrong:.2e}"


@pytest.mark.parametrize("a", [0.3, 1.0, 5.0])
def test_vectorised_gamma_law(a):
  # seed 1501, N = 20000, 8 rounds of one proposal: KS of exp(log G) against scipy's Gamma(a) at p > 1e-3.
  draw = jax.jit(lambda k: _gamma.log_gamma(k, a, (20000,), proposals=1, rounds=8))
  g = np.exp(np.asarray(draw(jax.random.key(1501)), np.float64))
  p = stats.kstest(g, stats.gamma(a).cdf).pvalue
  assert p > P_MIN, f"Gamma({a}): KS p = {p:.2e}, N = 20000"


@pytest.mark.parametrize(("rounds", "proposals"), [(2, 4), (8, 1), (3, 1)])
def test_gamma_cpu_and_accelerator_forms_draw_the_same(rounds, proposals):
  """The CPU's rounds in turn and the accelerator's rounds side by side keep the same proposal
  (and the same fallback): 20,000 Beta(0.3, 2) draws equal bit for bit. With 1 proposal a round,
  about 5 % of the draws reach a second round; with 3 rounds, 1 in 10,000 falls back."""
  from msda_jax import _backend

  def form(platform):
    with _backend.forced(platform):
      return np.asarray(_beta_draws(jax.random.key(1506), 0.3, 2.0, n=20000, proposals=proposals, rounds=rounds))

  # _beta_draws is jitted: the static platform must reach its trace, so compile each form apart.
  _beta_draws.clear_cache()
  cpu = form("cpu")
  _beta_draws.clear_cache()
  accelerator = form("accelerator")
  _beta_draws.clear_cache()
  np.testing.assert_array_equal(cpu, accelerator)


def _float32_tail_probabilities(a):
  """Exact probabilities that a correctly rounded float32 ``Beta(a, a)`` draw is within 1e-7 of 1
  (the floats from ``float32(1 - 1e-7) = 1 - 2^-23`` up) and of 0 (up to ``float32(1e-7)``)."""
  hi, lo = np.float32(1 - 1e-7), np.float32(1e-7)
  law = stats.beta(a, a)
  above = law.sf(float(hi) - 2.0**-25)  # halfway to the float below hi (spacing 2^-24 there)
  below = law.cdf((float(lo) + float(np.nextafter(lo, np.float32(1)))) / 2)
  return hi, lo, above, below


@pytest.mark.parametrize("a", [0.1, 0.2])
def test_beta_float32_tails_are_correctly_rounded(a):
  # seed 1505, N = 200000 Beta(a, a) draws: the share within 1e-7 of 1 and of 0 against the exact
  # share of a correctly rounded float32 Beta (scipy), within 3 standard errors each (at a = 0.1
  # about 10.5 % and 10.1 %, SE 0.07 %). Power: the same log-Gamma draws turned into lam as
  # exp(log G_a - logaddexp(log G_a, log G_b)) put too many draws at 1 (about 6 SE at a = 0.1, 2 SE
  # at a = 0.2 at this size), and are rejected beyond 5 SE at a = 0.1.
  n = 200000
  hi, lo, above, below = _float32_tail_probabilities(a)
  key = jax.random.key(1505)
  lam = np.asarray(_beta_draws(key, a, a, n=n, proposals=_gamma.PROPOSALS))
  z = lambda share, p: (share - p) / np.sqrt(p * (1 - p) / n)
  z_above, z_below = z(np.mean(lam >= hi), above), z(np.mean(lam <= lo), below)
  assert abs(z_above) < 3 and abs(z_below) < 3, f"Beta({a}, {a}): z = {z_above:.1f} near 1, {z_below:.1f} near 0"
  both = jnp.stack([jnp.full((n,), a, jnp.float32)] * 2)
  log_a, log_b = jax.jit(lambda k: _gamma.log_gamma(k, both, (2, n)))(key)
  naive = np.asarray(jnp.exp(log_a - jnp.logaddexp(log_a, log_b)))
  assert np.array_equal(naive <= lo, lam <= lo)  # the same draws
  if a == 0.1:
    assert z(np.mean(naive >= hi), above) > 5, "the test cannot tell the rounding of lam next to 1"


def test_vectorised_beta_law_with_a_key_of_another_implementation():
  # seed 1503, N = 20000, an "rbg" key (its words come from jax.random.bits, not the inline
  # Threefry hash): KS against scipy's Beta(0.4, 0.4) at p > 1e-3, and rejects Beta(0.4, 0.6).
  lam = np.asarray(_beta_draws(jax.random.key(1503, impl="rbg"), 0.4, 0.4, n=20000, proposals=4), np.float64)
  assert ks_pvalue(lam, stats.beta(0.4, 0.4).cdf) > P_MIN
  assert ks_pvalue(lam, stats.beta(0.4, 0.6).cdf) < P_POWER


def test_vectorised_gamma_words_are_apart_from_jax_random_draws():
  """The sampler's words carry a tag bit in the hash's high counter, so a key also given to
  jax.random yields other words (threefry keys hash counters (0, i) for draws below 2^32 words)."""
  key = jax.random.key(1504)
  ours = np.asarray(_gamma._words(key, (0,), (4096,))[0])
  theirs = np.asarray(jax.random.bits(key, (4096,), jnp.uint32))
  assert len(np.intersect1d(ours, theirs)) < 4  # by chance: 4096^2 / 2^32 = 0.004 expected; the same words: 4096
  assert len(np.unique(ours)) > 4090
  other_round = np.asarray(_gamma._words(key, (1,), (4096,))[0])
  assert len(np.intersect1d(ours, other_round)) < 4


def test_vectorised_beta_under_vmap_equals_one_key_at_a_time():
  """Under vmap each key's rounds select its own first accepted proposal."""
  keys = jax.random.split(jax.random.key(1502), 64)
  one = jax.jit(lambda k: _gamma.beta(k, 0.7, 0.7, proposals=1, rounds=8))
  batched = jax.jit(jax.vmap(lambda k: _gamma.beta(k, 0.7, 0.7, proposals=1, rounds=8)))(keys)
  # Same draws up to the float32 rounding of two different compiled programs (an overwritten
  # draw would differ at order 1).
  np.testing.assert_allclose(np.asarray(batched), np.asarray([one(k) for k in keys]), rtol=1e-5, atol=1e-7)
