"""Layer constructors shared by the model families: convolutions, BatchNorm, pooling.

The conventions follow the reference CIFAR and ImageNet code the paper trains with: bias-free
convolutions followed by BatchNorm, He-normal (fan-out) kernel initialisation, symmetric
``k // 2`` padding (so stride-2 convolutions see the same pixels as in the reference code),
and BatchNorm with running-average momentum 0.9 and epsilon 1e-5. Train and eval behaviour of
BatchNorm is switched for a whole model with ``model.train()`` / ``model.eval()``.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def flat_variance_scaling(scale: float, mode: str) -> Any:
  """``nnx.initializers.variance_scaling(scale, mode, "normal")``, its draws made as a flat vector.

  The same values bit for bit (JAX's partitionable Threefry numbers the elements of a draw in
  row-major order, so a flat draw reshaped is the draw of the shape), but XLA:CPU compiles a
  4-D normal draw in seconds against 0.4 s for a flat one, and a network has dozens.

  Args:
    scale: the variance's scale (2.0: He initialisation).
    mode: ``"fan_in"`` or ``"fan_out"``, over the last two axes times the receptive field.

  >>> key = jax.random.key(0)
  >>> reference = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")(key, (3, 3, 4, 8))
  >>> bool((flat_variance_scaling(2.0, "fan_out")(key, (3, 3, 4, 8)) == reference).all())
  True
  """
  if mode not in ("fan_in", "fan_out"):
    raise ValueError(f"mode must be 'fan_in' or 'fan_out'; got {mode!r}.")

  def init(key: jax.Array, shape: Any, dtype: Any = jnp.float32) -> jax.Array:
    shape = tuple(int(n) for n in shape)
    receptive = math.prod(shape[:-2])
    fan = (shape[-2] if mode == "fan_in" else shape[-1]) * receptive
    # The reference's arithmetic, in ``dtype``: a standard normal times the variance's square root.
    std = jnp.sqrt(jnp.array(scale / fan, dtype=dtype))
    return (jax.random.normal(key, (math.prod(shape),), dtype) * std).reshape(shape)

  return init


KERNEL_INIT = flat_variance_scaling(2.0, "fan_out")


def conv(
  in_channels: int,
  out_channels: int,
  kernel_size: int,
  *,
  stride: int = 1,
  dtype: Any = jnp.float32,
  rngs: nnx.Rngs,
) -> nnx.Conv:
  """A bias-free ``kernel_size x kernel_size`` convolution with ``kernel_size // 2`` padding.

  Args:
    in_channels: static input channels ``C``.
    out_channels: static output channels.
    kernel_size: static side of the square kernel.
    stride: static stride of both spatial axes.
    dtype: computation dtype (parameters stay float32).
    rngs: the module's random streams (``params`` draws the kernel).

  Returns:
    an ``nnx.Conv`` mapping ``[B, H, W, C]`` to ``[B, ceil(H / stride), ceil(W / stride), out]``.

  >>> layer = conv(3, 8, 3, stride=2, rngs=nnx.Rngs(0))
  >>> layer(jnp.zeros((1, 32, 32, 3))).shape
  (1, 16, 16, 8)
  """
  pad = kernel_size // 2
  return nnx.Conv(
    in_channels,
    out_channels,
    (kernel_size, kernel_size),
    strides=stride,
    padding=((pad, pad), (pad, pad)),
    use_bias=False,
    kernel_init=KERNEL_INIT,
    dtype=dtype,
    rngs=rngs,
  )


def batch_norm(features: int, *, dtype: Any = jnp.float32, zero_scale: bool = False, rngs: nnx.Rngs) -> nnx.BatchNorm:
  """BatchNorm over ``[B, H, W, C]`` (statistics per channel), momentum 0.9, epsilon 1e-5.

  Args:
    features: static number of channels ``C``.
    dtype: computation dtype.
    zero_scale: start the scale at 0 (a residual branch that starts as the identity).
    rngs: the module's random streams (unused by the constant initialisers).

  Returns:
    an ``nnx.BatchNorm`` that normalises with batch statistics in train mode and updates its
    running averages, and uses the running averages in eval mode.

  >>> bn = batch_norm(4, rngs=nnx.Rngs(0))
  >>> bn(jnp.ones((2, 3, 3, 4))).shape
  (2, 3, 3, 4)
  """
  return nnx.BatchNorm(
    features,
    momentum=BN_MOMENTUM,
    epsilon=BN_EPSILON,
    dtype=dtype,
    scale_init=nnx.initializers.zeros if zero_scale else nnx.initializers.ones,
    rngs=rngs,
  )


def dense(in_features: int, out_features: int, *, dtype: Any = jnp.float32, rngs: nnx.Rngs) -> nnx.Linear:
  """The classifier head ``[B, in] -> [B, out]`` (with a bias)."""
  return nnx.Linear(in_features, out_features, dtype=dtype, rngs=rngs)


def global_average_pool(x: jax.Array) -> jax.Array:
  """``[B, H, W, C] -> [B, C]``, the mean over the spatial axes."""
  return jnp.mean(x, axis=(1, 2))


def max_pool(x: jax.Array, *, window: int = 3, stride: int = 2) -> jax.Array:
  """Max-pooling ``[B, H, W, C]`` with a ``window`` square, ``stride`` and ``(window - 1) // 2`` padding."""
  pad = (window - 1) // 2
  return nnx.max_pool(x, (window, window), strides=(stride, stride), padding=((pad, pad), (pad, pad)))


def avg_pool(x: jax.Array, window: int) -> jax.Array:
  """Average-pooling ``[B, H, W, C]`` over non-overlapping ``window`` squares (no padding)."""
  return nnx.avg_pool(x, (window, window), strides=(window, window))


def logits_float32(x: jax.Array) -> jax.Array:
  """Logits in float32 whatever the computation dtype, for a stable softmax."""
  return x.astype(jnp.float32)


#: a hidden-layer mixing hook: ``mix(layer, features) -> features`` (``msda_jax.train.hidden``).
MixHook = Any


def mixed(mix: MixHook, layer: int, features: jax.Array) -> jax.Array:
  """``features`` passed through the hook at mixable layer ``layer`` (0: the input), or as they are."""
  return features if mix is None else mix(layer, features)


def stage_ends(stage_sizes: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
  """``((index of a stage's last block, stage number from 1), ...)`` for blocks in one flat list."""
  ends, total = {}, 0
  for stage, size in enumerate(stage_sizes, start=1):
    total += size
    ends[total - 1] = stage
  return tuple(ends.items())
