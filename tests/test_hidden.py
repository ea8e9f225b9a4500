"""Manifold Mixup and PatchUp: mixing at a hidden layer inside the train step.

The hook is checked on a probe "model" that records what it sees: the drawn layer's features are
the ``Mixer``'s mix of them (the same partners and ``lam`` at every layer), the other layers pass
unchanged, the targets are the drawn layer's; the layer is uniform over ``layers`` (chi-square,
600 keys, seed 0, p > 1e-3; a law that never draws the last layer is refused). PatchUp's masks
follow the reference's law: every feature is kept with probability ``(1 - p)^(number of seeds
whose square covers it)`` (600 masks, 5 standard errors), squares per channel. Every model takes
the hook at each of its stages, the train step trains with both methods, and a layer the model
does not have raises before any work (trace time, and the experiment config's check).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from model_options import tiny
from scipy import stats

import msda_jax
from msda_jax.masks import _hidden
from msda_jax.train import hidden
from msda_jax.train.models import MODELS, SmallCNN, get_model
from msda_jax.train.step import init_train_state, make_train_step

B, K = 6, 4
LABELS = jnp.arange(B) % K


def features(shape, seed):
  return jnp.asarray(np.random.default_rng(seed).normal(size=(B, *shape)), jnp.float32)


def probe(hook, shapes):
  """Calls the hook at layers 0..len(shapes)-1 with fixed features; returns what it returned."""
  return [hook(layer, features(shape, layer)) for layer, shape in enumerate(shapes)]


@pytest.mark.parametrize("mode", ["batch", "example"])
def test_the_drawn_layer_is_mixed_as_the_mixer_mixes_and_the_others_pass(mode):
  method = msda_jax.ManifoldMixup(alpha=1.0, layers=(0, 2, 3))
  mixer = msda_jax.Mixer(method, num_classes=K, mode=mode)
  shapes = [(8, 8, 3), (8, 8, 5), (4, 4, 7), (2, 2, 9)]
  drawn = set()
  for seed in range(6):
    key = jax.random.key(seed)
    hook, targets = hidden.hidden_mixing(mixer, key, LABELS)
    outputs = probe(hook, shapes)
    changed = [
      i
      for i, (out, shape) in enumerate(zip(outputs, shapes, strict=True))
      if not np.array_equal(out, features(shape, i))
    ]
    assert len(changed) == 1 and changed[0] in method.layers
    layer = changed[0]
    drawn.add(layer)
    x = features(shapes[layer], layer)
    expected, expected_targets, info = mixer.replace(spatial_ndim=x.ndim - 2).with_info(key, x, LABELS)
    np.testing.assert_allclose(np.asarray(outputs[layer]), np.asarray(expected), atol=1e-6)
    np.testing.assert_allclose(np.asarray(targets()), np.asarray(expected_targets), atol=1e-6)
    # The same partners and lam at every layer: the draws do not depend on the shape.
    other = mixer.replace(spatial_ndim=1).with_info(key, features((5, 2), 9), LABELS)[2]
    np.testing.assert_array_equal(np.asarray(other.partner), np.asarray(info.partner))
    np.testing.assert_array_equal(np.asarray(other.lam), np.asarray(info.lam))
  assert len(drawn) > 1


def test_the_layer_is_uniform_over_the_candidates():
  mixer = msda_jax.Mixer(msda_jax.ManifoldMixup(layers=(0, 1, 2)), num_classes=K)

  def drawn_layer(key):
    hook, _ = hidden.hidden_mixing(mixer, key, LABELS)
    outs = [hook(layer, jnp.ones((B, 2, 2, 1)) * (layer + 1) * jnp.arange(B).reshape(B, 1, 1, 1)) for layer in range(3)]
    changed = jnp.stack(
      [jnp.any(o != jnp.ones((B, 2, 2, 1)) * (i + 1) * jnp.arange(B).reshape(B, 1, 1, 1)) for i, o in enumerate(outs)]
    )
    return jnp.argmax(changed)

  layers = np.asarray(jax.jit(jax.vmap(drawn_layer))(jax.random.split(jax.random.key(0), 600)))
  counts = np.bincount(layers, minlength=3)
  assert stats.chisquare(counts).pvalue > 1e-3
  assert stats.chisquare(counts, [300, 180, 120]).pvalue < 1e-6  # another law is refused


def test_patchup_keeps_each_feature_with_the_reference_probability():
  """Hard masks on one channel of 9 x 9 with block 3: a feature is changed iff a seed lies in the
  3 x 3 square around it (clipped at the border)."""
  gamma, block, n = 0.5, 3, 9
  p = float(_hidden.patchup_probability(gamma, n, block))
  assert p == pytest.approx(gamma * n**2 / (block**2 * (n - block + 1) ** 2))
  method = msda_jax.PatchUp(gamma=gamma, block=block, mode="hard", channel_first=True)
  masks = np.asarray(
    jax.jit(jax.vmap(lambda k: method.sample(k, shape=(2, n, n), lam=0.5).mask))(
      jax.random.split(jax.random.key(1), 600)
    )
  )
  covering = np.array(
    [
      [(min(i + 1, n - 1) - max(i - 1, 0) + 1) * (min(j + 1, n - 1) - max(j - 1, 0) + 1) for j in range(n)]
      for i in range(n)
    ]
  )
  expected = (1 - p) ** covering
  observed = masks[:, 0].mean(0)
  stderr = np.sqrt(expected * (1 - expected) / len(masks))
  assert np.all(np.abs(observed - expected) <= 5 * stderr + 1e-3)
  assert not np.all(np.abs(observed - (1 - p) ** 9) <= 5 * stderr + 1e-3), "a square law ignoring the border passed"
  assert not np.array_equal(masks[:, 0], masks[:, 1]), "channels share their squares"
  soft = msda_jax.PatchUp(gamma=gamma, block=block, channel_first=True).sample(
    jax.random.key(2), shape=(2, n, n), lam=0.3
  )
  assert set(np.unique(np.asarray(soft.mask)).tolist()) <= {np.float32(0.3), 1.0}
  assert float(soft.weight) == pytest.approx(float(np.asarray(soft.mask).mean()), abs=1e-6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_takes_the_hook_at_its_stages(name):
  model = nnx.eval_shape(lambda: get_model(name, num_classes=K, rngs=nnx.Rngs(0), **tiny(name)))
  seen = []
  out = nnx.eval_shape(
    lambda m, x: m(x, mix=lambda layer, h: (seen.append(layer), h)[1]),
    model,
    jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32),
  )
  assert out.shape == (2, K)
  assert seen == list(range(model.num_stages + 1))


@pytest.mark.parametrize(
  "method",
  [msda_jax.ManifoldMixup(layers=(0, 1, 2, 3)), msda_jax.PatchUp(block=3, layers=(1, 3))],
  ids=["manifold", "patchup"],
)
def test_the_train_step_trains_with_a_hidden_method(method):
  tx = optax.sgd(0.05)
  graphdef, state, opt = init_train_state(SmallCNN(K, width=4, in_channels=1, rngs=nnx.Rngs(0)), tx)
  traces = []

  def counted(*args):
    traces.append(1)
    return make_train_step(graphdef=graphdef, tx=tx, mixer=None, weight_decay=5e-4)(*args)

  step = jax.jit(counted)
  batch = {"image": features((12, 12, 1), 5), "label": LABELS}
  losses = []
  for alpha in (2.0, 0.5, 1.0):
    mixer = msda_jax.Mixer(method.replace(alpha=alpha), num_classes=K)
    state, opt, metrics = step(state, opt, batch, jax.random.key(3), mixer)
    losses.append(float(metrics["loss"]))
  assert len(traces) == 1 and np.all(np.isfinite(losses))
  # Not mixing at all would give the targets' one-hot rows: a mixed batch's loss differs.
  plain = jax.jit(make_train_step(graphdef=graphdef, tx=tx, mixer=None, weight_decay=5e-4))
  assert float(plain(state, opt, batch, jax.random.key(3))[2]["loss"]) != losses[-1]


def test_a_layer_the_model_does_not_have_raises():
  tx = optax.sgd(0.1)
  graphdef, state, opt = init_train_state(SmallCNN(K, width=4, in_channels=1, rngs=nnx.Rngs(0)), tx)
  mixer = msda_jax.Mixer(msda_jax.ManifoldMixup(layers=(1, 4)), num_classes=K)
  step = make_train_step(graphdef=graphdef, tx=tx, mixer=mixer, weight_decay=0.0)
  with pytest.raises(ValueError, match=r"layers=\(1, 4\): the model has no mixable layer 4"):
    jax.eval_shape(step, state, opt, {"image": jnp.zeros((B, 8, 8, 1)), "label": LABELS}, jax.random.key(0))


def test_the_experiment_config_checks_the_layers_before_any_work():
  from experiments import train
  from experiments.configs import default

  config = default.get_config()
  config.method = "manifold_mixup(layers=(0, 5))"
  with pytest.raises(ValueError, match=r"^method: layers=\(0, 5\): the model has layers 0 \(the input\) to"):
    train.check_config(config, 1)
  config.method = "patchup(layers=(1, 2), block=5)"
  train.check_config(config, 1)


@pytest.mark.parametrize(
  "build, pattern",
  [
    (lambda: msda_jax.ManifoldMixup(layers=()), r"layers must be a non-empty tuple of ints >= -1"),
    (lambda: msda_jax.ManifoldMixup(layers=(1, 1)), r"layers must be distinct"),
    (lambda: msda_jax.ManifoldMixup(layers=(-2,)), r"layers must be a non-empty tuple of ints >= -1"),
    (lambda: msda_jax.PatchUp(block=4), r"block must be an odd int >= 1"),
    (lambda: msda_jax.PatchUp(mode="medium"), r"mode must be one of \('soft', 'hard'\)"),
    (lambda: msda_jax.PatchUp(gamma=1.5), r"gamma must lie in \[0.0, 1.0\]"),
    (lambda: msda_jax.from_string("manifold_mixup(alpha=0)"), r"alpha must be > 0"),
  ],
)
def test_bad_construction_names_the_argument(build, pattern):
  with pytest.raises(ValueError, match=pattern):
    build()


def test_on_images_a_hidden_method_is_layer_zero():
  """``mix_batch`` with Manifold Mixup mixes the images as Mixup does with the same lam."""
  x = features((6, 6, 3), 1)
  mixed, targets = msda_jax.mix_batch(jax.random.key(0), x, LABELS, msda_jax.ManifoldMixup(), num_classes=K, lam=0.3)
  reference = msda_jax.mix_batch(jax.random.key(0), x, LABELS, msda_jax.Mixup(), num_classes=K, lam=0.3)
  np.testing.assert_allclose(np.asarray(mixed), np.asarray(reference[0]), atol=1e-6)
  np.testing.assert_allclose(np.asarray(targets), np.asarray(reference[1]), atol=1e-6)
