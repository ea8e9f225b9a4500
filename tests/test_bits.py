"""Random words computed where they are used (``msda_jax._bits``): JAX's words, bit for bit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from msda_jax import _bits


@pytest.mark.parametrize(
  ("key", "counter", "expected"),
  [
    # Known answers of Threefry-2x32 with 20 rounds, as published with the algorithm.
    ((0x00000000, 0x00000000), (0x00000000, 0x00000000), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
  ],
)
def test_threefry_known_answers(key, counter, expected):
  words = _bits.threefry2x32(*(jnp.uint32(v) for v in (*key, *counter)))
  assert tuple(int(w) for w in words) == expected


@pytest.mark.parametrize("size", [1, 2, 7, 1000, 50_177])
def test_bits_at_equals_jax_random_bits(size):
  rng = np.random.default_rng(size)
  index = jnp.asarray(rng.integers(0, size, size=(3, 11)))
  for key in (jax.random.key(size), jax.random.PRNGKey(size + 1)):
    assert _bits.fusable(key)
    expected = np.asarray(jax.random.bits(key, (size,), jnp.uint32))
    got = jax.jit(_bits.bits_at, static_argnums=2)(key, index, size)
    np.testing.assert_array_equal(np.asarray(got), expected[np.asarray(index)])
  every = _bits.bits_at(jax.random.key(3), jnp.arange(size), size)
  np.testing.assert_array_equal(np.asarray(every), np.asarray(jax.random.bits(jax.random.key(3), (size,), jnp.uint32)))


def test_bits_at_under_vmap_over_keys():
  keys = jax.random.split(jax.random.key(11), 5)
  got = jax.jit(jax.vmap(lambda k: _bits.bits_at(k, jnp.arange(9), 9)))(keys)
  expected = jax.vmap(lambda k: jax.random.bits(k, (9,), jnp.uint32))(keys)
  np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))


def test_other_keys_and_layouts_take_jax_random_bits(monkeypatch):
  key = jax.random.key(4, impl="rbg")
  assert not _bits.fusable(key)
  np.testing.assert_array_equal(
    np.asarray(_bits.bits_at(key, jnp.array([2, 0]), 5)), np.asarray(jax.random.bits(key, (5,), jnp.uint32))[[2, 0]]
  )
  monkeypatch.setattr(_bits, "_layout_matches", lambda: False)
  threefry = jax.random.key(4)
  assert not _bits.fusable(threefry)
  np.testing.assert_array_equal(
    np.asarray(_bits.bits_at(threefry, jnp.array([4, 1]), 5)),
    np.asarray(jax.random.bits(threefry, (5,), jnp.uint32))[[4, 1]],
  )


def test_the_original_threefry_layout_takes_jax_random_bits():
  key = jax.random.key(6)
  with jax.threefry_partitionable(False):
    assert not _bits.fusable(key)
    got = _bits.bits_at(key, jnp.array([3, 0, 5]), 7)
    expected = np.asarray(jax.random.bits(key, (7,), jnp.uint32))[[3, 0, 5]]
  np.testing.assert_array_equal(np.asarray(got), expected)
  assert _bits.fusable(key)


def test_bits_at_rejects_bad_sizes():
  with pytest.raises(ValueError, match="size must be in"):
    _bits.bits_at(jax.random.key(0), jnp.arange(1), 0)


@pytest.mark.parametrize("num", [1, 2, 3, 8])
def test_split_equals_jax_random_split(num):
  for seed in range(20):
    key = jax.random.key(seed)
    want = jax.random.key_data(jax.random.split(key, num))
    np.testing.assert_array_equal(jax.random.key_data(_bits.split(key, num)), want)
    np.testing.assert_array_equal(jax.jit(lambda k: jax.random.key_data(_bits.split(k, num)))(key), want)
  raw = jax.random.PRNGKey(5)  # a raw uint32 key gives raw key data
  np.testing.assert_array_equal(_bits.split(raw, num), jax.random.split(raw, num))
  keys = jax.random.split(jax.random.key(9), 4)
  mapped = jax.vmap(lambda k: jax.random.key_data(_bits.split(k, num)))(keys)
  np.testing.assert_array_equal(mapped, jax.vmap(lambda k: jax.random.key_data(jax.random.split(k, num)))(keys))
  with pytest.raises(ValueError, match="num must be an int"):
    _bits.split(keys[0], 0)


def test_randint_equals_jax_random_randint():
  """Ranges of every span from empty (``maxval <= minval`` gives ``minval``) to 2^31 - 1, and
  negative bounds, against ``jax.random.randint`` for the same keys (seed 0, 300 cases)."""
  rng = np.random.default_rng(0)
  for seed in range(300):
    low = rng.integers(-50, 50, 4).astype(np.int32)
    high = (low + rng.integers(-3, 40, 4)).astype(np.int32)
    key = jax.random.key(seed)
    got, want = _bits.randint(key, (4,), low, high), jax.random.randint(key, (4,), low, high)
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
  key = jax.random.key(1)
  np.testing.assert_array_equal(
    _bits.randint(key, (1000,), 0, 2**31 - 1), jax.random.randint(key, (1000,), 0, 2**31 - 1)
  )
  keys = jax.random.split(jax.random.key(2), 6)
  draw = lambda f: jax.vmap(lambda k: f(k, (2,), 0, jnp.array([5, 9])))(keys)
  np.testing.assert_array_equal(draw(_bits.randint), draw(jax.random.randint))
