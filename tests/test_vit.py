"""The ViT: its attention read-out (sown only under capture, equal to the last block's class-token
attention recomputed by hand), its mixing hook over the tokens, a train step that relabels from the
read-out, and its errors. Tiny models (width 8, two blocks, 16 x 16 images, patch 4)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import msda_jax
from msda_jax.train import init_train_state, make_train_step
from msda_jax.train.models import ViT

K = 3


def tiny(seed=0):
  return ViT(K, width=8, depth=2, heads=2, patch=4, image_size=16, rngs=nnx.Rngs(seed))


def images(batch=4, seed=1):
  return jnp.asarray(np.random.default_rng(seed).uniform(size=(batch, 16, 16, 3)), jnp.float32)


def test_attention_is_sown_under_capture_only_and_is_the_last_blocks_class_row():
  model, x = tiny(), images()
  logits, sown = nnx.capture(model, nnx.Intermediate)(x)
  found = [v.get_value() for path, v in nnx.to_flat_state(sown) if path[-1] == "attention"]
  attention = found[-1][-1] if isinstance(found[-1], tuple) else found[-1]
  assert attention.shape == (4, 4, 4)
  # By hand: the tokens before the last block, then its attention's class-token row.
  patches = model.embed(x).reshape(4, 16, 8)
  tokens = jnp.concatenate([jnp.broadcast_to(model.cls_token[...], (4, 1, 8)), patches], 1) + model.position[...]
  tokens, _ = model.blocks[0](tokens)
  _, last = model.blocks[1](tokens)
  expected = np.asarray(last[:, :, 0, 1:].mean(1)).reshape(4, 4, 4)
  np.testing.assert_allclose(np.asarray(attention), expected, rtol=1e-5, atol=1e-7)
  share = np.asarray(attention).sum((1, 2))
  assert np.all((share > 0) & (share < 1))  # the class token keeps the rest of its row
  np.testing.assert_allclose(np.asarray(logits), np.asarray(model(x)), rtol=1e-6)
  assert not jax.tree.leaves(nnx.state(model, nnx.Intermediate))  # a plain call sows nothing


def test_the_hook_sees_the_image_then_the_tokens_after_each_block():
  seen = []
  tiny()(images(), mix=lambda layer, h: (seen.append((layer, h.shape)), h)[1])
  assert seen == [(0, (4, 16, 16, 3)), (1, (4, 17, 8)), (2, (4, 17, 8))]


def test_a_train_step_relabels_from_the_attention():
  """TransMix in the jitted step: with ``ratio = 1`` (the area alone) its loss is CutMix's to float
  rounding, with ``ratio = 0.5`` the attention moves it; ``ratio`` is traced (one compilation)."""
  tx = optax.sgd(0.0)
  graphdef, state, opt = init_train_state(tiny(), tx)
  step = jax.jit(make_train_step(graphdef=graphdef, tx=tx, mixer=None, weight_decay=0.0))
  batch = {"image": images(), "label": jnp.arange(4) % K}
  loss = lambda method: float(
    step(state, opt, batch, jax.random.key(3), msda_jax.Mixer(method, num_classes=K))[2]["loss"]
  )
  box = msda_jax.PatchAligned(msda_jax.CutMix(minmax=(0.4, 0.8)), patch=4)  # always a box of 1 or 2 tokens a side
  area, attended, cutmix = loss(msda_jax.TransMix(box, ratio=1.0)), loss(msda_jax.TransMix(box, ratio=0.5)), loss(box)
  assert np.isfinite(attended) and abs(area - cutmix) < 1e-6 and abs(attended - area) > 1e-4
  assert np.isfinite(loss(msda_jax.MixPro(cell=4)))  # the relabel that reads the logits too


def test_tokenmix_reads_the_attention_of_the_unmixed_batch_in_the_step():
  """TokenMix's ``prepare``: the class-token attention of the clean batch (inference mode), spread
  over each token's pixels (token sums kept); the jitted step trains on it."""
  from msda_jax.masks._tokenmix import attention_saliency
  from msda_jax.train.step import sown_output

  model, x = tiny(), images()
  attention = sown_output(model, "attention", x)
  spread = attention_saliency(attention, (16, 16))
  np.testing.assert_allclose(np.asarray(spread).reshape(4, 4, 4, 4, 4).sum((2, 4)), np.asarray(attention), rtol=1e-5)
  tx = optax.sgd(0.1)
  graphdef, state, opt = init_train_state(model, tx)
  mixer = msda_jax.Mixer(msda_jax.TokenMix(patch=4, alpha=1.0), num_classes=K)
  step = jax.jit(make_train_step(graphdef=graphdef, tx=tx, mixer=mixer, weight_decay=0.0))
  new, _, metrics = step(state, opt, {"image": x, "label": jnp.arange(4) % K}, jax.random.key(0))
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), nnx.state(new, nnx.Param), nnx.state(state, nnx.Param))
  assert np.isfinite(float(metrics["loss"])) and max(jax.tree.leaves(moved)) > 0


