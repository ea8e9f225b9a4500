"""Stochastic Mixup & CutMix: Mixup with probability ``q``, CutMix otherwise.

The paper's "``M = (1 - lam) 1`` with probability q" is a slip for ``M = lam 1``; its
coefficients are ``q a^mixup + (1 - q) a^cutmix``. As in the official code and timm, each branch
may have its own ``lam`` law (``mixup_alpha``, ``cutmix_alpha``). The switch is a traced
``where``: changing ``q`` never recompiles.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _validate
from msda_jax import lam as lam_laws
from msda_jax.masks._base import MixMethod, method_dataclass, static_field
from msda_jax.masks.cutmix import PLACEMENTS, cutmix_mask, cutmix_mask_mean
from msda_jax.masks.mixup import mixup_mask


def mixup_switch(key: jax.Array, q: ArrayLike) -> jax.Array:
  """Whether the Mixup branch is taken (probability ``q``), from the mask's key."""
  return jax.random.uniform(jax.random.split(key)[0]) < jnp.asarray(q, jnp.float32)


def stochastic_mask(
  key: jax.Array,
  lam: ArrayLike,
  *,
  shape: tuple[int, ...],
  q: ArrayLike = 0.5,
  placement: str = "clip",
) -> jax.Array:
  """Mixup mask with probability ``q``, CutMix mask otherwise.

  Args:
    key: a PRNG key (switch and box).
    lam: traced scalar ratio.
    shape: static spatial shape.
    q: traced probability of the Mixup branch, in [0, 1].
    placement: CutMix box placement, ``"clip"`` or ``"inside"``.

  Returns:
    float32 array of ``shape``.

  >>> m = stochastic_mask(jax.random.key(0), 0.5, shape=(4, 4), q=1.0)
  >>> float(m.min()), float(m.max())
  (0.5, 0.5)
  """
  _validate.check_range("q", q, 0.0, 1.0)
  use_mixup = mixup_switch(key, q)
  box = cutmix_mask(jax.random.split(key)[1], lam, shape=shape, placement=placement)
  return jnp.where(use_mixup, mixup_mask(None, lam, shape=shape), box)


def stochastic_mask_mean(
  key: jax.Array,
  lam: ArrayLike,
  *,
  shape: tuple[int, ...],
  q: ArrayLike = 0.5,
  placement: str = "clip",
) -> jax.Array:
  """Mean of ``stochastic_mask`` with the same arguments (float32 scalar), without the mask.

  >>> float(stochastic_mask_mean(jax.random.key(0), 0.25, shape=(4, 4), q=1.0))
  0.25
  """
  _validate.check_range("q", q, 0.0, 1.0)
  use_mixup = mixup_switch(key, q)
  box = cutmix_mask_mean(jax.random.split(key)[1], lam, shape=shape, placement=placement)
  return jnp.where(use_mixup, jnp.asarray(lam, jnp.float32), box)


@method_dataclass
class StochasticMixupCutMix(MixMethod):
  """Stochastic Mixup & CutMix: Mixup (``lam ~ Beta(mixup_alpha)``) with probability ``q``.

  >>> StochasticMixupCutMix(q=0.5)
  StochasticMixupCutMix(mixup_alpha=1.0, cutmix_alpha=1.0, q=0.5, placement='clip')
  """

  name = "stochastic_mixup_cutmix"
  _positive = ("mixup_alpha", "cutmix_alpha")
  _unit = ("q",)

  mixup_alpha: ArrayLike = 1.0
  cutmix_alpha: ArrayLike = 1.0
  q: ArrayLike = 0.5
  placement: str = static_field(default="clip")

  def _check(self) -> None:
    _validate.check_choice("placement", self.placement, PLACEMENTS)

  def sample_lam(self, key: jax.Array) -> jax.Array:
    # Without the switch, the law is the mixture of both branches' laws.
    key_switch, key_lam = jax.random.split(key)
    use_mixup = jax.random.uniform(key_switch) < self.q
    return lam_laws.sample_beta(key_lam, jnp.where(use_mixup, self.mixup_alpha, self.cutmix_alpha))

  def nominal_lam(self, key: jax.Array, *, shape: tuple[int, ...]) -> jax.Array:
    # The branch's law follows the same switch as the mask.
    del shape
    key_lam, key_mask = jax.random.split(key)
    use_mixup = mixup_switch(key_mask, self.q)
    return lam_laws.sample_beta(key_lam, jnp.where(use_mixup, self.mixup_alpha, self.cutmix_alpha))

  def mask(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
    return stochastic_mask(key, lam, shape=shape, q=self.q, placement=self.placement)

  def mask_mean(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
    return stochastic_mask_mean(key, lam, shape=shape, q=self.q, placement=self.placement)
