"""Models of ``msda_jax.train.models``: tiny versions run in train and eval mode; full-size counts.

Tiny versions (``width=4``) keep the published depth (the ViTs: two blocks of width 8 on 32 x 32
images, ``model_options``); full-size parameter counts come from abstract models
(``nnx.eval_shape``), so nothing large is allocated. A model without BatchNorm (the ViTs)
computes the same in train and eval mode.
"""

import importlib
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from model_options import tiny

from msda_jax.train import models
from msda_jax.train.models.small_cnn import SmallCNN

NUM_CLASSES = 5
TINY = {name: tiny(name) for name in models.MODELS}


def _input_shape(name):
  return (4, 28, 28, 1) if name == "small_cnn" else (4, 32, 32, 3)


def _build(name):
  in_channels = _input_shape(name)[-1]
  rngs = nnx.Rngs(jax.random.key(0, impl="rbg"))
  return models.get_model(name, num_classes=NUM_CLASSES, rngs=rngs, in_channels=in_channels, **TINY[name])


# Tests compile many small programs: XLA's fast path keeps them quick on CPU.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_tiny_model_runs_in_train_and_eval_mode(name):
  graphdef, state = nnx.split(_build(name))
  images = jax.random.normal(jax.random.key(1), _input_shape(name))

  @partial(jax.jit, compiler_options=FAST_COMPILE)
  def forward_train_then_eval(state, images):
    model = nnx.merge(graphdef, state)
    model.train()
    train_logits = model(images)
    model.eval()
    return train_logits, model(images), model(images[:1]), nnx.state(model, nnx.BatchStat)

  train_logits, eval_logits, eval_first, stats = forward_train_then_eval(state, images)
  for logits in (train_logits, eval_logits):
    assert logits.shape == (4, NUM_CLASSES) and logits.dtype == jnp.float32
    assert np.all(np.isfinite(logits))
  before = jax.tree.leaves(nnx.split_state(state, nnx.BatchStat, ...)[0])
  if not before:  # no BatchNorm: one computation in both modes
    np.testing.assert_allclose(train_logits, eval_logits, rtol=1e-6, atol=1e-6)
    return
  # Train mode normalises with batch statistics and moves every running average ...
  assert all(not np.allclose(a, b) for a, b in zip(before, jax.tree.leaves(stats), strict=True))
  assert not np.allclose(train_logits, eval_logits)
  # ... which eval mode uses: an example's logits do not depend on the rest of the batch.
  np.testing.assert_allclose(eval_first, eval_logits[:1], rtol=1e-4, atol=1e-5)


# Trainable parameters of the full-size models (BatchNorm scales and biases included, running
# statistics not), and the published figures they must match to the stated relative tolerance.
FULL_SIZE = [
  # name, classes, exact count, published count, tolerance
  ("preact_resnet18", 100, 11_218_340, 11.2e6, 0.01),
  ("preact_resnet34", 100, 21_326_500, 21.3e6, 0.01),
  ("preact_resnet50", 100, 23_697_572, 23.7e6, 0.01),
  ("wide_resnet28_2", 100, 1_479_220, 1.5e6, 0.02),
  ("wide_resnet28_2", 10, 1_467_610, 1.467e6, 0.001),
  ("resnet56", 100, 858_868, 0.86e6, 0.01),
  ("resnet56", 10, 853_018, 0.85e6, 0.01),
  ("resnet50", 1000, 25_557_032, 25.557e6, 0.001),
  ("small_cnn", 10, 94_762, 94_762, 0.0),
  ("vit_tiny", 1000, 5_717_416, 5.7e6, 0.01),  # DeiT-Ti, published 5.7M
]


@pytest.mark.parametrize(("name", "classes", "exact", "published", "rtol"), FULL_SIZE)
def test_full_size_parameter_counts(name, classes, exact, published, rtol):
  abstract = nnx.eval_shape(lambda: models.get_model(name, num_classes=classes, rngs=nnx.Rngs(0)))
  count = models.count_params(abstract)
  assert count == exact
  assert abs(count - published) <= rtol * published


def test_depth_width_and_shortcut_options():
  abstract = lambda **kw: nnx.eval_shape(lambda: models.CifarResNet(10, rngs=nnx.Rngs(0), **kw))
  # The 1x1 projections add two convolutions and BatchNorms: 16*32 + 32*64 + 2*(32 + 64) weights.
  assert models.count_params(abstract(shortcut="conv")) - models.count_params(abstract()) == 2752
  assert models.count_params(abstract(depth=20)) == 269_722  # ResNet-20, published 0.27M
  with pytest.raises(ValueError, match="depth"):
    models.CifarResNet(10, depth=51, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="shortcut"):
    models.CifarResNet(10, shortcut="zeros", rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="depth"):
    models.WideResNet(10, depth=27, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="name must be one of"):
    models.get_model("vgg16", num_classes=10, rngs=nnx.Rngs(0))


def test_small_cnn_pools_by_window_mean_or_maximum():
  """``pool="avg"`` pools each 2x2 window to its mean, ``"max"`` to its largest value: each
  network's logits against a forward pass written out with numpy's window means or maxima."""
  x = np.asarray(jax.random.normal(jax.random.key(0), (2, 8, 8, 1)))
  reduce = {"avg": np.mean, "max": np.max}
  for pool in SmallCNN.OPTIONS["pool"]:
    model = SmallCNN(10, width=2, in_channels=1, pool=pool, activation="softplus", rngs=nnx.Rngs(0))
    model.eval()
    out = x
    for index, (conv, bn) in enumerate(zip(model.convs, model.bns, strict=True)):
      out = np.asarray(nnx.softplus(bn(conv(jnp.asarray(out)))))
      if index < 2:
        b, h, w, c = out.shape
        out = reduce[pool](out.reshape(b, h // 2, 2, w // 2, 2, c), axis=(2, 4))
    expected = model.head(jnp.asarray(out.mean(axis=(1, 2))))
    np.testing.assert_allclose(model(jnp.asarray(x)), expected, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="pool must be one of"):
    SmallCNN(10, pool="median", rngs=nnx.Rngs(0))


@pytest.mark.parametrize("module", ["msda_jax.train", "msda_jax.train.models"])
def test_every_public_name_imports(module):
  mod = importlib.import_module(module)
  assert len(set(mod.__all__)) == len(mod.__all__)
  for name in mod.__all__:
    assert getattr(mod, name) is not None, f"{module}.{name}"


@pytest.mark.parametrize("shape", [(3, 3, 4, 8), (1, 1, 16, 32), (7, 7, 3, 64)])
@pytest.mark.parametrize("jitted", [False, True])
def test_kernel_init_draws_flax_he_normal_bit_for_bit(shape, jitted):
  # The flat draw reshaped is the draw of the shape (row-major element numbering): the models'
  # initial parameters are those of nnx.initializers.variance_scaling(2.0, "fan_out", "normal").
  from msda_jax.train.models import _layers

  reference = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")
  run = jax.jit if jitted else (lambda f: f)
  key = jax.random.key(sum(shape))
  ours = run(lambda k: _layers.KERNEL_INIT(k, shape))(key)
  theirs = run(lambda k: reference(k, shape))(key)
  np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
