"""Grain input pipelines: sharded, shuffled, checkpointable train batches and padded eval batches.

Each process reads only its own contiguous shard of the records (``process_count`` equal shards,
the remainder dropped for training) and yields its local part of the global batch,
``global_batch_size // process_count`` examples. Batches are dicts of numpy arrays:

- ``"image"``: uint8 ``[B_local, S, S, C]``; normalise on device with ``transforms.normalize``.
- ``"label"``: int32 ``[B_local]``.
- ``"mask"`` (eval only): float32 ``[B_local]``, 0 for padding.

Training shuffles each epoch with a permutation fixed by ``seed`` and the epoch, and gives each
record its own augmentation generator fixed by ``seed`` and the record's position in the
sampling order. The iterator of the returned ``grain.DataLoader`` is checkpointable:
``state = iterator.get_state()`` (bytes) and ``iterator.set_state(state)`` resume exactly.

>>> loader = make_train_loader(dataset="mnist_subset", image_size=28, augment="none",
...                            global_batch_size=8, seed=0)
>>> batch = next(iter(loader))
>>> batch["image"].shape, batch["image"].dtype, batch["label"].dtype
((8, 28, 28, 1), dtype('uint8'), dtype('int32'))
"""

from __future__ import annotations

from typing import Any

import grain
import numpy as np

from msda_jax.data.datasets import Source, dataset_info, load_source
from msda_jax.data.transforms import augment_image, center_crop_resize


