"""Prepare a tfds dataset as ArrayRecord files from archives you already have (run once, offline).

The training pipelines read ArrayRecord files through ``tfds.data_source`` without TensorFlow,
but *writing* them (encoding the images) needs TensorFlow, for this step only::

  pip install -e '.[prepare]'       # adds TensorFlow; the rest of the project never imports it
  python -m experiments.prepare_data --dataset cifar100 --manual_dir ~/archives --data_dir ~/tfds
  python -m experiments.prepare_data --dataset cifar10 --manual_dir ~/archives --data_dir ~/tfds
  python -m experiments.prepare_data --dataset imagenet2012 --manual_dir ~/imagenet --data_dir ~/tfds
  python -m experiments.prepare_data --dataset imagenet100 --manual_dir ~/imagenet --data_dir ~/tfds

What ``--manual_dir`` must hold:

- ``cifar10``: ``cifar-10-binary.tar.gz``; ``cifar100``: ``cifar-100-binary.tar.gz`` (the *binary*
  versions, byte-identical to the published files). The tfds download manager looks for a URL's
  registered file name (tfds's ``url_checksums/cifar*.txt``) in ``manual_dir`` before any
  download, and checks the file's size and sha256 against the registered ones; nothing is fetched.
- ``imagenet2012`` and ``imagenet100``: ``ILSVRC2012_img_train.tar`` and ``ILSVRC2012_img_val.tar``
  (the builder's manual-download dataset; tfds ships the validation labels).
  ``imagenet100`` prepares ``imagenet2012`` and then stores the ImageNet-100 record index of each
  split as ``<data_dir>/imagenet100/<split>_index.npy`` (one pass over the labels).

Then train with ``data_dir=<data_dir>``; ``msda_jax.data.load_source`` never downloads.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from msda_jax.data import dataset_info, imagenet100_index_path, imagenet100_indices, load_source


def prepare(dataset: str, *, manual_dir: str, data_dir: str) -> None:
  """Build ``dataset``'s tfds ArrayRecord files in ``data_dir`` from the archives in ``manual_dir``."""
  import tensorflow_datasets as tfds

  info = dataset_info(dataset)
  if info.tfds_name is None:
    raise SystemExit(f"{dataset!r} is embedded in the package: nothing to prepare")
  builder = tfds.builder(info.tfds_name, data_dir=data_dir, file_format="array_record")
  builder.download_and_prepare(
    download_dir=os.path.join(data_dir, "downloads"),
    download_config=tfds.download.DownloadConfig(manual_dir=manual_dir),
    file_format="array_record",
  )
  if dataset == "imagenet100":
    for split in (info.train_split, info.eval_split):
      source = load_source("imagenet2012", split, data_dir=data_dir)
      path = imagenet100_index_path(data_dir, split)
      os.makedirs(os.path.dirname(path), exist_ok=True)
      indices = imagenet100_indices(source)
      np.save(path, indices)
      print(f"{split}: {len(indices)} ImageNet-100 records -> {path}")
  for split in (info.train_split, info.eval_split):
    print(f"{dataset} {split}: {len(load_source(dataset, split, data_dir=data_dir))} records")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--dataset", required=True, choices=["cifar10", "cifar100", "imagenet2012", "imagenet100"])
  parser.add_argument("--manual_dir", required=True, help="directory holding the archives (see above)")
  parser.add_argument("--data_dir", required=True, help="tfds data directory to write")
  args = parser.parse_args()
  prepare(args.dataset, manual_dir=os.path.expanduser(args.manual_dir), data_dir=os.path.expanduser(args.data_dir))


if __name__ == "__main__":
  main()
