"""One conformance suite that every mixing method passes, in both modes.

Checks shape and dtype kept, label rows summing to 1, label weight equal to the realised mask
mean, the mixed images recomputed from the realised masks, determinism per key, jitted ==
eager, vmap over keys, and no recompilation when hyper-parameters change.

The methods that read the data (``needs().inputs``) get a saliency map made from the images
(``saliency_of``) and square images (PuzzleMix mixes only those); the ones that move the image's
own pixels (PuzzleMix's transport) are checked pixel by pixel against the image instead of by
recomputing Eq. 1.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from method_specs import METHOD_SPECS

import msda_jax

BATCH, SHAPE, CHANNELS, CLASSES = 6, (10, 13), 3, 5
SQUARE = (8, 8)  # for the methods that mix square images only
VIDEO = (4, 5, 6)  # for the methods that mix videos only
MODES = ("batch", "example")
STATIC = ("num_classes", "mode", "pairing", "spatial_ndim", "groups", "unbounded")


@functools.cache
def jitted_mix():
  return jax.jit(msda_jax.mix_batch_with_info, static_argnames=STATIC)


def shape_for(method):
  if isinstance(method, msda_jax.VideoMix):
    return VIDEO
  square = isinstance(method, (msda_jax.PuzzleMix, msda_jax.AttentiveCutMix)) or aligned(method) is not None
  return SQUARE if square else SHAPE


def aligned(method):
  """What places a method's masks on a patch grid (a ``PatchAligned``: itself, or TransMix's base;
  TokenMix itself), else ``None``."""
  inner = method.method if isinstance(method, msda_jax.TransMix) else method
  return (
    inner if isinstance(inner, (msda_jax.PatchAligned, msda_jax.TokenMix, msda_jax.MixPro, msda_jax.SMMix)) else None
  )


def grid_fit(method, shape):
  """For a method with a cell grid (Attentive CutMix, patch-aligned masks): checks that a shape the
  grid does not divide raises naming ``grid`` (or ``patch``), and returns the shape cut down to the
  grid; other methods: ``shape``."""
  if (patched := aligned(method)) is not None:
    name = "cell" if isinstance(patched, msda_jax.MixPro) else "patch"
    side = getattr(patched, name)
    if all(n % side == 0 for n in shape):
      return shape
    with pytest.raises(ValueError, match=rf"{name} {side} must divide the spatial shape"):
      method.check_input(shape)
    return tuple(max(side, n - n % side) for n in shape)
  if not isinstance(method, msda_jax.AttentiveCutMix) or all(n % method.grid == 0 for n in shape):
    return shape
  with pytest.raises(ValueError, match=rf"grid={method.grid} must divide every spatial axis"):
    method.check_input(shape)
  return tuple(max(method.grid, n - n % method.grid) for n in shape)


def saliency_of(images):
  """A non-negative map that depends on the images: the squared deviation from the image mean."""
  x = jnp.asarray(images, jnp.float32)
  return jnp.sum((x - x.mean(axis=tuple(range(1, x.ndim - 1)), keepdims=True)) ** 2, axis=-1)


def extra(method, images):
  """The keyword arguments a method needs besides the batch: saliency for the data-dependent ones,
  ``spatial_ndim`` for the video ones."""
  if isinstance(method, msda_jax.VideoMix):
    return {"spatial_ndim": len(VIDEO)}
  given = {"saliency": saliency_of(images)} if method.needs().inputs else {}
  if "predictions" in method.needs().inputs:  # SMMix's unmixed logits: any [B, K] rows
    given["predictions"] = jnp.zeros((images.shape[0], CLASSES), jnp.float32)
  return given


def pastes(method):
  """Whether the method transforms the partner or the image (its samples carry ``paste`` or ``keep``)."""
  if moves_pixels(method):
    return True
  shape = shape_for(method)
  data = pair_data(shape) if method.needs().inputs else None
  # Traced only (no compilation): whether ``paste`` is present is part of the sample's structure.
  return jax.eval_shape(lambda k: method.sample(k, shape=shape, data=data), jax.random.key(0)).paste is not None


def label_weights(method, images, info):
  """The label weights ``(own [B], partner [B])`` a method must give: the mask's mean and its
  complement, except SnapMix's and TokenMix's (stated exception: their rows need not sum to 1):
  the share of the image's map outside the pasted region, and the partner's share of its own map in
  the region it gave (SnapMix's read from ``info``, its value checked in ``tests/test_snapmix.py``;
  TokenMix's the partner's map on the pasted tokens), 0 when unmixed."""
  masks = np.asarray(info.mask, np.float64)
  axes = tuple(range(1, masks.ndim))
  if not isinstance(method, (msda_jax.SnapMix, msda_jax.TokenMix)):
    weight = masks.mean(axis=axes)
    return weight, 1 - weight
  s = np.asarray(saliency_of(images), np.float64)
  own = 1 - (s * (masks == 0)).sum(axis=axes) / (s.sum(axis=axes) + 1e-8)
  partner = np.asarray(info.partner_weight, np.float64)
  if isinstance(method, msda_jax.TokenMix):
    theirs = s[np.asarray(info.partner)]
    expected = (theirs * (masks == 0)).sum(axis=axes) / (theirs.sum(axis=axes) + 1e-8)
    np.testing.assert_allclose(partner, np.where(np.asarray(info.applied), expected, 0.0), atol=2e-6)
  applied = np.asarray(info.applied)
  assert np.all(partner[~applied] == 0) and np.all((partner >= 0) & (partner <= 1 + 1e-6))
  return np.where(applied, own, 1.0), partner


def moves_pixels(method):
  """Whether the method moves the image's own pixels (PuzzleMix's transport)."""
  return isinstance(method, msda_jax.PuzzleMix) and method.transport


def make_batch(dtype=jnp.float32, shape=SHAPE, batch=BATCH, seed=1):
  rng = np.random.default_rng(seed)
  images = rng.uniform(0, 255, (batch, *shape, CHANNELS))
  labels = rng.integers(0, CLASSES, batch)
  if dtype == jnp.uint8:
    return jnp.asarray(np.round(images), jnp.uint8), jnp.asarray(labels)
  return jnp.asarray(images / 255.0, dtype), jnp.asarray(labels)


@functools.cache
def run(spec, mode, dtype=jnp.float32, seed=4, prob=1.0):
  """One jitted call with info, cached: most checks share it (one compilation per dtype)."""
  method = msda_jax.from_string(spec)
  images, labels = make_batch(dtype, shape=shape_for(method))
  out = jitted_mix()(
    jax.random.key(seed),
    images,
    labels,
    method,
    num_classes=CLASSES,
    mode=mode,
    prob=prob,
    **extra(method, images),
  )
  return (images, labels, method, *out)


# Module-scoped parameters: pytest orders the items by method, then mode, so the checks that share
# a method's programs (``run`` caches them) run one after another, on the same xdist worker.
by_spec = pytest.mark.parametrize("spec", METHOD_SPECS, scope="module")
by_mode = pytest.mark.parametrize("mode", MODES, scope="module")


def by_case(test):
  """Every method in both modes (ids ``spec-mode``)."""
  return by_mode(by_spec(test))


@by_case
def test_shapes_dtypes_and_label_rows(spec, mode):
  for dtype in (jnp.float32, jnp.uint8):
    images, _, _, mixed, targets, _ = run(spec, mode, dtype)
    assert mixed.shape == images.shape and mixed.dtype == images.dtype, dtype
    assert targets.shape == (BATCH, CLASSES) and targets.dtype == jnp.float32
    own, partner = label_weights(run(spec, mode, dtype)[2], images, run(spec, mode, dtype)[5])
    np.testing.assert_allclose(np.asarray(targets).sum(-1), own + partner, rtol=1e-6)
    assert np.all(np.asarray(targets) >= 0.0)
  # bfloat16: shapes and dtypes by tracing only (the float32 and uint8 programs above check the
  # values and rows; bfloat16 takes float32's mixing path, ``_mix_images``, and rounds).
  method = msda_jax.from_string(spec)
  images, labels = make_batch(jnp.bfloat16, shape=shape_for(method))
  more = extra(method, images)
  mix = lambda k, x, y, m: msda_jax.mix_batch_with_info(k, x, y, m, num_classes=CLASSES, mode=mode, **more)
  mixed, targets, info = jax.eval_shape(mix, jax.random.key(4), images, labels, method)
  assert mixed.shape == images.shape and mixed.dtype == jnp.bfloat16
  assert targets.shape == (BATCH, CLASSES) and targets.dtype == jnp.float32
  assert info.mask.shape == (BATCH, *shape_for(method)) and info.mask.dtype == jnp.float32


@by_case
def test_label_weight_is_realised_mask_mean_and_images_recompute(spec, mode):
  images, labels, method, mixed, targets, info = run(spec, mode)
  masks = np.asarray(info.mask, np.float64)
  assert masks.shape == (BATCH, *shape_for(method))
  assert masks.min() >= 0.0 and masks.max() <= 1.0
  weight, partner_weight = label_weights(method, images, info)
  np.testing.assert_allclose(np.asarray(info.weight), weight, atol=1e-6)
  onehot = np.eye(CLASSES)[np.asarray(labels)]
  partner = np.asarray(info.partner)
  expected_targets = weight[:, None] * onehot + partner_weight[:, None] * onehot[partner]
  np.testing.assert_allclose(np.asarray(targets), expected_targets, atol=1e-6)
  x = np.asarray(images, np.float64)
  m = masks[..., None]
  if moves_pixels(method):
    assert_kept_pixels_are_the_images(images, mixed, masks)
  elif pastes(method):
    # Where M = 1 the image is kept exactly; elsewhere it is the pasted, resized partner.
    kept = np.broadcast_to(m == 1.0, x.shape)
    np.testing.assert_array_equal(np.asarray(mixed)[kept], np.asarray(images)[kept])
  else:
    np.testing.assert_allclose(np.asarray(mixed), m * x + (1 - m) * x[partner], atol=1e-5)
  if mode == "batch" and method.needs().inputs:
    assert np.all(np.asarray(info.lam) == np.asarray(info.lam)[0]), "batch mode shares lam (masks read each pair)"
  elif mode == "batch":
    assert np.allclose(masks, masks[:1]), "batch mode uses one mask for the whole batch"


def assert_kept_pixels_are_the_images(images, mixed, masks):
  """Where ``M = 1`` each mixed pixel is one of that image's own pixels (patches moved, not changed)."""
  x, out = np.asarray(images), np.asarray(mixed)
  for i in range(x.shape[0]):
    own = {p.tobytes() for p in x[i].reshape(-1, x.shape[-1])}
    kept = out[i][masks[i] == 1.0]
    assert all(p.tobytes() in own for p in kept), f"example {i}: a kept pixel is not one of the image's"


