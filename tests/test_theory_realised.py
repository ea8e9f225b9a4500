"""The objective trained (realised label weights) and exact atoms for every finite family.

``mix_batch`` weights labels by the realised mask mean; Eq. (4) by the nominal ``lam``. These tests
check the realised objective's exact loss against an independent enumeration and Monte Carlo,
its second-order expansion against the eps-convergence criterion of the notes, the exact atoms of
HMix, GMix and Stochastic Mixup & CutMix against sampling, and the checks of the safer API.
"""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import msda_jax
from msda_jax import theory
from msda_jax.theory import atoms as atoms_lib
from msda_jax.theory import family_atoms, lam_average, laws
from msda_jax.theory import regularizers as reg

GRID = (6,)
CHANNELS = 2
FAMILIES = {
  "mixup": msda_jax.Mixup(),
  "bernoulli": msda_jax.Bernoulli(),
  "cutmix": msda_jax.CutMix(),
  "cutmix_inside": msda_jax.CutMix(placement="inside"),
  "hmix": msda_jax.HMix(),
  "gmix": msda_jax.GMix(),
  "stochastic": msda_jax.StochasticMixupCutMix(cutmix_alpha=0.5),
}


def make_model(seed=0):
  """A smooth tanh network ``[6, 2] -> []`` (binary)."""
  rng = np.random.default_rng(seed)
  d = GRID[0] * CHANNELS
  w1 = jnp.asarray(rng.normal(size=(d, 8)) / np.sqrt(d))
  w2 = jnp.asarray(rng.normal(size=(8,)))
  return lambda x: jnp.tanh(x.reshape(-1) @ w1 + 0.3) @ w2


def make_data(seed=1, m=8):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(m, *GRID, CHANNELS))
  return jnp.asarray(x - x.mean(axis=0)), jnp.asarray(rng.integers(0, 2, m).astype(np.float64))


def softplus(z):
  return np.logaddexp(0.0, z)


def test_realised_bernoulli_loss_equals_an_enumeration_written_out():
  """Bernoulli 2 x 2, Beta(1, 1), float64: all 16 masks by hand, weight k/d, against msda_loss."""
  with jax.enable_x64(True):
    rng = np.random.default_rng(5)
    w = rng.normal(size=(4,))
    f = lambda z: jnp.tanh(z.reshape(-1) @ jnp.asarray(w) + 0.1) * 2.0
    x = jnp.asarray(rng.normal(size=(5, 2, 2)))
    y = jnp.asarray(rng.integers(0, 2, 5).astype(np.float64))
    expected = {"nominal": 0.0, "realised": 0.0}
    xs, ys = np.asarray(x), np.asarray(y)
    for bits in itertools.product((0.0, 1.0), repeat=4):
      mask = np.array(bits).reshape(2, 2)
      k = int(sum(bits))
      prob = math.factorial(k) * math.factorial(4 - k) / math.factorial(5)  # B(1 + k, 1 + 4 - k) / B(1, 1)
      own_nominal = (k + 1) / 6.0 * prob  # E[lam 1{M}] = B(2 + k, 5 - k) / B(1, 1)
      for i, j in itertools.product(range(5), repeat=2):
        z = np.tanh((mask * xs[i] + (1 - mask) * xs[j]).reshape(-1) @ w + 0.1) * 2.0
        li, lj = softplus(z) - ys[i] * z, softplus(z) - ys[j] * z
        expected["nominal"] += (own_nominal * li + (prob - own_nominal) * lj) / 25.0
        expected["realised"] += prob * (k / 4.0 * li + (1 - k / 4.0) * lj) / 25.0
    for weight, value in expected.items():
      got = float(theory.msda_loss(f, x, y, atoms_lib.bernoulli_atoms(1.0, shape=(2, 2), label_weight=weight)))
      assert got == pytest.approx(value, rel=1e-12), weight
    assert abs(expected["realised"] - expected["nominal"]) > 1e-3  # the two objectives differ here


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_exact_atoms_agree_with_sampled_atoms_for_each_weight(name):
  """Seed 7, 3000 draws per law, m = 8: exact Eq. (4) within 4 standard errors of the estimate."""
  method = FAMILIES[name]
  f = make_model()
  x, y = make_data()
  x, y = x.astype(jnp.float32), y.astype(jnp.float32)
  for weight in ("nominal", "realised"):
    exact = float(theory.msda_loss(f, x, y, theory.method_atoms(method, shape=GRID, label_weight=weight)))
    law = laws.msda_law(method, shape=GRID, label_weight=weight)
    sampled = theory.msda_loss_estimate(f, x, y, theory.sampled_atoms(jax.random.key(7), law, num_draws=3000))
    assert float(sampled.stderr) > 0
    assert abs(float(sampled.value) - exact) < 4 * float(sampled.stderr), (name, weight, exact, sampled)


