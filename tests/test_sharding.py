"""Mixing a batch sharded over 8 (fake CPU) devices: pairs stay on their device.

With ``groups`` equal to the number of devices, the compiled program of ``mix_batch`` holds no
collective that moves image data (no all-gather, all-to-all, collective-permute,
reduce-scatter); with ``groups=1`` the same program does (so the check has power). The sharded
result equals the one-device result for the same key and keeps the input's sharding. Both
kinds of mesh axes are covered: explicit (the default of ``jax.make_mesh``) and automatic (the
default of ``jax.sharding.Mesh``). Inside ``jax.shard_map`` each device mixes its own shard.
"""

import functools
import re

import jax
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import msda_jax
from benchmarks import structure

DEVICES = 8
BATCH, SHAPE, CHANNELS, CLASSES = 16, (8, 8), 3, 10
METHODS = ("mixup", "cutmix", "hmix", "resizemix")
PAIRINGS = ("reverse", "roll", "permute")
MODES = ("batch", "example")
AXIS_TYPES = {"explicit": AxisType.Explicit, "auto": AxisType.Auto}

# Collectives as HLO text spells them; `-start` / `-done` are the async forms.
COLLECTIVE = re.compile(
  r"=\s*(?P<shape>\S+|\([^)]*\))\s+"
  r"(?P<op>all-gather|all-to-all|ragged-all-to-all|collective-permute|reduce-scatter|all-reduce|"
  r"collective-broadcast|send|recv)(?:-start)?\("
)
MOVES_DATA = {"all-gather", "all-to-all", "ragged-all-to-all", "collective-permute", "reduce-scatter"}

pytestmark = pytest.mark.skipif(jax.device_count() < DEVICES, reason="needs 8 (fake) devices")


def collectives(hlo: str) -> set[tuple[str, str]]:
  """``{(op, result shape)}`` of every cross-device collective in compiled HLO text."""
  return {(m["op"], m["shape"]) for m in COLLECTIVE.finditer(hlo)}


@functools.cache
def mesh(kind: str) -> jax.sharding.Mesh:
  return jax.make_mesh((DEVICES,), ("data",), axis_types=(AXIS_TYPES[kind],))


def make_batch():
  rng = np.random.default_rng(0)
  images = rng.uniform(0.0, 1.0, (BATCH, *SHAPE, CHANNELS)).astype(np.float32)
  labels = rng.integers(0, CLASSES, BATCH).astype(np.int32)
  return images, labels


def mix_all(key, images, labels, *, mode, pairing, groups, methods=METHODS, platform="auto"):
  """Every method of ``methods`` on the same batch, in one program."""
  return {
    name: msda_jax.mix_batch_with_info(
      key,
      images,
      labels,
      msda_jax.from_string(name),
      num_classes=CLASSES,
      mode=mode,
      pairing=pairing,
      groups=groups,
      platform=platform,
    )
    for name in methods
  }


# The collectives are chosen before code generation: a low backend optimisation level keeps the
# partitioned program as it is and compiles faster (the reference uses the same options).
MIX_ALL = jax.jit(
  mix_all,
  static_argnames=("mode", "pairing", "groups", "methods", "platform"),
  compiler_options={"xla_backend_optimization_level": 0},
)


@functools.cache
def unsharded(mode: str, pairing: str):
  """The one-device result, groups=8 (the pairing does not depend on the devices)."""
  images, labels = make_batch()
  device = jax.devices()[0]
  out = MIX_ALL(
    jax.random.key(3),
    jax.device_put(images, device),
    jax.device_put(labels, device),
    mode=mode,
    pairing=pairing,
    groups=DEVICES,
  )
  return jax.tree.map(np.asarray, out)


def sharded_inputs(kind: str):
  images, labels = make_batch()
  sharding = NamedSharding(mesh(kind), P("data"))
  return jax.device_put(images, sharding), jax.device_put(labels, sharding)


def grid():
  """Every pairing and mode on explicit axes; the gather-based pairing on automatic axes."""
  explicit = [
    pytest.param("explicit", mode, pairing, id=f"explicit-{mode}-{pairing}") for mode in MODES for pairing in PAIRINGS
  ]
  return explicit + [pytest.param("auto", mode, "permute", id=f"auto-{mode}-permute") for mode in MODES]


