"""Partial gradient products (Eq. 12) against a brute-force loop and closed-form gradients."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from msda_jax.theory.gradprod import (
  gradprod_offsets,
  model_partial_grad_prod,
  partial_grad_prod,
  pixel_gradients,
)


def brute_force(grads: np.ndarray) -> np.ndarray:
  """``max_v |g_v g_{v+p}|`` over valid ``v`` for every offset, by explicit loops: ``[B, 2H-1, 2W-1]``."""
  b, h, w = grads.shape
  out = np.zeros((b, 2 * h - 1, 2 * w - 1))
  for i in range(b):
    for p1 in range(-(h - 1), h):
      for p2 in range(-(w - 1), w):
        best = -1.0
        for v1 in range(h):
          for v2 in range(w):
            if 0 <= v1 + p1 < h and 0 <= v2 + p2 < w:
              best = max(best, abs(grads[i, v1, v2] * grads[i, v1 + p1, v2 + p2]))
        out[i, p1 + h - 1, p2 + w - 1] = best
  return out


@pytest.fixture
def grads():
  return np.asarray(jax.random.normal(jax.random.key(0), (3, 5, 7)))


def test_matches_brute_force_per_image(grads):
  expected = brute_force(grads)
  got = partial_grad_prod(grads, batch_reduce="none")
  assert got.shape == (3, 9, 13)
  np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_batch_reductions_and_normalisation(grads):
  expected = brute_force(grads)
  np.testing.assert_allclose(partial_grad_prod(grads), expected.max(0), rtol=1e-6)
  np.testing.assert_allclose(partial_grad_prod(grads, batch_reduce="mean"), expected.mean(0), rtol=1e-6)
  reduced = expected.max(0)
  np.testing.assert_allclose(partial_grad_prod(grads, normalize=True), reduced / reduced[4, 6], rtol=1e-6)
  per_image = partial_grad_prod(grads, batch_reduce="none", normalize=True)
  np.testing.assert_allclose(per_image, expected / expected[:, 4:5, 6:7], rtol=1e-6)
  assert float(jnp.max(per_image)) <= 1.0 + 1e-6  # p = 0 bounds every offset


def test_centre_is_max_square_and_map_is_centrally_symmetric(grads):
  out = np.asarray(partial_grad_prod(grads, batch_reduce="none"))
  np.testing.assert_allclose(out[:, 4, 6], np.max(grads**2, axis=(1, 2)), rtol=1e-6)
  np.testing.assert_array_equal(out, out[:, ::-1, ::-1])


def test_single_row_column_and_pixel():
  np.testing.assert_allclose(partial_grad_prod(np.array([[[2.0], [-3.0]]])), [[6.0], [9.0], [6.0]])
  np.testing.assert_allclose(partial_grad_prod(np.array([[[-4.0]]]), normalize=True), [[1.0]])


def test_zero_gradients_normalise_to_zero():
  out = partial_grad_prod(np.zeros((2, 3, 3)), normalize=True)
  assert np.all(np.asarray(out) == 0.0)


def test_linear_model_gradient_closed_form():
  # f(x) = sum(w * x): the gradient is w; "sum" gives w summed over channels, "l2" its norm.
  w = np.asarray(jax.random.normal(jax.random.key(1), (4, 6, 3)))
  images = jax.random.uniform(jax.random.key(2), (2, 4, 6, 3))
  fn = lambda x: jnp.sum(w * x)
  np.testing.assert_allclose(pixel_gradients(fn, images, channel_reduce="sum"), np.stack([w.sum(-1)] * 2), rtol=1e-6)
  l2 = np.sqrt(np.sum(w**2, -1))
  np.testing.assert_allclose(pixel_gradients(fn, images), np.stack([l2] * 2), rtol=1e-6)
  out = model_partial_grad_prod(fn, images, channel_reduce="sum")
  np.testing.assert_allclose(out, brute_force(w.sum(-1)[None])[0], rtol=1e-5)


def test_quadratic_model_gradient_closed_form():
  # f(x) = sum(x^2) / 2: the gradient is x itself.
  images = jax.random.normal(jax.random.key(3), (2, 3, 4, 2))
  g = pixel_gradients(lambda x: 0.5 * jnp.sum(x**2), images, channel_reduce="sum")
  np.testing.assert_allclose(g, np.sum(images, -1), rtol=1e-6)


def test_logit_vector_uses_given_or_predicted_class():
  # Linear logits W x: the gradient of logit k is W[k].
  h, w, c, k = 3, 4, 2, 5
  weights = jax.random.normal(jax.random.key(4), (k, h, w, c))
  fn = lambda x: jnp.einsum("khwc,hwc->k", weights, x)
  images = jax.random.normal(jax.random.key(5), (3, h, w, c))
  labels = jnp.array([0, 4, 2])
  got = pixel_gradients(fn, images, labels, channel_reduce="sum")
  np.testing.assert_allclose(got, np.sum(np.asarray(weights)[np.asarray(labels)], -1), rtol=1e-5)
  predicted = np.argmax(np.asarray(jax.vmap(fn)(images)), -1)
  got = pixel_gradients(fn, images, channel_reduce="sum")
  np.testing.assert_allclose(got, np.sum(np.asarray(weights)[predicted], -1), rtol=1e-5)


def test_jit_matches_eager_at_64_without_retracing():
  # A batch of 16 images of 64 x 64 x 3 through a small nonlinear model: the compiled map is the
  # eager one, normalised (1 at p = 0, every other offset in [0, 1]), and a second call reuses
  # the compiled program (one trace).
  w = jax.random.normal(jax.random.key(6), (64 * 64 * 3, 10)) / 100.0
  fn = lambda x: jnp.tanh(x.reshape(-1) @ w)
  traces = []

  def gradprod(x):
    traces.append(1)
    return model_partial_grad_prod(fn, x, normalize=True)

  run = jax.jit(gradprod)
  images = jax.random.normal(jax.random.key(7), (16, 64, 64, 3))
  out = run(images)
  again = run(images + 0.0)
  assert len(traces) == 1
  np.testing.assert_array_equal(np.asarray(again), np.asarray(out))
  assert out.shape == (127, 127) and float(out[63, 63]) == 1.0
  assert float(jnp.min(out)) >= 0.0 and float(jnp.max(out)) <= 1.0
  eager = model_partial_grad_prod(fn, images, normalize=True)
  np.testing.assert_allclose(out, eager, rtol=1e-5, atol=1e-7)


def test_offsets():
  p1, p2 = gradprod_offsets(shape=(3, 2))
  assert p1.tolist() == [-2, -1, 0, 1, 2] and p2.tolist() == [-1, 0, 1]


def test_errors():
  with pytest.raises(ValueError, match="channel_reduce"):
    pixel_gradients(jnp.sum, jnp.zeros((1, 2, 2, 1)), channel_reduce="max")
  with pytest.raises(ValueError, match="batch_reduce"):
    partial_grad_prod(jnp.zeros((1, 2, 2)), batch_reduce="min")
  with pytest.raises(ValueError, match=r"\[B, H, W\]"):
    partial_grad_prod(jnp.zeros((2, 2)))
  with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
    pixel_gradients(jnp.sum, jnp.zeros((2, 2, 1)))
  with pytest.raises(ValueError, match="labels=None"):
    pixel_gradients(jnp.sum, jnp.zeros((1, 2, 2, 1)), jnp.array([0]))
  with pytest.raises(ValueError, match="labels must be int"):
    pixel_gradients(lambda x: x.reshape(-1), jnp.zeros((2, 2, 2, 1)), jnp.array([0]))
  with pytest.raises(ValueError, match="scalar or a logit vector"):
    pixel_gradients(lambda x: x, jnp.zeros((1, 2, 2, 1)))
  with pytest.raises(TypeError, match="float"):
    pixel_gradients(jnp.sum, jnp.zeros((1, 2, 2, 1), jnp.int32))
