"""The datasets the pipelines read, with their facts, and random-access sources for their splits.

A *source* is anything with ``len(source)`` and ``source[i]`` returning one record
``{"image": uint8 [H, W, C], "label": int32 []}``; grain reads it by index, so shuffling,
sharding and checkpointing need no pass over the data.

- ``"mnist_subset"``: the embedded 5,000-image MNIST subset (no download), held in memory.
- ``"cifar10"``, ``"cifar100"``: tfds ArrayRecord files (``tfds.data_source``, no TensorFlow at
  read time) prepared once with ``experiments/prepare_data.py``.
- ``"imagenet2012"``: the same, from the ILSVRC-2012 tars the user downloads by hand.
- ``"imagenet100"``: ``imagenet2012`` restricted to the 100 classes of the contrastive multiview
  coding ImageNet-100 list (``IMAGENET100_WNIDS``, wordnet ids), relabelled ``0..99`` in sorted
  wordnet-id order (the order of a class-folder listing). Finding its records reads every label of
  the split once; ``experiments/prepare_data.py --dataset imagenet100`` stores that index as
  ``<data_dir>/imagenet100/<split>_index.npy`` so later runs skip the pass.
"""

from __future__ import annotations

import functools
import os
import zlib
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from msda_jax.data.embedded import load_mnist_subset


class Source(Protocol):
  """Random access to records ``{"image": uint8 [H, W, C], "label": int32 []}``."""

  def __len__(self) -> int: ...

  def __getitem__(self, index: int) -> dict[str, Any]: ...


class DatasetInfo(NamedTuple):
  """Facts about one dataset.

  Attributes:
    num_classes: number of classes ``K``.
    image_shape: ``(H, W, C)`` of the stored images; ``H``, ``W`` are ``None`` when they vary.
    train_split, eval_split: split names (tfds split syntax for tfds datasets).
    tfds_name: the tfds dataset the records come from, ``None`` for the embedded dataset.
    mean, std: per-channel statistics of pixel values scaled to [0, 1], length ``C``.
  """

  num_classes: int
  image_shape: tuple[int | None, int | None, int]
  train_split: str
  eval_split: str
  tfds_name: str | None
  mean: tuple[float, ...]
  std: tuple[float, ...]


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

DATASETS: dict[str, DatasetInfo] = {
  "mnist_subset": DatasetInfo(10, (28, 28, 1), "train", "test", None, (0.1307,), (0.3081,)),
  "cifar10": DatasetInfo(
    10, (32, 32, 3), "train", "test", "cifar10", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
  ),
  "cifar100": DatasetInfo(
    100, (32, 32, 3), "train", "test", "cifar100", (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)
  ),
  "imagenet2012": DatasetInfo(
    1000, (None, None, 3), "train", "validation", "imagenet2012", _IMAGENET_MEAN, _IMAGENET_STD
  ),
  "imagenet100": DatasetInfo(
    100, (None, None, 3), "train", "validation", "imagenet2012", _IMAGENET_MEAN, _IMAGENET_STD
  ),
}

# The ImageNet-100 class list of contrastive multiview coding (imagenet100.txt of its public
# repository), in that file's order; labels follow the sorted order.
IMAGENET100_WNIDS: tuple[str, ...] = (
  "n02869837", "n01749939", "n02488291", "n02107142", "n13037406", "n02091831", "n04517823", "n04589890",
  "n03062245", "n01773797", "n01735189", "n07831146", "n07753275", "n03085013", "n04485082", "n02105505",
  "n01983481", "n02788148", "n03530642", "n04435653", "n02086910", "n02859443", "n13040303", "n03594734",
  "n02085620", "n02099849", "n01558993", "n04493381", "n02109047", "n04111531", "n02877765", "n04429376",
  "n02009229", "n01978455", "n02106550", "n01820546", "n01692333", "n07714571", "n02974003", "n02114855",
  "n03785016", "n03764736", "n03775546", "n02087046", "n07836838", "n04099969", "n04592741", "n03891251",
  "n02701002", "n03379051", "n02259212", "n07715103", "n03947888", "n04026417", "n02326432", "n03637318",
  "n01980166", "n02113799", "n02086240", "n03903868", "n02483362", "n04127249", "n02089973", "n03017168",
  "n02093428", "n02804414", "n02396427", "n04418357", "n02172182", "n01729322", "n02113978", "n03787032",
  "n02089867", "n02119022", "n03777754", "n04238763", "n02231487", "n03032252", "n02138441", "n02104029",
  "n03837869", "n03494278", "n04136333", "n03794056", "n03492542", "n02018207", "n04067472", "n03930630",
  "n03584829", "n02123045", "n04229816", "n02100583", "n03642806", "n04336792", "n03259280", "n02116738",
  "n02108089", "n03424325", "n01855672", "n02090622",
)  # fmt: skip


def dataset_info(name: str) -> DatasetInfo:
  """The facts of dataset ``name``.

  >>> dataset_info("cifar100").num_classes, dataset_info("cifar100").image_shape
  (100, (32, 32, 3))
  """
  if name not in DATASETS:
    raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {name!r}")
  return DATASETS[name]