def test_puzzlemix_mixes_the_transported_pair_at_every_mask_value():
  """PuzzleMix with transport: ``M * T_i(x_i) + (1 - M) * T_j(x_j)`` at all three mask values.

  Batch mode, keys 0-9, 4 images of 16 x 16 (numpy seed 0) with a hot spot of saliency each,
  grid 4, ``t_eps = 0`` (moves cost nothing, so patches do move). ``T_i`` and ``T_j`` are the
  pair's own transports, the ``keep`` and ``paste`` of ``method.sample(key_mix, data=pair)``
  (the draw ``mix_batch`` makes for a pair in batch mode, ``key_mix = split(key, 3)[1]``). Where
  ``M = 0`` the mixed pixel is the transported partner's, exactly; where ``M = 1/2`` it is the
  average of the transported image's and the transported partner's (1e-6); where ``M = 1`` the
  transported image's. Over the keys, the transports move pixels of the partner where ``M = 0``
  and where ``M = 1/2``, and of the image where ``M = 1/2`` and ``M = 1``, so mixing an
  untransported image or partner there, or swapping the two transports, fails.
  """
  batch, shape = 4, (16, 16)
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.uniform(size=(batch, *shape, CHANNELS)), jnp.float32)
  labels = jnp.arange(batch) % CLASSES
  saliency = 0.1 * rng.gamma(0.5, size=(batch, *shape))
  for i, (row, col) in enumerate([(0, 0), (12, 12), (0, 12), (12, 0)]):
    saliency[i, row : row + 4, col : col + 4] += 5.0
  saliency = jnp.asarray(saliency, jnp.float32)
  method = msda_jax.PuzzleMix(grid_sizes=(4,), t_eps=0.0)
  mix = jax.jit(
    lambda key: msda_jax.mix_batch_with_info(key, images, labels, method, num_classes=CLASSES, saliency=saliency)
  )

  @jax.jit
  def transported(key_mix, partner):
    def one(x, xp, s, sp):
      sample = method.sample(key_mix, shape=shape, data=msda_jax.PairData(x, xp, s, sp))
      return sample.mask, sample.keep(x), sample.paste(xp)

    return jax.vmap(one)(images, images[partner], saliency, saliency[partner])

  x = np.asarray(images)
  moved = {"partner where M = 0": 0, "partner where M = 1/2": 0, "image where M = 1/2": 0, "image where M = 1": 0}
  for seed in range(10):
    key = jax.random.key(seed)
    mixed, _, info = mix(key)
    mixed, mask, partner = np.asarray(mixed), np.asarray(info.mask), np.asarray(info.partner)
    assert np.asarray(info.applied).all()
    own_mask, image_t, partner_t = map(np.asarray, transported(jax.random.split(key, 3)[1], info.partner))
    np.testing.assert_array_equal(own_mask, mask)
    zero, half, one = mask == 0.0, mask == 0.5, mask == 1.0
    assert (zero | half | one).all()
    np.testing.assert_array_equal(mixed[zero], partner_t[zero])
    np.testing.assert_allclose(mixed[half], (image_t[half] + partner_t[half]) / 2, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(mixed[one], image_t[one])
    partner_moved = (partner_t != x[partner]).any(-1)
    image_moved = (image_t != x).any(-1)
    moved["partner where M = 0"] += int((partner_moved & zero).sum())
    moved["partner where M = 1/2"] += int((partner_moved & half).sum())
    moved["image where M = 1/2"] += int((image_moved & half).sum())
    moved["image where M = 1"] += int((image_moved & one).sum())
  assert all(moved.values()), f"the transports must move pixels in every case checked: {moved}"


@by_case
def test_determinism_and_jit_equals_eager(spec, mode):
  images, labels, method, *first = run(spec, mode)
  again = run.__wrapped__(spec, mode)[3:]
  # SMMix's key draws only its square's side (3 sides on the 4 x 4 token grid): more keys.
  seeds = (6, 7, 8, 9, 10, 11, 12) if isinstance(method, msda_jax.SMMix) else (6, 7, 8)
  others = [run(spec, mode, seed=seed)[3] for seed in seeds]
  for a, b in zip(first, again, strict=True):
    for leaf_a, leaf_b in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
      np.testing.assert_array_equal(np.asarray(leaf_a), np.asarray(leaf_b))
  # (A data-dependent mask may repeat for another lam: some other key must change the mix. Stated
  # exception: GuidedMixup draws nothing at prob=1, its partners and masks are functions of the maps.)
  if not isinstance(method, msda_jax.GuidedMixup):
    assert not all(np.array_equal(np.asarray(first[0]), np.asarray(o)) for o in others), "other keys, same mixes"
  else:
    assert all(np.array_equal(np.asarray(first[0]), np.asarray(o)) for o in others), "GuidedMixup drew something"
  # Called outside jit, mix_batch compiles its work on its own (``test_probability_rows_and_smoothing``
  # makes the same call with other labels and key, so the two share that program).
  eager = msda_jax.mix_batch_with_info(
    jax.random.key(4), images, labels, method, num_classes=CLASSES, mode=mode,
    **extra(method, images),
  )  # fmt: skip
  for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(eager), strict=True):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), atol=1e-5)


