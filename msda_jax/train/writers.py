"""Metric output of a run: JSON lines in ``workdir/metrics.jsonl`` and TensorBoard event files.

Only process 0 writes (``enabled=jax.process_index() == 0``); other processes get a writer that
does nothing. TensorBoard files go to ``workdir/tensorboard`` when ``tensorboardX`` is
installed (the ``[train]`` extra) and are skipped otherwise.

A resumed run starts at the step of its checkpoint, but the run it resumes may have logged
later steps before it stopped. Those records are dropped from ``metrics.jsonl`` (the file is
rewritten atomically, a torn last line included), and TensorBoard is told to hide the old events
from that step on (``purge_step``: a ``SessionLog.START`` event, which TensorBoard's loaders
honour), so the directory stays one run with one value per step.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any


def _step(line: str) -> int | None:
  """The step of a JSON record line, ``None`` for a torn or foreign line."""
  try:
    record = json.loads(line)
  except ValueError:
    return None
  step = record.get("step") if isinstance(record, dict) else None
  return step if isinstance(step, int) else None


def drop_records_after(path: str, step: int) -> int:
  """Rewrites the JSON lines file ``path`` without its records of steps after ``step``; returns how many went.

  Lines that do not parse (the torn last line of a killed run) go too. The new file replaces the
  old one by a rename, so a crash leaves one or the other.

  >>> import pathlib, tempfile
  >>> path = pathlib.Path(tempfile.mkdtemp()) / "metrics.jsonl"
  >>> _ = path.write_text('{"step": 1}\\n{"step": 2}\\n{"step": 3}\\n{"st')
  >>> drop_records_after(str(path), 2), path.read_text()
  (2, '{"step": 1}\\n{"step": 2}\\n')
  """
  with open(path, encoding="utf-8") as file:
    lines = file.read().splitlines(keepends=True)
  steps = [_step(line) for line in lines]
  kept = [line.rstrip("\n") + "\n" for line, s in zip(lines, steps, strict=True) if s is not None and s <= step]
  if kept == lines:
    return 0
  partial = path + ".partial"
  with open(partial, "w", encoding="utf-8") as file:
    file.writelines(kept)
  os.replace(partial, path)
  return len(lines) - len(kept)


class MetricWriter:
  """Appends ``{"step": s, "split": "train", **metrics}`` lines and TensorBoard scalars ``split/name``.

  Args:
    workdir: the run's directory (created).
    enabled: write anything at all (process 0 only).
    tensorboard: also write TensorBoard event files when ``tensorboardX`` is importable.
    start_step: the step the run starts from (its checkpoint's; 0 for a new run): records of
      later steps, left by a run that stopped after its last checkpoint, are dropped.
  """

  def __init__(self, workdir: str, *, enabled: bool = True, tensorboard: bool = True, start_step: int = 0):
    self.enabled = enabled
    self._file = None
    self._board: Any = None
    if not enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "metrics.jsonl")
    if os.path.exists(path):
      drop_records_after(path, start_step)
    self._file = open(path, "a", encoding="utf-8")
    if tensorboard:
      try:
        from tensorboardX import SummaryWriter
      except ImportError:  # pragma: no cover - without the extra
        return
      self._board = SummaryWriter(os.path.join(workdir, "tensorboard"), purge_step=start_step + 1)

  def write(self, step: int, split: str, metrics: Mapping[str, float]) -> None:
    """Writes one record of float scalars for ``step``."""
    if not self.enabled or self._file is None:
      return
    values = {name: float(value) for name, value in metrics.items()}
    self._file.write(json.dumps({"step": int(step), "split": split, **values}) + "\n")
    self._file.flush()
    if self._board is not None:
      for name, value in values.items():
        self._board.add_scalar(f"{split}/{name}", value, int(step))

  def close(self) -> None:
    """Flushes and closes the files."""
    if self._file is not None:
      self._file.close()
      self._file = None
    if self._board is not None:
      self._board.close()
      self._board = None
