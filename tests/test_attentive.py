"""Attentive CutMix: the top-k cells of the image's own map, the model's features in the train step.

The masks are compared with a numpy rewriting of the rule (cell means, a stable sort, the
``floor(lam * cells)`` count clipped to ``[1, cells]``) on random maps (seed 5, 20 pairs per case,
2-D and 3-D grids); a rule that keeps the *lowest* cells fails the same comparison. The train
step's map is the channel mean of the model's features at the declared layer (compared with
``features_at`` on the model in inference mode), and a model without that layer, a grid that
does not divide the image and a fixed ``k`` given a ``lam`` raise before any work.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from test_errors import no_work  # noqa: F401 (a fixture)

import msda_jax
from msda_jax.masks import _attentive


def numpy_mask(saliency, grid, k):
  shape = saliency.shape
  split = [v for n in shape for v in (grid, n // grid)]
  means = saliency.reshape(split).mean(axis=tuple(range(1, 2 * len(shape), 2))).ravel()
  chosen = np.argsort(-means, kind="stable")[:k]
  cells = np.zeros(means.size)
  cells[chosen] = 1.0
  cells = cells.reshape((grid,) * len(shape))
  for axis, n in enumerate(shape):
    cells = np.repeat(cells, n // grid, axis=axis)
  return cells


@pytest.mark.parametrize(("shape", "grid", "top_k"), [((8, 12), 4, 5), ((8, 12), 4, None), ((4, 6, 6), 2, None)])
def test_masks_match_a_numpy_rewriting(shape, grid, top_k):
  rng = np.random.default_rng(5)
  method = msda_jax.AttentiveCutMix(grid=grid, top_k=top_k)
  cells = grid ** len(shape)
  for i in range(20):
    saliency = rng.gamma(0.5, size=shape).astype(np.float32)
    lam = np.float32(rng.uniform())
    data = msda_jax.PairData(jnp.zeros((*shape, 3)), jnp.ones((*shape, 3)), jnp.asarray(saliency), jnp.zeros(shape))
    given = None if top_k is not None else lam
    out = method.sample(jax.random.key(i), shape=shape, lam=given, data=data)
    k = top_k if top_k is not None else int(np.clip(np.floor(np.float64(lam) * cells), 1, cells))
    want = numpy_mask(saliency, grid, k)
    np.testing.assert_array_equal(np.asarray(out.mask), want)
    assert float(out.weight) == pytest.approx(k / cells, abs=1e-7)
    # A rule keeping the least attended cells (the sign flipped) is refused by the same check.
    assert not np.array_equal(numpy_mask(-saliency, grid, k), want)


def test_the_image_keeps_its_attended_cells_in_the_mixed_batch():
  # Each image attends to one 4 x 4 corner; with top_k=1 of 2 x 2 cells that corner is its own.
  images = jnp.stack([jnp.full((8, 8, 1), float(b)) for b in range(4)])
  saliency = np.zeros((4, 8, 8), np.float32)
  corners = [(0, 0), (0, 4), (4, 0), (4, 4)]
  for b, (r, c) in enumerate(corners):
    saliency[b, r : r + 4, c : c + 4] = 1.0
  method = msda_jax.AttentiveCutMix(grid=2, top_k=1)
  mixed, targets, info = msda_jax.mix_batch_with_info(
    jax.random.key(0), images, jnp.arange(4), method, num_classes=4, saliency=jnp.asarray(saliency)
  )
  partner = np.asarray(info.partner)
  for b, (r, c) in enumerate(corners):
    own = np.zeros((8, 8), bool)
    own[r : r + 4, c : c + 4] = True
    np.testing.assert_array_equal(np.asarray(mixed[b, ..., 0])[own], b)
    np.testing.assert_array_equal(np.asarray(mixed[b, ..., 0])[~own], partner[b])
  np.testing.assert_allclose(np.asarray(info.weight), 0.25)
  np.testing.assert_allclose(np.asarray(targets)[np.arange(4), np.arange(4)], 0.25)


def test_the_train_step_reads_the_models_features():
  from msda_jax.train import hidden, init_train_state, make_train_step
  from msda_jax.train.models import SmallCNN

  model = SmallCNN(5, width=4, in_channels=3, rngs=nnx.Rngs(0))
  images = jax.random.uniform(jax.random.key(1), (8, 16, 16, 3))
  labels = jnp.arange(8) % 5
  method = msda_jax.AttentiveCutMix(grid=4, top_k=3)
  view = msda_jax.ModelView(
    loss=lambda x: jnp.sum(x), to_input=lambda x: x, features=lambda x, layer: hidden.features_at(model, x, layer)
  )
  model.eval()
  saliency = method.prepare(jax.random.key(2), view, images, labels)["saliency"]
  features = hidden.features_at(model, images, model.num_stages)
  assert features.shape[1:3] == (4, 4)
  activation = np.asarray(features).mean(-1)
  expected = np.repeat(np.repeat(activation, 4, axis=1), 4, axis=2)
  expected -= expected.min(axis=(1, 2), keepdims=True)
  np.testing.assert_allclose(np.asarray(saliency), expected, atol=1e-6)
  # The jitted step runs the method from the model it trains (one more forward pass, no callback).
  model.train()
  tx = optax.sgd(0.1)
  graphdef, state, opt = init_train_state(model, tx)
  step = jax.jit(
    make_train_step(graphdef=graphdef, tx=tx, mixer=msda_jax.Mixer(method, num_classes=5), weight_decay=0.0)
  )
  text = step.lower(state, opt, {"image": images, "label": labels}, jax.random.key(0)).as_text()
  assert "callback" not in text
  new_state, _, metrics = step(state, opt, {"image": images, "label": labels}, jax.random.key(0))
  assert np.isfinite(float(metrics["loss"]))
  changed = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(new_state), strict=True)]
  assert any(changed)


@pytest.mark.parametrize(
  "build, call, pattern",
  [
    ({"grid": 0}, None, r"grid must be a positive int"),
    ({"top_k": 0}, None, r"top_k must be a positive int or None"),
    ({"layer": -2}, None, r"layer must be an int >= -1"),
    ({"grid": 3}, {}, r"grid=3 must divide every spatial axis \(8, 8\)"),
    ({"grid": 2, "top_k": 5}, {}, r"top_k=5 must not exceed the 4 cells of grid=2"),
    ({"grid": 2, "top_k": 2}, {"lam": 0.5}, r"lam cannot be given to AttentiveCutMix with top_k=2"),
    ({"grid": 2, "top_k": 2}, {"saliency": None}, r"AttentiveCutMix reads the images: pass saliency="),
  ],
)
@pytest.mark.usefixtures("no_work")
def test_bad_input_raises_before_any_work(build, call, pattern):
  with pytest.raises(ValueError, match=pattern):
    method = msda_jax.AttentiveCutMix(**build)
    kwargs = {"saliency": jnp.ones((4, 8, 8))} | (call or {})
    msda_jax.mix_batch(jax.random.key(0), jnp.ones((4, 8, 8, 3)), jnp.arange(4), method, num_classes=4, **kwargs)


def test_a_layer_the_model_lacks_raises_in_the_step_and_in_the_config():
  from experiments import train
  from experiments.configs import mnist_compare
  from msda_jax.train import hidden
  from msda_jax.train.models import SmallCNN

  model = SmallCNN(5, width=4, in_channels=1, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match=r"layer=5: the model has no mixable layer 5"):
    hidden.features_at(model, jnp.ones((2, 16, 16, 1)), 5)
  config = mnist_compare.get_config("attentive_cutmix,0")
  train.check_config(config, 1)  # the listed configuration is valid
  config.method = "attentive_cutmix(layer=5, grid=4)"
  with pytest.raises(ValueError, match=r"^method: layer=5: the model has layers 0 \(the input\) to 3"):
    train.check_config(config, 1)
  config.method = "attentive_cutmix(grid=3)"
  with pytest.raises(ValueError, match=r"^method: grid=3 must divide every spatial axis \(16, 16\)"):
    train.check_config(config, 1)


def test_attention_map_keeps_the_order_of_the_cells():
  features = jax.random.normal(jax.random.key(3), (2, 4, 4, 6))
  out = np.asarray(_attentive.attention_map(features, (8, 8)))
  assert out.min() == 0.0
  means = np.asarray(features).mean(-1)
  np.testing.assert_array_equal(np.argsort(out[:, ::2, ::2].reshape(2, -1), 1), np.argsort(means.reshape(2, -1), 1))
