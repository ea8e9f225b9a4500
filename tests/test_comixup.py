"""Co-Mixup: the conformance checks of a k-source method, its energy, its solver's gaps, its errors.

Conformance (partitions of 4 in a batch of 8, 8 x 8 images whose pixels name themselves):
shapes and dtypes kept (float32, uint8, bfloat16 by tracing), every output pixel a pixel of an
input of its partition at the same place, the owners constant on the blocks, label rows the
realised shares' mixture, determinism, jit equal to eager, ``prob = 0`` unmixed, no
recompilation when the numbers change and every number matters, dense label maps mixed per pixel.

The energy is checked against an independent one-hot form of the reference's objective; the
fixed-iteration solver against the exhaustive optimum (40 instances of 3 inputs into 3 outputs on
2 x 2 blocks, seed 0, ``tau = 0``: at least 90 % optimal, mean relative gap below 2 %), and a
solver that stops after its start (``outer`` 1 with one sweep from a random labeling) fails
the same bound.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_errors import no_work  # noqa: F401 (a fixture)

import msda_jax
from msda_jax.masks import _comixup_energy as ce

BATCH, SHAPE, CLASSES, PART = 8, (8, 8), 5, 4
MODES = ("batch", "example")
LABELS = jnp.asarray(np.arange(BATCH) % CLASSES)


def position_images(dtype=jnp.float32):
  """Channel 0: the example, channel 1: the row, channel 2: the column (exact in float32 and uint8)."""
  b, h, w = np.meshgrid(np.arange(BATCH), np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
  return jnp.asarray(np.stack([b, h, w], -1), dtype)


SALIENCY = jnp.asarray(np.random.default_rng(7).gamma(0.5, size=(BATCH, *SHAPE)), jnp.float32)


@functools.cache
def jitted():
  return jax.jit(msda_jax.mix_batch_with_info, static_argnames=("num_classes", "mode"))


def method(**kwargs):
  return msda_jax.CoMixup(part=PART, **{"grid_sizes": (2, 4), **kwargs})


@functools.cache
def run(mode, dtype=jnp.float32, seed=3, prob=1.0):
  images = position_images(dtype)
  out = jitted()(
    jax.random.key(seed), images, LABELS, method(), num_classes=CLASSES, mode=mode, prob=prob, saliency=SALIENCY
  )
  return (images, *out)


@pytest.mark.parametrize("mode", MODES)
def test_outputs_are_their_partitions_pixels_and_rows_their_shares(mode):
  for dtype in (jnp.float32, jnp.uint8):
    images, mixed, targets, info = run(mode, dtype)
    assert mixed.shape == images.shape and mixed.dtype == images.dtype
    assert info.mask.shape == (BATCH, PART, *SHAPE) and info.weight.shape == (BATCH, PART)
    out, masks, partner = np.asarray(mixed).astype(int), np.asarray(info.mask), np.asarray(info.partner)
    np.testing.assert_array_equal(masks.sum(1), 1.0)
    # Each pixel is its own place in an input of the output's partition, the one its mask names.
    rows, cols = np.meshgrid(np.arange(SHAPE[0]), np.arange(SHAPE[1]), indexing="ij")
    assert np.all(out[..., 1] == rows) and np.all(out[..., 2] == cols)
    assert np.all(out[..., 0] // PART == (np.arange(BATCH) // PART)[:, None, None])
    shown = np.take_along_axis(partner, masks.argmax(1).reshape(BATCH, -1), axis=1).reshape(BATCH, *SHAPE)
    np.testing.assert_array_equal(out[..., 0], shown)
    # The partition's inputs in order: source s of row i is row i - s of its partition.
    own = np.arange(BATCH)[:, None]
    np.testing.assert_array_equal(partner, own - own % PART + (own - np.arange(PART)[None]) % PART)
    # Owners are constant on a grid's blocks (2 x 2 or 4 x 4 pixels of 8 x 8).
    assert any(np.all(out[..., 0] == np.repeat(np.repeat(out[:, ::s, ::s, 0], s, 1), s, 2)) for s in (2, 4))
    np.testing.assert_allclose(np.asarray(info.weight), masks.mean(axis=(2, 3)), atol=1e-6)
    onehot = np.eye(CLASSES)[np.asarray(LABELS)]
    expected = np.einsum("bm,bmk->bk", np.asarray(info.weight), onehot[partner])
    np.testing.assert_allclose(np.asarray(targets), expected, atol=1e-6)
    assert (np.asarray(info.weight)[:, 1:] > 0).any()  # outputs do read other inputs
  bf16 = jax.eval_shape(
    lambda k, x: msda_jax.mix_batch(k, x, LABELS, method(), num_classes=CLASSES, saliency=SALIENCY),
    jax.random.key(0),
    position_images(jnp.bfloat16),
  )
  assert bf16[0].dtype == jnp.bfloat16 and bf16[1].dtype == jnp.float32


@pytest.mark.parametrize("mode", MODES)
def test_determinism_jit_eager_and_prob_zero(mode):
  images, *first = run(mode)
  eager = msda_jax.mix_batch_with_info(
    jax.random.key(3), images, LABELS, method(), num_classes=CLASSES, mode=mode, saliency=SALIENCY
  )
  for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(eager), strict=True):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), atol=1e-6)
  assert not np.array_equal(np.asarray(first[0]), np.asarray(run(mode, seed=4)[1]))
  _, mixed, targets, info = run(mode, prob=0.0)
  np.testing.assert_array_equal(np.asarray(mixed), np.asarray(images))
  np.testing.assert_array_equal(np.asarray(targets), np.eye(CLASSES)[np.asarray(LABELS)])
  assert not np.asarray(info.applied).any()


def test_no_recompilation_and_every_number_matters():
  traces = []

  def step(key, m, saliency):
    traces.append(1)
    return msda_jax.mix_batch(key, position_images(), LABELS, m, num_classes=CLASSES, mode="example", saliency=saliency)

  step = jax.jit(step)
  base = step(jax.random.key(5), method(grid_sizes=(4,)), SALIENCY)
  changes = {"beta": 8.0, "eta": 40.0, "tau": 0.0, "prior_alpha": 0.05}
  for field, value in changes.items():
    out = step(jax.random.key(5), method(grid_sizes=(4,), **{field: value}), SALIENCY)
    assert not np.array_equal(np.asarray(base[0]), np.asarray(out[0])), field
  # gamma weighs reuse beyond tau: with tau 0, every reuse.
  outs = [step(jax.random.key(5), method(grid_sizes=(4,), tau=0.0, gamma=g), SALIENCY)[0] for g in (0.0, 20.0)]
  assert not np.array_equal(np.asarray(outs[0]), np.asarray(outs[1])), "gamma"
  # omega weighs distances of the saliency peaks: with gamma large it decides which inputs are reused.
  heavy = dict(grid_sizes=(4,), gamma=50.0, tau=0.0)
  outs = [step(jax.random.key(5), method(**heavy, omega=w), SALIENCY)[0] for w in (0.0, 1.0)]
  assert not np.array_equal(np.asarray(outs[0]), np.asarray(outs[1])), "omega"
  assert len(traces) == 1
  # The saliency decides: reversed maps give other outputs.
  assert not np.array_equal(
    np.asarray(base[0]), np.asarray(step(jax.random.key(5), method(grid_sizes=(4,)), SALIENCY[::-1])[0])
  )


def test_dense_label_maps_move_with_the_pixels():
  images = position_images()
  label_map = jnp.asarray(np.random.default_rng(2).integers(0, CLASSES, (BATCH, *SHAPE)))
  mixed, targets, _ = jitted()(
    jax.random.key(6), images, label_map, method(), num_classes=CLASSES, mode="example", saliency=SALIENCY
  )
  out = np.asarray(mixed).astype(int)
  source = np.asarray(label_map)[out[..., 0], out[..., 1], out[..., 2]]
  np.testing.assert_allclose(np.asarray(targets), np.eye(CLASSES)[source], atol=1e-6)


def reference_energy(labels, cost, compat, beta, gamma):
  """The reference's objective from one-hot labelings, in numpy float64 (an independent form)."""
  labels, cost, compat = np.asarray(labels), np.asarray(cost, np.float64), np.asarray(compat, np.float64)
  m, n, _ = cost.shape
  z = np.eye(m)[labels]  # [m', n, n, m]
  counts = z.reshape(len(labels), -1, m).sum(1)
  unary = np.sum(np.moveaxis(cost, 0, -1)[None] * z)
  smooth = beta / n**2 / 2 * (((z[:, :-1] - z[:, 1:]) ** 2).sum() + ((z[:, :, :-1] - z[:, :, 1:]) ** 2).sum())
  total = counts.sum(0)
  diverse = gamma / n**2 * (total @ compat @ total - np.einsum("ju,uv,jv->", counts, compat, counts))
  return unary + smooth + diverse


