"""Argument checks that run before any work is done, and the same checks on traced values.

Hyper-parameters (``alpha``, ``lam``, ``r``, ``q``, ``prob``) are traced arrays inside
``jax.jit``; they are checked whenever their value is known, i.e. when a method is built or a
function is called eagerly with concrete numbers. Shapes and dtypes are static and are always
checked, at trace time, before anything is computed. Inside ``jit`` the same conditions are
computed as traced booleans (``positive_ok``, ``unit_ok``): the callers turn an invalid value
into a defined result, and ``runtime_check`` raises on them when asked (``check=True``).
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

#: float32's smallest normal number: XLA flushes smaller (subnormal) values to 0 on CPU and GPU,
#: so a positive hyper-parameter must be at least this.
TINY = float(np.finfo(np.float32).tiny)
_TINY_NOTE = f" (at least {TINY:.3g}: smaller float32 values are flushed to 0)"


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


def traced(tree: Any) -> bool:
  """Whether any leaf of ``tree`` is traced (the call is inside a ``jit``, ``vmap``, ``grad`` ...)."""
  return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def listed_as_array(value: Any) -> Any:
  """A list or tuple of numbers as one numpy array (one argument to a compiled function); else ``value``."""
  return np.asarray(value) if isinstance(value, (list, tuple)) else value


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
    raise ValueError(f"{name} must lie in {left}{low}, {high}{right}; got {bad.item()!r}.")


def check_positive(name: str, value: Any) -> None:
  """Raises ``ValueError`` naming ``name`` unless a concrete ``value`` is > 0 everywhere."""
  array = concrete_value(value)
  if array is None:
    return
  bad = array[~(np.isfinite(array) & (array >= TINY))].ravel()
  if bad.size:
    raise ValueError(f"{name} must be > 0 and finite{_TINY_NOTE if 0 < bad[0] < TINY else ''}; got {bad[0].item()!r}.")


def check_choice(name: str, value: Any, choices: tuple[Any, ...]) -> None:
  """Raises ``ValueError`` naming ``name`` unless ``value`` is one of ``choices``."""
  if value not in choices:
    raise ValueError(f"{name} must be one of {choices}; got {value!r}.")


#: channel counts that a trailing axis of a spatial shape is taken for (grey, RGB, RGBA).
CHANNEL_SIZES = (1, 3, 4)


def looks_channel_last(shape: tuple[int, ...]) -> bool:
  """Whether a spatial ``shape`` of 3 or more axes ends with what is likely a channel axis.

  Its last axis is 1, 3 or 4 and shorter than every other axis: ``(32, 32, 3)``, ``(8, 8, 1)``
  (``x.shape[1:]`` of an image batch), not ``(16, 112, 112)`` (a video) or ``(4, 4, 4)``.

  >>> looks_channel_last((32, 32, 3)), looks_channel_last((16, 112, 112))
  (True, False)
  """
  return len(shape) >= 3 and shape[-1] in CHANNEL_SIZES and shape[-1] < min(shape[:-1])


def check_shape(name: str, shape: Any) -> tuple[int, ...]:
  """Returns the spatial ``shape`` as a tuple of positive ints, or raises naming ``name``.

  A trailing channel axis (``looks_channel_last``) is refused: a mask over it would cut across
  channels (a box over a size-1 axis is empty, and every coefficient of the law 0).
  """
  try:
    result = tuple(int(n) for n in shape)
  except TypeError as error:
    raise TypeError(f"{name} must be a tuple of ints (the spatial shape); got {shape!r}.") from error
  if not result or any(n <= 0 for n in result):
    raise ValueError(f"{name} must be a non-empty tuple of positive ints; got {shape!r}.")
  if looks_channel_last(result):
    raise ValueError(
      f"{name}={result} ends with what looks like a channel axis ({result[-1]}): {name} is the spatial shape S of "
      f"images [B, *S, C], without the channels (x.shape[1:-1], here {result[:-1]}). A genuine 3-D shape puts its "
      "short axis first, (T, H, W)."
    )
  return result


def check_bool(name: str, value: Any) -> None:
  """Raises ``TypeError`` naming ``name`` unless ``value`` is a Python or numpy bool (not a truthy string)."""
  if not isinstance(value, (bool, np.bool_)):
    raise TypeError(f"{name} must be True or False; got {value!r} ({type(value).__name__}).")


def hyperparameter(name: str, value: Any) -> Any:
  """``value`` as a float32 scalar leaf, checked when concrete; traced values pass through.

  A concrete value must be a real number (not a string or a bool), a scalar, and within
  float32's range; its own range (finiteness included) is the caller's check. It becomes a
  float32 numpy scalar: a fixed dtype keeps the compiled signature stable, so ``alpha=1`` and
  ``alpha=0.5`` share one compilation. A traced value must be a scalar; its value is checked
  inside ``jit`` by the callers.

  Raises:
    TypeError / ValueError naming ``name``.

  >>> hyperparameter("alpha", 1)
  array(1., dtype=float32)
  """
  if isinstance(value, jax.core.Tracer):
    if np.shape(value) != ():
      raise ValueError(f"{name} must be a scalar; got a traced value of shape {np.shape(value)}.")
    if not (jnp.issubdtype(value.dtype, jnp.floating) or jnp.issubdtype(value.dtype, jnp.integer)):
      raise TypeError(f"{name} must be a real number; got a traced value of dtype {value.dtype}.")
    return value
  if isinstance(value, (str, bytes)):
    raise TypeError(f"{name} must be a number; got the string {value!r} (write {name}=0.5, not {name}='0.5').")
  if isinstance(value, (bool, np.bool_)):
    raise TypeError(f"{name} must be a number; got the bool {value!r}.")
  try:
    array = np.asarray(value)
  except (TypeError, ValueError) as error:
    raise TypeError(f"{name} must be a number; got {value!r} ({type(value).__name__}).") from error
  if array.dtype.kind not in "iuf":
    raise TypeError(f"{name} must be a real number; got {value!r} (dtype {array.dtype}).")
  if array.shape != ():
    raise ValueError(f"{name} must be a scalar; got {value!r} of shape {array.shape}.")
  with np.errstate(over="ignore"):
    single = np.asarray(array, dtype=np.float32)
  if math.isfinite(float(array)) and not np.isfinite(single):
    raise ValueError(f"{name} must be a finite float32 number; got {float(array)!r}, which overflows float32.")
  if isinstance(value, jax.Array):
    return value.astype(jnp.float32)
  return single


def positive_message(name: str, value: Any) -> str:
  """What a positive hyper-parameter must be; says why when a concrete ``value`` is a subnormal float32."""
  array = concrete_value(value)
  subnormal = array is not None and bool(np.any((array > 0) & (array < TINY)))
  return f"{name} must be > 0 and finite{_TINY_NOTE if subnormal else ''}"


def positive_ok(value: Any) -> Any:
  """Whether ``value`` is finite and >= ``TINY``: a numpy bool when concrete, a traced bool inside ``jit``."""
  array = concrete_value(value)
  if array is not None:
    return np.all(np.isfinite(array) & (array >= TINY))
  value = jnp.asarray(value)
  return jnp.all(jnp.isfinite(value) & (value >= TINY))


def nonnegative_ok(value: Any) -> Any:
  """Whether ``value`` is finite and >= 0: a numpy bool when concrete, a traced bool inside ``jit``."""
  array = concrete_value(value)
  if array is not None:
    return np.all(np.isfinite(array) & (array >= 0))
  value = jnp.asarray(value)
  return jnp.all(jnp.isfinite(value) & (value >= 0))


def unit_ok(value: Any) -> Any:
  """Whether ``value`` lies in [0, 1] (NaN does not): a numpy bool when concrete, else traced."""
  array = concrete_value(value)
  if array is not None:
    return np.all((array >= 0) & (array <= 1))
  value = jnp.asarray(value)
  return jnp.all((value >= 0) & (value <= 1))


#: a runtime check: (message naming the argument and what it must be, ok flag, the value checked).
Check = tuple[str, Any, Any]


def _first_bad(ok: jax.Array, value: jax.Array) -> jax.Array:
  """The first entry of ``value`` where ``ok`` is false (any entry when all are fine), as float32."""
  ok = jnp.broadcast_to(ok, jnp.shape(value)).ravel()
  flat = jnp.ravel(value).astype(jnp.float32)
  return flat[jnp.argmin(ok)] if flat.size else jnp.float32(jnp.nan)


class CheckError(ValueError):
  """An invalid traced value found at run time by ``check=True`` (raised inside the callback)."""


class _QuietCheckErrors(logging.Filter):
  """Drops JAX's log of a failed callback when the failure is a ``CheckError``.

  JAX logs every exception raised in a debug callback with its internal traceback before it
  reaches the caller as a ``JaxRuntimeError``; a ``CheckError`` carries its whole message to the
  caller, so that log would only repeat it behind a traceback of JAX's internals. Other
  callbacks' failures are logged as JAX logs them.
  """

  def filter(self, record: logging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    return not isinstance(error, CheckError)


logging.getLogger("jax._src.debugging").addFilter(_QuietCheckErrors())


def runtime_check(checks: list[Check]) -> None:
  """Raises inside ``jit`` on the first failed check, through ``jax.debug.callback``.

  The error reaches the caller when the computation runs, as a ``JaxRuntimeError`` whose text
  contains the ``ValueError`` raised here (for example ``alpha must be > 0 and finite; got
  -1.0``). Concrete failures should already have been raised eagerly; this is for traced values.
  """
  if not checks:
    return
  messages = [message for message, _, _ in checks]
  oks = [jnp.all(jnp.asarray(ok)) for _, ok, _ in checks]
  bads = [_first_bad(jnp.asarray(ok), jnp.asarray(value)) for _, ok, value in checks]

  def fail(oks_now: list[np.ndarray], bads_now: list[np.ndarray]) -> None:
    for message, ok, bad in zip(messages, oks_now, bads_now, strict=True):
      # Under vmap the flags arrive batched: any failing member fails.
      flags, values = np.asarray(ok).ravel(), np.asarray(bad).ravel()
      if not flags.all():
        raise CheckError(f"{message}; got {float(values[np.argmin(flags)])!r}.")

  jax.debug.callback(fail, oks, bads)


#: how many ``lam`` and masks a batch draws: one for the batch, or one per example.
MODES = ("batch", "example")


def check_groups(batch: int, groups: Any) -> None:
  """Raises unless ``groups`` is a positive int dividing ``batch``."""
  if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
    raise ValueError(f"groups must be a positive int (blocks of the batch axis); got {groups!r}.")
  if batch % groups:
    raise ValueError(f"groups={groups} must divide the batch size {batch}.")


def check_int_range(name: str, value: Any, *, low: int, what: str) -> tuple[int, int]:
  """``(lo, hi)`` as ints; a ``ValueError`` naming ``name`` unless a pair with ``low <= lo <= hi`` and ``hi >= 1``.

  ``what`` says what the pair bounds (in the message).
  """
  bounds = tuple(value) if isinstance(value, (tuple, list)) else ()
  if len(bounds) != 2 or any(isinstance(b, bool) or not isinstance(b, (int, np.integer)) for b in bounds):
    raise ValueError(f"{name} must be a pair (low, high) of ints, the range of {what}; got {value!r}.")
  if not low <= bounds[0] <= bounds[1] or bounds[1] < 1:
    raise ValueError(f"{name} must satisfy {low} <= low <= high and high >= 1 ({what}); got {value!r}.")
  return int(bounds[0]), int(bounds[1])


def check_positive_int(name: str, value: Any) -> None:
  """Raises unless ``value`` is a positive int (bools refused)."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f"{name} must be a positive int; got {value!r}.")


