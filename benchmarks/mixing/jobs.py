"""Which peer call does the same job as which (method, mode) of the library.

A job is a method in a mode: ``"batch"`` (one ratio and box for the batch) or ``"example"``
(one per example). Peers cover Mixup, CutMix and their random switch; the other methods have
no peer and are compared with the fastest peer of their mode (a stricter bar).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class PeerJob:
  """One peer configuration: ``library`` and how it is built (read by the peer modules)."""

  library: str  # "timm", "torchvision" or "keras"
  method: str  # the library's method doing the same job
  mode: str  # "batch" or "example"
  label: str  # how the peer is called, for the tables

  @property
  def name(self) -> str:
    return f"{self.library}: {self.label}"


PEER_JOBS = (
  PeerJob("timm", "mixup", "batch", "Mixup(mode='batch', mixup_alpha=1, cutmix_alpha=0)"),
  PeerJob("timm", "cutmix", "batch", "Mixup(mode='batch', mixup_alpha=0, cutmix_alpha=1)"),
  PeerJob("timm", "stochastic_mixup_cutmix", "batch", "Mixup(mode='batch', mixup_alpha=1, cutmix_alpha=1)"),
  PeerJob("timm", "mixup", "example", "Mixup(mode='elem', mixup_alpha=1, cutmix_alpha=0)"),
  PeerJob("timm", "cutmix", "example", "Mixup(mode='elem', mixup_alpha=0, cutmix_alpha=1)"),
  PeerJob("timm", "stochastic_mixup_cutmix", "example", "Mixup(mode='elem', mixup_alpha=1, cutmix_alpha=1)"),
  PeerJob("torchvision", "mixup", "batch", "v2.MixUp(alpha=1)"),
  PeerJob("torchvision", "cutmix", "batch", "v2.CutMix(alpha=1)"),
  PeerJob("torchvision", "stochastic_mixup_cutmix", "batch", "v2.RandomChoice([MixUp, CutMix])"),
  PeerJob("keras", "mixup", "example", "layers.MixUp(alpha=1)"),
  PeerJob("keras", "cutmix", "example", "layers.CutMix(factor=1)"),
)

LABELS = {
  "msda_jax": "int ids -> one-hot float32 [B, K], mixed by the realised mask mean, inside the jitted op",
  "timm": "int64 ids -> one-hot [B, K] (label_smoothing=0) mixed with the flipped batch; images mixed in place",
  "torchvision": "int64 ids -> one-hot [B, K] mixed with the batch rolled by one; images to a new tensor",
  "keras": "one-hot float32 [B, K] given (one-hot outside the timed call), mixed with a random permutation",
}
