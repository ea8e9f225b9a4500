"""msda_jax: mixed-sample data augmentation in JAX, and the theory that explains it.

Methods (``msda_jax.masks``: one ``sample`` call per method), presets with the paper's
defaults and ``from_string``, pairing, label handling and the batch mixing op (``mix_batch``,
``Mixer``), k-sample mixing (``mix_k_batch``, ``KMix``) and the laws of ``lam`` (``lam_laws``).
"""

from msda_jax import lam_laws, masks, needs, saliency
from msda_jax.kmix import KMix, KMixInfo, kmix_masks
from msda_jax.labels import prepare_targets, smooth
from msda_jax.masks import (
  Bernoulli,
  CutMix,
  FMix,
  GMix,
  HMix,
  MixMethod,
  Mixture,
  Mixup,
  PairData,
  PuzzleEnergy,
  PuzzleMix,
  ResizeMix,
  SaliencyMix,
  Sample,
  StochasticMixupCutMix,
)
from msda_jax.mixer import Mixer, MixInfo
from msda_jax.mixing import mix_batch, mix_batch_with_info, mix_k_batch, mix_k_batch_with_info
from msda_jax.needs import ModelView, Needs
from msda_jax.pairing import pair, partner_indices
from msda_jax.presets import (
  METHODS,
  PRESETS,
  bernoulli,
  cutmix,
  fmix,
  from_string,
  gmix,
  hmix,
  mixup,
  puzzlemix,
  resizemix,
  saliencymix,
  stochastic_mixup_cutmix,
)

__version__ = "0.1.0"

__all__ = [
  "METHODS",
  "PRESETS",
  "Bernoulli",
  "CutMix",
  "FMix",
  "GMix",
  "HMix",
  "KMix",
  "KMixInfo",
  "MixInfo",
  "MixMethod",
  "ModelView",
  "Needs",
  "Mixer",
  "Mixture",
  "Mixup",
  "PairData",
  "PuzzleEnergy",
  "PuzzleMix",
  "ResizeMix",
  "SaliencyMix",
  "Sample",
  "StochasticMixupCutMix",
  "bernoulli",
  "cutmix",
  "fmix",
  "from_string",
  "gmix",
  "hmix",
  "kmix_masks",
  "lam_laws",
  "masks",
  "needs",
  "mix_batch",
  "mix_batch_with_info",
  "mix_k_batch",
  "mix_k_batch_with_info",
  "mixup",
  "pair",
  "partner_indices",
  "prepare_targets",
  "puzzlemix",
  "resizemix",
  "saliency",
  "saliencymix",
  "smooth",
  "stochastic_mixup_cutmix",
]