@by_case
def test_uint8_rounds_the_float_mix(spec, mode):
  images, _, method, mixed, _, info = run(spec, mode, jnp.uint8)
  x = np.asarray(images, np.float64)
  m = np.asarray(info.mask, np.float64)[..., None]
  if moves_pixels(method):
    assert_kept_pixels_are_the_images(images, mixed, np.asarray(info.mask))
    return
  if pastes(method):
    kept = np.broadcast_to(m == 1.0, x.shape)
    np.testing.assert_array_equal(np.asarray(mixed)[kept], np.asarray(images)[kept])
    return
  expected = np.clip(np.round(m * x + (1 - m) * x[np.asarray(info.partner)]), 0, 255)
  # float32 arithmetic may land on the other side of .5 for a handful of pixels.
  assert np.abs(np.asarray(mixed, np.float64) - expected).max() <= 1.0
  assert np.mean(np.asarray(mixed, np.float64) == expected) > 0.99


@by_spec
def test_uint8_extremes_stay_in_range(spec):
  """A uint8 mix rounds without a clip: with M in [0, 1] it cannot leave [0, 255] (no wrap-around).

  Each reverse pair (i, B - 1 - i) holds one constant, 0 or 255, so every mix must return it (a
  method whose default pairing is another, GuidedMixup's greedy cycle, is given the reverse one).
  """
  values = np.array([0, 255, 255, 255, 255, 0], np.uint8)  # pairs (0, 5), (1, 4), (2, 3)
  method = msda_jax.from_string(spec)
  shape = shape_for(method)
  images = jnp.asarray(np.broadcast_to(values.reshape(-1, *[1] * (len(shape) + 1)), (BATCH, *shape, CHANNELS)))
  labels = jnp.arange(BATCH) % CLASSES
  for mode in MODES:
    # The arguments of ``run``: the program compiled for it serves here too.
    mixed, *_ = jitted_mix()(
      jax.random.key(7),
      images,
      labels,
      method,
      num_classes=CLASSES,
      mode=mode,
      prob=1.0,
      **extra(method, images),
      **({"pairing": "reverse"} if method.default_pairing != "reverse" else {}),
    )
    np.testing.assert_array_equal(np.asarray(mixed), np.asarray(images), err_msg=mode)


