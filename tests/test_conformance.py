"""One conformance suite that every mixing method passes, in both modes.

Checks shape and dtype kept, label rows summing to 1, label weight equal to the realised mask
mean, the mixed images recomputed from the realised masks, determinism per key, jitted ==
eager, vmap over keys, and no recompilation when hyper-parameters change.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import METHOD_SPECS

import msda_jax

BATCH, SHAPE, CHANNELS, CLASSES = 6, (10, 13), 3, 5
MODES = ("batch", "example")
STATIC = ("num_classes", "mode", "pairing", "spatial_ndim", "return_info", "groups", "unbounded")


@functools.cache
def jitted_mix():
  return jax.jit(msda_jax.mix_batch, static_argnames=STATIC)


def pastes(method):
  """Whether the method transforms the partner (its samples carry a ``paste``)."""
  return method.sample(jax.random.key(0), shape=(2, 2)).paste is not None


def make_batch(dtype=jnp.float32, shape=SHAPE, batch=BATCH, seed=1):
  rng = np.random.default_rng(seed)
  images = rng.uniform(0, 255, (batch, *shape, CHANNELS))
  labels = rng.integers(0, CLASSES, batch)
  if dtype == jnp.uint8:
    return jnp.asarray(np.round(images), jnp.uint8), jnp.asarray(labels)
  return jnp.asarray(images / 255.0, dtype), jnp.asarray(labels)


@functools.cache
def run(spec, mode, dtype=jnp.float32, seed=4, prob=1.0):
  """One jitted call with info, cached: most checks share it (one compilation per dtype)."""
  images, labels = make_batch(dtype)
  method = msda_jax.from_string(spec)
  out = jitted_mix()(
    jax.random.key(seed), images, labels, method, num_classes=CLASSES, mode=mode, prob=prob, return_info=True
  )
  return (images, labels, method, *out)


def cases():
  return [pytest.param(spec, mode, id=f"{spec}-{mode}") for spec in METHOD_SPECS for mode in MODES]


@pytest.mark.parametrize(("spec", "mode"), cases())
def test_shapes_dtypes_and_label_rows(spec, mode):
  for dtype in (jnp.float32, jnp.bfloat16, jnp.uint8):
    images, _, _, mixed, targets, _ = run(spec, mode, dtype)
    assert mixed.shape == images.shape and mixed.dtype == images.dtype, dtype
    assert targets.shape == (BATCH, CLASSES) and targets.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(targets).sum(-1), 1.0, rtol=1e-6)
    assert np.all(np.asarray(targets) >= 0.0)


@pytest.mark.parametrize(("spec", "mode"), cases())
def test_label_weight_is_realised_mask_mean_and_images_recompute(spec, mode):
  images, labels, method, mixed, targets, info = run(spec, mode)
  masks = np.asarray(info.mask, np.float64)
  assert masks.shape == (BATCH, *SHAPE)
  assert masks.min() >= 0.0 and masks.max() <= 1.0
  weight = masks.mean(axis=(1, 2))
  np.testing.assert_allclose(np.asarray(info.weight), weight, atol=1e-6)
  onehot = np.eye(CLASSES)[np.asarray(labels)]
  partner = np.asarray(info.partner)
  expected_targets = weight[:, None] * onehot + (1 - weight[:, None]) * onehot[partner]
  np.testing.assert_allclose(np.asarray(targets), expected_targets, atol=1e-6)
  x = np.asarray(images, np.float64)
  m = masks[..., None]
  if pastes(method):
    # Where M = 1 the image is kept exactly; elsewhere it is the pasted, resized partner.
    kept = np.broadcast_to(m == 1.0, x.shape)
    np.testing.assert_array_equal(np.asarray(mixed)[kept], np.asarray(images)[kept])
  else:
    np.testing.assert_allclose(np.asarray(mixed), m * x + (1 - m) * x[partner], atol=1e-5)
  if mode == "batch":
    assert np.allclose(masks, masks[:1]), "batch mode uses one mask for the whole batch"


@pytest.mark.parametrize(("spec", "mode"), cases())
def test_determinism_and_jit_equals_eager(spec, mode):
  images, labels, method, *first = run(spec, mode)
  again = run.__wrapped__(spec, mode)[3:]
  other = run(spec, mode, seed=6)[3:]
  for a, b in zip(first, again, strict=True):
    for leaf_a, leaf_b in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
      np.testing.assert_array_equal(np.asarray(leaf_a), np.asarray(leaf_b))
  assert not np.array_equal(np.asarray(first[0]), np.asarray(other[0])), "different keys must give different mixes"
  eager = msda_jax.mix_batch(jax.random.key(4), images, labels, method, num_classes=CLASSES, mode=mode)
  for a, b in zip(first[:2], eager, strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


@pytest.mark.parametrize(("spec", "mode"), cases())
def test_uint8_rounds_the_float_mix(spec, mode):
  images, _, method, mixed, _, info = run(spec, mode, jnp.uint8)
  x = np.asarray(images, np.float64)
  m = np.asarray(info.mask, np.float64)[..., None]
  if pastes(method):
    kept = np.broadcast_to(m == 1.0, x.shape)
    np.testing.assert_array_equal(np.asarray(mixed)[kept], np.asarray(images)[kept])
    return
  expected = np.clip(np.round(m * x + (1 - m) * x[np.asarray(info.partner)]), 0, 255)
  # float32 arithmetic may land on the other side of .5 for a handful of pixels.
  assert np.abs(np.asarray(mixed, np.float64) - expected).max() <= 1.0
  assert np.mean(np.asarray(mixed, np.float64) == expected) > 0.99


@pytest.mark.parametrize("spec", METHOD_SPECS)
def test_uint8_extremes_stay_in_range(spec):
  """A uint8 mix rounds without a clip: with M in [0, 1] it cannot leave [0, 255] (no wrap-around).

  Each reverse pair (i, B - 1 - i) holds one constant, 0 or 255, so every mix must return it.
  """
  values = np.array([0, 255, 255, 255, 255, 0], np.uint8)  # pairs (0, 5), (1, 4), (2, 3)
  images = jnp.asarray(np.broadcast_to(values[:, None, None, None], (BATCH, *SHAPE, CHANNELS)))
  labels = jnp.arange(BATCH) % CLASSES
  method = msda_jax.from_string(spec)
  for mode in MODES:
    # The arguments of ``run``: the program compiled for it serves here too.
    mixed, *_ = jitted_mix()(
      jax.random.key(7), images, labels, method, num_classes=CLASSES, mode=mode, prob=1.0, return_info=True
    )
    np.testing.assert_array_equal(np.asarray(mixed), np.asarray(images), err_msg=mode)


@pytest.mark.parametrize(("spec", "mode"), cases())
def test_prob_zero_leaves_the_batch_unmixed(spec, mode):
  images, labels, _, mixed, targets, info = run(spec, mode, prob=0.0)
  np.testing.assert_array_equal(np.asarray(mixed), np.asarray(images))
  np.testing.assert_array_equal(np.asarray(targets), np.eye(CLASSES)[np.asarray(labels)])
  assert not np.asarray(info.applied).any()


@pytest.mark.parametrize("spec", METHOD_SPECS)
def test_vmap_over_keys(spec):
  method = msda_jax.from_string(spec)
  images, labels = make_batch()
  keys = jax.random.split(jax.random.key(8), 3)
  run = jax.vmap(lambda k: msda_jax.mix_batch(k, images, labels, method, num_classes=CLASSES, mode="example"))
  mixed, targets = jax.jit(run)(keys)
  assert mixed.shape == (3, *images.shape) and targets.shape == (3, BATCH, CLASSES)
  one = msda_jax.mix_batch(keys[1], images, labels, method, num_classes=CLASSES, mode="example")
  np.testing.assert_allclose(np.asarray(mixed[1]), np.asarray(one[0]), atol=1e-5)


HYPER = {
  "mixup": [{"alpha": 0.2}, {"alpha": 2.0}],
  "cutmix": [{"alpha": 0.5}, {"alpha": 1}],
  "stochastic_mixup_cutmix": [{"q": 0.1, "mixup_alpha": 0.3}, {"q": 0.9, "cutmix_alpha": 3.0}],
  "hmix": [{"r": 0.25, "alpha": 0.7}, {"r": 1.0, "alpha": 1.3}],
  "gmix": [{"alpha": 0.5}, {"alpha": 2.0}],
  "bernoulli": [{"alpha": 0.4}, {"alpha": 4.0}],
  "fmix": [{"decay": 2.0}, {"decay": 4.0, "alpha": 0.3}],
  "resizemix": [{"scale_min": 0.2, "scale_max": 0.5}, {"scale_min": 0.1, "scale_max": 0.9}],
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(HYPER))
def test_no_recompilation_when_hyper_parameters_change(name, mode):
  traces = []

  def step(key, images, labels, method, prob, smoothing, lam):
    traces.append(1)
    return msda_jax.mix_batch(
      key, images, labels, method, num_classes=CLASSES, mode=mode, prob=prob, label_smoothing=smoothing, lam=lam
    )

  jitted = jax.jit(step)
  images, labels = make_batch()
  outputs = []
  for i, kwargs in enumerate(HYPER[name]):
    method = msda_jax.PRESETS[name](**kwargs)
    out = jitted(jax.random.key(9), images, labels, method, 0.3 + 0.5 * i, 0.1 * i, 0.2 + 0.6 * i)
    outputs.append(np.asarray(out[1]))
  assert len(traces) == 1, f"{name} retraced when its hyper-parameters changed"
  assert not np.allclose(outputs[0], outputs[1]), "new hyper-parameters must change the result"


@pytest.mark.parametrize(("spec", "mode"), cases())
def test_dense_label_maps_mix_per_pixel(spec, mode):
  method = msda_jax.from_string(spec)
  images, _ = make_batch()
  rng = np.random.default_rng(11)
  label_map = jnp.asarray(rng.integers(0, CLASSES, (BATCH, *SHAPE)))
  _, targets, info = jitted_mix()(
    jax.random.key(12), images, label_map, method, num_classes=CLASSES, mode=mode, return_info=True
  )
  assert targets.shape == (BATCH, *SHAPE, CLASSES)
  np.testing.assert_allclose(np.asarray(targets).sum(-1), 1.0, atol=1e-5)
  m = np.asarray(info.mask)[..., None]
  onehot = np.eye(CLASSES)[np.asarray(label_map)]
  if not pastes(method):
    expected = m * onehot + (1 - m) * onehot[np.asarray(info.partner)]
    np.testing.assert_allclose(np.asarray(targets), expected, atol=1e-6)
  # The per-pixel label follows the image: where M = 1 the example's own label is kept.
  kept = np.broadcast_to(m == 1.0, onehot.shape)
  np.testing.assert_allclose(np.asarray(targets)[kept], onehot[kept], atol=1e-6)


@pytest.mark.parametrize("spatial", [(37,), (5, 6, 7)], ids=["1d", "3d"])
@pytest.mark.parametrize("spec", METHOD_SPECS)
def test_other_spatial_ranks(spec, spatial):
  method = msda_jax.from_string(spec)
  images, labels = make_batch(shape=spatial)
  mixed, targets, info = jitted_mix()(
    jax.random.key(13),
    images,
    labels,
    method,
    num_classes=CLASSES,
    mode="example",
    spatial_ndim=len(spatial),
    return_info=True,
  )
  assert mixed.shape == images.shape and info.mask.shape == (BATCH, *spatial)
  axes = tuple(range(1, 1 + len(spatial)))
  np.testing.assert_allclose(np.asarray(info.weight), np.asarray(info.mask).mean(axis=axes), atol=1e-6)
  np.testing.assert_allclose(np.asarray(targets).sum(-1), 1.0, atol=1e-6)


@pytest.mark.parametrize("spec", METHOD_SPECS)
def test_probability_rows_and_smoothing(spec):
  method = msda_jax.from_string(spec)
  images, labels = make_batch()
  rows = np.eye(CLASSES)[np.asarray(labels)]
  eps = 0.1
  _, targets, info = jitted_mix()(
    jax.random.key(14),
    images,
    jnp.asarray(rows, jnp.float32),
    method,
    mode="example",
    return_info=True,
    label_smoothing=eps,
  )
  smoothed = rows * (1 - eps) + eps / CLASSES
  w = np.asarray(info.weight)[:, None]
  expected = w * smoothed + (1 - w) * smoothed[np.asarray(info.partner)]
  np.testing.assert_allclose(np.asarray(targets), expected, atol=1e-6)


MEAN_SHAPES = [(7, 13), (1, 9), (37,), (5, 6, 7)]
MEAN_LAMS = (0.0, 1e-3, 0.37, 0.999, 1.0)


@pytest.mark.parametrize("shape", MEAN_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("spec", METHOD_SPECS)
def test_mask_mean_equals_the_mean_of_the_mask(spec, shape):
  # 40 keys per lam: clip placement puts many boxes across the border at these small shapes.
  method = msda_jax.from_string(spec)
  keys = jax.random.split(jax.random.key(21), 40)
  lams = jnp.asarray(MEAN_LAMS, jnp.float32)

  @jax.jit
  def both(k, lam):
    # The weight from the mask's parameters, and a mask-only program (the weight left unused).
    sample = method.sample(k, shape=shape, lam=lam)
    mask_only = method.sample(k, shape=shape, lam=lam).mask
    return sample.mask, jnp.mean(sample.mask), sample.weight, mask_only

  mask, direct, closed, mask_only = jax.vmap(jax.vmap(both, (0, None)), (None, 0))(keys, lams)
  assert closed.shape == (len(MEAN_LAMS), 40) and closed.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(closed), np.asarray(direct), rtol=0, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(mask_only), np.asarray(mask))
