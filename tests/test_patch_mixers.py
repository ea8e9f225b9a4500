"""Patch-aligned masks, TransMix, TokenMix and MixPro: the grid draw repeated over whole patches,
its exact ``a_jk`` against Monte Carlo, TransMix's and MixPro's label weights against independent
float64 forms of the references' rules, TokenMix's block law against a float64 transcription of
the reference's generator, and their errors. The ViT train steps are in ``tests/test_vit.py``; the conformance
suite covers the three in both modes."""

import math
import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import msda_jax
from msda_jax import theory
from msda_jax.theory import atoms as atoms_lib
from msda_jax.theory import laws


@pytest.mark.parametrize("inner", [msda_jax.CutMix(), msda_jax.Bernoulli(), msda_jax.FMix()], ids=lambda m: m.name)
def test_the_aligned_mask_is_the_grid_draw_repeated_over_each_patch(inner):
  method = msda_jax.PatchAligned(inner, patch=(4, 2))
  both = jax.jit(jax.vmap(lambda key: (method.sample(key, shape=(16, 8)), inner.sample(key, shape=(4, 4)))))
  drawn, grid = both(jax.random.split(jax.random.key(0), 4))
  for mask, grid_mask in zip(np.asarray(drawn.mask), np.asarray(grid.mask), strict=True):
    np.testing.assert_array_equal(mask, np.kron(grid_mask, np.ones((4, 2))))
  np.testing.assert_array_equal(np.asarray(drawn.weight), np.asarray(grid.weight))
  np.testing.assert_array_equal(np.asarray(drawn.lam), np.asarray(grid.lam))
  np.testing.assert_allclose(np.asarray(drawn.weight), np.asarray(drawn.mask, np.float64).mean((1, 2)), atol=1e-7)


def test_exact_coefficients_of_an_aligned_box_match_monte_carlo():
  """Exact atoms (the grid law repeated) against 20,000 draws, seed 0, on 6 x 6 with patch 2. The
  entries are means of products of binary masks: standard error at most 0.5 / sqrt(20000) =
  0.0035, tolerance 0.015 (about 4 standard errors over 1,296 entries). The pixel-level box law
  (the wrong one) is 0.13 away."""
  method = msda_jax.PatchAligned(msda_jax.CutMix(), patch=2)
  exact = theory.method_coefficients(method, shape=(6, 6))
  law = laws.msda_law(method, shape=(6, 6), label_weight="realised")
  sampled = atoms_lib.swap_coefficients(atoms_lib.sampled_atoms(jax.random.key(0), law, num_draws=20_000))
  assert np.abs(np.asarray(exact.second) - np.asarray(sampled.second)).max() < 0.015
  np.testing.assert_allclose(np.asarray(exact.mean).ravel(), np.asarray(sampled.mean).ravel(), atol=0.015)
  pixel = theory.method_coefficients(msda_jax.CutMix(), shape=(6, 6))
  assert np.abs(np.asarray(pixel.second) - np.asarray(sampled.second)).max() > 0.1


