"""Input pipelines: tfds ArrayRecord sources (mocked), the embedded dataset, grain loaders, transforms."""

import numpy as np
import pytest
import scipy.stats
import tensorflow_datasets as tfds

from msda_jax import data
from msda_jax.data import datasets, pipeline, transforms


def _indexed_source(n, size=8):
  """Images whose first pixel encodes the record index (n <= 65,536), labels ``index % 10``."""
  images = np.zeros((n, size, size, 1), np.uint8)
  images[:, 0, 0, 0] = np.arange(n) % 256
  images[:, 0, 1, 0] = np.arange(n) // 256
  return datasets.InMemorySource(images, np.arange(n) % 10)


def _ids(batch):
  """Record indices of a batch of ``_indexed_source`` (augment="none" keeps pixels)."""
  image = batch["image"].astype(np.int64)
  return image[:, 0, 0, 0] + 256 * image[:, 0, 1, 0]


def _train(source, **kwargs):
  options = dict(image_size=8, augment="none", global_batch_size=4, seed=0)
  return pipeline.train_loader_from_source(source, **{**options, **kwargs})


def test_public_names():
  for name in data.__all__:
    assert hasattr(data, name), name


def test_registry():
  assert data.dataset_info("cifar10").num_classes == 10
  assert data.dataset_info("imagenet100").tfds_name == "imagenet2012"
  assert len(set(data.IMAGENET100_WNIDS)) == 100
  with pytest.raises(ValueError, match="dataset must be one of"):
    data.dataset_info("svhn")


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_tfds_train_loader_shapes(name):
  with tfds.testing.mock_data(num_examples=40):
    loader = data.make_train_loader(dataset=name, image_size=32, augment="cifar", global_batch_size=8, seed=0)
    batch = next(iter(loader))
  assert batch["image"].shape == (8, 32, 32, 3) and batch["image"].dtype == np.uint8
  assert batch["label"].shape == (8,) and batch["label"].dtype == np.int32
  assert batch["label"].max() < data.dataset_info(name).num_classes


def test_tfds_imagenet_loaders_variable_size_images():
  with tfds.testing.mock_data(num_examples=12):
    train = data.make_train_loader(
      dataset="imagenet2012", image_size=24, augment="imagenet", global_batch_size=4, seed=1
    )
    evaluation = data.make_eval_loader(dataset="imagenet2012", image_size=24, global_batch_size=5)
    train_batch = next(iter(train))
    eval_batches = list(evaluation)
  assert train_batch["image"].shape == (4, 24, 24, 3)
  assert [b["image"].shape for b in eval_batches] == [(5, 24, 24, 3)] * 3
  assert sum(b["mask"].sum() for b in eval_batches) == 12


def test_imagenet100_subset_relabels(tmp_path):
  label_map = data.imagenet100_label_map()
  with tfds.testing.mock_data(num_examples=300):
    full = datasets.TfdsSource(tfds.data_source("imagenet2012", split="validation", download=False))
    indices = data.imagenet100_indices(full, label_map)
    path = data.imagenet100_index_path(str(tmp_path), "validation")
    (tmp_path / "imagenet100").mkdir()
    np.save(path, indices)
    subset = data.load_source("imagenet100", "validation", data_dir=str(tmp_path))
    labels = np.array([subset[i]["label"] for i in range(len(subset))])
    full_labels = np.array([full[i]["label"] for i in range(len(full))])
  assert len(subset) == int((label_map[full_labels] >= 0).sum()) > 0
  np.testing.assert_array_equal(labels, label_map[full_labels[indices]])
  assert labels.min() >= 0 and labels.max() < 100


def test_train_deterministic_per_seed_and_varies_with_seed_and_epoch():
  source = _indexed_source(16)
  first = [_ids(b) for b in _train(source, num_epochs=2)]
  again = [_ids(b) for b in _train(source, num_epochs=2)]
  other = [_ids(b) for b in _train(source, num_epochs=2, seed=1)]
  np.testing.assert_array_equal(np.stack(first), np.stack(again))
  assert not np.array_equal(np.stack(first), np.stack(other))
  epoch0, epoch1 = np.concatenate(first[:4]), np.concatenate(first[4:])
  assert sorted(epoch0) == sorted(epoch1) == list(range(16))  # each epoch is a permutation
  assert not np.array_equal(epoch0, epoch1)


def test_augmentations_deterministic_per_seed():
  source = _indexed_source(16, size=32)
  a = next(iter(_train(source, image_size=32, augment="cifar", seed=3)))["image"]
  b = next(iter(_train(source, image_size=32, augment="cifar", seed=3)))["image"]
  np.testing.assert_array_equal(a, b)


