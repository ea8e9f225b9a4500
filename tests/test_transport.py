"""PuzzleMix's greedy transport against a numpy rewriting of the same rounds, and the patch moves."""

import numpy as np
import pytest

from msda_jax.masks import _transport


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


@pytest.mark.parametrize("t", [2, 4, 8])
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
    cost = np.asarray(_transport.transport_cost(s, kept, t=t, eps=eps))
    np.testing.assert_allclose(cost, cost_np(s.astype(np.float64), kept, t, np.float32(eps)), atol=3e-7)
    plan = np.asarray(_transport.transport_plan(s, kept, t=t, eps=eps))
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
