"""Image classifiers in Flax NNX, one file per family, and a registry to build them by name.

Every model maps NHWC float images ``[B, H, W, C]`` to float32 logits ``[B, num_classes]`` and
takes a ``width`` (channels of its first stage, or the ViTs' token width) so that tests can build
tiny versions; the convolutional ones use BatchNorm (batch statistics after ``model.train()``,
running averages after ``model.eval()``). Full-size parameter counts (trainable parameters, BatchNorm scales and biases
included, running statistics not):

=====================  =========  ===========  ============
name                   width      classes      parameters
=====================  =========  ===========  ============
``preact_resnet18``    64         100          11,218,340
``preact_resnet34``    64         100          21,326,500
``preact_resnet50``    64         100          23,697,572
``wide_resnet28_2``    16 (k 2)   100          1,479,220
``resnet56``           16         100          858,868
``resnet50``           64         1000         25,557,032
``small_cnn``          32         10           94,762
``vit_tiny``           192        1000         5,717,416
``vit_cifar``          192        100          4,045,540
``vit_digits``         64         10           205,002
=====================  =========  ===========  ============

The ViTs (``vit.py``) use LayerNorm (no BatchNorm: train and eval mode compute the same) and
take their ``width`` as the token width; ``image_size`` and ``patch`` fix the input side.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from flax import nnx

from msda_jax.train.models.preact_resnet import (
  PreActBasicBlock,
  PreActBottleneck,
  PreActResNet,
  preact_resnet18,
  preact_resnet34,
  preact_resnet50,
)
from msda_jax.train.models.resnet_cifar import CifarResNet, resnet56
from msda_jax.train.models.resnet_imagenet import ResNet, resnet50
from msda_jax.train.models.small_cnn import SmallCNN
from msda_jax.train.models.vit import ViT, vit_cifar, vit_digits, vit_tiny
from msda_jax.train.models.wide_resnet import WideResNet, wide_resnet28_2

MODELS: dict[str, Callable[..., nnx.Module]] = {
  "preact_resnet18": preact_resnet18,
  "preact_resnet34": preact_resnet34,
  "preact_resnet50": preact_resnet50,
  "wide_resnet28_2": wide_resnet28_2,
  "resnet56": resnet56,
  "resnet50": resnet50,
  "small_cnn": SmallCNN,
  "vit_tiny": vit_tiny,
  "vit_cifar": vit_cifar,
  "vit_digits": vit_digits,
}


def get_model(name: str, *, num_classes: int, rngs: nnx.Rngs, width: int | None = None, **kwargs: Any) -> nnx.Module:
  """Builds the model registered as ``name``.

  Args:
    name: one of ``MODELS`` (``"preact_resnet18"``, ``"wide_resnet28_2"``, ``"resnet56"``,
      ``"resnet50"``, ``"small_cnn"``, ...).
    num_classes: static number of classes ``K``.
    rngs: random streams for the initialisation (``nnx.Rngs(seed)`` or ``nnx.Rngs(key)``).
    width: channels of the first stage; ``None`` keeps the published size.
    **kwargs: passed to the constructor (``in_channels``, ``dtype``, ...).

  Returns:
    the model, in train mode.

  >>> model = get_model("small_cnn", num_classes=10, rngs=nnx.Rngs(0), width=4, in_channels=1)
  >>> model.eval()
  >>> model(jax.numpy.zeros((2, 28, 28, 1))).shape
  (2, 10)
  """
  if name not in MODELS:
    raise ValueError(f"name must be one of {sorted(MODELS)}; got {name!r}.")
  if width is not None:
    kwargs["width"] = width
  return MODELS[name](num_classes, rngs=rngs, **kwargs)


def count_params(model: nnx.Module) -> int:
  """The number of trainable parameters (``nnx.Param`` leaves) of a concrete or abstract model.

  Works on ``nnx.eval_shape(lambda: ...)`` models, so a full-size count allocates nothing.

  >>> abstract = nnx.eval_shape(lambda: get_model("small_cnn", num_classes=10, rngs=nnx.Rngs(0)))
  >>> count_params(abstract)
  94762
  """
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))


__all__ = [
  "MODELS",
  "CifarResNet",
  "PreActBasicBlock",
  "PreActBottleneck",
  "PreActResNet",
  "ResNet",
  "SmallCNN",
  "ViT",
  "WideResNet",
  "count_params",
  "get_model",
  "preact_resnet18",
  "preact_resnet34",
  "preact_resnet50",
  "resnet50",
  "resnet56",
  "vit_cifar",
  "vit_digits",
  "vit_tiny",
  "wide_resnet28_2",
]
