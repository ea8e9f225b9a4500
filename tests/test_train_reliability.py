"""Checkpoints and runs that survive damage and restarts: checksummed checkpoints, metrics without
duplicates after a resume, the progress flag, and config errors before any work.

The checkpoint tests save a small pytree (no training); the resume tests share one tiny
``small_cnn`` run (width 4, 6 steps on the embedded MNIST subset, one device), killed after it
logged its last steps and resumed over a damaged checkpoint, bounded by an alarm far above its
time (a guard against hangs, not speed).
"""

import contextlib
import io
import json
import logging
import os
import shutil
import signal
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import input_pipeline, train
from experiments.configs import mnist_compare
from msda_jax.train import checkpoint, integrity
from msda_jax.train.progress import ProgressBar
from msda_jax.train.writers import MetricWriter

TINY = {"model_width": 4, "batch_size": 32, "eval_batch_size": 500, "log_every_steps": 2, "checkpoint_every_steps": 2}
HANG_SECONDS = 600  # the shared run takes 25-60 s on a loaded 2-core machine: a guard against hangs only


def _config(**overrides):
  config = mnist_compare.get_config("cutmix,0")
  config.update({**TINY, **overrides})
  return config


class Terminal(io.StringIO):
  """A text stream that says it is a terminal."""

  def isatty(self):
    return True


class Records(logging.Handler):
  """Collects the records of the checkpoint logger."""

  def __init__(self):
    super().__init__(logging.WARNING)
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())

  def __enter__(self):
    logging.getLogger(checkpoint.__name__).addHandler(self)
    return self

  def __exit__(self, *exc):
    logging.getLogger(checkpoint.__name__).removeHandler(self)


# Checkpoints: a small pytree saved at steps 1 and 2, step 2 then damaged.


def _state(step):
  key = jax.random.key(step)
  kernel = jax.random.normal(key, (64, 64))  # incompressible: the largest file of a step holds it
  return {"model": {"kernel": kernel}, "opt": {"count": jnp.array(step)}, "key": jax.random.key_data(key)}


def _save(directory, steps=(1, 2)):
  with checkpoint.Checkpointer(str(directory), every_steps=1, keep=5) as checkpoints:
    for step in steps:
      checkpoints.save(step, _state(step), {"position": step})


def _largest_file(step_dir):
  files = [os.path.join(root, name) for root, _, names in os.walk(step_dir) for name in names]
  return max((path for path in files if not path.endswith(integrity.MANIFEST)), key=os.path.getsize)


def _corrupt(path):
  data = bytearray(open(path, "rb").read())
  middle = len(data) // 2
  data[middle : middle + 8] = bytes(b ^ 0xFF for b in data[middle : middle + 8])
  open(path, "wb").write(bytes(data))


