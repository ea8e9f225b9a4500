"""Datasets and grain input pipelines: the embedded dataset, tfds ArrayRecord sources, augmentations."""

from msda_jax.data.arrays import ArrayIterator, padded_batches
from msda_jax.data.datasets import (
  DATASETS,
  IMAGENET100_WNIDS,
  DatasetInfo,
  InMemorySource,
  Source,
  dataset_info,
  imagenet100_index_path,
  imagenet100_indices,
  imagenet100_label_map,
  load_source,
)
from msda_jax.data.embedded import NUM_CLASSES, Split, load_mnist_subset
from msda_jax.data.pipeline import (
  eval_loader_from_source,
  make_eval_loader,
  make_train_loader,
  train_loader_from_source,
)
from msda_jax.data.transforms import AUGMENTATIONS, augment_image, center_crop_resize, crop_box, normalize

__all__ = [
  "AUGMENTATIONS",
  "ArrayIterator",
  "DATASETS",
  "IMAGENET100_WNIDS",
  "NUM_CLASSES",
  "DatasetInfo",
  "InMemorySource",
  "Source",
  "Split",
  "augment_image",
  "center_crop_resize",
  "crop_box",
  "dataset_info",
  "eval_loader_from_source",
  "imagenet100_index_path",
  "imagenet100_indices",
  "imagenet100_label_map",
  "load_mnist_subset",
  "load_source",
  "make_eval_loader",
  "make_train_loader",
  "normalize",
  "padded_batches",
  "train_loader_from_source",
]
