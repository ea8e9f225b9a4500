"""Closed forms behind the masks: box fractions, the separable Gaussian bump, FMix's threshold,
ResizeMix's sparse resample."""

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import msda_jax
from msda_jax.masks import _bernoulli, _box, _fmix, _gmix, _resample


@pytest.mark.parametrize("shape", [(9,), (4, 7), (3, 5, 4)], ids=lambda s: "x".join(map(str, s)))
def test_box_fraction_is_the_mean_of_the_box_indicator(shape):
  # Every start from fully outside on the left to fully outside on the right, sizes 0 .. n + 1.
  d = len(shape)
  rng = np.random.default_rng(0)
  for _ in range(300):
    start = jnp.asarray([rng.integers(-n - 2, n + 2) for n in shape], jnp.int32)
    size = jnp.asarray([rng.integers(0, n + 2) for n in shape], jnp.int32)
    box = _box.box_indicator(start, size, shape)
    np.testing.assert_array_equal(_box.box_fraction(start, size, shape), jnp.mean(box, dtype=jnp.float32))
    np.testing.assert_array_equal(_box.box_complement_fraction(start, size, shape), jnp.mean(~box, dtype=jnp.float32))
    assert float(_box.box_volume(start, size, shape)) == float(np.asarray(box).sum())
  assert d >= 1


def test_box_fraction_of_sampled_boxes_at_an_image_size():
  shape = (224, 224)
  for placement, fraction in itertools.product(("clip", "inside"), (0.0, 0.013, 0.5, 0.97, 1.0)):
    for seed in range(5):
      start, size = _box.random_box_extent(jax.random.key(seed), fraction, shape, placement)
      box = _box.box_indicator(start, size, shape)
      np.testing.assert_array_equal(_box.box_fraction(start, size, shape), jnp.mean(box, dtype=jnp.float32))
      assert math.isfinite(float(_box.box_fraction(start, size, shape)))


@pytest.mark.parametrize("scale", ["code", "text"])
@pytest.mark.parametrize("shape", [(37,), (24, 31), (5, 6, 7)], ids=lambda s: "x".join(map(str, s)))
def test_separable_gaussian_bump_equals_the_full_resolution_formula(shape, scale):
  rng = np.random.default_rng(3)
  for weight in (0.0, 1e-3, 0.2, 0.5, 1.0):
    centre = jnp.asarray([rng.integers(0, n) for n in shape], jnp.int32)
    bump, _ = _gmix.gaussian_bump(weight, centre, shape, scale)
    width = float(_gmix.gaussian_width(weight, shape, scale))
    if width == 0.0:
      np.testing.assert_array_equal(bump, np.zeros(shape, np.float32))
      continue
    grid = np.indices(shape, dtype=np.float64)
    distance = sum((g - float(c)) ** 2 for g, c in zip(grid, np.asarray(centre), strict=True))
    full = np.exp(-math.pi * distance / width)
    assert bump.shape == shape and bump.dtype == jnp.float32
    # float32 exponents a = pi d^2 / c carry a few ulps of relative error, which exp turns into a
    # relative error of about a * 2^-24 per ulp; values below the float32 normal range underflow.
    exponent = math.pi * distance / width
    bound = (8.0 * exponent + 8.0) * 2.0**-24 * full + 1e-37
    assert np.all(np.abs(np.asarray(bump, np.float64) - full) <= bound)
    np.testing.assert_allclose(float(_gmix.gaussian_bump(weight, centre, shape, scale)[1]), full.mean(), rtol=2e-6)


@jax.jit
def _sorted_threshold_mask(flat, ones):
  thresholds = jnp.concatenate([jnp.sort(flat), jnp.full((1,), jnp.inf, flat.dtype)])
  return flat >= thresholds[flat.size - ones]


def sorted_threshold_mask(field, ones):
  """The former selection by sorting, compiled as before (same float semantics, e.g. for subnormals)."""
  return np.asarray(_sorted_threshold_mask(jnp.asarray(field, jnp.float32).reshape(-1), ones))


