"""The checklist of torchvision's v2 MixUp / CutMix tests, reimplemented for ``mix_batch``.

Output shapes ``[B, H, W, C]`` and ``[B, K]``; label rows summing to 1; exactly two non-zero
label entries per row after one op on distinct one-hot labels, at most three after two;
probability labels; the same numbers on two devices; odd batch sizes for every pairing (no
"batch size should be even"); ``pairing="roll"`` is torchvision's ``roll(1, 0)``.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import msda_jax

H, W, C = 12, 10, 3
BATCH, CLASSES = 6, 7
METHODS = ("mixup", "cutmix")
MODES = ("batch", "example")
PAIRINGS = ("reverse", "roll", "permute")
# One backend setting and one set of static options for every call: few compilations.
FAST = {"xla_backend_optimization_level": 0}


@functools.partial(jax.jit, static_argnames=("num_classes", "mode"), compiler_options=FAST)
def mix(key, images, labels, method, *, num_classes=CLASSES, mode="batch"):
  """``mix_batch`` with torchvision's pairing (``roll``) and the draws returned."""
  return msda_jax.mix_batch_with_info(key, images, labels, method, num_classes=num_classes, mode=mode, pairing="roll")


@functools.partial(jax.jit, compiler_options=FAST)
def mix_every_pairing(key, images, labels):
  """Mixup with every pairing and mode, in one program."""
  return {
    (pairing, mode): msda_jax.mix_batch_with_info(
      key, images, labels, msda_jax.Mixup(), num_classes=3, mode=mode, pairing=pairing
    )
    for pairing in PAIRINGS
    for mode in MODES
  }


def make_images(batch=BATCH, seed=0):
  return jnp.asarray(np.random.default_rng(seed).uniform(0.0, 1.0, (batch, H, W, C)), jnp.float32)


