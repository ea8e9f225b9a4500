"""The methods by name: a registry built from the classes, presets, and ``from_string``.

Each class states its defaults once; a preset (``msda_jax.hmix(r=0.75)``) builds its class with
the given keywords, and ``from_string("hmix(alpha=1.0, r=0.75)")`` does the same from a config
string. A bare name (``"cutmix"``) takes the defaults and ``"none"`` (or ``"vanilla"``) means no
mixing; ``"mix_k_batch(k=3, alpha=1.0)"`` names k-sample mixing (``msda_jax.KMix``). Only
literal keyword arguments are accepted.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from msda_jax.masks._bernoulli import Bernoulli
from msda_jax.masks._cutmix import CutMix
from msda_jax.masks._fmix import FMix
from msda_jax.masks._gmix import GMix
from msda_jax.masks._hmix import HMix
from msda_jax.masks._mixup import Mixup
from msda_jax.masks._puzzlemix import PuzzleMix
from msda_jax.masks._resizemix import ResizeMix
from msda_jax.masks._saliencymix import SaliencyMix
from msda_jax.masks._stochastic import StochasticMixupCutMix
from msda_jax.spec import ALIAS_KEYWORDS, METHODS, _keywords, from_string  # noqa: F401

M = TypeVar("M")


def _preset(cls: type[M], doc: str) -> Callable[..., M]:
  """A function building ``cls`` from keywords (and their aliases), with the class's signature and ``doc``."""

  @functools.wraps(cls, assigned=("__module__",), updated=())
  def build(**kwargs: Any) -> M:
    return cls(**_keywords(cls, kwargs))

  signature = inspect.signature(cls)
  aliases = [inspect.Parameter(a, inspect.Parameter.KEYWORD_ONLY, default=None) for a in ALIAS_KEYWORDS.get(cls, {})]
  params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()]
  build.__signature__ = signature.replace(parameters=params + aliases, return_annotation=cls.__name__)  # type: ignore[attr-defined]
  build.__name__ = build.__qualname__ = cls.name  # type: ignore[attr-defined]
  build.__doc__ = doc
  return build


mixup = _preset(Mixup, "Mixup, ``lam ~ Beta(alpha, alpha)`` (Table 2: alpha 1; Table 3: alpha 0.8).")
cutmix = _preset(CutMix, "CutMix, ``lam ~ Beta(alpha, alpha)``, box clipped at the border (Tables 2 and 3: alpha 1).")
stochastic_mixup_cutmix = _preset(
  StochasticMixupCutMix,
  "Stochastic Mixup & CutMix: Mixup with probability ``q = 0.5`` (the paper's choice); "
  "``switch_prob`` (timm's) sets ``q = 1 - switch_prob``.",
)
hmix = _preset(HMix, "HMix, ``alpha = 1`` and ``r = 0.5`` (Table 2; Table 3 uses ``r = 0.75``).")
gmix = _preset(GMix, "GMix, ``alpha = 0.5`` (Table 2; Table 3 uses ``alpha = 1``), the official code's scale.")
bernoulli = _preset(Bernoulli, "I.i.d. Bernoulli pixel masks, ``lam ~ Beta(alpha, alpha)`` (Figure 1 uses alpha 1).")
fmix = _preset(FMix, "FMix: binarised low-frequency Fourier masks of exact area, decay power 3.")
resizemix = _preset(ResizeMix, "ResizeMix: the partner shrunk by a side ratio uniform in [0.1, 0.8] and pasted.")
puzzlemix = _preset(
  PuzzleMix,
  "PuzzleMix with the reference's CIFAR-100 settings (alpha 1, n_labels 3, eta 0.2, beta 1.2, gamma 0.5, "
  "neigh_size 4, transport on, t_size 4, t_eps 0.8); needs ``saliency`` (Table 2's data-dependent row).",
)
saliencymix = _preset(SaliencyMix, "SaliencyMix: CutMix's box at the partner's saliency peak; needs ``saliency``.")

#: the presets by name (``from_string`` builds the classes of ``METHODS`` directly).
PRESETS: dict[str, Callable[..., Any]] = {
  "mixup": mixup,
  "cutmix": cutmix,
  "stochastic_mixup_cutmix": stochastic_mixup_cutmix,
  "hmix": hmix,
  "gmix": gmix,
  "bernoulli": bernoulli,
  "fmix": fmix,
  "resizemix": resizemix,
  "puzzlemix": puzzlemix,
  "saliencymix": saliencymix,
}