@pytest.mark.parametrize("form", ["top_threshold", "top_threshold_by_sort"])
def test_fmix_threshold_search_matches_the_sort_selection_with_ties_signed_zeros_and_extremes(form):
  """The CPU's counting search and the accelerator's sort give the sort selection's threshold."""
  rng = np.random.default_rng(5)
  smooth = np.asarray(_fmix.low_frequency_field(jax.random.key(7), 3.0, (96, 96))).reshape(-1)
  fields = [
    rng.normal(size=257).astype(np.float32),
    np.round(rng.normal(size=300) * 3).astype(np.float32),  # many ties, including 0.0
    np.concatenate([np.full(20, -0.0), np.full(20, 0.0), rng.normal(size=30)]).astype(np.float32),
    (rng.normal(size=200) * 1e-40).astype(np.float32),  # subnormals
    np.array([3.4e38, -3.4e38, 1.0, -1.0, 1e-45, -1e-45], np.float32),
    smooth,  # a sampled bracket (9216 keys, sample of 576)
    np.round(smooth * 40).astype(np.float32),  # the same with long runs of ties
    np.concatenate([smooth[:4000], np.full(4000, 3.4e38, np.float32), -smooth[:1000] * 1e-39]),
    np.full(5000, 1.5, np.float32),
  ]
  select = jax.jit(getattr(_fmix, form))
  for field in fields:
    ones_list = {0, 1, 2, field.size // 3, field.size // 2, field.size - 1, field.size}
    ones_list |= set(rng.integers(0, field.size + 1, size=6).tolist())
    keys = np.sort(np.asarray(_fmix.sortable_keys(jnp.asarray(field))))
    for ones in sorted(ones_list):
      threshold, selected = select(jnp.asarray(field), ones)
      mask = np.asarray(_fmix.sortable_keys(jnp.asarray(field)) >= threshold)
      expected = sorted_threshold_mask(field, ones)
      np.testing.assert_array_equal(mask, expected)
      assert int(selected) == int(expected.sum()) >= ones
      assert int(threshold) == (int(keys[field.size - ones]) if ones else 0xFFFFFFFF)


def test_fmix_key_values_invert_the_sortable_keys():
  # Normal floats of both signs and all exponents, zero and infinities (XLA:CPU flushes
  # subnormals, which therefore share the key of 0.0).
  rng = np.random.default_rng(6)
  values = (rng.normal(size=2000) * 2.0 ** rng.integers(-120, 120, size=2000)).astype(np.float32)
  values = np.concatenate([values, np.array([0.0, 1.5, -2.25, 3.4e38, -3.4e38, np.inf, -np.inf], np.float32)])
  keys = _fmix.sortable_keys(jnp.asarray(values))
  back = np.asarray(_fmix.key_values(keys))
  np.testing.assert_array_equal(back.view(np.uint32), values.view(np.uint32))
  assert np.all(np.diff(np.asarray(keys)[np.argsort(values, kind="stable")].astype(np.int64)) >= 0)


@pytest.mark.parametrize("shape", [(64,), (20, 27), (9, 10, 11)], ids=lambda s: "x".join(map(str, s)))
def test_fmix_mask_selects_round_lam_s_points_as_the_sort_did(shape):
  size = math.prod(shape)
  fmix = jax.jit(_fmix._fmix, static_argnums=2)  # compiled once: no op-by-op dispatch of its bounded loop
  field_of = jax.jit(_fmix.low_frequency_field, static_argnums=2)
  for seed, lam in enumerate((0.0, 0.004, 0.31, 0.5, 0.93, 1.0)):
    key = jax.random.key(seed)
    mask, weight = fmix(key, lam, shape, 3.0)
    field = field_of(key, 3.0, shape)
    ones = round(np.float32(lam) * size)
    np.testing.assert_array_equal(np.asarray(mask, bool).reshape(-1), sorted_threshold_mask(field, ones))
    assert int(np.asarray(mask).sum()) == ones
    assert float(weight) == float(jnp.mean(mask))


@pytest.mark.parametrize("shape", [(7,), (6, 5), (3, 4, 5)], ids=lambda s: "x".join(map(str, s)))
def test_bernoulli_mask_compares_16_bit_halves_of_the_random_words(shape):
  # An independent reimplementation from the same random words: pixel j < ceil(S / 2) uses the
  # low half of word j, the others the high half of word j - ceil(S / 2).
  size = math.prod(shape)
  half = (size + 1) // 2
  for seed, lam in enumerate((0.0, 2.0**-18, 2.0**-17 + 2.0**-20, 0.3, 0.5, 1.0 - 2.0**-17, 1.0)):
    key = jax.random.key(seed)
    words = np.asarray(jax.random.bits(key, (half,), jnp.uint32), np.int64)
    uniforms = np.concatenate([words & 0xFFFF, words >> 16])[:size]
    level = round(float(np.float32(lam)) * 65536)
    expected = (uniforms < level).astype(np.float32).reshape(shape)
    np.testing.assert_array_equal(np.asarray(_bernoulli._bernoulli(key, lam, shape)), expected)
    assert float(_bernoulli.bernoulli_probability(lam)) == level / 65536
    assert abs(level / 65536 - lam) <= 2.0**-17


def test_bernoulli_probability_is_the_pixel_frequency():
  # seed 7, 2^22 pixels at lam = 0.3 (P = 19661 / 65536): the frequency is within 4 SE of P.
  mask = np.asarray(_bernoulli._bernoulli(jax.random.key(7), 0.3, (2048, 2048)))
  p = float(_bernoulli.bernoulli_probability(0.3))
  se = math.sqrt(p * (1 - p) / mask.size)
  assert abs(mask.mean() - p) < 4 * se


@functools.partial(jax.jit, static_argnames="shape")
def _pastes(image, start, size, shape):
  scale = jnp.maximum(size, 1).astype(jnp.float32) / jnp.asarray(shape, jnp.float32)
  spatial = tuple(range(len(shape)))
  dense = jax.image.scale_and_translate(
    image, image.shape, spatial, scale, start.astype(jnp.float32), method="linear", antialias=True
  )
  return dense, _resample.paste_resized(image, start, size)


@pytest.mark.parametrize(
  "shape", [(200,), (96, 80), (70, 40), (224, 224), (24, 20)], ids=lambda s: "x".join(map(str, s))
)
def test_sparse_resample_equals_the_dense_one(shape):
  """Inside the box the values of ``jax.image.scale_and_translate`` (to float32 rounding), 0 outside.

  Box sides from 1 to the full axis cover every static form (each bucket and the dense tail);
  axes up to 64 (the last shape) take the dense path itself.
  """
  rng = np.random.default_rng(3)
  image = jnp.asarray(rng.uniform(0, 1, (*shape, 3)), jnp.float32)
  forms_seen = set()
  for n_side in sorted({1, 2, 3, 5, 9, 13, 14, 15, 27, 29, 56, 57, 100, 111, 112, 113, 223, 224}):
    size = jnp.asarray([min(n_side, n) for n in shape], jnp.int32)
    start = jnp.asarray([rng.integers(0, n - int(s) + 1) for n, s in zip(shape, size, strict=True)], jnp.int32)
    dense, sparse = map(np.asarray, _pastes(image, start, size, shape))
    inside = np.asarray(_box.box_indicator(start, size, shape))[..., None]
    np.testing.assert_allclose(sparse * inside, dense * inside, atol=2e-6, err_msg=str(size))
    assert not (sparse * ~inside).any() and not (dense * ~inside).any(), "both are 0 outside the box"
    forms_seen.add(sum(int(size[0]) * 2**j <= shape[0] for j in range(1, _resample.BUCKETS + 1)))
  if shape[0] == 224:
    assert forms_seen == set(range(_resample.BUCKETS + 1)), forms_seen


def test_sparse_resample_under_vmap_equals_one_by_one():
  """Under vmap the switch evaluates every form and selects: same numbers as one at a time."""
  shape = (100, 72)
  keys = jax.random.split(jax.random.key(2), 6)
  lams = jnp.linspace(0.05, 0.99, 6)
  images = jnp.asarray(np.random.default_rng(4).uniform(0, 1, (6, *shape, 3)), jnp.float32)
  paste = jax.jit(lambda k, lam, x: msda_jax.ResizeMix().sample(k, shape=x.shape[:-1], lam=lam).paste(x))
  batched = jax.jit(jax.vmap(lambda k, lam, x: msda_jax.ResizeMix().sample(k, shape=x.shape[:-1], lam=lam).paste(x)))(
    keys, lams, images
  )
  for i in range(6):
    np.testing.assert_allclose(np.asarray(batched[i]), np.asarray(paste(keys[i], lams[i], images[i])), atol=1e-6)
