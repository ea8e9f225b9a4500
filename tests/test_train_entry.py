"""The training entry point's parts: the jitted step with the mixer as a traced argument, the
``TrainState`` and its checkpoints, and the module-level flags of ``experiments.train``.

The step runs under ``jax.shard_map`` on 2 of the 8 fake CPU devices, at width 4 on 8 random
28 x 28 x 1 images, as ``experiments.train`` builds it.
"""

import functools
import os
import subprocess
import sys
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl import app, flags
from flax import nnx

from experiments import train
from experiments.configs import mnist_compare
from msda_jax.data.transforms import normalize
from msda_jax.train import TrainState, checkpoint, make_optimizer, parallel
from msda_jax.train.step import make_train_step

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "experiments" / "configs" / "mnist_compare.py"
TINY = {"model_width": 4, "batch_size": 8, "mix_mode": "example"}
CLI_SECONDS = 300  # a guard against hangs: the failing command imports JAX and stops at the flags


def _config(method, prob):
  config = mnist_compare.get_config("mixup,0")
  config.update({**TINY, "method": method, "mix_prob": prob})
  return config


def _batch(mesh, seed=0):
  rng = np.random.default_rng(seed)
  local = {"image": rng.integers(0, 256, (8, 28, 28, 1), dtype=np.uint8), "label": rng.integers(0, 10, 8)}
  return parallel.global_batch(local, mesh)


def _max_difference(a, b):
  pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
  return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))) for x, y in pairs)


def test_sharded_step_traces_once_while_the_mixer_alpha_and_prob_change(monkeypatch):
  # Every pure step the entry point builds may be traced once: a mixer closed over (a new step
  # per mixer) or static (a new trace per value) fails here; a mixer ignored gives equal updates.
  chex.clear_trace_counter()
  monkeypatch.setattr(train, "make_train_step", lambda **kw: chex.assert_max_traces(make_train_step(**kw), n=1))
  mesh = parallel.make_mesh(2)
  first, second = _config("mixup(alpha=1.0)", 1.0), _config("mixup(alpha=0.3)", 0.5)
  tx = make_optimizer(learning_rate=0.1, total_steps=10)
  graphdef, state = train.create_train_state(first, tx, mesh)
  train_fn, _ = train.create_step_fns(first, graphdef, tx, mesh)
  start = jax.device_get(state)  # the step donates its state: each call gets a fresh copy
  batch = _batch(mesh)
  mixers = [parallel.replicate(train.create_mixer(config), mesh) for config in (first, second)]
  assert float(mixers[1].method.alpha) == pytest.approx(0.3) and float(mixers[1].prob) == 0.5

  results = [train_fn(parallel.replicate(start, mesh), batch, mixer) for mixer in mixers]
  again, _ = train_fn(parallel.replicate(start, mesh), batch, mixers[1])

  assert [int(new.step) for new, _ in results] == [1, 1]
  assert _max_difference(results[0][0].model, results[1][0].model) > 1e-4  # the passed mixer is used
  assert _max_difference(again.model, results[1][0].model) == 0.0
  # The second mixer, traced, gives the update of a step that compiled it in as a constant.
  preprocess = functools.partial(normalize, dataset=second.dataset)
  pure = make_train_step(
    graphdef=graphdef,
    tx=tx,
    mixer=None,
    weight_decay=second.weight_decay,
    axis_name=parallel.AXIS,
    preprocess=preprocess,
  )
  step, constant = parallel.shard_train_step(pure, mesh), train.create_mixer(second)
  reference = jax.jit(lambda s, b: step(s.model, s.opt, b, jax.random.wrap_key_data(s.key), constant))
  model_state, _, metrics = reference(parallel.replicate(start, mesh), batch)
  assert _max_difference(results[1][0].model, model_state) < 1e-5
  assert float(results[1][1]["loss"]) == pytest.approx(float(metrics["loss"]), rel=1e-5)
  # Another method (a static part of the mixer) compiles another program: the counter sees it.
  cutmix = parallel.replicate(train.create_mixer(_config("cutmix", 1.0)), mesh)
  with pytest.raises(AssertionError, match="traced > 1 times"):
    train_fn(parallel.replicate(start, mesh), batch, cutmix)


