"""The expected calibration error and the NLL against hand-computed cases and a numpy reference."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from msda_jax.train import calibration


def test_ece_of_a_hand_computed_batch():
  """15 bins; confidences 0.95 (right), 0.92 and 0.93 (one bin: 1 of 2 right), 0.65 (right), 0.7 (wrong).

  ECE = (|1 - 0.95| + 2 |0.5 - 0.925| + |1 - 0.65| + |0 - 0.7|) / 5 = 1.95 / 5 = 0.39.
  """
  probs = np.array([[0.95, 0.05], [0.08, 0.92], [0.93, 0.07], [0.35, 0.65], [0.7, 0.3]])
  labels = np.array([0, 0, 0, 1, 1])
  counts = calibration.calibration_counts(jnp.log(probs), labels)
  assert float(calibration.expected_calibration_error(counts)) == pytest.approx(0.39, abs=1e-6)
  assert counts.examples.tolist() == [0.0] * 9 + [1.0, 1.0, 0.0, 0.0, 2.0, 1.0]
  nll = -(np.log(0.95) + np.log(0.08) + np.log(0.93) + np.log(0.65) + np.log(0.3)) / 5
  assert float(calibration.negative_log_likelihood(jnp.log(probs), labels)) == pytest.approx(nll, rel=1e-6)


def numpy_ece(probs, labels, num_bins):
  confidence, prediction = probs.max(1), probs.argmax(1)
  edges = np.linspace(0.0, 1.0, num_bins + 1)
  total = 0.0
  for lo, hi in itertools.pairwise(edges):
    inside = (confidence > lo) & (confidence <= hi) if lo > 0 else (confidence <= hi)
    if inside.any():
      total += inside.sum() * abs((prediction[inside] == labels[inside]).mean() - confidence[inside].mean())
  return total / len(labels)


def test_ece_matches_a_numpy_reference_and_adds_up_over_batches():
  """Seed 0, 1000 examples of 10 classes: equal to the loop over bins; two halves' counts sum to the whole."""
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(1000, 10)) * 3.0
  labels = rng.integers(0, 10, 1000)
  probs = np.asarray(jax.nn.softmax(jnp.asarray(logits, jnp.float32), axis=-1), np.float64)
  counts = jax.jit(calibration.calibration_counts)(logits, labels)
  assert float(calibration.expected_calibration_error(counts)) == pytest.approx(numpy_ece(probs, labels, 15), abs=1e-5)
  halves = [calibration.calibration_counts(logits[s], labels[s]) for s in (slice(0, 400), slice(400, None))]
  summed = jax.tree.map(lambda a, b: a + b, *halves)
  for got, want in zip(summed, counts, strict=True):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5)
  empty = calibration.CalibrationCounts(*(jnp.zeros(15),) * 3)
  assert np.isnan(float(calibration.expected_calibration_error(empty)))


def test_bad_inputs_raise():
  with pytest.raises(ValueError, match="num_bins"):
    calibration.calibration_counts(jnp.zeros((2, 3)), jnp.array([0, 1]), num_bins=0)
  with pytest.raises(ValueError, match=r"logits must be \[N, K\]"):
    calibration.calibration_counts(jnp.zeros((2, 3)), jnp.array([0, 1, 2]))
  with pytest.raises(ValueError, match="integer classes"):
    calibration.calibration_counts(jnp.zeros((2, 3)), jnp.array([0.0, 1.0]))
