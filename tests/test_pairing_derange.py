"""``pairing="derange"``: a uniform random permutation without fixed points inside each block.

The law is tested on blocks of 4 (9 derangements) with a chi-square test of uniformity; the
other properties (no fixed points, blocks respected, the error for blocks of 1, the fallback
after the last rejection round) are checked exactly.
"""

import collections
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import msda_jax
from msda_jax import _sharding, pairing

SEED = 0
BLOCK, BLOCKS = 4, 18_000  # 2,000 expected draws of each of the 9 derangements
P_MIN = 1e-3  # a uniform law fails this test once in a thousand seeds


def derange(keys: jax.Array, batch: int, groups: int = 1) -> np.ndarray:
  """``partner_indices(key, batch, pairing="derange", groups=groups)`` for each key, ``[K, batch]``."""
  run = jax.jit(jax.vmap(lambda k: pairing.partner_indices(k, batch, pairing="derange", groups=groups)))
  return np.asarray(run(keys))


def blocks_of(partner: np.ndarray, block: int) -> np.ndarray:
  """``[groups, block]`` partner offsets inside each block (the local permutation)."""
  return partner.reshape(-1, block) - block * np.arange(partner.size // block)[:, None]


@pytest.mark.parametrize("platform", ["cpu", "accelerator"])
def test_block_of_four_is_uniform_over_its_nine_derangements(platform):
  # seed 0, 18,000 blocks of 4: chi-square of the 9 derangements' counts at p > 1e-3 (both forms:
  # the CPU's loop of rounds and the accelerator's rounds side by side).
  partner = jax.jit(
    lambda k: pairing.partner_indices(k, BLOCK * BLOCKS, pairing="derange", groups=BLOCKS, platform=platform)
  )(jax.random.key(SEED))
  local = blocks_of(np.asarray(partner), BLOCK)
  derangements = [p for p in itertools.permutations(range(BLOCK)) if all(p[i] != i for i in range(BLOCK))]
  assert len(derangements) == 9
  counts = collections.Counter(map(tuple, local.tolist()))
  assert set(counts) == set(derangements), set(counts) ^ set(derangements)
  observed = np.array([counts[p] for p in derangements])
  result = stats.chisquare(observed)  # expected BLOCKS / 9 each
  assert result.pvalue > P_MIN, (observed, result)


@pytest.mark.parametrize(("batch", "groups"), [(2, 1), (3, 1), (7, 1), (64, 1), (64, 8), (30, 10), (33, 3)])
def test_no_example_is_its_own_partner_and_blocks_are_kept(batch, groups):
  block = batch // groups
  for partner in derange(jax.random.split(jax.random.key(SEED), 5), batch, groups):
    assert not np.any(partner == np.arange(batch)), partner
    local = blocks_of(partner, block)
    np.testing.assert_array_equal(np.sort(local, axis=1), np.tile(np.arange(block), (groups, 1)))


def test_pair_moves_every_leaf_with_the_same_derangement():
  key = jax.random.key(3)
  x, y = np.arange(12.0).reshape(6, 2), np.arange(6)
  px, py = pairing.pair(key, (x, y), pairing="derange", groups=2)
  partner = np.asarray(pairing.partner_indices(key, 6, pairing="derange", groups=2))
  np.testing.assert_array_equal(px, x[partner])
  np.testing.assert_array_equal(py, y[partner])


def test_blocks_of_one_are_refused():
  with pytest.raises(ValueError, match=r"pairing='derange' needs blocks of at least 2 .*got block size 1 \(batch 4"):
    pairing.partner_indices(jax.random.key(0), 4, pairing="derange", groups=4)
  with pytest.raises(ValueError, match=r"pairing='derange' needs blocks of at least 2 .*got block size 1"):
    pairing.pair(jax.random.key(0), np.zeros((1, 3)), pairing="derange")
  with pytest.raises(ValueError, match=r"pairing='derange' needs a PRNG key"):
    pairing.partner_indices(None, 4, pairing="derange")


@pytest.mark.parametrize("platform", ["cpu", "accelerator"])
def test_fallback_after_the_last_round_is_a_derangement(platform):
  """With one round allowed, a draw with a fixed point falls back to the cycle through its values."""
  fell_back = 0
  keys = jax.random.split(jax.random.key(SEED), 40)
  one_round = lambda k: pairing.pair(
    k, jnp.arange(5, dtype=jnp.int32), pairing="derange", derange_rounds=1, platform=platform
  )
  firsts = jax.vmap(lambda k: jax.random.permutation(jax.random.fold_in(jax.random.split(k, 1)[0], 0), 5))(keys)
  for partner, first in zip(np.asarray(jax.jit(jax.vmap(one_round))(keys)), np.asarray(firsts), strict=True):
    assert not np.any(partner == np.arange(5)) and sorted(partner) == list(range(5))
    if np.any(first == np.arange(5)):
      fell_back += 1
      cycle = np.empty(5, int)
      cycle[first] = first[(np.arange(5) + 1) % 5]
      np.testing.assert_array_equal(partner, cycle)
    else:
      np.testing.assert_array_equal(partner, first)
  assert fell_back > 0


@pytest.mark.parametrize(("batch", "groups", "rounds"), [(3, 1, 64), (64, 4, 64), (5, 1, 2)])
def test_the_two_forms_draw_the_same_derangements(batch, groups, rounds):
  """The accelerator's rounds side by side select the round the CPU's loop stops at (and the same
  fallback): equal for every key. Blocks of 3 (a third of the rounds succeed) and 2 rounds of a
  block of 5 (fallbacks in about 13 % of the draws) take later rounds and the fallback often."""
  keys = jax.random.split(jax.random.key(7), 200)
  forms = {
    platform: jax.jit(
      jax.vmap(
        lambda k, platform=platform: pairing.pair(
          k, jnp.arange(batch), pairing="derange", groups=groups, derange_rounds=rounds, platform=platform
        )
      )
    )(keys)
    for platform in ("cpu", "accelerator")
  }
  np.testing.assert_array_equal(forms["cpu"], forms["accelerator"])


def test_derange_is_a_pairing_of_mix_batch():
  assert "derange" in pairing.PAIRINGS
  images = np.random.default_rng(0).uniform(size=(6, 4, 4, 1)).astype(np.float32)
  _, _, info = msda_jax.mix_batch_with_info(
    jax.random.key(0), images, np.arange(6), msda_jax.Mixup(), num_classes=6, pairing="derange"
  )
  assert not np.any(np.asarray(info.partner) == np.arange(6))


def test_sharding_helpers_live_in_their_own_module():
  for name in ("batch_shards", "shard_like_batch", "blockwise"):
    assert callable(getattr(_sharding, name))
    assert name not in vars(pairing) or name == "blockwise"  # pairing uses blockwise, exports none
    assert name not in getattr(pairing, "__all__", ())