@by_case
def test_prob_zero_leaves_the_batch_unmixed(spec, mode):
  images, labels, _, mixed, targets, info = run(spec, mode, prob=0.0)
  np.testing.assert_array_equal(np.asarray(mixed), np.asarray(images))
  np.testing.assert_array_equal(np.asarray(targets), np.eye(CLASSES)[np.asarray(labels)])
  assert not np.asarray(info.applied).any()


@by_spec
def test_vmap_over_keys(spec):
  method = msda_jax.from_string(spec)
  images, labels = make_batch(shape=shape_for(method))
  more = extra(method, images)
  keys = jax.random.split(jax.random.key(8), 3)
  run = jax.vmap(lambda k: msda_jax.mix_batch(k, images, labels, method, num_classes=CLASSES, mode="example", **more))
  mixed, targets = jax.jit(run)(keys)
  assert mixed.shape == (3, *images.shape) and targets.shape == (3, BATCH, CLASSES)
  # One call alone, by the program ``run`` compiles (determinism compares that one with eager).
  one = jitted_mix()(keys[1], images, labels, method, num_classes=CLASSES, mode="example", prob=1.0, **more)
  np.testing.assert_allclose(np.asarray(mixed[1]), np.asarray(one[0]), atol=1e-5)
  np.testing.assert_allclose(np.asarray(targets[1]), np.asarray(one[1]), atol=1e-6)


