"""Theorem 1 at a hidden layer: the head network's regularisers, exact against sampled.

A smooth small CNN (softplus, average pools, so R3 is not 0) in eval mode; the features of a layer
(``theory.features_at``) and the network after it (``theory.head_at``), which recompose the model.
Manifold Mixup at layer 2 (Mixup's coefficients over the 2 x 2 feature grid, exact) and PatchUp at
layer 1 (per-channel squares over the (channel, position) grid; the swap law's moments from
200,000 draws): the exact regularisers of the head and the scalable Monte Carlo ones agree within
4.5 standard errors (seed 3, 8 examples x 4000 draws), and the exact ones under a wrong law
(another ``alpha``, another ``gamma``) do not. PatchUp's exact moments at a fixed ``lam``
(``theory.patchup_moments``) match Monte Carlo over its sampler (20,000 draws, 6 standard errors
+ 10 / draws), and another block size does not.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import msda_jax
from msda_jax import theory
from msda_jax.theory import laws
from msda_jax.theory.regularizers import Coefficients
from msda_jax.train.models import SmallCNN

SAMPLES, SEED = 4000, 3


@pytest.fixture(scope="module")
def setting():
  model = SmallCNN(3, width=2, in_channels=1, activation="softplus", pool="avg", rngs=nnx.Rngs(0))
  model.eval()
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.normal(size=(8, 8, 8, 1)), jnp.float32)
  y = jnp.asarray(rng.dirichlet(np.ones(3), 8), jnp.float32)
  return model, images, y


def z_scores(exact, sampled):
  return {
    t: abs(float(getattr(exact, t)) - float(getattr(sampled, t))) / float(getattr(sampled, f"{t}_stderr"))
    for t in ("r1", "r2", "r3")
  }


def test_features_and_head_recompose_the_model(setting):
  model, images, _ = setting
  h = theory.features_at(model, images, 2)
  head = theory.head_at(model, 2, images.shape[1:])
  np.testing.assert_allclose(np.asarray(jax.vmap(head)(h)), np.asarray(model(images)), atol=1e-5)
  hc = theory.features_at(model, images, 2, channel_first=True)
  headc = theory.head_at(model, 2, images.shape[1:], channel_first=True)
  np.testing.assert_allclose(np.asarray(jax.vmap(headc)(hc)), np.asarray(model(images)), atol=1e-5)
  with pytest.raises(ValueError, match=r"layer=7: the model has no mixable layer 7"):
    theory.features_at(model, images, 7)


def test_manifold_mixup_regularisers_at_layer_two_exact_against_sampled(setting):
  model, images, y = setting
  h = theory.features_at(model, images, 2)
  head = theory.head_at(model, 2, images.shape[1:])
  grid = h.shape[1:-1]
  method = msda_jax.ManifoldMixup(alpha=1.0)
  exact = theory.regularizers_exact(head, h, y, theory.method_coefficients(method, shape=grid), loss="softmax")
  law = laws.swap_law(method, shape=grid)
  sampled = jax.jit(lambda k: theory.regularizers_sampled(k, head, h, y, law, loss="softmax", num_samples=SAMPLES))(
    jax.random.key(SEED)
  )
  assert max(z_scores(exact, sampled).values()) < 4.5
  wrong = theory.regularizers_exact(
    head, h, y, theory.method_coefficients(method.replace(alpha=0.2), shape=grid), loss="softmax"
  )
  assert max(z_scores(wrong, sampled).values()) > 4.5


def test_patchup_regularisers_over_channels_exact_against_sampled(setting):
  """Per-channel squares over (channel, position): the exact path with the swap law's moments
  (200,000 draws: their own error is far below the sampled path's) against the sampled path."""
  model, images, y = setting
  h = theory.features_at(model, images, 1, channel_first=True)  # [8, C, 4, 4, 1]
  head = theory.head_at(model, 1, images.shape[1:], channel_first=True)
  grid = h.shape[1:-1]

  def exact_path(gamma):
    method = msda_jax.PatchUp(gamma=gamma, block=3, mode="hard", channel_first=True)
    moments = theory.mask_moments(jax.random.key(1), laws.swap_law(method, shape=grid), num_draws=200_000)
    coefficients = Coefficients(moments.mean, moments.second, form="general")
    return theory.regularizers_exact(head, h, y, coefficients, loss="softmax")

  law = laws.swap_law(msda_jax.PatchUp(gamma=0.5, block=3, mode="hard", channel_first=True), shape=grid)
  sampled = jax.jit(lambda k: theory.regularizers_sampled(k, head, h, y, law, loss="softmax", num_samples=SAMPLES))(
    jax.random.key(SEED)
  )
  assert max(z_scores(exact_path(0.5), sampled).values()) < 4.5
  assert max(z_scores(exact_path(0.95), sampled).values()) > 4.5


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_patchup_exact_moments_match_its_sampler(mode):
  grid, lam = (2, 5, 6), 0.4
  method = msda_jax.PatchUp(gamma=0.6, block=3, mode=mode, channel_first=True)
  sampled = theory.mask_moments(jax.random.key(0), laws.fixed_lam_law(method, lam, shape=grid), num_draws=20_000)
  for block, passes in ((3, True), (5, False)):
    exact = theory.patchup_moments(lam, shape=grid, gamma=0.6, block=block, mode=mode)
    excess = np.abs(np.asarray(sampled.second) - exact.second) - (6 * np.asarray(sampled.second_stderr) + 10 / 20_000)
    assert (excess.max() <= 0.0) == passes, (block, excess.max())
