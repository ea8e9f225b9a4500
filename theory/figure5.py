"""Figure 5: partial-gradient-product maps (Eq. 12) of models trained without mixing, with Mixup, with CutMix.

A small CNN is trained briefly on the embedded MNIST subset (4,000 training images, no
download) with each method; then ``PartialGradProd(x, p) = max_v |d_v f(x) d_{v+p} f(x)|``
(Eq. 12; one gradient per pixel: the l2 norm over channels, of the predicted class's logit) is
computed on test images, reduced over the batch by the maximum and normalised by its value at
``p = 0``. The theory predicts that CutMix, whose ``a_jk`` is large for close pixels, damps the
products of close-by gradients more than of distant ones. Writes a PNG and a JSON (the maps,
test accuracies and the mean normalised value near and far from ``p = 0``).

    python -m theory.figure5 --out outputs/figure5.png
"""

from __future__ import annotations

import functools
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import msda_jax
from msda_jax.data import load_mnist_subset
from msda_jax.theory import model_partial_grad_prod
from msda_jax.train import init_train_state, make_eval_step, make_optimizer, make_train_step
from msda_jax.train.models import SmallCNN
from theory._output import figure_parser, save_figure, save_numbers

METHODS = {"Vanilla": "none", "Mixup": "mixup", "CutMix": "cutmix"}


def train(spec: str, train_set, *, epochs: int, batch: int, seed: int):
  """Trains a small CNN with ``spec``; returns ``(graphdef, model_state)``."""
  steps_per_epoch = len(train_set.labels) // batch
  total = epochs * steps_per_epoch
  tx = make_optimizer(learning_rate=0.05, total_steps=total)
  model = SmallCNN(10, in_channels=1, rngs=nnx.Rngs(seed))
  graphdef, state, opt = init_train_state(model, tx)
  method = msda_jax.from_string(spec)
  mixer = None if method is None else msda_jax.Mixer(method, num_classes=10, mode="example")
  step = jax.jit(make_train_step(graphdef=graphdef, tx=tx, mixer=mixer, weight_decay=5e-4), donate_argnums=(0, 1))
  rng = np.random.default_rng(seed)
  key = jax.random.key(seed)
  for _ in range(epochs):
    order = rng.permutation(len(train_set.labels))
    for i in range(steps_per_epoch):
      index = order[i * batch : (i + 1) * batch]
      batch_arrays = {"image": jnp.asarray(train_set.images[index]), "label": jnp.asarray(train_set.labels[index])}
      state, opt, _ = step(state, opt, batch_arrays, key)
  return graphdef, state


@functools.partial(jax.jit, static_argnums=0)
def evaluate(graphdef: nnx.GraphDef, state: nnx.State, batch: dict[str, jax.Array]) -> dict[str, jax.Array]:
  """The eval step's metrics of the model ``(graphdef, state)``: one program for the three models."""
  return make_eval_step(graphdef=graphdef)(state, batch)


@functools.partial(jax.jit, static_argnums=0)
def gradient_map(graphdef: nnx.GraphDef, state: nnx.State, images: jax.Array) -> jax.Array:
  """Eq. (12)'s normalised map of the model ``(graphdef, state)`` in eval mode on ``images``.

  The weights are an argument, not constants of the program, so the three models share one
  compiled program.
  """
  model = nnx.merge(graphdef, state)
  model.eval()
  return model_partial_grad_prod(lambda x: model(x[None])[0], images, normalize=True)


def near_far(mapping: np.ndarray, near: int, far: int) -> tuple[float, float]:
  h, w = (mapping.shape[0] + 1) // 2, (mapping.shape[1] + 1) // 2
  py, px = np.meshgrid(np.arange(-(h - 1), h), np.arange(-(w - 1), w), indexing="ij")
  radius = np.sqrt(py**2 + px**2)
  return float(mapping[(radius > 0) & (radius <= near)].mean()), float(mapping[radius >= far].mean())


def main(argv: list[str] | None = None) -> int:
  parser = figure_parser(__doc__, "figure5")
  parser.add_argument("--epochs", type=int, default=3)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--num-test", type=int, default=256)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--train-size", type=int, default=0, help="a random subset of this size (0: all 4,000)")
  args = parser.parse_args(argv)
  train_set, test_set = load_mnist_subset()
  if args.train_size:
    keep = np.random.default_rng(args.seed).permutation(len(train_set.labels))[: args.train_size]
    train_set = type(train_set)(train_set.images[keep], train_set.labels[keep])
  images = jnp.asarray(test_set.images[: args.num_test])
  results = {}
  for title, spec in METHODS.items():
    graphdef, state = train(spec, train_set, epochs=args.epochs, batch=args.batch, seed=args.seed)
    metrics = evaluate(graphdef, state, {"image": jnp.asarray(test_set.images), "label": jnp.asarray(test_set.labels)})
    mapping = np.asarray(gradient_map(graphdef, state, images))
    near, far = near_far(mapping, 2, 10)
    results[title] = {
      "test_accuracy": float(metrics["correct"] / metrics["count"]),
      "near_mean": near,
      "far_mean": far,
      "map": mapping.tolist(),
    }
  render(results, args.out)
  save_numbers(args.out, results)
  summary = "; ".join(
    f"{k}: acc {v['test_accuracy']:.3f}, mean near (|p|<=2) {v['near_mean']:.3f}, far (|p|>=10) {v['far_mean']:.3f}"
    for k, v in results.items()
  )
  print(f"Figure 5 written to {args.out.resolve()} ({summary})")
  return 0


def render(results: dict, out: pathlib.Path) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 4.0))
  for ax, (title, r) in zip(axes, results.items(), strict=True):
    mapping = np.asarray(r["map"])
    h, w = (mapping.shape[0] + 1) // 2, (mapping.shape[1] + 1) // 2
    image = ax.imshow(
      mapping, extent=(-(w - 1), w - 1, -(h - 1), h - 1), origin="lower", cmap="viridis", vmin=0, vmax=1
    )
    ax.set_title(f"{title} (test acc {r['test_accuracy']:.3f})\nnear {r['near_mean']:.3f}, far {r['far_mean']:.3f}")
    ax.set_xlabel("p_x")
    ax.set_ylabel("p_y")
  fig.colorbar(image, ax=axes, shrink=0.8, label="max_v |d_v f d_(v+p) f| / value at p = 0")
  fig.suptitle("Figure 5 (Eq. 12): partial gradient products, small CNN on the embedded MNIST subset")
  save_figure(fig, out)


if __name__ == "__main__":
  sys.exit(main())
