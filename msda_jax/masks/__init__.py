"""Mask families, one file each, and the method protocol they share.

Every method draws one example with ``method.sample(key, shape=S, lam=None) -> Sample(lam, mask,
weight, paste, keep)``, meaning ``x~ = M * x_i + (1 - M) * x_j`` (Eq. 1) with label weight
``w = mean(M)``; batch it with ``jax.vmap`` (or use ``msda_jax.mix_batch``). The data-dependent
methods (PuzzleMix, SaliencyMix, Attentive CutMix: ``needs().inputs``) also read the pair (``data=PairData(...)``).
"""

from msda_jax.masks._alignmix import AlignMix
from msda_jax.masks._attentive import AttentiveCutMix
from msda_jax.masks._base import MixMethod, Sample
from msda_jax.masks._bernoulli import Bernoulli
from msda_jax.masks._comixup import CoMixup
from msda_jax.masks._cutmix import CutMix
from msda_jax.masks._data import DataMixMethod, PairData
from msda_jax.masks._fmix import FMix
from msda_jax.masks._gmix import GMix
from msda_jax.masks._gridmix import GridMix
from msda_jax.masks._guidedmixup import GuidedMixup
from msda_jax.masks._hidden import HiddenMixMethod, ManifoldMixup, PatchUp
from msda_jax.masks._hmix import HMix
from msda_jax.masks._kcutmix import KCutMix
from msda_jax.masks._ksources import KSample, KSourceMethod
from msda_jax.masks._mixpro import MixPro
from msda_jax.masks._mixture import Mixture
from msda_jax.masks._mixup import Mixup
from msda_jax.masks._patches import PatchAligned
from msda_jax.masks._puzzle_energy import PuzzleEnergy
from msda_jax.masks._puzzlemix import PuzzleMix
from msda_jax.masks._resizemix import ResizeMix
from msda_jax.masks._ricap import RICAP
from msda_jax.masks._saliencymix import SaliencyMix
from msda_jax.masks._smmix import SMMix
from msda_jax.masks._smoothmix import SmoothMix
from msda_jax.masks._snapmix import SnapMix
from msda_jax.masks._specmix import SpecMix
from msda_jax.masks._stochastic import StochasticMixupCutMix
from msda_jax.masks._tokenmix import TokenMix
from msda_jax.masks._transmix import TransMix
from msda_jax.masks._videomix import VideoMix

__all__ = [
  "AlignMix",
  "AttentiveCutMix",
  "Bernoulli",
  "CoMixup",
  "CutMix",
  "DataMixMethod",
  "FMix",
  "GMix",
  "GridMix",
  "GuidedMixup",
  "HiddenMixMethod",
  "HMix",
  "KCutMix",
  "KSample",
  "KSourceMethod",
  "ManifoldMixup",
  "MixMethod",
  "MixPro",
  "Mixture",
  "Mixup",
  "PairData",
  "PatchAligned",
  "PatchUp",
  "PuzzleEnergy",
  "PuzzleMix",
  "RICAP",
  "ResizeMix",
  "SMMix",
  "SaliencyMix",
  "Sample",
  "SmoothMix",
  "SnapMix",
  "SpecMix",
  "StochasticMixupCutMix",
  "TokenMix",
  "TransMix",
  "VideoMix",
]