def instance(rng, m=3, n=2, side=8):
  s = rng.gamma(0.5, size=(m, side, side)).astype(np.float32)
  log_prior = np.log(rng.dirichlet(2.0 * np.ones(m)) + 1e-8)
  cost = ce.unary_costs(ce.block_saliency(s, n), log_prior, 0.05)
  return cost, ce.compatibility(s, 0.001)


def test_energy_matches_the_reference_objective():
  rng = np.random.default_rng(1)
  for _ in range(5):
    cost, compat = instance(rng, m=4, n=4, side=16)
    labels = rng.integers(0, 4, (3, 4, 4))
    got = float(ce.energy(labels, cost, compat, beta=0.32, gamma=1.0))
    assert got == pytest.approx(reference_energy(labels, cost, compat, 0.32, 1.0), rel=1e-5, abs=1e-5)


def gaps(solver, instances=40):
  rng = np.random.default_rng(0)
  kw = {"beta": 0.32, "gamma": 1.0}
  exhaustive = jax.jit(functools.partial(ce.solve_exhaustive, outputs=3, **kw))
  out = []
  for _ in range(instances):
    cost, compat = instance(rng)
    start = jnp.asarray(rng.integers(0, 3, (3, 2, 2)))
    best = float(ce.energy(exhaustive(cost, compat), cost, compat, **kw))
    got = float(ce.energy(solver(cost, compat, start), cost, compat, **kw))
    assert got >= best - 1e-5
    out.append((got - best) / abs(best))
  return np.asarray(out)


