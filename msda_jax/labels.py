"""Targets: one-hot encoding, label smoothing and validation of label layouts.

Three layouts are accepted for a batch of ``B`` examples with spatial shape ``S``:

* integer class ids ``[B]`` (``num_classes`` required), one-hot encoded;
* probability rows ``[B, K]`` (``K == num_classes`` when it is given);
* dense label maps for segmentation: integer ``[B, *S]`` or probabilities ``[B, *S, K]``,
  mixed per pixel with the same mask as the images.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _validate


def smooth(targets: jax.Array, label_smoothing: ArrayLike) -> jax.Array:
  """``(1 - eps) y + eps / K`` over the last axis (applied before mixing).

  >>> smooth(jnp.array([[1.0, 0.0]]), 0.2).tolist()
  [[0.9..., 0.1...]]
  """
  eps = jnp.asarray(label_smoothing, targets.dtype)
  return targets * (1.0 - eps) + eps / targets.shape[-1]


def prepare_targets(
  labels: ArrayLike,
  *,
  batch: int,
  spatial_shape: tuple[int, ...],
  num_classes: int | None,
  label_smoothing: ArrayLike = 0.0,
) -> tuple[jax.Array, bool]:
  """Validates ``labels`` and returns float targets and whether they are dense maps.

  Args:
    labels: integer ``[B]`` or ``[B, *S]``, or float ``[B, K]`` or ``[B, *S, K]``.
    batch: the images' batch size ``B``.
    spatial_shape: the images' spatial shape ``S``.
    num_classes: ``K``; required for integer labels, checked against float labels.
    label_smoothing: traced ``eps`` in [0, 1].

  Returns:
    ``(targets, dense)``: float32 (float64 for float64 labels) ``[B, K]`` or ``[B, *S, K]``.

  Raises:
    ValueError / TypeError naming ``labels`` or ``num_classes`` for a bad layout.
  """
  if not hasattr(labels, "shape") or not hasattr(labels, "dtype"):
    labels = np.asarray(labels)
  shape = tuple(labels.shape)
  dtype = jnp.dtype(labels.dtype)
  _validate.check_range("label_smoothing", label_smoothing, 0.0, 1.0)
  if num_classes is not None and (not isinstance(num_classes, (int, np.integer)) or num_classes < 1):
    raise ValueError(f"num_classes must be a positive int; got {num_classes!r}.")
  if not shape or shape[0] != batch:
    raise ValueError(f"labels must have the images' batch size {batch} as axis 0; got labels of shape {shape}.")
  dense_int = (batch, *spatial_shape)
  if dtype.kind in "iu":
    if num_classes is None:
      raise ValueError(f"integer labels of shape {shape} need num_classes to be one-hot encoded; got num_classes=None.")
    if shape not in ((batch,), dense_int):
      raise ValueError(f"integer labels must be [B]={(batch,)} or a dense map [B, *S]={dense_int}; got {shape}.")
    concrete = _validate.concrete_value(labels)
    if concrete is not None and concrete.size and (concrete.min() < 0 or concrete.max() >= num_classes):
      raise ValueError(
        f"integer labels must lie in [0, num_classes={num_classes}); "
        f"got values in [{concrete.min()}, {concrete.max()}]."
      )
    targets = jax.nn.one_hot(labels, int(num_classes), dtype=jnp.float32)
    dense = shape == dense_int
  elif jnp.issubdtype(dtype, jnp.floating):
    if len(shape) == 2:
      dense = False
    elif shape[:-1] == dense_int:
      dense = True
    else:
      raise ValueError(
        f"float labels must be probability rows [B, K] or a dense map [B, *S, K] with S={spatial_shape}; got {shape}."
      )
    if num_classes is not None and shape[-1] != num_classes:
      raise ValueError(f"labels have width {shape[-1]} but num_classes={num_classes}; they must match.")
    targets = jnp.asarray(labels)
    if targets.dtype != jnp.float64:
      targets = targets.astype(jnp.float32)
  else:
    raise TypeError(f"labels must be integer class ids or float probabilities; got dtype {dtype}.")
  return smooth(targets, label_smoothing), dense
