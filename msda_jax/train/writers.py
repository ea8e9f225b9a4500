"""Metric output of a run: JSON lines in ``workdir/metrics.jsonl`` and TensorBoard event files.

Only process 0 writes (``enabled=jax.process_index() == 0``); other processes get a writer that
does nothing. TensorBoard files go to ``workdir/tensorboard`` when ``tensorboardX`` is
installed (the ``[train]`` extra) and are skipped otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any


class MetricWriter:
  """Appends ``{"step": s, "split": "train", **metrics}`` lines and TensorBoard scalars ``split/name``.

  Args:
    workdir: the run's directory (created).
    enabled: write anything at all (process 0 only).
    tensorboard: also write TensorBoard event files when ``tensorboardX`` is importable.
  """

  def __init__(self, workdir: str, *, enabled: bool = True, tensorboard: bool = True):
    self.enabled = enabled
    self._file = None
    self._board: Any = None
    if not enabled:
      return
    os.makedirs(workdir, exist_ok=True)
    self._file = open(os.path.join(workdir, "metrics.jsonl"), "a", encoding="utf-8")
    if tensorboard:
      try:
        from tensorboardX import SummaryWriter
      except ImportError:  # pragma: no cover - without the extra
        return
      self._board = SummaryWriter(os.path.join(workdir, "tensorboard"))

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