# Per preset: the baseline hyper-parameters, then changes each made alone from the baseline.
HYPER = {
  "mixup": ({"alpha": 0.2}, [{"alpha": 2.0}]),
  "cutmix": ({"alpha": 0.5}, [{"alpha": 1}]),  # an int: converted, not a new program
  "stochastic_mixup_cutmix": (
    {"q": 0.5, "mixup_alpha": 0.3},
    [{"q": 0.95}, {"mixup_alpha": 3.0}, {"cutmix_alpha": 0.2}],
  ),
  "hmix": ({"r": 0.25, "alpha": 0.7}, [{"r": 1.0}, {"alpha": 1.3}]),
  "gmix": ({"alpha": 0.5}, [{"alpha": 2.0}]),
  "bernoulli": ({"alpha": 0.4}, [{"alpha": 4.0}]),
  "fmix": ({"decay": 2.0}, [{"decay": 4.0}, {"alpha": 0.3}]),
  "resizemix": ({"scale_min": 0.3, "scale_max": 0.6}, [{"scale_min": 0.1}, {"scale_max": 0.9}]),
  "saliencymix": ({"alpha": 0.5}, [{"alpha": 2.0}]),
  "snapmix": ({"alpha": 0.5}, [{"alpha": 2.0}]),
  "guidedmixup": ({"sigma": 3.0}, [{"sigma": 0.5}]),
  "attentive_cutmix": ({"alpha": 0.5, "top_k": None, "grid": 4}, [{"alpha": 2.0}]),
  "smoothmix": ({"sigma_min": 0.2, "sigma_max": 0.3}, [{"sigma_min": 0.1}, {"sigma_max": 0.6}]),
  "gridmix": ({"alpha": 0.5, "cells": (2, 4)}, [{"alpha": 2.0}, {"aspect": 0.4}]),
  "specmix": ({"max_width": 0.3}, [{"max_width": 0.6}]),
  "videomix": ({"alpha": 0.5}, [{"alpha": 2.0}]),
  "manifold_mixup": ({"alpha": 0.5}, [{"alpha": 2.0}]),
  "patchup": ({"alpha": 0.5, "gamma": 0.5, "block": 3}, [{"alpha": 2.0}, {"gamma": 0.9}]),
  "puzzlemix": (
    {"alpha": 0.5, "grid_sizes": (2, 4)},
    [{"alpha": 2.0}, {"beta": 3.0}, {"gamma": 3.0}, {"eta": 3.0}, {"t_eps": 0.0}],
  ),
}
# Hyper-parameters of alternative branches: batch mode draws one branch for the whole batch, so
# there exactly one of them changes the result (example mode draws a branch per example: all do).
BRANCHES = {"stochastic_mixup_cutmix": ("mixup_alpha", "cutmix_alpha")}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(HYPER))
def test_no_recompilation_when_hyper_parameters_change(name, mode):
  """One trace for every value of the method's hyper-parameters, ``prob`` and ``label_smoothing``,
  and each of them, changed alone from the baseline, changes the mixed images or targets (key 9)."""
  traces = []

  base_kwargs, changes = HYPER[name]
  base = msda_jax.METHODS[name](**base_kwargs)
  images, labels = make_batch(shape=shape_for(base))
  more = extra(base, images)
  ndim = more.pop("spatial_ndim", 2)  # static

  def step(key, images, labels, method, prob, smoothing, more):
    traces.append(1)
    return msda_jax.mix_batch(
      key, images, labels, method, num_classes=CLASSES, mode=mode, prob=prob, label_smoothing=smoothing,
      spatial_ndim=ndim, **more,
    )  # fmt: skip

  jitted = jax.jit(step)

  def run(method=base, prob=1.0, smoothing=0.0):
    return [np.asarray(x) for x in jitted(jax.random.key(9), images, labels, method, prob, smoothing, more)]

  reference = run()
  results = {}
  for change in changes:
    (field,) = change
    results[field] = run(method=msda_jax.METHODS[name](**{**base_kwargs, **change}))
  results["prob"] = run(prob=0.5)
  results["label_smoothing"] = run(smoothing=0.1)
  assert len(traces) == 1, f"{name} retraced when its hyper-parameters changed"
  changed = {
    field: not all(np.allclose(a, b) for a, b in zip(out, reference, strict=True)) for field, out in results.items()
  }
  # Label smoothing changes the targets only.
  np.testing.assert_array_equal(results["label_smoothing"][0], reference[0])
  branches = BRANCHES.get(name, ()) if mode == "batch" else ()
  if branches:
    assert sum(changed.pop(field) for field in branches) == 1, f"{name}: one branch drawn, so one of {branches}"
  unchanged = [field for field, flag in changed.items() if not flag]
  assert not unchanged, f"{name} ({mode}): changing {unchanged} alone left the result as it was"


