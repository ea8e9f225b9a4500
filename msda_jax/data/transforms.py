"""Per-example image augmentations in numpy (run by grain's workers), and normalisation on device.

Every augmentation maps one uint8 image ``[H, W, C]`` and a ``numpy.random.Generator`` to a uint8
image ``[S, S, C]`` (``S = image_size``); grain hands each record its own generator, derived from
the seed and the record's position in the sampling order, so a pipeline is reproducible.

- ``"cifar"``: zero-pad 4 pixels per side, random ``H x W`` crop, horizontal flip with
  probability 1/2 (the output keeps the input size, then is resized to ``S`` if it differs).
- ``"imagenet"``: Inception-style random-resized crop of an area fraction uniform in ``crop_area`` (default
  ``(0.08, 1.0)``) with aspect ratio log-uniform in ``[3/4, 4/3]``, resized to ``S``, plus a flip.
- ``"scenario1"``, ``"scenario2"``: the paper's Table 1 data scenarios, random crops covering
  80-100 % and 25-40 % of the image area, resized to ``S`` (64 in the paper); no flip.
- ``"none"``: the whole image resized to ``S`` (unchanged when it already is ``S x S``).

Crops draw the area fraction first and then an aspect ratio among those for which the box fits,
so the area fraction is exactly uniform on its range up to rounding to whole pixels (rejection
sampling, as in Inception, would bias large areas toward smaller ones).

Evaluation (``center_crop_resize``) resizes the shorter side to ``S / crop_fraction`` and takes
the central ``S x S`` square: ``crop_fraction=0.875`` for ImageNet, ``1.0`` (a plain resize of a
square image) for the fixed-size datasets.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from msda_jax.data.datasets import dataset_info

AUGMENTATIONS = ("cifar", "imagenet", "scenario1", "scenario2", "none")
SCENARIO_AREAS = {"scenario1": (0.8, 1.0), "scenario2": (0.25, 0.4)}
INCEPTION_AREA = (0.08, 1.0)
ASPECT_RATIO = (3.0 / 4.0, 4.0 / 3.0)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
  """Bilinear (antialiased) resize of a uint8 image ``[H, W, C]`` to ``[height, width, C]``.

  >>> resize(np.zeros((5, 7, 3), np.uint8), 4, 4).shape
  (4, 4, 3)
  """
  if image.shape[:2] == (height, width):
    return image
  channels = image.shape[2]
  pil = Image.fromarray(image[..., 0] if channels == 1 else image)
  out = np.asarray(pil.resize((width, height), Image.Resampling.BILINEAR))
  return out.reshape(height, width, channels)


def crop_box(rng: np.random.Generator, height: int, width: int, area: tuple[float, float]) -> tuple[int, int, int, int]:
  """A random box ``(top, left, h, w)`` covering a fraction of the image area uniform in ``area``.

  The aspect ratio ``w / h`` is log-uniform on ``ASPECT_RATIO`` intersected with the ratios for
  which the box fits inside the image (clamped to the nearest fitting ratio if that is empty).

  >>> top, left, h, w = crop_box(np.random.default_rng(0), 64, 64, (0.25, 0.4))
  >>> 0.2 < h * w / 64**2 < 0.45
  True
  """
  target = rng.uniform(*area) * height * width
  low = max(math.log(ASPECT_RATIO[0]), math.log(target / height**2))
  high = min(math.log(ASPECT_RATIO[1]), math.log(width**2 / target))
  log_ratio = rng.uniform(low, high) if low <= high else (low + high) / 2
  ratio = math.exp(log_ratio)
  h = int(np.clip(round(math.sqrt(target / ratio)), 1, height))
  w = int(np.clip(round(math.sqrt(target * ratio)), 1, width))
  top = int(rng.integers(0, height - h + 1))
  left = int(rng.integers(0, width - w + 1))
  return top, left, h, w


def random_resized_crop(
  image: np.ndarray, rng: np.random.Generator, *, image_size: int, area: tuple[float, float]
) -> np.ndarray:
  """A crop from ``crop_box`` resized to ``[image_size, image_size, C]``."""
  top, left, h, w = crop_box(rng, image.shape[0], image.shape[1], area)
  return resize(image[top : top + h, left : left + w], image_size, image_size)


def pad_crop(image: np.ndarray, rng: np.random.Generator, *, padding: int = 4) -> np.ndarray:
  """Zero-pad ``padding`` pixels per side and crop back to ``[H, W, C]`` at a random offset.

  >>> pad_crop(np.ones((32, 32, 3), np.uint8), np.random.default_rng(0)).shape
  (32, 32, 3)
  """
  height, width = image.shape[:2]
  padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
  top, left = rng.integers(0, 2 * padding + 1, size=2)
  return padded[top : top + height, left : left + width]


def random_flip(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Mirror ``image`` left-right with probability 1/2."""
  return image[:, ::-1] if rng.random() < 0.5 else image


