"""Targets: one-hot encoding, label smoothing and validation of label layouts.

Three layouts are accepted for a batch of ``B`` examples with spatial shape ``S``:

* integer class ids ``[B]`` (``num_classes`` required), one-hot encoded;
* probability rows ``[B, K]`` (``K == num_classes`` when it is given);
* dense label maps for segmentation: integer ``[B, *S]`` or probabilities ``[B, *S, K]``,
  mixed per pixel with the same mask as the images.

The layout is inferred from the shapes unless ``dense_labels`` says it. The one case the shapes
cannot tell, integer ``[B, T]`` labels of audio (one spatial axis) with ``T == num_classes``
(frame ids, or one-hot rows), raises unless ``dense_labels`` is given; with
``dense_labels=False`` integer ``[B, K]`` rows are taken as probability rows.

Concrete labels are checked: integer ids in ``[0, num_classes)``, probabilities in [0, 1] with
rows summing to 1 (within ``1e-3 + K eps`` of the dtype). Traced labels cannot be checked
without running: an integer id out of range gives a NaN target row (the loss shows it), and
``label_checks`` gives the conditions for a run-time check.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _validate


def smooth(targets: jax.Array, label_smoothing: ArrayLike) -> jax.Array:
  """``(1 - eps) y + eps / K`` over the last axis (applied before mixing).

  A traced ``eps`` outside [0, 1] is clipped into it, and NaN is 0, so the rows stay
  distributions.

  >>> smooth(jnp.array([[1.0, 0.0]]), 0.2).tolist()
  [[0.9..., 0.1...]]
  """
  eps = jnp.asarray(label_smoothing, targets.dtype)
  eps = jnp.clip(jnp.where(jnp.isnan(eps), 0.0, eps), 0.0, 1.0)
  return targets * (1.0 - eps) + eps / targets.shape[-1]


def prepare_targets(
  labels: ArrayLike,
  *,
  batch: int,
  spatial_shape: tuple[int, ...],
  num_classes: int | None,
  label_smoothing: ArrayLike = 0.0,
  dense_labels: bool | None = None,
) -> tuple[jax.Array, bool]:
  """Validates ``labels`` and returns float targets and whether they are dense maps.

  Args:
    labels: integer ``[B]`` or ``[B, *S]``, or float ``[B, K]`` or ``[B, *S, K]``.
    batch: the images' batch size ``B``.
    spatial_shape: the images' spatial shape ``S``.
    num_classes: ``K``; required for integer labels, checked against float labels.
    label_smoothing: traced ``eps`` in [0, 1].
    dense_labels: whether the labels are dense maps; ``None`` infers it (see the module docstring).

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
  if dense_labels is not None and not isinstance(dense_labels, (bool, np.bool_)):
    raise TypeError(f"dense_labels must be True, False or None; got {dense_labels!r}.")
  dense_int = (batch, *spatial_shape)
  rows = dtype.kind in "iu" and len(shape) == 2 and dense_labels is False
  if dtype.kind in "iu" and not rows:
    if num_classes is None:
      raise ValueError(f"integer labels of shape {shape} need num_classes to be one-hot encoded; got num_classes=None.")
    allowed = {None: ((batch,), dense_int), True: (dense_int,), False: ((batch,),)}[dense_labels]
    if shape not in allowed:
      raise ValueError(
        f"integer labels must be {' or '.join(map(str, allowed))} ([B] ids or a dense map [B, *S]); got {shape}."
      )
    if dense_labels is None and len(spatial_shape) == 1 and shape == dense_int and spatial_shape[0] == num_classes:
      raise ValueError(
        f"integer labels of shape {shape} are ambiguous: T = num_classes = {num_classes}, so they may be a dense map "
        f"of class ids per frame or one-hot rows [B, K]. Pass dense_labels=True (ids per frame) or dense_labels=False "
        f"(one-hot rows), or give rows as floats."
      )
    concrete = _validate.concrete_value(labels)
    if concrete is not None and concrete.size and (concrete.min() < 0 or concrete.max() >= num_classes):
      raise ValueError(
        f"integer labels must lie in [0, num_classes={num_classes}); "
        f"got values in [{concrete.min()}, {concrete.max()}]."
      )
    labels = jnp.asarray(labels)
    targets = jax.nn.one_hot(labels, int(num_classes), dtype=jnp.float32)
    if concrete is None:  # traced ids out of range: a NaN row the loss shows, not a row summing to eps
      in_range = (labels >= 0) & (labels < num_classes)
      targets = jnp.where(in_range[..., None], targets, jnp.nan)
    dense = shape == dense_int
  elif jnp.issubdtype(dtype, jnp.floating) or rows:
    if len(shape) == 2 and dense_labels is not True:
      dense = False
    elif shape[:-1] == dense_int and dense_labels is not False:
      dense = True
    else:
      layouts = {None: "probability rows [B, K] or a dense map [B, *S, K]", True: "a dense map [B, *S, K]"}
      raise ValueError(
        f"float labels must be {layouts.get(dense_labels, 'probability rows [B, K]')} with S={spatial_shape}; "
        f"got {shape}."
      )
    if num_classes is not None and shape[-1] != num_classes:
      raise ValueError(f"labels have width {shape[-1]} but num_classes={num_classes}; they must match.")
    _check_probabilities(labels, dtype)
    targets = jnp.asarray(labels)
    if targets.dtype != jnp.float64:
      targets = targets.astype(jnp.float32)
  else:
    raise TypeError(f"labels must be integer class ids or float probabilities; got dtype {dtype}.")
  return smooth(targets, label_smoothing), dense