def test_realised_and_nominal_differ_for_clipped_boxes_beyond_sampling_noise():
  """Seed 7, 3000 draws of the realised CutMix law: the nominal objective lies > 6 standard errors away."""
  f = make_model()
  x, y = make_data()
  x, y = x.astype(jnp.float32), y.astype(jnp.float32)
  values = {
    w: float(theory.msda_loss(f, x, y, theory.method_atoms(msda_jax.CutMix(), shape=GRID, label_weight=w)))
    for w in ("nominal", "realised")
  }
  law = laws.msda_law(msda_jax.CutMix(), shape=GRID)
  sampled = theory.msda_loss_estimate(f, x, y, theory.sampled_atoms(jax.random.key(7), law, num_draws=3000))
  assert abs(float(sampled.value) - values["nominal"]) > 6 * float(sampled.stderr), (values, sampled)


def eps_gaps(method, loss_weight, coefficient_weight, epsilons=(0.2, 0.1, 0.05, 0.025)):
  """``|approx - exact| / eps^2``: the exact loss with one weight, the expansion with another."""
  with jax.enable_x64(True):
    f = make_model()
    x0, y = make_data()
    atoms = theory.method_atoms(method, shape=GRID, label_weight="nominal")
    coefficients = theory.swap_coefficients(atoms, label_weight=coefficient_weight)
    out = []
    for eps in epsilons:
      x = eps * x0
      exact = float(theory.msda_loss(f, x, y, atoms, label_weight=loss_weight))
      approx = float(reg.approximate_msda_loss(f, x, y, reg.regularizers_exact(f, x, y, coefficients)))
      out.append(abs(approx - exact) / eps**2)
    return np.array(out)


@pytest.mark.parametrize("name", ["bernoulli", "cutmix", "gmix"])
def test_realised_expansion_is_second_order_exact(name):
  """The general form with realised coefficients: the scaled gap halves with eps (ratios in [0.3, 0.7])."""
  g = eps_gaps(FAMILIES[name], "realised", "realised")
  ratios = g[1:] / g[:-1]
  assert np.all((ratios > 0.3) & (ratios < 0.7)), f"{name}: gaps {g}, ratios {ratios}"
  # Power: the nominal coefficients against the realised loss miss at first order (the gap grows).
  wrong = eps_gaps(FAMILIES[name], "realised", "nominal")
  assert wrong[-1] > 20 * g[-1] and wrong[-1] > wrong[0], f"{name}: mismatched gaps {wrong} vs {g}"


def test_hmix_atoms_give_the_exact_piecewise_average():
  """HMix inside on 5 x 5, r = 0.5, Beta(1, 1): the atoms' a_jk is the closed form's exact lam-average."""
  shape = (5, 5)
  atoms = family_atoms.hmix_atoms(1.0, shape=shape, r=0.5, placement="inside", num_nodes=2)
  second = np.asarray(atoms_lib._moments(1.0 - atoms.masks, atoms.own + atoms.partner)[1])
  edges = lam_average.box_lam_edges(shape=shape, r=0.5)
  terms = lambda lam: lam_average.hmix_lam_terms(lam, shape=shape, r=0.5)
  closed = lam_average.average_piecewise(terms, 1.0, edges=edges)
  np.testing.assert_allclose(second, np.asarray(closed).reshape(second.shape), atol=2e-6)


def test_gmix_quadrature_has_converged():
  """24 nodes per half against 48: the coefficients agree to 1e-6 on 6 x 6 (default GMix)."""
  coarse = theory.swap_coefficients(family_atoms.gmix_atoms(1.0, shape=(6, 6), num_nodes=24))
  fine = theory.swap_coefficients(family_atoms.gmix_atoms(1.0, shape=(6, 6), num_nodes=48))
  np.testing.assert_allclose(np.asarray(coarse.second), np.asarray(fine.second), atol=1e-6)


@pytest.mark.parametrize("name", ["cutmix", "hmix", "gmix", "stochastic"])
def test_exact_coefficients_match_the_sampled_swap_law(name):
  """Seed 1, 40000 draws of the swap law on 4 x 4: every a_jk within 5 standard errors (+1e-6)."""
  method = FAMILIES[name]
  for weight in ("nominal", "realised"):
    exact = theory.method_coefficients(method, shape=(4, 4), label_weight=weight)
    law = laws.swap_law(method, shape=(4, 4), label_weight=weight)
    moments = theory.mask_moments(jax.random.key(1), law, num_draws=40000)
    gap = np.abs(np.asarray(exact.second) - np.asarray(moments.second))
    assert np.all(gap < 5 * np.asarray(moments.second_stderr) + 1e-6), (name, weight, gap.max())
    tolerance = float(5 * moments.mean_stderr.max()) + 1e-6
    np.testing.assert_allclose(np.asarray(exact.mean).reshape(-1), np.asarray(moments.mean), atol=tolerance)


