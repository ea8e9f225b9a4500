"""The methods that read the data (PuzzleMix, SaliencyMix): errors, keys, grids, sharding, the train step.

The conformance suite (``test_conformance.py``) checks them with every other method; this file
checks what only they have: the ``saliency`` argument, the per-batch grid switch, SaliencyMix's
box against a numpy rewriting, pairs kept on their device, and the train step's one extra
forward-backward pass.
"""

import functools
import re

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import msda_jax
from msda_jax.masks import _data

K = 5


def batch(shape=(16, 16), size=4, seed=0):
  rng = np.random.default_rng(seed)
  images = jnp.asarray(rng.uniform(size=(size, *shape, 3)), jnp.float32)
  saliency = jnp.asarray(rng.gamma(0.5, size=(size, *shape)), jnp.float32)
  return images, jnp.arange(size) % K, saliency


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["puzzlemix", "saliencymix"])
def test_saliency_is_required_and_checked(spec):
  method = msda_jax.from_string(spec)
  x, y, s = batch()
  mix = functools.partial(msda_jax.mix_batch, jax.random.key(0), x, y, method, num_classes=K)
  with pytest.raises(ValueError, match=r"reads the images: pass saliency="):
    mix()
  with pytest.raises(ValueError, match=r"reads the images: pass saliency="):
    msda_jax.Mixer(method, num_classes=K)(jax.random.key(0), x, y)
  with pytest.raises(ValueError, match=r"saliency must have shape \[B, \*S\] = \(4, 16, 16\)"):
    mix(saliency=s[:, :8])
  with pytest.raises(ValueError, match=r"saliency must have shape"):
    mix(saliency=s[..., None])
  with pytest.raises(ValueError, match=r"saliency must be >= 0 and finite; got -1.0"):
    mix(saliency=s.at[1, 2, 3].set(-1.0))
  with pytest.raises(ValueError, match=r"saliency must be >= 0 and finite; got nan"):
    mix(saliency=s.at[0, 0, 0].set(jnp.nan))
  with pytest.raises(TypeError, match=r"saliency must be a float array"):
    mix(saliency="map")
  with pytest.raises(ValueError, match=r"data=PairData"):
    method.sample(jax.random.key(0), shape=(16, 16))


def test_puzzlemix_options_are_checked():
  x, y, s = batch(shape=(12, 12))
  with pytest.raises(ValueError, match=r"grid_sizes must divide the image side 12: \[8, 16\]"):
    msda_jax.mix_batch(jax.random.key(0), x, y, msda_jax.PuzzleMix(), num_classes=K, saliency=s)
  x, y, s = batch(shape=(16, 12))
  with pytest.raises(ValueError, match=r"PuzzleMix mixes square images"):
    msda_jax.mix_batch(jax.random.key(0), x, y, msda_jax.PuzzleMix(), num_classes=K, saliency=s)
  for kwargs, message in [
    ({"n_labels": 1}, r"n_labels must be an int >= 2"),
    ({"n_labels": 2.0}, r"n_labels must be an int >= 2"),
    ({"neigh_size": 0}, r"neigh_size must be an int >= 1"),
    ({"t_size": 0}, r"t_size must be an int >= 1, or -1"),
    ({"grid_sizes": ()}, r"grid_sizes must be a non-empty tuple of ints >= 2"),
    ({"grid_sizes": (1, 2)}, r"grid_sizes must be a non-empty tuple of ints >= 2"),
    ({"transport": 1}, r"transport must be a bool"),
    ({"beta": -0.1}, r"beta must be >= 0 and finite; got -0.1"),
    ({"gamma": float("nan")}, r"gamma must be >= 0 and finite"),
    ({"eta": float("inf")}, r"eta must be >= 0 and finite"),
    ({"t_eps": -1}, r"t_eps must be >= 0 and finite"),
    ({"alpha": 0.0}, r"alpha must be > 0"),
  ]:
    with pytest.raises(ValueError, match=message):
      msda_jax.PuzzleMix(**kwargs)
  with pytest.raises(ValueError, match=r"box_sides must be one of"):
    msda_jax.SaliencyMix(box_sides="odd")


