"""Calibration of a classifier: the expected calibration error over confidence bins, and the NLL.

The confidence of an example is its top softmax probability, its prediction the arg-max class.
With ``num_bins`` equal-width bins of (0, 1], bin ``b`` holding the confidences in
``(b / num_bins, (b + 1) / num_bins]`` (a confidence of exactly 0 falls in the first bin)::

    ECE = sum_b (n_b / N) | accuracy_b - confidence_b |,

``accuracy_b`` and ``confidence_b`` the mean correctness and confidence of its ``n_b`` examples
(15 bins by default, the usual choice). ``calibration_counts`` returns per-bin sums, so that
evaluation batches and devices add up (``jax.lax.psum`` or a host sum) before
``expected_calibration_error`` divides: the result over a dataset is exact, not a mean of
per-batch errors. Static shapes throughout (``num_bins`` is static), jit-compatible.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _validate

#: the bin count of the common definition of the ECE.
NUM_BINS = 15


class CalibrationCounts(NamedTuple):
  """Per-bin sums over examples, ``[num_bins]`` float32 each; add them across batches.

  Attributes:
    examples: how many examples have their confidence in the bin.
    confidence: the sum of their confidences.
    correct: how many of them are classified correctly.
  """

  examples: jax.Array
  confidence: jax.Array
  correct: jax.Array


def calibration_counts(logits: ArrayLike, labels: ArrayLike, *, num_bins: int = NUM_BINS) -> CalibrationCounts:
  """Per-bin counts, confidence sums and correct counts of a batch.

  Args:
    logits: ``[N, K]`` class scores (softmax is applied here).
    labels: ``[N]`` integer classes.
    num_bins: static number of equal-width bins of (0, 1], >= 1.

  Returns:
    ``CalibrationCounts`` of ``[num_bins]`` float32 arrays.

  >>> logits = jnp.log(jnp.array([[0.9, 0.1], [0.3, 0.7]]))
  >>> counts = calibration_counts(logits, jnp.array([0, 0]), num_bins=2)
  >>> counts.examples.tolist(), round(float(counts.confidence[1]), 6), counts.correct.tolist()
  ([0.0, 2.0], 1.6, [0.0, 1.0])
  """
  _validate.check_positive_int("num_bins", num_bins)
  logits, labels = jnp.asarray(logits), jnp.asarray(labels)
  if logits.ndim != 2 or labels.shape != logits.shape[:1]:
    raise ValueError(f"logits must be [N, K] and labels [N]; got shapes {logits.shape} and {labels.shape}.")
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(f"labels must be integer classes [N]; got dtype {labels.dtype}.")
  probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
  confidence = jnp.max(probs, axis=-1)
  correct = (jnp.argmax(probs, axis=-1) == labels).astype(jnp.float32)
  index = jnp.clip(jnp.ceil(confidence * num_bins).astype(jnp.int32) - 1, 0, num_bins - 1)
  one_hot = jax.nn.one_hot(index, num_bins, dtype=jnp.float32)
  return CalibrationCounts(one_hot.sum(0), one_hot.T @ confidence, one_hot.T @ correct)


def expected_calibration_error(counts: CalibrationCounts) -> jax.Array:
  """``sum_b (n_b / N) |accuracy_b - confidence_b|`` from (summed) counts; NaN when ``N = 0``."""
  total = jnp.sum(counts.examples)
  gap = jnp.abs(counts.correct - counts.confidence)  # n_b |acc_b - conf_b|
  return jnp.where(total > 0, jnp.sum(gap) / jnp.where(total > 0, total, 1.0), jnp.nan)


def negative_log_likelihood(logits: ArrayLike, labels: ArrayLike) -> jax.Array:
  """Mean ``-log softmax(logits)[label]`` over ``[N, K]`` logits and ``[N]`` integer labels."""
  logits, labels = jnp.asarray(logits, jnp.float32), jnp.asarray(labels)
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None].astype(jnp.int32), axis=-1))
