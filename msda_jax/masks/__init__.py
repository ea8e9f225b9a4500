"""Mask samplers, one file per family, and their method objects.

Each sampler is a pure function of one example, ``(key, lam, *, shape, ...) -> M`` with ``M``
float32 of the spatial ``shape``, meaning ``x~ = M * x_i + (1 - M) * x_j`` (Eq. 1); batch it
with ``jax.vmap``.
"""

from msda_jax.masks._base import MixMethod
from msda_jax.masks.bernoulli import Bernoulli, bernoulli_mask
from msda_jax.masks.cutmix import CutMix, cutmix_mask
from msda_jax.masks.fmix import FMix, fmix_mask
from msda_jax.masks.gmix import GMix, gmix_mask
from msda_jax.masks.hmix import HMix, hmix_mask
from msda_jax.masks.mixup import Mixup, mixup_mask
from msda_jax.masks.resizemix import ResizeMix, resizemix_mask, resizemix_paste
from msda_jax.masks.stochastic import StochasticMixupCutMix, stochastic_mask

__all__ = [
  "Bernoulli",
  "CutMix",
  "FMix",
  "GMix",
  "HMix",
  "MixMethod",
  "Mixup",
  "ResizeMix",
  "StochasticMixupCutMix",
  "bernoulli_mask",
  "cutmix_mask",
  "fmix_mask",
  "gmix_mask",
  "hmix_mask",
  "mixup_mask",
  "resizemix_mask",
  "resizemix_paste",
  "stochastic_mask",
]
