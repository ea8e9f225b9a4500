"""Saliency maps for the data-dependent methods: the input gradient of the loss, per pixel.

PuzzleMix's and SaliencyMix's masks read a non-negative ``[B, *S]`` map per image. The one the
PuzzleMix reference uses is the norm over channels of the gradient of the mean cross-entropy on
the clean batch with respect to the (preprocessed) input, the model in inference mode:
``sqrt(mean_c (d loss / d x_c)^2)``. ``input_saliency`` computes it from any loss of the images,
so a train step spends one more forward-backward pass on it (``msda_jax.train.make_train_step``
does this when its mixer's method needs saliency, and nothing otherwise). PuzzleMix's optional
adversarial step reuses that gradient: ``adversarial_saliency`` returns the map with the noise
(``Saliency``), which ``mix_batch`` adds to the images it mixes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

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


class Perturbation(NamedTuple):
  """PuzzleMix's adversarial noise for a batch, added to the images it mixes (not to its energy).

  Attributes:
    noise: float32 ``[B, *S, C]`` in the images' units (0-255 for uint8, else [0, 1]).
    on_image: bool ``[]`` whether each image receives its noise.
    on_partner: bool ``[]`` whether each partner receives its own noise (moved with it by the
      pairing).
  """

  noise: jax.Array
  on_image: jax.Array
  on_partner: jax.Array


class Saliency(NamedTuple):
  """A saliency map with an optional ``Perturbation``: what ``adversarial_saliency`` returns.

  ``mix_batch(..., saliency=Saliency(map, perturbation))`` takes it where a map is taken.
  """

  map: jax.Array
  perturbation: Perturbation | None = None


def adversarial_saliency(
  key: jax.Array,
  loss_fn: Callable[[jax.Array], jax.Array],
  images: ArrayLike,
  *,
  adv_p: ArrayLike,
  adv_eps: ArrayLike,
  to_input: Callable[[jax.Array], jax.Array] | None = None,
) -> Saliency:
  """The saliency of ``input_saliency`` and PuzzleMix's adversarial noise, from one gradient.

  As the PuzzleMix reference: per batch the images and the partners are each perturbed with
  probability ``adv_p``. When either is, the gradient is taken at a random start (uniform noise
  of size ``adv_eps / 255`` of the pixel range, clipped to the range), and the noise takes a
  signed gradient step of ``(adv_eps + 2) / 255`` (ascent), is clipped to ``adv_eps / 255`` and
  scaled by one ``Uniform(0, 1)`` factor; otherwise the gradient is the clean one and the noise
  is 0. Either way one forward-backward pass.

  Args:
    key: the batch's key.
    loss_fn: maps the model input ``[B, *S, C]`` to a scalar loss.
    images: ``[B, *S, C]`` uint8 (range 0-255) or float (range [0, 1]).
    adv_p: traced probability of perturbing the images, and the partners.
    adv_eps: traced size in 1/255 of the pixel range.
    to_input: maps float images in the units of ``images`` to the model input (default: as they
      are); an increasing map per channel (a normalisation), so the gradient's sign is the same
      in either units. The map and the sign come from the gradient at the model input, as in the
      reference.

  Returns:
    ``Saliency(map [B, *S], Perturbation(noise, on_image, on_partner))``.
  """
  images = jnp.asarray(images)
  top = 255.0 if images.dtype == jnp.uint8 else 1.0
  x = images.astype(jnp.float32)
  key_masks, key_start, key_scale = jax.random.split(key, 3)
  on_image, on_partner = jax.random.uniform(key_masks, (2,)) < jnp.asarray(adv_p, jnp.float32)
  size = jnp.asarray(adv_eps, jnp.float32) / 255.0 * top
  start = jax.random.uniform(key_start, x.shape, jnp.float32, -1.0, 1.0) * size
  noised = jnp.clip(x + start, 0.0, top)
  either = on_image | on_partner
  point = jnp.where(either, noised, x)
  gradient = jax.grad(loss_fn)((to_input or (lambda v: v))(point))
  step = (size + 2.0 / 255.0 * top) * jnp.sign(gradient)
  noise = jnp.clip(point - x + step, -size, size) * jax.random.uniform(key_scale)
  noise = jnp.where(either, noise, 0.0)
  stop = jax.lax.stop_gradient
  return Saliency(stop(gradient_saliency(gradient)), Perturbation(stop(noise), on_image, on_partner))


def spectral_residual(images: ArrayLike, *, filter_size: int = 3) -> jax.Array:
  """The spectral-residual saliency (Hou and Zhang 2007) of ``images [B, *S, C]``: float32 ``[B, *S]``, >= 0.

  The grey image's log amplitude spectrum (amplitude ``sqrt(|F|^2 + 1e-10)``) minus its local mean
  (a ``filter_size`` box, edges replicated) is the residual; with the original phase it is
  transformed back, and the map is the magnitude, as GuidedMixup's reference computes it (before
  its Gaussian blur, which ``GuidedMixup`` applies to every map). Reads no model. uint8 images are
  read in [0, 1] units.

  >>> s = spectral_residual(jnp.zeros((1, 8, 8, 3)).at[0, 2:4, 5:7].set(1.0))
  >>> s.shape, bool(s.min() >= 0)
  ((1, 8, 8), True)
  """
  x = jnp.asarray(images)
  x = x.astype(jnp.float32) / 255.0 if x.dtype == jnp.uint8 else x.astype(jnp.float32)
  grey = jnp.mean(x, axis=-1)
  axes = tuple(range(1, grey.ndim))
  spectrum = jnp.fft.fftn(grey, axes=axes)
  amplitude = jnp.sqrt(jnp.real(spectrum) ** 2 + jnp.imag(spectrum) ** 2 + 1e-10)
  log_amplitude = jnp.log(amplitude)
  pad = [(0, 0)] + [(filter_size // 2, filter_size - 1 - filter_size // 2)] * len(axes)
  padded = jnp.pad(log_amplitude, pad, mode="edge")
  window = (1,) + (filter_size,) * len(axes)
  local = jax.lax.reduce_window(padded, 0.0, jax.lax.add, window, (1,) * grey.ndim, "VALID") / filter_size ** len(axes)
  back = jnp.fft.ifftn(spectrum * (jnp.exp(log_amplitude - local) / amplitude), axes=axes)
  return jax.lax.stop_gradient(jnp.abs(back)).astype(jnp.float32)
