"""ResNets for CIFAR with ``6 n + 2`` layers (ResNet-56, Section 5, Table 2).

The original CIFAR design: a 3x3 stem of ``width`` channels with BatchNorm and ReLU, three
stages of ``n`` post-activation basic blocks (``conv-bn-relu-conv-bn``, added to the shortcut,
then ReLU) with ``width * (1, 2, 4)`` channels and strides 1, 2, 2, global average pooling and a
linear classifier. ResNet-56 has ``n = 9`` and 16/32/64 channels. Where a stage changes shape
the shortcut is, by default, parameter-free: the input subsampled by 2 and zero-padded in
channels (``shortcut="pad"``, option A of the original design); ``shortcut="conv"`` uses a 1x1
convolution and BatchNorm. Full-size parameter count (``width=16``, ``"pad"``): ResNet-56
853,018 for 10 classes and 858,868 for 100 classes.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from msda_jax.train.models import _layers

SHORTCUTS = ("pad", "conv")


class BasicBlock(nnx.Module):
  """``relu(bn(conv3x3(relu(bn(conv3x3(x))))) + shortcut(x))``, the post-activation block."""

  def __init__(self, in_channels: int, channels: int, *, stride: int, shortcut: str, dtype: Any, rngs: nnx.Rngs):
    self.conv1 = _layers.conv(in_channels, channels, 3, stride=stride, dtype=dtype, rngs=rngs)
    self.bn1 = _layers.batch_norm(channels, dtype=dtype, rngs=rngs)
    self.conv2 = _layers.conv(channels, channels, 3, dtype=dtype, rngs=rngs)
    self.bn2 = _layers.batch_norm(channels, dtype=dtype, rngs=rngs)
    self.stride = stride
    changes_shape = stride != 1 or in_channels != channels
    project = changes_shape and shortcut == "conv"
    self.pad_channels = channels - in_channels if changes_shape and not project else 0
    self.projection = _layers.conv(in_channels, channels, 1, stride=stride, dtype=dtype, rngs=rngs) if project else None
    self.projection_bn = _layers.batch_norm(channels, dtype=dtype, rngs=rngs) if project else None

  def _shortcut(self, x: jax.Array) -> jax.Array:
    if self.projection is not None and self.projection_bn is not None:
      return self.projection_bn(self.projection(x))
    if self.stride != 1:
      x = x[:, :: self.stride, :: self.stride, :]
    if self.pad_channels:
      low = self.pad_channels // 2
      x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (low, self.pad_channels - low)))
    return x

  def __call__(self, x: jax.Array) -> jax.Array:
    out = nnx.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    return nnx.relu(out + self._shortcut(x))


class CifarResNet(nnx.Module):
  """ResNet-``depth`` for CIFAR: ``[B, H, W, C]`` float images to ``[B, num_classes]`` logits.

  Args:
    num_classes: static number of classes ``K``.
    depth: static depth, ``6 n + 2`` (56 gives 9 blocks per stage).
    width: static channels of the stem and first stage (16 in the paper's network).
    shortcut: static, ``"pad"`` (parameter-free, the original) or ``"conv"`` (1x1 projection).
    in_channels: static image channels ``C``.
    dtype: computation dtype; parameters are float32 and logits are returned in float32.
    rngs: random streams for the initialisation.

  >>> model = nnx.eval_shape(lambda: resnet56(100, rngs=nnx.Rngs(0)))  # abstract: no memory
  >>> nnx.eval_shape(lambda m, x: m(x), model, jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)).shape
  (2, 100)
  """

  def __init__(
    self,
    num_classes: int,
    *,
    depth: int = 56,
    width: int = 16,
    shortcut: str = "pad",
    in_channels: int = 3,
    dtype: Any = jnp.float32,
    rngs: nnx.Rngs,
  ):
    if (depth - 2) % 6 != 0 or depth < 8:
      raise ValueError(f"depth must be 6 n + 2 with n >= 1 (8, 20, 32, 44, 56, 110, ...); got {depth}.")
    if shortcut not in SHORTCUTS:
      raise ValueError(f"shortcut must be one of {SHORTCUTS}; got {shortcut!r}.")
    per_stage = (depth - 2) // 6
    self.stem = _layers.conv(in_channels, width, 3, dtype=dtype, rngs=rngs)
    self.stem_bn = _layers.batch_norm(width, dtype=dtype, rngs=rngs)
    blocks = []
    channels_in = width
    for stage in range(3):
      channels = width * 2**stage
      for index in range(per_stage):
        stride = 2 if stage > 0 and index == 0 else 1
        blocks.append(BasicBlock(channels_in, channels, stride=stride, shortcut=shortcut, dtype=dtype, rngs=rngs))
        channels_in = channels
    self.blocks = nnx.List(blocks)
    self.head = _layers.dense(channels_in, num_classes, dtype=dtype, rngs=rngs)
    self.num_stages = 3
    self._ends = _layers.stage_ends((per_stage,) * 3)

  def __call__(self, x: jax.Array, mix: _layers.MixHook = None) -> jax.Array:
    """Logits of ``x``; ``mix(layer, h)`` is applied to the input (layer 0) and after each stage."""
    out = nnx.relu(self.stem_bn(self.stem(_layers.mixed(mix, 0, x))))
    ends = dict(self._ends)
    for index, block in enumerate(self.blocks):
      out = block(out)
      if index in ends:
        out = _layers.mixed(mix, ends[index], out)
    return _layers.logits_float32(self.head(_layers.global_average_pool(out)))


def resnet56(num_classes: int, *, width: int = 16, rngs: nnx.Rngs, **kwargs: Any) -> CifarResNet:
  """ResNet-56: 9 basic blocks per stage, 16/32/64 channels at full width."""
  return CifarResNet(num_classes, depth=56, width=width, rngs=rngs, **kwargs)
