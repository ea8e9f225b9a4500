"""What the unified analysis says of one trained model: calibration, robustness, R1-R3, gradient products.

For a finished run (its last intact checkpoint, ``experiments.train.load_model``) on the embedded
data of its config, ``Analyser(graphdef, config, data)(model_state, own=...)`` returns a JSON
dict of

* ``test_accuracy``, ``test_nll``, ``test_ece`` (15 equal-width bins,
  ``msda_jax.train.calibration``) over the test split, and ``train_accuracy``, ``train_nll``
  over the examples the run trained on (their difference is the generalisation gap);
* ``robust_accuracy``: the accuracy of the first ``num_attack`` test images after an l2 PGD
  attack on the softmax loss (``msda_jax.theory.robust_accuracy``, ``pgd_steps`` steps) at
  radius ``eps sqrt(d)`` for each ``eps`` of ``EPSILONS`` (pixels in [0, 1], ``d = H W C``, the
  scaling of Theorem 3's radius);
* ``regularizers``: per mask law of ``laws`` (the general form's swap law of each method with
  the realised label weight, the objective ``mix_batch`` trains), Theorem 1's ``R1``, ``R2``,
  ``R3`` and their standard errors by the scalable estimator
  (``msda_jax.theory.regularizers_sampled``, ``num_samples`` draws per example, softmax loss)
  on the first ``num_regularizer`` training examples, partners drawn from all of them; with the
  unmixed loss ``L_m`` and ``L~ = L_m + R1 + R2 + R3``. The small CNN is piecewise linear, so R3
  is 0 (its estimate is exactly 0);
* ``crossing``: for a model trained with a mask law (``own``), the radius where the l2
  adversarial loss of those training examples reaches that law's ``L~``
  (``msda_jax.theory.crossing_radius``, a bisection on ``[0, CROSSING_HIGH]``): Theorem 3's
  direction, measured. ``low == high == CROSSING_HIGH`` when the attack stays below ``L~``;
* ``gradprod``: Figure 5's partial gradient product ``max_v |d_v f d_{v+p} f|`` (Eq. 12) of the
  true class's logit, per test image normalised to 1 at ``p = 0``, averaged over the first
  ``num_gradprod`` test images, as a function of the rounded pixel distance ``|p|``
  (``msda_jax.theory.model_partial_grad_prod`` and ``distance_profile``).

Every measurement is one jitted program that takes the model's state as an argument, so the
models of one architecture share its compilation. ``law_profiles`` gives each law's ``a_jk`` as a
function of distance (exact general-form coefficients, ``method_coefficients``) to plot beside
the gradient products, as Figure 4 beside Figure 5.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from experiments import input_pipeline
from msda_jax import theory
from msda_jax.data.transforms import normalize
from msda_jax.masks import MixMethod
from msda_jax.train import calibration

# l2 radius / sqrt(d) of the attacks (pixels in [0, 1]); 0.01 x 16 = 0.16 on 16 x 16 images.
EPSILONS = (0.005, 0.01, 0.02)
# The bisection's upper end for the crossing radius (pixels in [0, 1]).
CROSSING_HIGH = 4.0


class AnalysisData(NamedTuple):
  """The arrays a model is measured on, pixels float32 in [0, 1], ``[N, H, W, C]``.

  Attributes:
    test_images, test_labels: the whole test split.
    train_images, train_labels: the examples the run trained on.
  """

  test_images: np.ndarray
  test_labels: np.ndarray
  train_images: np.ndarray
  train_labels: np.ndarray


def analysis_data(config: ml_collections.ConfigDict) -> AnalysisData:
  """The test split and the training subset of ``config`` (embedded dataset, images at ``image_size``)."""
  if config.dataset != "mnist_subset":
    raise ValueError(f"dataset must be 'mnist_subset' (the embedded data) for the analysis; got {config.dataset!r}.")
  train_images, train_labels = input_pipeline.embedded_split(True, config.image_size)
  test_images, test_labels = input_pipeline.embedded_split(False, config.image_size)
  keep = input_pipeline.subset_indices(len(train_labels), config.get("train_examples", -1))
  scale = lambda images: np.asarray(images, np.float32) / 255.0
  return AnalysisData(scale(test_images), np.asarray(test_labels), scale(train_images[keep]), train_labels[keep])


def _one_example(graphdef: nnx.GraphDef, state: nnx.State, dataset: str) -> Callable[[jax.Array], jax.Array]:
  """The model in eval mode as a function of one image ``[H, W, C]`` in [0, 1] to logits ``[K]``."""
  model = nnx.merge(graphdef, state)
  model.eval()
  return lambda image: model(normalize(255.0 * image[None], dataset=dataset))[0]


def _batch_logits(graphdef: nnx.GraphDef, state: nnx.State, images: jax.Array, dataset: str) -> jax.Array:
  model = nnx.merge(graphdef, state)
  model.eval()
  return model(normalize(255.0 * images, dataset=dataset))


def law_profiles(laws: Mapping[str, MixMethod], *, shape: tuple[int, int]) -> dict[str, dict[str, list[float]]]:
  """Each law's exact general-form ``a_jk`` (realised weights) as a mean over offsets of one rounded distance."""
  profiles = {}
  for name, method in laws.items():
    a = theory.method_coefficients(method, shape=shape).second
    distance, value = theory.distance_profile(theory.matrix_translation_map(a, shape=shape))
    profiles[name] = {"distance": distance.tolist(), "value": value.tolist()}
  return profiles


