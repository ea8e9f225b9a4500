"""The training loop end to end on the embedded MNIST subset: outputs, device-count and
process-count equivalence, and resumption after a kill.

Every run is a tiny ``small_cnn`` (width 4) for a few steps; subprocesses set their own fake CPU
device count and are killed when they exceed their timeout; in-process runs are bounded by an
alarm.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments import train
from experiments.configs import mnist_compare
from msda_jax.train.checkpoint import load_state

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "experiments" / "configs" / "mnist_compare.py"
ARG = "cutmix,0"
TINY = {"model_width": 4, "batch_size": 32, "eval_batch_size": 500, "log_every_steps": 2, "checkpoint_every_steps": 2}
# Guards against hangs, not speed: about 10x the typical time on a loaded 2-core machine.
HANG_SECONDS = 600  # an in-process test (30-90 s)
RUN_SECONDS = 750  # two subprocess runs side by side (about 75 s)
CHECKPOINT_SECONDS = 400  # the first checkpoint of a subprocess run (about 40 s)


def _config(**overrides):
  config = mnist_compare.get_config(ARG)
  config.update({**TINY, **overrides})
  return config


@pytest.fixture
def alarm():
  """Fails an in-process test that hangs (runs longer than ``HANG_SECONDS``)."""

  def expire(signum, frame):
    raise TimeoutError(f"test exceeded {HANG_SECONDS} s")

  previous = signal.signal(signal.SIGALRM, expire)
  signal.alarm(HANG_SECONDS)
  yield
  signal.alarm(0)
  signal.signal(signal.SIGALRM, previous)


def _command(workdir, overrides, *extra):
  flags = [f"--config.{name}={value}" for name, value in {**TINY, **overrides}.items()]
  return [sys.executable, "-m", "experiments.train", f"--config={CONFIG}:{ARG}", f"--workdir={workdir}", *flags, *extra]


def _env(devices):
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  env["PYTHONPATH"] = str(ROOT)
  return env


def _run(processes, timeout=RUN_SECONDS):
  """Waits for every ``subprocess.Popen`` in ``processes``; kills them all on a failure or timeout."""
  deadline = time.monotonic() + timeout
  try:
    for process in processes:
      _, err = process.communicate(timeout=max(deadline - time.monotonic(), 1))
      assert process.returncode == 0, err.decode()[-3000:]
  finally:
    for process in processes:
      if process.poll() is None:
        process.kill()
        process.wait()


def _params(workdir):
  step, state = load_state(os.path.join(workdir, "checkpoints"))
  return step, jax.tree.leaves(state["model"])


def _max_difference(a, b):
  return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("steps", [1, 3])
def test_run_writes_metrics_summary_and_checkpoints(tmp_path, alarm, steps):
  summary = train.train_and_evaluate(_config(num_train_steps=steps, num_devices=2), str(tmp_path))
  assert summary["steps"] == steps and summary["test_count"] == 1000
  assert 0.0 <= summary["test_accuracy"] <= 1.0 and np.isfinite(summary["test_loss"])
  assert json.loads((tmp_path / "summary.json").read_text())["steps"] == steps
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert records[-1]["split"] == "test" and records[-2]["step"] == steps
  assert {"loss", "accuracy", "learning_rate"} <= set(records[-2])
  assert any((tmp_path / "tensorboard").iterdir())
  assert _params(tmp_path)[0] == steps
  # A second call finds the final checkpoint and only evaluates.
  again = train.train_and_evaluate(_config(num_train_steps=steps, num_devices=2), str(tmp_path))
  assert again["test_accuracy"] == summary["test_accuracy"]


def test_four_devices_match_one_device(tmp_path, alarm):
  # Without mixing and with synchronised BatchNorm, a step is a function of the global batch
  # only: the device count changes the order of the reductions, not the maths.
  overrides = {"method": "none", "sync_batch_norm": True, "num_train_steps": 4}
  train.train_and_evaluate(_config(num_devices=4, **overrides), str(tmp_path / "four"))
  train.train_and_evaluate(_config(num_devices=1, **overrides), str(tmp_path / "one"))
  four, one = _params(tmp_path / "four")[1], _params(tmp_path / "one")[1]
  difference = _max_difference(four, one)
  print(f"four devices vs one: max abs parameter difference {difference:.3g}")
  assert difference < 1e-5


def _free_port():
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def _two_layouts(tmp_path, overrides):
  """The parameters after training on 2 processes x 2 devices and on 1 process x 4 devices (the
  same 4-device mesh), each a subprocess, and the two-process run's summary."""
  address = f"127.0.0.1:{_free_port()}"
  two, one = tmp_path / "two", tmp_path / "one"
  processes = [
    subprocess.Popen(
      _command(two, overrides, f"--coordinator_address={address}", "--num_processes=2", f"--process_id={i}"),
      env=_env(2),
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
    )
    for i in range(2)
  ]
  processes.append(
    subprocess.Popen(
      _command(one, {**overrides, "num_devices": 4}), env=_env(4), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
  )
  _run(processes)
  return _params(two)[1], _params(one)[1], json.loads((two / "summary.json").read_text())


def test_two_processes_match_one_process(tmp_path, alarm):
  # Two processes of two devices and one process of four form the same 4-device mesh, so the
  # mixing draws (keyed by step and device index) and the global batches are the same.
  overrides = {"method": "cutmix", "num_train_steps": 3, "checkpoint_every_steps": 3}
  signal.alarm(0)  # the subprocesses have their own timeout
  two, one, summary = _two_layouts(tmp_path, overrides)
  assert summary["processes"] == 2
  assert summary["test_count"] == json.loads((tmp_path / "one" / "summary.json").read_text())["test_count"]
  difference = _max_difference(two, one)
  print(f"two processes vs one: max abs parameter difference {difference:.3g}")
  assert difference <= 1e-6


def test_hmix_training_does_not_depend_on_the_process_layout(tmp_path, alarm):
  """HMix, 60 steps at the main job's width and batch (8, 100), on 2 x 2 and 1 x 4 devices: the
  parameters agree to float32 reduction noise (6e-7 here; training without mixing: 5e-7). With
  the box side taken from the float32 product (1 - lam) r, a side rounded differently by the two
  compilations at a boundary drove them 1.6e-3 apart."""
  overrides = {"method": "hmix", "num_train_steps": 60, "checkpoint_every_steps": 60, "model_width": 8}
  overrides |= {"batch_size": 100, "log_every_steps": 20}
  signal.alarm(0)  # the subprocesses have their own timeout
  two, one, _ = _two_layouts(tmp_path, overrides)
  difference = _max_difference(two, one)
  print(f"HMix, two processes vs one after 60 steps: max abs parameter difference {difference:.3g}")
  assert difference <= 1e-5


@pytest.mark.parametrize("method", ["mixup", "cutmix"])
def test_smooth_training_does_not_depend_on_the_process_layout(tmp_path, alarm, method):
  """Mixup and CutMix, 60 steps at the main job's width and batch, on 2 x 2 and 1 x 4 devices,
  with a smooth network (softplus, average pools): the parameters agree to float32 reduction noise
  (1.0e-6 and 7e-7 here). With ReLU and max-pools the same runs part after 40 steps (1.2e-4 and
  5e-2 at step 60), as training without mixing does over 150 steps (0.13): a pre-activation within
  reduction noise of a kink takes the other side in one layout (``experiments/README.md``)."""
  overrides = {"method": method, "num_train_steps": 60, "checkpoint_every_steps": 60, "model_width": 8}
  overrides |= {"batch_size": 100, "log_every_steps": 20, "model_activation": "softplus", "model_pool": "avg"}
  signal.alarm(0)  # the subprocesses have their own timeout
  two, one, _ = _two_layouts(tmp_path, overrides)
  difference = _max_difference(two, one)
  print(f"{method}, smooth network, two processes vs one after 60 steps: max abs parameter difference {difference:.3g}")
  assert difference <= 1e-5


def _mark_records(path):
  """Adds ``"killed_run": true`` to every parsable record of ``metrics.jsonl`` (a torn last line is kept as it is)."""
  lines = []
  for line in path.read_text().splitlines():
    try:
      record = json.loads(line)
    except ValueError:
      lines.append(line)
      continue
    lines.append(json.dumps({**record, "killed_run": True}))
  path.write_text("".join(line + "\n" for line in lines))


def test_killed_run_resumes_to_the_same_parameters(tmp_path, alarm):
  """A run killed after its first checkpoint, run again, resumes from a checkpoint (not from step
  0) and ends with the parameters of an uninterrupted run, bit for bit.

  The resume is told from a restart by the metric records (one per step): the killed run's
  records are marked before the second run; a run resuming from step ``s`` keeps the marked
  records of steps 1 to ``s`` and writes those of steps ``s + 1`` to 60, while a restart from step
  0 drops every marked record and writes steps 1 to 60 again. (The first checkpoint is step 1:
  Orbax saves the first step it is given, then every 10; the kill comes after it.)
  """
  signal.alarm(0)  # bounded by the subprocess timeouts below
  overrides = {
    "method": "mixup",
    "num_train_steps": 60,
    "checkpoint_every_steps": 10,
    "keep_checkpoints": 10,
    "log_every_steps": 1,
  }
  workdir = tmp_path / "killed"
  process = subprocess.Popen(_command(workdir, overrides), env=_env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
  checkpoints = workdir / "checkpoints"
  deadline = time.monotonic() + CHECKPOINT_SECONDS
  try:
    while not (checkpoints.is_dir() and any(p.name.isdigit() for p in checkpoints.iterdir())):
      assert process.poll() is None, process.communicate()[1].decode()[-3000:]
      assert time.monotonic() < deadline, f"no checkpoint within {CHECKPOINT_SECONDS} s"
      time.sleep(0.01)
  finally:
    process.kill()
    process.wait()
  killed_at = max(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit())
  assert killed_at < 60 and not (workdir / "summary.json").exists()
  _mark_records(workdir / "metrics.jsonl")
  # The uninterrupted run is a subprocess too: XLA may compile the step differently in a process
  # with another device count (this one has 8), which changes the last bits.
  _run(
    [
      subprocess.Popen(_command(directory, overrides), env=_env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
      for directory in (workdir, tmp_path / "straight")
    ]
  )
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  train_records = [r for r in records if r["split"] == "train"]
  kept = [r["step"] for r in train_records if r.get("killed_run")]
  written = [r["step"] for r in train_records if not r.get("killed_run")]
  assert kept, "the resumed run dropped every record of the killed run: it started again from step 0"
  resumed_from = kept[-1]
  assert 0 < resumed_from <= killed_at and (resumed_from == 1 or resumed_from % 10 == 0), (resumed_from, killed_at)
  assert kept == list(range(1, resumed_from + 1)), kept
  assert written == list(range(resumed_from + 1, 61)), f"resumed from step {resumed_from}, logged steps {written}"
  resumed, straight = _params(workdir), _params(tmp_path / "straight")
  assert resumed[0] == straight[0] == 60
  assert _max_difference(resumed[1], straight[1]) == 0.0


def test_loss_decreases_and_accuracy_beats_chance_on_the_embedded_digits(tmp_path, alarm):
  # Seed 0, 100 steps of 64 digits without mixing; chance is 10 %.
  config = _config(method="none", model_width=8, batch_size=64, num_train_steps=100)
  config.update({"log_every_steps": 25, "checkpoint_every_steps": 100, "num_devices": 1})
  summary = train.train_and_evaluate(config, str(tmp_path))
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  losses = [record["loss"] for record in records if record["split"] == "train"]
  print(f"logged train losses {np.round(losses, 3).tolist()}, test accuracy {summary['test_accuracy']:.3f}")
  assert len(losses) == 4 and losses[-1] < 0.7 * losses[0]
  assert summary["test_accuracy"] > 0.5


@pytest.mark.parametrize(
  ("overrides", "field"),
  [({"num_classes": 100}, "num_classes"), ({"batch_size": 30, "num_devices": 4}, "batch_size")],
)
def test_bad_config_raises_naming_the_field_before_any_work(tmp_path, overrides, field):
  with pytest.raises(ValueError, match=field):
    train.train_and_evaluate(_config(**overrides), str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()
