"""Losses of mixed targets (``msda_jax.losses``): the decoupled mixup loss against a float64 brute force.

The brute force computes, per example and per mixed class ``c``, the log-softmax over ``{c}``
and the unmixed classes by enumeration in numpy float64 (seed 3, 64 examples of 2 and 3 mixed
classes out of 7, some of one class and some with every class mixed). A wrong decoupling (the
full softmax, which is the plain cross-entropy) is refused by the same tolerance. The train
step's ``loss`` option trains on it; the experiment config names a bad loss before any work.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import msda_jax
from msda_jax import losses


def brute_force(logits, targets, threshold=1e-3):
  out = []
  for z, t in zip(np.asarray(logits, np.float64), np.asarray(targets, np.float64), strict=True):
    support = np.flatnonzero(t > threshold)
    rest = np.flatnonzero(t <= threshold)
    total = 0.0
    if len(support) >= 2:
      for c in support:
        competing = np.concatenate([[c], rest])
        total -= t[c] * (z[c] - np.log(np.sum(np.exp(z[competing]))))
    out.append(total)
  return np.asarray(out)


def mixed_targets(rng, batch, classes):
  targets = np.zeros((batch, classes))
  for b in range(batch):
    k = [1, 2, 2, 3, classes][b % 5]
    chosen = rng.choice(classes, size=k, replace=False)
    targets[b, chosen] = rng.dirichlet(np.ones(k))
  return targets


def test_the_decoupled_term_matches_the_brute_force():
  rng = np.random.default_rng(3)
  logits = rng.normal(scale=2.0, size=(64, 7))
  targets = mixed_targets(rng, 64, 7)
  ours = np.asarray(losses.decoupled(jnp.asarray(logits, jnp.float32), jnp.asarray(targets, jnp.float32)))
  expected = brute_force(logits, targets)
  np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
  # A wrong decoupling (every class competing: the plain cross-entropy) fails the same check.
  wrong = np.asarray(optax.softmax_cross_entropy(logits, targets))
  mixed = (targets > 1e-3).sum(1) >= 2
  assert not np.allclose(wrong[mixed], expected[mixed], rtol=1e-5, atol=1e-6)
  # Unmixed examples (one class) and nothing else get no decoupled term; it is never negative.
  assert (ours[~mixed] == 0).all() and (ours >= 0).all()


def test_the_loss_is_the_cross_entropy_plus_eta_times_the_term_and_is_linear_in_the_targets():
  rng = np.random.default_rng(4)
  logits = jnp.asarray(rng.normal(size=(16, 5)), jnp.float32)
  targets = jnp.asarray(mixed_targets(rng, 16, 5), jnp.float32)
  loss = losses.get_loss("decoupled_mixup", eta=0.3)
  expected = optax.softmax_cross_entropy(logits, targets) + 0.3 * losses.decoupled(logits, targets)
  np.testing.assert_allclose(np.asarray(loss(logits, targets)), np.asarray(expected), rtol=1e-6)
  # Targets that do not sum to 1 (SnapMix's) scale the loss: the same support, twice the loss.
  np.testing.assert_allclose(np.asarray(loss(logits, 2 * targets)), 2 * np.asarray(expected), rtol=1e-5)
  # Finite gradients, also where every class is mixed (no unmixed class left).
  grads = jax.grad(lambda z: loss(z, targets).sum())(logits)
  assert np.isfinite(np.asarray(grads)).all()


@pytest.mark.parametrize(
  "name, options, pattern",
  [
    ("focal", {}, r"loss must be one of \('cross_entropy', 'decoupled_mixup'\)"),
    ("decoupled_mixup", {"eta": -0.1}, r"eta must lie in \[0.0, inf\)"),
    ("decoupled_mixup", {"threshold": 1.0}, r"threshold must lie in \[0.0, 1.0\)"),
    ("cross_entropy", {"eta": 0.1}, r"loss 'cross_entropy' takes the options \(\)"),
  ],
)
def test_bad_losses_raise_naming_the_option(name, options, pattern):
  with pytest.raises(ValueError, match=pattern):
    losses.get_loss(name, **options)


def test_the_train_step_trains_on_the_given_loss():
  from msda_jax.train import init_train_state, make_train_step
  from msda_jax.train.models import SmallCNN

  tx = optax.sgd(0.1)
  graphdef, state, opt = init_train_state(SmallCNN(10, width=4, in_channels=1, rngs=nnx.Rngs(0)), tx)
  mixer = msda_jax.Mixer(msda_jax.Mixup(), num_classes=10)
  batch = {"image": jax.random.uniform(jax.random.key(1), (8, 12, 12, 1)), "label": jnp.arange(8)}
  outs = {}
  for name, loss in [
    ("ce", losses.cross_entropy),
    ("eta0", losses.get_loss("decoupled_mixup", eta=0.0)),
    ("dm", losses.get_loss("decoupled_mixup", eta=0.5)),
  ]:
    step = jax.jit(make_train_step(graphdef=graphdef, tx=tx, mixer=mixer, weight_decay=0.0, loss=loss))
    outs[name] = step(state, opt, batch, jax.random.key(0))
  leaves = {name: jax.tree.leaves(out[0]) for name, out in outs.items()}
  # eta = 0 is the cross-entropy step; eta > 0 adds a non-negative term and changes the update.
  for a, b in zip(leaves["ce"], leaves["eta0"], strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert float(outs["dm"][2]["loss"]) > float(outs["ce"][2]["loss"])
  assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(leaves["ce"], leaves["dm"], strict=True))


@pytest.mark.parametrize(
  "field, value, pattern",
  [("loss", "focal", r"^loss must be one of"), ("loss_eta", -1.0, r"^loss_eta must lie in")],
)
def test_the_experiment_config_checks_the_loss(field, value, pattern):
  from experiments import train
  from experiments.configs import default

  config = default.get_config()
  config.loss = "decoupled_mixup"
  config[field] = value
  with pytest.raises(ValueError, match=pattern):
    train.check_config(config, 1)
