"""Theorem 3 measured: the approximate MSDA loss against an l2 attack, per method, on real digits.

A two-layer ReLU network (64 -> 32 -> 1, so ``nabla^2 f = 0`` and R3 = 0) is trained by plain
gradient steps (optax Adam, logistic loss) to tell two digits apart on scikit-learn's embedded
8 x 8 digits (3 vs 8 by default, pixels in [0, 1]). For every method, on the same ``m``
training examples, the script computes

* ``L~ = L_m + R1 + R2`` (Theorem 1, general form, the method's exact coefficients with the
  realised label weight: ``method_coefficients``),
* the radius the proof's reading implies (``implied_radius``; NaN when some example has a
  negative R1 term, with how many do),
* the radius where the second-order attack reaches ``L~`` (``quadratic_crossing_radius``),
* the radius where the measured attack (l2 PGD, 20 steps) reaches ``L~`` (``crossing_radius``,
  a bisection) and the adversarial loss on a grid of radii (``theorem3_check``),

and plots the adversarial loss against the radius with each method's ``L~``. The inequality
``L~ >= adversarial loss`` holds up to the measured crossing.

    python -m theory.theorem3 --out outputs/theorem3.png
"""

from __future__ import annotations

import math
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import msda_jax
from msda_jax import theory
from msda_jax.theory import regularizers as reg
from theory._output import figure_parser, save_figure, save_numbers

METHODS = {
  "Mixup": msda_jax.Mixup(),
  "CutMix": msda_jax.CutMix(),
  "Stochastic": msda_jax.StochasticMixupCutMix(),
  "HMix": msda_jax.HMix(),
  "GMix": msda_jax.GMix(),
}


def load(digits: tuple[int, int], m: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Two classes of the digits as ``[n, 8, 8, 1]`` in [0, 1], all to train; the first ``m`` are analysed."""
  from sklearn.datasets import load_digits

  data = load_digits()
  keep = np.isin(data.target, digits)
  x = (data.images[keep] / 16.0)[..., None].astype(np.float64)
  y = (data.target[keep] == digits[1]).astype(np.float64)
  order = np.random.default_rng(seed).permutation(len(x))
  return x[order], y[order], x[order][:m], y[order][:m]


def train(x: np.ndarray, y: np.ndarray, steps: int, seed: int):
  """A ReLU MLP trained on the logistic loss; returns the model of one example ``[8, 8, 1] -> []``."""
  k1, k2 = jax.random.split(jax.random.key(seed))
  params = {
    "w1": jax.random.normal(k1, (64, 32)) / 8.0,
    "b1": jnp.zeros(32),
    "w2": jax.random.normal(k2, (32,)) / math.sqrt(32),
    "b2": jnp.zeros(()),
  }

  def logit(p, z):
    return jax.nn.relu(z.reshape(-1) @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

  def loss(p):
    z = jax.vmap(lambda e: logit(p, e))(x)
    return jnp.mean(jax.nn.softplus(z) - y * z)

  optimizer = optax.adam(1e-2)
  state = optimizer.init(params)

  @jax.jit
  def step(p, s):
    grads = jax.grad(loss)(p)
    updates, s = optimizer.update(grads, s)
    return optax.apply_updates(p, updates), s

  for _ in range(steps):
    params, state = step(params, state)
  return lambda z: logit(params, z), float(loss(params))


def measure(f, x, y, radii: np.ndarray, high: float, names: list[str]) -> dict:
  results = {}
  for name in names:
    method = METHODS[name]
    coefficients = theory.method_coefficients(method, shape=x.shape[1:3])
    regs = reg.regularizers_exact(f, x, y, coefficients)
    approx = float(reg.approximate_msda_loss(f, x, y, regs))
    implied = theory.implied_radius(f, x, y, coefficients)
    crossing = theory.crossing_radius(f, x, y, regs, high=high, num_iterations=16)
    check = theory.theorem3_check(f, x, y, regs, radii=radii)
    results[name] = {
      "L_m": float(reg.empirical_loss(f, x, y)),
      "R1": float(regs.r1),
      "R2": float(regs.r2),
      "R3": float(regs.r3),
      "approximate": approx,
      "implied_radius": float(implied.radius),
      "implied_eps": float(implied.eps),
      "unsatisfied_examples": int(np.sum(~np.asarray(implied.satisfied))),
      "quadratic_crossing": float(theory.quadratic_crossing_radius(f, x, y, regs)),
      "measured_crossing": [float(crossing.low), float(crossing.high)],
      "bracketed": bool(crossing.bracketed),
      "holds_on_grid_up_to": float(check.largest_radius),
      "adversarial_on_grid": np.asarray(check.adversarial, np.float64).round(6).tolist(),
    }
  return results


def render(results: dict, radii: np.ndarray, out: pathlib.Path, title: str) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(7, 4.5))
  first = next(iter(results.values()))
  ax.plot(radii, first["adversarial_on_grid"], "k-", lw=2, label="adversarial loss (l2 PGD)")
  for i, (name, r) in enumerate(results.items()):
    ax.axhline(r["approximate"], color=f"C{i}", ls="--", lw=1, label=f"L~ {name}")
    ax.axvline(r["measured_crossing"][0], color=f"C{i}", ls=":", lw=1)
  ax.set_xlabel("attack radius rho (l2, whole 8 x 8 image)")
  ax.set_ylabel("loss (log scale)")
  ax.set_yscale("log")
  ax.set_title(title, fontsize=9)
  ax.legend(fontsize=7)
  fig.tight_layout()
  save_figure(fig, out)


def main(argv: list[str] | None = None) -> int:
  parser = figure_parser(__doc__, "theorem3")
  parser.add_argument("--digits", type=int, nargs=2, default=(3, 8))
  parser.add_argument("--examples", type=int, default=64, help="examples analysed (m)")
  parser.add_argument("--steps", type=int, default=50, help="training steps")
  parser.add_argument("--max-radius", type=float, default=1.0)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
  args = parser.parse_args(argv)
  start = time.perf_counter()
  with jax.enable_x64(True):
    x_train, y_train, x, y = load(tuple(args.digits), args.examples, args.seed)
    f, train_loss = train(jnp.asarray(x_train), jnp.asarray(y_train), args.steps, args.seed)
    radii = np.linspace(0.0, args.max_radius, 16)
    results = measure(f, jnp.asarray(x), jnp.asarray(y), radii, args.max_radius, args.methods)
  title = f"Theorem 3 on digits {args.digits[0]} vs {args.digits[1]}, ReLU MLP, m = {args.examples}"
  render(results, radii, args.out, title)
  save_numbers(
    args.out,
    {"digits": list(args.digits), "m": args.examples, "train_loss": train_loss, "radii": radii.tolist(), **results},
  )
  print(f"{title}; training loss {train_loss:.4f}")
  print("method | L_m | L~ | implied radius (unsatisfied) | quadratic crossing | measured crossing")
  for name, r in results.items():
    print(
      f"{name} | {r['L_m']:.4f} | {r['approximate']:.4f} | {r['implied_radius']:.3g} ({r['unsatisfied_examples']}) | "
      f"{r['quadratic_crossing']:.3f} | {r['measured_crossing'][0]:.3f}"
    )
  print(f"Written to {args.out.resolve()} in {time.perf_counter() - start:.0f} s.")
  return 0


if __name__ == "__main__":
  sys.exit(main())
