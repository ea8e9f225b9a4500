"""SMMix: the partner's most attended square of tokens pasted over the image's least attended one (ICCV 2023).

Self-motivated mixing reads the model twice: before mixing and in the loss.

* **The mix.** One square side ``s`` (in tokens) per batch, uniform over
  ``floor(min_side_ratio g) ... floor(max_side_ratio g)`` (``g`` the token grid's side; the reference's
  0.25 and 0.75: 3 to 10 tokens of DeiT's 14). Each image's class-token attention of the unmixed
  batch (the model in inference mode) picks two ``s x s`` windows of tokens: the image's least
  attended one ``Q`` and its partner's most attended one ``P`` (the first of equal sums, row-major,
  as ``argmin`` / ``argmax``). The partner's tokens of ``P`` are moved into ``Q``: the mask is 0
  on ``Q`` and 1 elsewhere, and ``paste`` moves the partner's window. The label weight is the
  area's, ``w = 1 - s^2 / N``.
* **The loss** (``auxiliary_loss``, added by the train step to the cross-entropy on the area
  targets): (i) fine-grained token labels: a second classifier on the patch tokens (the ViT's
  ``token_head=True``; it sows per-token logits, and a linear head of a mean is the mean of the
  per-token logits) must give the image's label from the mean of the tokens it kept and the
  partner's from the mean of the tokens pasted, half a cross-entropy each; (ii) consistency: the
  Kullback-Leibler divergence from the model's prediction of the mixed image to
  ``softmax(w z_i + (1 - w) z_j)``, ``z`` the unmixed batch's logits (inference mode, constants).

``prepare`` reads both from one model view: the attention spread over each token's pixels (the
``saliency`` input) and the logits (the ``predictions`` input). The reference switches between
SMMix and Mixup per batch (probability 0.5); here SMMix alone (``prob`` for its rate). Its law
draws no ``lam``: the sample's ``lam`` is the area weight of the drawn square.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.tree_util import Partial

from msda_jax import _bits, draws
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks._base import Sample
from msda_jax.masks._data import DataMixMethod, PairData
from msda_jax.masks._patches import grid_shape, patch_means, patch_sides, upsample
from msda_jax.masks._tokenmix import attention_saliency, token_sums
from msda_jax.needs import ModelView, Needs


def window_sums(tokens: jax.Array, side: jax.Array) -> jax.Array:
  """``[gh, gw]``: the sum of ``tokens [gh, gw]`` over the ``side x side`` window at each top-left
  corner (an integral image), ``nan`` where the window leaves the grid."""
  gh, gw = tokens.shape
  integral = jnp.pad(jnp.cumsum(jnp.cumsum(tokens, 0), 1), ((1, 0), (1, 0)))
  r, c = jnp.arange(gh)[:, None], jnp.arange(gw)[None, :]
  r2, c2 = jnp.minimum(r + side, gh), jnp.minimum(c + side, gw)
  sums = integral[r2, c2] - integral[r, c2] - integral[r2, c] + integral[r, c]
  return jnp.where((r + side <= gh) & (c + side <= gw), sums, jnp.nan)


def corner(sums: jax.Array, largest: bool) -> jax.Array:
  """int32 ``[2]``: the row-major first top-left corner of the smallest (or largest) window sum."""
  flat = sums.reshape(-1)
  index = jnp.nanargmax(flat) if largest else jnp.nanargmin(flat)
  return jnp.stack(jnp.unravel_index(index, sums.shape)).astype(jnp.int32)


def move_window(partner: jax.Array, source: jax.Array, target: jax.Array) -> jax.Array:
  """``partner [*S, C]`` shifted so that its pixel ``source + d`` lands at ``target + d`` (clamped at the border)."""
  out = partner
  for axis in range(source.shape[0]):
    index = jnp.clip(jnp.arange(partner.shape[axis]) - target[axis] + source[axis], 0, partner.shape[axis] - 1)
    out = jnp.take(out, index, axis=axis)
  return out


def _moved(partners: jax.Array, source: jax.Array, target: jax.Array) -> jax.Array:
  """``move_window`` of one partner (corners ``[d]``) or of a batch (``[B, d]``)."""
  if source.ndim == 1:
    return move_window(partners, source, target)
  return jax.vmap(move_window)(partners, source, target)


@pytree_dataclass
class SMMix(DataMixMethod):
  """SMMix: the partner's most attended ``s x s`` tokens over the image's least attended ones.

  Args:
    patch: static token side in pixels (an int); it must divide the images.
    min_side_ratio, max_side_ratio: static bounds of the square's side over the grid's side
      (the reference's 0.25 and 0.75), ``0 < min <= max <= 1``, at least one token.

  Reads the ``saliency`` (attention spread over the tokens) and ``predictions`` (logits) of the
  unmixed batch, computed by ``prepare``; trains a ViT with ``token_head=True`` (module docstring).

  >>> import numpy as np
  >>> a = np.ones((8, 8), np.float32); a[:4, :4] = 0.0  # the image's top-left tokens unattended
  >>> b = np.ones((8, 8), np.float32); b[4:, 4:] = 5.0  # the partner's bottom-right attended
  >>> data = PairData(jnp.zeros((8, 8, 1)), jnp.ones((8, 8, 1)), jnp.asarray(a), jnp.asarray(b))
  >>> s = SMMix(patch=2, min_side_ratio=0.5, max_side_ratio=0.5).sample(jax.random.key(0), shape=(8, 8), data=data)
  >>> np.argwhere(np.asarray(s.mask) == 0).min(0).tolist(), float(s.weight)
  ([0, 0], 0.75)
  """

  name = "smmix"
  takes_lam: ClassVar[bool] = False
  #: the model outputs ``prepare`` reads (the attention) and the loss reads (the per-token logits).
  model_outputs: ClassVar[tuple[str, ...]] = ("attention", "token_logits")

  patch: int = static_field(default=16)
  min_side_ratio: float = static_field(default=0.25)
  max_side_ratio: float = static_field(default=0.75)

  def _check(self) -> None:
    if not isinstance(patch_sides(self.patch), int):
      raise ValueError(f"patch must be a positive int (square tokens); got {self.patch!r}.")
    low, high = self.min_side_ratio, self.max_side_ratio
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in (low, high)) or not 0 < low <= high <= 1:
      raise ValueError(f"min_side_ratio and max_side_ratio must satisfy 0 < min <= max <= 1; got {low!r}, {high!r}.")

  def needs(self) -> Needs:
    """The attention (as ``saliency``) and logits (``predictions``) of the unmixed batch; the per-token
    logits of the mixed batch."""
    return Needs(inputs=("saliency", "predictions"), outputs=("token_logits",))

  def sides(self, shape: tuple[int, ...]) -> tuple[tuple[int, int], int, int]:
    """``(grid, smallest side, largest side)`` in tokens; raises naming ``patch`` or the ratios."""
    grid = grid_shape(tuple(shape), self.patch)
    if len(grid) != 2 or grid[0] != grid[1]:
      raise ValueError(f"SMMix mixes square token grids (2-d, equal sides); got the token grid {grid}.")
    low, high = int(grid[0] * self.min_side_ratio), int(grid[0] * self.max_side_ratio)
    if low < 1:
      raise ValueError(f"min_side_ratio={self.min_side_ratio} leaves no token on the {grid[0]}-token side.")
    return (grid[0], grid[1]), low, high

  def check_input(self, spatial: tuple[int, ...], block: int | None = None) -> None:
    """Raises naming ``patch`` (not dividing the images) or ``min_side_ratio`` (no token)."""
    del block
    self.sides(tuple(spatial))

  def draw_lam(self, key: jax.Array, count: int | None = None) -> jax.Array:
    """The uniform draws that pick the square's side (scalar, or ``[count]``); the sample's ``lam`` is
    its area weight."""
    return _bits.uniform(key, () if count is None else (count,))

  def prepare(self, key: jax.Array, model: ModelView, images: jax.Array, labels: jax.Array) -> dict[str, Any]:
    """``{"saliency": [B, *S], "predictions": [B, K]}`` of the unmixed batch, in inference mode."""
    del key, labels
    if model.attention is None or model.logits is None:
      raise ValueError("SMMix reads the model's class-token attention and logits: the ModelView gives none.")
    x = model.to_input(images)
    attention = jax.lax.stop_gradient(model.attention(x))
    predictions = jax.lax.stop_gradient(model.logits(x))
    return {"saliency": attention_saliency(attention, images.shape[1:-1]), "predictions": predictions}

  def draw(self, key: jax.Array, sources: tuple[Any, ...], lam: Any, prob: Any, mixer: Any) -> draws.Draw:
    """The pairs' draw, its ``lam`` the area weight of each square (1 when unmixed)."""
    drawn = super().draw(key, sources, lam, prob, mixer)
    return drawn._replace(lam=drawn.weight)

  def _sample_pairs(self, key: jax.Array, shape: tuple[int, ...], lam: jax.Array, data: PairData) -> Sample:
    pairs = super()._sample_pairs(key, shape, lam, data)
    assert pairs.paste is not None
    return pairs._replace(paste=Partial(_moved, **pairs.paste.keywords))

  def _pair(self, key: jax.Array, lam: jax.Array, shape: tuple[int, ...], data: PairData) -> Sample:
    del key
    grid, low, high = self.sides(shape)
    side = low + jnp.minimum(jnp.floor(lam * (high - low + 1)).astype(jnp.int32), high - low)
    quiet = corner(window_sums(token_sums(data.saliency, grid), side), largest=False)
    loud = corner(window_sums(token_sums(data.partner_saliency, grid), side), largest=True)
    rows, cols = jnp.arange(grid[0])[:, None], jnp.arange(grid[1])[None, :]
    inside = (rows >= quiet[0]) & (rows < quiet[0] + side) & (cols >= quiet[1]) & (cols < quiet[1] + side)
    mask = upsample(jnp.where(inside, 0.0, 1.0).astype(jnp.float32), shape)
    weight = 1.0 - (side * side).astype(jnp.float32) / float(math.prod(grid))
    paste = Partial(move_window, source=loud * self.patch, target=quiet * self.patch)
    return Sample(weight, mask, weight, paste, None, None)

  def auxiliary_loss(
    self, logits: jax.Array, targets: jax.Array, info: Any, outputs: dict[str, Any], inputs: dict[str, Any]
  ) -> jax.Array:
    """Half the fine-grained token cross-entropies plus the consistency divergence, averaged over the batch.

    Args:
      logits: ``[B, K]`` the model's logits of the mixed batch.
      targets: ``[B, K]`` the unmixed targets.
      info: the ``MixInfo`` (masks, partners, area weights).
      outputs: ``{"token_logits": [B, *G, K]}``, sown by a ViT with ``token_head=True``.
      inputs: ``{"predictions": [B, K]}``, the unmixed batch's logits from ``prepare``.
    """
    if "token_logits" not in outputs:
      raise ValueError("SMMix reads the model output 'token_logits': build the ViT with token_head=True.")
    if "predictions" not in inputs:
      raise ValueError("SMMix reads the input 'predictions' (the unmixed batch's logits), made by its prepare.")
    per_token = outputs["token_logits"]
    grid = tuple(per_token.shape[1:-1])
    kept = patch_means(info.mask, grid).reshape(per_token.shape[0], -1, 1)
    flat = per_token.reshape(per_token.shape[0], -1, per_token.shape[-1])
    own_mean = jnp.sum(flat * kept, 1) / jnp.maximum(jnp.sum(kept, 1), 1e-8)
    pasted = 1.0 - kept
    count = jnp.sum(pasted, axis=(1, 2))
    their_mean = jnp.sum(flat * pasted, 1) / jnp.maximum(count, 1e-8)[:, None]
    cross_entropy = lambda z, y: -jnp.sum(y * jax.nn.log_softmax(z), axis=-1)
    fine = 0.5 * (
      cross_entropy(own_mean, targets) + jnp.where(count > 0, cross_entropy(their_mean, targets[info.partner]), 0.0)
    )
    z = jax.lax.stop_gradient(inputs["predictions"])
    w = info.weight[:, None]
    q = jax.nn.softmax(w * z + (1.0 - w) * z[info.partner], axis=-1)
    consistency = jnp.sum(q * (jnp.log(jnp.maximum(q, 1e-30)) - jax.nn.log_softmax(logits)), axis=-1)
    return jnp.mean(fine + consistency)
