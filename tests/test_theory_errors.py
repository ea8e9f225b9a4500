"""The theory's entry points check labels and the model's output before any work.

Every function that takes a model ``f``, examples ``x``, labels ``y`` and a ``loss``
(``regularizers_exact``, ``regularizers_sampled``, ``msda_loss``, ``empirical_loss``,
``approximate_msda_loss``) and the per-example losses (``loss_value``, ``residual``) share one
check: shapes and dtypes always (also at trace time under ``jax.jit``), label values whenever
they are concrete.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import msda_jax
from msda_jax import theory

GRID = (3,)
CHANNELS = 2
M, K = 4, 3
KEY = jax.random.key(0)
NAN = float("nan")

ATOMS = theory.mixup_atoms(1.0, shape=GRID, num_nodes=4)
COEFFICIENTS = theory.swap_coefficients(ATOMS)
LAW = theory.swap_law(msda_jax.Mixup(), 1.0, shape=GRID)
ZERO = jnp.zeros(())
REGULARIZERS = theory.Regularizers(ZERO, ZERO, ZERO, ZERO, ZERO, ZERO, jnp.zeros((M, 3)))
ENTRIES = ("regularizers_exact", "regularizers_sampled", "msda_loss", "empirical_loss", "approximate_msda_loss")

_RNG = np.random.default_rng(0)
_W = jnp.asarray(_RNG.normal(size=(GRID[0] * CHANNELS, K)), jnp.float32)
X = jnp.asarray(_RNG.normal(size=(M, *GRID, CHANNELS)), jnp.float32)
CLASSES = np.array([0, 2, 1, 2])
ONE_HOT = np.eye(K, dtype=np.float32)[CLASSES]
BINARY = np.array([1.0, 0.0, 0.0, 1.0], np.float32)


def logit(x):
  """A binary model ``[3, 2] -> []``."""
  return jnp.tanh(x.reshape(-1) @ _W[:, 0]) + 0.1 * jnp.sum(x**2)


def logits(x):
  """A softmax model ``[3, 2] -> [K]``."""
  return jnp.tanh(x.reshape(-1) @ _W) + 0.1 * jnp.sum(x**2)


def call(entry, f, x, y, loss):
  """One public theory entry point on ``(f, x, y)``; returns its values as numpy arrays."""
  if entry == "regularizers_exact":
    out = theory.regularizers_exact(f, x, y, COEFFICIENTS, loss=loss)
  elif entry == "regularizers_sampled":
    out = theory.regularizers_sampled(KEY, f, x, y, LAW, loss=loss, num_samples=2)
  elif entry == "msda_loss":
    out = theory.msda_loss(f, x, y, ATOMS, loss=loss)
  elif entry == "empirical_loss":
    out = theory.empirical_loss(f, x, y, loss=loss)
  else:
    out = theory.approximate_msda_loss(f, x, y, REGULARIZERS, loss=loss)
  return [np.asarray(v) for v in jax.tree.leaves(out)]


@pytest.fixture
def no_work(monkeypatch):
  """Makes the theory's work (vmap over examples, autodiff, draws, the atom loop) fail loudly.

  A check that ran after work had started would surface as this AssertionError instead of the
  expected ValueError.
  """

  def started(*args, **kwargs):
    raise AssertionError("work started before the inputs were validated")

  for module, name in ((jax, "vmap"), (jax, "jacfwd"), (jax, "hessian"), (jax.random, "split"), (jax.lax, "map")):
    monkeypatch.setattr(module, name, started)


@pytest.mark.parametrize("entry", ENTRIES)
def test_no_work_fixture_has_power(no_work, entry):
  """Valid inputs reach the work, so the fixture would expose a late check."""
  with pytest.raises(AssertionError, match="work started"):
    call(entry, logits, X, ONE_HOT, "softmax")


# -- softmax: labels are probability rows [m, K] ---------------------------------------------------
@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8])
@pytest.mark.parametrize("entry", ENTRIES)
def test_softmax_integer_class_labels_raise(no_work, entry, dtype):
  with pytest.raises(
    ValueError,
    match=r"^labels y must be probability rows \[m, K\] = \[4, 3\] for loss='softmax'; got integer labels "
    r"of shape \(4,\).*jax\.nn\.one_hot\(y, 3\)",
  ):
    call(entry, logits, X, CLASSES.astype(dtype), "softmax")


@pytest.mark.parametrize("entry", ENTRIES)
def test_softmax_float_class_indices_raise(no_work, entry):
  with pytest.raises(ValueError, match=r"^labels y must be probability rows \[m, K\] = \[4, 3\].*got shape \(4,\)"):
    call(entry, logits, X, CLASSES.astype(np.float32), "softmax")


@pytest.mark.parametrize("entry", ENTRIES)
def test_softmax_label_rows_must_match_the_model_classes(no_work, entry):
  with pytest.raises(ValueError, match=r"^labels y must be probability rows \[m, K\] = \[4, 3\].*got shape \(4, 5\)"):
    call(entry, logits, X, np.eye(5, dtype=np.float32)[CLASSES], "softmax")


@pytest.mark.parametrize(
  ("row", "what"),
  [([0.5, 0.5, 0.5], r"a row summing to 1\.5"), ([1.5, -0.5, 0.0], r"an entry -0\.5"), ([NAN, 0.5, 0.5], "NaN")],
)
@pytest.mark.parametrize("entry", ENTRIES)
def test_softmax_label_rows_must_be_probabilities(no_work, entry, row, what):
  y = ONE_HOT.copy()
  y[2] = row
  with pytest.raises(ValueError, match=rf"^labels y must be probability rows.*got {what}"):
    call(entry, logits, X, y, "softmax")


@pytest.mark.parametrize("entry", ENTRIES)
def test_softmax_integer_one_hot_rows_equal_float_rows(entry):
  want = call(entry, logits, X, ONE_HOT, "softmax")
  got = call(entry, logits, X, ONE_HOT.astype(np.int32), "softmax")
  for g, w in zip(got, want, strict=True):
    np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("entry", ENTRIES)
def test_softmax_loss_needs_a_logit_vector(no_work, entry):
  with pytest.raises(
    ValueError,
    match=r"^the model must return a logit vector \[K\] per example for loss='softmax'; got shape \(\) "
    r"for an example of shape \(3, 2\)",
  ):
    call(entry, logit, X, ONE_HOT, "softmax")


@pytest.mark.parametrize("entry", ENTRIES)
def test_model_must_return_one_array(no_work, entry):
  with pytest.raises(TypeError, match=r"^the model must return one array of logits per example.*got tuple"):
    call(entry, lambda x: (logits(x), logit(x)), X, ONE_HOT, "softmax")


# -- binary: labels are target probabilities [m] in [0, 1] ------------------------------------------
@pytest.mark.parametrize("bad", [3.0, -0.5, 1.0 + 1e-3, NAN])
@pytest.mark.parametrize("entry", ENTRIES)
def test_binary_labels_outside_unit_interval_raise(no_work, entry, bad):
  y = BINARY.copy()
  y[1] = bad
  with pytest.raises(ValueError, match=r"^labels y must lie in \[0, 1\] for loss='binary'.*; got (nan|-?[0-9.]+)"):
    call(entry, logit, X, y, "binary")


@pytest.mark.parametrize("entry", ENTRIES)
def test_binary_integer_label_3_raises(no_work, entry):
  with pytest.raises(ValueError, match=r"^labels y must lie in \[0, 1\] for loss='binary'.*; got 3\b"):
    call(entry, logit, X, np.array([1, 3, 0, 1]), "binary")


@pytest.mark.parametrize("entry", ENTRIES)
def test_binary_labels_must_be_one_per_example(no_work, entry):
  with pytest.raises(ValueError, match=r"^labels y must be \[m\] = \[4\] \(or \[m, 1\]\) for loss='binary'.*\(4, 3\)"):
    call(entry, logit, X, ONE_HOT, "binary")


@pytest.mark.parametrize("entry", ENTRIES)
def test_binary_loss_needs_one_logit(no_work, entry):
  with pytest.raises(
    ValueError,
    match=r"^the model must return one logit per example for loss='binary': shape \[\] \(or \[1\]\); "
    r"got shape \(3,\) for an example of shape \(3, 2\)",
  ):
    call(entry, logits, X, BINARY, "binary")


@pytest.mark.parametrize("entry", ENTRIES)
def test_binary_model_with_trailing_singleton_equals_scalar_model(entry):
  want = call(entry, logit, X, BINARY, "binary")
  got = call(entry, lambda x: logit(x)[None], X, BINARY, "binary")
  for g, w in zip(got, want, strict=True):
    np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("entry", ENTRIES)
def test_binary_labels_with_trailing_singleton_and_integers_are_accepted(entry):
  want = call(entry, logit, X, BINARY, "binary")
  for y in (BINARY[:, None], BINARY.astype(np.int32), BINARY.astype(bool)):
    got = call(entry, logit, X, y, "binary")
    for g, w in zip(got, want, strict=True):
      np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)


# -- batches -------------------------------------------------------------------------------------
@pytest.mark.parametrize("entry", ENTRIES)
def test_labels_need_one_row_per_example(no_work, entry):
  with pytest.raises(ValueError, match=r"^labels y must have one row per example: x has m = 4 examples.*\(3,\)"):
    call(entry, logit, X, BINARY[:3], "binary")


@pytest.mark.parametrize("entry", ENTRIES)
def test_examples_must_be_a_batch(no_work, entry):
  with pytest.raises(
    ValueError, match=r"^x must be a non-empty batch of examples \[m, \*S, C\]; got shape \(0, 3, 2\)"
  ):
    call(entry, logit, X[:0], BINARY[:0], "binary")


# -- under jax.jit: shapes and dtypes at trace time, values only when concrete -----------------------
@pytest.mark.parametrize("entry", ENTRIES)
def test_traced_labels_are_checked_for_shape_and_dtype(entry):
  with pytest.raises(ValueError, match=r"^labels y must be probability rows .*got integer labels"):
    jax.jit(lambda y: call_traced(entry, logits, X, y, "softmax"))(jnp.asarray(CLASSES))
  with pytest.raises(ValueError, match=r"^the model must return one logit per example"):
    jax.jit(lambda y: call_traced(entry, logits, X, y, "binary"))(jnp.asarray(BINARY))


def call_traced(entry, f, x, y, loss):
  """``call`` without the conversion to numpy, for use inside ``jax.jit``."""
  if entry == "regularizers_exact":
    return theory.regularizers_exact(f, x, y, COEFFICIENTS, loss=loss)
  if entry == "regularizers_sampled":
    return theory.regularizers_sampled(KEY, f, x, y, LAW, loss=loss, num_samples=2)
  if entry == "msda_loss":
    return theory.msda_loss(f, x, y, ATOMS, loss=loss)
  if entry == "empirical_loss":
    return theory.empirical_loss(f, x, y, loss=loss)
  return theory.approximate_msda_loss(f, x, y, REGULARIZERS, loss=loss)


def test_traced_label_values_are_not_checked():
  """A value check needs concrete labels: under ``jax.jit`` a label of 3.0 is not caught."""
  y = BINARY.copy()
  y[1] = 3.0
  with pytest.raises(ValueError, match="labels y must lie in"):
    theory.empirical_loss(logit, X, y)
  assert np.isfinite(float(jax.jit(lambda y: theory.empirical_loss(logit, X, y))(y)))


# -- per-example losses ------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [theory.loss_value, theory.residual])
def test_per_example_losses_check_labels(fn):
  with pytest.raises(
    ValueError, match=r"^labels y must be a probability row \[K\] = \[3\] for loss='softmax'.*integer"
  ):
    fn(jnp.zeros(K), 2, "softmax")
  with pytest.raises(ValueError, match=r"^labels y must be a probability row \[K\] = \[3\].*got shape \(4,\)"):
    fn(jnp.zeros(K), jnp.zeros(4), "softmax")
  with pytest.raises(ValueError, match=r"^labels y must lie in \[0, 1\] for loss='binary'.*; got 3\.0"):
    fn(0.0, 3.0, "binary")
  with pytest.raises(ValueError, match=r"^labels y must be a probability row.*a row summing to 2"):
    fn(jnp.zeros(K), jnp.array([1.0, 1.0, 0.0]), "softmax")