class Analyser:
  """The measurements of the module docstring for models of one ``graphdef`` on ``data``.

  Args:
    graphdef: the models' static graph.
    config: the runs' config (``dataset``, ``num_classes``).
    data: from ``analysis_data``.
    laws: name -> mask-only method whose swap law the regularisers use.
    num_attack: test images attacked.
    num_regularizer: training examples of the regularisers and the crossing radius.
    num_gradprod: test images of the gradient products.
    num_samples: draws per example of the regulariser estimator (>= 2).
    pgd_steps: ascent steps of every attack.
    crossing_iterations: halvings of the crossing radius's bisection.
    seed: the estimator's key.
  """

  def __init__(
    self,
    graphdef: nnx.GraphDef,
    config: ml_collections.ConfigDict,
    data: AnalysisData,
    *,
    laws: Mapping[str, MixMethod],
    num_attack: int = 500,
    num_regularizer: int = 128,
    num_gradprod: int = 256,
    num_samples: int = 8,
    pgd_steps: int = 10,
    crossing_iterations: int = 10,
    seed: int = 0,
  ):
    self.data = data
    self.laws = dict(laws)
    self.seed = seed
    dataset, num_classes = config.dataset, config.num_classes
    shape = tuple(data.test_images.shape[1:3])
    self.dimension = int(np.prod(data.test_images.shape[1:]))
    model = lambda state: _one_example(graphdef, state, dataset)
    logits = lambda state, images: _batch_logits(graphdef, state, images, dataset)
    self._logits = jax.jit(logits)

    attack_x = jnp.asarray(data.test_images[:num_attack])
    attack_y = jnp.asarray(data.test_labels[:num_attack])
    self._robust = jax.jit(
      lambda state, radius: theory.robust_accuracy(model(state), attack_x, attack_y, radius=radius, num_steps=pgd_steps)
    )
    reg_x = jnp.asarray(data.train_images[:num_regularizer])
    reg_y = jax.nn.one_hot(data.train_labels[:num_regularizer], num_classes)
    partners = jnp.asarray(data.train_images)
    self._empirical = jax.jit(lambda state: theory.empirical_loss(model(state), reg_x, reg_y, loss="softmax"))

    def regularizers(law: theory.Law) -> Callable[[nnx.State, jax.Array], theory.Regularizers]:
      return jax.jit(
        lambda state, key: theory.regularizers_sampled(
          key, model(state), reg_x, reg_y, law, data=partners, loss="softmax", num_samples=num_samples
        )._replace(per_example=None)
      )

    self._regularizers = {name: regularizers(theory.swap_law(method, shape=shape)) for name, method in laws.items()}
    self._crossing = jax.jit(
      lambda state, target: theory.crossing_radius(
        model(state),
        reg_x,
        reg_y,
        target,
        high=CROSSING_HIGH,
        num_iterations=crossing_iterations,
        num_steps=pgd_steps,
        loss="softmax",
      )
    )
    grad_x = jnp.asarray(data.test_images[:num_gradprod])
    grad_y = jnp.asarray(data.test_labels[:num_gradprod])
    self._gradprod = jax.jit(
      lambda state: jnp.mean(
        theory.model_partial_grad_prod(model(state), grad_x, grad_y, batch_reduce="none", normalize=True), axis=0
      )
    )

  def logits(self, state: nnx.State, images: np.ndarray, chunk: int = 500) -> np.ndarray:
    """``[N, K]`` logits of ``images`` ``[N, H, W, C]`` in chunks of ``chunk`` (the last one padded)."""
    out = []
    for start in range(0, len(images), chunk):
      part = images[start : start + chunk]
      padded = np.concatenate([part, np.zeros((chunk - len(part), *part.shape[1:]), part.dtype)])
      out.append(np.asarray(self._logits(state, padded))[: len(part)])
    return np.concatenate(out)

  def fit(self, state: nnx.State, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    logits = self.logits(state, images)
    counts = calibration.calibration_counts(logits, labels)
    return {
      "accuracy": float(np.mean(np.argmax(logits, -1) == labels)),
      "nll": float(calibration.negative_log_likelihood(logits, labels)),
      "ece": float(calibration.expected_calibration_error(counts)),
    }

  def __call__(self, state: nnx.State, *, own: str | None = None) -> dict[str, Any]:
    """The measurements of one model; ``own`` names its training law in ``laws`` (``None``: no crossing)."""
    test = self.fit(state, self.data.test_images, self.data.test_labels)
    train = self.fit(state, self.data.train_images, self.data.train_labels)
    result: dict[str, Any] = {
      "test_accuracy": test["accuracy"],
      "test_nll": test["nll"],
      "test_ece": test["ece"],
      "train_accuracy": train["accuracy"],
      "train_nll": train["nll"],
    }
    radii = {f"{eps:g}": eps * math.sqrt(self.dimension) for eps in EPSILONS}
    result["radius"] = radii
    result["robust_accuracy"] = {name: float(self._robust(state, radius)) for name, radius in radii.items()}
    empirical = float(self._empirical(state))
    regularizers = {}
    for index, (name, estimate) in enumerate(self._regularizers.items()):
      value = estimate(state, jax.random.fold_in(jax.random.key(self.seed), index))
      terms = {
        field: float(getattr(value, field)) for field in ("r1", "r2", "r3", "r1_stderr", "r2_stderr", "r3_stderr")
      }
      terms["L_m"] = empirical
      terms["L_tilde"] = empirical + terms["r1"] + terms["r2"] + terms["r3"]
      regularizers[name] = terms
    result["regularizers"] = regularizers
    result["crossing"] = None
    if own is not None:
      crossing = self._crossing(state, regularizers[own]["L_tilde"])
      result["crossing"] = {
        "law": own,
        "low": float(crossing.low),
        "high": float(crossing.high),
        "bracketed": bool(crossing.bracketed),
      }
    distance, value = theory.distance_profile(np.asarray(self._gradprod(state)))
    result["gradprod"] = {"distance": distance.tolist(), "value": value.tolist()}
    return result
