"""k-sample mixing with Dirichlet weights: masks, batch mixing, laws and errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import msda_jax
from msda_jax import kmix, pairing

B, H, W, C, NUM_CLASSES = 8, 6, 5, 3, 10


def _batch(dtype=jnp.float32, seed=1):
  rng = np.random.default_rng(seed)
  if dtype == jnp.uint8:
    images = rng.integers(0, 256, (B, H, W, C)).astype(np.uint8)
  else:
    images = rng.uniform(-1.0, 2.0, (B, H, W, C)).astype(np.float32)
  labels = rng.integers(0, NUM_CLASSES, (B,))
  return jnp.asarray(images).astype(dtype), jnp.asarray(labels)


def _by_hand(images, sources, masks):
  """``sum_m M_m x_{p_m(i)}`` in float64 numpy from the info."""
  x = np.asarray(images, np.float64)
  masks = np.asarray(masks, np.float64)
  sources = np.asarray(sources)
  return sum(masks[:, m, ..., None] * x[sources[:, m]] for m in range(sources.shape[1]))


# -- masks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", kmix.STYLES)
def test_masks_shape_dtype_and_partition_of_unity(style):
  w = msda_jax.lam_laws.sample_dirichlet(jax.random.key(3), 0.7, 4)
  masks = msda_jax.kmix_masks(jax.random.key(4), w, shape=(7, 9), style=style)
  assert masks.shape == (4, 7, 9) and masks.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(masks).sum(0), 1.0, atol=1e-6)
  assert (np.asarray(masks) >= 0).all()
  if style == "mixup":
    np.testing.assert_allclose(np.asarray(masks), np.broadcast_to(np.asarray(w)[:, None, None], (4, 7, 9)))
  else:
    assert set(np.unique(np.asarray(masks))) <= {0.0, 1.0}


def test_categorical_zero_weight_never_chosen():
  w = jnp.array([0.0, 0.6, 0.0, 0.4])
  masks = np.asarray(msda_jax.kmix_masks(jax.random.key(0), w, shape=(64, 64), style="categorical"))
  assert masks[0].sum() == 0 and masks[2].sum() == 0
  assert masks[1].sum() > 0 and masks[3].sum() > 0


def test_categorical_per_pixel_frequency_matches_weights():
  # Seed 11: 4000 draws of a 4x4 mask; at every pixel the count of source m is
  # Binomial(4000, w_m); allowed deviation 5 standard deviations (48 checks).
  n, w = 4000, np.array([0.5, 0.3, 0.2], np.float32)
  keys = jax.random.split(jax.random.key(11), n)
  draw = jax.vmap(lambda k: msda_jax.kmix_masks(k, jnp.asarray(w), shape=(4, 4), style="categorical"))
  freq = np.asarray(draw(keys)).mean(0)  # [k, 4, 4]
  tol = 5.0 * np.sqrt(w * (1 - w) / n)
  assert (np.abs(freq - w[:, None, None]) <= tol[:, None, None]).all(), np.abs(freq - w[:, None, None]).max()
  # Over the pixels of one large mask as well (40000 Bernoulli(w_m) indicators per source).
  big = np.asarray(msda_jax.kmix_masks(jax.random.key(12), jnp.asarray(w), shape=(200, 200), style="categorical"))
  np.testing.assert_array_less(np.abs(big.mean((1, 2)) - w), 5.0 * np.sqrt(w * (1 - w) / 40000))


# -- batch mixing --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.uint8])
@pytest.mark.parametrize("mode", msda_jax._validate.MODES)
@pytest.mark.parametrize("style", kmix.STYLES)
def test_shapes_dtypes_and_mix_by_hand(dtype, mode, style):
  images, labels = _batch(dtype)
  xm, ym, info = msda_jax.mix_k_batch_with_info(
    jax.random.key(5), images, labels, k=3, style=style, mode=mode, num_classes=NUM_CLASSES
  )
  assert xm.shape == images.shape and xm.dtype == images.dtype
  assert ym.shape == (B, NUM_CLASSES) and ym.dtype == jnp.float32
  assert info.weight.shape == info.lam.shape == (B, 3) and info.partner.dtype == jnp.int32
  assert info.mask.shape == (B, 3, H, W) and info.mask.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(info.mask).sum(1), 1.0, atol=1e-6)
  np.testing.assert_allclose(np.asarray(ym).sum(-1), 1.0, atol=1e-6)
  np.testing.assert_allclose(np.asarray(info.lam).sum(-1), 1.0, atol=1e-5)
  # The label weights are the realised mask means, and the targets are mixed with them.
  np.testing.assert_allclose(info.weight, np.asarray(info.mask).mean((2, 3)), atol=1e-6)
  onehot = np.eye(NUM_CLASSES)[np.asarray(labels)]
  partners = np.asarray(info.partner)
  expected_y = sum(np.asarray(info.weight)[:, m, None] * onehot[partners[:, m]] for m in range(3))
  np.testing.assert_allclose(ym, expected_y, atol=1e-5)
  expected_x = _by_hand(images.astype(jnp.float32), partners, info.mask)
  tol = {jnp.float32: 1e-5, jnp.bfloat16: 0.05, jnp.uint8: 1.0}[dtype]
  if dtype == jnp.uint8:
    expected_x = np.clip(np.round(expected_x), 0, 255)
  np.testing.assert_allclose(np.asarray(xm, np.float64), expected_x, atol=tol)
  masks = np.asarray(info.mask)
  if mode == "batch":
    assert (masks == masks[:1]).all()
  elif style == "categorical":
    assert not (masks == masks[:1]).all()


@pytest.mark.parametrize("pairing_name", kmix.PAIRINGS)
def test_partners_stay_in_blocks(pairing_name):
  images, labels = _batch()
  *_, info = msda_jax.mix_k_batch_with_info(
    jax.random.key(2), images, labels, k=4, pairing=pairing_name, groups=2, num_classes=NUM_CLASSES
  )
  partners = np.asarray(info.partner)
  block = B // 2
  rows = np.arange(B)
  assert (partners[:, 0] == rows).all()
  assert (partners // block == (rows // block)[:, None]).all()
  for m in range(4):
    for g in range(2):
      assert sorted(partners[g * block : (g + 1) * block, m]) == list(range(g * block, (g + 1) * block))
  if pairing_name == "roll":
    expected = (rows // block)[:, None] * block + (rows[:, None] % block - np.arange(4)) % block
    assert (partners == expected).all()


def test_k2_mixup_equals_mix_batch():
  images, labels = _batch()
  lam = 0.3
  key = jax.random.key(7)
  xk, yk = msda_jax.mix_k_batch(
    key, images, labels, k=2, weights=jnp.array([lam, 1.0 - lam]), num_classes=NUM_CLASSES, pairing="roll"
  )
  xb, yb = msda_jax.mix_batch(key, images, labels, msda_jax.Mixup(), lam=lam, num_classes=NUM_CLASSES, pairing="roll")
  np.testing.assert_array_equal(xk, xb)
  np.testing.assert_allclose(yk, yb, atol=1e-7)
  # The same in example mode with one lam per example.
  lams = jnp.linspace(0.1, 0.9, B)
  xk, yk = msda_jax.mix_k_batch(
    key, images, labels, k=2, mode="example", weights=jnp.stack([lams, 1.0 - lams], 1), num_classes=NUM_CLASSES
  )
  xb, yb = msda_jax.mix_batch(
    key, images, labels, msda_jax.Mixup(), mode="example", lam=lams, num_classes=NUM_CLASSES, pairing="roll"
  )
  np.testing.assert_allclose(xk, xb, atol=1e-6)
  np.testing.assert_allclose(yk, yb, atol=1e-6)


def test_k2_mixup_uint8_equals_mix_batch():
  images, labels = _batch(jnp.uint8)
  weights = jnp.array([0.37, 0.63])
  xk, _ = msda_jax.mix_k_batch(jax.random.key(0), images, labels, k=2, weights=weights, num_classes=NUM_CLASSES)
  xb, _ = msda_jax.mix_batch(
    jax.random.key(0), images, labels, msda_jax.Mixup(), lam=0.37, num_classes=NUM_CLASSES, pairing="roll"
  )
  np.testing.assert_array_equal(xk, xb)


@pytest.mark.parametrize("style", kmix.STYLES)
def test_dense_label_maps_mixed_per_pixel(style):
  images, _ = _batch()
  rng = np.random.default_rng(4)
  maps = jnp.asarray(rng.integers(0, 4, (B, H, W)))
  _, ym, info = msda_jax.mix_k_batch_with_info(
    jax.random.key(8), images, maps, k=3, style=style, mode="example", num_classes=4
  )
  assert ym.shape == (B, H, W, 4)
  expected = _by_hand(np.eye(4)[np.asarray(maps)], info.partner, info.mask)
  np.testing.assert_allclose(ym, expected, atol=1e-6)
  np.testing.assert_allclose(np.asarray(ym).sum(-1), 1.0, atol=1e-6)
  # Float probability maps and probability rows with smoothing are accepted too.
  probs = jax.nn.softmax(jnp.asarray(rng.normal(size=(B, H, W, 4)), jnp.float32))
  _, yp = msda_jax.mix_k_batch(jax.random.key(8), images, probs, k=3, style=style, mode="example")
  rows = jax.nn.softmax(jnp.asarray(rng.normal(size=(B, 4)), jnp.float32))
  _, yr = msda_jax.mix_k_batch(jax.random.key(8), images, rows, k=3, style=style, label_smoothing=0.1)
  assert yp.shape == (B, H, W, 4) and yr.shape == (B, 4)
  np.testing.assert_allclose(np.asarray(yp).sum(-1), 1.0, atol=1e-5)
  np.testing.assert_allclose(np.asarray(yr).sum(-1), 1.0, atol=1e-5)


def test_given_weights_used_and_one_dimensional_audio():
  rng = np.random.default_rng(0)
  audio = jnp.asarray(rng.normal(size=(4, 16, 1)), jnp.float32)
  w = jnp.array([0.6, 0.1, 0.3])
  _, _, info = msda_jax.mix_k_batch_with_info(
    jax.random.key(0), audio, jnp.arange(4), k=3, weights=w, num_classes=4, spatial_ndim=1
  )
  assert info.mask.shape == (4, 3, 16)
  np.testing.assert_allclose(info.lam, np.broadcast_to(np.asarray(w), (4, 3)))
  np.testing.assert_allclose(info.weight, np.broadcast_to(np.asarray(w), (4, 3)), atol=1e-6)


# -- laws ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "alpha", "mode"), [(3, 0.7, "example"), (2, 1.5, "batch")])
def test_dirichlet_law_of_sampled_weights(k, alpha, mode):
  # Seed 2024, n = 4000 draws; the first coordinate of Dirichlet(alpha 1_k) is
  # Beta(alpha, (k - 1) alpha). KS test, accepted when p > 1e-3.
  n = 4000
  if mode == "example":
    images = jnp.zeros((n, 1, 1, 1))
    _, _, info = msda_jax.mix_k_batch_with_info(
      jax.random.key(2024),
      images,
      jnp.zeros((n,), jnp.int32),
      k=k,
      alpha=alpha,
      mode="example",
      num_classes=1,
    )
    first = np.asarray(info.weight[:, 0], np.float64)
  else:  # one weight vector per call: n calls of a jitted batch-mode mix.
    images = jnp.zeros((k, 1, 1, 1))

    @jax.jit
    def draw(key):
      *_, info = msda_jax.mix_k_batch_with_info(
        key, images, jnp.zeros((k,), jnp.int32), k=k, alpha=alpha, num_classes=1
      )
      return info.weight[0, 0]

    first = np.asarray(jax.vmap(draw)(jax.random.split(jax.random.key(2024), n)), np.float64)
  assert stats.kstest(first, stats.beta(alpha, (k - 1) * alpha).cdf).pvalue > 1e-3
  if k > 2:  # the test has power: the two-sample Beta(alpha, alpha) law is rejected.
    assert stats.kstest(first, stats.beta(alpha, alpha).cdf).pvalue < 1e-3


# -- compilation ------------------------------------------------------------------------------------


def test_jit_equals_eager():
  # Example mode with random permutations and categorical masks: the most traced path.
  images, labels = _batch()
  fn = functools.partial(
    msda_jax.mix_k_batch, k=3, style="categorical", mode="example", num_classes=NUM_CLASSES, pairing="permute"
  )
  eager = fn(jax.random.key(9), images, labels, alpha=0.5)
  jitted = jax.jit(fn)(jax.random.key(9), images, labels, alpha=0.5)
  for a, b in zip(eager, jitted, strict=True):
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_no_recompilation_when_alpha_changes():
  """alpha, label_smoothing and prob are traced: one trace for all their values. Each, changed
  alone from (alpha 0.2, eps 0, prob 1) with the same key, changes the result: alpha the images
  and the targets, label smoothing the targets only, prob 0 leaves the images unmixed."""
  images, labels = _batch()
  traces = []

  @jax.jit
  def step(key, alpha, eps, prob):
    traces.append(1)
    return msda_jax.mix_k_batch(
      key, images, labels, k=3, alpha=alpha, label_smoothing=eps, prob=prob, num_classes=NUM_CLASSES
    )

  base = [np.asarray(x) for x in step(jax.random.key(0), 0.2, 0.0, 1.0)]
  new_alpha = [np.asarray(x) for x in step(jax.random.key(0), 5.0, 0.0, 1.0)]
  new_eps = [np.asarray(x) for x in step(jax.random.key(0), 0.2, 0.1, 1.0)]
  no_mix = [np.asarray(x) for x in step(jax.random.key(0), 0.2, 0.0, 0.0)]
  step(jax.random.key(1), 1.0, 0.05, 0.5)
  assert len(traces) == 1
  assert not np.allclose(new_alpha[0], base[0]) and not np.allclose(new_alpha[1], base[1])  # alpha is used
  np.testing.assert_array_equal(new_eps[0], base[0])  # label smoothing leaves the images
  assert not np.allclose(new_eps[1], base[1])  # ... and is used on the targets
  assert not np.allclose(no_mix[0], base[0])
  np.testing.assert_array_equal(no_mix[0], np.asarray(images))  # prob 0: nothing mixed


# -- errors -----------------------------------------------------------------------------------------


def test_mask_errors():
  w = jnp.array([0.5, 0.5])
  with pytest.raises(ValueError, match="style must be one of"):
    msda_jax.kmix_masks(jax.random.key(0), w, shape=(2, 2), style="cutmix")
  with pytest.raises(ValueError, match=r"weights must be a vector \[k\]"):
    msda_jax.kmix_masks(jax.random.key(0), jnp.ones((2, 2)) / 2, shape=(2, 2))
  with pytest.raises(ValueError, match=r"weights must be a vector \[k\] with k >= 2"):
    msda_jax.kmix_masks(jax.random.key(0), jnp.ones((1,)), shape=(2, 2))
  with pytest.raises(ValueError, match="weights must be non-negative"):
    msda_jax.kmix_masks(jax.random.key(0), jnp.array([1.5, -0.5]), shape=(2, 2))
  with pytest.raises(ValueError, match="weights must sum to 1"):
    msda_jax.kmix_masks(jax.random.key(0), jnp.array([0.5, 0.6]), shape=(2, 2))
  with pytest.raises(ValueError, match="needs a PRNG key"):
    msda_jax.kmix_masks(None, w, shape=(2, 2), style="categorical")
  with pytest.raises(ValueError, match="shape must be"):
    msda_jax.kmix_masks(None, w, shape=(0, 2))


@pytest.mark.parametrize(
  ("kwargs", "error", "match"),
  [
    ({"k": 1}, ValueError, "k must be an int >= 2"),
    ({"k": True}, ValueError, "k must be an int >= 2"),
    ({"k": 2.0}, ValueError, "k must be an int >= 2"),
    ({"k": 5, "groups": 2}, ValueError, r"k=5 must not exceed the block size 4"),
    ({"k": 3, "groups": 3}, ValueError, "groups=3 must divide"),
    ({"k": 3, "alpha": 0.0}, ValueError, "alpha must be > 0"),
    ({"k": 3, "alpha": jnp.ones(2)}, ValueError, "alpha must be a scalar or a vector"),
    ({"k": 3, "style": "box"}, ValueError, "style must be one of"),
    ({"k": 3, "mode": "pixel"}, ValueError, "mode must be one of"),
    ({"k": 3, "pairing": "reverse"}, ValueError, "pairing must be one of"),
    ({"k": 3, "weights": jnp.ones((B, 3)) / 3}, ValueError, r"weights must have shape \(3,\) in mode='batch'"),
    ({"k": 3, "mode": "example", "weights": jnp.ones((B, 2)) / 2}, ValueError, "weights must have shape"),
    ({"k": 3, "weights": jnp.array([0.5, 0.5, 0.5])}, ValueError, "weights must sum to 1"),
    ({"k": 2, "weights": jnp.array([1.2, -0.2])}, ValueError, "weights must be non-negative"),
    ({"k": 2, "weights": jnp.array([jnp.nan, 0.5])}, ValueError, "weights must be finite"),
    ({"k": 2, "label_smoothing": 2.0}, ValueError, "label_smoothing must lie in"),
    ({"k": 2, "num_classes": None}, ValueError, "need num_classes"),
  ],
)
def test_batch_errors(kwargs, error, match):
  images, labels = _batch()
  kwargs = {"num_classes": NUM_CLASSES, **kwargs}
  with pytest.raises(error, match=match):
    msda_jax.mix_k_batch(jax.random.key(0), images, labels, **kwargs)


def test_input_errors():
  images, labels = _batch()
  with pytest.raises(TypeError, match="images must be a float dtype or uint8"):
    msda_jax.mix_k_batch(jax.random.key(0), images.astype(jnp.int32), labels, k=2, num_classes=NUM_CLASSES)
  with pytest.raises(ValueError, match="images must be batched"):
    msda_jax.mix_k_batch(jax.random.key(0), images[0], labels, k=2, num_classes=NUM_CLASSES)
  with pytest.raises(ValueError, match="labels must have the images' batch size"):
    msda_jax.mix_k_batch(jax.random.key(0), images, labels[:3], k=2, num_classes=NUM_CLASSES)
  with pytest.raises(ValueError, match=r"k must be an int in \[1, block size"):
    pairing.pair_k(None, images, 9)
