"""What a method reads besides the images and labels (``msda_jax.needs``), and the train step providing it."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import msda_jax
from msda_jax import needs
from msda_jax._dataclass import pytree_dataclass
from msda_jax.train import make_train_step

B, H, W, C, K = 4, 8, 8, 3, 5


def test_every_method_declares_known_inputs():
  """The data-dependent methods (the pair readers and Co-Mixup, which reads its partitions' maps) require a
  saliency map (SMMix its unmixed predictions too); TransMix reads the model's attention after the
  forward pass, MixPro its logits too, SMMix its per-token logits; every other method reads nothing;
  all names are known."""
  for name, cls in msda_jax.METHODS.items():
    declared = msda_jax.from_string(name).needs()
    assert set(declared.inputs) | set(declared.optional) <= set(needs.INPUT_CHECKS), name
    reads_images = issubclass(cls, (msda_jax.masks.DataMixMethod, msda_jax.CoMixup))
    inputs = ("saliency", "predictions") if cls is msda_jax.SMMix else ("saliency",)
    assert declared.inputs == (inputs if reads_images else ()), name
    reads = {
      msda_jax.TransMix: ("attention",),
      msda_jax.MixPro: ("attention", "logits"),
      msda_jax.SMMix: ("token_logits",),
    }
    assert declared.outputs == reads.get(cls, ()), name
  assert msda_jax.PuzzleMix().needs().optional == ("perturbation",)


def _batch():
  rng = np.random.default_rng(0)
  return jnp.asarray(rng.uniform(size=(B, H, W, C)), jnp.float32), jnp.arange(B) % K


def test_inputs_are_checked_by_name():
  """An unknown input raises; a missing required one raises naming it; a known one a method does not read is ignored."""
  x, y = _batch()
  key = jax.random.key(0)
  with pytest.raises(TypeError, match=r"^unexpected input 'attention': the inputs a method may read are"):
    msda_jax.Mixer(msda_jax.CutMix(), num_classes=K)(key, x, y, attention=jnp.ones((B, H, W)))
  with pytest.raises(ValueError, match=r"^SaliencyMix reads the images: pass saliency="):
    msda_jax.mix_batch(key, x, y, msda_jax.SaliencyMix(), num_classes=K)
  with pytest.raises(ValueError, match=r"^saliency must have shape"):  # checked even where unread
    msda_jax.mix_batch(key, x, y, msda_jax.CutMix(), num_classes=K, saliency=jnp.ones((B, H)))
  plain = msda_jax.mix_batch(key, x, y, msda_jax.CutMix(), num_classes=K)
  ignored = msda_jax.mix_batch(key, x, y, msda_jax.CutMix(), num_classes=K, saliency=jnp.ones((B, H, W)))
  for a, b in zip(plain, ignored, strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytree_dataclass
class AttentionCutMix(msda_jax.CutMix):
  """CutMix whose label weight is the attention the model pays to the image's own pixels (as TransMix)."""

  def needs(self) -> msda_jax.Needs:
    return msda_jax.Needs(outputs=("attention",))

  def relabel(self, targets, info, outputs):
    w = jnp.sum(outputs["attention"] * info.mask, axis=(1, 2))[:, None]
    return w * targets + (1.0 - w) * targets[info.partner]


class Sowing(nnx.Module):
  """A small model that sows a spatial attention map ``[B, H, W]`` (summing to 1 per example)."""

  def __init__(self, rngs: nnx.Rngs):
    self.conv = nnx.Conv(C, 4, (3, 3), rngs=rngs)
    self.head = nnx.Linear(4, K, rngs=rngs)

  def __call__(self, x):
    h = nnx.relu(self.conv(x))
    score = h.mean(-1)
    attention = jax.nn.softmax(score.reshape(score.shape[0], -1), axis=-1).reshape(score.shape)
    if hasattr(self, "__captures__"):  # sown under nnx.capture only, as the library's ViTs do
      self.sow(nnx.Intermediate, "attention", attention)
    return 10.0 * self.head(h.mean((1, 2)))  # confident logits: the targets matter


def _step_loss(mixer, model):
  graphdef, state = nnx.split(model)
  tx = optax.sgd(0.0)
  opt = msda_jax.train.OptimizerState(jnp.zeros((), jnp.int32), tx.init(nnx.split_state(state, nnx.Param, ...)[0]))
  step = jax.jit(make_train_step(graphdef=graphdef, tx=tx, mixer=mixer, weight_decay=0.0))
  x, y = _batch()
  return float(step(state, opt, {"image": x, "label": y}, jax.random.key(7))[2]["loss"])


def test_the_train_step_relabels_from_the_sown_output():
  """The step's loss is the cross-entropy against the targets ``relabel`` makes from the sown attention.

  Recomputed by hand from the same draw (the step's key is ``fold_in(key, step)``): the mixed
  batch, the model's attention on it, ``w = sum(attention * M)``. The same step with plain
  CutMix (label weight ``mean(M)``) gives a loss off by more than 20 times the tolerance, so a
  step that ignored ``relabel`` fails.
  """
  model = Sowing(nnx.Rngs(0))
  mixer = msda_jax.Mixer(AttentionCutMix(), num_classes=K)
  x, y = _batch()
  mixed, _, info = mixer.with_info(jax.random.fold_in(jax.random.key(7), 0), x, y)
  logits, sown = nnx.capture(model, nnx.Intermediate)(mixed)
  attention = sown["attention"].get_value()[-1]
  w = jnp.sum(attention * info.mask, axis=(1, 2))[:, None]
  one_hot = jax.nn.one_hot(y, K)
  targets = w * one_hot + (1 - w) * one_hot[info.partner]
  expected = float(jnp.mean(optax.softmax_cross_entropy(logits, targets)))
  assert np.asarray(info.applied).all() and not np.allclose(w[:, 0], info.weight, atol=1e-3)
  assert _step_loss(mixer, Sowing(nnx.Rngs(0))) == pytest.approx(expected, rel=1e-5)
  plain = _step_loss(msda_jax.Mixer(msda_jax.CutMix(), num_classes=K), Sowing(nnx.Rngs(0)))
  assert abs(plain - expected) > 20 * 1e-5 * expected  # 20 times the tolerance the relabelled step meets


def test_a_model_that_does_not_sow_the_output_gets_a_clear_error():
  from msda_jax.train.models import SmallCNN

  with pytest.raises(ValueError, match=r"reads the model output 'attention': the model must sow it"):
    _step_loss(msda_jax.Mixer(AttentionCutMix(), num_classes=K), SmallCNN(K, width=4, in_channels=C, rngs=nnx.Rngs(0)))