def _truncate(path):
  os.truncate(path, os.path.getsize(path) // 2)


def _zero(path):
  open(path, "wb").write(bytes(os.path.getsize(path)))


DAMAGE = {"corrupt": _corrupt, "truncate": _truncate, "zero": _zero, "delete": os.remove}


def _equal(a, b):
  return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def test_every_saved_step_is_sealed_with_a_matching_manifest(tmp_path):
  _save(tmp_path, steps=(1, 2, 3))
  for step in (1, 2, 3):
    assert integrity.has_manifest(str(tmp_path / str(step)))
    assert integrity.find_damage(str(tmp_path / str(step))) is None


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_latest_checkpoint_is_reported_in_one_line_and_the_earlier_one_restored(tmp_path, damage):
  _save(tmp_path)
  damaged = _largest_file(tmp_path / "2")
  DAMAGE[damage](damaged)
  with Records() as records, checkpoint.Checkpointer(str(tmp_path), every_steps=1, keep=5) as checkpoints:
    step, state, data = checkpoints.restore(_state(0))
    assert step == 1 and data == {"position": 1} and _equal(state, _state(1))
    assert len(records.messages) == 1 and "\n" not in records.messages[0]
    assert "step 2" in records.messages[0] and os.path.basename(damaged) in records.messages[0]
    # The run goes on: step 2 is saved again, the damaged one kept aside.
    assert checkpoints.save(2, _state(2), {"position": 2})
  assert (tmp_path / checkpoint.REJECTED / "2").is_dir()
  step, state = checkpoint.load_state(str(tmp_path))
  assert step == 2 and _equal(state, _state(2))


def test_load_state_skips_a_damaged_latest_checkpoint(tmp_path):
  _save(tmp_path)
  _corrupt(_largest_file(tmp_path / "2"))
  with Records() as records:
    step, state = checkpoint.load_state(str(tmp_path))
  assert step == 1 and _equal(state, _state(1))
  assert len(records.messages) == 1 and "step 2" in records.messages[0]
  assert (tmp_path / "2").is_dir()  # read-only: nothing moved


def test_an_unsealed_latest_step_gives_way_to_a_sealed_one(tmp_path):
  # A run killed after Orbax finished step 2 but before its manifest: step 2 cannot be checked,
  # step 1 can, and resuming from it loses nothing (the steps after it are deterministic).
  _save(tmp_path)
  os.remove(tmp_path / "2" / integrity.MANIFEST)
  with Records() as records, checkpoint.Checkpointer(str(tmp_path), every_steps=1, keep=5) as checkpoints:
    step, state, _ = checkpoints.restore(_state(0))
  assert step == 1 and _equal(state, _state(1))
  assert len(records.messages) == 1 and "step 2" in records.messages[0] and "no manifest" in records.messages[0]


def test_without_sealed_steps_the_newest_readable_one_is_restored(tmp_path):
  _save(tmp_path)
  for step in (1, 2):
    os.remove(tmp_path / str(step) / integrity.MANIFEST)
  with Records() as records, checkpoint.Checkpointer(str(tmp_path), every_steps=1, keep=5) as checkpoints:
    assert checkpoints.restore(_state(0))[0] == 2
  assert not records.messages
  _truncate(_largest_file(tmp_path / "2"))
  with Records() as records, checkpoint.Checkpointer(str(tmp_path), every_steps=1, keep=5) as checkpoints:
    assert checkpoints.restore(_state(0))[0] == 1
  assert len(records.messages) == 1 and "step 2" in records.messages[0] and "does not restore" in records.messages[0]


def test_no_intact_checkpoint_raises_one_line_naming_the_directory(tmp_path):
  _save(tmp_path)
  for step in (1, 2):
    _corrupt(_largest_file(tmp_path / str(step)))
  with checkpoint.Checkpointer(str(tmp_path), every_steps=1, keep=5) as checkpoints:
    with pytest.raises(checkpoint.DamagedCheckpointError) as error:
      checkpoints.restore(_state(0))
  message = str(error.value)
  assert "\n" not in message and str(tmp_path) in message and "remove" in message
  assert "step 2" in message and "step 1" in message
  assert (tmp_path / "1").is_dir() and (tmp_path / "2").is_dir()  # nothing moved


# Runs: one run of 6 steps, killed after logging them but before its last checkpoint, with the
# checkpoint before that damaged, then resumed.


def _params(workdir):
  step, state = checkpoint.load_state(os.path.join(workdir, "checkpoints"))
  return step, jax.tree.leaves(state["model"])


def _records(workdir):
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def _scalar_steps(directory, tag):
  """The steps of ``tag`` that TensorBoard shows for the event files in ``directory``.

  Files are read in name (time) order; a ``SessionLog.START`` event at step ``s`` hides the
  events read before it at steps ``>= s``, as TensorBoard's loaders do.
  """
  from tensorboardX.proto import event_pb2

  steps = []
  for path in sorted(directory.iterdir()):
    data, offset = path.read_bytes(), 0
    while offset < len(data):
      (length,) = struct.unpack("<Q", data[offset : offset + 8])
      event = event_pb2.Event.FromString(data[offset + 12 : offset + 12 + length])
      offset += 12 + length + 4
      if event.HasField("session_log") and event.session_log.status == event_pb2.SessionLog.START:
        steps = [step for step in steps if step < event.step]
      steps += [event.step for value in event.summary.value if value.tag == tag]
  return steps


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
  """The run's workdir, its uninterrupted parameters, what each part wrote to stderr and the warnings."""

  def expire(signum, frame):
    raise TimeoutError(f"the resumed run exceeded {HANG_SECONDS} s")

  previous = signal.signal(signal.SIGALRM, expire)
  signal.alarm(HANG_SECONDS)
  workdir = tmp_path_factory.mktemp("resumed")
  overrides = {"method": "none", "num_train_steps": 6, "log_every_steps": 1, "keep_checkpoints": 5, "num_devices": 1}
  first, second = Terminal(), io.StringIO()
  try:
    with contextlib.redirect_stderr(first):  # a terminal, but progress=False: no bar
      train.train_and_evaluate(_config(**overrides, progress=False), str(workdir))
    straight = _params(workdir)
    shutil.rmtree(workdir / "checkpoints" / "6")  # killed after logging step 6, before saving it
    (workdir / "summary.json").unlink()
    _corrupt(_largest_file(workdir / "checkpoints" / "4"))
    with contextlib.redirect_stderr(second), Records() as records:  # not a terminal, but progress=True: a bar
      summary = train.train_and_evaluate(_config(**overrides, progress=True), str(workdir))
  finally:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
  return {
    "workdir": workdir,
    "straight": straight,
    "summary": summary,
    "warnings": records.messages,
    "first": first.getvalue(),
    "second": second.getvalue(),
  }


def test_a_run_resumes_past_a_damaged_checkpoint_to_the_same_parameters(resumed):
  (message,) = resumed["warnings"]
  assert "step 4" in message and "damaged" in message and "using step 2" in message
  assert resumed["summary"]["steps"] == 6
  step, params = _params(resumed["workdir"])
  assert step == resumed["straight"][0] == 6
  assert all(np.array_equal(a, b) for a, b in zip(params, resumed["straight"][1], strict=True))


def test_a_resumed_run_drops_the_metrics_logged_after_its_checkpoint(resumed):
  records = _records(resumed["workdir"])
  assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3, 4, 5, 6]
  assert [r["step"] for r in records if r["split"] == "test"] == [6]


