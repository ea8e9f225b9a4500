"""Co-Mixup's fixed-iteration solver against the exhaustive optimum and against the reference's graph-cut solver.

```bash
git clone https://github.com/snu-mllab/Co-Mixup /path/to/Co-Mixup   # for --comixup; pip install gco-wrapper
python -m benchmarks.comixup_gap [--comixup /path/to/Co-Mixup] [--instances 50] [--large 20]
```

Instances have the reference's form and scale (seed 0): saliency ``Gamma(0.5)`` maps of 4 x 4 pixels per block
pooled to the block grid and normalised, the Dirichlet(2) prior with ``eta`` 0.05, the
compatibility with ``omega`` 0.001, ``beta`` 0.32, ``gamma`` 1, a random starting labeling
shared by every solver. Energies are ``_comixup_energy.energy`` (the reference's ``obj_fn``),
evaluated in float64 on one-hot or soft labelings alike.

* small (``--instances`` each): 3 inputs into 3 outputs on 2 x 2 blocks (3^12 labelings), and 2
  into 2 on 3 x 3 (2^18): the relative gap to the exhaustive optimum of the library's solver at
  ``tau`` 0 (exact coordinate descent) and at the reference's 0.83, and of the reference's
  ``get_onehot_matrix`` (its soft labels may go below the one-hot optimum: counted);
* large (``--large`` instances): a partition of 20 on 4 x 4 blocks (the reference's CIFAR
  setting), the library's energy against the reference's on the same instance, and the time of each.

The reference's ``match.py`` functions are read from the checkout and run on the CPU with
``gco`` (the ``gco-wrapper`` package); its prior is already in the given costs (``eta`` 0 there).
Nothing is asserted; the figures are printed as JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.peer_code import exec_functions
from msda_jax.masks import _comixup_energy as ce

BETA, GAMMA, ETA, OMEGA, TAU = 0.32, 1.0, 0.05, 0.001, 0.83
NAMES = (
  "to_onehot", "random_initialize", "obj_fn", "resolve_label",
  "graphcut_multi", "graphcut_wrapper", "get_onehot_matrix",
)  # fmt: skip


def load(root: str) -> Any:
  import gco
  import torch
  import torch.nn.functional as F

  path = Path(root) / "match.py"
  if not path.is_file():
    raise FileNotFoundError(f"--comixup must name a Co-Mixup checkout (with match.py); got {root!r}.")
  namespace: dict[str, Any] = {"torch": torch, "F": F, "gco": gco, "np": np}
  exec_functions(path, NAMES, namespace)
  return namespace["get_onehot_matrix"]


def instance(rng: np.random.Generator, m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
  """``(cost [m, n, n], compat [m, m])`` float32 of the reference's form."""
  s = rng.gamma(0.5, size=(m, 4 * n, 4 * n)).astype(np.float32)
  log_prior = np.log(rng.dirichlet(2.0 * np.ones(m)) + 1e-8)
  cost = ce.unary_costs(ce.block_saliency(s, n), log_prior, ETA)
  return np.asarray(cost), np.asarray(ce.compatibility(s, OMEGA))


def energy64(z: np.ndarray, cost: np.ndarray, compat: np.ndarray) -> float:
  """The reference's ``obj_fn`` with ``A``, float64, for one-hot or soft ``z [m', n, n, m]``."""
  cost, compat = np.asarray(cost, np.float64), np.asarray(compat, np.float64)
  n = cost.shape[1]
  counts = z.reshape(z.shape[0], -1, z.shape[-1]).sum(1)
  unary = np.sum(np.moveaxis(cost, 0, -1)[None] * z)
  smooth = BETA / n**2 / 2 * (((z[:, :-1] - z[:, 1:]) ** 2).sum() + ((z[:, :, :-1] - z[:, :, 1:]) ** 2).sum())
  total = counts.sum(0)
  diverse = GAMMA / n**2 * (total @ compat @ total - np.einsum("ju,uv,jv->", counts, compat, counts))
  return float(unary + smooth + diverse)


def onehot(labels: Any, m: int) -> np.ndarray:
  return np.eye(m)[np.asarray(labels)]


