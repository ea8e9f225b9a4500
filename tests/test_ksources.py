"""RICAP and k-image CutMix (KCutMix): the conformance checks of a k-source method, their laws, their errors.

Conformance: shapes and dtypes kept (float32, uint8, bfloat16 by tracing), label rows summing to
1 and equal to the realised areas' mixture, the mixed images recomputed from the masks (KCutMix)
or each tile a contiguous crop of its source (RICAP, on images whose pixels name themselves),
determinism, jit equal to eager, ``prob = 0`` unmixed, no recompilation when the numbers change,
dense label maps mixed per pixel. Laws: RICAP's boundary coordinates against the rounded Beta law
(chi-square, 4,000 draws, seed 0, p > 1e-3; a Beta(0.5, 0.5) law refused with p < 1e-6); the
exact source moments against Monte Carlo (20,000 draws, 6 standard errors + 10 / draws; a wrong
``beta`` refused); KCutMix's weights a Dirichlet (KS of the first weight against
Beta(alpha, (k - 1) alpha), 4,000 draws) and its regions nested boxes.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from test_errors import no_work  # noqa: F401 (a fixture)

import msda_jax
from msda_jax import theory
from msda_jax.theory import regions

BATCH, SHAPE, CLASSES = 8, (6, 7), 5
SPECS = ["ricap", "k_cutmix(k=3)"]
MODES = ("batch", "example")


def position_images(dtype=jnp.float32):
  """Channel 0: the example, channel 1: the row, channel 2: the column (exact in float32 and uint8)."""
  b, h, w = np.meshgrid(np.arange(BATCH), np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
  return jnp.asarray(np.stack([b, h, w], -1), dtype)


LABELS = jnp.asarray(np.arange(BATCH) % CLASSES)


@functools.cache
def jitted():
  return jax.jit(msda_jax.mix_batch_with_info, static_argnames=("num_classes", "mode"))


@functools.cache
def run(spec, mode, dtype=jnp.float32, seed=3, prob=1.0):
  method = msda_jax.from_string(spec)
  images = position_images(dtype)
  return (
    images,
    method,
    *jitted()(jax.random.key(seed), images, LABELS, method, num_classes=CLASSES, mode=mode, prob=prob),
  )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("spec", SPECS)
def test_shapes_rows_and_realised_areas(spec, mode):
  for dtype in (jnp.float32, jnp.uint8):
    images, method, mixed, targets, info = run(spec, mode, dtype)
    assert mixed.shape == images.shape and mixed.dtype == images.dtype
    k = method.sources
    assert info.mask.shape == (BATCH, k, *SHAPE) and info.weight.shape == (BATCH, k)
    masks = np.asarray(info.mask)
    np.testing.assert_array_equal(masks.sum(1), 1.0)
    assert set(np.unique(masks).tolist()) <= {0.0, 1.0}
    np.testing.assert_allclose(np.asarray(info.weight), masks.mean(axis=(2, 3)), atol=1e-6)
    onehot = np.eye(CLASSES)[np.asarray(LABELS)]
    expected = np.einsum("bm,bmk->bk", np.asarray(info.weight), onehot[np.asarray(info.partner)])
    np.testing.assert_allclose(np.asarray(targets), expected, atol=1e-6)
    if mode == "batch":
      assert np.all(masks == masks[:1])
  bf16 = jax.eval_shape(
    lambda k, x: msda_jax.mix_batch(k, x, LABELS, method, num_classes=CLASSES, mode=mode),
    jax.random.key(0),
    position_images(jnp.bfloat16),
  )
  assert bf16[0].dtype == jnp.bfloat16 and bf16[1].dtype == jnp.float32


@pytest.mark.parametrize("mode", MODES)
def test_kcutmix_images_recompute_from_the_masks(mode):
  images, _, mixed, _, info = run("k_cutmix(k=3)", mode)
  x = np.asarray(images)[np.asarray(info.partner)]  # [B, k, H, W, C]
  expected = np.einsum("bmhw,bmhwc->bhwc", np.asarray(info.mask), x)
  np.testing.assert_array_equal(np.asarray(mixed), expected)


@pytest.mark.parametrize("mode", MODES)
def test_ricap_tiles_are_crops_of_their_sources(mode):
  """Each tile shows one source (channel 0), rows and columns each shifted by one constant, inside the image."""
  _, _, mixed, _, info = run("ricap", mode)
  out, masks, partner = np.asarray(mixed), np.asarray(info.mask), np.asarray(info.partner)
  for b in range(BATCH):
    for m in range(4):
      tile = masks[b, m] == 1.0
      if not tile.any():
        continue
      pixels = out[b][tile]
      assert np.all(pixels[:, 0] == partner[b, m])
      rows, cols = np.nonzero(tile)
      shift_r, shift_c = pixels[:, 1] - rows, pixels[:, 2] - cols
      assert np.all(shift_r == shift_r[0]) and np.all(shift_c == shift_c[0])
      assert 0 <= rows.min() + shift_r[0] and rows.max() + shift_r[0] < SHAPE[0]
      assert 0 <= cols.min() + shift_c[0] and cols.max() + shift_c[0] < SHAPE[1]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("spec", SPECS)
def test_determinism_jit_eager_and_prob_zero(spec, mode):
  images, method, *first = run(spec, mode)
  eager = msda_jax.mix_batch_with_info(jax.random.key(3), images, LABELS, method, num_classes=CLASSES, mode=mode)
  for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(eager), strict=True):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), atol=1e-6)
  assert not np.array_equal(np.asarray(first[0]), np.asarray(run(spec, mode, seed=4)[2]))
  _, _, mixed, targets, info = run(spec, mode, prob=0.0)
  np.testing.assert_array_equal(np.asarray(mixed), np.asarray(images))
  np.testing.assert_array_equal(np.asarray(targets), np.eye(CLASSES)[np.asarray(LABELS)])
  assert not np.asarray(info.applied).any()


@pytest.mark.parametrize("mode", MODES)
def test_no_recompilation_and_every_number_matters(mode):
  traces = []

  def step(key, method, prob):
    traces.append(1)
    return msda_jax.mix_batch(key, position_images(), LABELS, method, num_classes=CLASSES, mode=mode, prob=prob)

  step = jax.jit(step)
  for cls, field, values in ((msda_jax.RICAP, "beta", (0.3, 2.0)), (msda_jax.KCutMix, "alpha", (1.0, 0.2))):
    traces.clear()
    outs = [step(jax.random.key(5), cls(**{field: v}), 1.0) for v in values] + [step(jax.random.key(5), cls(), 0.0)]
    assert len(traces) == 1, cls.__name__
    assert not np.array_equal(np.asarray(outs[0][0]), np.asarray(outs[1][0])), field
    assert not np.array_equal(np.asarray(outs[0][1]), np.asarray(outs[2][1])), "prob"


@pytest.mark.parametrize("spec", SPECS)
def test_dense_label_maps_move_with_the_pixels(spec):
  images = position_images()
  label_map = jnp.asarray(np.random.default_rng(2).integers(0, CLASSES, (BATCH, *SHAPE)))
  method = msda_jax.from_string(spec)
  mixed, targets, _ = jitted()(jax.random.key(6), images, label_map, method, num_classes=CLASSES, mode="example")
  out = np.asarray(mixed).astype(int)
  # The label of every mixed pixel is the label of the source pixel it shows.
  source = np.asarray(label_map)[out[..., 0], out[..., 1], out[..., 2]]
  np.testing.assert_allclose(np.asarray(targets), np.eye(CLASSES)[source], atol=1e-6)


def test_ricap_boundary_follows_the_rounded_beta_law():
  method, n = msda_jax.RICAP(beta=0.3), 12
  keys = jax.random.split(jax.random.key(0), 4000)
  samples = jax.jit(jax.vmap(lambda k: method.sample(k, shape=(n, n))))(keys)
  owner = np.asarray(samples.mask).argmax(1)  # [draws, n, n]
  boundary_rows = (owner[:, :, 0] % 2 == 0).sum(1)  # rows of tile 0 (or 2) in the first column
  boundary_rows = np.where(owner[:, 0, 0] % 2 == 1, 0, boundary_rows)
  counts = np.bincount(boundary_rows, minlength=n + 1)
  for beta, passes in ((0.3, True), (0.5, False)):
    expected = regions.rounded_beta_probabilities(n, beta) * len(keys)
    p = stats.chisquare(counts, expected).pvalue
    assert (p > 1e-3) if passes else (p < 1e-6), (beta, p)


def test_ricap_exact_source_moments_match_monte_carlo():
  shape, draws = (5, 6), 20_000
  sampled = theory.mask_moments(jax.random.key(0), theory.source_law(msda_jax.RICAP(), shape=shape), num_draws=draws)
  for beta, passes in ((0.3, True), (0.5, False)):
    exact = theory.ricap_moments(shape=shape, beta=beta)
    excess = np.abs(np.asarray(sampled.second) - exact.second) - (6 * np.asarray(sampled.second_stderr) + 10 / draws)
    assert (excess.max() <= 0) == passes, (beta, excess.max())


def test_kcutmix_weights_are_dirichlet_and_regions_nest():
  k, alpha = 4, 0.7
  method = msda_jax.KCutMix(k=k, alpha=alpha)
  samples = jax.jit(jax.vmap(lambda kk: method.sample(kk, shape=(16, 16))))(jax.random.split(jax.random.key(1), 4000))
  w = np.asarray(samples.lam)
  assert stats.kstest(w[:, 0], stats.beta(alpha, (k - 1) * alpha).cdf).pvalue > 1e-3
  assert stats.kstest(w[:, 0], stats.beta(alpha, k * alpha).cdf).pvalue < 1e-6
  masks = np.asarray(samples.mask)
  for i in range(50):
    inner = np.zeros((16, 16), bool)
    for m in range(k - 1, 0, -1):  # the region of sources >= m is a box holding that of sources >= m + 1
      region = masks[i, m:].sum(0) == 1.0
      if region.any():
        rows, cols = np.nonzero(region)
        assert region[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all(), "not a box"
      assert not (inner & ~region).any(), "a box outside the one before it"
      inner = region
  # Realised areas follow the drawn weights up to the rounding of nested sides (16 x 16).
  assert np.abs(np.asarray(samples.weight) - w).mean() < 0.03


X = jnp.ones((4, 8, 8, 3))
Y = jnp.arange(4)


@pytest.mark.parametrize(
  "build, pattern",
  [
    (lambda: msda_jax.RICAP(beta=0.0), r"beta must be > 0"),
    (lambda: msda_jax.KCutMix(k=1), r"k must be an int >= 2"),
    (lambda: msda_jax.KCutMix(k=2.0), r"k must be an int >= 2"),
    (lambda: msda_jax.KCutMix(alpha=-1.0), r"alpha must be > 0"),
    (lambda: msda_jax.RICAP().sample(jax.random.key(0), shape=(8,)), r"RICAP tiles images \[B, H, W, C\]"),
    (lambda: msda_jax.RICAP().sample(jax.random.key(0), shape=(8, 8), lam=0.5), r"lam cannot be given to RICAP"),
    (lambda: theory.source_law(msda_jax.CutMix(), shape=(4, 4)), r"source_law takes a k-source region method"),
  ],
)
def test_bad_construction_and_calls(build, pattern):
  with pytest.raises(ValueError, match=pattern):
    build()


@pytest.mark.parametrize(
  "kwargs, pattern",
  [
    ({"method": msda_jax.RICAP(), "groups": 2}, r"RICAP mixes 4 sources: they must not exceed the block size 2"),
    ({"method": msda_jax.KCutMix(k=3), "lam": np.array([0.2, 0.3, 0.5])}, r"lam cannot be given to KCutMix"),
    ({"method": msda_jax.RICAP(), "pairing": "reverse"}, r"pairing must be one of \('roll', 'permute'\)"),
  ],
)
@pytest.mark.usefixtures("no_work")
def test_bad_batch_calls_raise_before_any_work(kwargs, pattern):
  with pytest.raises(ValueError, match=pattern):
    msda_jax.mix_batch(jax.random.key(0), X, Y, num_classes=4, **kwargs)


def test_ricap_on_video_raises_before_any_work():
  with pytest.raises(ValueError, match=r"RICAP tiles images"):
    msda_jax.mix_batch(jax.random.key(0), jnp.ones((4, 2, 8, 8, 3)), Y, msda_jax.RICAP(), num_classes=4, spatial_ndim=3)


def test_the_own_view_is_source_zero_of_the_same_draw():
  """``MixMethod.sample`` through ``_sample`` gives source 0's mask and area of the partition ``sample`` draws."""
  for method in (msda_jax.RICAP(), msda_jax.KCutMix(k=3)):
    full = method.sample(jax.random.key(4), shape=(8, 8))
    own = msda_jax.MixMethod.sample(method, jax.random.key(4), shape=(8, 8))
    np.testing.assert_array_equal(np.asarray(own.mask), np.asarray(full.mask[0]))
    assert float(own.weight) == float(full.weight[0])
