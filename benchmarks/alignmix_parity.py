"""AlignMix against OpenMixup's ``mixup_aligned`` on the same feature maps, ``lam`` and direction.

```bash
git clone https://github.com/Westlake-AI/openmixup /path/to/openmixup
python -m benchmarks.alignmix_parity --openmixup /path/to/openmixup --draws 50
```

Only ``SinkhornDistance`` and ``mixup_aligned`` are read from
``openmixup/models/augments/alignmix.py`` (``.cuda()`` made the identity; its ``random.randint``,
the direction, recorded). Each draw makes ReLU'd Gaussian feature maps ``[B, C, s, s]`` (the
scale of a CNN's last stage) and a ``lam``; the library's mix uses the same pairs, ``lam`` and
direction (``msda_jax.masks._alignmix``: the assignment ``R``, then ``lam A + (1 - lam) R A'`` or
``lam R^T A + (1 - lam) A'``).

The reference stops Sinkhorn once its row potentials move by less than 0.1 in total (at most 100
steps); the library makes a fixed number. Printed: the largest difference of the mixed features
with the library at 100 steps, and the step count (of 1 to 100) at which the library comes
closest to the reference, over all draws. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.peer_code import Recorded, exec_functions
from msda_jax.masks import _alignmix


def load(root: str, log: list[tuple[str, Any]]) -> Any:
  import torch
  import torch.nn as nn

  path = Path(root) / "openmixup" / "models" / "augments" / "alignmix.py"
  if not path.is_file():
    raise FileNotFoundError(f"--openmixup must name an OpenMixup checkout; got {root!r}.")
  namespace: dict[str, Any] = {"np": np, "torch": torch, "nn": nn, "random": Recorded(random, ("randint",), log)}
  exec_functions(path, ("SinkhornDistance", "mixup_aligned"), namespace)
  return namespace["mixup_aligned"]


_assignments = jax.jit(_alignmix.assignments, static_argnums=3)


def ours(a: np.ndarray, b: np.ndarray, lam: float, partner_moved: bool, iterations: int) -> np.ndarray:
  """The library's mix of channels-first maps ``[B, C, H, W]`` in the given direction."""
  last = lambda x: jnp.moveaxis(jnp.asarray(x, jnp.float32), 1, -1)
  r = np.asarray(_assignments(last(a), last(b), 0.1, iterations), np.float64)
  flat = lambda x: np.asarray(x, np.float64).reshape(x.shape[0], x.shape[1], -1)  # [B, C, r]
  if partner_moved:
    mixed = lam * flat(a) + (1 - lam) * np.einsum("bpq,bcq->bcp", r, flat(b))
  else:
    mixed = lam * np.einsum("bqp,bcq->bcp", r, flat(a)) + (1 - lam) * flat(b)
  return mixed.reshape(a.shape)


def compare(
  mixup_aligned: Any, log: list[tuple[str, Any]], *, draws: int, batch: int, channels: int, side: int
) -> dict:
  import torch

  cuda = torch.Tensor.cuda
  torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
  at_100, at_best, best_steps = 0.0, 0.0, []
  directions = [0, 0]
  try:
    for seed in range(draws):
      rng = np.random.default_rng(seed)
      a = np.maximum(rng.normal(size=(batch, channels, side, side)), 0.0).astype(np.float32)
      b = np.maximum(rng.normal(size=(batch, channels, side, side)), 0.0).astype(np.float32)
      lam = float(rng.beta(2.0, 2.0))
      log.clear()
      theirs = mixup_aligned(torch.from_numpy(a), torch.from_numpy(b), lam).numpy().astype(np.float64)
      partner_moved = log[0][1] == 0
      directions[0 if partner_moved else 1] += 1
      differences = [float(np.abs(ours(a, b, lam, partner_moved, n) - theirs).max()) for n in range(1, 101)]
      at_100 = max(at_100, differences[-1])
      best = int(np.argmin(differences))
      best_steps.append(best + 1)
      at_best = max(at_best, differences[best])
  finally:
    torch.Tensor.cuda = cuda  # type: ignore[method-assign]
  return {
    "draws": draws,
    "shape": [batch, channels, side, side],
    "directions_partner_moved_image_moved": directions,
    "largest_difference_at_100_steps": at_100,
    "largest_difference_at_the_closest_step_count": at_best,
    "closest_step_count_min_median_max": [min(best_steps), float(np.median(best_steps)), max(best_steps)],
    "largest_feature": float(np.max(np.abs(a))),
  }


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--openmixup", required=True)
  parser.add_argument("--draws", type=int, default=50)
  args = parser.parse_args(argv)
  log: list[tuple[str, Any]] = []
  mixup_aligned = load(args.openmixup, log)
  jax.config.update("jax_numpy_rank_promotion", "allow")
  results = [
    compare(mixup_aligned, log, draws=args.draws, batch=8, channels=64, side=4),
    compare(mixup_aligned, log, draws=args.draws, batch=4, channels=16, side=8),
  ]
  print(json.dumps(results, indent=1))


if __name__ == "__main__":
  main()
