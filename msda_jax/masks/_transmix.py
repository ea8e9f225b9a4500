"""TransMix: the label weight of each mixed image re-read from the model's attention after the forward pass.

A ViT's class token attends to the patch tokens; in the last block that attention says which
tokens the prediction rests on. TransMix mixes as its base method does (a CutMix box, or the
Mixup/CutMix switch of DeiT's recipe), runs the forward pass on the mixed batch, and then gives
the partner the weight

    lam_j = ratio * (1 - w) + (1 - ratio) * sum_t a_t s_t / sum_t a_t,

where ``w`` is the realised area weight of the image (the mean of ``M``), ``a_t`` the class
token's attention to token ``t`` averaged over heads (``[B, *G]``, sown by the model as
``"attention"``, under ``stop_gradient``), and ``s_t = 1 - mean_{pixels of t} M`` the partner's
share of token ``t``. The image keeps ``1 - lam_j``. The reference code (``ratio = 0.5``) reads
``s_t`` from one pixel per token (nearest downsampling of the box); here it is the token's pixel
mean, the same for a box aligned to the patches (``PatchAligned``) and the exact share when a box
cuts a token. A Mixup mask has ``s_t = 1 - lam`` everywhere, so its weight is unchanged, as in
the reference, where only the CutMix branch is relabelled.

This is the train step's "after the forward pass" half of the batch layer: ``needs().outputs``
names ``"attention"``, and ``relabel`` turns the unmixed targets, the mix's ``MixInfo`` and the
attention into the targets trained on. The forward pass is the training one: no second pass.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax._dataclass import pytree_dataclass
from msda_jax.masks._base import MixMethod, Sample
from msda_jax.masks._cutmix import CutMix
from msda_jax.masks._patches import patch_means
from msda_jax.masks._wrapped import Wrapped
from msda_jax.needs import Needs


def attention_weight(masks: jax.Array, attention: jax.Array) -> jax.Array:
  """The partner's share of the attention: ``sum_t a_t s_t / sum_t a_t`` per example, ``[B]``.

  Args:
    masks: float ``[B, *S]`` the masks ``M`` (1 where the image is kept).
    attention: float ``[B, *G]`` nonnegative attention over the token grid ``G``, ``S`` a multiple of ``G``.

  An example whose attention sums to 0 (or is not finite) gets the area share ``1 - mean(M)``.

  >>> m = jnp.array([[[1.0, 0.0], [1.0, 1.0]]])
  >>> round(float(attention_weight(m, jnp.array([[[0.1, 0.6], [0.2, 0.1]]]))[0]), 6)
  0.6
  """
  grid = tuple(attention.shape[1:])
  attention = jnp.asarray(attention, jnp.float32)
  share = 1.0 - patch_means(jnp.asarray(masks, jnp.float32), grid)
  axes = tuple(range(1, attention.ndim))
  total = jnp.sum(attention, axis=axes)
  pasted = jnp.sum(attention * share, axis=axes)
  usable = jnp.isfinite(total) & jnp.isfinite(pasted) & (total > 0)
  area = jnp.mean(share, axis=axes)
  return jnp.where(usable, pasted / jnp.where(usable, total, 1.0), area)


def check_attention(attention: Any, masks_shape: tuple[int, ...]) -> None:
  """Raises naming ``attention`` unless it is ``[B, *G]`` with ``G`` dividing the masks' ``[B, *S]``."""
  shape = tuple(np.shape(attention))
  batch, spatial = masks_shape[0], tuple(masks_shape[1:])
  if len(shape) != 1 + len(spatial) or shape[0] != batch:
    raise ValueError(
      f"attention must be the class token's attention over the token grid, [B, *G] with B = {batch} and "
      f"{len(spatial)} grid axes; got shape {shape}."
    )
  if any(g < 1 or n % g for n, g in zip(spatial, shape[1:], strict=True)):
    raise ValueError(
      f"attention's token grid {shape[1:]} must divide the images' spatial shape {spatial} (whole patches)."
    )


@pytree_dataclass
class TransMix(Wrapped):
  """``method``'s mixing, its labels re-weighted by the last block's class-token attention (CVPR 2022).

  Args:
    method: a two-source mask-only method (default ``CutMix()``; DeiT's recipe is
      ``Mixture((Mixup(0.8), CutMix(1.0)))``; ``PatchAligned(CutMix(), p)`` keeps tokens whole).
    ratio: traced float32 in [0, 1], the area term's weight (the reference's 0.5).

  The model must sow ``"attention"`` ``[B, *G]`` (``msda_jax.train.models.ViT`` does); ``relabel``
  computes the targets (module docstring). Outside a train step, ``relabel(targets, info,
  {"attention": a})`` does the same for any model.

  >>> import msda_jax
  >>> TransMix()
  TransMix(method=CutMix(alpha=1.0, placement='clip', box_sides='floor', minmax=None), ratio=0.5)
  """

  name = "transmix"
  _unit = ("ratio",)

  method: MixMethod = CutMix()
  ratio: ArrayLike = 0.5

  role = "TransMix relabels"

  def needs(self) -> Needs:
    """The model's ``"attention"`` of the mixed batch, read after the forward pass."""
    return Needs(outputs=("attention",))

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del data
    drawn = self.method._sample(key_lam, key_mask, lam, shape, None)
    return Sample(drawn.lam, jnp.broadcast_to(jnp.asarray(drawn.mask, jnp.float32), shape), drawn.weight)

  def partner_weight(self, masks: jax.Array, attention: jax.Array) -> jax.Array:
    """``lam_j = ratio (1 - mean M) + (1 - ratio) attention_weight``: float32 ``[B]``."""
    axes = tuple(range(1, masks.ndim))
    area = 1.0 - jnp.mean(jnp.asarray(masks, jnp.float32), axis=axes)
    ratio = jnp.asarray(self.ratio, jnp.float32)
    return ratio * area + (1.0 - ratio) * attention_weight(masks, attention)

  def relabel(self, targets: jax.Array, info: Any, outputs: dict[str, Any]) -> jax.Array:
    """The targets mixed by the attention-corrected partner weight (module docstring).

    Args:
      targets: the unmixed targets ``[B, K]``.
      info: the ``MixInfo`` of the mix (its masks and partners).
      outputs: ``{"attention": [B, *G]}``, the class token's attention over the token grid.

    Returns:
      ``(1 - lam_j) targets + lam_j targets[partner]``, ``[B, K]``.
    """
    if "attention" not in outputs:
      raise ValueError("TransMix reads the model output 'attention' ([B, *G], the class token's attention).")
    check_attention(outputs["attention"], tuple(info.mask.shape))
    lam_j = self.partner_weight(info.mask, outputs["attention"])[:, None]
    return (1.0 - lam_j) * targets + lam_j * targets[info.partner]