def reference_solve(get_onehot_matrix: Any, cost: np.ndarray, compat: np.ndarray, start: np.ndarray) -> np.ndarray:
  import torch

  m, outputs = cost.shape[0], start.shape[0]
  z = get_onehot_matrix(
    torch.tensor(cost), torch.tensor(compat), outputs, idx=torch.tensor(start, dtype=torch.long),
    beta=BETA, gamma=GAMMA, eta=0.0, thres=TAU, niter=4, device="cpu",
  )  # fmt: skip
  return z.numpy().astype(np.float64).reshape(outputs, *cost.shape[1:], m)


def summary(gaps: list[float]) -> dict[str, float]:
  g = np.asarray(gaps)
  return {"mean_gap": float(g.mean()), "worst_gap": float(g.max()), "optimal": float(np.mean(np.abs(g) <= 1e-6))}


def small(instances: int, m: int, n: int, reference: Any) -> dict[str, Any]:
  rng = np.random.default_rng(0)
  exhaustive = jax.jit(functools.partial(ce.solve_exhaustive, outputs=m, beta=BETA, gamma=GAMMA))
  ours = {tau: jax.jit(functools.partial(ce.solve, beta=BETA, gamma=GAMMA, tau=tau)) for tau in (0.0, TAU)}
  gaps: dict[str, list[float]] = {"library_tau0": [], "library_tau0.83": [], "reference": []}
  below = 0
  for _ in range(instances):
    cost, compat = instance(rng, m, n)
    start = rng.integers(0, m, (m, n, n))
    best = energy64(onehot(exhaustive(cost, compat), m), cost, compat)
    for tau, solver in ours.items():
      got = energy64(onehot(solver(cost, compat, jnp.asarray(start)), m), cost, compat)
      gaps[f"library_tau{0 if tau == 0 else TAU}"].append((got - best) / abs(best))
    if reference is not None:
      got = energy64(reference_solve(reference, cost, compat, start), cost, compat)
      below += got < best - 1e-9
      gaps["reference"].append((got - best) / abs(best))
  out = {name: summary(g) for name, g in gaps.items() if g}
  out["setting"] = f"{m} inputs into {m} outputs, {n} x {n} blocks, {instances} instances"
  if reference is not None:
    out["reference_below_one_hot_optimum"] = int(below)
  return out


def large(instances: int, reference: Any, m: int = 20, n: int = 4) -> dict[str, Any]:
  rng = np.random.default_rng(1)
  solver = jax.jit(functools.partial(ce.solve, beta=BETA, gamma=GAMMA, tau=TAU))
  diffs, ours_s, theirs_s, energies = [], [], [], []
  solver(*(jnp.asarray(v) for v in instance(rng, m, n)), jnp.zeros((m, n, n), jnp.int32)).block_until_ready()
  for _ in range(instances):
    cost, compat = instance(rng, m, n)
    start = rng.integers(0, m, (m, n, n))
    t0 = time.perf_counter()
    labels = solver(jnp.asarray(cost), jnp.asarray(compat), jnp.asarray(start)).block_until_ready()
    ours_s.append(time.perf_counter() - t0)
    mine = energy64(onehot(labels, m), cost, compat)
    energies.append(mine)
    if reference is not None:
      t0 = time.perf_counter()
      z = reference_solve(reference, cost, compat, start)
      theirs_s.append(time.perf_counter() - t0)
      theirs = energy64(z, cost, compat)
      diffs.append((mine - theirs) / abs(theirs))
  out: dict[str, Any] = {
    "setting": f"{m} inputs into {m} outputs, {n} x {n} blocks, {instances} instances",
    "library_energy_mean": float(np.mean(energies)),
    "library_ms_per_partition": 1e3 * float(np.median(ours_s)),
  }
  if diffs:
    d = np.asarray(diffs)
    out.update(
      relative_excess_over_reference_mean=float(d.mean()),
      relative_excess_worst=float(d.max()),
      library_at_or_below_reference=float(np.mean(d <= 1e-9)),
      reference_ms_per_partition=1e3 * float(np.median(theirs_s)),
    )
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--comixup", default=None, help="a Co-Mixup checkout (its match.py); omitted: the library only")
  parser.add_argument("--instances", type=int, default=50)
  parser.add_argument("--large", type=int, default=20)
  args = parser.parse_args()
  reference = None if args.comixup is None else load(args.comixup)
  results = {
    "small_3x3_2x2": small(args.instances, 3, 2, reference),
    "small_2x2_3x3": small(args.instances, 2, 3, reference),
    "large_20_4x4": large(args.large, reference),
  }
  print(json.dumps(results, indent=1))


if __name__ == "__main__":
  main()
