"""A plain-text progress bar on stderr: steps, images per second, loss and time left."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
  seconds = max(int(seconds), 0)
  return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressBar:
  """``[#####     ] 120/400  3012 img/s  loss 0.5312  ETA 0:00:12``, redrawn in place.

  Args:
    total: the number of steps of the run.
    images_per_step: the global batch size (for the throughput).
    enabled: draw at all; ``None`` draws only when ``stream`` is a terminal.
    stream: where to draw (default ``sys.stderr``).
    width: characters of the bar.

  >>> import io
  >>> stream = io.StringIO()
  >>> bar = ProgressBar(10, 4, enabled=True, stream=stream, width=10)
  >>> bar.update(5, loss=0.5); bar.close()
  >>> stream.getvalue().startswith("\\r[#####     ] 5/10")
  True
  """

  def __init__(
    self,
    total: int,
    images_per_step: int,
    *,
    enabled: bool | None = None,
    stream: TextIO | None = None,
    width: int = 30,
  ):
    self.stream = stream if stream is not None else sys.stderr
    self.enabled = self.stream.isatty() if enabled is None else enabled
    self.total = max(total, 1)
    self.images_per_step = images_per_step
    self.width = width
    self.start_step: int | None = None
    self.start_time = time.perf_counter()

  def update(self, step: int, loss: float | None = None) -> None:
    """Redraws the bar at ``step`` (the throughput counts steps since the first update)."""
    if not self.enabled:
      return
    now = time.perf_counter()
    if self.start_step is None:
      self.start_step, self.start_time = step, now
    done = step - self.start_step
    elapsed = now - self.start_time
    rate = done / elapsed if elapsed > 0 and done > 0 else 0.0
    filled = self.width * min(step, self.total) // self.total
    parts = [f"[{'#' * filled}{' ' * (self.width - filled)}] {step}/{self.total}"]
    parts.append(f"{rate * self.images_per_step:7.0f} img/s")
    if loss is not None:
      parts.append(f"loss {loss:.4f}")
    parts.append(f"ETA {_clock((self.total - step) / rate) if rate > 0 else '?'}")
    self.stream.write("\r" + "  ".join(parts))
    self.stream.flush()

  def close(self) -> None:
    """Ends the line."""
    if self.enabled:
      self.stream.write("\n")
      self.stream.flush()
