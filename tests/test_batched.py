"""``map_in_chunks``: the results of ``jax.vmap``, a few examples at a time, inside each group.

Chunking is forced by a small ``chunk_bytes`` (a static option of ``map_in_chunks`` and the ``Mixer``), so the loop runs
at test sizes; each test checks the loop is really there (a loop in the program) and that
its results equal the whole-batch ``vmap``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from test_sharding import BATCH, CLASSES, DEVICES, MOVES_DATA, collectives, make_batch, mesh

import msda_jax
from msda_jax import _batched


def loops(traced) -> int:
  """How many loops the program lowered for this platform holds (a ``scan`` lowers to a while).

  Counted after lowering, where only the form for the compiled platform is left (``_backend``).
  """
  return traced.lower().as_text().count("stablehlo.while")


def per_example(key, x):
  """A function of one example that mixes elementwise work, a reduction and its own key."""
  return x * jax.random.uniform(key, dtype=x.dtype) + jnp.sum(x) + jnp.arange(x.size, dtype=x.dtype).reshape(x.shape)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float16"])
@pytest.mark.parametrize(("batch", "groups", "chunk"), [(12, 1, 1), (12, 2, 3), (12, 3, 2), (7, 1, 1), (8, 8, 1)])
def test_equals_vmap(monkeypatch, batch, groups, chunk, dtype):
  """Same values and dtype (16-bit floats travel through the loop as their bits)."""
  x = jnp.asarray(np.random.default_rng(0).normal(size=(batch, 5, 3)), dtype)
  keys = jax.random.split(jax.random.key(1), batch)
  chunked = jax.jit(lambda k, v: _batched.map_in_chunks(per_example, k, v, groups=groups, chunk_bytes=4 * 15 * chunk))
  steps = batch // groups // chunk
  whole = jax.jit(jax.vmap(per_example))
  extra = loops(chunked.trace(keys, x)) - loops(whole.trace(keys, x))
  assert extra == (steps > 1), "the loop runs exactly when it has > 1 step"
  want = whole(keys, x)
  got = chunked(keys, x)
  assert got.dtype == want.dtype == x.dtype
  np.testing.assert_array_equal(np.asarray(got, np.float32), np.asarray(want, np.float32))


@pytest.mark.parametrize(
  ("per_group", "example_bytes", "target", "want"),
  [(128, 602_112, 2**20, 1), (128, 300_000, 2**20, 2), (256, 12_288, 2**20, 64), (6, 1, 2**20, 6), (7, 100, 250, 1)],
)
def test_chunk_size_is_the_largest_divisor_that_fits(per_group, example_bytes, target, want):
  assert _batched.chunk_size(per_group, example_bytes, target) == want


@pytest.mark.parametrize(
  ("name", "mode"), [("resizemix", "batch"), ("resizemix", "example"), ("fmix", "example")], ids=lambda v: v
)
@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_chunked_equals_whole_batch(name, mode, dtype):
  """What the library chunks (ResizeMix's resample, FMix's per-example masks) mixes alike either way."""
  rng = np.random.default_rng(2)
  images = rng.integers(0, 256, (6, 16, 12, 3)).astype(np.uint8)
  images = images if dtype == "uint8" else images.astype(np.float32) / 255
  labels = np.arange(6) % CLASSES

  def make_mix(**options):
    return jax.jit(
      lambda key, x, y: msda_jax.mix_batch(
        key, x, y, msda_jax.from_string(name), num_classes=CLASSES, mode=mode, groups=2, **options
      )
    )

  key = jax.random.key(4)
  whole_fn = make_mix()
  whole = whole_fn(key, images, labels)
  chunked_fn = make_mix(chunk_bytes=1)
  # At this size the default is one vmap; forced, chunking adds its loop.
  assert loops(chunked_fn.trace(key, images, labels)) == loops(whole_fn.trace(key, images, labels)) + 1
  chunked = chunked_fn(key, images, labels)
  # Same numbers up to the float32 rounding of a contraction computed in smaller pieces.
  if dtype == "uint8":
    assert np.abs(np.asarray(chunked[0], np.int32) - np.asarray(whole[0], np.int32)).max() <= 1
  else:
    np.testing.assert_allclose(np.asarray(chunked[0]), np.asarray(whole[0]), atol=1e-6)
  np.testing.assert_allclose(np.asarray(chunked[1]), np.asarray(whole[1]), atol=1e-6)


@pytest.mark.skipif(jax.device_count() < DEVICES, reason="needs 8 (fake) devices")
@pytest.mark.parametrize("mode", ["batch", "example"])
def test_chunks_stay_on_their_device(mode):
  """On a batch sharded over 8 devices (automatic axes), groups=8: the loop moves no data."""
  images, labels = make_batch()
  key = jax.random.key(3)

  def mix(k, x, y):
    options = {"num_classes": CLASSES, "mode": mode, "groups": DEVICES, "chunk_bytes": 1}
    return msda_jax.mix_batch(k, x, y, msda_jax.ResizeMix(), **options)

  reference = jax.jit(mix)(key, jax.device_put(images, jax.devices()[0]), jax.device_put(labels, jax.devices()[0]))
  sharding = NamedSharding(mesh("auto"), P("data"))
  with jax.set_mesh(mesh("auto")):
    compiled = jax.jit(mix).lower(key, jax.device_put(images, sharding), jax.device_put(labels, sharding)).compile()
    out = compiled(key, jax.device_put(images, sharding), jax.device_put(labels, sharding))
  hlo = compiled.as_text()
  assert "while" in hlo
  found = collectives(hlo)
  assert not {op for op, _ in found} & MOVES_DATA, found
  np.testing.assert_allclose(np.asarray(out[0]), np.asarray(reference[0]), atol=1e-6)
  np.testing.assert_allclose(np.asarray(out[1]), np.asarray(reference[1]), atol=1e-6)
  assert {s.data.shape[0] for s in out[0].addressable_shards} == {BATCH // DEVICES}


def test_accelerators_take_the_whole_batch_at_once():
  """Compiled for an accelerator there is no loop (one vmap, as for one step), with the same values.

  The form is chosen for the platform the program is compiled for: on this CPU the compiled
  program loops; with the accelerator form forced (``platform="accelerator"``) it does not.
  """
  x = jnp.asarray(np.random.default_rng(5).normal(size=(12, 5, 3)), jnp.float32)
  keys = jax.random.split(jax.random.key(6), 12)
  chunked = lambda platform: (
    lambda k, v: _batched.map_in_chunks(per_example, k, v, groups=2, chunk_bytes=4 * 15, platform=platform)
  )
  on_cpu = jax.jit(chunked("auto"))
  whole = jax.jit(lambda k, v: jax.vmap(per_example)(k, v))
  assert loops(on_cpu.trace(keys, x)) == loops(whole.trace(keys, x)) + 1
  expected = np.asarray(on_cpu(keys, x))
  off_cpu = jax.jit(chunked("accelerator"))
  assert loops(off_cpu.trace(keys, x)) == loops(whole.trace(keys, x))
  np.testing.assert_array_equal(np.asarray(off_cpu(keys, x)), expected)