def test_nominal_swap_law_has_the_papers_tilted_beta_form():
  """Seed 2, 60000 draws: the weight w' of the nominal swap law has the moments of D~ (Beta(1, 1)).

  D~ = 1/2 Beta(2, 1) + 1/2 Beta(2, 1) for a = b = 1: mean 2/3, second moment 1/2.
  """
  law = laws.swap_law(msda_jax.Mixup(), 1.0, shape=(1,), label_weight="nominal")
  w, _ = jax.vmap(law)(jax.random.split(jax.random.key(2), 60000))
  w = np.asarray(w, np.float64)
  se = w.std() / np.sqrt(w.size)
  assert abs(w.mean() - 2 / 3) < 4 * se
  assert abs((w**2).mean() - 0.5) < 4 * (w**2).std() / np.sqrt(w.size)


def test_the_safer_api_refuses_mismatched_forms_laws_and_weights():
  f = make_model()
  x, y = make_data()
  general = theory.method_coefficients(msda_jax.Mixup(), shape=GRID)
  with pytest.raises(ValueError, match="built for form='general'"):
    reg.regularizers_exact(f, x, y, general, form="printed")
  printed = theory.method_coefficients(msda_jax.Mixup(), shape=GRID, form="printed", label_weight="nominal")
  with pytest.raises(ValueError, match="built for form='printed'"):
    reg.regularizers_exact(f, x, y, printed, form="general")
  with pytest.raises(ValueError, match="kind 'swap'"):
    reg.regularizers_sampled(jax.random.key(0), f, x, y, laws.msda_law(msda_jax.Mixup(), shape=GRID))
  with pytest.raises(ValueError, match="kind 'printed'"):
    reg.regularizers_sampled(jax.random.key(0), f, x, y, laws.swap_law(msda_jax.Mixup(), shape=GRID), form="printed")
  with pytest.raises(ValueError, match=r"Beta\(2.0, 2.0\)"):
    theory.printed_coefficients(atoms_lib.mixup_atoms(2.0, shape=GRID), None, 1.0)
  with pytest.raises(ValueError, match="realised label weight"):
    theory.printed_coefficients(atoms_lib.box_atoms(1.0, shape=GRID, label_weight="realised"), None, 1.0)
  with pytest.raises(ValueError, match="label_weight='nominal' asked"):
    theory.msda_loss(f, x, y, theory.method_atoms(msda_jax.CutMix(), shape=GRID), label_weight="nominal")
  with pytest.raises(ValueError, match="label_weight must be one of"):
    theory.method_atoms(msda_jax.CutMix(), shape=GRID, label_weight="soft")
  with pytest.raises(ValueError, match="pass key="):
    theory.method_atoms(msda_jax.FMix(), shape=GRID)
  with pytest.raises(ValueError, match="draws its masks from the images"):
    theory.method_atoms(msda_jax.SaliencyMix(), shape=(4, 4))
  with pytest.raises(ValueError, match="kind 'swap'"):
    theory.sampled_atoms(jax.random.key(0), laws.swap_law(msda_jax.Mixup(), shape=GRID), num_draws=4)


def test_flat_coefficients_from_mask_moments_equal_the_shaped_ones():
  """A [d] mean (MaskMoments' layout) gives the same regularisers as the [*S] one."""
  f = make_model()
  x, y = make_data()
  shaped = theory.method_coefficients(msda_jax.CutMix(), shape=GRID)
  flat = reg.Coefficients(shaped.mean.reshape(-1), shaped.second, form="general")
  moments = theory.mask_moments(jax.random.key(0), laws.swap_law(msda_jax.CutMix(), shape=GRID), num_draws=64)
  from_moments = reg.Coefficients.from_moments(moments, form="general")
  assert from_moments.mean.shape == (6,)
  a = reg.regularizers_exact(f, x, y, shaped)
  b = reg.regularizers_exact(f, x, y, flat)
  np.testing.assert_allclose(np.asarray(a.per_example), np.asarray(b.per_example), rtol=1e-6)
  reg.regularizers_exact(f, x, y, from_moments)  # runs on the flat layout
  with pytest.raises(ValueError, match="grid"):
    reg.regularizers_exact(f, x, y, reg.Coefficients(jnp.zeros(5), jnp.zeros((5, 5))))
