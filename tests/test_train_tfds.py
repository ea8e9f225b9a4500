"""The training CLI and loop on tfds datasets through grain, with ``tfds.testing.mock_data``.

Nothing is downloaded: ``mock_data`` serves random records of the real datasets' features.
The CLI runs as its own process (``python -m experiments.train`` inside ``mock_data``); the
resume test runs in this process on 2 of the 8 fake CPU devices.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments import input_pipeline, train
from experiments.configs import default
from msda_jax.train.checkpoint import load_state

ROOT = Path(__file__).resolve().parents[1]
TINY = {
  "model": "small_cnn",
  "model_width": 4,
  "dataset": "cifar10",
  "num_classes": 10,
  "batch_size": 8,
  "eval_batch_size": 8,
  "log_every_steps": 1,
  "progress": False,
}
RUN_SECONDS = 450  # a guard against hangs, not speed: about 10x the CLI run on a loaded 2-core machine


def test_cli_trains_and_evaluates_on_mock_cifar10(tmp_path):
  flags = {**TINY, "num_train_steps": 3, "checkpoint_every_steps": 2, "method": "gmix(alpha=0.5)"}
  argv = [
    "experiments.train",
    f"--config={ROOT / 'experiments' / 'configs' / 'default.py'}",
    f"--workdir={tmp_path}",
    *[f"--config.{name}={value}" for name, value in flags.items()],
  ]
  code = textwrap.dedent(f"""
    import runpy, sys
    import tensorflow_datasets as tfds
    sys.argv = {argv!r}
    with tfds.testing.mock_data(num_examples=20):
      runpy.run_module("experiments.train", run_name="__main__")
  """)
  env = dict(
    os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2", PYTHONPATH=str(ROOT)
  )
  done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=RUN_SECONDS)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "top-1 test accuracy" in done.stdout
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["steps"] == 3 and summary["devices"] == 2
  assert summary["test_count"] == 20  # the eval split once, its padding masked out
  assert np.isfinite(summary["test_loss"]) and summary["config"]["method"] == "gmix(alpha=0.5)"
  records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3]


def _leaves(workdir):
  step, state = load_state(os.path.join(workdir, "checkpoints"))
  return step, jax.tree.leaves(state)


@pytest.mark.parametrize("augment", ["scenario2"])
def test_resume_restores_the_grain_iterator(tmp_path, monkeypatch, augment):
  config = default.get_config()
  config.update({**TINY, "augment": augment, "num_train_steps": 4, "checkpoint_every_steps": 2})
  config.update({"keep_checkpoints": 5, "num_devices": 2, "method": "cutmix(alpha=1.0)"})
  with tfds.testing.mock_data(num_examples=24):
    train.train_and_evaluate(config, str(tmp_path / "straight"))
    shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
    # Drop the final checkpoint: the next run restores step 2, model and data position.
    shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "4")
    (tmp_path / "resumed" / "summary.json").unlink()
    resumed = train.train_and_evaluate(config, str(tmp_path / "resumed"))
    # The same, but ignoring the saved data position: the batches of steps 3 and 4 differ.
    shutil.copytree(tmp_path / "resumed", tmp_path / "rewound")
    shutil.rmtree(tmp_path / "rewound" / "checkpoints" / "4")
    (tmp_path / "rewound" / "summary.json").unlink()
    monkeypatch.setattr(input_pipeline.GrainIterator, "set_state", lambda self, state: None)
    train.train_and_evaluate(config, str(tmp_path / "rewound"))
  assert resumed["steps"] == 4
  (step_a, straight), (step_b, again), (_, rewound) = (
    _leaves(tmp_path / d) for d in ("straight", "resumed", "rewound")
  )
  assert step_a == step_b == 4
  assert max(float(np.max(np.abs(a - b))) for a, b in zip(straight, again, strict=True)) == 0.0
  assert max(float(np.max(np.abs(a - b))) for a, b in zip(straight, rewound, strict=True)) > 0.0
