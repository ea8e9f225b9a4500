"""A small convolutional network for quick runs and tests (MNIST-sized or CIFAR-sized inputs).

Three 3x3 convolutions of ``width * (1, 2, 4)`` channels, each followed by BatchNorm and ReLU
(or a smooth activation, ``activation=``), the first two by a 2x2 max-pool (or average pool,
``pool="avg"``); global average pooling and a linear classifier. With ReLU the network is
piecewise linear in its input, so its input Hessian is 0 almost everywhere and Theorem 1's R3
vanishes exactly; ``"softplus"`` or ``"gelu"`` make it smooth where R3 is to be studied.

With ``activation="softplus"`` and ``pool="avg"`` the whole network is smooth in its parameters
and inputs. Data-parallel training then depends on the device and process layout only through
float32 reduction noise (about 1e-6 after 60 steps, ``tests/test_train_loop.py``). With ReLU or a
max-pool, a pre-activation (or a pooled pair) within that noise of a kink takes the other side in
one layout, a finite change of the gradient, and the runs part (``experiments/README.md``). It works on
any input of at least 4x4 pixels (28x28x1 and 32x32x3 included). Full-size parameter count
(``width=32``, 3 input channels, 10 classes): 94,762.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from msda_jax import _validate
from msda_jax.train.models import _layers

ACTIVATIONS = {"relu": nnx.relu, "softplus": nnx.softplus, "gelu": nnx.gelu}
POOLS = ("max", "avg")


class SmallCNN(nnx.Module):
  """Conv-BN-ReLU x3 with two max- (or average) pools: ``[B, H, W, C]`` images to ``[B, K]`` logits.

  Args:
    num_classes: static number of classes ``K``.
    width: static channels of the first convolution (the others have 2x and 4x).
    in_channels: static image channels ``C`` (1 for MNIST, 3 for CIFAR).
    activation: ``"relu"`` (default), ``"softplus"`` or ``"gelu"`` (smooth: R3 is not 0).
    pool: ``"max"`` (default) or ``"avg"``: the 2x2 pooling after the first two convolutions.
    dtype: computation dtype; parameters are float32 and logits are returned in float32.
    rngs: random streams for the initialisation.

  ``OPTIONS`` names the choices of the string options (the training config checks against it).

  >>> model = nnx.eval_shape(lambda: SmallCNN(10, in_channels=1, rngs=nnx.Rngs(0)))  # abstract: no memory
  >>> nnx.eval_shape(lambda m, x: m(x), model, jax.ShapeDtypeStruct((2, 28, 28, 1), jnp.float32)).shape
  (2, 10)
  """

  OPTIONS: ClassVar[dict[str, tuple[str, ...]]] = {"activation": tuple(ACTIVATIONS), "pool": POOLS}

  def __init__(
    self,
    num_classes: int,
    *,
    width: int = 32,
    in_channels: int = 3,
    activation: str = "relu",
    pool: str = "max",
    dtype: Any = jnp.float32,
    rngs: nnx.Rngs,
  ):
    _validate.check_choice("activation", activation, tuple(ACTIVATIONS))
    _validate.check_choice("pool", pool, POOLS)
    self.activation = activation
    self.pool = pool
    channels = (width, 2 * width, 4 * width)
    self.convs = nnx.List(
      [
        _layers.conv(c_in, c_out, 3, dtype=dtype, rngs=rngs)
        for c_in, c_out in zip((in_channels, *channels[:-1]), channels, strict=True)
      ]
    )
    self.bns = nnx.List([_layers.batch_norm(c, dtype=dtype, rngs=rngs) for c in channels])
    self.head = _layers.dense(channels[-1], num_classes, dtype=dtype, rngs=rngs)
    self.num_stages = 3

  def __call__(self, x: jax.Array, mix: _layers.MixHook = None) -> jax.Array:
    """Logits of ``x``; ``mix(layer, h)`` is applied to the input (layer 0) and after each stage
    (a convolution block, with its pool)."""
    out = _layers.mixed(mix, 0, x)
    for index, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
      out = ACTIVATIONS[self.activation](bn(conv(out)))
      if index < len(self.convs) - 1:
        out = _layers.max_pool(out, window=2, stride=2) if self.pool == "max" else _layers.avg_pool(out, 2)
      out = _layers.mixed(mix, index + 1, out)
    return _layers.logits_float32(self.head(_layers.global_average_pool(out)))