@by_case
def test_dense_label_maps_mix_per_pixel(spec, mode):
  method = msda_jax.from_string(spec)
  shape = shape_for(method)
  images, _ = make_batch(shape=shape)
  if moves_pixels(method):
    images = position_images(shape)
  rng = np.random.default_rng(11)
  label_map = jnp.asarray(rng.integers(0, CLASSES, (BATCH, *shape)))
  mixed, targets, info = jitted_mix()(
    jax.random.key(12),
    images,
    label_map,
    method,
    num_classes=CLASSES,
    mode=mode,
    **extra(method, images),
  )
  assert targets.shape == (BATCH, *shape, CLASSES)
  np.testing.assert_allclose(np.asarray(targets).sum(-1), 1.0, atol=1e-5)
  m = np.asarray(info.mask)[..., None]
  onehot = np.eye(CLASSES)[np.asarray(label_map)]
  if moves_pixels(method):
    # Labels move with the pixels: where M is 0 or 1 the mixed pixel names its source pixel.
    source = np.rint(np.asarray(mixed)[..., 0] * (np.prod(shape) + 1)).astype(int) - 1
    owner = np.rint(np.asarray(mixed)[..., 1] * BATCH).astype(int)
    pure = (m[..., 0] == 0.0) | (m[..., 0] == 1.0)
    flat = onehot.reshape(BATCH, -1, CLASSES)
    np.testing.assert_allclose(np.asarray(targets)[pure], flat[owner[pure], source[pure]], atol=1e-6)
    return
  if not pastes(method):
    expected = m * onehot + (1 - m) * onehot[np.asarray(info.partner)]
    np.testing.assert_allclose(np.asarray(targets), expected, atol=1e-6)
  # The per-pixel label follows the image: where M = 1 the example's own label is kept.
  kept = np.broadcast_to(m == 1.0, onehot.shape)
  np.testing.assert_allclose(np.asarray(targets)[kept], onehot[kept], atol=1e-6)