def test_traced_invalid_saliency_reads_as_zero_and_check_raises():
  method = msda_jax.PuzzleMix(grid_sizes=(4,))
  x, y, s = batch()
  bad = s.at[0, :4].set(jnp.nan).at[1, 3:9, 2].set(-2.0)
  cleaned = jnp.where(jnp.isfinite(bad) & (bad >= 0), bad, 0.0)
  mix = jax.jit(lambda sal: msda_jax.mix_batch(jax.random.key(1), x, y, method, num_classes=K, saliency=sal))
  for a, b in zip(mix(bad), mix(cleaned), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  checked = jax.jit(
    lambda sal: msda_jax.mix_batch(jax.random.key(1), x, y, method, num_classes=K, saliency=sal, check=True)
  )
  with pytest.raises(jax.errors.JaxRuntimeError, match=r"saliency must be >= 0 and finite"):
    jax.block_until_ready(checked(bad))


# -- keys and grids ----------------------------------------------------------------------------
@pytest.mark.parametrize("spec", ["puzzlemix(grid_sizes=(2, 8))", "saliencymix"])
def test_batch_mode_is_the_method_sample_of_each_pair(spec):
  """``mix_batch`` (batch mode) draws each pair as ``method.sample(key_mix, data=pair)``: the
  keys as documented (``split(key, 3)[1]`` mixes), one ``lam`` for the batch."""
  method = msda_jax.from_string(spec)
  x, y, s = batch(size=2, seed=3)
  key = jax.random.key(5)
  _, _, info = msda_jax.mix_batch_with_info(key, x, y, method, num_classes=K, saliency=s)
  key_mix = jax.random.split(key, 3)[1]
  for i, j in ((0, 1), (1, 0)):
    one = method.sample(key_mix, shape=(16, 16), data=msda_jax.PairData(x[i], x[j], s[i], s[j]))
    np.testing.assert_array_equal(np.asarray(info.mask[i]), np.asarray(one.mask))
    assert float(info.lam[i]) == float(one.lam) and float(info.weight[i]) == float(one.weight)


def test_the_grid_is_drawn_per_batch_and_only_the_drawn_grid_is_used():
  """seeds 0-11: the default PuzzleMix equals PuzzleMix(grid_sizes=(b,)) for the drawn ``b``
  (``randint(split(key)[1], 0, 4)`` of the mask key), and every grid is drawn at least once."""
  x, y, s = batch(shape=(32, 32), size=4, seed=2)
  default = msda_jax.PuzzleMix()
  mix = jax.jit(lambda key, m: msda_jax.mix_batch_with_info(key, x, y, m, num_classes=K, saliency=s, mode="example"))
  drawn = set()
  for seed in range(12):
    key = jax.random.key(seed)
    key_mask = jax.random.split(jax.random.split(key, 3)[1])[1]
    b = default.grid_sizes[int(jax.random.randint(key_mask, (), 0, 4))]
    drawn.add(b)
    got, want = mix(key, default), mix(key, default.replace(grid_sizes=(b,)))
    for a, c in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(c))
    masks = np.asarray(got[2].mask).reshape(4, b, 32 // b, b, 32 // b)
    assert (masks == masks[:, :, :1, :, :1]).all(), f"the masks are constant on the {b} x {b} blocks"
  assert drawn == {2, 4, 8, 16}


def test_the_four_grids_are_one_conditional_outside_the_vmap():
  x, y, s = batch(shape=(32, 32))
  text = (
    jax.jit(lambda key: msda_jax.mix_batch(key, x, y, msda_jax.PuzzleMix(), num_classes=K, saliency=s))
    .lower(jax.random.key(0))
    .as_text()
  )
  # One switch of four branches (a vmapped switch would become selects over all of them); the
  # CPU-or-accelerator choices (platform_dependent's cases on a constant) are not counted.
  from benchmarks import structure

  switches = len(re.findall(r"stablehlo\.case", text)) - structure.platform_cases(text)
  assert switches == 1, "one lax.switch over the grid sizes"


def reference_saliencymix_mask(saliency, lam, shape):
  """The box of SaliencyMix in numpy: ``floor(sqrt(1 - lam) n)`` sides around the first argmax, clipped."""
  peak = np.unravel_index(np.argmax(saliency), shape)
  mask = np.ones(shape, np.float32)
  sides = [int(np.floor(np.sqrt(1.0 - np.float64(lam)) * n)) for n in shape]
  lo = [max(p - side // 2, 0) for p, side in zip(peak, sides, strict=True)]
  hi = [min(p - side // 2 + side, n) for p, side, n in zip(peak, sides, shape, strict=True)]
  mask[lo[0] : hi[0], lo[1] : hi[1]] = 0.0
  return mask


def test_saliencymix_matches_a_numpy_rewriting():
  """seed 7, 40 pairs on 13 x 17 grids with lam uniform: the same box and weight as numpy."""
  rng = np.random.default_rng(7)
  method = msda_jax.SaliencyMix()
  shape = (13, 17)
  sample = jax.jit(lambda lam, d: method.sample(jax.random.key(0), shape=shape, lam=lam, data=d))
  for _ in range(40):
    sal = rng.gamma(0.3, size=shape).astype(np.float32)
    lam = np.float32(rng.uniform())
    image = jnp.zeros((*shape, 1))
    out = sample(lam, msda_jax.PairData(image, image, jnp.zeros(shape), jnp.asarray(sal)))
    want = reference_saliencymix_mask(sal, lam, shape)
    np.testing.assert_array_equal(np.asarray(out.mask), want)
    assert float(out.weight) == pytest.approx(want.mean(), abs=1e-6)


def test_pixel_units():
  assert float(_data.pixel_units(jnp.array([255], jnp.uint8))[0]) == 1.0
  assert float(_data.pixel_units(jnp.array([0.25], jnp.bfloat16))[0]) == 0.25


# -- the train step ----------------------------------------------------------------------------
def count_convolutions(jaxpr) -> int:
  total = 0
  for eqn in jaxpr.eqns:
    total += eqn.primitive.name == "conv_general_dilated"
    for sub in jax.extend.core.jaxprs_in_params(eqn.params):
      total += count_convolutions(sub)
  return total


def test_the_train_step_spends_one_saliency_pass_only_when_needed():
  """The step of a data-dependent method has the convolutions of one more forward and input
  backward of the model; Mixup's has exactly vanilla's."""
  from msda_jax.train import init_train_state, make_train_step
  from msda_jax.train.models import SmallCNN

  tx = optax.sgd(0.1)
  graphdef, state, opt = init_train_state(SmallCNN(K, width=4, in_channels=3, rngs=nnx.Rngs(0)), tx)
  x, y, _ = batch()
  data = {"image": x, "label": y}
  counts = {}
  results = {}
  for name in ("none", "mixup", "saliencymix", "puzzlemix(grid_sizes=(4,))"):
    method = msda_jax.from_string(name)
    mixer = None if method is None else msda_jax.Mixer(method, num_classes=K)
    step = make_train_step(graphdef=graphdef, tx=tx, mixer=mixer, weight_decay=0.0)
    counts[name] = count_convolutions(jax.make_jaxpr(step)(state, opt, data, jax.random.key(0)).jaxpr)
    _, _, metrics = jax.jit(step)(state, opt, data, jax.random.key(0))
    results[name] = {k: float(v) for k, v in metrics.items()}
    assert all(np.isfinite(v) for v in results[name].values()), (name, results[name])
  assert counts["mixup"] == counts["none"]
  # The saliency pass adds one forward (c convolutions) and the gradient with respect to the input
  # only (c more: no kernel gradients).
  extra = counts["saliencymix"] - counts["none"]
  assert extra > 0 and counts["puzzlemix(grid_sizes=(4,))"] - counts["none"] == extra
  forward = count_convolutions(jax.make_jaxpr(lambda s: nnx.merge(graphdef, s)(x))(state).jaxpr)
  assert extra == 2 * forward, (counts, forward)


# -- sharding ----------------------------------------------------------------------------------
DEVICES = 8
MOVES_DATA = re.compile(r"\b(all-gather|all-to-all|ragged-all-to-all|collective-permute|reduce-scatter)(-start)?\(")


@pytest.mark.skipif(jax.device_count() < DEVICES, reason="needs 8 (fake) devices")
@pytest.mark.parametrize("mode", ["batch", "example"])
def test_groups_keep_pairs_on_their_device(mode):
  """Batch 16 over 8 devices, groups 8: no collective moves image data, and the numbers are the
  one-device numbers; with groups 1 the same program moves data (the check has power)."""
  mesh = jax.make_mesh((DEVICES,), ("data",))
  x, y, s = batch(shape=(8, 8), size=16, seed=4)
  methods = (msda_jax.PuzzleMix(grid_sizes=(4,)), msda_jax.SaliencyMix())

  def mix_all(key, x, y, s, groups):
    return [
      msda_jax.mix_batch(key, x, y, m, num_classes=K, mode=mode, pairing="permute", groups=groups, saliency=s)
      for m in methods
    ]

  sharding = NamedSharding(mesh, P("data"))
  args = [jax.device_put(a, sharding) for a in (x, y, s)]
  key = jax.random.key(6)
  single = jax.jit(mix_all, static_argnums=4)(key, x, y, s, DEVICES)
  with jax.set_mesh(mesh):
    program = jax.jit(mix_all, static_argnums=4).lower(key, *args, DEVICES).compile()
    out = program(key, *args)
    if mode == "batch":  # the power of the check, once
      crossing = jax.jit(mix_all, static_argnums=4).lower(key, *args, 1).compile()
      assert MOVES_DATA.search(crossing.as_text())
  assert not MOVES_DATA.search(program.as_text())
  for got, want in zip(jax.tree.leaves(out), jax.tree.leaves(single), strict=True):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)
  assert out[0][0].sharding.is_equivalent_to(sharding, 4)


@pytest.mark.skipif(jax.device_count() < DEVICES, reason="needs 8 (fake) devices")
@pytest.mark.parametrize("mode", ["batch", "example"])
def test_inside_shard_map_each_device_mixes_its_shard(mode):
  """As a data-parallel train step calls it: per device, a key folded by its index, groups 1."""
  mesh = jax.make_mesh((DEVICES,), ("data",))
  x, y, s = batch(shape=(8, 8), size=16, seed=5)
  method = msda_jax.PuzzleMix(grid_sizes=(2, 4))

  def local(key, x, y, s):
    key = jax.random.fold_in(key, jax.lax.axis_index("data"))
    return msda_jax.mix_batch(key, x, y, method, num_classes=K, mode=mode, pairing="roll", saliency=s)

  sharding = NamedSharding(mesh, P("data"))
  mapped = jax.jit(
    jax.shard_map(local, mesh=mesh, in_specs=(P(), P("data"), P("data"), P("data")), out_specs=P("data"))
  )
  mixed, targets = map(np.asarray, mapped(jax.random.key(2), *[jax.device_put(a, sharding) for a in (x, y, s)]))
  one = jax.jit(
    lambda key, x, y, s: msda_jax.mix_batch(key, x, y, method, num_classes=K, mode=mode, pairing="roll", saliency=s)
  )
  for d in range(DEVICES):
    rows = slice(2 * d, 2 * d + 2)
    key = jax.random.fold_in(jax.random.key(2), d)
    want = one(key, x[rows], y[rows], s[rows])
    np.testing.assert_allclose(np.asarray(mixed)[rows], np.asarray(want[0]), atol=1e-6)
    np.testing.assert_allclose(np.asarray(targets)[rows], np.asarray(want[1]), atol=1e-6)


# -- the adversarial step ------------------------------------------------------------------------
def test_adversarial_noise_is_a_signed_step_of_bounded_size():
  """A linear loss with a known gradient sign: the noise has that sign (or is 0), at most
  adv_eps / 255; with adv_p 0 there is none and the map is the clean input saliency."""
  x, _, _ = batch(seed=6)
  w = jnp.asarray(np.random.default_rng(1).normal(size=(16, 16, 3)), jnp.float32)
  loss = lambda z: jnp.sum(z * w[None])
  clean = msda_jax.saliency.adversarial_saliency(jax.random.key(0), loss, x, adv_p=0.0, adv_eps=10.0)
  np.testing.assert_array_equal(np.asarray(clean.perturbation.noise), 0.0)
  np.testing.assert_allclose(np.asarray(clean.map), np.asarray(msda_jax.saliency.input_saliency(loss, x)), rtol=1e-6)
  for seed in range(3):
    out = msda_jax.saliency.adversarial_saliency(jax.random.key(seed), loss, x, adv_p=1.0, adv_eps=10.0)
    noise = np.asarray(out.perturbation.noise)
    assert bool(out.perturbation.on_image) and bool(out.perturbation.on_partner)
    assert np.abs(noise).max() <= 10.0 / 255 + 1e-7 and np.abs(noise).max() > 0
    signs = np.sign(noise[noise != 0])
    np.testing.assert_array_equal(signs, np.broadcast_to(np.sign(np.asarray(w)), noise.shape)[noise != 0])


def test_mix_batch_adds_the_noise_to_the_images_mixed_not_to_the_energy():
  method = msda_jax.PuzzleMix(grid_sizes=(4,), transport=False, n_labels=2)
  x, y, s = batch(seed=7)
  noise = jnp.asarray(np.random.default_rng(2).uniform(-0.04, 0.04, x.shape), jnp.float32)
  key = jax.random.key(3)
  plain = msda_jax.mix_batch_with_info(key, x, y, method, num_classes=K, saliency=s)
  for on_image, on_partner in ((True, False), (False, True), (True, True)):
    perturbation = msda_jax.saliency.Perturbation(noise, jnp.array(on_image), jnp.array(on_partner))
    mixed, _, info = msda_jax.mix_batch_with_info(
      key, x, y, method, num_classes=K, saliency=s, perturbation=perturbation
    )
    np.testing.assert_array_equal(np.asarray(info.mask), np.asarray(plain[2].mask))  # energy on clean images
    xi = np.clip(np.asarray(x) + on_image * np.asarray(noise), 0, 1)
    xj = np.clip(np.asarray(x) + on_partner * np.asarray(noise), 0, 1)[np.asarray(info.partner)]
    m = np.asarray(info.mask)[..., None]
    np.testing.assert_allclose(np.asarray(mixed), m * xi + (1 - m) * xj, atol=1e-6)
  with pytest.raises(ValueError, match=r"^perturbation.noise must have the images' shape"):
    bad = msda_jax.saliency.Perturbation(noise[:2], jnp.array(True), jnp.array(True))
    msda_jax.mix_batch(key, x, y, method, num_classes=K, saliency=s, perturbation=bad)
  with pytest.raises(TypeError, match=r"^saliency must be a float array \[B, \*S\]; got a Saliency"):
    msda_jax.mix_batch(key, x, y, method, num_classes=K, saliency=msda_jax.saliency.Saliency(s, bad))


def test_the_train_step_takes_the_adversarial_step_only_when_asked():
  from msda_jax.train import init_train_state, make_train_step
  from msda_jax.train.models import SmallCNN

  tx = optax.sgd(0.1)
  graphdef, state, opt = init_train_state(SmallCNN(K, width=4, in_channels=3, rngs=nnx.Rngs(0)), tx)
  x, y, _ = batch()
  data = {"image": x, "label": y}
  outs = {}
  for adv_p in (0.0, 1.0):
    method = msda_jax.PuzzleMix(grid_sizes=(4,), adv_p=adv_p)
    step = make_train_step(graphdef=graphdef, tx=tx, mixer=msda_jax.Mixer(method, num_classes=K), weight_decay=0.0)
    jaxpr = jax.make_jaxpr(step)(state, opt, data, jax.random.key(0)).jaxpr
    outs[adv_p] = (jax.jit(step)(state, opt, data, jax.random.key(0))[2], count_convolutions(jaxpr), str(jaxpr))
    assert all(np.isfinite(float(v)) for v in outs[adv_p][0].values())
  assert outs[0.0][1] == outs[1.0][1], "the adversarial step reuses the saliency gradient: no more convolutions"
  signed = re.compile(r"f32\[4,16,16,3\] = sign ")  # the signed gradient step on the images
  assert signed.search(outs[1.0][2]) and not signed.search(outs[0.0][2])
  assert float(outs[0.0][0]["loss"]) != float(outs[1.0][0]["loss"])
