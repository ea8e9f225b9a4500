"""msda_jax: mixed-sample data augmentation in JAX, and the theory that explains it.

Methods (one class each, with the paper's defaults; ``msda_jax.masks``: one ``sample`` call per
method), ``METHODS`` and ``from_string`` by name (``msda_jax.spec``), pairing, label handling,
the batch layer (``Mixer``, ``mix_batch``; ``msda_jax.needs`` for what a method reads), k-sample
mixing (``KMix``, ``mix_k_batch``) and the laws of ``lam`` (``lam_laws``).
"""

from msda_jax import lam_laws, losses, masks, needs, saliency
from msda_jax.kmix import KMix, KMixInfo, kmix_masks
from msda_jax.labels import prepare_targets, smooth
from msda_jax.masks import (
  RICAP,
  AlignMix,
  AttentiveCutMix,
  Bernoulli,
  CoMixup,
  CutMix,
  FMix,
  GMix,
  GridMix,
  GuidedMixup,
  HMix,
  KCutMix,
  ManifoldMixup,
  MixMethod,
  MixPro,
  Mixture,
  Mixup,
  PairData,
  PatchAligned,
  PatchUp,
  PuzzleEnergy,
  PuzzleMix,
  ResizeMix,
  SaliencyMix,
  Sample,
  SMMix,
  SmoothMix,
  SnapMix,
  SpecMix,
  StochasticMixupCutMix,
  TokenMix,
  TransMix,
  VideoMix,
)
from msda_jax.mixer import Mixer, MixInfo
from msda_jax.mixing import mix_batch, mix_batch_with_info, mix_k_batch, mix_k_batch_with_info
from msda_jax.needs import ModelView, Needs
from msda_jax.pairing import pair, partner_indices
from msda_jax.spec import METHODS, from_string

__version__ = "0.1.0"

__all__ = [
  "METHODS",
  "AlignMix",
  "AttentiveCutMix",
  "Bernoulli",
  "CoMixup",
  "CutMix",
  "FMix",
  "GMix",
  "GridMix",
  "GuidedMixup",
  "HMix",
  "KCutMix",
  "KMix",
  "KMixInfo",
  "ManifoldMixup",
  "MixInfo",
  "MixMethod",
  "MixPro",
  "ModelView",
  "Needs",
  "Mixer",
  "Mixture",
  "Mixup",
  "PairData",
  "PatchAligned",
  "PatchUp",
  "PuzzleEnergy",
  "PuzzleMix",
  "RICAP",
  "SMMix",
  "ResizeMix",
  "SaliencyMix",
  "Sample",
  "SmoothMix",
  "SnapMix",
  "SpecMix",
  "StochasticMixupCutMix",
  "TokenMix",
  "TransMix",
  "VideoMix",
  "from_string",
  "kmix_masks",
  "lam_laws",
  "losses",
  "masks",
  "needs",
  "mix_batch",
  "mix_batch_with_info",
  "mix_k_batch",
  "mix_k_batch_with_info",
  "pair",
  "partner_indices",
  "prepare_targets",
  "saliency",
  "smooth",
]
