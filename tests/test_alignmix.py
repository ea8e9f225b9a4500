"""AlignMix: the Sinkhorn plan, the alignment in the batch layer, the train step at the last stage, errors.

The plan is checked against an independent float64 numpy Sinkhorn (same cost, marginals and
steps; largest difference 1e-5 of the assignment) and by its marginals; a partner that is the
image with its positions permuted is aligned back onto the image (the assignment recovers the
permutation, so the mix is the image); the mixed features are ``lam A + (1 - lam) R A'`` or
``lam R^T A + (1 - lam) A'`` with the draw's direction, and both directions occur; the train
step mixes the small CNN's last stage (layer -1) and its gradient reaches the partner's
features.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from scipy.special import logsumexp
from test_errors import no_work  # noqa: F401 (a fixture)

import msda_jax
from msda_jax.masks import _alignmix
from msda_jax.train import get_model, hidden, init_train_state, make_train_step


def numpy_sinkhorn(x, y, eps, iterations):
  """Log-domain Sinkhorn in float64, written apart from the library's."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
  u, v = np.zeros(len(x)), np.zeros(len(y))
  for _ in range(iterations):
    u = eps * (np.log(1 / len(x) + 1e-8) - logsumexp((-cost + u[:, None] + v[None]) / eps, axis=1)) + u
    v = eps * (np.log(1 / len(y) + 1e-8) - logsumexp((-cost + u[:, None] + v[None]) / eps, axis=0)) + v
  return np.exp((-cost + u[:, None] + v[None]) / eps)


def test_plan_matches_an_independent_sinkhorn_and_its_marginals():
  rng = np.random.default_rng(0)
  for eps, iterations in ((0.5, 30), (0.1, 100)):
    x, y = rng.normal(size=(9, 4)) * 0.5, rng.normal(size=(9, 4)) * 0.5
    ours = np.asarray(
      _alignmix.sinkhorn_plan(jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32), eps, iterations)
    )
    theirs = numpy_sinkhorn(x, y, eps, iterations)
    np.testing.assert_allclose(9 * ours, 9 * theirs, atol=1e-5)
    np.testing.assert_allclose(ours.sum(0), 1 / 9, atol=1e-5)  # the columns, exact after the last step
    np.testing.assert_allclose(ours.sum(1), 1 / 9, atol=2e-3)


def test_a_permuted_copy_is_aligned_back():
  rng = np.random.default_rng(1)
  features = jnp.asarray(rng.normal(size=(2, 4, 4, 8)), jnp.float32)
  perm = rng.permutation(16)
  partner = features.reshape(2, 16, 8)[:, perm].reshape(2, 4, 4, 8)
  r = _alignmix.assignments(features, partner, 0.1, 100)
  aligned = np.einsum("bpq,bqc->bpc", np.asarray(r), np.asarray(partner).reshape(2, 16, 8))
  np.testing.assert_allclose(aligned, np.asarray(features).reshape(2, 16, 8), atol=1e-4)
  # Without the alignment the mix would not be the image.
  assert np.abs(np.asarray(partner) - np.asarray(features)).max() > 1.0


@functools.cache
def batch_run(mode, seed):
  rng = np.random.default_rng(2)
  x = jnp.asarray(rng.normal(size=(6, 4, 3, 5)), jnp.float32)
  out = jax.jit(msda_jax.mix_batch_with_info, static_argnames=("num_classes", "mode"))(
    jax.random.key(seed), x, jnp.arange(6) % 3, msda_jax.AlignMix(), num_classes=3, mode=mode
  )
  return x, *out


@pytest.mark.parametrize("mode", ("batch", "example"))
def test_mix_is_lam_times_the_image_and_the_aligned_partner(mode):
  directions = set()
  for seed in range(6):
    x, mixed, targets, info = batch_run(mode, seed)
    lam, partner = np.asarray(info.lam), np.asarray(info.partner)
    r = np.asarray(_alignmix.assignments(x, x[partner], 0.1, 100))
    flat = np.asarray(x).reshape(6, 12, 5)
    image_moved = np.einsum("bqp,bqc->bpc", r, flat)  # R^T A
    partner_moved = np.einsum("bpq,bqc->bpc", r, flat[partner])  # R A'
    one = lam[:, None, None]
    first = one * flat + (1 - one) * partner_moved
    second = one * image_moved + (1 - one) * flat[partner]
    got = np.asarray(mixed).reshape(6, 12, 5)
    for b in range(6):
      which = [np.allclose(got[b], c[b], atol=1e-4) for c in (first, second)]
      assert any(which), (mode, seed, b)
      directions.add(which.index(True))
    np.testing.assert_allclose(np.asarray(info.weight), lam, atol=1e-6)
    onehot = np.eye(3)[np.arange(6) % 3]
    np.testing.assert_allclose(np.asarray(targets), one[:, 0] * onehot + (1 - one[:, 0]) * onehot[partner], atol=1e-6)
  assert directions == {0, 1}


