"""A vision transformer (Dosovitskiy et al. 2021; DeiT's training sizes) whose class-token attention can be read.

Patch embedding (a ``patch x patch`` convolution of stride ``patch``), a class token and learned
position embeddings, ``depth`` pre-norm blocks (LayerNorm, multi-head self-attention, residual;
LayerNorm, a GELU MLP of ``mlp_ratio`` times the width, residual), a final LayerNorm and a linear
head on the class token. The attention is computed explicitly, so the last block's attention
from the class token to the patches, averaged over the heads, is available from the same forward
pass: under ``nnx.capture(model, nnx.Intermediate)`` the model sows it as ``"attention"``
(float32 ``[B, H / patch, W / patch]``, under ``stop_gradient``; each row of the full attention
sums to 1, so the patches' share is below 1 by the class token's own weight). Outside a capture
nothing is sown.

The mixing hook (``model(x, mix=hook)``) is applied to the image (layer 0) and to the tokens
``[B, 1 + N, D]`` after each block (layers 1 to ``depth``): ``num_stages = depth``.

Sizes (``MODELS``): ``vit_tiny`` is DeiT-Tiny (224 x 224, patch 16, width 192, 12 blocks, 3
heads: 5,717,416 parameters with 1,000 classes); ``vit_cifar`` is a 32 x 32 variant (patch 4,
width 192, 9 blocks, 3 heads); ``vit_digits`` a 16 x 16 one (patch 4, width 64, 4 blocks, 2 heads).
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from msda_jax.train.models import _layers


class Block(nnx.Module):
  """A pre-norm transformer block ``[B, T, D] -> ([B, T, D], attention [B, heads, T, T])``."""

  def __init__(self, width: int, heads: int, mlp_ratio: int, *, dtype: Any, rngs: nnx.Rngs):
    if width % heads:
      raise ValueError(f"width must be a multiple of heads; got width={width}, heads={heads}.")
    self.heads = heads
    self.norm1 = nnx.LayerNorm(width, epsilon=1e-6, dtype=dtype, rngs=rngs)
    self.qkv = nnx.Linear(width, 3 * width, dtype=dtype, rngs=rngs)
    self.proj = nnx.Linear(width, width, dtype=dtype, rngs=rngs)
    self.norm2 = nnx.LayerNorm(width, epsilon=1e-6, dtype=dtype, rngs=rngs)
    self.fc1 = nnx.Linear(width, mlp_ratio * width, dtype=dtype, rngs=rngs)
    self.fc2 = nnx.Linear(mlp_ratio * width, width, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    b, t, d = x.shape
    q, k, v = jnp.split(self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, d // self.heads), 3, axis=2)
    q, k, v = (a[:, :, 0].transpose(0, 2, 1, 3) for a in (q, k, v))  # [B, heads, T, d_h]
    scores = jnp.einsum("bhqc,bhkc->bhqk", q, k) / jnp.sqrt(jnp.asarray(d // self.heads, q.dtype))
    attention = jax.nn.softmax(scores.astype(jnp.float32), axis=-1)
    out = jnp.einsum("bhqk,bhkc->bhqc", attention.astype(v.dtype), v).transpose(0, 2, 1, 3).reshape(b, t, d)
    x = x + self.proj(out)
    x = x + self.fc2(nnx.gelu(self.fc1(self.norm2(x))))
    return x, attention


class ViT(nnx.Module):
  """A ViT classifier: ``[B, H, W, C]`` images (``H = W = image_size``) to ``[B, K]`` logits.

  Args:
    num_classes: static number of classes ``K``.
    width: the token width ``D`` (192 for DeiT-Tiny).
    depth: the number of blocks.
    heads: attention heads per block (dividing ``width``).
    patch: the patch side (dividing ``image_size``).
    image_size: the input side.
    in_channels: image channels.
    mlp_ratio: the MLP's hidden width over ``D``.
    dtype: computation dtype; parameters are float32 and logits are returned in float32.
    rngs: random streams for the initialisation.

  >>> model = ViT(10, width=16, depth=2, heads=2, patch=4, image_size=16, rngs=nnx.Rngs(0))
  >>> model(jnp.zeros((2, 16, 16, 3))).shape, model.num_stages, model.grid
  ((2, 10), 2, (4, 4))
  """

  #: the options a training config may set (``model_token_head``), with their choices.
  OPTIONS: ClassVar[dict[str, tuple[Any, ...]]] = {"token_head": (False, True)}

  def __init__(
    self,
    num_classes: int,
    *,
    width: int = 192,
    depth: int = 12,
    heads: int = 3,
    patch: int = 16,
    image_size: int = 224,
    in_channels: int = 3,
    mlp_ratio: int = 4,
    token_head: bool = False,
    dtype: Any = jnp.float32,
    rngs: nnx.Rngs,
  ):
    for name, value in (("width", width), ("depth", depth), ("heads", heads), ("patch", patch)):
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}.")
    if image_size % patch:
      raise ValueError(f"patch={patch} must divide image_size={image_size}.")
    self.patch = patch
    self.image_size = image_size
    self.grid = (image_size // patch, image_size // patch)
    tokens = self.grid[0] * self.grid[1]
    self.embed = nnx.Conv(
      in_channels, width, (patch, patch), strides=(patch, patch), padding="VALID", dtype=dtype, rngs=rngs
    )
    init = nnx.initializers.truncated_normal(0.02)
    self.cls_token = nnx.Param(jnp.zeros((1, 1, width), jnp.float32))
    self.position = nnx.Param(init(rngs.params(), (1, 1 + tokens, width), jnp.float32))
    self.blocks = nnx.List([Block(width, heads, mlp_ratio, dtype=dtype, rngs=rngs) for _ in range(depth)])
    self.norm = nnx.LayerNorm(width, epsilon=1e-6, dtype=dtype, rngs=rngs)
    self.head = _layers.dense(width, num_classes, dtype=dtype, rngs=rngs)
    # SMMix's second classifier, on the patch tokens (its per-token logits are sown under capture).
    self.token_head = _layers.dense(width, num_classes, dtype=dtype, rngs=rngs) if token_head else None
    self.num_stages = depth
    #: what the model sows under ``nnx.capture`` for a method to read (``Needs.outputs``).
    self.sown = ("attention", "token_logits") if token_head else ("attention",)

  def __call__(self, x: jax.Array, mix: _layers.MixHook = None) -> jax.Array:
    """Logits of ``x``; ``mix(layer, h)`` is applied to the image (layer 0) and to the tokens after each block."""
    if x.shape[1:3] != (self.image_size, self.image_size):
      raise ValueError(f"images must be {self.image_size} x {self.image_size} for this ViT; got {x.shape[1:3]}.")
    x = _layers.mixed(mix, 0, x)
    patches = self.embed(x)
    b = patches.shape[0]
    tokens = patches.reshape(b, -1, patches.shape[-1])
    cls = jnp.broadcast_to(self.cls_token[...].astype(tokens.dtype), (b, 1, tokens.shape[-1]))
    out = jnp.concatenate([cls, tokens], axis=1) + self.position[...].astype(tokens.dtype)
    attention = None
    for index, block in enumerate(self.blocks):
      out, attention = block(out)
      out = _layers.mixed(mix, index + 1, out)
    if hasattr(self, "__captures__"):  # inside nnx.capture: what TransMix-like methods read
      cls_to_patches = jnp.mean(attention[:, :, 0, 1:], axis=1).reshape(b, *self.grid)  # type: ignore[index]
      self.sow(nnx.Intermediate, "attention", jax.lax.stop_gradient(cls_to_patches))
    normed = self.norm(out)
    if self.token_head is not None and hasattr(self, "__captures__"):
      per_token = _layers.logits_float32(self.token_head(normed[:, 1:]))  # trained through the method's loss
      self.sow(nnx.Intermediate, "token_logits", per_token.reshape(b, *self.grid, per_token.shape[-1]))
    return _layers.logits_float32(self.head(normed[:, 0]))


def vit_tiny(num_classes: int, *, rngs: nnx.Rngs, width: int = 192, **kwargs: Any) -> ViT:
  """DeiT-Tiny: 224 x 224, patch 16, width 192, 12 blocks of 3 heads."""
  options = {"depth": 12, "heads": 3, "patch": 16, "image_size": 224, **kwargs}
  return ViT(num_classes, width=width, rngs=rngs, **options)


def vit_cifar(num_classes: int, *, rngs: nnx.Rngs, width: int = 192, **kwargs: Any) -> ViT:
  """A ViT for 32 x 32 images: patch 4 (64 patches), width 192, 9 blocks of 3 heads."""
  options = {"depth": 9, "heads": 3, "patch": 4, "image_size": 32, **kwargs}
  return ViT(num_classes, width=width, rngs=rngs, **options)


def vit_digits(num_classes: int, *, rngs: nnx.Rngs, width: int = 64, **kwargs: Any) -> ViT:
  """A ViT for 16 x 16 images: patch 4 (16 patches), width 64, 4 blocks of 2 heads."""
  options = {"depth": 4, "heads": 2, "patch": 4, "image_size": 16, **kwargs}
  return ViT(num_classes, width=width, rngs=rngs, **options)


for _builder in (vit_tiny, vit_cifar, vit_digits):
  _builder.OPTIONS = ViT.OPTIONS  # type: ignore[attr-defined]