def test_solver_reaches_the_exhaustive_optimum_and_a_lazy_one_does_not():
  kw = {"beta": 0.32, "gamma": 1.0, "tau": 0.0}
  solver = jax.jit(functools.partial(ce.solve, **kw))
  found = gaps(solver)
  assert np.mean(found <= 1e-6) >= 0.9 and found.mean() < 0.02, (np.mean(found <= 1e-6), found.mean())
  lazy = jax.jit(functools.partial(ce.solve, **kw, outer=1, rounds=1, sweeps=1, resolve=False))
  weak = gaps(lambda c, a, s: lazy(c, a, s))
  assert np.mean(weak <= 1e-6) < 0.9 or weak.mean() >= 0.02


def test_exact_coordinate_steps_never_raise_the_energy():
  """With ``tau = 0`` and no parting cost each output's update is an exact coordinate step."""
  rng = np.random.default_rng(3)
  kw = {"beta": 0.32, "gamma": 2.0}
  for outer in (1, 2):
    solver = jax.jit(functools.partial(ce.solve, **kw, tau=0.0, outer=outer, resolve=False))
    for _ in range(5):
      cost, compat = instance(rng, m=4, n=4, side=16)
      start = jnp.asarray(rng.integers(0, 4, (4, 4, 4)))
      before = float(ce.energy(start, cost, compat, **kw))
      assert float(ce.energy(solver(cost, compat, start), cost, compat, **kw)) <= before + 1e-5


