"""Pre-activation ResNets for CIFAR (PreActResNet-18/34/50, Section 5, Table 2).

Identity-mapping ResNets: every residual branch starts with BatchNorm and ReLU, the shortcut is
the identity or, when the shape changes, a 1x1 convolution of the pre-activated input. The
CIFAR variant has a 3x3 stride-1 stem with no max-pool, four stages of ``width * (1, 2, 4, 8)``
channels (strides 1, 2, 2, 2), a final BatchNorm and ReLU, global average pooling and a linear
classifier. Full-size parameter counts (``width=64``, 100 classes, BatchNorm scales and biases
included, running statistics not): PreActResNet-18 11,218,340; PreActResNet-34 21,326,500;
PreActResNet-50 23,697,572.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from msda_jax.train.models import _layers


class PreActBasicBlock(nnx.Module):
  """``x + conv3x3(relu(bn(conv3x3(relu(bn(x))))))``, two 3x3 convolutions, expansion 1."""

  expansion = 1

  def __init__(self, in_channels: int, channels: int, *, stride: int, dtype: Any, rngs: nnx.Rngs):
    self.bn1 = _layers.batch_norm(in_channels, dtype=dtype, rngs=rngs)
    self.conv1 = _layers.conv(in_channels, channels, 3, stride=stride, dtype=dtype, rngs=rngs)
    self.bn2 = _layers.batch_norm(channels, dtype=dtype, rngs=rngs)
    self.conv2 = _layers.conv(channels, channels, 3, dtype=dtype, rngs=rngs)
    needs_projection = stride != 1 or in_channels != channels
    self.shortcut = (
      _layers.conv(in_channels, channels, 1, stride=stride, dtype=dtype, rngs=rngs) if needs_projection else None
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    out = nnx.relu(self.bn1(x))
    shortcut = x if self.shortcut is None else self.shortcut(out)
    out = self.conv1(out)
    out = self.conv2(nnx.relu(self.bn2(out)))
    return out + shortcut


class PreActBottleneck(nnx.Module):
  """1x1 (``channels``), 3x3 (``channels``, strided), 1x1 (``4 channels``), each pre-activated."""

  expansion = 4

  def __init__(self, in_channels: int, channels: int, *, stride: int, dtype: Any, rngs: nnx.Rngs):
    out_channels = channels * self.expansion
    self.bn1 = _layers.batch_norm(in_channels, dtype=dtype, rngs=rngs)
    self.conv1 = _layers.conv(in_channels, channels, 1, dtype=dtype, rngs=rngs)
    self.bn2 = _layers.batch_norm(channels, dtype=dtype, rngs=rngs)
    self.conv2 = _layers.conv(channels, channels, 3, stride=stride, dtype=dtype, rngs=rngs)
    self.bn3 = _layers.batch_norm(channels, dtype=dtype, rngs=rngs)
    self.conv3 = _layers.conv(channels, out_channels, 1, dtype=dtype, rngs=rngs)
    needs_projection = stride != 1 or in_channels != out_channels
    self.shortcut = (
      _layers.conv(in_channels, out_channels, 1, stride=stride, dtype=dtype, rngs=rngs) if needs_projection else None
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    out = nnx.relu(self.bn1(x))
    shortcut = x if self.shortcut is None else self.shortcut(out)
    out = self.conv1(out)
    out = self.conv2(nnx.relu(self.bn2(out)))
    out = self.conv3(nnx.relu(self.bn3(out)))
    return out + shortcut


class PreActResNet(nnx.Module):
  """A CIFAR pre-activation ResNet: ``[B, H, W, C]`` float images to ``[B, num_classes]`` logits.

  Args:
    num_classes: static number of classes ``K``.
    stage_sizes: static number of blocks in each of the four stages.
    bottleneck: static; bottleneck blocks (expansion 4) instead of basic blocks.
    width: static channels of the stem and the first stage (64 in the paper's networks).
    in_channels: static image channels ``C``.
    dtype: computation dtype; parameters are float32 and logits are returned in float32.
    rngs: random streams for the initialisation.

  >>> from msda_jax.train.models import count_params
  >>> model = nnx.eval_shape(lambda: preact_resnet18(100, rngs=nnx.Rngs(0)))  # abstract: no memory
  >>> nnx.eval_shape(lambda m, x: m(x), model, jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)).shape
  (2, 100)
  >>> count_params(model)
  11218340
  """

  def __init__(
    self,
    num_classes: int,
    *,
    stage_sizes: tuple[int, ...],
    bottleneck: bool = False,
    width: int = 64,
    in_channels: int = 3,
    dtype: Any = jnp.float32,
    rngs: nnx.Rngs,
  ):
    block = PreActBottleneck if bottleneck else PreActBasicBlock
    self.stem = _layers.conv(in_channels, width, 3, dtype=dtype, rngs=rngs)
    blocks = []
    channels_in = width
    for stage, num_blocks in enumerate(stage_sizes):
      channels = width * 2**stage
      for index in range(num_blocks):
        stride = 2 if stage > 0 and index == 0 else 1
        blocks.append(block(channels_in, channels, stride=stride, dtype=dtype, rngs=rngs))
        channels_in = channels * block.expansion
    self.blocks = nnx.List(blocks)
    self.bn = _layers.batch_norm(channels_in, dtype=dtype, rngs=rngs)
    self.head = _layers.dense(channels_in, num_classes, dtype=dtype, rngs=rngs)
    self.num_stages = len(stage_sizes)
    self._ends = _layers.stage_ends(tuple(stage_sizes))

  def __call__(self, x: jax.Array, mix: _layers.MixHook = None) -> jax.Array:
    """Logits of ``x``; ``mix(layer, h)`` is applied to the input (layer 0) and after each stage."""
    out = self.stem(_layers.mixed(mix, 0, x))
    ends = dict(self._ends)
    for index, block in enumerate(self.blocks):
      out = block(out)
      if index in ends:
        out = _layers.mixed(mix, ends[index], out)
    out = _layers.global_average_pool(nnx.relu(self.bn(out)))
    return _layers.logits_float32(self.head(out))


def preact_resnet18(num_classes: int, *, width: int = 64, rngs: nnx.Rngs, **kwargs: Any) -> PreActResNet:
  """PreActResNet-18: basic blocks ``(2, 2, 2, 2)``."""
  return PreActResNet(num_classes, stage_sizes=(2, 2, 2, 2), width=width, rngs=rngs, **kwargs)


def preact_resnet34(num_classes: int, *, width: int = 64, rngs: nnx.Rngs, **kwargs: Any) -> PreActResNet:
  """PreActResNet-34: basic blocks ``(3, 4, 6, 3)``."""
  return PreActResNet(num_classes, stage_sizes=(3, 4, 6, 3), width=width, rngs=rngs, **kwargs)


def preact_resnet50(num_classes: int, *, width: int = 64, rngs: nnx.Rngs, **kwargs: Any) -> PreActResNet:
  """PreActResNet-50: bottleneck blocks ``(3, 4, 6, 3)``, 2048 features before the head."""
  return PreActResNet(num_classes, stage_sizes=(3, 4, 6, 3), bottleneck=True, width=width, rngs=rngs, **kwargs)
