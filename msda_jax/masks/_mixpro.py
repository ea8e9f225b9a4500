"""MixPro: MaskMix's random grid of whole cells, and progressive attention labelling (ICLR 2023).

**MaskMix.** The image is cut into cells of ``cell x cell`` pixels (a multiple of the ViT's
patch: 56 for DeiT's 16, so a 4 x 4 grid on 224 x 224); the image keeps ``ceil(lam N)`` of the
``N`` cells, chosen uniformly at random, and the partner fills the rest, with
``lam ~ Beta(alpha, alpha)``. The area weight is ``ceil(lam N) / N`` (the mask's mean).

**Progressive attention labelling (PAL).** After the forward pass of the mixed batch, the image's
share of the class token's attention (last block, averaged over heads) over the tokens it kept,
``lam_a = sum_t a_t M_t / sum_t a_t``, is blended with the area weight by how well the model
already predicts the area-mixed target:

    w = sim lam_a + (1 - sim) lam_area,   sim = cos(y_area, softmax(logits)),

so early in training, when predictions are far from the targets, the label is the area's, and
the attention takes over as the model learns. The image gets ``w``, the partner ``1 - w``. The
reference keeps the gradient of the loss through ``sim``; here, as every relabelled target, ``w``
is a constant of the loss (``stop_gradient``). The reference draws one ``lam`` per batch and
each image its own cells: ``mode="batch"``.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks._base import MixMethod, Sample
from msda_jax.masks._patches import grid_shape, patch_sides, upsample
from msda_jax.masks._tokenmix import random_tokens
from msda_jax.masks._transmix import attention_weight, check_attention
from msda_jax.needs import Needs


@pytree_dataclass
class MixPro(MixMethod):
  """MixPro: ``ceil(lam N)`` random cells of the image kept, labels blended from area to attention.

  Args:
    alpha: traced ``Beta(alpha, alpha)`` law of ``lam`` (the reference's 1).
    cell: static side of a mask cell in pixels (an int, or one per axis), a multiple of the ViT's
      patch; it must divide the images.

  The model must sow ``"attention"`` ``[B, *G]``; ``relabel`` also reads the logits (module docstring).

  >>> s = MixPro(cell=4).sample(jax.random.key(0), shape=(16, 16), lam=0.3)
  >>> float(s.weight), float(s.mask.mean())  # ceil(0.3 * 16) = 5 of the 16 cells kept
  (0.3125, 0.3125)
  """

  name = "mixpro"
  _positive = ("alpha",)

  alpha: ArrayLike = 1.0
  cell: int | tuple[int, ...] = static_field(default=56)

  def _check(self) -> None:
    object.__setattr__(self, "cell", patch_sides(self.cell, "cell"))

  def check_input(self, spatial: tuple[int, ...], block: int | None = None) -> None:
    """Raises naming ``cell`` unless it divides the images."""
    del block
    grid_shape(tuple(spatial), self.cell, "cell")

  def needs(self) -> Needs:
    """The attention and the logits of the mixed batch, read after the forward pass."""
    return Needs(outputs=("attention", "logits"))

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del data
    lam = self._beta_lam(key_lam, lam)
    grid = grid_shape(shape, self.cell, "cell")
    total = math.prod(grid)
    kept = jnp.ceil(jnp.clip(lam, 0.0, 1.0) * total).astype(jnp.int32)
    cells = random_tokens(key_mask, grid, kept)
    mask = upsample(cells.astype(jnp.float32), shape)
    return Sample(lam, mask, kept.astype(jnp.float32) / float(total))

  def image_weight(self, targets: jax.Array, info: Any, attention: jax.Array, logits: jax.Array) -> jax.Array:
    """``w = sim lam_a + (1 - sim) lam_area`` per example, float32 ``[B]`` (module docstring)."""
    area = info.weight
    w = area[:, None]
    mixed = w * targets + (1.0 - w) * targets[info.partner]
    probs = jax.nn.softmax(jnp.asarray(logits, jnp.float32), axis=-1)
    norms = jnp.linalg.norm(mixed, axis=-1) * jnp.linalg.norm(probs, axis=-1)
    sim = jnp.sum(mixed * probs, axis=-1) / jnp.maximum(norms, 1e-8)
    attended = 1.0 - attention_weight(info.mask, attention)
    return sim * attended + (1.0 - sim) * area

  def relabel(self, targets: jax.Array, info: Any, outputs: dict[str, Any]) -> jax.Array:
    """The targets mixed by PAL's weight: ``w targets + (1 - w) targets[partner]``, ``[B, K]``."""
    for name in ("attention", "logits"):
      if name not in outputs:
        raise ValueError(f"MixPro reads the model output {name!r} of the mixed batch.")
    check_attention(outputs["attention"], tuple(info.mask.shape))
    w = self.image_weight(targets, info, outputs["attention"], outputs["logits"])[:, None]
    return w * targets + (1.0 - w) * targets[info.partner]