def sum_tolerance(dtype: np.dtype, width: int) -> float:
  """How far a probability row of ``width`` entries in ``dtype`` may sum from 1: ``1e-3 + K eps``."""
  eps = float(jnp.finfo(dtype).eps) if jnp.issubdtype(dtype, jnp.floating) else 0.0
  return 1e-3 + width * eps


def _check_probabilities(labels: ArrayLike, dtype: np.dtype) -> None:
  """Raises naming ``labels`` unless concrete rows lie in [0, 1] and sum to 1 over the last axis."""
  array = _validate.concrete_value(labels)
  if array is None or not array.size:
    return
  array = array.astype(np.float64)
  outside = ~((array >= 0.0) & (array <= 1.0))
  if outside.any():
    raise ValueError(
      f"probability labels must lie in [0, 1] (rows of class probabilities); got {array[outside].ravel()[0].item()!r}."
    )
  sums = array.sum(axis=-1)
  error = np.abs(sums - 1.0)
  if (error > sum_tolerance(dtype, array.shape[-1])).any():
    bad = sums.ravel()[np.argmax(error.ravel())]
    raise ValueError(
      f"probability labels must sum to 1 over the last axis (the classes); got a row summing to {float(bad)!r}."
    )


def label_checks(labels: ArrayLike, *, num_classes: int | None) -> list[_validate.Check]:
  """Run-time conditions on traced ``labels`` (as ``prepare_targets`` checks concrete ones).

  Integer ids: in ``[0, num_classes)``. Float rows: entries in [0, 1] and row sums within
  ``sum_tolerance`` of 1 (the value reported is the offending sum or entry).
  """
  labels = jnp.asarray(labels)
  if jnp.issubdtype(labels.dtype, jnp.integer):
    if num_classes is None:
      return []
    return [(f"labels must lie in [0, num_classes={num_classes})", (labels >= 0) & (labels < num_classes), labels)]
  values = labels.astype(jnp.float32)
  sums = jnp.sum(values, axis=-1)
  tolerance = sum_tolerance(labels.dtype, labels.shape[-1])
  return [
    ("probability labels must lie in [0, 1]", (values >= 0.0) & (values <= 1.0), values),
    ("probability labels must sum to 1 over the last axis", jnp.abs(sums - 1.0) <= tolerance, sums),
  ]
