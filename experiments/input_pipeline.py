"""The training loop's input: a checkpointable train iterator and the eval batches of a config.

Two readers, chosen by the config's dataset:

* ``mnist_subset`` with ``augment="none"`` or a crop scenario (``"scenario1"``,
  ``"scenario2"``): the embedded arrays through ``msda_jax.data.arrays.ArrayIterator`` (in
  memory; a scenario's crops drawn per example by ``transforms.augment_image``, without the
  loader's per-record overhead). Its batches do not depend on the number of processes, so a
  run on two processes sees the same global batches as a run on one.
* every other dataset (CIFAR-10/100, ImageNet-2012, ImageNet-100 prepared with
  ``experiments/prepare_data.py``, or the embedded set with an augmentation): the grain loaders
  of ``msda_jax.data.pipeline``, each process reading its own shard of the records.

Both yield this process's rows of each global batch, ``{"image": uint8 [B_local, S, S, C],
"label": int32 [B_local]}``, and have a JSON ``get_state()`` / ``set_state(state)`` that the
checkpoint stores, so a restarted run reads exactly the batches an uninterrupted one would.
Eval batches carry a ``"mask"`` (0 on the padding that fills the last global batch).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from typing import Any

import ml_collections
import numpy as np

from msda_jax.data import arrays, datasets, pipeline, transforms
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
  return config.dataset == "mnist_subset" and config.augment in ("none", *transforms.SCENARIO_AREAS)


def subset_indices(num_records: int, train_examples: int) -> np.ndarray:
  """The records a run with ``train_examples`` trains on: all when ``<= 0``, else a fixed random subset.

  The subset is the first ``train_examples`` of ``permutation(num_records)`` drawn from
  ``numpy.random.default_rng(0)``, sorted: the same records for every seed and method, and a
  smaller subset is contained in a larger one.

  >>> subset_indices(10, 0).tolist(), subset_indices(10, 3).tolist()
  ([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [2, 4, 6])
  """
  if train_examples <= 0:
    return np.arange(num_records)
  if train_examples > num_records:
    raise ValueError(f"train_examples must be <= the {num_records} training records; got {train_examples}.")
  return np.sort(np.random.default_rng(0).permutation(num_records)[:train_examples])


@functools.cache
def embedded_split(train: bool, image_size: int = 28) -> tuple[np.ndarray, np.ndarray]:
  """The embedded split's images as exact uint8 (stored grey levels), resized to ``image_size``, and labels."""
  split = load_mnist_subset()[0 if train else 1]
  images = np.rint(split.images * 255.0).astype(np.uint8)
  if image_size != images.shape[1]:
    images = np.stack([transforms.center_crop_resize(image, image_size=image_size) for image in images])
  images.flags.writeable = False
  return images, split.labels


def num_train_examples(config: ml_collections.ConfigDict) -> int:
  """Records a run of ``config`` trains on (reads only the index, not the images).

  ``config.train_examples`` (optional; ``<= 0`` or absent: the whole split) selects a fixed
  random subset (``subset_indices``).
  """
  if config.dataset == "mnist_subset":
    total = len(load_mnist_subset()[0].labels)
  else:
    info = datasets.dataset_info(config.dataset)
    total = len(datasets.load_source(config.dataset, info.train_split, data_dir=config.get("data_dir")))
  return len(subset_indices(total, config.get("train_examples", -1)))


def train_iterator(config: ml_collections.ConfigDict, process_index: int, process_count: int) -> Iterator[Any]:
  """This process's shuffled, augmented train batches of ``config``, repeating forever.

  Fields read: ``dataset``, ``data_dir``, ``image_size``, ``augment``, ``crop_area`` (optional
  ``(low, high)`` area fractions), ``train_examples`` (optional, see ``num_train_examples``),
  ``batch_size`` (global), ``seed``, ``data_workers``.
  """
  train_examples = config.get("train_examples", -1)
  crop_area = config.get("crop_area")
  if _in_memory(config):
    transform = None
    if config.augment != "none":  # a crop scenario: crops of the stored 28 x 28 digits, resized
      augment = functools.partial(
        transforms.augment_image,
        augment=config.augment,
        image_size=config.image_size,
        crop_area=tuple(crop_area) if crop_area else None,
      )
      transform = augment
    images, labels = embedded_split(True, config.image_size if transform is None else 28)
    keep = subset_indices(len(labels), train_examples)
    return arrays.ArrayIterator(
      images[keep],
      labels[keep],
      batch_size=config.batch_size,
      seed=config.seed,
      process_index=process_index,
      process_count=process_count,
      transform=transform,
    )
  info = datasets.dataset_info(config.dataset)
  source = datasets.load_source(config.dataset, info.train_split, data_dir=config.get("data_dir"))
  if train_examples > 0:
    keep = subset_indices(len(source), train_examples)
    source = datasets.SubsetSource(source, keep, np.arange(info.num_classes))
  loader = pipeline.train_loader_from_source(
    source,
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
      *embedded_split(False, config.image_size),
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
