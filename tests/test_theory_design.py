"""The mask designer: simplex least squares, recovery of known mixtures, the realised law, Theorem 2."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import msda_jax
from msda_jax import theory
from msda_jax.theory import design, laws, translation

LAM = 0.5
SHAPE = (5, 5)


def single(method, shape=SHAPE, lam=LAM):
  return design.candidate_coefficients(method, shape=shape, lam=lam)


def test_simplex_lstsq_reaches_the_constrained_optimum():
  """Seed 0, 25 random instances (K = 6, T = 30): objective within 1e-9 of SLSQP's, weights on the simplex."""
  rng = np.random.default_rng(0)
  for _ in range(25):
    f = rng.normal(size=(6, 30))
    t = rng.normal(size=30)
    w = design.simplex_lstsq(f, t)
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
    reference = scipy.optimize.minimize(
      lambda v, f=f, t=t: np.sum((v @ f - t) ** 2),
      np.full(6, 1 / 6),
      method="SLSQP",
      bounds=[(0, 1)] * 6,
      constraints=[{"type": "eq", "fun": lambda v: v.sum() - 1}],
      options={"ftol": 1e-14, "maxiter": 500},
    )
    assert np.sum((w @ f - t) ** 2) <= reference.fun + 1e-9


def test_recovers_a_known_mixture_at_a_fixed_lam_from_the_full_grid():
  """0.2 Mixup + 0.5 CutMix + 0.3 GMix at lam = 1/2 on 5 x 5: residual ~0 and those weights back."""
  parts = {0: 0.2, 2: 0.5, 6: 0.3}  # indices in default_candidates(): mixup, cutmix, gmix (code)
  grid = design.default_candidates()
  target = sum(p * single(grid[i]) for i, p in parts.items())
  result = theory.design_mask_law(target, shape=SHAPE, lam=LAM)
  assert result.residual < 1e-9 and result.relative_residual < 1e-9
  expected = np.zeros(len(grid))
  expected[list(parts)] = list(parts.values())
  np.testing.assert_allclose(result.weights, expected, atol=1e-6)
  assert len(result.method.methods) == 3


def test_recovers_a_known_mixture_of_theorem1_coefficients_and_of_the_translation_map():
  """lam averaged (general form, realised weight) on 4 x 4, and Figure 4's map of the same mixture at lam = 1/2."""
  candidates = (msda_jax.Mixup(), msda_jax.CutMix(), msda_jax.HMix(r=0.5))
  coefficients = [design.candidate_coefficients(m, shape=(4, 4)) for m in candidates]
  target = 0.6 * coefficients[0] + 0.4 * coefficients[2]
  result = theory.design_mask_law(target, candidates, shape=(4, 4))
  np.testing.assert_allclose(result.weights, [0.6, 0.0, 0.4], atol=1e-6)
  maps = [np.asarray(translation.matrix_translation_map(single(m, (6, 6)), shape=(6, 6))) for m in candidates]
  target_map = 0.7 * maps[0] + 0.3 * maps[1]
  assert target_map.shape == translation.map_shape((6, 6))
  from_map = theory.design_mask_law(target_map, candidates, shape=(6, 6), lam=LAM)
  np.testing.assert_allclose(from_map.weights, [0.7, 0.3, 0.0], atol=1e-5)


def test_the_designed_mixture_realises_the_fitted_coefficients():
  """Seed 3, 40000 draws of the designed Mixture: a_jk(lam) and Theorem 1's a_jk within 5 standard errors."""
  grid = design.default_candidates()
  target = 0.5 * single(grid[0], (4, 4)) + 0.5 * single(grid[2], (4, 4))
  noise = np.random.default_rng(5).normal(size=(16, 16))
  target = target + 0.01 * (noise + noise.T)  # not attainable: the fit has a residual
  fixed = theory.design_mask_law(target, shape=(4, 4), lam=LAM)
  assert fixed.residual > 1e-4
  sampled = theory.mask_moments(jax.random.key(3), laws.fixed_lam_law(fixed.method, LAM, shape=(4, 4)), num_draws=40000)
  gap = np.abs(np.asarray(sampled.second) - fixed.fitted)
  assert np.all(gap <= 5 * np.asarray(sampled.second_stderr) + 1e-6), gap.max()
  averaged = theory.design_mask_law(design.candidate_coefficients(grid[4], shape=(4, 4)), shape=(4, 4))
  sampled = theory.mask_moments(jax.random.key(4), laws.swap_law(averaged.method, shape=(4, 4)), num_draws=40000)
  gap = np.abs(np.asarray(sampled.second) - averaged.fitted)
  assert np.all(gap <= 5 * np.asarray(sampled.second_stderr) + 1e-6), gap.max()


def test_a_profile_between_mixup_and_cutmix_beside_theorem2():
  """A Gaussian-decay a_jk between Mixup (flat) and CutMix (local): the mixture beats every single
  candidate; Theorem 2 realises the target exactly but its masks leave [0, 1] (seed 0, 2000 draws)."""
  shape = (6, 6)
  rows, cols = np.unravel_index(np.arange(36), shape)
  distance2 = (rows[:, None] - rows[None]) ** 2 + (cols[:, None] - cols[None]) ** 2
  target = (1 - LAM) ** 2 + LAM * (1 - LAM) * np.exp(-distance2 / (2 * 1.5**2))
  result = theory.design_mask_law(target, shape=shape, lam=LAM)
  singles = [np.linalg.norm(row - target.reshape(-1)) for row in result.features]
  assert result.residual < min(singles) - 1e-6, (result.residual, singles)
  assert np.count_nonzero(result.weights > 1e-3) >= 2
  keys = jax.random.split(jax.random.key(0), 2000)
  masks = jax.vmap(lambda k: theory.theorem2_mask(k, target, LAM, shape=shape))(keys)
  outside = np.mean((np.asarray(masks) < 0) | (np.asarray(masks) > 1))
  assert outside > 0.05, outside
  check = theory.theorem2_check(jax.random.key(2), target, LAM, shape=shape, num_draws=2000)
  assert float(check.max_abs_error) < 5 * float(check.standard_error) + 1e-6
  drawn = jax.vmap(lambda k: result.method.sample(k, shape=shape, lam=LAM).mask)(
    jax.random.split(jax.random.key(1), 64)
  )
  assert float(drawn.min()) >= 0.0 and float(drawn.max()) <= 1.0


def test_bad_targets_and_candidates_raise_before_any_work():
  with pytest.raises(ValueError, match=r"target must be a coefficient matrix \[d, d\] = \[25, 25\]"):
    theory.design_mask_law(np.zeros((4, 4)), shape=SHAPE)
  with pytest.raises(ValueError, match="target must be finite"):
    theory.design_mask_law(np.full((25, 25), np.nan), shape=SHAPE)
  with pytest.raises(ValueError, match="lam"):
    theory.design_mask_law(np.zeros((25, 25)), shape=SHAPE, lam=1.5)
  with pytest.raises(ValueError, match="candidates must be a non-empty"):
    theory.design_mask_law(np.zeros((25, 25)), [], shape=SHAPE)
  with pytest.raises(ValueError, match="reads the images"):
    theory.design_mask_law(np.zeros((25, 25)), [msda_jax.SaliencyMix()], shape=SHAPE)
  with pytest.raises(ValueError, match="pass key="):
    theory.design_mask_law(np.zeros((25, 25)), [msda_jax.FMix()], shape=SHAPE, lam=LAM)
  with pytest.raises(ValueError, match="features must be"):
    design.simplex_lstsq(jnp.zeros((2, 3)), jnp.zeros(4))