def test_a_resumed_run_stays_one_tensorboard_run_with_one_value_per_step(resumed):
  directory = resumed["workdir"] / "tensorboard"
  assert len(list(directory.iterdir())) == 2  # one file per part, in one run directory
  assert _scalar_steps(directory, "train/loss") == [1, 2, 3, 4, 5, 6]
  assert _scalar_steps(directory, "test/accuracy") == [6]


def test_progress_false_draws_no_bar_even_on_a_terminal_and_true_draws_one_anywhere(resumed):
  assert "\r[" not in resumed["first"]
  assert "\r[" in resumed["second"] and "6/6" in resumed["second"]


def test_progress_none_draws_only_on_a_terminal():
  for stream, drawn in ((Terminal(), True), (io.StringIO(), False)):
    bar = ProgressBar(4, 8, enabled=None, stream=stream)
    bar.update(2, loss=0.5)
    assert ("\r[" in stream.getvalue()) == drawn
  stream = Terminal()
  ProgressBar(4, 8, enabled=False, stream=stream).update(2)
  assert stream.getvalue() == ""


def test_metric_writer_drops_later_and_torn_records(tmp_path):
  lines = [json.dumps({"step": step, "split": "train", "loss": 1.0}) for step in (1, 2, 3, 4)]
  (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 5, "spl')
  writer = MetricWriter(str(tmp_path), tensorboard=False, start_step=2)
  writer.write(3, "train", {"loss": 0.5})
  writer.close()
  assert [r["step"] for r in _records(tmp_path)] == [1, 2, 3]


# Config errors: every field is checked before a model is built or data read.


@pytest.mark.parametrize(
  ("field", "value"),
  [
    ("method", "no_such_method"),
    ("method", "mixup(alpha=-1.0)"),
    ("mix_mode", "pixel"),
    ("mix_pairing", "shuffle"),
    ("mix_prob", 1.5),
    ("label_smoothing", -0.1),
    ("model", "resnet9000"),
    ("model_pool", "median"),
    ("model_activation", "tanh"),
    ("dataset", "svhn"),
  ],
)
def test_a_bad_config_field_fails_before_any_work_and_names_the_field(tmp_path, monkeypatch, field, value):
  def work(*args, **kwargs):
    raise AssertionError("a model was built or data read before the config was checked")

  monkeypatch.setattr(train, "get_model", work)
  for name in ("num_train_examples", "train_iterator", "eval_batches"):
    monkeypatch.setattr(input_pipeline, name, work)
  with pytest.raises(ValueError, match=field):
    train.train_and_evaluate(_config(num_devices=1, **{field: value}), str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_a_model_option_the_model_does_not_have_is_refused():
  config = _config(num_devices=1, model="preact_resnet18", model_pool="avg")
  with pytest.raises(ValueError, match="model_pool: model 'preact_resnet18' has no 'pool' option"):
    train.check_config(config, 1)
  assert train.model_options(_config(num_devices=1, model_pool="avg", model_activation="softplus")) == {
    "pool": "avg",
    "activation": "softplus",
  }


def test_k_sample_mixing_is_reachable_from_the_config_and_its_pairing_checked():
  """``method="mix_k_batch(k=3)"`` builds a KMix mixer; the reversal (no k-source form) names mix_pairing."""
  config = _config(num_devices=1, method="mix_k_batch(k=3, alpha=0.5)", mix_pairing="roll")
  train.check_config(config, 1)
  mixer = train.create_mixer(config)
  assert mixer.method.k == 3 and mixer.pairing == "roll"
  with pytest.raises(ValueError, match=r"mix_pairing must be one of \('roll', 'permute'\)"):
    train.check_config(_config(num_devices=1, method="mix_k_batch(k=3)", mix_pairing="reverse"), 1)
  # Left unset, the pairing is the method's default: "roll" for k-sample mixing, "reverse" otherwise.
  default = _config(num_devices=1, method="mix_k_batch(k=3)")
  train.check_config(default, 1)
  assert train.create_mixer(default).pairing == "roll"
  assert train.create_mixer(_config(num_devices=1, method="cutmix")).pairing == "reverse"
