"""The stochastic switch among methods (``msda_jax.Mixture``): choice law, draws, tracing, errors."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import msda_jax
from msda_jax.masks import _mixture


def test_switch_frequencies_follow_probs():
  """Seed 0, 20,000 choices among 3 components: chi-square against probs, p > 1e-3."""
  probs = jnp.array([0.2, 0.5, 0.3])
  keys = jax.random.split(jax.random.key(0), 20000)
  chosen = np.asarray(jax.vmap(lambda k: _mixture.choose(k, probs))(keys))
  counts = np.bincount(chosen, minlength=3)
  assert scipy.stats.chisquare(counts, 20000 * np.asarray(probs)).pvalue > 1e-3, counts
  never = np.asarray(jax.vmap(lambda k: _mixture.choose(k, jnp.array([0.5, 0.0, 0.5])))(keys[:2000]))
  assert not np.any(never == 1)


def test_each_draw_is_its_components_own_draw():
  """Whatever component the switch picks, the sample is that component's ``sample`` for the same key."""
  methods = (msda_jax.Mixup(alpha=0.4), msda_jax.CutMix(), msda_jax.GMix())
  mixture = msda_jax.Mixture(methods, probs=(0.3, 0.3, 0.4))
  draw = jax.jit(lambda m, key: m.sample(key, shape=(8, 8)))  # one program per method, reused over seeds
  for seed in range(12):
    key = jax.random.key(seed)
    _, key_mask = jax.random.split(key)
    index = int(_mixture.choose(key_mask, mixture.probs))
    got, want = draw(mixture, key), draw(methods[index], key)
    # The branch compiles inside a switch: continuous values agree to float32 rounding.
    np.testing.assert_allclose(np.asarray(got.mask), np.asarray(want.mask), rtol=1e-6, atol=1e-7)
    assert float(got.lam) == pytest.approx(float(want.lam), rel=1e-6)
    assert float(got.weight) == pytest.approx(float(want.weight), rel=1e-6)
    if index == 1:  # a CutMix box: the same pixels
      np.testing.assert_array_equal(np.asarray(got.mask), np.asarray(want.mask))


def test_probs_and_component_numbers_are_traced():
  mixture = msda_jax.Mixture((msda_jax.Mixup(), msda_jax.CutMix()), probs=(1.0, 0.0))

  @jax.jit
  @chex.assert_max_traces(n=1)
  def masks(m, key):
    return m.sample(key, shape=(6, 6)).mask

  a = masks(mixture, jax.random.key(1))
  b = masks(mixture.replace(probs=np.array([0.0, 1.0], np.float32)), jax.random.key(1))
  c = masks(mixture.replace(methods=(msda_jax.Mixup(alpha=0.2), msda_jax.CutMix(alpha=3.0))), jax.random.key(1))
  assert np.ptp(np.asarray(a)) == 0.0 and set(np.unique(np.asarray(b))) <= {0.0, 1.0}
  assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_by_name_and_bad_input():
  built = msda_jax.from_string("mixture(methods=('mixup', 'gmix(alpha=1.0)'), probs=(0.25, 0.75))")
  assert isinstance(built, msda_jax.Mixture) and isinstance(built.methods[1], msda_jax.GMix)
  with pytest.raises(ValueError, match="probs must sum to 1"):
    msda_jax.Mixture((msda_jax.Mixup(), msda_jax.CutMix()), probs=(0.5, 0.6))
  with pytest.raises(ValueError, match="probs must be >= 0"):
    msda_jax.Mixture((msda_jax.Mixup(), msda_jax.CutMix()), probs=(-0.5, 1.5))
  with pytest.raises(ValueError, match=r"probs must have shape \(2,\)"):
    msda_jax.Mixture((msda_jax.Mixup(), msda_jax.CutMix()), probs=(1.0,))
  with pytest.raises(ValueError, match="reads the images"):
    msda_jax.Mixture((msda_jax.Mixup(), msda_jax.PuzzleMix()))
  with pytest.raises(ValueError, match="non-empty tuple"):
    msda_jax.Mixture(())
  with pytest.raises(TypeError, match=r"methods\[1\] must be a MixMethod"):
    msda_jax.Mixture((msda_jax.Mixup(), 3))
  with pytest.raises(ValueError, match="transforms the images"):
    msda_jax.Mixture((msda_jax.Mixup(), msda_jax.ResizeMix()))


def test_exact_coefficients_of_a_mixture_are_the_mixture_of_its_components():
  """A mixture of methods with exact atoms has exact atoms: ``a_jk`` is ``sum_k p_k a_jk^(k)`` exactly,
  and the mixture's own sampler agrees.

  6 x 6 grid, Mixup and CutMix with probs (0.3, 0.7). Exact against the components: 1e-6. Against
  Monte Carlo over the mixture's own draws (seed 0, 40,000 draws): every entry of ``E[1 - M']`` and
  ``E[(1 - M')(1 - M')^T]`` within 4.5 standard errors plus 1e-4; the same check with probs
  (0.7, 0.3) in the exact law (the wrong mixture) fails it.
  """
  from msda_jax import theory
  from msda_jax.theory import atoms as atoms_lib
  from msda_jax.theory import laws

  shape = (6, 6)
  mixture = msda_jax.Mixture((msda_jax.Mixup(), msda_jax.CutMix()), probs=(0.3, 0.7))
  second = lambda m: np.asarray(theory.method_coefficients(m, shape=shape).second)
  exact = second(mixture)
  np.testing.assert_allclose(exact, 0.3 * second(msda_jax.Mixup()) + 0.7 * second(msda_jax.CutMix()), atol=1e-6)
  draws = atoms_lib.sampled_atoms(jax.random.key(0), laws.msda_law(mixture, shape=shape), num_draws=40_000)
  sampled = np.asarray(atoms_lib.swap_coefficients(draws).second)
  # The standard error of each entry, from the spread of the per-draw products (both branches).
  masks = 1.0 - np.asarray(draws.masks).reshape(draws.masks.shape[0], -1)
  own, partner = np.asarray(draws.own), np.asarray(draws.partner)
  flips = 1.0 - masks  # the swapped branch's 1 - M' is M
  per_draw = (
    own[:, None, None] * masks[:, :, None] * masks[:, None, :]
    + partner[:, None, None] * flips[:, :, None] * flips[:, None, :]
  ) * len(own)
  np.testing.assert_allclose(
    per_draw.mean(axis=0), sampled, atol=1e-4
  )  # the spread is that of the estimate (float32 sums)
  stderr = per_draw.std(axis=0) / np.sqrt(len(own))
  assert np.all(np.abs(sampled - exact) <= 4.5 * stderr + 1e-4)
  wrong = 0.7 * second(msda_jax.Mixup()) + 0.3 * second(msda_jax.CutMix())
  assert not np.all(np.abs(sampled - wrong) <= 4.5 * stderr + 1e-4)