class InMemorySource:
  """A source over arrays held in memory: images uint8 ``[N, H, W, C]``, labels ``[N]``.

  >>> source = InMemorySource(np.zeros((3, 2, 2, 1), np.uint8), np.arange(3))
  >>> len(source), source[2]["image"].shape, int(source[2]["label"])
  (3, (2, 2, 1), 2)
  """

  def __init__(self, images: np.ndarray, labels: np.ndarray):
    if images.dtype != np.uint8 or images.ndim != 4:
      raise ValueError(f"images must be uint8 [N, H, W, C], got {images.dtype} {images.shape}")
    if labels.shape != images.shape[:1]:
      raise ValueError(f"labels must be [N] = {images.shape[:1]}, got {labels.shape}")
    self.images = images
    self.labels = labels.astype(np.int32)

  def __len__(self) -> int:
    return len(self.labels)

  def __getitem__(self, index: int) -> dict[str, Any]:
    return {"image": self.images[index], "label": self.labels[index]}

  def __repr__(self) -> str:  # grain checks a restored iterator's source by its repr
    return f"InMemorySource(images={self.images.shape}, labels_crc32={zlib.crc32(self.labels.tobytes())})"


class TfdsSource:
  """The image and label of each record of a tfds ArrayRecord split (other features dropped)."""

  def __init__(self, data_source: Sequence[Any]):
    self.data_source = data_source

  def __len__(self) -> int:
    return len(self.data_source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    record = self.data_source[index]
    return {"image": np.asarray(record["image"], np.uint8), "label": np.int32(record["label"])}

  def __repr__(self) -> str:
    return f"TfdsSource({self.data_source!r})"


class SubsetSource:
  """Records ``indices`` of ``source``, their labels mapped through ``label_map`` (``[K_source]``)."""

  def __init__(self, source: Source, indices: np.ndarray, label_map: np.ndarray):
    self.source = source
    self.indices = np.asarray(indices, np.int64)
    self.label_map = np.asarray(label_map, np.int32)

  def __len__(self) -> int:
    return len(self.indices)

  def __getitem__(self, index: int) -> dict[str, Any]:
    record = self.source[int(self.indices[index])]
    return {"image": record["image"], "label": self.label_map[record["label"]]}

  def __repr__(self) -> str:
    return f"SubsetSource({self.source!r}, records={len(self)}, indices_crc32={zlib.crc32(self.indices.tobytes())})"


@functools.cache
def _mnist_subset_sources() -> tuple[InMemorySource, InMemorySource]:
  def to_source(split):
    return InMemorySource(np.round(split.images * 255.0).astype(np.uint8), split.labels)

  train, test = load_mnist_subset()
  return to_source(train), to_source(test)


def imagenet100_label_map() -> np.ndarray:
  """``[1000]`` int32: the ImageNet-100 label of each ImageNet-2012 label, ``-1`` outside the subset.

  ImageNet-2012 labels (tfds) index the sorted wordnet ids, so the subset keeps their order.

  >>> label_map = imagenet100_label_map()
  >>> int((label_map >= 0).sum()), int(label_map.max())
  (100, 99)
  """
  import tensorflow_datasets as tfds

  names_file = os.path.join(os.path.dirname(tfds.__file__), "datasets", "imagenet2012", "labels.txt")
  with open(names_file) as file:
    all_wnids = file.read().split()
  label_map = np.full(len(all_wnids), -1, np.int32)
  for new_label, wnid in enumerate(sorted(IMAGENET100_WNIDS)):
    label_map[all_wnids.index(wnid)] = new_label
  return label_map


def imagenet100_indices(source: Source, label_map: np.ndarray | None = None) -> np.ndarray:
  """``[N_subset]`` int64: the records of an ImageNet-2012 ``source`` whose class is in ImageNet-100.

  Reads every record's label once (the slow step for the full train split; cache the result).
  """
  label_map = imagenet100_label_map() if label_map is None else label_map
  labels = np.fromiter((int(source[i]["label"]) for i in range(len(source))), np.int64, count=len(source))
  return np.flatnonzero(label_map[labels] >= 0)


def imagenet100_index_path(data_dir: str, split: str) -> str:
  """Where ``experiments/prepare_data.py`` stores the ImageNet-100 record index of ``split``."""
  return os.path.join(data_dir, "imagenet100", f"{split}_index.npy")


def load_source(name: str, split: str, *, data_dir: str | None = None) -> Source:
  """A random-access source over ``split`` of dataset ``name``.

  Args:
    name: a key of ``DATASETS``.
    split: a split name (``dataset_info(name).train_split`` or ``.eval_split``).
    data_dir: the tfds data directory holding the prepared ArrayRecord files (tfds default
      when ``None``); unused by the embedded dataset. Nothing is ever downloaded.

  >>> source = load_source("mnist_subset", "test")
  >>> len(source), source[0]["image"].dtype
  (1000, dtype('uint8'))
  """
  info = dataset_info(name)
  if info.tfds_name is None:
    train, test = _mnist_subset_sources()
    if split not in ("train", "test"):
      raise ValueError(f"split of {name!r} must be 'train' or 'test', got {split!r}")
    return train if split == "train" else test
  import tensorflow_datasets as tfds

  source = TfdsSource(tfds.data_source(info.tfds_name, split=split, data_dir=data_dir, download=False))
  if name != "imagenet100":
    return source
  label_map = imagenet100_label_map()
  index_path = imagenet100_index_path(data_dir, split) if data_dir is not None else None
  if index_path is not None and os.path.exists(index_path):
    indices = np.load(index_path)
  else:  # labels only: skip decoding the images for the pass
    decoders = {"image": tfds.decode.SkipDecoding()}
    labels_only = tfds.data_source(info.tfds_name, split=split, data_dir=data_dir, download=False, decoders=decoders)
    indices = imagenet100_indices(labels_only, label_map)
  return SubsetSource(source, indices, label_map)
