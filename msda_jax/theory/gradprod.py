"""Partial gradient products (Eq. 12): how strongly a model couples pixels ``p`` apart::

    PartialGradProd(x, p) = max_v |d_v f(x) d_{v+p} f(x)|                          (Eq. 12)

over the pixels ``v`` with ``v + p`` inside the image, for every offset
``p in [-(H-1), H-1] x [-(W-1), W-1]``. The second-order term of Theorem 1 weights the products
``d_j f d_k f`` by ``a_jk`` (Eq. 8-9); Figure 5 shows these maps, maximised over validation
images and normalised, for models trained without MSDA, with Mixup and with CutMix.

Choices (the paper does not state them):

* *Scalar output.* ``f`` maps one image ``[H, W, C]`` to a scalar, or to a logit vector
  ``[K]``; for a vector the scalar is the logit of a given class per image, or, by default, of
  the class the model predicts for that image (the index is not differentiated).
* *Channels.* The gradient ``[H, W, C]`` becomes one value per pixel: ``"l2"`` (default) is its
  Euclidean norm over channels, matching Figure 5's "gradient norm product";
  ``"sum"`` is the sum over channels, the derivative with respect to shifting the pixel's
  intensity equally in every channel.
* *Batch.* ``"max"`` over images (the figure's "pixel-wise maximum"), ``"mean"``, or ``"none"``.
* *Normalisation.* Optionally divide by the value at ``p = 0`` (``max_v g_v^2``, which bounds
  every other offset), after the batch reduction.

The map is centrally symmetric (``p`` and ``-p`` give the same value), so only ``p_1 >= 0`` is
computed; each row of offsets is one vectorised product-and-max over all pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _validate
from msda_jax.theory import _compiled

CHANNEL_REDUCTIONS = ("l2", "sum")
BATCH_REDUCTIONS = ("max", "mean", "none")


def _check_images(images: jax.Array) -> None:
  if images.ndim != 4:
    raise ValueError(f"images must be a batch [B, H, W, C]; got shape {tuple(images.shape)}.")


def _input_gradients(fn: Callable[[jax.Array], jax.Array], images: jax.Array, labels: jax.Array | None) -> jax.Array:
  """``[B, H, W, C]`` gradients of each image's scalar (its logit ``labels[i]``, else the predicted one)."""

  def score(x: jax.Array, label: jax.Array | None) -> jax.Array:
    value = fn(x)
    if value.ndim == 0:
      return value
    index = jnp.argmax(jax.lax.stop_gradient(value)) if label is None else label
    return value[index]

  return jax.vmap(jax.grad(score))(images, labels)


def pixel_gradients(
  fn: Callable[[jax.Array], jax.Array],
  images: ArrayLike,
  labels: ArrayLike | None = None,
  *,
  channel_reduce: str = "l2",
) -> jax.Array:
  """Input gradients of ``f`` reduced to one value per pixel (the ``d_v f(x)`` of Eq. 12).

  ``jax.grad`` of the per-image scalar (see the module docstring), ``jax.vmap``-ed over the
  batch, then reduced over channels.

  Args:
    fn: one image ``[H, W, C]`` -> a scalar or a logit vector ``[K]`` (close over parameters).
    images: ``[B, H, W, C]`` float images.
    labels: optional int ``[B]`` classes whose logit is differentiated; ``None`` uses the
      predicted class. Only for vector outputs.
    channel_reduce: static, ``"l2"`` (norm over channels, default) or ``"sum"``.

  Returns:
    ``[B, H, W]`` per-pixel gradients (non-negative for ``"l2"``, signed for ``"sum"``).

  >>> w = jnp.arange(12.0).reshape(2, 2, 3)
  >>> pixel_gradients(lambda x: jnp.sum(w * x), jnp.zeros((1, 2, 2, 3)), channel_reduce="sum").tolist()
  [[[3.0, 12.0], [21.0, 30.0]]]
  """
  _validate.check_choice("channel_reduce", channel_reduce, CHANNEL_REDUCTIONS)
  images = jnp.asarray(images)
  _check_images(images)
  if not jnp.issubdtype(images.dtype, jnp.floating):
    raise TypeError(f"images must be float to be differentiated; got {images.dtype}.")
  out = jax.eval_shape(fn, images[0])
  if out.ndim not in (0, 1):
    raise ValueError(f"fn must return a scalar or a logit vector [K] for one image; got shape {out.shape}.")
  if out.ndim == 0 and labels is not None:
    raise ValueError("labels select a logit; fn returns a scalar, so pass labels=None.")
  if labels is not None:
    labels = jnp.asarray(labels)
    if labels.shape != images.shape[:1] or not jnp.issubdtype(labels.dtype, jnp.integer):
      raise ValueError(f"labels must be int [B] = [{images.shape[0]}]; got {labels.dtype} {tuple(labels.shape)}.")

  grads = _compiled.call(_input_gradients, (fn,), images, labels)
  if channel_reduce == "sum":
    return jnp.sum(grads, axis=-1)
  return jnp.sqrt(jnp.sum(grads * grads, axis=-1))


