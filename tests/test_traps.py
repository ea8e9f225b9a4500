"""The traps a new user falls into, each a clear error or warning instead of a silent wrong result."""

from __future__ import annotations

import dataclasses
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import msda_jax
from msda_jax import theory

KEY = jax.random.key(0)


@pytest.mark.parametrize("shape", [(32, 32, 3), (8, 8, 1), (28, 28, 4)])
def test_a_shape_with_the_channel_axis_is_refused(shape):
  """``shape=x.shape[1:]`` (channels included) used to give a 3-D mask, and a box law whose size-1
  axis left the box empty: every regulariser 0. Now it names the mistake and the fix."""
  with pytest.raises(ValueError, match=r"^shape=.* ends with what looks like a channel axis .*\(x\.shape\[1:-1\]"):
    msda_jax.CutMix().sample(KEY, shape=shape)
  with pytest.raises(ValueError, match=r"ends with what looks like a channel axis"):
    theory.method_coefficients(msda_jax.CutMix(), shape=shape)


def test_genuine_3d_shapes_are_taken():
  """A video (T, H, W) or a small cube is not mistaken for a channel axis."""
  assert msda_jax.CutMix().sample(KEY, shape=(4, 8, 8)).mask.shape == (4, 8, 8)
  assert msda_jax.Mixup().sample(KEY, shape=(4, 4, 4)).mask.shape == (4, 4, 4)


def test_coefficients_over_a_grid_with_channels_are_refused():
  """Hand-made coefficients over ``(8, 8, 1)`` used to pass for ``[m, 8, 8, 1]`` inputs (only the size was compared)."""
  good = theory.method_coefficients(msda_jax.Mixup(), shape=(8, 8))
  bad = dataclasses.replace(good, mean=good.mean.reshape(8, 8, 1))
  x = jnp.zeros((2, 8, 8, 1))
  f = lambda z: jnp.sum(z)
  with pytest.raises(ValueError, match=r"coefficients are over the grid \(8, 8, 1\), which ends with .* channel axis"):
    theory.regularizers_exact(f, x, jnp.zeros(2), bad)
  theory.regularizers_exact(f, x, jnp.zeros(2), good)  # the spatial grid is taken


def _labels(batch):
  return jnp.arange(batch) % 4


def test_channels_first_images_warn_with_the_fix():
  """``[8, 3, 32, 32]`` used to be mixed as 3 x 32 images with 32 channels (the box cut across channels)."""
  x = jnp.zeros((8, 3, 32, 32))
  with pytest.warns(UserWarning, match=r"look channels-first .* jnp\.moveaxis\(images, 1, -1\)"):
    msda_jax.mix_batch(KEY, x, _labels(8), msda_jax.CutMix(), num_classes=4)
  for shape in [(8, 32, 32, 3), (8, 4, 4, 512), (8, 28, 28, 1)]:  # channels last, a feature map: no warning
    with warnings.catch_warnings():
      warnings.simplefilter("error")
      msda_jax.mix_batch(KEY, jnp.zeros(shape), _labels(8), msda_jax.CutMix(), num_classes=4)


def test_float64_images_without_x64_warn():
  """float64 images came back float32 without a word (JAX holds float32 unless its 64-bit mode is on)."""
  x = np.zeros((4, 8, 8, 3), np.float64)
  with pytest.warns(UserWarning, match=r"images are float64 but JAX's 64-bit mode is off"):
    mixed, _ = msda_jax.mix_batch(KEY, x, _labels(4), msda_jax.Mixup(), num_classes=4)
  assert mixed.dtype == jnp.float32


def test_an_integer_key_and_return_info_in_a_call_get_clear_errors():
  x = jnp.zeros((4, 8, 8, 3))
  mixer = msda_jax.Mixer(msda_jax.Mixup(), num_classes=4)
  with pytest.raises(TypeError, match=r"^key must be a PRNG key \(jax\.random\.key\(0\)\); got the int 0"):
    mixer(0, x, _labels(4))
  with pytest.raises(TypeError, match=r"^return_info is not an option of a call: .* mixer\.with_info"):
    mixer(KEY, x, _labels(4), return_info=True)


def test_messages_show_plain_numbers():
  """Values in messages read ``1.5``, not numpy's ``np.float32(1.5)``."""
  with pytest.raises(ValueError, match=r"^prob must lie in \[0\.0, 1\.0\]; got 1\.5\.$"):
    msda_jax.Mixer(msda_jax.Mixup(), prob=np.float32(1.5))
  with pytest.raises(ValueError, match=r"^lam must lie in \[0\.0, 1\.0\]; got 2\.0\.$"):
    msda_jax.Mixer(msda_jax.Mixup(), mode="example", lam=np.array([0.5, 2.0]))


def test_a_model_of_batches_given_to_the_theory_gets_the_wrapping_advice():
  """A model written for batches ``[B, d]`` used to fail deep inside with a raw ``dot_general`` shape error."""
  w = jnp.ones((64, 10)) / 64
  batched = lambda xb: xb.reshape(xb.shape[0], -1) @ w  # [B, 8, 8, 1] -> [B, 10]
  x, y = jnp.ones((4, 8, 8, 1)), jnp.full((4, 10), 0.1)
  coefficients = theory.method_coefficients(msda_jax.Mixup(), shape=(8, 8))
  with pytest.raises(
    ValueError, match=r"failed on one example of shape \(8, 8, 1\).*lambda x: model\(x\[None\]\)\[0\]"
  ):
    theory.regularizers_exact(batched, x, y, coefficients, loss="softmax")
  one = lambda xi: batched(xi[None])[0]  # the advice, followed
  assert jnp.isfinite(theory.regularizers_exact(one, x, y, coefficients, loss="softmax").r2)


def test_check_raises_its_message_without_an_internal_traceback(caplog):
  """``check=True`` used to log JAX's internal traceback of the callback before the error reached the caller."""
  step = jax.jit(lambda a, k, x, y: msda_jax.mix_batch(k, x, y, msda_jax.Mixup(alpha=a), num_classes=4, check=True))
  with pytest.raises(jax.errors.JaxRuntimeError, match=r"CheckError: alpha must be > 0 and finite; got -1\.0"):
    jax.block_until_ready(step(jnp.float32(-1.0), KEY, jnp.zeros((4, 8, 8, 3)), _labels(4)))
  assert not [r for r in caplog.records if "callback failed" in r.getMessage()], caplog.text


def test_a_misspelt_option_names_the_options_and_inputs():
  with pytest.raises(
    TypeError, match=r"^unexpected keyword 'num_clases': the options are the Mixer's fields .*'num_classes'"
  ):
    msda_jax.mix_batch(KEY, jnp.zeros((4, 8, 8, 3)), _labels(4), msda_jax.Mixup(), num_clases=4)
