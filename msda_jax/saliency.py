"""Saliency maps for the data-dependent methods: the input gradient of the loss, per pixel.

PuzzleMix's and SaliencyMix's masks read a non-negative ``[B, *S]`` map per image. The one the
PuzzleMix reference uses is the norm over channels of the gradient of the mean cross-entropy on
the clean batch with respect to the (preprocessed) input, the model in inference mode:
``sqrt(mean_c (d loss / d x_c)^2)``. ``input_saliency`` computes it from any loss of the images,
so a train step spends one more forward-backward pass on it (``msda_jax.train.make_train_step``
does this when its mixer's method needs saliency, and nothing otherwise).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def gradient_saliency(gradient: ArrayLike) -> jax.Array:
  """``sqrt(mean_c g^2)``: float32 ``[B, *S]`` from an input gradient ``[B, *S, C]``.

  >>> gradient_saliency(jnp.array([[[3.0, 4.0]]])).tolist()  # sqrt((9 + 16) / 2)
  [[3.535533905029297]]
  """
  gradient = jnp.asarray(gradient, jnp.float32)
  return jnp.sqrt(jnp.mean(jnp.square(gradient), axis=-1))


def input_saliency(loss_fn: Callable[[jax.Array], jax.Array], images: ArrayLike) -> jax.Array:
  """The input-gradient saliency of ``loss_fn`` at ``images``: float32 ``[B, *S]``.

  Args:
    loss_fn: maps float ``[B, *S, C]`` images to a scalar loss (e.g. the mean cross-entropy of the
      model in inference mode on the clean labels).
    images: ``[B, *S, C]`` the model's input (cast to float32).

  The gradient is taken with respect to the input and the result carries no gradient itself
  (``stop_gradient``): the masks are data, not part of the objective.

  >>> w = jnp.array([1.0, -2.0, 2.0])
  >>> input_saliency(lambda x: jnp.sum(x @ w), jnp.ones((1, 2, 2, 3)))[0].tolist()  # sqrt(9 / 3)
  [[1.7320507764816284, 1.7320507764816284], [1.7320507764816284, 1.7320507764816284]]
  """
  images = jnp.asarray(images, jnp.float32)
  gradient = jax.grad(loss_fn)(images)
  return jax.lax.stop_gradient(gradient_saliency(gradient))
