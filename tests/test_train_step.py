"""The pure train and eval steps of ``msda_jax.train.step`` and the optimiser of ``msda_jax.train.optim``.

One jitted step per model at tiny width; the functional contract (purity, structure kept,
donation, no retrace when the mixer's hyper-parameters change, the step folded into the key);
mixing inside the step; the weight-decay term; the mesh-axis averaging under ``jax.shard_map``;
and a small network that fits random labels.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from model_options import tiny

import msda_jax
from msda_jax.train import (
  OptimizerState,
  init_train_state,
  l2_penalty,
  make_eval_step,
  make_optimizer,
  make_schedule,
  make_train_step,
  models,
)

NUM_CLASSES = 5
# Tests compile many small programs: XLA's fast path keeps them quick on CPU.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


def _jit(fun, **kwargs):
  return jax.jit(fun, compiler_options=FAST_COMPILE, **kwargs)


def _rngs(seed=0):
  return nnx.Rngs(jax.random.key(seed, impl="rbg"))


def _batch(seed, shape, num_classes=NUM_CLASSES):
  key_x, key_y = jax.random.split(jax.random.key(seed))
  return {"image": jax.random.normal(key_x, shape), "label": jax.random.randint(key_y, shape[:1], 0, num_classes)}


def _tree_allclose(a, b, **kw):
  return all(np.allclose(x, y, **kw) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def _opt_state(tx, state):
  return OptimizerState(jnp.zeros((), jnp.int32), tx.init(nnx.split_state(state, nnx.Param, ...)[0]))


@pytest.fixture(scope="module")
def small_cnn():
  """A tiny SmallCNN on 28x28x1 images, its graph and initial state."""
  model = models.SmallCNN(NUM_CLASSES, width=4, in_channels=1, rngs=_rngs())
  return nnx.split(model)


@pytest.mark.parametrize("name", sorted(models.MODELS))
def test_one_jitted_step_per_model_updates_params_and_statistics(name):
  shape = (4, 28, 28, 1) if name == "small_cnn" else (4, 32, 32, 3)
  model = models.get_model(name, num_classes=NUM_CLASSES, rngs=_rngs(), in_channels=shape[-1], **tiny(name))
  tx = make_optimizer(learning_rate=0.1, total_steps=10)
  graphdef, state, opt = init_train_state(model, tx)
  # Mixing is tested on the small network below; here the step's model-specific part.
  step = make_train_step(graphdef=graphdef, tx=tx, mixer=None, weight_decay=5e-4)
  jitted = _jit(step, donate_argnums=(0, 1))
  before = jax.tree.map(np.array, state)
  structure = jax.tree.structure((state, opt))

  new_state, new_opt, metrics = jitted(state, opt, _batch(0, shape), jax.random.key(0))

  assert jax.tree.structure((new_state, new_opt)) == structure  # donation-friendly
  assert int(new_opt.step) == 1
  assert sorted(metrics) == ["accuracy", "grad_norm", "loss", "weight_decay_loss"]
  assert all(np.isfinite(v) and v.shape == () for v in metrics.values())
  params_before, stats_before = nnx.split_state(before, nnx.Param, ...)
  params_after, stats_after = nnx.split_state(new_state, nnx.Param, ...)
  pairs = zip(jax.tree.leaves(params_before), jax.tree.leaves(params_after), strict=True)
  unchanged = [i for i, (a, b) in enumerate(pairs) if np.allclose(a, b)]
  assert not unchanged, f"parameters {unchanged} did not change"
  if jax.tree.leaves(stats_before):  # the ViTs have no BatchNorm statistics
    assert not _tree_allclose(stats_before, stats_after)


def test_small_cnn_fits_random_labels():
  """64 random 28x28x1 images with random labels of 10 classes, full batch, 30 steps (seed 0)."""
  model = models.SmallCNN(10, width=16, in_channels=1, rngs=_rngs())
  tx = make_optimizer(learning_rate=0.1, total_steps=30, schedule="constant")
  graphdef, state, opt = init_train_state(model, tx)
  step = make_train_step(graphdef=graphdef, tx=tx, mixer=None, weight_decay=5e-4)
  step = _jit(step, donate_argnums=(0, 1))
  batch = _batch(0, (64, 28, 28, 1), num_classes=10)
  losses = []
  for _ in range(30):
    state, opt, metrics = step(state, opt, batch, jax.random.key(0))
    losses.append(float(metrics["loss"]))
  assert np.all(np.isfinite(losses))
  assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5]), losses


def test_mixing_happens_inside_the_step(small_cnn):
  graphdef, state = small_cnn
  tx = optax.sgd(0.1)
  opt = _opt_state(tx, state)
  cutmix = msda_jax.Mixer(msda_jax.CutMix(), num_classes=NUM_CLASSES)
  step = _jit(make_train_step(graphdef=graphdef, tx=tx, mixer=cutmix, weight_decay=0.0))
  batch, key = _batch(1, (8, 28, 28, 1)), jax.random.key(3)

  mixed, _, mixed_metrics = step(state, opt, batch, key, cutmix)
  plain, _, plain_metrics = step(state, opt, batch, key, None)
  never, _, never_metrics = step(
    state, opt, batch, key, msda_jax.Mixer(msda_jax.CutMix(), num_classes=NUM_CLASSES, prob=0.0)
  )

  assert not _tree_allclose(mixed, plain)
  assert float(mixed_metrics["grad_norm"]) != pytest.approx(float(plain_metrics["grad_norm"]))
  # A mixer that never mixes is the no-mixing step: the mixer is the only difference.
  assert _tree_allclose(never, plain, rtol=1e-5, atol=1e-6)
  assert float(never_metrics["loss"]) == pytest.approx(float(plain_metrics["loss"]), rel=1e-5)


def test_step_is_pure_folds_the_step_into_the_key_and_does_not_retrace(small_cnn):
  graphdef, state = small_cnn
  tx = optax.sgd(0.1)
  opt = _opt_state(tx, state)
  step = make_train_step(graphdef=graphdef, tx=tx, mixer=None, weight_decay=5e-4)
  traces = []

  @_jit
  def counted(state, opt, batch, key, mixer):
    traces.append(1)
    return step(state, opt, batch, key, mixer)

  batch, key = _batch(2, (8, 28, 28, 1)), jax.random.key(4)
  mixer = msda_jax.Mixer(msda_jax.HMix(alpha=1.0, r=0.5), num_classes=NUM_CLASSES)
  first = counted(state, opt, batch, key, mixer)
  again = counted(state, opt, batch, key, mixer)
  for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(again), strict=True):
    np.testing.assert_array_equal(a, b)  # same inputs, same outputs, bit for bit
  other = counted(state, opt, batch, key, msda_jax.Mixer(msda_jax.HMix(alpha=0.2, r=0.9), num_classes=NUM_CLASSES))
  later = counted(state, opt._replace(step=jnp.ones((), jnp.int32)), batch, key, mixer)
  assert len(traces) == 1  # new alpha, r and step counter: one compiled program
  assert not _tree_allclose(first[0], other[0])
  assert not _tree_allclose(first[0], later[0])  # the step number changes the mixing key


def test_weight_decay_is_an_l2_term_on_kernels_only(small_cnn):
  graphdef, state = small_cnn
  params = nnx.split_state(state, nnx.Param, ...)[0]
  kernels = [v for path, v in jax.tree_util.tree_flatten_with_path(params)[0] if "kernel" in str(path)]
  assert len(kernels) == 4 and len(jax.tree.leaves(params)) == 4 + 2 * 3 + 1  # BN scales, biases, head bias
  expected = 0.5 * sum(float(jnp.sum(k**2)) for k in kernels)
  assert float(l2_penalty(params)) == pytest.approx(expected, rel=1e-6)

  # With plain SGD the decayed step differs from the undecayed one by -lr * wd * w on kernels only.
  lr, wd = 0.1, 0.01
  tx = optax.sgd(lr)
  opt = _opt_state(tx, state)
  batch, key = _batch(5, (8, 28, 28, 1)), jax.random.key(0)
  run = lambda wd: _jit(make_train_step(graphdef=graphdef, tx=tx, mixer=None, weight_decay=wd))
  decayed, _, metrics = run(wd)(state, opt, batch, key)
  plain, _, _ = run(0.0)(state, opt, batch, key)
  assert float(metrics["weight_decay_loss"]) == pytest.approx(wd * expected, rel=1e-6)
  flat = lambda tree: dict(jax.tree_util.tree_flatten_with_path(nnx.split_state(tree, nnx.Param, ...)[0])[0])
  old, new_decayed, new_plain = flat(state), flat(decayed), flat(plain)
  for path, w in old.items():
    shift = -lr * wd * np.asarray(w) if "kernel" in str(path) else np.zeros_like(w)
    np.testing.assert_allclose(new_decayed[path] - new_plain[path], shift, atol=1e-6, err_msg=str(path))


def test_shard_map_averages_over_the_mesh_axis(small_cnn):
  """Two devices holding the same local batch must reproduce the one-device step exactly."""
  graphdef, state = small_cnn
  tx = make_optimizer(learning_rate=0.1, total_steps=10)
  opt = _opt_state(tx, state)
  mesh = jax.make_mesh((2,), ("data",), devices=jax.devices()[:2])
  local = _batch(6, (4, 28, 28, 1))
  doubled = jax.device_put(jax.tree.map(lambda x: jnp.concatenate([x, x]), local), NamedSharding(mesh, P("data")))
  key = jax.random.key(7)

  def sharded(mixer, check_vma=True):
    step = make_train_step(graphdef=graphdef, tx=tx, mixer=mixer, weight_decay=5e-4, axis_name="data")
    specs = (P(), P(), P("data"), P())
    mapped = jax.shard_map(step, mesh=mesh, in_specs=specs, out_specs=(P(), P(), P()), check_vma=check_vma)
    return _jit(mapped)

  single = make_train_step(graphdef=graphdef, tx=tx, mixer=None, weight_decay=5e-4)
  one = _jit(single)(state, opt, local, key)
  two = sharded(None)(state, opt, doubled, key)
  assert _tree_allclose(one, two, rtol=1e-5, atol=1e-6)
  # Without the replication checks each device differentiates its own loss; the pmean averages.
  assert _tree_allclose(one, sharded(None, check_vma=False)(state, opt, doubled, key), rtol=1e-5, atol=1e-6)

  mixer = msda_jax.Mixer(msda_jax.GMix(), num_classes=NUM_CLASSES, groups=1)
  new_state, new_opt, metrics = sharded(mixer)(state, opt, doubled, key)
  assert int(new_opt.step) == 1 and all(np.isfinite(v) for v in metrics.values())
  # Each device folds its index into the key: the two halves were mixed differently.
  assert not _tree_allclose(new_state, two[0])

  eval_step = make_eval_step(graphdef=graphdef, axis_name="data")
  mapped = jax.shard_map(eval_step, mesh=mesh, in_specs=(P(), P("data")), out_specs=P())
  totals = _jit(mapped)(state, doubled)
  single = make_eval_step(graphdef=graphdef)(state, local)
  assert float(totals["count"]) == 8.0
  assert float(totals["correct"]) == 2 * float(single["correct"])


def test_eval_step_sums_over_unmasked_examples(small_cnn):
  graphdef, state = small_cnn
  batch = _batch(8, (6, 28, 28, 1))
  eval_step = _jit(make_eval_step(graphdef=graphdef))
  masked = eval_step(state, {**batch, "mask": jnp.array([1, 1, 1, 0, 0, 0])})
  model = nnx.merge(graphdef, state)
  model.eval()
  logits = model(batch["image"][:3])
  labels = batch["label"][:3]
  assert float(masked["count"]) == 3.0
  assert float(masked["correct"]) == float(jnp.sum(jnp.argmax(logits, -1) == labels))
  expected = float(jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, labels)))
  assert float(masked["loss"]) == pytest.approx(expected, rel=1e-5)


def test_optimizer_schedules():
  cosine = make_schedule(learning_rate=0.2, total_steps=100)
  assert float(cosine(0)) == pytest.approx(0.2) and float(cosine(100)) == pytest.approx(0.0, abs=1e-7)
  warm = make_schedule(learning_rate=0.2, total_steps=100, warmup_steps=10)
  assert float(warm(0)) == 0.0 and float(warm(10)) == pytest.approx(0.2)
  step = make_schedule(learning_rate=0.1, total_steps=300, schedule="step", boundaries=(100, 200), warmup_steps=5)
  assert [round(float(step(s)), 6) for s in (50, 150, 250)] == [0.1, 0.01, 0.001]
  with pytest.raises(ValueError, match="schedule"):
    make_schedule(learning_rate=0.1, total_steps=10, schedule="linear")
  with pytest.raises(ValueError, match="warmup_steps"):
    make_schedule(learning_rate=0.1, total_steps=10, warmup_steps=10)
  # Nesterov SGD with momentum 0.9: the first update is -lr * (1 + 0.9) * g.
  tx = make_optimizer(learning_rate=0.1, total_steps=10, schedule="constant")
  grads = {"w": jnp.array([1.0, -2.0])}
  updates, _ = tx.update(grads, tx.init(grads))
  np.testing.assert_allclose(updates["w"], [-0.19, 0.38], rtol=1e-6)
