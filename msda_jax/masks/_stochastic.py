"""Stochastic Mixup & CutMix: Mixup with probability ``q``, CutMix otherwise.

The paper's "``M = (1 - lam) 1`` with probability q" is a slip for ``M = lam 1``; its
coefficients are ``q a^mixup + (1 - q) a^cutmix``. As in the official code and timm, each branch
may have its own ``lam`` law (``mixup_alpha``, ``cutmix_alpha``). The switch is a traced
``where``: changing ``q`` never recompiles.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _bits, lam_laws
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks._base import MixMethod, Sample
from msda_jax.masks._cutmix import _cutmix, check_box_options
from msda_jax.masks._mixup import _mixup


def _stochastic(
  key_lam: jax.Array,
  key_mask: jax.Array,
  lam: jax.Array | None,
  alphas: tuple[ArrayLike, ArrayLike],
  q: ArrayLike,
  shape: tuple[int, ...],
  placement: str,
  sides: str,
) -> Sample:
  """One switch ``u < q`` (from the mask's key), then Mixup's or CutMix's ``lam``, mask and weight.

  ``lam`` is drawn (when not given) from the law of the branch the switch takes, ``alphas =
  (mixup_alpha, cutmix_alpha)``.
  """
  key_switch, key_box = _bits.split(key_mask)
  use_mixup = _bits.uniform(key_switch, ()) < jnp.asarray(q, jnp.float32)
  if lam is None:
    lam = lam_laws.sample_beta(key_lam, jnp.where(use_mixup, alphas[0], alphas[1]))
  box, box_mean = _cutmix(key_box, lam, shape, placement, sides)
  mixup = _mixup(lam, shape)
  return Sample(lam, jnp.where(use_mixup, mixup.mask, box), jnp.where(use_mixup, mixup.weight, box_mean))


@pytree_dataclass
class StochasticMixupCutMix(MixMethod):
  """Stochastic Mixup & CutMix: Mixup (``lam ~ Beta(mixup_alpha)``) with probability ``q``.

  Otherwise CutMix (``lam ~ Beta(cutmix_alpha)``, box ``placement``). The switch is drawn once
  and decides both the law of ``lam`` and the mask.

  >>> StochasticMixupCutMix(q=0.5)
  StochasticMixupCutMix(mixup_alpha=1.0, cutmix_alpha=1.0, q=0.5, placement='clip', box_sides='floor')
  >>> m = StochasticMixupCutMix(q=1.0).sample(jax.random.key(0), shape=(4, 4), lam=0.5).mask
  >>> float(m.min()), float(m.max())
  (0.5, 0.5)
  """

  name = "stochastic_mixup_cutmix"
  _positive = ("mixup_alpha", "cutmix_alpha")
  _unit = ("q",)

  mixup_alpha: ArrayLike = 1.0
  cutmix_alpha: ArrayLike = 1.0
  q: ArrayLike = 0.5
  placement: str = static_field(default="clip")
  box_sides: str = static_field(default="floor")

  def _check(self) -> None:
    check_box_options(self.placement, self.box_sides)

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del data
    alphas = (self.mixup_alpha, self.cutmix_alpha)
    return _stochastic(key_lam, key_mask, lam, alphas, self.q, shape, self.placement, self.box_sides)