def test_smmix_trains_the_token_head_through_its_loss_terms():
  model = ViT(K, width=8, depth=2, heads=2, patch=4, image_size=16, token_head=True, rngs=nnx.Rngs(0))
  tx = optax.sgd(0.1)
  graphdef, state, opt = init_train_state(model, tx)
  mixer = msda_jax.Mixer(msda_jax.SMMix(patch=4), num_classes=K)
  step = jax.jit(make_train_step(graphdef=graphdef, tx=tx, mixer=mixer, weight_decay=0.0))
  new, _, metrics = step(state, opt, {"image": images(), "label": jnp.arange(4) % K}, jax.random.key(0))
  head = lambda s: nnx.state(s, nnx.Param)["token_head"]["kernel"][...]
  assert np.isfinite(float(metrics["loss"])) and float(jnp.abs(head(new) - head(state)).max()) > 0
  assert model.sown == ("attention", "token_logits") and tiny().sown == ("attention",)


def test_a_model_that_sows_no_attention_is_refused_by_name():
  from msda_jax.train.models import SmallCNN

  tx = optax.sgd(0.0)
  graphdef, state, opt = init_train_state(SmallCNN(K, width=4, in_channels=3, rngs=nnx.Rngs(0)), tx)
  step = make_train_step(
    graphdef=graphdef, tx=tx, mixer=msda_jax.Mixer(msda_jax.TransMix(), num_classes=K), weight_decay=0.0
  )
  with pytest.raises(ValueError, match=r"the method reads the model output 'attention': the model must sow it"):
    jax.eval_shape(step, state, opt, {"image": images(), "label": jnp.arange(4) % K}, jax.random.key(0))


@pytest.mark.parametrize(
  "build, pattern",
  [
    (lambda: ViT(K, width=8, heads=3, patch=4, image_size=16, rngs=nnx.Rngs(0)), r"width must be a multiple of heads"),
    (lambda: ViT(K, width=8, heads=2, patch=5, image_size=16, rngs=nnx.Rngs(0)), r"patch=5 must divide image_size=16"),
    (lambda: ViT(K, width=8, depth=0, heads=2, patch=4, image_size=16, rngs=nnx.Rngs(0)), r"depth must be an int >= 1"),
    (lambda: tiny()(jnp.zeros((1, 32, 32, 3))), r"images must be 16 x 16 for this ViT"),
  ],
)
def test_bad_options_and_inputs(build, pattern):
  with pytest.raises(ValueError, match=pattern):
    build()


def test_the_config_check_refuses_a_model_that_sows_no_attention_before_any_work():
  from experiments import train
  from experiments.configs import mnist_vit

  for method, name in (("transmix", "TransMix"), ("tokenmix", "TokenMix"), ("smmix", "SMMix")):
    config = mnist_vit.get_config(method)
    train.check_config(config, 1)
    config.model = "small_cnn"
    config.model_token_head = None
    with pytest.raises(ValueError, match=rf"^model: {name} reads the model output '\w+', which small_cnn does not sow"):
      train.check_config(config, 1)
  config = mnist_vit.get_config("smmix")
  config.model_token_head = False
  with pytest.raises(
    ValueError, match=r"^model: SMMix reads .*'token_logits', which vit_digits .* model_token_head=True"
  ):
    train.check_config(config, 1)
