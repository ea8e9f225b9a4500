"""ResNets for ImageNet with bottleneck blocks (ResNet-50, Section 5, Table 3).

A 7x7 stride-2 stem with BatchNorm and ReLU, a 3x3 stride-2 max-pool, four stages of
post-activation bottleneck blocks (1x1 ``c``, 3x3 ``c``, 1x1 ``4 c``, with ``c = width * (1, 2,
4, 8)``; the stride sits on the 3x3 convolution, as in the common "v1.5" layout), a 1x1
convolution and BatchNorm on the shortcut where the shape changes, global average pooling and a
linear classifier. Full-size parameter count (``width=64``, 1000 classes): ResNet-50
25,557,032 (BatchNorm scales and biases included, running statistics not).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from msda_jax.train.models import _layers


class Bottleneck(nnx.Module):
  """``relu(bn(conv1x1(relu(bn(conv3x3(relu(bn(conv1x1(x)))))))) + shortcut(x))``, expansion 4.

  ``zero_init_residual`` starts the last BatchNorm scale at 0, so each block starts as the
  identity (off by default, as in the reference ResNet-50).
  """

  expansion = 4

  def __init__(
    self, in_channels: int, channels: int, *, stride: int, zero_init_residual: bool, dtype: Any, rngs: nnx.Rngs
  ):
    out_channels = channels * self.expansion
    self.conv1 = _layers.conv(in_channels, channels, 1, dtype=dtype, rngs=rngs)
    self.bn1 = _layers.batch_norm(channels, dtype=dtype, rngs=rngs)
    self.conv2 = _layers.conv(channels, channels, 3, stride=stride, dtype=dtype, rngs=rngs)
    self.bn2 = _layers.batch_norm(channels, dtype=dtype, rngs=rngs)
    self.conv3 = _layers.conv(channels, out_channels, 1, dtype=dtype, rngs=rngs)
    self.bn3 = _layers.batch_norm(out_channels, dtype=dtype, zero_scale=zero_init_residual, rngs=rngs)
    project = stride != 1 or in_channels != out_channels
    self.projection = (
      _layers.conv(in_channels, out_channels, 1, stride=stride, dtype=dtype, rngs=rngs) if project else None
    )
    self.projection_bn = _layers.batch_norm(out_channels, dtype=dtype, rngs=rngs) if project else None

  def __call__(self, x: jax.Array) -> jax.Array:
    shortcut = x
    if self.projection is not None and self.projection_bn is not None:
      shortcut = self.projection_bn(self.projection(x))
    out = nnx.relu(self.bn1(self.conv1(x)))
    out = nnx.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    return nnx.relu(out + shortcut)


class ResNet(nnx.Module):
  """An ImageNet bottleneck ResNet: ``[B, H, W, C]`` float images to ``[B, num_classes]`` logits.

  The spatial size shrinks by 32 (224 -> 7); small inputs work too (32 -> 1).

  Args:
    num_classes: static number of classes ``K``.
    stage_sizes: static number of bottleneck blocks per stage (ResNet-50: ``(3, 4, 6, 3)``).
    width: static channels of the stem and of the first stage's 3x3 convolutions (64).
    zero_init_residual: static; start every block's last BatchNorm scale at 0.
    in_channels: static image channels ``C``.
    dtype: computation dtype; parameters are float32 and logits are returned in float32.
    rngs: random streams for the initialisation.

  >>> from msda_jax.train.models import count_params
  >>> model = nnx.eval_shape(lambda: resnet50(1000, rngs=nnx.Rngs(0)))  # abstract: no memory
  >>> nnx.eval_shape(lambda m, x: m(x), model, jax.ShapeDtypeStruct((2, 224, 224, 3), jnp.float32)).shape
  (2, 1000)
  >>> count_params(model)
  25557032
  """

  def __init__(
    self,
    num_classes: int,
    *,
    stage_sizes: tuple[int, ...] = (3, 4, 6, 3),
    width: int = 64,
    zero_init_residual: bool = False,
    in_channels: int = 3,
    dtype: Any = jnp.float32,
    rngs: nnx.Rngs,
  ):
    self.stem = _layers.conv(in_channels, width, 7, stride=2, dtype=dtype, rngs=rngs)
    self.stem_bn = _layers.batch_norm(width, dtype=dtype, rngs=rngs)
    blocks = []
    channels_in = width
    for stage, num_blocks in enumerate(stage_sizes):
      channels = width * 2**stage
      for index in range(num_blocks):
        stride = 2 if stage > 0 and index == 0 else 1
        blocks.append(
          Bottleneck(
            channels_in, channels, stride=stride, zero_init_residual=zero_init_residual, dtype=dtype, rngs=rngs
          )
        )
        channels_in = channels * Bottleneck.expansion
    self.blocks = nnx.List(blocks)
    self.head = _layers.dense(channels_in, num_classes, dtype=dtype, rngs=rngs)
    self.num_stages = len(stage_sizes)
    self._ends = _layers.stage_ends(tuple(stage_sizes))

  def __call__(self, x: jax.Array, mix: _layers.MixHook = None) -> jax.Array:
    """Logits of ``x``; ``mix(layer, h)`` is applied to the input (layer 0) and after each stage."""
    out = nnx.relu(self.stem_bn(self.stem(_layers.mixed(mix, 0, x))))
    out = _layers.max_pool(out)
    ends = dict(self._ends)
    for index, block in enumerate(self.blocks):
      out = block(out)
      if index in ends:
        out = _layers.mixed(mix, ends[index], out)
    return _layers.logits_float32(self.head(_layers.global_average_pool(out)))


def resnet50(num_classes: int, *, width: int = 64, rngs: nnx.Rngs, **kwargs: Any) -> ResNet:
  """ResNet-50: bottleneck blocks ``(3, 4, 6, 3)``, 2048 features before the head."""
  return ResNet(num_classes, stage_sizes=(3, 4, 6, 3), width=width, rngs=rngs, **kwargs)