def test_replicate_places_every_leaf_on_every_device_of_the_mesh():
  mesh = parallel.make_mesh(2)
  mixer = parallel.replicate(train.create_mixer(_config("hmix(alpha=0.7, r=0.25)", 0.5)), mesh)
  leaves = jax.tree.leaves(mixer)
  assert leaves and all(leaf.sharding == parallel.replicated(mesh) for leaf in leaves)
  numbers = (mixer.method.alpha, mixer.method.r, mixer.prob, mixer.label_smoothing)
  assert all(number.dtype == jnp.float32 and number.shape == () for number in numbers)
  assert [float(number) for number in numbers] == pytest.approx([0.7, 0.25, 0.5, 0.0])
  assert parallel.replicate(None, mesh) is None


def _small_state(seed=0):
  from msda_jax.train.models import SmallCNN

  model = SmallCNN(10, width=4, in_channels=1, rngs=nnx.Rngs(seed))
  return TrainState.create(model, make_optimizer(learning_rate=0.1, total_steps=10), jax.random.key(seed + 1))


def _equal(a, b):
  pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
  return jax.tree.structure(a) == jax.tree.structure(b) and all(np.array_equal(x, y) for x, y in pairs)


def test_train_state_is_a_pytree_with_the_checkpoint_layout_of_the_old_dict():
  state = _small_state()
  assert int(state.step) == 0 and state.key.dtype == jnp.uint32
  np.testing.assert_array_equal(state.key, jax.random.key_data(jax.random.key(1)))
  ids = lambda tree: sorted(map(id, jax.tree.leaves(tree)))
  assert ids(state) == ids(state.to_checkpoint())  # the same leaves, not copies
  assert _equal(TrainState.from_checkpoint(state.to_checkpoint()), state)
  doubled = jax.tree.map(lambda x: 2 * x, state)
  assert isinstance(doubled, TrainState) and int(doubled.step) == 0
  with pytest.raises(TypeError, match="key must be a typed PRNG key"):
    TrainState.create(nnx.Linear(2, 2, rngs=nnx.Rngs(0)), make_optimizer(learning_rate=0.1, total_steps=1), 0)
  with pytest.raises(ValueError, match="tree must be a mapping with keys"):
    TrainState.from_checkpoint({"model": state.model, "opt": state.opt})


def test_checkpoints_of_a_train_state_and_of_the_old_dict_restore_into_a_train_state(tmp_path):
  state, other = _small_state(0), _small_state(1)
  old = {"model": other.model, "opt": other.opt, "key": other.key}  # what the run saved before TrainState
  with checkpoint.Checkpointer(str(tmp_path), every_steps=1, keep=5) as checkpoints:
    checkpoints.save(1, state, {"position": 1})
    checkpoints.save(2, old, {"position": 2})
  _, stored = checkpoint.load_state(str(tmp_path), step=1)
  assert sorted(stored) == ["key", "model", "opt"]  # the same layout on disk
  with checkpoint.Checkpointer(str(tmp_path), every_steps=1, keep=5) as checkpoints:
    for step, expected in ((1, state), (2, other)):
      restored_step, restored, data = checkpoints.restore(_small_state(2), step=step)
      assert restored_step == step and data == {"position": step}
      assert isinstance(restored, TrainState) and _equal(restored, expected)
    # A dict target still gets the dict back.
    _, as_dict, _ = checkpoints.restore(old, step=1)
    assert isinstance(as_dict, dict) and _equal(TrainState.from_checkpoint(as_dict), state)


def test_the_flags_are_defined_at_import_and_main_rejects_extra_arguments():
  names = ("config", "workdir", "coordinator_address", "num_processes", "process_id", "distributed")
  assert all(name in flags.FLAGS for name in names)
  assert train.FLAGS is flags.FLAGS
  with pytest.raises(app.UsageError, match="Too many command-line arguments"):
    train.main(["experiments.train", "extra"])


def test_the_command_requires_the_workdir(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
  command = [sys.executable, "-m", "experiments.train", f"--config={CONFIG}:mixup,0"]
  done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=CLI_SECONDS)
  assert done.returncode != 0 and "workdir" in done.stderr
  assert not any(tmp_path.iterdir())
