"""The objective trained against Eq. (4) as printed, exact against sampled, per family.

On scikit-learn's digits (0 vs 1, average-pooled to 4 x 4, centred) and a small tanh network,
for every family with exact atoms (Mixup, Bernoulli, CutMix clipped and inside, HMix, GMix,
Stochastic Mixup & CutMix):

* the exact MSDA loss (Eq. 4 over all atoms) with the nominal label weight ``lam`` and with the
  realised weight ``mean(M)`` that ``mix_batch`` trains, and their difference;
* the Monte Carlo estimate of the realised loss from the method's own sampler
  (``sampled_atoms``), its distance from the exact value in standard errors;
* the exact Theorem 1 coefficients (general form) against the swap law's sampled moments: the
  largest entry-wise distance in standard errors.

    python -m benchmarks.theory_objective --draws 20000
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import msda_jax
from msda_jax import theory
from msda_jax.theory import laws

FAMILIES = {
  "Mixup": msda_jax.Mixup(),
  "Bernoulli": msda_jax.Bernoulli(),
  "CutMix": msda_jax.CutMix(),
  "CutMix inside": msda_jax.CutMix(placement="inside"),
  "HMix": msda_jax.HMix(),
  "GMix": msda_jax.GMix(),
  "Stochastic": msda_jax.StochasticMixupCutMix(),
}


def data(m: int, seed: int) -> tuple[jax.Array, jax.Array]:
  from sklearn.datasets import load_digits

  digits = load_digits()
  keep = np.isin(digits.target, (0, 1))
  x = digits.images[keep].reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4)) / 16.0
  x = x[np.random.default_rng(seed).permutation(len(x))[:m]]
  x = x - x.mean(axis=0)
  y = (digits.target[keep] == 1).astype(np.float64)
  y = y[np.random.default_rng(seed).permutation(len(y))[:m]]
  return jnp.asarray(x[..., None], jnp.float32), jnp.asarray(y, jnp.float32)


def model(seed: int):
  rng = np.random.default_rng(seed)
  w1 = jnp.asarray(rng.normal(size=(16, 8)) * 0.8, jnp.float32)
  w2 = jnp.asarray(rng.normal(size=(8,)), jnp.float32)
  return lambda z: jnp.tanh(z.reshape(-1) @ w1 + 0.1) @ w2


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--examples", type=int, default=16)
  parser.add_argument("--draws", type=int, default=20000)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results/theory_objective.json"))
  args = parser.parse_args(argv)
  x, y = data(args.examples, args.seed)
  f = model(args.seed)
  shape = (4, 4)
  rows = {}
  print("family | nominal | realised | difference | sampled realised (z) | max |a_jk z| | seconds")
  for index, (name, method) in enumerate(FAMILIES.items()):
    start = time.perf_counter()
    values = {
      weight: float(theory.msda_loss(f, x, y, theory.method_atoms(method, shape=shape, label_weight=weight)))
      for weight in ("nominal", "realised")
    }
    key = jax.random.fold_in(jax.random.key(args.seed), index)
    law = laws.msda_law(method, shape=shape)
    sampled = theory.msda_loss_estimate(f, x, y, theory.sampled_atoms(key, law, num_draws=args.draws))
    z_loss = (float(sampled.value) - values["realised"]) / float(sampled.stderr)
    exact = theory.method_coefficients(method, shape=shape)
    moments = theory.mask_moments(jax.random.fold_in(key, 1), laws.swap_law(method, shape=shape), num_draws=args.draws)
    z = np.abs(np.asarray(exact.second) - np.asarray(moments.second)) / np.maximum(
      np.asarray(moments.second_stderr), 1e-9
    )
    rows[name] = {
      "nominal": values["nominal"],
      "realised": values["realised"],
      "difference": values["realised"] - values["nominal"],
      "sampled_realised": float(sampled.value),
      "sampled_stderr": float(sampled.stderr),
      "z_loss": z_loss,
      "max_abs_z_coefficients": float(z.max()),
      "seconds": time.perf_counter() - start,
    }
    r = rows[name]
    print(
      f"{name} | {r['nominal']:.5f} | {r['realised']:.5f} | {r['difference']:+.5f} | "
      f"{r['sampled_realised']:.5f} ({r['z_loss']:+.2f}) | {r['max_abs_z_coefficients']:.2f} | {r['seconds']:.1f}"
    )
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps({"examples": args.examples, "draws": args.draws, "seed": args.seed, **rows}, indent=1))
  return 0


if __name__ == "__main__":
  sys.exit(main())
