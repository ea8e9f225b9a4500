"""msda_jax: mixed-sample data augmentation in JAX, and the theory that explains it.

Mask samplers and methods (``msda_jax.masks``), pairing, label handling and the batch mixing
op (``mix_batch``, ``Mixer``), presets with the paper's defaults and ``from_string``.
"""

from msda_jax import lam, masks
from msda_jax.kmix import kmix_masks, mix_k_batch
from msda_jax.labels import prepare_targets, smooth
from msda_jax.masks import (
  Bernoulli,
  CutMix,
  FMix,
  GMix,
  HMix,
  MixMethod,
  Mixup,
  ResizeMix,
  StochasticMixupCutMix,
  bernoulli_mask,
  cutmix_mask,
  fmix_mask,
  gmix_mask,
  hmix_mask,
  mixup_mask,
  resizemix_mask,
  resizemix_paste,
  stochastic_mask,
)
from msda_jax.mixing import Mixer, MixInfo, mix_batch
from msda_jax.pairing import pair, partner_indices
from msda_jax.presets import (
  PRESETS,
  bernoulli,
  cutmix,
  fmix,
  from_string,
  gmix,
  hmix,
  mixup,
  resizemix,
  stochastic_mixup_cutmix,
)

__version__ = "0.1.0"

__all__ = [
  "PRESETS",
  "Bernoulli",
  "CutMix",
  "FMix",
  "GMix",
  "HMix",
  "MixInfo",
  "MixMethod",
  "Mixer",
  "Mixup",
  "ResizeMix",
  "StochasticMixupCutMix",
  "bernoulli",
  "bernoulli_mask",
  "cutmix",
  "cutmix_mask",
  "fmix",
  "fmix_mask",
  "from_string",
  "gmix",
  "gmix_mask",
  "hmix",
  "hmix_mask",
  "kmix_masks",
  "lam",
  "masks",
  "mix_batch",
  "mix_k_batch",
  "mixup",
  "mixup_mask",
  "pair",
  "partner_indices",
  "prepare_targets",
  "resizemix",
  "resizemix_mask",
  "resizemix_paste",
  "smooth",
  "stochastic_mask",
  "stochastic_mixup_cutmix",
]