def _offset_max(a: jax.Array) -> jax.Array:
  """``out[p + (H-1, W-1)] = max_v a_v a_{v+p}`` for one non-negative ``[H, W]`` map."""
  h, w = a.shape
  # Zero padding: invalid v + p contribute 0, which never beats a valid (non-negative) product.
  padded = jnp.pad(a, ((0, h - 1), (w - 1, w - 1)))  # [2H-1, 3W-2]
  columns = np.arange(2 * w - 1)[:, None] + np.arange(w)[None, :]  # [2W-1, W]: column of v2 + p2

  def row(p1: jax.Array) -> jax.Array:
    shifted = jax.lax.dynamic_slice_in_dim(padded, p1, h, axis=0)[:, columns]  # [H, 2W-1, W]
    return jnp.max(a[:, None, :] * shifted, axis=(0, 2))

  upper = jax.lax.map(row, jnp.arange(h))  # p1 = 0 .. H-1, [H, 2W-1]
  return jnp.concatenate([upper[:0:-1, ::-1], upper], axis=0)  # value(-p) = value(p)


def partial_grad_prod(grads: ArrayLike, *, batch_reduce: str = "max", normalize: bool = False) -> jax.Array:
  """``PartialGradProd(x, p) = max_v |g_v g_{v+p}|`` (Eq. 12) for every offset ``p``.

  Entry ``[p_1 + H - 1, p_2 + W - 1]`` holds offset ``p = (p_1, p_2)``; the centre is ``p = 0``.
  Vectorised: a ``jax.lax.map`` over the ``H`` non-negative row offsets, each a product-and-max
  over all pixels and column offsets at once, mirrored for ``p_1 < 0``.

  Args:
    grads: ``[B, H, W]`` per-pixel gradients (e.g. from ``pixel_gradients``).
    batch_reduce: static, ``"max"`` over images (default, as in Figure 5), ``"mean"`` or ``"none"``.
    normalize: static; divide by the value at ``p = 0`` after the batch reduction (per image
      for ``"none"``), so the centre is 1 and every entry lies in [0, 1] (0 where all
      gradients vanish).

  Returns:
    ``[2H-1, 2W-1]``, or ``[B, 2H-1, 2W-1]`` for ``batch_reduce="none"``.

  >>> partial_grad_prod(jnp.array([[[1.0, -2.0, 3.0]]])).tolist()
  [[3.0, 6.0, 9.0, 6.0, 3.0]]
  """
  _validate.check_choice("batch_reduce", batch_reduce, BATCH_REDUCTIONS)
  grads = jnp.asarray(grads)
  if grads.ndim != 3:
    raise ValueError(f"grads must be [B, H, W]; got shape {tuple(grads.shape)}.")
  if not jnp.issubdtype(grads.dtype, jnp.floating):
    grads = grads.astype(jnp.float32)
  maps = jax.vmap(_offset_max)(jnp.abs(grads))
  if batch_reduce == "max":
    maps = jnp.max(maps, axis=0)
  elif batch_reduce == "mean":
    maps = jnp.mean(maps, axis=0)
  if normalize:
    h, w = grads.shape[1:]
    centre = maps[..., h - 1 : h, w - 1 : w]
    maps = jnp.where(centre > 0, maps / jnp.where(centre > 0, centre, 1.0), 0.0)
  return maps


def model_partial_grad_prod(
  fn: Callable[[jax.Array], jax.Array],
  images: ArrayLike,
  labels: ArrayLike | None = None,
  *,
  channel_reduce: str = "l2",
  batch_reduce: str = "max",
  normalize: bool = False,
) -> jax.Array:
  """Eq. (12) for a model and a batch: ``partial_grad_prod(pixel_gradients(...))``.

  Args:
    fn: one image ``[H, W, C]`` -> a scalar or a logit vector ``[K]``.
    images: ``[B, H, W, C]`` float images.
    labels: optional int ``[B]`` classes (vector outputs); ``None`` uses the predicted class.
    channel_reduce: static, ``"l2"`` (default) or ``"sum"``.
    batch_reduce: static, ``"max"`` (default), ``"mean"`` or ``"none"``.
    normalize: static; divide by the ``p = 0`` value.

  Returns:
    ``[2H-1, 2W-1]`` (or ``[B, 2H-1, 2W-1]``), offset ``p`` at ``[p_1 + H - 1, p_2 + W - 1]``.

  >>> f = lambda x: jnp.sum(x**2)
  >>> model_partial_grad_prod(f, jnp.ones((2, 4, 4, 3)), normalize=True).shape
  (7, 7)
  """
  grads = pixel_gradients(fn, images, labels, channel_reduce=channel_reduce)
  return partial_grad_prod(grads, batch_reduce=batch_reduce, normalize=normalize)


def gradprod_offsets(*, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
  """The offsets ``p_1`` and ``p_2`` along the axes of a ``partial_grad_prod`` map.

  Args:
    shape: static image shape ``(H, W)``.

  Returns:
    int arrays ``[2H-1]`` and ``[2W-1]``: ``-(H-1) .. H-1`` and ``-(W-1) .. W-1``.

  >>> [v.tolist() for v in gradprod_offsets(shape=(2, 3))]
  [[-1, 0, 1], [-2, -1, 0, 1, 2]]
  """
  dims = _validate.check_shape("shape", shape)
  if len(dims) != 2:
    raise ValueError(f"shape must be (H, W); got {shape!r}.")
  h, w = dims
  return np.arange(-(h - 1), h), np.arange(-(w - 1), w)