def test_two_processes_get_disjoint_covering_shards():
  source = _indexed_source(21)  # 21 // 2 = 10 records per shard, one dropped
  shards = [
    np.concatenate([_ids(b) for b in _train(source, num_epochs=1, process_index=p, process_count=2)]) for p in (0, 1)
  ]
  assert all(len(shard) == 10 for shard in shards)  # 10 records per shard, local batches of 4 // 2
  assert not set(shards[0]) & set(shards[1])
  assert set(shards[0]) == set(range(10)) and set(shards[1]) == set(range(10, 20))  # together: all but one


def test_local_batch_is_global_over_process_count():
  batch = next(iter(_train(_indexed_source(32), global_batch_size=8, process_index=1, process_count=4)))
  assert batch["image"].shape == (2, 8, 8, 1)


def test_checkpoint_state_resumes_identically():
  source = _indexed_source(32, size=16)
  iterator = iter(_train(source, image_size=16, augment="cifar"))
  for _ in range(5):
    next(iterator)
  state = iterator.get_state()
  expected = [next(iterator) for _ in range(10)]  # crosses the epoch boundary (8 batches per epoch)
  restored = iter(_train(source, image_size=16, augment="cifar"))
  restored.set_state(state)
  for want in expected:
    got = next(restored)
    np.testing.assert_array_equal(got["image"], want["image"])
    np.testing.assert_array_equal(got["label"], want["label"])


@pytest.mark.parametrize("process_count", [1, 2])
def test_eval_covers_every_example_once(process_count):
  source = _indexed_source(23)
  seen, masks = [], []
  for process_index in range(process_count):
    loader = pipeline.eval_loader_from_source(
      source, image_size=8, global_batch_size=6, process_index=process_index, process_count=process_count
    )
    batches = list(loader)
    assert len(batches) == 4  # ceil(23 / 6) steps on every process
    for batch in batches:
      assert batch["mask"].dtype == np.float32 and batch["mask"].shape == (6 // process_count,)
      seen.append(_ids(batch)[batch["mask"] == 1])
      masks.append(batch["mask"])
  assert sorted(np.concatenate(seen)) == list(range(23))
  assert np.concatenate(masks).sum() == 23


def test_embedded_dataset_through_pipeline():
  loader = data.make_train_loader(
    dataset="mnist_subset", image_size=64, augment="scenario1", global_batch_size=16, seed=0, num_epochs=1
  )
  iterator = iter(loader)
  batch = next(iterator)
  assert batch["image"].shape == (16, 64, 64, 1) and batch["label"].dtype == np.int32
  evaluation = list(data.make_eval_loader(dataset="mnist_subset", image_size=28, global_batch_size=300))
  assert sum(b["mask"].sum() for b in evaluation) == 1000
  normalized = np.asarray(data.normalize(evaluation[0]["image"], dataset="mnist_subset"))
  assert normalized.dtype == np.float32 and abs(normalized.mean()) < 0.5


@pytest.mark.parametrize("augment", data.AUGMENTATIONS)
@pytest.mark.parametrize("shape", [(32, 32, 3), (28, 28, 1), (50, 70, 3)])
def test_transforms_keep_shapes(augment, shape):
  rng = np.random.default_rng(0)
  image = rng.integers(0, 256, shape, dtype=np.uint8)
  out = data.augment_image(image, rng, augment=augment, image_size=40)
  assert out.shape == (40, 40, shape[2]) and out.dtype == np.uint8


def test_transform_rejects_unknown_augment():
  with pytest.raises(ValueError, match="augment must be one of"):
    data.augment_image(np.zeros((8, 8, 3), np.uint8), np.random.default_rng(0), augment="mixup", image_size=8)


@pytest.mark.parametrize("augment", ["scenario1", "scenario2"])
def test_scenario_crop_areas_uniform_on_stated_range(augment):
  """2,000 boxes (seed 0) on a 256 x 256 image: area fractions in range, KS test vs uniform."""
  low, high = transforms.SCENARIO_AREAS[augment]
  rng = np.random.default_rng(0)
  areas = np.array([h * w / 256**2 for *_, h, w in (data.crop_box(rng, 256, 256, (low, high)) for _ in range(2000))])
  tolerance = 2.5 / 256  # rounding each side to whole pixels
  assert areas.min() >= low - tolerance and areas.max() <= high + tolerance
  assert scipy.stats.kstest(areas, scipy.stats.uniform(low, high - low).cdf).pvalue > 1e-3


def test_crop_boxes_fit_and_respect_aspect_ratio():
  rng = np.random.default_rng(1)
  for _ in range(500):
    top, left, h, w = data.crop_box(rng, 40, 60, (0.08, 1.0))
    assert 0 <= top and top + h <= 40 and 0 <= left and left + w <= 60


def test_center_crop_resize_is_identity_at_full_size():
  image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
  np.testing.assert_array_equal(data.center_crop_resize(image, image_size=32), image)
