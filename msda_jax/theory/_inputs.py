"""Checks of a model, its examples and their labels, shared by the theory's entry points.

Every function that evaluates the loss class of Theorem 1 (``l = h(f(x)) - y f(x)``) on a
model (``regularizers_exact``, ``regularizers_sampled``, ``msda_loss``, ``empirical_loss``,
``approximate_msda_loss``) calls ``check_model_inputs`` before any work is done, and the
per-example losses (``loss_value``, ``residual``) call ``check_logit_labels``. What they expect:

* ``loss="binary"``: the model returns one logit per example, shape ``[]``; ``[1]`` is accepted
  and squeezed to ``[]``. Labels are ``[m]`` (``[m, 1]`` is squeezed) target probabilities in
  [0, 1]: ``h = softplus`` makes ``l`` the binary cross-entropy of ``sigmoid(f)`` against ``y``,
  which is bounded below only for ``y`` in [0, 1] (hard labels {0, 1} or soft/mixed ones).
* ``loss="softmax"``: the model returns a logit vector ``[K]``; labels are probability rows
  ``[m, K]`` (entries >= 0 summing to 1 within ``sqrt(eps)`` of their dtype). Integer class
  indices ``[m]`` are refused: one-hot encode them with ``jax.nn.one_hot(y, K)``. Integer or
  boolean one-hot rows are accepted.

Integer and boolean labels are cast to the model's float dtype. Shapes and dtypes are static:
they are checked even when ``x`` and ``y`` are traced inside ``jax.jit`` (the model's output
shape comes from ``jax.eval_shape``, which evaluates nothing). Label values are checked only
when they are concrete (eager calls with arrays or numbers); traced labels are not.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _validate

LOSSES = ("binary", "softmax")
Model = Callable[[jax.Array], jax.Array]


def check_loss(loss: str) -> None:
  """Raises unless ``loss`` is ``"binary"`` or ``"softmax"``."""
  _validate.check_choice("loss", loss, LOSSES)


def _dims(shape: tuple[int, ...]) -> str:
  return "[" + ", ".join(str(n) for n in shape) + "]"


def _check_kind(y: jax.Array) -> None:
  if not (jnp.issubdtype(y.dtype, jnp.floating) or jnp.issubdtype(y.dtype, jnp.integer) or y.dtype == jnp.bool_):
    raise TypeError(f"labels y must be real numbers (float, int or bool); got dtype {y.dtype}.")


def _is_integer(y: jax.Array) -> bool:
  return jnp.issubdtype(y.dtype, jnp.integer) or y.dtype == jnp.bool_


def _check_binary_values(y: jax.Array) -> None:
  """Raises if concrete labels leave [0, 1] (or are NaN)."""
  values = _validate.concrete_value(y)
  if values is None:
    return
  bad = np.isnan(values) | (values < 0) | (values > 1)
  if bad.any():
    raise ValueError(
      "labels y must lie in [0, 1] for loss='binary' (target probabilities of binary cross-entropy on "
      f"one logit); got {_plain(values[bad].ravel()[0])!r}."
    )


def _check_rows(y: jax.Array, head: str) -> None:
  """Raises, starting with ``head``, if concrete label rows are not probability vectors."""
  values = _validate.concrete_value(y)
  if values is None:
    return
  values = values.astype(np.float64)
  head = f"{head} (entries >= 0 summing to 1)"
  if np.isnan(values).any():
    raise ValueError(f"{head}; got NaN.")
  if (values < 0).any():
    raise ValueError(f"{head}; got an entry {_plain(values[values < 0].ravel()[0])!r}.")
  tol = float(np.sqrt(jnp.finfo(y.dtype).eps)) if jnp.issubdtype(y.dtype, jnp.floating) else 0.0
  sums = values.sum(axis=-1)
  off = np.abs(sums - 1.0) > tol
  if off.any():
    raise ValueError(f"{head}; got a row summing to {_plain(sums[off].ravel()[0])!r}.")


def _plain(value: np.generic) -> object:
  """A numpy scalar as the Python number it holds (``3``, ``3.0``, ``nan``) for a message."""
  return value.item()


def _class_index_hint(y: jax.Array, k: int) -> str:
  return f"integer labels of shape {y.shape}, class indices: one-hot encode them with jax.nn.one_hot(y, {k})"


def _float_labels(y: jax.Array, dtype: jnp.dtype) -> jax.Array:
  if not _is_integer(y):
    return y
  return y.astype(dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.result_type(float))


def check_logit_labels(logits: ArrayLike, y: ArrayLike, loss: str) -> tuple[jax.Array, jax.Array]:
  """Checks labels against the logits of one example (or a batch of them) for ``loss``.

  ``"binary"``: ``y`` has the logits' shape, values in [0, 1]. ``"softmax"``: ``y`` has the
  logits' shape ``[..., K]``, rows are probabilities. Values are checked only when concrete.

  Args:
    logits: ``[]`` (binary) or ``[K]`` (softmax), or a batch of them.
    y: labels of the same shape.
    loss: ``"binary"`` or ``"softmax"``.

  Returns:
    ``(logits, y)`` as arrays, integer or boolean labels cast to the logits' float dtype.

  Raises:
    ValueError: naming ``y`` (shape or values) or ``loss``.

  >>> check_logit_labels(0.0, 3.0, "binary")
  Traceback (most recent call last):
  ...
  ValueError: labels y must lie in [0, 1] for loss='binary' (...); got 3.0.
  """
  check_loss(loss)
  logits, y = jnp.asarray(logits), jnp.asarray(y)
  _check_kind(y)
  if loss == "binary":
    if y.shape != logits.shape:
      raise ValueError(f"labels y must have the logits' shape {logits.shape} for loss='binary'; got shape {y.shape}.")
    _check_binary_values(y)
    return logits, _float_labels(y, logits.dtype)
  if logits.ndim == 0:
    raise ValueError("loss='softmax' needs a logit vector [K]; got a scalar logit (use loss='binary').")
  expected = ("[K] = " if logits.ndim == 1 else "[..., K] = ") + _dims(logits.shape)
  head = f"labels y must be a probability row {expected} for loss='softmax'"
  if y.shape != logits.shape:
    integer = _is_integer(y) and y.shape == logits.shape[:-1]
    got = _class_index_hint(y, logits.shape[-1]) if integer else f"shape {y.shape}"
    raise ValueError(f"{head}; got {got}.")
  _check_rows(y, head)
  return logits, _float_labels(y, logits.dtype)


def check_model_inputs(f: Model, x: ArrayLike, y: ArrayLike, *, loss: str) -> tuple[Model, jax.Array, jax.Array]:
  """Checks a model, its examples and their labels for ``loss`` before any work (module docstring).

  The model's output shape for one example comes from ``jax.eval_shape`` (nothing is
  evaluated). A binary model returning ``[1]`` is wrapped to return ``[]``; labels ``[m, 1]``
  become ``[m]``; integer or boolean labels become floats.

  Args:
    f: model of one example ``[*S, C] -> []`` (binary; ``[1]`` accepted) or ``-> [K]`` (softmax).
    x: examples ``[m, *S, C]``, ``m >= 1``.
    y: labels ``[m]`` in [0, 1] (binary; ``[m, 1]`` accepted) or probability rows ``[m, K]`` (softmax).
    loss: ``"binary"`` or ``"softmax"``.

  Returns:
    ``(f, x, y)``: the model (squeezing a binary ``[1]`` output), ``x`` as an array and the
    labels as a float array ``[m]`` or ``[m, K]``.

  Raises:
    ValueError: naming ``loss``, ``x``, the model's output shape or the labels ``y``.
    TypeError: for labels that are not real numbers, or a model that returns a pytree.

  >>> f = lambda z: 2.0 * z  # an example [3] -> 3 logits
  >>> _ = check_model_inputs(f, jnp.ones((4, 3)), jnp.array([0, 2, 1, 2]), loss="softmax")
  Traceback (most recent call last):
  ...
  ValueError: labels y must be probability rows [m, K] = [4, 3] for loss='softmax'; got integer labels ...
  """
  check_loss(loss)
  x, y = jnp.asarray(x), jnp.asarray(y)
  if x.ndim < 1 or x.shape[0] < 1:
    raise ValueError(f"x must be a non-empty batch of examples [m, *S, C]; got shape {x.shape}.")
  m, example = x.shape[0], tuple(x.shape[1:])
  _check_kind(y)
  if y.ndim < 1 or y.shape[0] != m:
    raise ValueError(f"labels y must have one row per example: x has m = {m} examples but y has shape {y.shape}.")
  # The model sees float inputs (mixed or differentiated examples), whatever x's dtype.
  dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.result_type(float)
  try:
    out = jax.eval_shape(f, jax.ShapeDtypeStruct(example, dtype))
  except (TypeError, ValueError) as error:
    raise ValueError(
      f"the model failed on one example of shape {example}: the theory functions call it on one example "
      "[*S, C] at a time (they vmap it themselves). Wrap a model of batches as lambda x: model(x[None])[0]. "
      f"The model raised: {type(error).__name__}: {str(error).splitlines()[0]}"
    ) from error
  if not isinstance(out, jax.ShapeDtypeStruct):
    raise TypeError(
      f"the model must return one array of logits per example (shape [] or [K]); got {type(out).__name__} "
      f"{jax.tree.map(lambda leaf: leaf.shape, out)} for an example of shape {example}."
    )
  out_shape = tuple(out.shape)
  if loss == "binary":
    if out_shape not in ((), (1,)):
      raise ValueError(
        f"the model must return one logit per example for loss='binary': shape [] (or [1]); got shape {out_shape} "
        f"for an example of shape {example}. For a logit vector [K] use loss='softmax'."
      )
    if y.shape not in ((m,), (m, 1)):
      raise ValueError(
        f"labels y must be [m] = [{m}] (or [m, 1]) for loss='binary'; got shape {y.shape}. "
        "For probability rows [m, K] use loss='softmax'."
      )
    _check_binary_values(y)
    model = f if out_shape == () else (lambda z: f(z).reshape(()))
    return model, x, _float_labels(y.reshape(m), out.dtype)
  if len(out_shape) != 1:
    raise ValueError(
      f"the model must return a logit vector [K] per example for loss='softmax'; got shape {out_shape} "
      f"for an example of shape {example}. For one logit use loss='binary'."
    )
  k = out_shape[0]
  head = f"labels y must be probability rows [m, K] = [{m}, {k}] for loss='softmax'"
  if y.shape != (m, k):
    integer = _is_integer(y) and y.shape == (m,)
    got = _class_index_hint(y, k) if integer else f"shape {y.shape} (K = {k} from the model's output)"
    raise ValueError(f"{head}; got {got}.")
  _check_rows(y, head)
  return f, x, _float_labels(y, out.dtype)
