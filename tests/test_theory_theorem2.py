"""Theorem 2: the corrected mask realises attainable targets; unattainable ones raise.

Monte Carlo tests state their seed, number of draws and tolerance; each compares a mean of
``(1 - M)(1 - M)^T`` with its target within 5 standard errors (the largest per-entry standard
error for ``theorem2_check``, the entry's own one elsewhere).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from msda_jax.masks import CutMix
from msda_jax.theory.theorem2 import (
  sampled_coefficients,
  theorem2_check,
  theorem2_mask,
  theorem2_printed_mask,
  theorem2_root,
)

NUM_DRAWS = 20_000


def box_coefficients(n: int, lam: float, placement: str) -> np.ndarray:
  """Exact CutMix ``a_jk = mean over box positions of (1 - M_j)(1 - M_k)`` on an ``n x n`` image.

  The box has side ``s = floor(sqrt(1 - lam) n)``. ``"inside"``: every start in
  ``0 .. n - s``; ``"clip"``: centre at every pixel, start ``centre - s // 2``, clipped;
  ``"wrap"``: every start, the box wrapping around the image (a torus).
  """
  s = math.floor(math.sqrt(1.0 - lam) * n)
  index = np.arange(n)
  if placement == "inside":
    rows = [(index >= a) & (index < a + s) for a in range(n - s + 1)]
  elif placement == "clip":
    rows = [(index >= c - s // 2) & (index < c - s // 2 + s) for c in range(n)]
  else:
    rows = [((index - a) % n) < s for a in range(n)]
  boxes = np.array([(r1[:, None] & r2[None, :]).ravel() for r1 in rows for r2 in rows], np.float64)
  return boxes.T @ boxes / len(boxes)


def smooth_target(lam: float, n: int, scale: float) -> np.ndarray:
  """``(1 - lam)^2 1 1^T`` plus a PSD Gaussian kernel over the pixels of an ``n x n`` grid."""
  grid = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), -1).reshape(-1, 2)
  dist2 = np.sum((grid[:, None] - grid[None, :]) ** 2, -1)
  return (1.0 - lam) ** 2 + scale * np.exp(-dist2 / 4.0)


def test_mixup_target_gives_the_mixup_mask():
  lam = 0.3
  a = np.full((16, 16), (1.0 - lam) ** 2)
  np.testing.assert_allclose(theorem2_root(a, lam), 0.0, atol=1e-6)
  mask = theorem2_mask(jax.random.key(0), a, lam, shape=(4, 4))
  np.testing.assert_allclose(mask, lam, atol=1e-6)


@pytest.mark.parametrize("lam", [0.2, 0.5, 0.65, 1.3, -0.5])
def test_root_squares_to_the_target(lam):
  a = smooth_target(lam, 4, 0.1)
  s = np.asarray(theorem2_root(a, lam))
  np.testing.assert_allclose(s, s.T, atol=1e-6)
  assert np.linalg.eigvalsh(s.astype(np.float64))[0] > -1e-5
  # Eigenvalues within tol = 10 eps (||A||_F + (1 - lam)^2 d) of 0 are zeroed: S S is off by <= tol.
  tol = 10 * np.finfo(np.float32).eps * (np.linalg.norm(a) + (1.0 - lam) ** 2 * a.shape[0])
  np.testing.assert_allclose(s @ s, a - (1.0 - lam) ** 2, atol=tol + 1e-6)


@pytest.mark.parametrize(("lam", "scale"), [(0.2, 0.05), (0.65, 0.1), (-0.5, 0.3)])
def test_mask_realises_psd_targets(lam, scale):
  # seed 1, 20_000 draws, 4 x 4 pixels; tolerance 5 (largest) standard errors.
  a = smooth_target(lam, 4, scale)
  err, se = theorem2_check(jax.random.key(1), a, lam, shape=(4, 4), num_draws=NUM_DRAWS)
  assert float(err) < 5 * float(se), (float(err), float(se))


def test_mask_realises_a_target_entrywise_and_has_mean_lam():
  # seed 2, 20_000 masks drawn one by one with theorem2_mask; each entry within 5 of its own
  # standard errors; the mask mean within 5 standard errors of lam.
  lam, shape = 0.35, (3, 4)
  grid = np.stack(np.meshgrid(np.arange(3), np.arange(4), indexing="ij"), -1).reshape(-1, 2)
  kernel = np.exp(-np.sum(np.abs(grid[:, None] - grid[None, :]), -1) / 2.0)  # Laplace kernel: PSD
  a = (1.0 - lam) ** 2 + 0.2 * kernel
  keys = jax.random.split(jax.random.key(2), NUM_DRAWS)
  masks = jax.vmap(lambda k: theorem2_mask(k, a, lam, shape=shape))(keys)
  estimate, se = sampled_coefficients(masks)
  z = np.abs(np.asarray(estimate) - a) / np.asarray(se)
  assert z.max() < 5, z.max()
  mean = np.asarray(masks).reshape(NUM_DRAWS, -1)
  assert np.all(np.abs(mean.mean(0) - lam) < 5 * mean.std(0) / math.sqrt(NUM_DRAWS))
  assert float(masks.min()) < 0.0 or float(masks.max()) > 1.0  # real-valued, leaves [0, 1]


def test_bruteforce_cutmix_matches_the_library_sampler():
  # The numpy enumeration is the library's CutMix: seed 3, 20_000 inside-placed masks of 6 x 6.
  n, lam = 6, 0.5
  keys = jax.random.split(jax.random.key(3), NUM_DRAWS)
  masks = jax.vmap(lambda k: CutMix(placement="inside").sample(k, shape=(n, n), lam=lam).mask)(keys)
  estimate, se = sampled_coefficients(masks)
  exact = box_coefficients(n, lam, "inside")
  assert np.max(np.abs(np.asarray(estimate) - exact) - 5 * np.asarray(se)) < 1e-6


@pytest.mark.parametrize("placement", ["inside", "clip"])
def test_cutmix_coefficients_are_not_attainable(placement):
  # A box that stays inside (or is clipped at) the image covers border pixels less often than
  # central ones, so A - (1 - lam)^2 1 1^T has a negative eigenvalue for every lam in (0, 1).
  n = 8
  for lam in np.arange(0.05, 1.0, 0.05):
    a = box_coefficients(n, float(lam), placement)
    smallest = np.linalg.eigvalsh(a - (1.0 - lam) ** 2)[0]
    assert smallest < -0.1, (lam, smallest)
    with pytest.raises(ValueError, match=r"not attainable.*smallest eigenvalue -\d.*tolerance"):
      theorem2_root(a, float(lam))


def test_cutmix_coefficients_fail_along_a_named_direction():
  # The quadratic form is negative at v = 1 - t (b - (1 - lam) 1), b the box coverage per pixel.
  n, lam = 8, 0.75
  a = box_coefficients(n, lam, "inside")
  target = a - (1.0 - lam) ** 2
  coverage = np.diag(a)  # E[(1 - M_j)^2] = E[1 - M_j] for a 0/1 mask
  v = np.ones(n * n) - 0.5 * (coverage - (1.0 - lam))
  assert v @ target @ v < 0


def test_wrapped_box_with_exact_area_is_attainable_and_realised():
  # A box wrapping around the image covers every pixel alike; at lam = 0.75 on 8 x 8 its area is
  # exactly 16 / 64, so E[1 - M] = (1 - lam) 1 and the condition holds. seed 4, 20_000 draws.
  n, lam = 8, 0.75
  a = box_coefficients(n, lam, "wrap")
  err, se = theorem2_check(jax.random.key(4), a, lam, shape=(n, n), num_draws=NUM_DRAWS)
  assert float(err) < 5 * float(se), (float(err), float(se))
  # With the floor, lam = 0.25 gives a 6 x 6 box (area 0.5625, not 0.75): unattainable.
  with pytest.raises(ValueError, match="not attainable"):
    theorem2_root(box_coefficients(n, 0.25, "wrap"), 0.25)


@pytest.mark.parametrize("lam", [0.2, 0.8])
def test_printed_construction_misses_the_target(lam):
  # The printed M = 1 - lam + S Z gives A + (2 lam - 1) 1 1^T. seed 5, 20_000 draws.
  a = smooth_target(lam, 3, 0.1)
  err, se = theorem2_check(jax.random.key(5), a, lam, shape=(3, 3), num_draws=NUM_DRAWS, printed=True)
  assert abs(float(err) - abs(2 * lam - 1)) < 5 * float(se)
  assert float(err) > 20 * float(se)
  keys = jax.random.split(jax.random.key(6), NUM_DRAWS)
  masks = jax.vmap(lambda k: theorem2_printed_mask(k, a, lam, shape=(3, 3)))(keys)
  estimate, se_entry = sampled_coefficients(masks)
  printed_moment = a + (2 * lam - 1)
  assert np.max(np.abs(np.asarray(estimate) - printed_moment) / np.asarray(se_entry)) < 5


def test_printed_construction_is_right_only_at_one_half():
  lam = 0.5
  a = smooth_target(lam, 3, 0.1)
  err, se = theorem2_check(jax.random.key(7), a, lam, shape=(3, 3), num_draws=NUM_DRAWS, printed=True)
  assert float(err) < 5 * float(se)


def test_unattainable_target_raises_with_eigenvalue_and_tolerance():
  lam = 0.4
  a = np.full((4, 4), 0.5 * (1.0 - lam) ** 2)  # A - (1 - lam)^2 1 1^T = -0.18 1 1^T, eigenvalue -0.72
  with pytest.raises(ValueError, match=r"lam = 0\.4.*smallest eigenvalue -0\.72.*tolerance"):
    theorem2_root(a, lam)
  with pytest.raises(ValueError, match="not attainable"):
    theorem2_mask(jax.random.key(0), a, lam, shape=(2, 2))


def test_rounding_within_tolerance_is_clipped():
  lam = 0.5
  a = np.full((9, 9), 0.25, np.float32) - 1e-7 * np.eye(9, dtype=np.float32)
  s = theorem2_root(a, lam)
  assert np.all(np.isfinite(s)) and float(jnp.max(jnp.abs(s))) < 1e-3
  with pytest.raises(ValueError, match="not attainable"):
    theorem2_root(a, lam, rtol=0.0)


def test_bad_matrices_raise():
  with pytest.raises(ValueError, match="square"):
    theorem2_root(np.zeros((3, 4)), 0.5)
  with pytest.raises(ValueError, match="square"):
    theorem2_root(np.zeros(4), 0.5)
  asymmetric = np.full((2, 2), 0.25) + np.array([[0.1, 0.05], [0.0, 0.1]])
  with pytest.raises(ValueError, match="symmetric"):
    theorem2_root(asymmetric, 0.5)
  with pytest.raises(ValueError, match="pixels"):
    theorem2_mask(jax.random.key(0), np.full((4, 4), 0.25), 0.5, shape=(3, 3))
  with pytest.raises(ValueError, match="num_draws"):
    theorem2_check(jax.random.key(0), np.full((4, 4), 0.25), 0.5, shape=(2, 2), num_draws=1)


def test_jit_traces_once_over_lam_and_marks_unattainable_with_nan():
  traces = []

  @jax.jit
  def draw(key, a, lam):
    traces.append(None)
    return theorem2_mask(key, a, lam, shape=(2, 2))

  a = np.full((4, 4), 0.25) + 0.1 * np.eye(4)
  first = draw(jax.random.key(0), a, 0.5)
  np.testing.assert_allclose(first, theorem2_mask(jax.random.key(0), a, 0.5, shape=(2, 2)), atol=1e-5)
  draw(jax.random.key(0), a, 0.45)
  assert len(traces) == 1
  assert bool(jnp.all(jnp.isnan(draw(jax.random.key(0), a, 0.0))))  # 0.1 I - 0.75 1 1^T: unattainable
