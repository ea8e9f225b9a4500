"""timm's ``Mixup`` and torchvision's ``v2.MixUp`` / ``v2.CutMix`` on PyTorch (CPU), same inputs.

The images are converted once, outside the timed region, to NCHW tensors of the same dtype
(bfloat16 through float32); labels to int64. timm mixes the batch in place (its batch mode
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


def _build(job: PeerJob, classes: int) -> Callable[[Any, Any], Any]:
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


def torch_inputs(inputs: Inputs) -> list[tuple[Any, Any]]:
  """The same pixels and labels as NCHW tensors of the case's dtype, and int64 ids."""
  import torch

  calls = []
  for pixels, ids in zip(inputs.pixels, inputs.class_ids, strict=True):
    source = to_dtype(pixels, "float32" if inputs.dtype == "bfloat16" else inputs.dtype)
    images = torch.from_numpy(np.ascontiguousarray(source.transpose(0, 3, 1, 2)))
    if inputs.dtype == "bfloat16":
      images = images.to(torch.bfloat16)
    calls.append((images, torch.from_numpy(ids.astype(np.int64))))
  return calls


def measure(job: PeerJob, inputs: Inputs, calls: list[tuple[Any, Any]], repeats: int) -> dict[str, Any]:
  """Times ``job`` on the converted ``calls``; a record with ``median_s`` or ``error``."""
  record: dict[str, Any] = {
    "peer": job.library,
    "call": job.label,
    "method": job.method,
    "mode": job.mode,
    "shape": list(inputs.shape),
    "dtype": inputs.dtype,
  }
  try:
    fn = _build(job, inputs.num_classes)
    images, targets = fn(*calls[0])
    record["output_dtype"] = str(images.dtype).replace("torch.", "")
    record["targets_shape"] = list(targets.shape)
    record["median_s"] = timing.median_seconds(fn, calls, repeats)
  except Exception as error:
    record["error"] = f"{type(error).__name__}: {error}".splitlines()[0][:200]
  return record