def test_no_recompilation_and_the_numbers_matter():
  traces = []
  x = jnp.asarray(np.random.default_rng(3).normal(size=(4, 3, 3, 4)), jnp.float32)

  @jax.jit
  def step(method):
    traces.append(1)
    return msda_jax.mix_batch(jax.random.key(0), x, jnp.arange(4), method, num_classes=4)[0]

  outs = [step(msda_jax.AlignMix(**kw)) for kw in ({}, {"eps": 2.0}, {"alpha": 0.3})]
  assert len(traces) == 1
  assert not np.allclose(np.asarray(outs[0]), np.asarray(outs[1]))
  assert not np.allclose(np.asarray(outs[0]), np.asarray(outs[2]))


def test_train_step_mixes_the_last_stage():
  model = get_model("small_cnn", num_classes=4, rngs=nnx.Rngs(0), width=4)
  assert hidden.resolved_layers((-1,), model.num_stages) == (model.num_stages,)
  mixer = msda_jax.Mixer(msda_jax.AlignMix(), num_classes=4)
  hook, targets = hidden.hidden_mixing(mixer, jax.random.key(0), jnp.arange(4), model.num_stages)
  x = jnp.asarray(np.random.default_rng(4).uniform(size=(4, 8, 8, 3)), jnp.float32)
  model.eval()
  clean = hidden.features_at(model, x, -1)
  seen = {}

  def spy(index, h):
    out = hook(index, h)
    seen[index] = (h, out)
    return out

  model(x, mix=spy)
  before, after = seen[model.num_stages]
  np.testing.assert_allclose(np.asarray(before), np.asarray(clean), atol=1e-6)
  assert not np.allclose(np.asarray(after), np.asarray(before))
  assert all(np.array_equal(np.asarray(a), np.asarray(b)) for i, (a, b) in seen.items() if i != model.num_stages)
  assert targets().shape == (4, 4)
  tx = optax.sgd(0.1)
  graphdef, state, opt = init_train_state(model, tx)
  step = jax.jit(make_train_step(graphdef=graphdef, tx=tx, mixer=mixer, weight_decay=0.0))
  _, _, metrics = step(state, opt, {"image": x, "label": jnp.arange(4)}, jax.random.key(1))
  assert np.isfinite(float(metrics["loss"])) and float(metrics["grad_norm"]) > 0


@pytest.mark.parametrize(
  "build, pattern",
  [
    (lambda: msda_jax.AlignMix(eps=0.0), r"eps must be > 0"),
    (lambda: msda_jax.AlignMix(iterations=0), r"iterations must be an int >= 1"),
    (lambda: msda_jax.AlignMix(layers=(-2,)), r"layers must be a non-empty tuple of ints >= -1"),
    (lambda: hidden.resolved_layers((-1,), None), r"-1 names the last stage"),
    (lambda: msda_jax.AlignMix(layers=(5,)).check_model(3), r"no layer 5"),
  ],
)
def test_bad_construction(build, pattern):
  with pytest.raises(ValueError, match=pattern):
    build()


def test_dtypes_are_kept():
  x = np.random.default_rng(5).uniform(0, 255, (4, 5, 6, 3))
  out = msda_jax.mix_batch(
    jax.random.key(0), jnp.asarray(np.round(x), jnp.uint8), jnp.arange(4), msda_jax.AlignMix(), num_classes=4
  )
  assert out[0].dtype == jnp.uint8 and out[1].dtype == jnp.float32
  bf16 = jax.eval_shape(
    lambda k, v: msda_jax.mix_batch(k, v, jnp.arange(4), msda_jax.AlignMix(), num_classes=4),
    jax.random.key(0),
    jnp.asarray(x / 255, jnp.bfloat16),
  )
  assert bf16[0].dtype == jnp.bfloat16 and bf16[1].dtype == jnp.float32
