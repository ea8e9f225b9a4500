"""In-memory datasets as checkpointable, per-process batch iterators (the embedded MNIST subset).

The training loop reads any iterator of this small protocol:

* ``next(iterator)`` is a dict of numpy arrays ``{"image": [B_local, H, W, C], "label": [B_local]}``,
  this process's rows of the next global batch;
* ``iterator.get_state()`` returns a JSON-serialisable dict and ``iterator.set_state(state)``
  resumes from it, so that a restarted run reads the same batches as an uninterrupted one.

``ArrayIterator`` implements it for numpy arrays: epoch ``e`` visits the examples in the order
``permutation(N)`` drawn from ``numpy.random.default_rng([seed, e])`` (deterministic per seed
and epoch, independent of the number of processes), global batch ``b`` of the epoch is rows
``[b * B, (b + 1) * B)`` of that order (the last incomplete batch is dropped), and process
``p`` of ``P`` reads the ``p``-th of ``P`` contiguous blocks of it. The state, ``{"epoch",
"batch"}``, is the same on every process.

``padded_batches`` cuts an evaluation set into global batches padded to a fixed size, with a
``"mask"`` that is 0 on the padding rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np


def _local_rows(batch_size: int, process_index: int, process_count: int) -> slice:
  if batch_size % process_count:
    raise ValueError(f"batch_size must be divisible by the process count {process_count}; got {batch_size}.")
  local = batch_size // process_count
  return slice(process_index * local, (process_index + 1) * local)


class ArrayIterator:
  """Shuffled global batches of in-memory arrays, this process's rows only, with a resumable state.

  Args:
    images: ``[N, H, W, C]`` images (any dtype; kept).
    labels: ``[N]`` integer labels.
    batch_size: the global batch size ``B`` (divisible by ``process_count``).
    seed: the shuffling seed.
    process_index: this process's index ``p`` (``jax.process_index()``).
    process_count: the number of processes ``P`` (``jax.process_count()``).
    shuffle: draw a new order every epoch (else the stored order).
    transform: optional ``transform(image, rng) -> image`` applied to each of this process's
      examples (an augmentation); ``rng`` is ``numpy.random.default_rng([seed, epoch, k])`` for
      the example at position ``k`` of the epoch's order, so the augmented batches do not depend
      on the number of processes and a resumed run draws what an uninterrupted one would.

  >>> images, labels = np.arange(10.0).reshape(10, 1, 1, 1), np.arange(10)
  >>> it = ArrayIterator(images, labels, batch_size=4, seed=0, process_index=1, process_count=2)
  >>> [len(next(it)["label"]) for _ in range(3)], it.get_state()
  ([2, 2, 2], {'epoch': 1, 'batch': 1})
  >>> state = it.get_state(); first = next(it)["label"]; it.set_state(state)
  >>> bool((next(it)["label"] == first).all())
  True
  """

  def __init__(
    self,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    seed: int,
    process_index: int = 0,
    process_count: int = 1,
    shuffle: bool = True,
    transform: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
  ):
    if len(images) != len(labels):
      raise ValueError(f"images and labels must have the same length; got {len(images)} and {len(labels)}.")
    if not 0 < batch_size <= len(images):
      raise ValueError(f"batch_size must be in [1, {len(images)}]; got {batch_size}.")
    self.images = images
    self.labels = labels
    self.batch_size = batch_size
    self.seed = seed
    self.shuffle = shuffle
    self.transform = transform
    self.rows = _local_rows(batch_size, process_index, process_count)
    self.batches_per_epoch = len(images) // batch_size
    self.epoch = 0
    self.batch = 0
    self._order: np.ndarray | None = None

  def _epoch_order(self) -> np.ndarray:
    if self._order is None:
      n = len(self.images)
      self._order = np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)
    return self._order

  def __iter__(self) -> ArrayIterator:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self.batch == self.batches_per_epoch:
      self.epoch, self.batch, self._order = self.epoch + 1, 0, None
    start = self.batch * self.batch_size
    positions = np.arange(start, start + self.batch_size)[self.rows]
    index = self._epoch_order()[positions]
    self.batch += 1
    images = self.images[index]
    if self.transform is not None:
      images = np.stack(
        [
          self.transform(image, np.random.default_rng([self.seed, self.epoch, k]))
          for image, k in zip(images, positions, strict=True)
        ]
      )
    return {"image": images, "label": self.labels[index]}

  def get_state(self) -> dict[str, Any]:
    """The position, ``{"epoch": e, "batch": b}``: the next batch is batch ``b`` of epoch ``e``."""
    return {"epoch": self.epoch, "batch": self.batch}

  def set_state(self, state: dict[str, Any]) -> None:
    """Resumes from a state returned by ``get_state`` (on any process)."""
    self.epoch, self.batch, self._order = int(state["epoch"]), int(state["batch"]), None


def padded_batches(
  images: np.ndarray,
  labels: np.ndarray,
  *,
  batch_size: int,
  process_index: int = 0,
  process_count: int = 1,
) -> Iterator[dict[str, np.ndarray]]:
  """This process's rows of ``ceil(N / B)`` global batches of size ``B``, the last one padded.

  Every example is seen exactly once; padding rows repeat the first example and have
  ``"mask"`` 0 (the others 1), so summing masked metrics counts the dataset exactly.

  >>> batches = list(padded_batches(np.zeros((5, 1, 1, 1)), np.arange(5), batch_size=4))
  >>> [b["mask"].tolist() for b in batches]
  [[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]]
  """
  rows = _local_rows(batch_size, process_index, process_count)
  n = len(images)
  for start in range(0, n, batch_size):
    index = np.arange(start, start + batch_size)
    mask = (index < n).astype(np.float32)
    index = np.where(index < n, index, 0)[rows]
    yield {"image": images[index], "label": labels[index], "mask": mask[rows]}
