"""The training augmentations do what they say (msda_jax/data/transforms.py), beyond output shapes.

A flip mirrors the columns, half of the time; the CIFAR crop is a window of the zero-padded
image at an offset uniform over the 9 x 9 possible ones; the random-resized crops are the box the
sampler draws, resized (and mirrored half of the time for ``"imagenet"``); ``normalize`` is the
per-channel standardisation. Random images of values 1..255 make every window and mirror
distinguishable from the others and from the zero padding.
"""

import copy

import numpy as np
import pytest
from scipy import stats

from msda_jax.data import dataset_info, transforms

Z_MAX = 4.5  # largest accepted |z| of a binomial count
P_MIN = 1e-3  # smallest accepted chi-square p-value


def random_image(shape=(32, 32, 3), seed=0):
  return np.random.default_rng(seed).integers(1, 256, shape, dtype=np.uint8)


def window_offset(out, padded, height, width):
  """The one ``(top, left)`` with ``out == padded[top:top + height, left:left + width]``, else ``None``."""
  found = [
    (top, left)
    for top in range(padded.shape[0] - height + 1)
    for left in range(padded.shape[1] - width + 1)
    if np.array_equal(out, padded[top : top + height, left : left + width])
  ]
  assert len(found) <= 1, f"ambiguous window {found}"
  return found[0] if found else None


def test_random_flip_mirrors_the_columns_half_of_the_time():
  """Seeds 0-399, one flip each of a 6 x 7 image: every output is the image or its left-right
  mirror (``out[:, j] == image[:, W - 1 - j]``, not the up-down one), and the mirrors number
  Binomial(400, 1/2): 200 +- 45 (4.5 standard deviations; these seeds: 176). Never or always
  flipping fails."""
  image = random_image((6, 7, 3))
  mirror = image[:, ::-1]
  assert not np.array_equal(mirror, image) and not np.array_equal(mirror, image[::-1])
  flips = 0
  for seed in range(400):
    out = transforms.random_flip(image, np.random.default_rng(seed))
    assert out.shape == image.shape and out.dtype == np.uint8
    if np.array_equal(out, mirror):
      flips += 1
    else:
      np.testing.assert_array_equal(out, image)
  assert abs(flips - 200) < Z_MAX * np.sqrt(400 * 0.25), f"{flips} flips in 400"


def test_pad_crop_is_a_window_of_the_zero_padded_image_at_a_uniform_offset():
  """Generator seed 0, 4,050 crops of one 8 x 8 image: each is the window of the image padded by 4
  zeros per side at exactly one offset in {0..8}^2; the 81 offsets are uniform (chi-square, 80
  degrees of freedom, p > 1e-3; 50 expected per cell; this seed: p = 0.77) and all occur. A crop
  of the unpadded image (no zeros) or offsets missing the last row and column of positions fail."""
  image = random_image((8, 8, 3))
  padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
  rng = np.random.default_rng(0)
  counts = np.zeros((9, 9), int)
  for _ in range(4050):
    out = transforms.pad_crop(image, rng)
    assert out.shape == image.shape
    offset = window_offset(out, padded, 8, 8)
    assert offset is not None, "the crop is not a window of the zero-padded image"
    counts[offset] += 1
  assert (counts > 0).all(), f"offsets never drawn: {np.argwhere(counts == 0).tolist()}"
  p = stats.chisquare(counts.ravel()).pvalue
  assert p > P_MIN, f"offsets not uniform: chi-square p = {p:.2e}"


def test_cifar_augment_is_a_padded_window_mirrored_half_of_the_time():
  """Generator seed 1, 300 CIFAR augmentations of one 12 x 12 image at its own size: each is a
  window of the 4-padded image or the mirror of one; the mirrored ones number Binomial(300, 1/2):
  150 +- 39 (4.5 standard deviations; this seed: 153)."""
  image = random_image((12, 12, 3), seed=1)
  padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
  rng = np.random.default_rng(1)
  mirrored = 0
  for _ in range(300):
    out = transforms.augment_image(image, rng, augment="cifar", image_size=12)
    if window_offset(out, padded, 12, 12) is None:
      assert window_offset(out[:, ::-1], padded, 12, 12) is not None, "neither a window nor a mirrored one"
      mirrored += 1
  assert abs(mirrored - 150) < Z_MAX * np.sqrt(300 * 0.25), f"{mirrored} mirrored in 300"


@pytest.mark.parametrize("augment", ["scenario1", "scenario2", "imagenet"])
def test_random_resized_crop_is_the_drawn_box_resized(augment):
  """Generator seed 2, 60 augmentations of a 40 x 50 image to 24 x 24: each output is the crop of
  the box ``crop_box`` draws from the same generator state, resized bilinearly; for ``"imagenet"``
  it is mirrored or not, the mirrors numbering Binomial(60, 1/2) (30 +- 17; this seed: 29), for
  the scenarios never. Resizing the whole image, or another box, fails the equality."""
  image = random_image((40, 50, 3), seed=2)
  area = transforms.SCENARIO_AREAS.get(augment, transforms.INCEPTION_AREA)
  rng = np.random.default_rng(2)
  mirrored = 0
  for _ in range(60):
    before = copy.deepcopy(rng)
    out = transforms.augment_image(image, rng, augment=augment, image_size=24)
    top, left, h, w = transforms.crop_box(before, 40, 50, area)
    expected = transforms.resize(image[top : top + h, left : left + w], 24, 24)
    if augment == "imagenet" and not np.array_equal(out, expected):
      np.testing.assert_array_equal(out, expected[:, ::-1])
      mirrored += 1
    else:
      np.testing.assert_array_equal(out, expected)
  if augment == "imagenet":
    assert abs(mirrored - 30) < Z_MAX * np.sqrt(60 * 0.25), f"{mirrored} mirrored in 60"


def test_normalize_standardises_each_channel():
  """``(x / 255 - mean) / std`` per channel with the dataset's statistics, float32."""
  images = random_image((2, 3, 4, 3), seed=3)
  info = dataset_info("cifar10")
  got = np.asarray(transforms.normalize(images, dataset="cifar10"))
  expected = (images / 255.0 - np.asarray(info.mean)) / np.asarray(info.std)
  assert got.dtype == np.float32
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
  assert not np.allclose(np.asarray(info.mean), np.asarray(info.mean)[0])  # the channels differ
