"""Argument checks that run before any work is done.

Hyper-parameters (``alpha``, ``lam``, ``r``, ``q``, ``prob``) are traced arrays inside
``jax.jit``; they are checked whenever their value is known, i.e. when a method is built or a
function is called eagerly with concrete numbers. Shapes and dtypes are static and are always
checked, at trace time, before anything is computed.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def concrete_value(value: Any) -> np.ndarray | None:
  """Returns ``value`` as a numeric numpy array, or ``None`` when it is traced or not numeric."""
  if value is None or isinstance(value, jax.core.Tracer):
    return None
  try:
    array = np.asarray(value)
  except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError, TypeError):
    return None
  if array.dtype.kind not in "biuf":
    return None
  return array


def check_range(
  name: str,
  value: Any,
  low: float,
  high: float,
  *,
  low_open: bool = False,
  high_open: bool = False,
) -> None:
  """Raises ``ValueError`` naming ``name`` if a concrete ``value`` leaves the interval."""
  array = concrete_value(value)
  if array is None:
    return
  if np.isnan(array).any():
    raise ValueError(f"{name} must be a number in the stated range; got NaN.")
  too_low = (array <= low) if low_open else (array < low)
  too_high = (array >= high) if high_open else (array > high)
  if too_low.any() or too_high.any():
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    bad = array[too_low | too_high].ravel()[0]
    raise ValueError(f"{name} must lie in {left}{low}, {high}{right}; got {bad!r}.")


def check_positive(name: str, value: Any) -> None:
  """Raises ``ValueError`` naming ``name`` unless a concrete ``value`` is > 0 everywhere."""
  array = concrete_value(value)
  if array is None:
    return
  if np.isnan(array).any() or (array <= 0).any():
    bad = array[~(array > 0)].ravel()[0]
    raise ValueError(f"{name} must be > 0; got {bad!r}.")


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
  """Raises ``ValueError`` naming ``name`` unless ``value`` is one of ``choices``."""
  if value not in choices:
    raise ValueError(f"{name} must be one of {choices}; got {value!r}.")


def check_shape(name: str, shape: Any) -> tuple[int, ...]:
  """Returns ``shape`` as a tuple of positive ints, or raises naming ``name``."""
  try:
    result = tuple(int(n) for n in shape)
  except TypeError as error:
    raise TypeError(f"{name} must be a tuple of ints (the spatial shape); got {shape!r}.") from error
  if not result or any(n <= 0 for n in result):
    raise ValueError(f"{name} must be a non-empty tuple of positive ints; got {shape!r}.")
  return result