@pytest.mark.parametrize(("kind", "mode", "pairing"), grid())
def test_groups_per_device_keeps_pairs_local(kind, mode, pairing):
  images, labels = sharded_inputs(kind)
  key = jax.random.key(3)
  with jax.set_mesh(mesh(kind)):
    lowered = MIX_ALL.lower(key, images, labels, mode=mode, pairing=pairing, groups=DEVICES)
    compiled = lowered.compile()
    out = compiled(key, images, labels)

  # (a) No collective moves image data. The CPU's form of the Beta draws makes its rounds in a
  # loop, whose predicate, vmapped over a batch axis that automatic sharding partitioned, is the
  # one allowed collective: an all-reduce of a scalar (example mode). The accelerator's form has
  # no loop and no collective at all (test_accelerator_forms_have_no_collective).
  found = collectives(compiled.as_text())
  assert not {op for op, _ in found} & MOVES_DATA, found
  assert found <= {("all-reduce", "pred[]")}, found
  if mode == "batch":
    assert not found, found

  # (c) Same numbers as on one device for the same key.
  reference = unsharded(mode, pairing)
  for name in METHODS:
    mixed, targets, info = out[name]
    want_images, want_targets, want_info = reference[name]
    np.testing.assert_allclose(np.asarray(mixed), want_images, rtol=1e-6, atol=1e-6, err_msg=name)
    np.testing.assert_allclose(np.asarray(targets), want_targets, rtol=1e-6, atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(np.asarray(info.partner), want_info.partner, err_msg=name)
    np.testing.assert_allclose(np.asarray(info.lam), want_info.lam, rtol=1e-6, err_msg=name)
    # Every partner lives in its example's shard.
    shard = np.arange(BATCH) // (BATCH // DEVICES)
    np.testing.assert_array_equal(np.asarray(info.partner) // (BATCH // DEVICES), shard, err_msg=name)

    # (d) The outputs stay sharded over the batch axis like the input.
    for array in (mixed, targets):
      assert array.sharding.is_equivalent_to(NamedSharding(mesh(kind), P("data")), array.ndim), (name, array.sharding)
      assert {s.data.shape[0] for s in array.addressable_shards} == {BATCH // DEVICES}


@pytest.mark.parametrize("mode", MODES)
def test_accelerator_forms_have_no_collective(mode):
  """The accelerator's forms (the Beta draws' rounds, FMix's threshold, the derangement's rounds,
  the mixture's switch; loops or branches on the CPU): no collective at all with groups per
  device, not even a predicate's all-reduce, and the CPU form's numbers."""
  images, labels = sharded_inputs("explicit")
  key = jax.random.key(3)
  methods = ("mixup", "fmix", "mixture", "stochastic", "gmix", "bernoulli")
  run = functools.partial(MIX_ALL, mode=mode, pairing="derange", groups=DEVICES, methods=methods)
  with jax.set_mesh(mesh("explicit")):
    compiled = MIX_ALL.lower(
      key, images, labels, mode=mode, pairing="derange", groups=DEVICES, methods=methods, platform="accelerator"
    ).compile()
    assert not collectives(compiled.as_text()), collectives(compiled.as_text())
    out = compiled(key, images, labels)
  reference = run(key, *make_batch())
  for name in methods:
    for got, want in zip(jax.tree.leaves(out[name]), jax.tree.leaves(reference[name]), strict=True):
      np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("kind", list(AXIS_TYPES))
def test_one_group_moves_data_across_devices(kind):
  """(b) The check has power: pairs across the whole batch need a collective that moves data."""
  images, labels = sharded_inputs(kind)
  key = jax.random.key(3)
  with jax.set_mesh(mesh(kind)):
    lowered = MIX_ALL.lower(key, images, labels, mode="batch", pairing="reverse", groups=1, methods=("mixup",))
    compiled = lowered.compile()
    out = compiled(key, images, labels)
  found = collectives(compiled.as_text())
  assert {op for op, _ in found} & MOVES_DATA, found
  # Precisely: the images' rows travel to the mirror device (one shard of 2 rows each way).
  assert any(op == "collective-permute" and "2,8,8,3]" in shape for op, shape in found), found
  # Still correct: the partner of i is B - 1 - i across the whole batch.
  mixed, _, info = out["mixup"]
  np.testing.assert_array_equal(np.asarray(info.partner), np.arange(BATCH)[::-1])
  lam = float(info.lam[0])
  np.testing.assert_allclose(np.asarray(mixed), lam * images + (1 - lam) * np.asarray(images)[::-1], atol=1e-5)


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("pairing", PAIRINGS)
def test_explicit_sharding_with_blocks_across_devices(pairing, groups):
  """Explicit sharding with ``groups`` not a multiple of the devices still pairs correctly."""
  images, _ = sharded_inputs("explicit")
  key = jax.random.key(5)
  with jax.set_mesh(mesh("explicit")):
    paired = jax.jit(functools.partial(msda_jax.pair, pairing=pairing, groups=groups))(key, images)
  want = np.asarray(images)[np.asarray(msda_jax.partner_indices(key, BATCH, pairing=pairing, groups=groups))]
  np.testing.assert_array_equal(np.asarray(paired), want)
  assert paired.sharding.is_equivalent_to(images.sharding, images.ndim)


@pytest.mark.parametrize("kind", list(AXIS_TYPES))
@pytest.mark.parametrize("mode", MODES)
def test_inside_shard_map(kind, mode):
  """Each device mixes its own shard (groups=1 locally) with a key folded by its index."""
  images, labels = sharded_inputs(kind)
  local = BATCH // DEVICES

  def step(key, x, y):
    key = jax.random.fold_in(key, jax.lax.axis_index("data"))
    mixed, targets, info = msda_jax.mix_batch_with_info(
      key, x, y, msda_jax.Mixup(), num_classes=CLASSES, mode=mode, pairing="roll"
    )
    return mixed, targets, info.lam, info.partner, info.weight

  mapped = jax.jit(jax.shard_map(step, mesh=mesh(kind), in_specs=(P(), P("data"), P("data")), out_specs=P("data")))
  mixed, targets, lam, partner, weight = map(np.asarray, mapped(jax.random.key(7), images, labels))

  assert mixed.shape == images.shape and targets.shape == (BATCH, CLASSES)
  np.testing.assert_allclose(targets.sum(-1), 1.0, rtol=1e-6)
  # Partners are local indices: the partner of row i of a shard is row i - 1 of the same shard.
  np.testing.assert_array_equal(partner, np.tile((np.arange(local) - 1) % local, DEVICES))
  source = np.arange(BATCH) - np.arange(BATCH) % local + partner
  x = np.asarray(images)
  want = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[source]
  np.testing.assert_allclose(mixed, want, atol=1e-5)
  np.testing.assert_allclose(weight, lam, rtol=1e-6)
  # Different shards draw different lam.
  first = lam.reshape(DEVICES, local)[:, 0]
  assert len(np.unique(first)) == DEVICES, first
  if mode == "batch":
    assert np.all(lam.reshape(DEVICES, local) == first[:, None])


#: every mask-only method (the structure benchmark's list).
MASK_METHODS = structure.METHODS


@pytest.mark.parametrize("mode", MODES)
def test_every_method_inside_shard_map_mixes_each_shard_as_one_device_would(mode):
  """Inside ``jax.shard_map`` (the train step's form), every mask-only method's loops and
  conditionals are traced with values that vary over the mesh axis: each device's shard is mixed
  exactly as one device mixes that shard alone with the same folded key."""
  local = 4  # k-sample mixing needs k = 3 distinct sources in a shard
  rng = np.random.default_rng(1)
  x = rng.uniform(0.0, 1.0, (DEVICES * local, *SHAPE, CHANNELS)).astype(np.float32)
  y = rng.integers(0, CLASSES, DEVICES * local).astype(np.int32)
  sharding = NamedSharding(mesh("explicit"), P("data"))
  images, labels = jax.device_put(x, sharding), jax.device_put(y, sharding)

  def step(key, x, y):
    key = jax.random.fold_in(key, jax.lax.axis_index("data"))
    return mix_all(key, x, y, mode=mode, pairing=None, groups=1, methods=MASK_METHODS)

  mapped = jax.jit(
    jax.shard_map(step, mesh=mesh("explicit"), in_specs=(P(), P("data"), P("data")), out_specs=P("data")),
    compiler_options={"xla_backend_optimization_level": 0},
  )
  got = jax.tree.map(np.asarray, mapped(jax.random.key(11), images, labels))
  device = jax.devices()[0]
  for shard in (0, DEVICES - 1):
    rows = slice(shard * local, (shard + 1) * local)
    key = jax.random.fold_in(jax.random.key(11), shard)
    alone = MIX_ALL(
      key,
      jax.device_put(x[rows], device),
      jax.device_put(y[rows], device),
      mode=mode,
      pairing=None,
      groups=1,
      methods=MASK_METHODS,
    )
    for name in MASK_METHODS:
      for part, want in zip(got[name][:2], alone[name][:2], strict=True):
        np.testing.assert_allclose(part[rows], np.asarray(want), rtol=1e-6, atol=1e-6, err_msg=name)
