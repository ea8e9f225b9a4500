"""The machine and library versions a run was measured on, and how busy the machine was."""

from __future__ import annotations

import importlib.metadata
import os
import pathlib
import platform


def cpu_model() -> str:
  """The processor's model name (``/proc/cpuinfo`` where there is one)."""
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def load_average() -> list[float]:
  """The 1, 5 and 15 minute load averages (empty where the OS has none)."""
  try:
    return [round(x, 2) for x in os.getloadavg()]
  except OSError:
    return []


def versions(names: tuple[str, ...] = ("jax", "jaxlib", "numpy", "flax", "optax", "msda-jax")) -> dict[str, str]:
  found = {}
  for name in names:
    try:
      found[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      found[name] = "not installed"
  return found


def accelerator() -> str:
  """JAX's default device, as ``backend: kind`` (e.g. ``gpu: NVIDIA H100 80GB HBM3``)."""
  import jax

  device = jax.devices()[0]
  return f"{device.platform}: {device.device_kind}"


def describe() -> dict[str, object]:
  return {
    "jax_device": accelerator(),
    "processor": cpu_model(),
    "cores": os.cpu_count(),
    "python": platform.python_version(),
    "system": f"{platform.system()} {platform.release()}",
  }
