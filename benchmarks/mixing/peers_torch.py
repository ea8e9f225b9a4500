"""timm's ``Mixup`` and torchvision's ``v2.MixUp`` / ``v2.CutMix`` on PyTorch, same inputs.

The images are converted once, outside the timed region, to NCHW tensors of the same dtype
(bfloat16 through float32) on the chosen device (the CPU, or ``cuda`` on a GPU machine, where
every timed call ends with ``torch.cuda.synchronize``); labels to int64. timm mixes the batch in place (its batch mode
reads and writes the input tensor), torchvision returns new tensors; both one-hot encode and
mix the labels in the same call. Peers that cannot be imported, or that reject a dtype, give a
record with the reason instead of a time.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.mixing import timing
from benchmarks.mixing.cases import Inputs, to_dtype
from benchmarks.mixing.jobs import PeerJob

_ALPHAS = {"mixup": (1.0, 0.0), "cutmix": (0.0, 1.0), "stochastic_mixup_cutmix": (1.0, 1.0)}


def versions() -> dict[str, str]:
  """Installed versions of torch, torchvision and timm, or why they cannot be used."""
  found = {}
  for name in ("torch", "torchvision", "timm"):
    try:
      importlib.import_module(name)
      found[name] = importlib.metadata.version(name)
    except Exception as error:
      found[name] = f"unavailable: {type(error).__name__}: {error}".splitlines()[0]
  return found


def build(job: PeerJob, classes: int) -> Callable[[Any, Any], Any]:
  """The peer callable of ``job``: ``fn(images, int64 ids) -> (mixed images, mixed targets)``."""
  if job.library == "timm":
    from timm.data import Mixup

    mixup_alpha, cutmix_alpha = _ALPHAS[job.method]
    mode = "batch" if job.mode == "batch" else "elem"
    mixer = Mixup(
      mixup_alpha=mixup_alpha,
      cutmix_alpha=cutmix_alpha,
      switch_prob=0.5,
      mode=mode,
      label_smoothing=0.0,
      num_classes=classes,
    )
    return mixer
  from torchvision.transforms import v2

  make = {"mixup": v2.MixUp, "cutmix": v2.CutMix}
  if job.method in make:
    return make[job.method](alpha=1.0, num_classes=classes)
  return v2.RandomChoice([v2.MixUp(alpha=1.0, num_classes=classes), v2.CutMix(alpha=1.0, num_classes=classes)])


def torch_inputs(inputs: Inputs, device: str = "cpu") -> list[tuple[Any, Any]]:
  """The same pixels and labels as NCHW tensors of the case's dtype on ``device``, and int64 ids."""
  import torch

  calls = []
  for pixels, ids in zip(inputs.pixels, inputs.class_ids, strict=True):
    source = to_dtype(pixels, "float32" if inputs.dtype == "bfloat16" else inputs.dtype)
    images = torch.from_numpy(np.ascontiguousarray(source.transpose(0, 3, 1, 2)))
    if inputs.dtype == "bfloat16":
      images = images.to(torch.bfloat16)
    calls.append((images.to(device), torch.from_numpy(ids.astype(np.int64)).to(device)))
  return calls


def _synchronised(fn: Callable[..., Any], device: str) -> Callable[..., Any]:
  """``fn`` that waits for the device's queued work before returning (a GPU runs asynchronously)."""
  if not device.startswith("cuda"):
    return fn
  import torch

  def call(*args: Any) -> Any:
    out = fn(*args)
    torch.cuda.synchronize()
    return out

  return call


def measure(
  job: PeerJob, inputs: Inputs, calls: list[tuple[Any, Any]], repeats: int, device: str = "cpu"
) -> dict[str, Any]:
  """Times ``job`` on the converted ``calls``; a record with ``median_s`` or ``error``."""
  record: dict[str, Any] = {
    "peer": job.library,
    "call": job.label,
    "method": job.method,
    "mode": job.mode,
    "shape": list(inputs.shape),
    "dtype": inputs.dtype,
    "device": device,
  }
  try:
    fn = build(job, inputs.num_classes)
    images, targets = fn(*calls[0])
    record["output_dtype"] = str(images.dtype).replace("torch.", "")
    record["targets_shape"] = list(targets.shape)
    record["median_s"] = timing.median_seconds(_synchronised(fn, device), calls, repeats)
  except Exception as error:
    record["error"] = f"{type(error).__name__}: {error}".splitlines()[0][:200]
  return record