def position_images(shape):
  """Images whose pixels name themselves: channel 0 the flat index, channel 1 the example."""
  n = int(np.prod(shape))
  index = (np.arange(n).reshape(shape) + 1) / (n + 1)
  rng = np.random.default_rng(3)
  owner = np.broadcast_to((np.arange(BATCH) / BATCH)[:, None, None], (BATCH, *shape))
  x = np.stack([np.broadcast_to(index, (BATCH, *shape)), owner, rng.uniform(size=(BATCH, *shape))], axis=-1)
  return jnp.asarray(x, jnp.float32)


@pytest.mark.parametrize("spatial", [(37,), (5, 6, 7)], ids=["1d", "3d"])
@by_spec
def test_other_spatial_ranks(spec, spatial):
  method = msda_jax.from_string(spec)
  spatial = grid_fit(method, spatial)
  images, labels = make_batch(shape=spatial)
  if isinstance(method, msda_jax.PuzzleMix):
    with pytest.raises(ValueError, match=r"PuzzleMix mixes square images"):
      msda_jax.mix_batch(jax.random.key(13), images, labels, method, num_classes=CLASSES, spatial_ndim=len(spatial))
    return
  if isinstance(method, msda_jax.SMMix):
    with pytest.raises(ValueError, match=r"SMMix mixes square token grids"):
      method.check_input(spatial)
    return
  if isinstance(method, msda_jax.VideoMix) and len(spatial) != 3:
    with pytest.raises(ValueError, match=r"VideoMix mixes videos \[B, T, H, W, C\] \(spatial_ndim=3\)"):
      msda_jax.mix_batch(jax.random.key(13), images, labels, method, num_classes=CLASSES, spatial_ndim=len(spatial))
    return
  mixed, targets, info = jitted_mix()(
    jax.random.key(13),
    images,
    labels,
    method,
    num_classes=CLASSES,
    mode="example",
    spatial_ndim=len(spatial),
    **({} if isinstance(method, msda_jax.VideoMix) else extra(method, images)),
  )
  assert mixed.shape == images.shape and info.mask.shape == (BATCH, *spatial)
  own, partner = label_weights(method, images, info)
  np.testing.assert_allclose(np.asarray(info.weight), own, atol=1e-6)
  np.testing.assert_allclose(np.asarray(targets).sum(-1), own + partner, atol=1e-6)


@by_spec
def test_probability_rows_and_smoothing(spec):
  method = msda_jax.from_string(spec)
  images, labels = make_batch(shape=shape_for(method))
  rows = np.eye(CLASSES)[np.asarray(labels)]
  eps = 0.1
  # Outside jit, as a notebook calls it: the rows and eps are prepared first, so the mixing
  # program is the one ``test_determinism_and_jit_equals_eager`` compiles for integer labels.
  _, targets, info = msda_jax.mix_batch_with_info(
    jax.random.key(14),
    images,
    jnp.asarray(rows, jnp.float32),
    method,
    mode="example",
    label_smoothing=eps,
    **extra(method, images),
  )
  smoothed = rows * (1 - eps) + eps / CLASSES
  w, pw = np.asarray(info.weight)[:, None], np.asarray(info.partner_weight)[:, None]
  expected = w * smoothed + pw * smoothed[np.asarray(info.partner)]
  np.testing.assert_allclose(np.asarray(targets), expected, atol=1e-6)


