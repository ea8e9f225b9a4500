"""The reference codes' box formulas, restated in numpy float64, against ``_box`` (no torch needed).

torchvision's ``v2.CutMix``: ``h = int(0.5 * sqrt(1 - lam) * n)`` per axis, box ``[c - h, c + h)``
clipped to the grid. The CutMix paper's code and the HMix/GMix code: ``cut = int(n * sqrt(1 -
lam))`` (``int(n * sqrt(1 - lam) * sqrt(r))`` for HMix), box ``[c - cut // 2, c + cut // 2)``
clipped. Both are ``sides="even"`` boxes placed at ``start = c - size // 2``. timm's current
``rand_bbox`` cuts ``[c - cut // 2, c + (cut + 1) // 2)``: the ``"floor"`` side at the same start.
``benchmarks/parity.py`` runs the peers themselves on the same draws.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from msda_jax.masks import _box

SHAPES = [(32, 32), (24, 40), (7, 9), (224, 224)]
DRAWS = 3000


def reference_box(lo_hi: list[tuple[int, int]], shape) -> np.ndarray:
  """Indicator ``[*shape]`` of the box ``[lo_k, hi_k)`` per axis (already clipped)."""
  rows, cols = (np.arange(n) for n in shape)
  (y1, y2), (x1, x2) = lo_hi
  return ((rows >= y1) & (rows < y2))[:, None] & ((cols >= x1) & (cols < x2))[None, :]


def torchvision_box(lam: float, centre, shape) -> np.ndarray:
  r = 0.5 * math.sqrt(1.0 - lam)
  out = []
  for c, n in zip(centre, shape, strict=True):
    half = int(r * n)
    out.append((max(c - half, 0), min(c + half, n)))
  return reference_box(out, shape)


def official_box(lam: float, centre, shape, r: float | None = None, *, timm: bool = False) -> np.ndarray:
  ratio = np.sqrt(1.0 - lam) if r is None else np.sqrt(1.0 - lam) * np.sqrt(r)
  out = []
  for c, n in zip(centre, shape, strict=True):
    cut = int(n * ratio)
    high = c + ((cut + 1) // 2 if timm else cut // 2)
    out.append((int(np.clip(c - cut // 2, 0, n)), int(np.clip(high, 0, n))))
  return reference_box(out, shape)


def draws(shape, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """``DRAWS`` float32 ``lam`` (uniform, Beta(0.5, 0.5) and steps of the grid) and uniform centres."""
  rng = np.random.default_rng(seed)
  steps = 1.0 - (np.arange(shape[0] + 1) / shape[0]) ** 2
  lam = np.concatenate(
    [rng.uniform(0, 1, DRAWS // 2), rng.beta(0.5, 0.5, DRAWS // 2 - steps.size), steps, [0.0, 1.0]]
  ).astype(np.float32)
  centre = np.stack([rng.integers(0, n, lam.size) for n in shape], axis=1)
  return lam, centre


def our_boxes(values, centre, shape, sides, *, fraction: bool = False) -> np.ndarray:
  """``box_indicator(centre - size // 2, size)`` for each draw, ``size`` from ``cut_sizes`` (or ``box_sizes``)."""

  def one(v, c):
    size = (_box.box_sizes if fraction else _box.cut_sizes)(v, shape, sides=sides)
    return _box.box_indicator(c - size // 2, size, shape)

  return np.asarray(jax.jit(jax.vmap(one))(jnp.asarray(values), jnp.asarray(centre, jnp.int32)))


def assert_same_boxes(ours, reference, lam):
  bad = [i for i in range(len(lam)) if not np.array_equal(ours[i], reference[i])]
  assert not bad, [(repr(lam[i]), int(ours[i].sum()), int(reference[i].sum())) for i in bad[:5]]


@pytest.mark.parametrize("shape", SHAPES)
def test_even_sides_are_torchvision_and_official_cutmix_boxes(shape):
  lam, centre = draws(shape, seed=sum(shape))
  ours = our_boxes(lam, centre, shape, "even")
  assert_same_boxes(ours, [torchvision_box(float(v), c, shape) for v, c in zip(lam, centre, strict=True)], lam)
  assert_same_boxes(ours, [official_box(float(v), c, shape) for v, c in zip(lam, centre, strict=True)], lam)


@pytest.mark.parametrize("shape", SHAPES)
def test_floor_sides_are_timm_boxes(shape):
  lam, centre = draws(shape, seed=1 + sum(shape))
  ours = our_boxes(lam, centre, shape, "floor")
  assert_same_boxes(ours, [official_box(float(v), c, shape, timm=True) for v, c in zip(lam, centre, strict=True)], lam)


@pytest.mark.parametrize("shape", SHAPES[:2])
def test_even_sides_are_official_hmix_boxes(shape):
  """HMix's box from the float32 area ``(1 - lam) r`` (as the HMix module computes it), random draws."""
  lam, centre = draws(shape, seed=2 + sum(shape))
  r = np.random.default_rng(3).uniform(0.05, 1.0, lam.size).astype(np.float32)
  area = (np.float32(1.0) - lam) * r
  ours = our_boxes(area, centre, shape, "even", fraction=True)
  reference = [official_box(float(v), c, shape, float(q)) for v, c, q in zip(lam, centre, r, strict=True)]
  assert_same_boxes(ours, reference, lam)


def test_clip_placement_centres_the_box_as_the_references_do():
  """``random_cut_extent``'s start is ``c - size // 2`` for a centre ``c`` uniform over the grid."""
  shape = (24, 40)
  keys = jax.random.split(jax.random.key(0), 2000)
  lam = np.random.default_rng(4).uniform(0, 1, 2000).astype(np.float32)
  start, size = jax.jit(jax.vmap(lambda k, v: _box.random_cut_extent(k, v, shape, "clip", sides="even")))(keys, lam)
  centre = np.asarray(start + size // 2)
  assert np.all((centre >= 0) & (centre < np.array(shape)))
  for axis, n in enumerate(shape):  # every centre reached
    assert set(np.unique(centre[:, axis])) == set(range(n))
  boxes = np.asarray(jax.vmap(lambda s, z: _box.box_indicator(s, z, shape))(start, size))
  assert_same_boxes(boxes, [torchvision_box(float(v), c, shape) for v, c in zip(lam, centre, strict=True)], lam)
