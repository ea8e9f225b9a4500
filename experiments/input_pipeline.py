"""The training loop's input: a checkpointable train iterator and the eval batches of a config.

Two readers, chosen by the config's dataset:

* ``mnist_subset`` with ``augment="none"``: the embedded arrays through
  ``msda_jax.data.arrays.ArrayIterator`` (in memory, no per-record Python work). Its batches
  do not depend on the number of processes, so a run on two processes sees the same global
  batches as a run on one.
* every other dataset (CIFAR-10/100, ImageNet-2012, ImageNet-100 prepared with
  ``experiments/prepare_data.py``, or the embedded set with an augmentation): the grain loaders
  of ``msda_jax.data.pipeline``, each process reading its own shard of the records.

Both yield this process's rows of each global batch, ``{"image": uint8 [B_local, S, S, C],
"label": int32 [B_local]}``, and have a JSON ``get_state()`` / ``set_state(state)`` that the
checkpoint stores, so a restarted run reads exactly the batches an uninterrupted one would.
Eval batches carry a ``"mask"`` (0 on the padding that fills the last global batch).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import ml_collections
import numpy as np

from msda_jax.data import arrays, datasets, pipeline
from msda_jax.data.embedded import load_mnist_subset


class GrainIterator:
  """A grain ``DataLoader`` iterator whose state is a JSON dict (``{"grain": <state text>}``)."""

  def __init__(self, loader: Any):
    self.iterator = iter(loader)

  def __iter__(self) -> GrainIterator:
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    return next(self.iterator)

  def get_state(self) -> dict[str, Any]:
    """The position, as text (grain's state is UTF-8 JSON bytes)."""
    return {"grain": self.iterator.get_state().decode("utf-8")}

  def set_state(self, state: dict[str, Any]) -> None:
    """Resumes from a state returned by ``get_state``."""
    self.iterator.set_state(state["grain"].encode("utf-8"))


def _in_memory(config: ml_collections.ConfigDict) -> bool:
  return config.dataset == "mnist_subset" and config.augment == "none"


def _embedded(train: bool) -> tuple[np.ndarray, np.ndarray]:
  """The embedded split's images as exact uint8 (they are stored grey levels) and its labels."""
  split = load_mnist_subset()[0 if train else 1]
  return np.rint(split.images * 255.0).astype(np.uint8), split.labels


def num_train_examples(config: ml_collections.ConfigDict) -> int:
  """Records in the training split of ``config.dataset`` (reads only the index, not the images)."""
  if config.dataset == "mnist_subset":
    return len(load_mnist_subset()[0].labels)
  info = datasets.dataset_info(config.dataset)
  return len(datasets.load_source(config.dataset, info.train_split, data_dir=config.get("data_dir")))


def train_iterator(config: ml_collections.ConfigDict, process_index: int, process_count: int) -> Iterator[Any]:
  """This process's shuffled, augmented train batches of ``config``, repeating forever.

  Fields read: ``dataset``, ``data_dir``, ``image_size``, ``augment``, ``crop_area`` (optional
  ``(low, high)`` area fractions), ``batch_size`` (global), ``seed``, ``data_workers``.
  """
  if _in_memory(config):
    return arrays.ArrayIterator(
      *_embedded(train=True),
      batch_size=config.batch_size,
      seed=config.seed,
      process_index=process_index,
      process_count=process_count,
    )
  crop_area = config.get("crop_area")
  loader = pipeline.make_train_loader(
    dataset=config.dataset,
    data_dir=config.get("data_dir"),
    image_size=config.image_size,
    augment=config.augment,
    crop_area=tuple(crop_area) if crop_area else None,
    global_batch_size=config.batch_size,
    seed=config.seed,
    process_index=process_index,
    process_count=process_count,
    worker_count=config.get("data_workers", 0),
  )
  return GrainIterator(loader)


def eval_batches(
  config: ml_collections.ConfigDict, process_index: int, process_count: int
) -> Iterable[dict[str, np.ndarray]]:
  """One pass over the eval split in this process's rows of padded global batches of ``eval_batch_size``."""
  if _in_memory(config):
    return arrays.padded_batches(
      *_embedded(train=False),
      batch_size=config.eval_batch_size,
      process_index=process_index,
      process_count=process_count,
    )
  return pipeline.make_eval_loader(
    dataset=config.dataset,
    data_dir=config.get("data_dir"),
    image_size=config.image_size,
    global_batch_size=config.eval_batch_size,
    process_index=process_index,
    process_count=process_count,
    worker_count=config.get("data_workers", 0),
  )