def nonzero_per_row(targets):
  return (np.asarray(targets) > 1e-6).sum(axis=-1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("spec", METHODS)
def test_shapes_and_two_classes_per_row(spec, mode):
  """One op on distinct one-hot labels: rows sum to 1 with exactly two non-zero entries."""
  images = make_images()
  labels = jnp.arange(BATCH)  # distinct classes, K = BATCH + 1
  mixed, targets, info = mix(jax.random.key(1), images, labels, msda_jax.from_string(spec), mode=mode)
  assert mixed.shape == (BATCH, H, W, C) and mixed.dtype == images.dtype
  assert targets.shape == (BATCH, CLASSES) and targets.dtype == jnp.float32
  t = np.asarray(targets)
  np.testing.assert_allclose(t.sum(-1), 1.0, rtol=1e-6)
  assert np.all(t >= 0.0)
  weight = np.asarray(info.weight)
  assert np.all((weight > 0.0) & (weight < 1.0)), weight  # mixing happened in every row
  np.testing.assert_array_equal(nonzero_per_row(t), 2)
  # The two classes are the row's own and its partner's, weighted by the realised mask mean.
  rows = np.arange(BATCH)
  np.testing.assert_allclose(t[rows, rows], weight, rtol=1e-6)
  np.testing.assert_allclose(t[rows, np.asarray(info.partner)], 1.0 - weight, rtol=1e-6)


@pytest.mark.parametrize("spec", METHODS)
def test_two_ops_give_at_most_three_classes_per_row(spec):
  images, labels = make_images(), jnp.arange(BATCH)
  method = msda_jax.from_string(spec)
  once_x, once_y, _ = mix(jax.random.key(2), images, labels, method)
  _, twice_y, _ = mix(jax.random.key(3), once_x, once_y, method)  # probability labels now
  counts = nonzero_per_row(twice_y)
  assert np.all(counts <= 3), counts
  assert np.all(counts == 3), counts  # roll twice: classes i, i - 1 and i - 2
  np.testing.assert_allclose(np.asarray(twice_y).sum(-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("spec", METHODS)
def test_probability_labels(spec, mode):
  probs = jax.nn.softmax(jax.random.normal(jax.random.key(4), (BATCH, CLASSES)), axis=-1)
  _, targets, info = mix(jax.random.key(5), make_images(), probs, msda_jax.from_string(spec), mode=mode)
  assert targets.shape == (BATCH, CLASSES)
  w = np.asarray(info.weight)[:, None]
  p = np.asarray(probs)
  want = w * p + (1.0 - w) * p[np.asarray(info.partner)]
  np.testing.assert_allclose(np.asarray(targets), want, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(np.asarray(targets).sum(-1), 1.0, rtol=1e-5)


def test_probability_labels_without_num_classes():
  """The width is then taken from the labels."""
  probs = jax.nn.softmax(jax.random.normal(jax.random.key(4), (BATCH, CLASSES)), axis=-1)
  args = (jax.random.key(5), make_images(), probs, msda_jax.Mixup())
  _, with_k, _ = mix(*args)
  _, without_k, _ = mix(*args, num_classes=None)
  np.testing.assert_array_equal(np.asarray(without_k), np.asarray(with_k))


@pytest.mark.parametrize("spec", METHODS)
def test_same_results_on_two_devices(spec):
  if jax.device_count() < 2:
    pytest.skip("needs two devices")
  images, labels = make_images(), jnp.array([1, 0, 2, 1, 6, 5])
  outputs = []
  for device in jax.devices()[:2]:
    key, x, y = jax.device_put((jax.random.key(6), images, labels), device)
    mixed, targets, _ = mix(key, x, y, msda_jax.from_string(spec), mode="example")
    assert mixed.devices() == {device} and targets.devices() == {device}
    outputs.append((np.asarray(mixed), np.asarray(targets)))
  np.testing.assert_array_equal(outputs[0][0], outputs[1][0])
  np.testing.assert_array_equal(outputs[0][1], outputs[1][1])


@pytest.mark.parametrize("batch", [1, 3, 5])
def test_odd_batch_sizes(batch):
  """timm raises 'batch size should be even'; every pairing here takes any batch size."""
  images = make_images(batch)
  results = mix_every_pairing(jax.random.key(7), images, jnp.arange(batch) % 3)
  for (pairing, mode), (mixed, targets, info) in results.items():
    assert mixed.shape == (batch, H, W, C) and targets.shape == (batch, 3), (pairing, mode)
    np.testing.assert_allclose(np.asarray(targets).sum(-1), 1.0, rtol=1e-6)
    partner = np.asarray(info.partner)
    assert sorted(partner.tolist()) == list(range(batch)), (pairing, mode)  # a permutation
    if pairing == "reverse":
      np.testing.assert_array_equal(partner, np.arange(batch)[::-1])  # the middle pairs with itself
      np.testing.assert_allclose(np.asarray(mixed)[batch // 2], np.asarray(images)[batch // 2], atol=1e-6)


def test_odd_batch_with_default_mixer():
  """The last, odd batch of an epoch goes through the same (default) mixer."""
  mixer = msda_jax.Mixer(msda_jax.CutMix(), num_classes=4)
  for batch in (2, 3):
    x, y = mixer(jax.random.key(8), make_images(batch), jnp.arange(batch))
    assert x.shape == (batch, H, W, C) and y.shape == (batch, 4)


@pytest.mark.parametrize("mode", MODES)
def test_roll_is_torchvision_partner(mode):
  """``pairing="roll"`` pairs example i with i - 1, i.e. torchvision's ``batch.roll(1, 0)``."""
  images = make_images()
  labels = jnp.arange(BATCH)
  x = np.asarray(images)
  rolled = np.roll(x, 1, axis=0)
  np.testing.assert_array_equal(rolled[1], x[0])
  one_hot = np.eye(BATCH, CLASSES)
  rolled_one_hot = np.roll(one_hot, 1, axis=0)

  mixed, targets, info = mix(jax.random.key(9), images, labels, msda_jax.Mixup(), mode=mode)
  np.testing.assert_array_equal(np.asarray(info.partner), (np.arange(BATCH) - 1) % BATCH)
  lam = np.asarray(info.lam)
  np.testing.assert_allclose(
    np.asarray(mixed), lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * rolled, atol=1e-6
  )
  weight = np.asarray(info.weight)
  np.testing.assert_allclose(weight, lam, rtol=1e-5)  # the mean of the constant mask lam
  np.testing.assert_allclose(
    np.asarray(targets), weight[:, None] * one_hot + (1 - weight[:, None]) * rolled_one_hot, atol=1e-6
  )

  # CutMix: each pixel comes from the image or from the rolled batch, as the binary mask says.
  mixed, targets, info = mix(jax.random.key(9), images, labels, msda_jax.CutMix(), mode=mode)
  mask = np.asarray(info.mask)[..., None]
  assert set(np.unique(mask).tolist()) <= {0.0, 1.0}
  np.testing.assert_array_equal(np.asarray(mixed), np.where(mask == 1.0, x, rolled))
  weight = np.asarray(info.weight)
  np.testing.assert_allclose(weight, mask.mean(axis=(1, 2, 3)), rtol=1e-6)
  np.testing.assert_allclose(
    np.asarray(targets), weight[:, None] * one_hot + (1 - weight[:, None]) * rolled_one_hot, atol=1e-6
  )
