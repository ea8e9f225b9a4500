"""The loss class of Theorem 1: ``l = h(f(x)) - y f(x)``, scalar and vector cases.

* ``"binary"``: ``f`` is one logit, ``h = softplus``, ``h' = sigmoid``,
  ``h'' = sigmoid (1 - sigmoid)``; ``y`` in [0, 1] (binary cross-entropy on a logit; for ``y``
  outside [0, 1] the loss is unbounded below in ``f``).
* ``"softmax"``: ``f`` is a logit vector ``[K]``, ``h = logsumexp``, ``h' = softmax = p``,
  ``h'' = diag(p) - p p^T``; ``y`` a probability row ``[K]`` (softmax cross-entropy), not a
  class index.

``loss_value`` and ``residual`` check ``y`` against the logits (``_inputs.check_logit_labels``):
shapes always, values when concrete.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax.theory import _inputs
from msda_jax.theory._inputs import LOSSES, check_loss

__all__ = ["LOSSES", "check_loss", "curvature_form", "curvature_matrix", "loss_value", "residual"]


def loss_value(logits: ArrayLike, y: ArrayLike, loss: str) -> jax.Array:
  """``h(f) - y f`` for one example (scalar).

  ``y`` has the logits' shape: ``[]`` in [0, 1] (binary) or a probability row ``[K]`` (softmax).

  >>> float(loss_value(0.0, 1.0, "binary"))  # log 2
  0.693...
  """
  logits, y = _inputs.check_logit_labels(logits, y, loss)
  if loss == "binary":
    return jax.nn.softplus(logits) - y * logits
  return jax.nn.logsumexp(logits, axis=-1) - jnp.sum(y * logits, axis=-1)


def residual(logits: ArrayLike, y: ArrayLike, loss: str) -> jax.Array:
  """``h'(f) - y``: a scalar (binary) or ``[K]`` (softmax); ``y`` as in ``loss_value``."""
  logits, y = _inputs.check_logit_labels(logits, y, loss)
  if loss == "binary":
    return jax.nn.sigmoid(logits) - y
  return jax.nn.softmax(logits, axis=-1) - y


def curvature_form(logits: ArrayLike, v: ArrayLike, loss: str) -> jax.Array:
  """``v^T h''(f) v`` for a tangent ``v`` of the logits (``J delta``): a scalar.

  Binary: ``sigmoid (1 - sigmoid) v^2``; softmax: ``sum p v^2 - (p . v)^2``.
  """
  check_loss(loss)
  logits, v = jnp.asarray(logits), jnp.asarray(v)
  if loss == "binary":
    s = jax.nn.sigmoid(logits)
    return s * (1.0 - s) * v**2
  p = jax.nn.softmax(logits, axis=-1)
  return jnp.sum(p * v**2, axis=-1) - jnp.sum(p * v, axis=-1) ** 2


def curvature_matrix(logits: ArrayLike, loss: str) -> jax.Array:
  """``h''(f)``: a scalar (binary) or ``[K, K]`` (softmax)."""
  check_loss(loss)
  logits = jnp.asarray(logits)
  if loss == "binary":
    s = jax.nn.sigmoid(logits)
    return s * (1.0 - s)
  p = jax.nn.softmax(logits, axis=-1)
  return jnp.diag(p) - jnp.outer(p, p)
