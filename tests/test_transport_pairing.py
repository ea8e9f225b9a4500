"""Optimal-transport pairing (k-mixup): exact matchings, partners in the next chunk, errors.

The matching of every chunk pair is compared with scipy's ``linear_sum_assignment`` on the same
squared distances (random images, seeds 0-4, k = 1 ... 32): the total costs agree to float32
rounding, and the ``"roll"`` partners (a fixed matching) cost more on some chunk, so the check can
fail. The solver alone (``_assignment``) is checked the same way on random and on tied integer
costs (many optima), where only the total is defined. End to end: the ``Mixer`` mixes each
example with its matched partner, under ``jit``, inside ``shard_map`` (each device matches its
own shard), and refuses a chunk that does not fit the block.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P
from scipy.optimize import linear_sum_assignment
from test_errors import no_work  # noqa: F401 (a fixture)

import msda_jax
from msda_jax import _assignment, transport_pairing


def chunk_costs(images, order, groups, k):
  """Per (group, chunk): the cost of ``order``'s matching and scipy's optimum."""
  x = np.asarray(images, np.float64).reshape(groups, -1, k, int(np.prod(images.shape[1:])))
  chunks = x.shape[1]
  ours, best = [], []
  for g in range(groups):
    for c in range(chunks):
      a, b = x[g, c], x[g, (c + 1) % chunks]
      cost = ((a[:, None] - b[None]) ** 2).sum(-1)
      match = np.asarray(order)[g, c * k : (c + 1) * k] - ((c + 1) % chunks) * k
      assert sorted(match.tolist()) == list(range(k)), "partners outside the next chunk, or repeated"
      rows, cols = linear_sum_assignment(cost)
      ours.append(cost[np.arange(k), match].sum())
      best.append(cost[rows, cols].sum())
  return np.asarray(ours), np.asarray(best)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 6, 16, 32])
def test_matchings_are_optimal(k):
  for seed in range(5):
    images = jnp.asarray(np.random.default_rng(seed).normal(size=(2 * 3 * k, 4, 4, 3)), jnp.float32)
    order = transport_pairing.transport_order(images, 2, k)
    ours, best = chunk_costs(images, order, 2, k)
    np.testing.assert_allclose(ours, best, rtol=1e-5)
    if k > 1:
      roll = np.tile(((np.arange(3)[:, None] + 1) % 3 * k + np.arange(k)[None, :]).reshape(-1), (2, 1))
      fixed, _ = chunk_costs(images, roll, 2, k)
      assert (fixed > best + 1e-3).any(), "a fixed matching passed as optimal"


@pytest.mark.parametrize("costs", ["normal", "tied integers"])
def test_the_solver_is_optimal_on_every_instance(costs):
  # seed 11, 64 instances each of k = 5 and k = 12; the tied ones have entries in {0, 1, 2}.
  rng = np.random.default_rng(11)
  solve = jax.jit(jax.vmap(_assignment.assignment))
  for k in (5, 12):
    shape = (64, k, k)
    cost = rng.normal(size=shape) ** 2 if costs == "normal" else rng.integers(0, 3, size=shape)
    cost = cost.astype(np.float32)
    ours = np.asarray(solve(jnp.asarray(cost)))
    for c, s in zip(cost.astype(np.float64), ours, strict=True):
      assert sorted(s.tolist()) == list(range(k)), "not a permutation"
      np.testing.assert_allclose(c[np.arange(k), s].sum(), c[linear_sum_assignment(c)].sum(), rtol=1e-6, atol=1e-6)
    # the identity (a fixed answer) is not optimal on these instances: the check can fail.
    assert any(c.trace() > c[linear_sum_assignment(c)].sum() + 0.5 for c in cost.astype(np.float64))


@pytest.mark.parametrize("mode", ["batch", "example"])
def test_the_mixer_mixes_each_example_with_its_match(mode):
  images = jnp.asarray(np.random.default_rng(7).normal(size=(16, 6, 6, 3)), jnp.float32)
  labels = jnp.arange(16) % 5
  mix = jax.jit(
    functools.partial(
      msda_jax.mix_batch_with_info, num_classes=5, mode=mode, pairing="transport", transport_k=4, groups=2
    )
  )
  mixed, _, info = mix(jax.random.key(0), images, labels, msda_jax.Mixup())
  expected = transport_pairing.transport_order(images, 2, 4) + jnp.asarray([[0], [8]])
  np.testing.assert_array_equal(np.asarray(info.partner), np.asarray(expected).reshape(-1))
  lam = np.asarray(info.lam).reshape(-1, 1, 1, 1)
  np.testing.assert_allclose(np.asarray(mixed), lam * images + (1 - lam) * images[np.asarray(info.partner)], atol=1e-5)
  assert np.asarray(info.applied).all()  # nobody is their own partner


def test_inside_shard_map_each_device_matches_its_shard():
  devices = jax.devices()[:4]
  mesh = jax.make_mesh((4,), ("data",), devices=devices)
  images = jnp.asarray(np.random.default_rng(8).normal(size=(32, 4, 4, 3)), jnp.float32)
  labels = jnp.arange(32) % 5
  mixer = msda_jax.Mixer(msda_jax.CutMix(), num_classes=5, pairing="transport", transport_k=2)
  sharded = jax.jit(
    jax.shard_map(
      lambda x, y: mixer(jax.random.key(1), x, y), mesh=mesh, in_specs=(P("data"), P("data")), out_specs=P("data")
    )
  )
  sharding = jax.sharding.NamedSharding(mesh, P("data"))
  out = np.asarray(sharded(jax.device_put(images, sharding), jax.device_put(labels, sharding))[0])
  for d in range(4):
    alone = mixer(jax.random.key(1), images[8 * d : 8 * (d + 1)], labels[8 * d : 8 * (d + 1)])[0]
    np.testing.assert_allclose(out[8 * d : 8 * (d + 1)], np.asarray(alone), atol=1e-6)


@pytest.mark.parametrize(
  "options, pattern",
  [
    ({"transport_k": 0}, r"transport_k must be a positive int"),
    ({"transport_k": 2.0}, r"transport_k must be a positive int"),
    ({"transport_k": 4, "groups": 2}, r"transport_k=4 must divide the block size 4 \(batch / groups\) at least twice"),
    ({"transport_k": 3}, r"transport_k=3 must divide the block size 8"),
  ],
)
@pytest.mark.usefixtures("no_work")
def test_bad_chunks_raise_before_any_work(options, pattern):
  with pytest.raises(ValueError, match=pattern):
    msda_jax.mix_batch(jax.random.key(0), jnp.ones((8, 4, 4, 3)), jnp.arange(8) % 5, msda_jax.Mixup(), num_classes=5,
                       pairing="transport", **options)  # fmt: skip


def test_k_source_methods_refuse_the_transport_pairing():
  with pytest.raises(ValueError, match=r"pairing must be one of \('roll', 'permute'\)"):
    msda_jax.Mixer(msda_jax.RICAP(), num_classes=5, pairing="transport")


def test_the_experiment_config_checks_the_chunk():
  from experiments import train
  from experiments.configs import default

  config = default.get_config()
  config.method = "mixup"
  config.mix_pairing = "transport"
  config.mix_transport_k = 8
  config.batch_size = 8
  with pytest.raises(ValueError, match=r"^mix_transport_k=8 must divide the block size 8"):
    train.check_config(config, 1)
