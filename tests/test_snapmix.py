"""SnapMix: boxes, the resized paste, label weights from class-activation maps, the train step's maps.

Each pair is rebuilt in numpy from the boxes its sample records (seed 6, 20 pairs of 12 x 10
images): the mask is 0 exactly on box ``A``, the pasted pixels are the partner's box ``B`` resampled
by ``scipy.ndimage.map_coordinates`` (order 1) at the corner-aligned coordinates (a half-pixel
convention fails the same check), and the two weights are the maps' shares. The box centre is
uniform over the pixels (chi-square over 4,000 draws, seed 7, p > 1e-3; centres kept away from
the border fail it). In the train step the maps are the head applied at every position, whose
mean over positions is the model's logits.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from scipy import ndimage, stats
from test_errors import no_work  # noqa: F401 (a fixture)

import msda_jax
from msda_jax.masks import _snapmix

SHAPE = (12, 10)


def corner_aligned(low_s, high_s, low_t, high_t, n):
  """The source coordinate of every output index along one axis (``align_corners=True``)."""
  dst = high_t - low_t
  step = (high_s - low_s - 1) / (dst - 1) if dst > 1 else 0.0
  return np.clip(low_s + (np.arange(n) - low_t) * step, 0, max(high_s - 1, low_s))


def test_each_pair_matches_its_numpy_rebuild():
  rng = np.random.default_rng(6)
  method = msda_jax.SnapMix()
  for i in range(20):
    image, partner = rng.uniform(size=(2, *SHAPE, 2)).astype(np.float32)
    s_i, s_j = rng.gamma(0.5, size=(2, *SHAPE)).astype(np.float32)
    data = msda_jax.PairData(*(jnp.asarray(v) for v in (image, partner, s_i, s_j)))
    out = method.sample(jax.random.key(i), shape=SHAPE, lam=np.float32(rng.uniform(0.2, 0.9)), data=data)
    (low_b, high_b), (low_a, high_a) = (
      [np.asarray(v) for v in out.paste.keywords[name]] for name in ("source", "target")
    )
    inside_a = np.zeros(SHAPE, bool)
    inside_a[low_a[0] : high_a[0], low_a[1] : high_a[1]] = True
    inside_b = np.zeros(SHAPE, bool)
    inside_b[low_b[0] : high_b[0], low_b[1] : high_b[1]] = True
    mixed = inside_a.any() and inside_b.any()
    np.testing.assert_array_equal(np.asarray(out.mask), np.where(mixed & inside_a, 0.0, 1.0))
    want_own = 1 - s_i[inside_a].sum() / (s_i.sum() + 1e-8) if mixed else 1.0
    want_partner = s_j[inside_b].sum() / (s_j.sum() + 1e-8) if mixed else 0.0
    np.testing.assert_allclose(float(out.weight), want_own, rtol=1e-5)
    np.testing.assert_allclose(float(out.partner_weight), want_partner, rtol=1e-5, atol=1e-7)
    if not mixed:
      continue
    rows = corner_aligned(low_b[0], high_b[0], low_a[0], high_a[0], SHAPE[0])
    cols = corner_aligned(low_b[1], high_b[1], low_a[1], high_a[1], SHAPE[1])
    grid = np.meshgrid(rows, cols, indexing="ij")
    want = np.stack([ndimage.map_coordinates(partner[..., c], grid, order=1) for c in range(2)], -1)
    pasted = np.asarray(out.paste(jnp.asarray(partner)))
    np.testing.assert_allclose(pasted[inside_a], want[inside_a], atol=1e-5)
    if high_a[0] - low_a[0] != high_b[0] - low_b[0]:  # a resize: another convention differs
      half = np.clip(
        (np.arange(SHAPE[0]) - low_a[0] + 0.5) * (high_b[0] - low_b[0]) / (high_a[0] - low_a[0]) - 0.5, 0, None
      )
      wrong_grid = np.meshgrid(low_b[0] + half, cols, indexing="ij")
      wrong = ndimage.map_coordinates(partner[..., 0], wrong_grid, order=1)
      assert not np.allclose(pasted[..., 0][inside_a], wrong[inside_a], atol=1e-5)


def test_the_box_centre_is_uniform_over_the_pixels():
  n, draws = 16, 4000
  keys = jax.random.split(jax.random.key(7), draws)
  low, high = jax.vmap(lambda k: _snapmix.reference_box(k, jnp.float32(0.75), (n, n)))(keys)
  low, high = np.asarray(low)[:, 0], np.asarray(high)[:, 0]
  side = 8  # 2 * (floor(16 * sqrt(0.25)) // 2)
  centre = np.where(low > 0, low + side // 2, high - side // 2)
  assert ((high - low) <= side).all() and ((high - low) == side).any() and ((high - low) < side).any()
  counts = np.bincount(centre, minlength=n)
  assert stats.chisquare(counts).pvalue > 1e-3
  # A law keeping boxes inside (centres in [4, 12)) is refused by the same test.
  inner = np.bincount(4 + np.random.default_rng(0).integers(0, 8, draws), minlength=n)
  assert stats.chisquare(inner).pvalue < 1e-3


def test_targets_are_the_two_weighted_rows():
  images = jax.random.uniform(jax.random.key(1), (8, *SHAPE, 3))
  labels = jnp.asarray([0, 1, 2, 3, 0, 1, 2, 3])
  saliency = jax.random.uniform(jax.random.key(2), (8, *SHAPE))
  for mode in ("batch", "example"):
    _, targets, info = msda_jax.mix_batch_with_info(
      jax.random.key(3), images, labels, msda_jax.SnapMix(), num_classes=4, saliency=saliency, mode=mode
    )
    onehot = np.eye(4)[np.asarray(labels)]
    w, pw = np.asarray(info.weight)[:, None], np.asarray(info.partner_weight)[:, None]
    np.testing.assert_allclose(np.asarray(targets), w * onehot + pw * onehot[np.asarray(info.partner)], atol=1e-6)
    assert not np.allclose(np.asarray(targets).sum(-1), 1.0), "SnapMix's rows need not sum to 1"


def test_the_train_step_maps_are_the_class_activation_maps():
  from msda_jax.train import hidden, init_train_state, make_train_step
  from msda_jax.train.models import SmallCNN

  model = SmallCNN(5, width=4, in_channels=3, rngs=nnx.Rngs(0))
  model.eval()
  images = jax.random.uniform(jax.random.key(4), (6, 16, 16, 3))
  labels = jnp.arange(6) % 5
  view = msda_jax.ModelView(
    loss=jnp.sum,
    to_input=lambda x: x,
    features=lambda x, layer: hidden.features_at(model, x, layer),
    head=lambda f, layer: hidden.head_after(model, images.shape, f, layer),
  )
  maps = np.asarray(msda_jax.SnapMix().prepare(jax.random.key(0), view, images, labels)["saliency"])
  features = hidden.features_at(model, images, -1)
  per_position = hidden.head_after(model, images.shape, features.reshape(-1, 1, 1, features.shape[-1]), -1)
  per_position = np.asarray(per_position).reshape(6, 4, 4, 5)
  # The head at every position is the CAM: its mean over positions is the model's logits.
  np.testing.assert_allclose(per_position.mean((1, 2)), np.asarray(model(images)), atol=1e-5)
  own = per_position[np.arange(6), :, :, np.asarray(labels)]
  resized = np.array(jax.image.resize(jnp.asarray(own), (6, 16, 16), "linear"))
  resized -= resized.min(axis=(1, 2), keepdims=True)
  np.testing.assert_allclose(maps, resized / resized.sum(axis=(1, 2), keepdims=True), atol=1e-6)
  # The jitted step trains on them, with no host callback.
  model.train()
  tx = optax.sgd(0.1)
  graphdef, state, opt = init_train_state(model, tx)
  mixer = msda_jax.Mixer(msda_jax.SnapMix(), num_classes=5)
  step = jax.jit(make_train_step(graphdef=graphdef, tx=tx, mixer=mixer, weight_decay=0.0))
  batch = {"image": images, "label": labels}
  assert "callback" not in step.lower(state, opt, batch, jax.random.key(0)).as_text()
  _, _, metrics = step(state, opt, batch, jax.random.key(0))
  assert np.isfinite(float(metrics["loss"]))


@pytest.mark.usefixtures("no_work")
def test_bad_input_raises_before_any_work():
  with pytest.raises(ValueError, match=r"layer must be an int >= -1"):
    msda_jax.SnapMix(layer=-3)
  view = msda_jax.ModelView(loss=jnp.sum, to_input=lambda x: x)
  with pytest.raises(ValueError, match=r"SnapMix reads class-activation maps: the ModelView has no features or head"):
    msda_jax.SnapMix().prepare(jax.random.key(0), view, jnp.ones((2, 8, 8, 3)), jnp.arange(2))
  with pytest.raises(ValueError, match=r"SnapMix reads the images: pass saliency="):
    msda_jax.mix_batch(jax.random.key(0), jnp.ones((2, 8, 8, 3)), jnp.arange(2), msda_jax.SnapMix(), num_classes=2)


def test_the_config_checks_the_layer():
  from experiments import train
  from experiments.configs import mnist_compare

  config = mnist_compare.get_config("snapmix,0")
  train.check_config(config, 1)
  config.method = "snapmix(layer=4)"
  with pytest.raises(ValueError, match=r"^method: layer=4: the model has layers 0 \(the input\) to 3"):
    train.check_config(config, 1)


@pytest.mark.parametrize("spec", ["snapmix", "resizemix"])
def test_an_example_paired_with_itself_keeps_its_image(spec):
  # Five images, "reverse" pairs: the middle one is its own partner, so it is not mixed, and its
  # own pasted copy (resized, moved) must not show either.
  images = jax.random.uniform(jax.random.key(0), (5, 16, 16, 3))
  more = {"saliency": jnp.ones((5, 16, 16))} if spec == "snapmix" else {}
  for mode in ("batch", "example"):
    mixed, targets, info = msda_jax.mix_batch_with_info(
      jax.random.key(1), images, jnp.arange(5), msda_jax.from_string(spec), num_classes=5, mode=mode, **more
    )
    assert not bool(info.applied[2])
    np.testing.assert_array_equal(np.asarray(mixed[2]), np.asarray(images[2]))
    np.testing.assert_array_equal(np.asarray(targets[2]), np.eye(5)[2])
    assert not np.array_equal(np.asarray(mixed[0]), np.asarray(images[0])), "the others are mixed"
