"""Wide residual networks for CIFAR (WRN-28-2, Section 5, Table 2).

WRN-``depth``-``k``: a 3x3 stem of ``width`` channels, then three groups of
``(depth - 4) / 6`` pre-activated basic blocks with ``width * k * (1, 2, 4)`` channels (strides
1, 2, 2), a final BatchNorm and ReLU, global average pooling and a linear classifier. When a
block changes the shape its shortcut is a 1x1 convolution of the pre-activated input. No
dropout (the paper's CIFAR setup). Full-size parameter count (``width=16``, ``k=2``):
WRN-28-2 1,467,610 for 10 classes and 1,479,220 for 100 classes.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from msda_jax.train.models import _layers
from msda_jax.train.models.preact_resnet import PreActBasicBlock


class WideResNet(nnx.Module):
  """WRN-``depth``-``widen_factor``: ``[B, H, W, C]`` float images to ``[B, num_classes]`` logits.

  Args:
    num_classes: static number of classes ``K``.
    depth: static depth, ``6 n + 4`` (28 gives 4 blocks per group).
    widen_factor: static ``k``, the channel multiplier of the groups.
    width: static channels of the stem; the groups have ``width * k * (1, 2, 4)`` (16 in the
      paper's networks).
    in_channels: static image channels ``C``.
    dtype: computation dtype; parameters are float32 and logits are returned in float32.
    rngs: random streams for the initialisation.

  >>> model = nnx.eval_shape(lambda: wide_resnet28_2(100, rngs=nnx.Rngs(0)))  # abstract: no memory
  >>> nnx.eval_shape(lambda m, x: m(x), model, jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)).shape
  (2, 100)
  """

  def __init__(
    self,
    num_classes: int,
    *,
    depth: int = 28,
    widen_factor: int = 2,
    width: int = 16,
    in_channels: int = 3,
    dtype: Any = jnp.float32,
    rngs: nnx.Rngs,
  ):
    if (depth - 4) % 6 != 0 or depth < 10:
      raise ValueError(f"depth must be 6 n + 4 with n >= 1 (10, 16, 22, 28, ...); got {depth}.")
    per_group = (depth - 4) // 6
    self.stem = _layers.conv(in_channels, width, 3, dtype=dtype, rngs=rngs)
    blocks = []
    channels_in = width
    for group in range(3):
      channels = width * widen_factor * 2**group
      for index in range(per_group):
        stride = 2 if group > 0 and index == 0 else 1
        blocks.append(PreActBasicBlock(channels_in, channels, stride=stride, dtype=dtype, rngs=rngs))
        channels_in = channels
    self.blocks = nnx.List(blocks)
    self.bn = _layers.batch_norm(channels_in, dtype=dtype, rngs=rngs)
    self.head = _layers.dense(channels_in, num_classes, dtype=dtype, rngs=rngs)
    self.num_stages = 3
    self._ends = _layers.stage_ends((per_group,) * 3)

  def __call__(self, x: jax.Array, mix: _layers.MixHook = None) -> jax.Array:
    """Logits of ``x``; ``mix(layer, h)`` is applied to the input (layer 0) and after each group."""
    out = self.stem(_layers.mixed(mix, 0, x))
    ends = dict(self._ends)
    for index, block in enumerate(self.blocks):
      out = block(out)
      if index in ends:
        out = _layers.mixed(mix, ends[index], out)
    out = _layers.global_average_pool(nnx.relu(self.bn(out)))
    return _layers.logits_float32(self.head(out))


def wide_resnet28_2(num_classes: int, *, width: int = 16, rngs: nnx.Rngs, **kwargs: Any) -> WideResNet:
  """WRN-28-2: 4 blocks per group, groups of 32, 64 and 128 channels at full width."""
  return WideResNet(num_classes, depth=28, widen_factor=2, width=width, rngs=rngs, **kwargs)