def test_coinciding_parts_twins_as_the_reference():
  labels = jnp.asarray([[[0, 1], [1, 1]], [[1, 0], [0, 0]], [[2, 2], [2, 2]], [[2, 2], [2, 2]]])
  cost = np.asarray(ce.coinciding(labels, 3))
  expected = np.zeros((4, 3))
  expected[0, 0] = 1.0  # outputs 0 and 1 both use {0, 1}: the first gets input 0, the second input 1
  expected[1, 1] = 1.0  # outputs 2 and 3 use one input only: left alone
  np.testing.assert_array_equal(cost, expected)


def test_sample_draws_one_partition():
  m = method(grid_sizes=(4,))
  s = m.sample(jax.random.key(0), shape=SHAPE, data=SALIENCY[:PART])
  assert s.mask.shape == (PART, PART, *SHAPE) and s.owner.shape == (PART, *SHAPE)
  np.testing.assert_allclose(np.asarray(s.weight).sum(1), 1.0, atol=1e-6)
  np.testing.assert_array_equal(np.asarray(s.mask).argmax(1), np.asarray(s.owner))


X = jnp.ones((8, 8, 8, 3))
Y = jnp.arange(8) % 4
S = jnp.ones((8, 8, 8))


@pytest.mark.parametrize(
  "build, pattern",
  [
    (lambda: msda_jax.CoMixup(part=1), r"part must be an int >= 2"),
    (lambda: msda_jax.CoMixup(grid_sizes=()), r"grid_sizes must be a non-empty tuple"),
    (lambda: msda_jax.CoMixup(outer=0), r"outer must be an int >= 1"),
    (lambda: msda_jax.CoMixup(omega=1.5), r"omega must lie in \[0.0, 1.0\]"),
    (lambda: msda_jax.CoMixup(prior_alpha=0.0), r"prior_alpha must be > 0"),
    (lambda: msda_jax.CoMixup(beta=-1.0), r"beta must be >= 0"),
    (lambda: msda_jax.CoMixup(part=4).sample(jax.random.key(0), shape=(8, 8)), r"pass data=saliency \[part, \*S\]"),
    (lambda: msda_jax.CoMixup().sample(jax.random.key(0), shape=(8, 8), lam=0.5), r"lam cannot be given to CoMixup"),
    (lambda: ce.solve_exhaustive(jnp.zeros((3, 4, 4)), jnp.eye(3), 3, beta=0.0, gamma=0.0), r"at most"),
  ],
)
def test_bad_construction_and_calls(build, pattern):
  with pytest.raises(ValueError, match=pattern):
    build()


@pytest.mark.parametrize(
  "kwargs, pattern",
  [
    ({"method": msda_jax.CoMixup(part=3), "saliency": S}, r"part=3 must divide the block size 8"),
    ({"method": msda_jax.CoMixup(part=4), "saliency": S, "groups": 4}, r"part=4 must divide the block size 2"),
    ({"method": msda_jax.CoMixup(part=4, grid_sizes=(3,)), "saliency": S}, r"grid_sizes must divide both"),
    ({"method": msda_jax.CoMixup(part=4), "saliency": S, "pairing": "permute"}, r"pairing must be one of \('roll',\)"),
    ({"method": msda_jax.CoMixup(part=4)}, r"CoMixup reads the images: pass saliency"),
    ({"method": msda_jax.CoMixup(part=4), "saliency": S[:, :4]}, r"saliency must have shape"),
    ({"method": msda_jax.CoMixup(part=4), "saliency": S.at[0, 0, 0].set(jnp.nan)}, r"saliency must be >= 0 and finite"),
  ],
)
@pytest.mark.usefixtures("no_work")
def test_bad_batch_calls_raise_before_any_work(kwargs, pattern):
  with pytest.raises(ValueError, match=pattern):
    msda_jax.mix_batch(jax.random.key(0), X, Y, num_classes=4, **kwargs)