def check_images(images: Any, spatial_ndim: Any) -> tuple[int, tuple[int, ...], np.dtype[Any]]:
  """``(batch, spatial shape, dtype)`` of a batch of images ``[B, *S, C]``, or a clear error.

  Images are float (any width) or uint8, with ``spatial_ndim`` non-empty spatial axes.
  """
  if not hasattr(images, "shape") or not hasattr(images, "dtype"):
    raise TypeError(f"images must be an array [B, *S, C]; got {type(images).__name__}.")
  dtype = jnp.dtype(images.dtype)
  if not (jnp.issubdtype(dtype, jnp.floating) or dtype == jnp.uint8):
    raise TypeError(f"images must be a float dtype or uint8; got {dtype}.")
  check_positive_int("spatial_ndim", spatial_ndim)
  if images.ndim != spatial_ndim + 2:
    raise ValueError(
      f"images must be batched, [B, *S, C] with {spatial_ndim} spatial axes (ndim {spatial_ndim + 2}); "
      f"got shape {tuple(images.shape)}. Add a batch axis for a single image."
    )
  if 0 in tuple(images.shape[1:-1]):
    raise ValueError(f"images must have non-empty spatial axes; got shape {tuple(images.shape)} (a zero-size axis).")
  shape = tuple(int(n) for n in images.shape)
  if looks_channels_first(shape, spatial_ndim):
    warnings.warn(
      f"images of shape {shape} look channels-first ([B, C, *S] with C = {shape[1]}): they are mixed as "
      f"[B, *S, C] (channels last), so masks would cut across channels. Move the axis first: "
      f"jnp.moveaxis(images, 1, -1). (Images that really are [B, *S, C] with a first spatial axis of {shape[1]} "
      "are mixed as given; silence this with warnings.filterwarnings.)",
      UserWarning,
      stacklevel=4,
    )
  if dtype == np.float64 and not jax.config.read("jax_enable_x64"):
    warnings.warn(
      "images are float64 but JAX's 64-bit mode is off: they are mixed and returned as float32 "
      "(jax.config.update('jax_enable_x64', True) keeps float64).",
      UserWarning,
      stacklevel=4,
    )
  return shape[0], shape[1:-1], dtype


def looks_channels_first(shape: tuple[int, ...], spatial_ndim: int) -> bool:
  """Whether images ``[B, *S, C]`` of ``shape`` are likely ``[B, C, *S]``: with 2 or more spatial axes,
  the first "spatial" axis is 1, 3 or 4 and shorter than the others and than the "channel" axis.

  >>> [looks_channels_first(s, 2) for s in [(8, 3, 32, 32), (8, 32, 32, 3), (8, 4, 4, 512)]]
  [True, False, False]
  """
  if spatial_ndim < 2 or len(shape) != spatial_ndim + 2:
    return False
  first, rest, channels = shape[1], shape[2:-1], shape[-1]
  return first in CHANNEL_SIZES and first < min(rest) and first < channels
