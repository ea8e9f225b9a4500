"""Theorem 3 measured: the l2 attack, the quadratic attack, the implied radius and the crossings.

Hand-computed cases: for a linear logit ``f(z) = w . z + c`` the worst point of the l2 ball moves
the logit by ``||w|| rho`` against the label, so the adversarial loss is known in closed form.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import msda_jax
from msda_jax import theory
from msda_jax.theory import regularizers as reg

SHAPE = (3, 2)  # a 3-pixel grid with 2 channels


def softplus(z):
  return np.logaddexp(0.0, z)


def linear_model(seed=0):
  w = np.random.default_rng(seed).normal(size=SHAPE)
  return (lambda z: jnp.sum(z * jnp.asarray(w)) + 0.2), w


def relu_model(seed=0, hidden=16):
  """A bias-carrying two-layer ReLU network ``[3, 2] -> []``: piecewise linear, so R3 = 0."""
  rng = np.random.default_rng(seed)
  w1 = jnp.asarray(rng.normal(size=(6, hidden)) / np.sqrt(6))
  b1 = jnp.asarray(rng.normal(size=(hidden,)) * 0.1)
  w2 = jnp.asarray(rng.normal(size=(hidden,)) / np.sqrt(hidden))
  return lambda z: jax.nn.relu(z.reshape(-1) @ w1 + b1) @ w2


def data(seed=1, m=12):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.normal(size=(m, *SHAPE))), jnp.asarray(rng.integers(0, 2, m).astype(np.float64))


@pytest.fixture(autouse=True, scope="module")
def _float64():
  """Every case in float64: the inequalities are checked to 1e-12."""
  with jax.enable_x64(True):
    yield


@pytest.fixture(scope="module")
def relu_case():
  """The ReLU net on 12 examples, Mixup's exact general coefficients, and labels with every R1 term >= 0.

  Random labels leave some example with ``(y_i - s_i) g_i . u_i < 0`` (checked); flipping exactly
  those labels (``s_i`` in (0, 1), so the sign of ``y_i - s_i`` flips) satisfies every example.
  """
  f = relu_model()
  x, y = data()
  coefficients = theory.method_coefficients(msda_jax.Mixup(), shape=SHAPE[:1])
  random_labels = theory.implied_radius(f, x, y, coefficients)
  y = jnp.where(random_labels.satisfied, y, 1.0 - y)
  regs = reg.regularizers_exact(f, x, y, coefficients)
  return f, x, y, coefficients, regs, random_labels


@pytest.mark.parametrize("radius", [0.0, 0.3, 1.5])
def test_attack_on_a_linear_logit_reaches_the_closed_form(radius):
  """The worst case moves f by ||w|| rho against y: softplus(f - (2y - 1) ||w|| rho) - y (...)."""
  f, w = linear_model()
  x, y = data()
  attack = theory.pgd_l2(f, x, y, radius=radius, num_steps=10)
  logits = np.einsum("mij,ij->m", np.asarray(x), w) + 0.2
  worst = logits - (2 * np.asarray(y) - 1) * np.linalg.norm(w) * radius
  expected = softplus(worst) - np.asarray(y) * worst
  np.testing.assert_allclose(np.asarray(attack.losses), expected, rtol=1e-9, atol=1e-12)
  moved = np.linalg.norm((np.asarray(attack.examples) - np.asarray(x)).reshape(len(x), -1), axis=1)
  np.testing.assert_allclose(moved, radius, atol=1e-9)


def test_softmax_attack_on_two_linear_classes_reaches_the_closed_form():
  """K = 2 linear logits ``W z``: only the margin ``(w_y - w_other) . z`` matters, so the worst
  point moves it by ``||w_y - w_other|| rho`` and the loss is ``softplus(-(margin - ||..|| rho))``."""
  w = np.random.default_rng(4).normal(size=(2, *SHAPE))
  f = lambda z: jnp.einsum("kij,ij->k", jnp.asarray(w), z)
  x, labels = data()
  y = jax.nn.one_hot(labels.astype(jnp.int32), 2, dtype=jnp.float64)
  attack = theory.pgd_l2(f, x, y, radius=0.7, num_steps=10, loss="softmax")
  k = np.asarray(labels).astype(int)
  direction = w[k] - w[1 - k]  # [m, 3, 2]
  margin = np.einsum("mij,mij->m", direction, np.asarray(x))
  expected = softplus(-(margin - np.linalg.norm(direction.reshape(len(k), -1), axis=1) * 0.7))
  np.testing.assert_allclose(np.asarray(attack.losses), expected, rtol=1e-9, atol=1e-12)


def test_robust_accuracy_of_two_linear_classes():
  """An example stays correct iff its margin exceeds ``||w_y - w_other|| rho``; counted by hand."""
  w = np.random.default_rng(4).normal(size=(2, *SHAPE))
  f = lambda z: jnp.einsum("kij,ij->k", jnp.asarray(w), z)
  x, labels = data()
  k = np.asarray(labels).astype(int)
  direction = w[k] - w[1 - k]
  margin = np.einsum("mij,mij->m", direction, np.asarray(x))
  for rho in (0.0, 0.3, 1.0):
    expected = np.mean(margin > np.linalg.norm(direction.reshape(len(k), -1), axis=1) * rho)
    got = float(theory.robust_accuracy(f, x, jnp.asarray(k), radius=rho, num_steps=10))
    assert got == pytest.approx(expected), rho
  with pytest.raises(ValueError, match="integer classes"):
    theory.robust_accuracy(f, x, labels, radius=0.1)


def test_attack_is_feasible_and_beats_random_points_of_the_ball():
  """Seed 3, 64 random directions per example on the ReLU net: the attack is at least as bad."""
  f = relu_model()
  x, y = data()
  radius = 0.8
  attack = theory.pgd_l2(f, x, y, radius=radius, num_steps=20)
  flat = (np.asarray(attack.examples) - np.asarray(x)).reshape(len(x), -1)
  assert np.all(np.linalg.norm(flat, axis=1) <= radius * (1 + 1e-12))
  clean = jax.vmap(lambda xi, yi: theory.loss_value(f(xi), yi, "binary"))(x, y)
  assert np.all(np.asarray(attack.losses) >= np.asarray(clean) - 1e-12)
  directions = np.random.default_rng(3).normal(size=(64, 6))
  directions = radius * directions / np.linalg.norm(directions, axis=1, keepdims=True)
  randoms = jax.vmap(
    lambda xi, yi: jax.vmap(lambda d: theory.loss_value(f(xi + d.reshape(SHAPE)), yi, "binary"))(
      jnp.asarray(directions)
    )
  )(x, y)
  assert np.all(np.asarray(attack.losses) >= np.asarray(randoms).max(axis=1) - 1e-9)
  assert float(theory.adversarial_loss(f, x, y, radius=radius)) == pytest.approx(float(attack.losses.mean()))


def test_random_start_stays_inside_the_ball_and_radius_zero_is_the_clean_loss():
  f = relu_model()
  x, y = data()
  x = x.astype(jnp.float32)
  attack = theory.pgd_l2(f, x, y, radius=0.5, num_steps=3, key=jax.random.key(0), random_start=True)
  moved = jnp.linalg.norm((attack.examples - x).reshape(len(x), -1), axis=1)
  assert float(moved.max()) <= 0.5 * (1 + 1e-6)
  zero = theory.adversarial_loss(f, x, y, radius=0.0)
  assert float(zero) == pytest.approx(float(reg.empirical_loss(f, x, y)), rel=1e-6)


def test_quadratic_attack_is_the_second_order_expansion_of_the_linear_case():
  """Linear logit: exact attacked loss - quadratic = O(rho^3) (the gap / rho^3 settles as rho halves)."""
  f, _ = linear_model()
  x, y = data()
  gaps = []
  for rho in (0.2, 0.1, 0.05, 0.025):
    exact = float(theory.adversarial_loss(f, x, y, radius=rho, num_steps=4))
    quadratic = float(theory.quadratic_adversarial_loss(f, x, y, radius=rho))
    gaps.append(abs(exact - quadratic) / rho**3)
  gaps = np.array(gaps)
  assert np.all(np.abs(gaps[1:] / gaps[:-1] - 1.0) < 0.2), gaps
  assert float(theory.quadratic_adversarial_loss(f, x, y, radius=0.0)) == pytest.approx(
    float(reg.empirical_loss(f, x, y)), rel=1e-12
  )


def test_implied_radius_makes_the_approximate_loss_dominate_the_quadratic_attack(relu_case):
  """ReLU net, general form, exact coefficients: L~ >= quadratic attack at every rho <= the implied radius."""
  f, x, y, coefficients, regs, random_labels = relu_case
  assert not bool(random_labels.satisfied.all()) and np.isnan(float(random_labels.radius))  # no radius implied
  assert float(jnp.abs(regs.r3).max()) == 0.0  # piecewise linear: R3 vanishes exactly
  approx = float(reg.approximate_msda_loss(f, x, y, regs))
  implied = theory.implied_radius(f, x, y, coefficients)
  assert bool(implied.satisfied.all())
  assert float(implied.covariance_min_eigenvalue) > -1e-12
  radius = float(implied.radius)
  assert np.isfinite(radius) and radius > 0.0
  assert float(implied.eps) == pytest.approx(radius / np.sqrt(6))
  assert float(implied.product_eps) <= float(implied.eps) + 1e-15
  for rho in np.linspace(0.0, radius, 5):
    assert approx >= float(theory.quadratic_adversarial_loss(f, x, y, radius=rho)) - 1e-12, rho
  crossing = float(theory.quadratic_crossing_radius(f, x, y, regs))
  assert crossing >= radius - 1e-12
  at_crossing = float(theory.quadratic_adversarial_loss(f, x, y, radius=crossing))
  assert at_crossing == pytest.approx(approx, rel=1e-9)


def test_implied_radius_per_example_rule_by_hand():
  """A linear logit, the printed form and Mixup: rho_i = (y_i - s_i) g . u_i / (|y_i - s_i| ||g||), clipped at 0."""
  f, w = linear_model()
  x, y = data()
  coefficients = theory.method_coefficients(msda_jax.Mixup(), shape=SHAPE[:1], form="printed", label_weight="nominal")
  got = theory.implied_radius(f, x, y, coefficients, form="printed")
  b = np.repeat(np.asarray(coefficients.mean).reshape(-1), 2)
  s = 1 / (1 + np.exp(-(np.einsum("mij,ij->m", np.asarray(x), w) + 0.2)))
  c = np.asarray(x).reshape(len(x), -1) @ (b * w.reshape(-1))
  gap = np.asarray(y) - s
  rho = np.maximum(np.sign(gap) * c, 0.0) / np.linalg.norm(w)
  np.testing.assert_allclose(np.asarray(got.per_example), rho, rtol=1e-12, atol=1e-15)
  np.testing.assert_array_equal(np.asarray(got.satisfied), gap * c >= 0)
  if np.all(gap * c >= 0):
    assert float(got.radius) == pytest.approx(rho.min())
  else:
    assert np.isnan(float(got.radius))


def test_theorem3_check_and_bisection_agree(relu_case):
  """The check's holds is a prefix of the grid; the bisection's bracket straddles L~ inside the failing cell."""
  f, x, y, _, regs, _ = relu_case
  approx = float(reg.approximate_msda_loss(f, x, y, regs))
  radii = jnp.linspace(0.0, 3.0, 13)
  check = theory.theorem3_check(f, x, y, regs, radii=radii, num_steps=10)
  adversarial_values = np.asarray(check.adversarial)
  assert np.all(np.diff(adversarial_values) >= -1e-12)  # warm-started: non-decreasing
  holds = np.asarray(check.holds)
  assert holds[0] and not holds[-1], (approx, adversarial_values)  # L~ > L_m here; the attack overtakes it
  first_fail = int(np.argmin(holds))
  assert np.all(holds[:first_fail]) and not np.any(holds[first_fail:])
  assert float(check.largest_radius) == pytest.approx(float(radii[first_fail - 1]))
  crossing = theory.crossing_radius(f, x, y, regs, high=3.0, num_iterations=12, num_steps=10)
  assert bool(crossing.bracketed)
  low, high = float(crossing.low), float(crossing.high)
  assert 0.0 <= high - low <= 3.0 / 2**12 * (1 + 1e-9)
  # The cold-started attack of the bisection and the warm-started grid need not agree exactly.
  assert float(radii[first_fail - 1]) - 0.25 <= low <= float(radii[first_fail]) + 0.25


def test_attack_is_jittable_with_traced_radius():
  f = relu_model()
  x, y = data()
  x = x.astype(jnp.float32)
  run = jax.jit(lambda r: theory.adversarial_loss(f, x, y, radius=r, num_steps=5))
  assert float(run(0.5)) == pytest.approx(float(theory.adversarial_loss(f, x, y, radius=0.5, num_steps=5)), rel=1e-6)
  assert np.isnan(float(run(-1.0)))  # a traced invalid radius gives NaN, documented


def test_bad_arguments_raise_before_any_work():
  f = relu_model()
  x, y = data()
  with pytest.raises(ValueError, match="radius must be finite and >= 0"):
    theory.pgd_l2(f, x, y, radius=-0.1)
  with pytest.raises(ValueError, match="num_steps"):
    theory.pgd_l2(f, x, y, radius=0.1, num_steps=0)
  with pytest.raises(ValueError, match="radius must be a scalar or one value per example"):
    theory.pgd_l2(f, x, y, radius=jnp.ones(3))
  with pytest.raises(ValueError, match="key must be a PRNG key"):
    theory.pgd_l2(f, x, y, radius=0.1, random_start=True)
  with pytest.raises(ValueError, match="only with random_start"):
    theory.pgd_l2(f, x, y, radius=0.1, key=jax.random.key(0))
  coefficients = theory.method_coefficients(msda_jax.Mixup(), shape=SHAPE[:1])
  with pytest.raises(ValueError, match="loss must be 'binary'"):
    theory.implied_radius(f, x, y, coefficients, loss="softmax")
  with pytest.raises(ValueError, match="radii must be non-decreasing"):
    theory.theorem3_check(f, x, y, 1.0, radii=[0.5, 0.1])
  with pytest.raises(ValueError, match="high must be > low"):
    theory.crossing_radius(f, x, y, 1.0, high=0.1, low=0.2)
  regs = reg.Regularizers(*([jnp.zeros(())] * 6), per_example=jnp.zeros((3, 3)))
  with pytest.raises(ValueError, match="computed on 3 examples"):
    theory.theorem3_check(f, x, y, regs, radii=[0.1])