class _Augment(grain.transforms.RandomMap):
  """The training augmentation of one record, with the record's generator."""

  def __init__(self, *, augment: str, image_size: int, crop_area: tuple[float, float] | None):
    self.augment = augment
    self.image_size = image_size
    self.crop_area = crop_area

  def random_map(self, element: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    image = augment_image(
      np.asarray(element["image"]), rng, augment=self.augment, image_size=self.image_size, crop_area=self.crop_area
    )
    return {"image": image, "label": np.int32(element["label"])}


class _Evaluate(grain.transforms.Map):
  """The deterministic evaluation view of one record (centre crop and resize)."""

  def __init__(self, *, image_size: int, crop_fraction: float):
    self.image_size = image_size
    self.crop_fraction = crop_fraction

  def map(self, element: dict[str, Any]) -> dict[str, Any]:
    image = center_crop_resize(
      np.asarray(element["image"]), image_size=self.image_size, crop_fraction=self.crop_fraction
    )
    return {"image": image, "label": np.int32(element["label"]), "mask": np.float32(element["mask"])}


class PaddedSource:
  """``source`` extended to ``length`` records; the extra ones repeat record 0 with ``"mask"`` 0."""

  def __init__(self, source: Source, length: int):
    if length < len(source) or len(source) == 0:
      raise ValueError(f"length must be >= len(source) = {len(source)} > 0, got {length}")
    self.source = source
    self.length = length

  def __len__(self) -> int:
    return self.length

  def __getitem__(self, index: int) -> dict[str, Any]:
    real = index < len(self.source)
    record = self.source[index if real else 0]
    return {"image": record["image"], "label": record["label"], "mask": np.float32(real)}

  def __repr__(self) -> str:
    return f"PaddedSource({self.source!r}, length={self.length})"


def _local_batch_size(global_batch_size: int, process_count: int) -> int:
  if global_batch_size <= 0 or global_batch_size % process_count:
    raise ValueError(
      f"global_batch_size must be a positive multiple of process_count={process_count}, got {global_batch_size}"
    )
  return global_batch_size // process_count


def _shard_options(process_index: int, process_count: int) -> grain.sharding.ShardOptions:
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index must be in [0, {process_count}), got {process_index}")
  return grain.sharding.ShardOptions(shard_index=process_index, shard_count=process_count, drop_remainder=True)


def _sampler_seed(seed: int) -> int:
  """A 31-bit seed hashed from ``seed``, so nearby seeds give unrelated per-record generators.

  Grain seeds record ``i``'s generator with ``seed + i``; hashing keeps seeds 0 and 1 from
  sharing generators shifted by one record.
  """
  return int(np.random.SeedSequence(seed).generate_state(1, np.uint32)[0] >> np.uint32(1))


def train_loader_from_source(
  source: Source,
  *,
  image_size: int,
  augment: str,
  crop_area: tuple[float, float] | None = None,
  global_batch_size: int,
  seed: int,
  num_epochs: int | None = None,
  process_index: int = 0,
  process_count: int = 1,
  worker_count: int = 0,
) -> grain.DataLoader:
  """``make_train_loader`` over any random-access ``source`` (see ``datasets.Source``)."""
  local_batch = _local_batch_size(global_batch_size, process_count)
  shard_options = _shard_options(process_index, process_count)
  if len(source) // process_count < local_batch:
    raise ValueError(f"each of {process_count} shards of {len(source)} records is smaller than one batch")
  sampler = grain.samplers.IndexSampler(
    num_records=len(source), shard_options=shard_options, shuffle=True, seed=_sampler_seed(seed), num_epochs=num_epochs
  )
  operations = [
    _Augment(augment=augment, image_size=image_size, crop_area=crop_area),
    grain.transforms.Batch(batch_size=local_batch, drop_remainder=True),
  ]
  return grain.DataLoader(data_source=source, sampler=sampler, operations=operations, worker_count=worker_count)


def make_train_loader(
  *,
  dataset: str,
  data_dir: str | None = None,
  image_size: int,
  augment: str,
  crop_area: tuple[float, float] | None = None,
  global_batch_size: int,
  seed: int,
  num_epochs: int | None = None,
  process_index: int = 0,
  process_count: int = 1,
  worker_count: int = 0,
) -> grain.DataLoader:
  """Training batches of ``dataset``'s train split (see the module docstring).

  Args:
    dataset: a name of ``datasets.DATASETS``.
    data_dir: the tfds data directory with the prepared ArrayRecord files.
    image_size: output side ``S``.
    augment: one of ``transforms.AUGMENTATIONS``.
    crop_area: area-fraction range overriding that of ``augment`` (random-resized crops only).
    global_batch_size: examples per step over all processes, a multiple of ``process_count``.
    seed: fixes the shuffling of every epoch and every augmentation.
    num_epochs: passes over the data; ``None`` repeats forever.
    process_index, process_count: this process and the number of processes
      (``jax.process_index()``, ``jax.process_count()``).
    worker_count: grain worker processes (0 reads in the calling process).

  Returns:
    A ``grain.DataLoader``; ``iter`` of it gives batches ``{"image": uint8 [B_local, S, S, C],
    "label": int32 [B_local]}`` from a checkpointable iterator.
  """
  source = load_source(dataset, dataset_info(dataset).train_split, data_dir=data_dir)
  return train_loader_from_source(
    source,
    image_size=image_size,
    augment=augment,
    crop_area=crop_area,
    global_batch_size=global_batch_size,
    seed=seed,
    num_epochs=num_epochs,
    process_index=process_index,
    process_count=process_count,
    worker_count=worker_count,
  )


def eval_loader_from_source(
  source: Source,
  *,
  image_size: int,
  crop_fraction: float = 1.0,
  global_batch_size: int,
  process_index: int = 0,
  process_count: int = 1,
  worker_count: int = 0,
) -> grain.DataLoader:
  """``make_eval_loader`` over any random-access ``source``."""
  local_batch = _local_batch_size(global_batch_size, process_count)
  steps = -(-len(source) // global_batch_size)  # every process runs the same number of steps
  padded = PaddedSource(source, steps * global_batch_size)
  sampler = grain.samplers.IndexSampler(
    num_records=len(padded), shard_options=_shard_options(process_index, process_count), shuffle=False, num_epochs=1
  )
  operations = [
    _Evaluate(image_size=image_size, crop_fraction=crop_fraction),
    grain.transforms.Batch(batch_size=local_batch, drop_remainder=True),
  ]
  return grain.DataLoader(data_source=padded, sampler=sampler, operations=operations, worker_count=worker_count)


def make_eval_loader(
  *,
  dataset: str,
  data_dir: str | None = None,
  image_size: int,
  crop_fraction: float | None = None,
  global_batch_size: int,
  process_index: int = 0,
  process_count: int = 1,
  worker_count: int = 0,
) -> grain.DataLoader:
  """One pass over ``dataset``'s eval split in order, the last batches padded and masked.

  The split is padded to a whole number of global batches, so every process runs the same number
  of steps; padded examples have ``"mask"`` 0. Sum metrics weighted by ``"mask"``.

  Args:
    dataset, data_dir, image_size, global_batch_size, process_index, process_count, worker_count:
      as for ``make_train_loader``.
    crop_fraction: centre-crop fraction; ``None`` means 0.875 for variable-size (ImageNet)
      images and 1.0 (a plain resize) for fixed-size ones.

  Returns:
    A ``grain.DataLoader`` of ``{"image": uint8 [B_local, S, S, C], "label": int32 [B_local],
    "mask": float32 [B_local]}``.
  """
  info = dataset_info(dataset)
  if crop_fraction is None:
    crop_fraction = 0.875 if info.image_shape[0] is None else 1.0
  source = load_source(dataset, info.eval_split, data_dir=data_dir)
  return eval_loader_from_source(
    source,
    image_size=image_size,
    crop_fraction=crop_fraction,
    global_batch_size=global_batch_size,
    process_index=process_index,
    process_count=process_count,
    worker_count=worker_count,
  )