def center_crop_resize(image: np.ndarray, *, image_size: int, crop_fraction: float = 1.0) -> np.ndarray:
  """Resize the shorter side to ``image_size / crop_fraction``, then take the central square.

  >>> center_crop_resize(np.zeros((300, 400, 3), np.uint8), image_size=224, crop_fraction=0.875).shape
  (224, 224, 3)
  """
  height, width = image.shape[:2]
  short = max(image_size, round(image_size / crop_fraction))
  scale = short / min(height, width)
  new_h, new_w = max(short, round(height * scale)), max(short, round(width * scale))
  image = resize(image, new_h, new_w)
  top, left = (new_h - image_size) // 2, (new_w - image_size) // 2
  return np.ascontiguousarray(image[top : top + image_size, left : left + image_size])


def augment_image(
  image: np.ndarray,
  rng: np.random.Generator,
  *,
  augment: str,
  image_size: int,
  crop_area: tuple[float, float] | None = None,
) -> np.ndarray:
  """One training augmentation (see the module docstring): uint8 ``[H, W, C]`` -> ``[S, S, C]``.

  Args:
    image: uint8 ``[H, W, C]``.
    rng: the record's generator.
    augment: one of ``AUGMENTATIONS``.
    image_size: output side ``S``.
    crop_area: overrides the area range of ``"imagenet"`` and the scenarios.

  >>> rng = np.random.default_rng(0)
  >>> augment_image(np.zeros((28, 28, 1), np.uint8), rng, augment="scenario2", image_size=64).shape
  (64, 64, 1)
  """
  if augment == "cifar":
    image = random_flip(pad_crop(image, rng), rng)
    return resize(np.ascontiguousarray(image), image_size, image_size)
  if augment in ("imagenet", *SCENARIO_AREAS):
    area = crop_area or SCENARIO_AREAS.get(augment, INCEPTION_AREA)
    if not 0.0 < area[0] <= area[1] <= 1.0:
      raise ValueError(f"crop_area must satisfy 0 < low <= high <= 1, got {area}")
    image = random_resized_crop(image, rng, image_size=image_size, area=area)
    return np.ascontiguousarray(random_flip(image, rng)) if augment == "imagenet" else image
  if augment == "none":
    return center_crop_resize(image, image_size=image_size)
  raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}")


def normalize(images: jax.typing.ArrayLike, *, dataset: str) -> jax.Array:
  """Standardise uint8 images ``[..., C]`` to float32 with the dataset's per-channel mean and std.

  ``(images / 255 - mean) / std``; meant to run on device, inside the jitted step.

  >>> normalize(np.full((1, 2, 2, 3), 255, np.uint8), dataset="cifar10").shape
  (1, 2, 2, 3)
  """
  info = dataset_info(dataset)
  images = jnp.asarray(images, jnp.float32)
  shape = (1,) * (images.ndim - 1) + (len(info.mean),)  # explicit broadcast: no rank promotion
  mean = jnp.asarray(info.mean, jnp.float32).reshape(shape)
  std = jnp.asarray(info.std, jnp.float32).reshape(shape)
  return (images / 255.0 - mean) / std
