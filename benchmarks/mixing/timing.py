"""Warm medians over rotated inputs, and the process's peak resident memory.

Every timed call gets the next of several distinct input buffers (and its own PRNG key), so
no call finds its inputs in cache because the previous call just touched them. The first
call (compilation, first-touch page faults) is run before timing and not counted.
"""

from __future__ import annotations

import pathlib
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax


def median_seconds(fn: Callable[..., Any], calls: Sequence[tuple[Any, ...]], repeats: int, warmup: int = 1) -> float:
  """Median wall time of ``fn(*calls[i % len(calls)])`` over ``repeats`` calls, after ``warmup``.

  Outputs are waited for with ``jax.block_until_ready`` (a no-op on non-JAX values, so the
  same helper times PyTorch, which runs synchronously on the CPU).
  """
  if not calls:
    raise ValueError("calls must hold at least one argument tuple.")
  for i in range(warmup):
    jax.block_until_ready(fn(*calls[i % len(calls)]))
  times = []
  for i in range(repeats):
    args = calls[(warmup + i) % len(calls)]
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def peak_rss_bytes() -> int:
  """The process's peak resident set size so far (``getrusage``; kilobytes on Linux)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _status_bytes(field: str) -> int | None:
  try:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
      if line.startswith(field + ":"):
        return int(line.split()[1]) * 1024
  except OSError:
    return None
  return None


def reset_peak_rss() -> bool:
  """Resets the kernel's high-water mark of this process's RSS (Linux ``clear_refs``), if allowed."""
  try:
    pathlib.Path("/proc/self/clear_refs").write_text("5")
  except OSError:
    return False
  return True


def peak_rss_growth(fn: Callable[[], Any]) -> int | None:
  """Bytes by which the resident set peaks above its level before ``fn()`` (``None`` if unmeasurable).

  Uses the high-water mark of ``/proc/self/status`` after resetting it, so earlier peaks (the
  compiler, other cases) do not hide this one.
  """
  if not reset_peak_rss():
    return None
  before = _status_bytes("VmRSS")
  jax.block_until_ready(fn())
  peak = _status_bytes("VmHWM")
  if before is None or peak is None:
    return None
  return max(peak - before, 0)
