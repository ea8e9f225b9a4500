"""The main job's measurements (``experiments.analysis``) on a linear model worked out by hand, and their helpers."""

import io
import itertools
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

import msda_jax
from experiments import analysis, input_pipeline
from msda_jax.train.progress import JobProgress

MEAN, STD = 0.1307, 0.3081  # the embedded digits' normalisation (pixels in [0, 1])


class Linear(nnx.Module):
  """``logits = [s, -s]``, ``s = w . normalize(x)``: class 0 iff ``w . (x - MEAN) > 0``."""

  def __init__(self, w: np.ndarray):
    self.w = nnx.Param(jnp.asarray(w, jnp.float32))

  def __call__(self, x: jax.Array) -> jax.Array:
    s = x.reshape(x.shape[0], -1) @ self.w[...]
    return jnp.stack([s, -s], axis=-1)


def _setup(seed=0, n=40, side=4):
  rng = np.random.default_rng(seed)
  w = rng.normal(size=side * side)
  images = rng.uniform(0.0, 1.0, (n, side, side, 1)).astype(np.float32)
  labels = rng.integers(0, 2, n).astype(np.int32)
  data = analysis.AnalysisData(images, labels, images[: n // 2], labels[: n // 2])
  config = ml_collections.ConfigDict({"dataset": "mnist_subset", "num_classes": 2})
  graphdef, state = nnx.split(Linear(w))
  return w, data, config, graphdef, state


def test_robust_accuracy_and_gradient_products_of_a_linear_model_match_the_hand_computation():
  w, data, config, graphdef, state = _setup()
  analyser = analysis.Analyser(
    graphdef, config, data, laws={"mixup": msda_jax.Mixup()}, num_attack=40, num_regularizer=8, num_gradprod=40
  )
  result = analyser(state, own="mixup")
  x = data.test_images.reshape(len(data.test_images), -1).astype(np.float64)
  # signed distance to the decision boundary w . (x - MEAN) = 0, positive on the labelled side
  margin = (x - MEAN) @ w / np.linalg.norm(w) * np.where(data.test_labels == 0, 1.0, -1.0)
  assert result["test_accuracy"] == pytest.approx(np.mean(margin > 0))
  for eps, radius in result["radius"].items():
    assert radius == pytest.approx(float(eps) * 4.0)  # sqrt(d) = 4 for 4 x 4 x 1
    # a linear model's PGD reaches the boundary along w: robust iff the margin exceeds the radius
    assert result["robust_accuracy"][eps] == pytest.approx(np.mean(margin > radius)), eps
  # Figure 5's product for a constant gradient w / STD: max_v |w_v w_(v+p)| / max_v w_v^2, by distance
  grid = np.abs(w.reshape(4, 4))
  products = {}
  for p1 in range(-3, 4):
    for p2 in range(-3, 4):
      values = [
        grid[i, j] * grid[i + p1, j + p2] for i in range(4) for j in range(4) if 0 <= i + p1 < 4 and 0 <= j + p2 < 4
      ]
      products.setdefault(round(math.hypot(p1, p2)), []).append(max(values) / np.max(grid**2))
  expected = [np.mean(products[r]) for r in sorted(products)]
  assert result["gradprod"]["distance"] == sorted(products)
  np.testing.assert_allclose(result["gradprod"]["value"], expected, rtol=1e-5)
  # L~ adds the regularisers to the unmixed loss; R3 of a linear model is 0
  terms = result["regularizers"]["mixup"]
  assert terms["r3"] == 0.0 and terms["L_tilde"] == pytest.approx(terms["L_m"] + terms["r1"] + terms["r2"])
  assert result["crossing"]["law"] == "mixup" and 0.0 <= result["crossing"]["low"] <= analysis.CROSSING_HIGH


def test_mixup_law_profile_is_one_sixth_at_every_distance():
  # swap law, realised weights: (1 - M')^2 is (1 - lam)^2 w.p. lam and lam^2 w.p. 1 - lam, so
  # E = int_0^1 lam (1 - lam)^2 + (1 - lam) lam^2 dlam = int lam (1 - lam) = 1/6
  profiles = analysis.law_profiles({"mixup": msda_jax.Mixup(), "cutmix": msda_jax.CutMix()}, shape=(4, 4))
  np.testing.assert_allclose(profiles["mixup"]["value"], 1.0 / 6.0, rtol=1e-5)
  assert profiles["mixup"]["distance"] == [0, 1, 2, 3, 4]
  cutmix = profiles["cutmix"]["value"]
  assert all(a > b for a, b in itertools.pairwise(cutmix[:4]))  # a box weighs near pixels more than far ones
  assert cutmix[0] > 1.5 * cutmix[-1]


def test_training_subset_is_fixed_and_nested():
  small, large = input_pipeline.subset_indices(4000, 500), input_pipeline.subset_indices(4000, 1000)
  assert len(small) == 500 and len(np.unique(small)) == 500 and set(small) <= set(large)
  assert input_pipeline.subset_indices(4000, 500).tolist() == small.tolist()
  assert input_pipeline.subset_indices(7, -1).tolist() == list(range(7))
  with pytest.raises(ValueError, match="train_examples must be <= the 7"):
    input_pipeline.subset_indices(7, 8)


def test_job_progress_draws_a_bar_in_place_with_the_time_left():
  stream = io.StringIO()
  job = JobProgress(4, enabled=True, stream=stream, width=8)
  job.advance("a", images=100, note="x")
  job.advance("b", images=100, note="y")
  job.close()
  text = stream.getvalue()
  assert text.startswith("\r[##      ] 1/4 runs") and "\r[####    ] 2/4 runs" in text and text.endswith("\n")
  assert "ETA 0:00:00" in text and "b: y" in text
