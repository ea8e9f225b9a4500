"""PuzzleMix's greedy transport against a numpy rewriting of the same rounds, and the patch moves."""

import jax
import numpy as np
import pytest

from msda_jax.masks import _transport

# Compiled once per grid: the same functions, without the op-by-op dispatch of eager loops.
transport_cost = jax.jit(_transport.transport_cost, static_argnames="t")
transport_plan = jax.jit(_transport.transport_plan, static_argnames="t")
plan_from_cost = jax.jit(_transport.plan_from_cost, static_argnames="t")


def cost_np(saliency, kept, t, eps):
  r, c = np.divmod(np.arange(t * t), t)
  dist = ((r[:, None] - r[None]) ** 2 + (c[:, None] - c[None]) ** 2) / max(t - 1, 1) ** 2
  return eps * dist - saliency[:, None] * kept[None, :]


def plan_np(cost, t):
  """The rounds of the module docstring in float32 numpy, written apart from the library's."""
  n = t * t
  cost = np.asarray(cost, np.float32)
  winners = np.zeros((n, n))
  for _ in range(t):
    claims = np.eye(n, dtype=np.float32)[np.argmin(cost, axis=1)]
    winners = np.eye(n, dtype=np.float32)[np.argmin(claims * cost, axis=0)].T * claims
    cost = np.where(claims > winners, cost + np.float32(1.0), cost)
  return winners


@pytest.mark.parametrize("t", [2, 4, 8, 16])
def test_plan_matches_the_rounds_written_in_numpy(t):
  """seed 0, 20 random instances per grid: the same plan from the same float32 cost; one 1 per row and column at most.

  The cost itself equals the float64 formula to float32 rounding (XLA may fuse ``a b - c d``, so
  near-ties can round either way: the rounds start from the library's cost).
  """
  rng = np.random.default_rng(0)
  for _ in range(20):
    s = rng.dirichlet(np.ones(t * t)).astype(np.float32)
    kept = (rng.uniform(size=t * t) < 0.6).astype(np.float32)
    eps = float(rng.uniform(0.05, 1.0))
    cost = np.asarray(transport_cost(s, kept, t=t, eps=eps))
    np.testing.assert_allclose(cost, cost_np(s.astype(np.float64), kept, t, np.float32(eps)), atol=3e-7)
    plan = np.asarray(transport_plan(s, kept, t=t, eps=eps))
    np.testing.assert_array_equal(plan, plan_np(cost, t))
    assert plan.sum(0).max() <= 1 and plan.sum(1).max() <= 1


def test_everything_kept_is_the_identity_and_a_plan_moves_patches():
  rng = np.random.default_rng(1)
  s = rng.dirichlet(np.ones(16)).astype(np.float32)
  plan = np.asarray(_transport.transport_plan(s, np.ones(16), t=4, eps=0.8))
  np.testing.assert_array_equal(plan, np.eye(16))
  image = rng.uniform(size=(8, 8, 3)).astype(np.float32)
  swap = np.eye(4)[[1, 0, 2, 3]]  # patches 0 and 1 (top row) trade places
  moved = np.asarray(_transport.apply_plan(swap, image, t=2))
  np.testing.assert_array_equal(moved[:4, :4], image[:4, 4:])
  np.testing.assert_array_equal(moved[:4, 4:], image[:4, :4])
  np.testing.assert_array_equal(moved[4:], image[4:])
  with pytest.raises(ValueError, match=r"multiples of the transport grid t=3"):
    _transport.apply_plan(np.eye(9), image, t=3)


@pytest.mark.parametrize("t", [2, 4, 8])
def test_plan_matches_the_rounds_on_ties(t):
  """seed 2, 30 instances per grid with many equal costs (eps 0 or a few saliency values, few
  places kept, nothing kept): the top-k rounds break ties as the ``[N, N]`` rounds do."""
  rng = np.random.default_rng(2)
  n = t * t
  for i in range(30):
    s = rng.choice(np.float32([0.0, 0.25, 0.5]), size=n)
    kept = (rng.uniform(size=n) < [0.0, 0.1, 0.5][i % 3]).astype(np.float32)
    eps = [0.0, 0.8, 1e-3][i % 3 if i < 15 else (i + 1) % 3]
    cost = np.asarray(transport_cost(s, kept, t=t, eps=eps))
    np.testing.assert_array_equal(np.asarray(plan_from_cost(cost, t=t)), plan_np(cost, t), err_msg=str(i))


def test_gather_equals_apply_plan_where_a_patch_landed():
  """seed 3: ``gather_pixels(plan_index(sources))`` moves the patches as ``apply_plan``; a place
  no patch won keeps its own pixels (``apply_plan`` writes zeros there)."""
  rng = np.random.default_rng(3)
  unfilled = 0
  for t in (2, 4, 8):
    n = t * t
    s = rng.dirichlet(np.ones(n)).astype(np.float32)
    kept = (rng.uniform(size=n) < 0.5).astype(np.float32)
    cost = _transport.transport_cost(s, kept, t=t, eps=0.8)
    sources = np.asarray(_transport.transport_sources(cost, t=t))
    plan = np.asarray(_transport.plan_from_cost(cost, t=t))
    image = rng.uniform(size=(16, 16, 3)).astype(np.float32)
    moved = np.asarray(_transport.gather_pixels(_transport.plan_index(sources, t=t, side=16), image))
    reference = np.asarray(_transport.apply_plan(plan, image, t=t))
    patch = 16 // t
    won = np.repeat(np.repeat((sources >= 0).reshape(t, t), patch, 0), patch, 1)
    unfilled += int((sources < 0).sum())
    np.testing.assert_array_equal(moved[won], reference[won])
    np.testing.assert_array_equal(moved[~won], image[~won])
  assert unfilled > 0, "the case of a place no patch won is exercised"