def reference_partner_weight(own_masks, attention, ratio, nearest):
  """The reference's rule in float64: the partner's area share and its share of the attention, the
  token's share read from its top-left pixel (``nearest``, as the reference's upsampling does) or
  from its pixel mean."""
  own = np.asarray(own_masks, np.float64)
  b, h, w = own.shape
  gh, gw = attention.shape[1:]
  pasted = 1.0 - own
  if nearest:
    tokens = pasted[:, :: h // gh, :: w // gw]
  else:
    tokens = pasted.reshape(b, gh, h // gh, gw, w // gw).mean((2, 4))
  a = np.asarray(attention, np.float64)
  lam1 = (a * tokens).sum((1, 2)) / a.sum((1, 2))
  return ratio * pasted.mean((1, 2)) + (1 - ratio) * lam1


@pytest.mark.parametrize("aligned", [True, False], ids=["aligned", "pixel-box"])
def test_transmix_weights_the_partner_by_area_and_attention_as_the_reference(aligned):
  base = msda_jax.PatchAligned(msda_jax.CutMix(), patch=4) if aligned else msda_jax.CutMix()
  method = msda_jax.TransMix(base, ratio=0.3)
  images, labels = jnp.zeros((6, 16, 16, 1)), jnp.arange(6) % 3
  mixer = msda_jax.Mixer(method, num_classes=3, mode="example")
  _, _, info = mixer.with_info(jax.random.key(1), images, labels)
  attention = jax.random.uniform(jax.random.key(2), (6, 4, 4)) ** 3
  targets = np.asarray(method.relabel(mixer.unmixed_targets(images, labels), info, {"attention": attention}))
  lam_j = reference_partner_weight(info.mask, attention, 0.3, nearest=False)
  rows = np.eye(3)[np.asarray(labels)]
  expected = (1 - lam_j)[:, None] * rows + lam_j[:, None] * rows[np.asarray(info.partner)]
  np.testing.assert_allclose(targets, expected, atol=2e-6)
  nearest = reference_partner_weight(info.mask, attention, 0.3, nearest=True)
  if aligned:  # whole tokens: the reference's one-pixel read-out is the same
    np.testing.assert_allclose(lam_j, nearest, atol=1e-12)
  else:  # boxes that cut tokens: the reference reads one pixel of each
    assert np.abs(lam_j - nearest).max() > 1e-3


def test_transmix_leaves_mixup_and_unmixed_examples_as_they_were():
  images, labels = jnp.zeros((4, 8, 8, 1)), jnp.arange(4)
  attention = jax.random.uniform(jax.random.key(0), (4, 2, 2))
  for method, prob in ((msda_jax.TransMix(msda_jax.Mixup()), 1.0), (msda_jax.TransMix(), 0.0)):
    mixer = msda_jax.Mixer(method, num_classes=4, prob=prob)
    _, targets, info = mixer.with_info(jax.random.key(3), images, labels)
    relabelled = method.relabel(mixer.unmixed_targets(images, labels), info, {"attention": attention})
    np.testing.assert_allclose(np.asarray(relabelled), np.asarray(targets), atol=2e-6)


def test_by_name_and_traced_ratio():
  method = msda_jax.from_string("transmix(method=\"patch_aligned(method='cutmix(alpha=0.5)', patch=4)\", ratio=0.2)")
  assert repr(method) == repr(msda_jax.TransMix(msda_jax.PatchAligned(msda_jax.CutMix(alpha=0.5), patch=4), ratio=0.2))
  assert method.needs().outputs == ("attention",) and method.takes_lam


@pytest.mark.parametrize(
  "build, error, pattern",
  [
    (lambda: msda_jax.PatchAligned(patch=0), ValueError, r"patch must be a positive int"),
    (lambda: msda_jax.PatchAligned(patch=(2, 2)).check_input((8,)), ValueError, r"patch must have one side per"),
    (lambda: msda_jax.PatchAligned(patch=3).check_input((8, 9)), ValueError, r"patch 3 must divide the spatial"),
    (lambda: msda_jax.PatchAligned(msda_jax.SaliencyMix()), ValueError, r"method = SaliencyMix reads the images"),
    (lambda: msda_jax.PatchAligned(msda_jax.CutMix(alpha=-1.0)), ValueError, r"alpha must be"),
    (lambda: msda_jax.TransMix(ratio=1.5), ValueError, r"ratio must lie in \[0.0, 1.0\]"),
    (lambda: msda_jax.TransMix(msda_jax.ResizeMix()), ValueError, r"method = ResizeMix transforms the images"),
    (lambda: msda_jax.TransMix("cutmix"), TypeError, r"method must be a MixMethod"),
    (lambda: relabel({"attention": jnp.ones((4, 3, 3))}), ValueError, r"token grid \(3, 3\) must divide"),
    (lambda: relabel({"attention": jnp.ones((4, 4))}), ValueError, r"attention must be .* \[B, \*G\]"),
    (lambda: relabel({}), ValueError, r"TransMix reads the model output 'attention'"),
    (lambda: msda_jax.TokenMix(patch=4, min_tokens=17).check_input((16, 16)), ValueError, r"min_tokens=17 is out of"),
    (lambda: msda_jax.TokenMix(min_tokens=-1), ValueError, r"min_tokens must be None or an int >= 0"),
    (lambda: msda_jax.TokenMix(patch=3).check_input((16, 16)), ValueError, r"patch 3 must divide the spatial"),
    (lambda: msda_jax.TokenMix(mask="box"), ValueError, r"mask must be one of"),
    (lambda: msda_jax.TokenMix(patch=2).check_input((8,)), ValueError, r"mask='block' places 2-d blocks"),
    (lambda: msda_jax.TokenMix(alpha=0.0), ValueError, r"alpha must be"),
    (lambda: msda_jax.MixPro(cell=3).check_input((16, 16)), ValueError, r"cell 3 must divide the spatial"),
    (lambda: msda_jax.MixPro(cell=0), ValueError, r"cell must be a positive int"),
    (lambda: msda_jax.SMMix(patch=3).check_input((16, 16)), ValueError, r"patch 3 must divide the spatial"),
    (lambda: msda_jax.SMMix(patch=4, min_side_ratio=0.2).check_input((16, 16)), ValueError, r"leaves no token"),
    (lambda: msda_jax.SMMix(min_side_ratio=0.8, max_side_ratio=0.5), ValueError, r"0 < min <= max <= 1"),
    (lambda: msda_jax.SMMix(patch=2).check_input((8, 4)), ValueError, r"SMMix mixes square token grids"),
    (lambda: msda_jax.SMMix(patch=2).auxiliary_loss(None, None, None, {}, {}), ValueError, r"token_head=True"),
  ],
)
def test_bad_input_raises_naming_the_argument(build, error, pattern):
  with pytest.raises(error, match=pattern):
    build()


def relabel(outputs):
  images, labels = jnp.zeros((4, 8, 8, 1)), jnp.arange(4)
  mixer = msda_jax.Mixer(msda_jax.TransMix(), num_classes=4)
  _, _, info = mixer.with_info(jax.random.key(0), images, labels)
  return mixer.method.relabel(mixer.unmixed_targets(images, labels), info, outputs)


def reference_blocks(rng, grid, count):
  """The reference's block-wise token masking, transcribed in Python floats (its loop and its rules)."""
  gh, gw = grid
  mask, have = np.zeros(grid, int), 0
  low, high = math.log(0.3), math.log(1 / 0.3)
  while have < count:
    missing, delta = count - have, 0
    for _ in range(10):
      area, aspect = rng.uniform(1, missing), math.exp(rng.uniform(low, high))
      h, w = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
      if w < gw and h < gh:
        top, left = rng.randint(0, gh - h), rng.randint(0, gw - w)
        new = h * w - mask[top : top + h, left : left + w].sum()
        if 0 < new <= missing:
          mask[top : top + h, left : left + w], delta = 1, new
          break
    if delta == 0:
      break
    have += delta
  return mask


def test_tokenmix_blocks_follow_the_reference_law():
  """4,000 draws each of 20 tokens on a 6 x 6 grid (seed 0 for both): the share of draws that paste
  each token (blocks must fit, so the centre is pasted more: 0.26 in a corner, 0.82 in the middle)
  agrees within 0.05 (standard error of a difference about 0.011); uniformly random tokens (the
  wrong law) are 0.30 away. The mean count agrees within 0.2 tokens."""
  from msda_jax.masks import _tokenmix

  rng = random.Random(0)
  reference = np.stack([reference_blocks(rng, (6, 6), 20) for _ in range(4000)])
  keys = jax.random.split(jax.random.key(0), 4000)
  draw = jax.jit(jax.vmap(lambda k: (_tokenmix.block_tokens(k, (6, 6), 20), _tokenmix.random_tokens(k, (6, 6), 20))))
  blocks, scattered = (np.asarray(m) for m in draw(keys))
  assert np.abs(blocks.mean(0) - reference.mean(0)).max() < 0.05
  assert np.abs(scattered.mean(0) - reference.mean(0)).max() > 0.2
  assert abs(blocks.sum((1, 2)).mean() - reference.sum((1, 2)).mean()) < 0.2
  assert blocks.sum((1, 2)).max() <= 20 and np.all(scattered.sum((1, 2)) == 20)


def test_tokenmix_pastes_whole_tokens_and_weighs_each_image_by_its_map():
  """The count ``min(N, floor((1 - lam) N) + min_tokens)``, every token whole, and the weights read
  from the maps: the image's map on the tokens it keeps, the partner's on the tokens it gave."""
  rng = np.random.default_rng(0)
  own, theirs = (jnp.asarray(rng.uniform(size=(8, 8)) ** 4, jnp.float32) for _ in range(2))
  data = msda_jax.PairData(jnp.zeros((8, 8, 1)), jnp.ones((8, 8, 1)), own, theirs)
  method = msda_jax.TokenMix(patch=2, mask="random", min_tokens=3)
  for lam in (0.0, 0.4, 1.0):
    s = method.sample(jax.random.key(1), shape=(8, 8), lam=lam, data=data)
    pasted = np.asarray(s.mask) == 0
    assert pasted.sum() // 4 == min(16, math.floor((1 - lam) * 16) + 3)
    assert np.all(pasted.reshape(4, 2, 4, 2).std(axis=(1, 3)) == 0)
    own64, theirs64 = np.asarray(own, np.float64), np.asarray(theirs, np.float64)
    np.testing.assert_allclose(float(s.weight), own64[~pasted].sum() / own64.sum(), atol=1e-6)
    np.testing.assert_allclose(float(s.partner_weight), theirs64[pasted].sum() / theirs64.sum(), atol=1e-6)


def test_mixpro_keeps_ceil_lam_n_cells_and_blends_area_and_attention_by_the_prediction():
  """MaskMix keeps ``ceil(lam N)`` whole cells; PAL's weight is ``sim lam_a + (1 - sim) lam_area``
  with ``sim`` the cosine of the area-mixed target and the softmax (float64 form below); a model
  that predicts the target exactly (``sim`` near 1) gets the attention share, a flat one mostly
  the area."""
  method = msda_jax.MixPro(cell=4)
  for lam in (0.0, 0.3, 1.0):
    s = method.sample(jax.random.key(2), shape=(16, 16), lam=lam)
    kept = np.asarray(s.mask).reshape(4, 4, 4, 4)
    assert np.all(kept.std(axis=(1, 3)) == 0) and kept[:, 0, :, 0].sum() == math.ceil(lam * 16)
  images, labels = jnp.zeros((6, 16, 16, 1)), jnp.arange(6) % 3
  mixer = msda_jax.Mixer(method, num_classes=3, mode="example")
  _, area_targets, info = mixer.with_info(jax.random.key(1), images, labels)
  attention = np.asarray(jax.random.uniform(jax.random.key(2), (6, 4, 4)) ** 3, np.float64)
  rows = np.eye(3)[np.asarray(labels)]
  own = np.asarray(info.mask, np.float64).reshape(6, 4, 4, 4, 4)[:, :, 0, :, 0]
  lam_a = (attention * own).sum((1, 2)) / attention.sum((1, 2))
  area = own.mean((1, 2))
  for logits in (
    np.log(np.asarray(area_targets, np.float64) + 1e-9),
    np.zeros((6, 3)),
    np.eye(3)[[1, 2, 0, 1, 2, 0]] * 4,
  ):
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    mixed = np.asarray(area_targets, np.float64)
    sim = (mixed * probs).sum(1) / (np.linalg.norm(mixed, axis=1) * np.linalg.norm(probs, axis=1))
    w = (sim * lam_a + (1 - sim) * area)[:, None]
    outputs = {"attention": jnp.asarray(attention, jnp.float32), "logits": jnp.asarray(logits, jnp.float32)}
    got = method.relabel(mixer.unmixed_targets(images, labels), info, outputs)
    np.testing.assert_allclose(np.asarray(got), w * rows + (1 - w) * rows[np.asarray(info.partner)], atol=2e-6)
  assert np.abs(lam_a - area).max() > 0.05  # the attention moves the weight: the check can fail


def test_smmix_moves_the_partners_most_attended_square_over_the_least_attended_one():
  """Against brute force over every window (float64): the pasted square is the image's least
  attended ``s x s`` tokens, its pixels are the partner's most attended square's, the weight is
  the area's, and the side is one of ``floor(0.25 g) ... floor(0.75 g)`` (g = 8 tokens: 2 to 6)."""
  rng = np.random.default_rng(0)
  batch, size, patch = 6, 16, 2
  images = jnp.asarray(rng.uniform(size=(batch, size, size, 1)), jnp.float32)
  maps = rng.uniform(size=(batch, size, size)) ** 3
  mixer = msda_jax.Mixer(msda_jax.SMMix(patch=patch), num_classes=3, mode="example")
  mixed, _, info = mixer.with_info(
    jax.random.key(1),
    images,
    jnp.arange(batch) % 3,
    saliency=jnp.asarray(maps, jnp.float32),
    predictions=jnp.zeros((batch, 3)),
  )
  tokens = maps.reshape(batch, 8, patch, 8, patch).sum((2, 4))
  sides = set()
  for i in range(batch):
    pasted = np.asarray(info.mask[i]) == 0
    side = round(np.sqrt(pasted.sum())) // patch
    sides.add(side)
    sums = lambda t, n=side: np.array([[t[r : r + n, c : c + n].sum() for c in range(9 - n)] for r in range(9 - n)])
    q = np.unravel_index(np.argmin(sums(tokens[i])), (9 - side, 9 - side))
    j = int(info.partner[i])
    p = np.unravel_index(np.argmax(sums(tokens[j])), (9 - side, 9 - side))
    rows, cols = np.nonzero(pasted)
    assert (rows.min() // patch, cols.min() // patch) == q and pasted.sum() == (side * patch) ** 2
    window = np.asarray(images[j])[p[0] * patch :, p[1] * patch :][: side * patch, : side * patch]
    np.testing.assert_array_equal(np.asarray(mixed[i])[pasted].reshape(window.shape), window)
    assert float(info.weight[i]) == float(info.lam[i]) == 1 - side**2 / 64
  assert sides <= set(range(2, 7)) and len(sides) > 1


def test_smmix_loss_terms_match_an_independent_float64_form():
  """Half the token cross-entropies (kept tokens' mean against the image's label, pasted tokens'
  against the partner's) plus KL(softmax(w z_i + (1 - w) z_j) || model), averaged."""
  rng = np.random.default_rng(1)
  batch, classes = 4, 3
  mask = np.ones((batch, 8, 8), np.float32)
  mask[:, :4, 2:6] = 0.0
  mask[3] = 1.0  # an unmixed example: no pasted tokens
  info = msda_jax.MixInfo(
    jnp.zeros(batch),
    jnp.asarray(mask.mean((1, 2))),
    jnp.asarray([1, 0, 3, 2]),
    jnp.ones(batch, bool),
    jnp.asarray(mask),
    1 - jnp.asarray(mask.mean((1, 2))),
  )
  logits, token_logits, z = (
    rng.normal(size=(batch, classes)),
    rng.normal(size=(batch, 4, 4, classes)),
    rng.normal(size=(batch, classes)),
  )
  targets = np.eye(classes)[[0, 1, 2, 0]]
  got = msda_jax.SMMix(patch=2).auxiliary_loss(
    jnp.asarray(logits, jnp.float32),
    jnp.asarray(targets, jnp.float32),
    info,
    {"token_logits": jnp.asarray(token_logits, jnp.float32)},
    {"predictions": jnp.asarray(z, jnp.float32)},
  )
  log_softmax = lambda v: v - np.log(np.exp(v).sum(-1, keepdims=True))
  kept = mask.reshape(batch, 4, 2, 4, 2).mean((2, 4)).reshape(batch, -1) == 1
  flat, partner, w = token_logits.reshape(batch, 16, classes), [1, 0, 3, 2], mask.mean((1, 2))
  total = 0.0
  for i in range(batch):
    fine = -(targets[i] * log_softmax(flat[i][kept[i]].mean(0))).sum()
    if (~kept[i]).any():
      fine += -(targets[partner[i]] * log_softmax(flat[i][~kept[i]].mean(0))).sum()
    q = np.exp(log_softmax(w[i] * z[i] + (1 - w[i]) * z[partner[i]]))
    total += 0.5 * fine + (q * (np.log(q) - log_softmax(logits[i]))).sum()
  np.testing.assert_allclose(float(got), total / batch, rtol=1e-5)


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 (fake) devices")
def test_the_data_reading_vit_mixers_inside_shard_map_mix_each_shard_as_one_device_would():
  """As a data-parallel train step calls them: per device, a key folded by its index, groups 1,
  values that vary over the mesh axis in TokenMix's block loop and SMMix's windows."""
  from jax.sharding import NamedSharding
  from jax.sharding import PartitionSpec as P

  mesh = jax.make_mesh((8,), ("data",))
  rng = np.random.default_rng(5)
  x = jnp.asarray(rng.uniform(size=(16, 8, 8, 1)), jnp.float32)
  y, s = jnp.arange(16) % 3, jnp.asarray(rng.uniform(size=(16, 8, 8)), jnp.float32)
  inputs = {"saliency": s, "predictions": jnp.zeros((16, 3))}
  for method in (msda_jax.TokenMix(patch=2, alpha=1.0), msda_jax.SMMix(patch=2)):
    given = {k: v for k, v in inputs.items() if k in method.needs().inputs}
    mix = lambda key, x, y, given, m=method: msda_jax.mix_batch(key, x, y, m, num_classes=3, mode="example", **given)

    def local(key, x, y, given, mix=mix):
      return mix(jax.random.fold_in(key, jax.lax.axis_index("data")), x, y, given)

    put = lambda a: jax.device_put(a, NamedSharding(mesh, P("data")))
    mapped = jax.jit(
      jax.shard_map(local, mesh=mesh, in_specs=(P(), P("data"), P("data"), P("data")), out_specs=P("data"))
    )
    mixed, targets = map(np.asarray, mapped(jax.random.key(2), put(x), put(y), jax.tree.map(put, given)))
    one = jax.jit(mix)
    for d in (0, 7):
      rows = slice(2 * d, 2 * d + 2)
      want = one(jax.random.fold_in(jax.random.key(2), d), x[rows], y[rows], {k: v[rows] for k, v in given.items()})
      np.testing.assert_allclose(mixed[rows], np.asarray(want[0]), atol=1e-6)
      np.testing.assert_allclose(targets[rows], np.asarray(want[1]), atol=1e-6)
