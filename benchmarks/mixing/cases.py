"""What is measured: methods, modes, shapes, dtypes, and the inputs each case is timed on.

Images are random uint8 pixels, kept as uint8 or scaled to [0, 1] in float32 or bfloat16, so
every dtype sees the same picture. Labels are int32 class ids; the number of classes follows
the shape (100 for 32 x 32, as CIFAR-100; 1000 otherwise, as ImageNet).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

METHODS = (
  "mixup",
  "cutmix",
  "stochastic_mixup_cutmix",
  "hmix",
  "gmix",
  "bernoulli",
  "fmix",
  "resizemix",
  "smoothmix",
  "gridmix",
  "specmix",
  "ricap",
  "k_cutmix(k=3)",
  "manifold_mixup",
  "patchup",
  "videomix",
)
MODES = ("batch", "example")
DTYPES = ("float32", "bfloat16", "uint8")
SHAPES = ((256, 32, 32, 3), (128, 224, 224, 3))


def parse_shape(text: str) -> tuple[int, ...]:
  """``"128x224x224x3"`` -> ``(128, 224, 224, 3)``; five numbers for videos (``B x T x H x W x C``)."""
  shape = tuple(int(n) for n in text.lower().split("x"))
  if len(shape) not in (4, 5) or min(shape) < 1:
    raise ValueError(f"a shape is B x H x W x C (or B x T x H x W x C, a video), e.g. 128x224x224x3; got {text!r}.")
  return shape


def shape_name(shape: tuple[int, ...]) -> str:
  return "x".join(str(n) for n in shape)


def num_classes(shape: tuple[int, ...]) -> int:
  return 100 if shape[-2] <= 32 else 1000


@dataclasses.dataclass(frozen=True)
class Inputs:
  """Distinct image buffers of one shape and dtype, with labels and keys to rotate through."""

  shape: tuple[int, ...]
  dtype: str
  images: tuple[jax.Array, ...]
  labels: tuple[jax.Array, ...]
  pixels: tuple[np.ndarray, ...]  # the uint8 source of each buffer, for peers to convert
  class_ids: tuple[np.ndarray, ...]

  @property
  def batch_bytes(self) -> int:
    return int(self.images[0].nbytes)

  @property
  def num_classes(self) -> int:
    return num_classes(self.shape)


def buffer_count(shape: tuple[int, ...], dtype: str, min_bytes: int = 64 << 20, most: int = 64) -> int:
  """How many buffers to rotate through: at least 3, and enough to exceed ``min_bytes`` (caches)."""
  nbytes = math.prod(shape) * jnp.dtype(dtype).itemsize
  return int(min(most, max(3, -(-min_bytes // nbytes))))


def to_dtype(pixels: np.ndarray, dtype: str) -> np.ndarray:
  """uint8 pixels as ``dtype``: kept for uint8, scaled to [0, 1] for float dtypes (numpy)."""
  if dtype == "uint8":
    return pixels
  return (pixels.astype(np.float32) / 255.0).astype(jnp.dtype(dtype))


def make_inputs(shape: tuple[int, ...], dtype: str, seed: int = 0, buffers: int | None = None) -> Inputs:
  """Random inputs for one case; the same ``seed`` gives the same pixels whatever the dtype."""
  count = buffers or buffer_count(shape, dtype)
  rng = np.random.default_rng(seed)
  k = num_classes(shape)
  pixels = tuple(rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count))
  class_ids = tuple(rng.integers(0, k, shape[:1], dtype=np.int32) for _ in range(count))
  images = tuple(jnp.asarray(to_dtype(p, dtype)) for p in pixels)
  labels = tuple(jnp.asarray(c) for c in class_ids)
  return Inputs(shape, dtype, images, labels, pixels, class_ids)
