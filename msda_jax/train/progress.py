"""Plain-text progress on stderr: a run's bar (steps, images/s, loss, time left) and a job's (runs done)."""

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


class JobProgress:
  """Progress of a job of several tasks (runs): tasks done, training images/s, time left.

  On a terminal (or ``enabled=True``) one line redrawn in place, ``[#####     ] 12/45 runs
  2890 img/s  ETA 0:03:10  cutmix-s1: test accuracy 91.2 %``; otherwise (``enabled=False``)
  one plain line per finished task. The time left is the mean time per task so far times the
  tasks left; the throughput counts the images of the tasks that trained in this process.

  Args:
    total: the number of tasks.
    enabled: draw the bar; ``None`` draws it only when ``stream`` is a terminal.
    stream: where to write (default ``sys.stderr``).
    width: characters of the bar.

  >>> import io
  >>> stream = io.StringIO()
  >>> job = JobProgress(2, enabled=False, stream=stream)
  >>> job.advance("mixup-s0", images=1000, note="done"); job.close()
  >>> stream.getvalue().startswith("1/2 runs")
  True
  """

  def __init__(self, total: int, *, enabled: bool | None = None, stream: TextIO | None = None, width: int = 30):
    self.stream = stream if stream is not None else sys.stderr
    self.bar = self.stream.isatty() if enabled is None else enabled
    self.total = max(total, 1)
    self.width = width
    self.done = 0
    self.images = 0
    self.start_time = time.perf_counter()

  def advance(self, name: str, *, images: int = 0, note: str = "") -> None:
    """Records one finished task ``name`` that trained on ``images`` images (0 if it was done before)."""
    self.done += 1
    self.images += images
    elapsed = time.perf_counter() - self.start_time
    rate = self.images / elapsed if elapsed > 0 else 0.0
    left = elapsed / self.done * (self.total - self.done)
    text = f"{self.done}/{self.total} runs  {rate:6.0f} img/s  ETA {_clock(left)}  {name}: {note}"
    if self.bar:
      filled = self.width * min(self.done, self.total) // self.total
      self.stream.write(f"\r[{'#' * filled}{' ' * (self.width - filled)}] {text}\033[K")
    else:
      self.stream.write(text + "\n")
    self.stream.flush()

  def close(self) -> None:
    """Ends the bar's line."""
    if self.bar:
      self.stream.write("\n")
      self.stream.flush()