MEAN_SHAPES = [(7, 13), (1, 9), (37,), (5, 6, 7)]
MEAN_LAMS = (0.0, 1e-3, 0.37, 0.999, 1.0)


@pytest.mark.parametrize("shape", MEAN_SHAPES, ids=lambda s: "x".join(map(str, s)))
@by_spec
def test_mask_mean_equals_the_mean_of_the_mask(spec, shape):
  """The weight from the mask's parameters is the mask's mean, and a program that asks for the
  mask alone (the weight dead code) draws the same mask.

  Two separately compiled programs: had both calls been traced into one, XLA would merge the two
  identical computations and the second comparison could not fail. The mean is taken in numpy
  (float64) from the first program's mask. 40 keys per lam: clip placement puts many boxes
  across the border at these small shapes.
  """
  method = msda_jax.from_string(spec)
  shape = grid_fit(method, shape)
  keys = jax.random.split(jax.random.key(21), 40)
  lams = jnp.asarray(MEAN_LAMS, jnp.float32)
  data = None
  if isinstance(method, msda_jax.VideoMix) and len(shape) != 3:
    with pytest.raises(ValueError, match=r"VideoMix mixes videos"):
      method.sample(keys[0], shape=shape)
    return
  if isinstance(method, msda_jax.SMMix) and (len(shape) != 2 or shape[0] != shape[1]):
    with pytest.raises(ValueError, match=r"SMMix mixes square token grids"):
      method.check_input(shape)
    shape = SQUARE
  if isinstance(method, msda_jax.GridMix) and method.cells[1] > shape[0]:
    with pytest.raises(ValueError, match=r"cells=.* do not fit the first axis"):
      method.sample(keys[0], shape=shape)
    return
  if not method.takes_lam:
    # The law draws its own lam: 5 x 40 keys instead (a given lam raises, checked elsewhere).
    keys, lams = keys.reshape(5, 8), jnp.zeros((5, 8), jnp.float32)
  if method.needs().inputs:
    if isinstance(method, msda_jax.PuzzleMix):
      if shape != MEAN_SHAPES[0]:
        with pytest.raises(ValueError, match=r"PuzzleMix mixes square images"):
          method.sample(keys[0], shape=shape, data=pair_data(shape))
        return
      shape = SQUARE
    data = pair_data(shape)

  given = (lambda lam: lam) if method.takes_lam else (lambda lam: None)

  def with_weight(k, lam):
    sample = method.sample(k, shape=shape, lam=given(lam), data=data)
    return sample.mask, sample.weight

  def mask_only(k, lam):
    return method.sample(k, shape=shape, lam=given(lam), data=data).mask

  if method.takes_lam:
    over_keys_and_lams = lambda fn: jax.jit(jax.vmap(jax.vmap(fn, (0, None)), (None, 0)))
  else:
    over_keys_and_lams = lambda fn: jax.jit(jax.vmap(jax.vmap(fn)))
  mask, closed = over_keys_and_lams(with_weight)(keys, lams)
  alone = over_keys_and_lams(mask_only)(keys, lams)
  assert closed.shape == (len(MEAN_LAMS), 40) or closed.shape == (5, 8)
  assert closed.dtype == jnp.float32 and mask.shape == (*closed.shape, *shape)
  direct = np.asarray(mask, np.float64).mean(axis=tuple(range(2, mask.ndim)))
  if isinstance(method, (msda_jax.SnapMix, msda_jax.TokenMix)):  # the map's share outside the pasted region
    s = np.asarray(data.saliency, np.float64)
    inside = np.asarray(mask) == 0
    axes = tuple(range(2, mask.ndim))
    direct = np.where(inside.any(axis=axes), 1 - (s * inside).sum(axis=axes) / (s.sum() + 1e-8), 1.0)
  np.testing.assert_allclose(np.asarray(closed, np.float64), direct, rtol=0, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(alone), np.asarray(mask))


def pair_data(shape, seed=22):
  """One pair of random images with their ``saliency_of`` maps (for ``sample(..., data=...)``)."""
  images, _ = make_batch(shape=shape, batch=2, seed=seed)
  saliency = saliency_of(images)
  return msda_jax.PairData(images[0], images[1], saliency[0], saliency[1])
