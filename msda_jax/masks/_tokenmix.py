"""TokenMix: token blocks of the partner, labels from the token maps of the two unmixed images.

A ViT reads ``N = (H / p)(W / p)`` tokens. TokenMix (ECCV 2022) pastes a set of the partner's
tokens, not one box: ``n = min(N, floor((1 - lam) N) + min_tokens)`` of them, chosen

* ``mask="block"``: block-wise, as BEiT masks tokens: blocks of area ``U(1, n - masked)`` and
  aspect ``exp U(log 0.3, log 1 / 0.3)`` at a uniform position are added while they bring new
  tokens and no more than are missing, ten tries per block; when ten tries in a row fail the mask
  stops short (the reference's rule). At most ``N`` blocks: a ``fori_loop`` of ``N`` fixed steps;
* ``mask="random"``: ``n`` tokens uniformly at random.

``min_tokens`` is the reference's ``minimum_tokens`` (14, one row of DeiT's 14 x 14 grid; the
grid's side when ``None``). The labels are not the area: each image's map over the tokens
(the class-token attention of the unmixed batch under the model, as OpenMixup reads it, or a
teacher's activation map of the true class, as the reference reads it), normalised to sum 1,
gives the image the share of its map on the tokens it keeps and the partner the share of its own
map on the tokens it gave: ``w_i = sum_(t kept) S_i(t)``, ``w_j = sum_(t pasted) S_j(t)`` (the
two need not add to 1, as SnapMix's). The train step computes the maps in ``prepare`` (one
inference pass of the unmixed batch, ``ModelView.attention``); a teacher's maps are given as
``saliency=[B, *S]`` to the ``Mixer`` call.

``lam``: ``Beta(alpha, alpha)`` (OpenMixup), or the reference's constant 0.5 with ``alpha=None``.
Every pair draws its own tokens; ``mode="batch"`` shares ``lam`` and the ``prob`` coin (the
reference draws one mask per batch: the same law for each example).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _bits, _validate
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks._base import Sample
from msda_jax.masks._data import DataMixMethod, PairData
from msda_jax.masks._patches import grid_shape, patch_sides, upsample
from msda_jax.needs import ModelView

MASKS = ("block", "random")
#: tries per block and the aspect range of BEiT's block-wise masking (the reference's constants).
ATTEMPTS, MIN_ASPECT = 10, 0.3
EPS = 1e-8


def block_tokens(key: jax.Array, grid: tuple[int, int], count: jax.Array) -> jax.Array:
  """bool ``[*grid]``: about ``count`` tokens in blocks (BEiT's block-wise masking, module docstring).

  Each of ``N`` fixed steps draws ``ATTEMPTS`` candidate blocks side by side and adds the first
  that brings between 1 and the missing number of tokens; a step with none stops the mask. The
  result has at most ``count`` tokens, and exactly ``count`` unless ten tries in a row failed.
  """
  gh, gw = grid
  rows, cols = jnp.arange(gh)[None, :, None], jnp.arange(gw)[None, None, :]
  low, high = math.log(MIN_ASPECT), math.log(1.0 / MIN_ASPECT)

  def step(i: jax.Array, carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
    masked, done = carry
    missing = count - jnp.sum(masked)
    u = _bits.uniform(jax.random.fold_in(key, i), (4, ATTEMPTS))
    area = 1.0 + u[0] * (missing - 1).astype(jnp.float32)
    aspect = jnp.exp(low + u[1] * (high - low))
    h = jnp.round(jnp.sqrt(area * aspect)).astype(jnp.int32)
    w = jnp.round(jnp.sqrt(area / aspect)).astype(jnp.int32)
    top = jnp.floor(u[2] * (gh - h + 1).astype(jnp.float32)).astype(jnp.int32)
    left = jnp.floor(u[3] * (gw - w + 1).astype(jnp.float32)).astype(jnp.int32)
    t, lft, hh, ww = (v[:, None, None] for v in (top, left, h, w))
    block = (rows >= t) & (rows < t + hh) & (cols >= lft) & (cols < lft + ww)
    new = jnp.sum(block & ~masked[None], axis=(1, 2))
    ok = (h < gh) & (w < gw) & (new > 0) & (new <= missing)
    first = jnp.argmax(ok)
    go = jnp.any(ok) & ~done & (missing > 0)
    return masked | (block[first] & go), done | ~go

  # The carry starts from the inputs (always empty and not done): inside ``shard_map`` the key and
  # the count vary over the devices, and a constant start would differ in type from the carry.
  never = (jax.random.key_data(key).reshape(-1)[0] < 0) | (count < 0)
  start = (jnp.zeros(grid, bool) & never, never)
  return jax.lax.fori_loop(0, gh * gw, step, start)[0]


def random_tokens(key: jax.Array, grid: tuple[int, ...], count: jax.Array) -> jax.Array:
  """bool ``[*grid]``: ``count`` tokens uniformly at random (the ``count`` smallest of uniform scores)."""
  scores = _bits.uniform(key, (math.prod(grid),))
  rank = jnp.argsort(jnp.argsort(scores))
  return (rank < count).reshape(grid)


def token_sums(saliency: jax.Array, grid: tuple[int, ...]) -> jax.Array:
  """``[*grid]``: a map ``[*S]`` summed over each token's pixels."""
  split: list[int] = []
  for n, g in zip(saliency.shape, grid, strict=True):
    split += [g, n // g]
  return jnp.sum(saliency.reshape(split), axis=tuple(range(1, 2 * len(grid), 2)))


def attention_saliency(attention: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """float32 ``[B, *S]``: a token map ``[B, *G]`` spread evenly over each token's pixels (token sums kept)."""
  grid = attention.shape[1:]
  per_pixel = math.prod(n // g for n, g in zip(shape, grid, strict=True))
  spread = jax.vmap(lambda a: upsample(a, shape))(jnp.asarray(attention, jnp.float32))
  return spread / float(per_pixel)


@pytree_dataclass
class TokenMix(DataMixMethod):
  """TokenMix: ``n`` of the partner's tokens (in blocks, or at random), labels from token maps.

  Args:
    alpha: traced ``Beta(alpha, alpha)`` law of ``lam`` (OpenMixup's 1), or ``None`` (default) for
      the reference's constant 0.5.
    patch: static token side in pixels (an int, or one per axis); it must divide the images.
    mask: static ``"block"`` (the reference's default) or ``"random"``.
    min_tokens: static extra tokens pasted beyond ``floor((1 - lam) N)``, an int in ``[0, N]``;
      ``None``: the grid's first side (the reference's 14 on 14 x 14).

  The maps are the ``saliency`` input ``[B, *S]`` (module docstring); ``prepare`` spreads the
  model's class-token attention of the unmixed batch over each token's pixels.

  >>> import numpy as np
  >>> s = np.zeros((8, 8), np.float32); s[:4] = 1.0 / 32  # the image's map: its top half
  >>> data = PairData(jnp.zeros((8, 8, 1)), jnp.ones((8, 8, 1)), jnp.asarray(s), jnp.full((8, 8), 1 / 64))
  >>> out = TokenMix(patch=2).sample(jax.random.key(0), shape=(8, 8), lam=0.5, data=data)
  >>> pasted = np.asarray(out.mask) == 0
  >>> int(pasted.sum()) // 4, bool(np.isclose(float(out.weight), s[~pasted].sum(), atol=1e-6))
  (12, True)
  """

  name = "tokenmix"
  _positive = ("alpha",)
  #: the model output ``prepare`` reads (through ``ModelView.attention``): a model must sow it.
  model_outputs: ClassVar[tuple[str, ...]] = ("attention",)

  alpha: ArrayLike | None = None
  patch: int | tuple[int, ...] = static_field(default=16)
  mask: str = static_field(default="block")
  min_tokens: int | None = static_field(default=None)

  def _check(self) -> None:
    object.__setattr__(self, "patch", patch_sides(self.patch))
    _validate.check_choice("mask", self.mask, MASKS)
    value = self.min_tokens
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
      raise ValueError(f"min_tokens must be None or an int >= 0 (tokens); got {value!r}.")

  def grid(self, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The token grid of images of spatial ``shape``; raises naming ``patch`` or ``min_tokens``."""
    grid = grid_shape(tuple(shape), self.patch)
    if self.mask == "block" and len(grid) != 2:
      raise ValueError(f"mask='block' places 2-d blocks of tokens; got a {len(grid)}-d token grid {grid}.")
    if self.min_tokens is not None and self.min_tokens > math.prod(grid):
      raise ValueError(f"min_tokens={self.min_tokens} is out of range: the token grid {grid} has {math.prod(grid)}.")
    return grid

  def check_input(self, spatial: tuple[int, ...], block: int | None = None) -> None:
    """Raises naming ``patch`` (not dividing the images) or ``min_tokens`` (more than the tokens)."""
    del block
    self.grid(tuple(spatial))

  def draw_lam(self, key: jax.Array, count: int | None = None) -> jax.Array:
    """``Beta(alpha, alpha)`` ratios, or 0.5 with ``alpha=None``: a scalar, or ``[count]``."""
    if self.alpha is not None:
      return super().draw_lam(key, count)
    return jnp.full(() if count is None else (count,), 0.5, jnp.float32)

  def prepare(self, key: jax.Array, model: ModelView, images: jax.Array, labels: jax.Array) -> dict[str, Any]:
    """``{"saliency": [B, *S]}``: the class-token attention of the unmixed batch, spread over each token."""
    del key, labels
    if model.attention is None:
      raise ValueError("TokenMix reads the model's class-token attention: the ModelView has no attention.")
    attention = jax.lax.stop_gradient(model.attention(model.to_input(images)))
    return {"saliency": attention_saliency(attention, images.shape[1:-1])}

  def _pair(self, key: jax.Array, lam: jax.Array, shape: tuple[int, ...], data: PairData) -> Sample:
    grid = self.grid(shape)
    total = math.prod(grid)
    extra = grid[0] if self.min_tokens is None else self.min_tokens
    missing = jnp.floor((1.0 - jnp.clip(lam, 0.0, 1.0)) * total).astype(jnp.int32)
    count = jnp.minimum(total, missing + extra)
    pasted = block_tokens(key, grid, count) if self.mask == "block" else random_tokens(key, grid, count)  # type: ignore[arg-type]
    own = token_sums(data.saliency, grid)
    theirs = token_sums(data.partner_saliency, grid)
    weight = jnp.sum(jnp.where(pasted, 0.0, own)) / (jnp.sum(own) + EPS)
    partner_weight = jnp.sum(jnp.where(pasted, theirs, 0.0)) / (jnp.sum(theirs) + EPS)
    mask = upsample(jnp.where(pasted, 0.0, 1.0).astype(jnp.float32), shape)
    return Sample(lam, mask, weight, None, None, partner_weight)
