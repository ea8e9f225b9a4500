"""GuidedMixup against OpenMixup's ``guidedmix`` and its ``onecycle_cover`` on the same maps.

```bash
git clone https://github.com/Westlake-AI/openmixup /path/to/openmixup
python -m benchmarks.guidedmixup_parity --openmixup /path/to/openmixup --draws 50
```

Only ``onecycle_cover`` and ``guidedmix`` are read from
``openmixup/models/augments/guidedmix.py`` (with ``ast``; ``.cuda()`` made the identity). Each
draw makes random non-negative maps ``[B, H, W]`` and images:

* the greedy cycle: ``onecycle_cover`` on a random symmetric distance matrix against
  ``msda_jax.greedy_pairing.greedy_cycle`` (the permutations compared);
* the mask: ``guidedmix(..., condition="greedy", return_mask=True)`` with the maps as its
  ``features``, its ``randperm`` recorded, against the library's ``GuidedMixup`` mask for the same
  partners; compared everywhere and away from the border (both blurs reflect the border), and the
  label weights.

OpenMixup computes the greedy cycle but mixes with the random permutation drawn before it (the
cycle's indices are not used for the images or labels); the official code mixes along the cycle,
as the library does. Nothing is asserted; the counts and largest differences are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import msda_jax
from benchmarks.peer_code import Recorded, exec_functions
from msda_jax import greedy_pairing


def load(root: str, log: list[tuple[str, Any]]) -> tuple[Any, Any]:
  import torch
  import torchvision.transforms.functional as F

  path = Path(root) / "openmixup" / "models" / "augments" / "guidedmix.py"
  if not path.is_file():
    raise FileNotFoundError(f"--openmixup must name an OpenMixup checkout; got {root!r}.")

  from copy import deepcopy

  torch_recorded = Recorded(torch, ("randperm",), log)
  namespace: dict[str, Any] = {"np": np, "torch": torch_recorded, "F": F, "INF": np.inf, "deepcopy": deepcopy}
  exec_functions(path, ("onecycle_cover", "guidedmix"), namespace)
  return namespace["onecycle_cover"], namespace["guidedmix"]


def compare(
  onecycle: Any, guidedmix: Any, log: list[tuple[str, Any]], *, draws: int, batch: int, side: int
) -> dict[str, Any]:
  import torch

  cuda = torch.Tensor.cuda
  torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
  cycles_differ, worst, worst_inner, worst_weight = 0, 0.0, 0.0, 0.0
  method = msda_jax.GuidedMixup()
  try:
    for seed in range(draws):
      rng = np.random.default_rng(seed)
      distance = rng.uniform(size=(batch, batch)).astype(np.float32)
      distance = distance + distance.T
      want = onecycle(distance.copy())
      cycles_differ += int(not np.array_equal(want, np.asarray(greedy_pairing.greedy_cycle(jnp.asarray(distance)))))
      maps = rng.gamma(0.5, size=(batch, side, side)).astype(np.float32)
      images = rng.uniform(size=(batch, 3, side, side)).astype(np.float32)
      labels = torch.nn.functional.one_hot(torch.arange(batch) % 4, 4).float()
      log.clear()
      torch.manual_seed(seed)
      (_, theirs), (_, _, lam, _) = guidedmix(
        torch.from_numpy(images), labels, features=torch.from_numpy(maps.copy()), return_mask=True
      )
      partner = log[0][1].numpy()
      ours = jax.vmap(
        lambda s, p: method.sample(
          jax.random.key(0),
          shape=(side, side),
          data=msda_jax.PairData(jnp.zeros((side, side, 3)), jnp.zeros((side, side, 3)), s, p),
        )
      )(jnp.asarray(maps), jnp.asarray(maps[partner]))
      difference = np.abs(np.asarray(ours.mask) - theirs.numpy()[:, 0])
      worst = max(worst, float(difference.max()))
      worst_inner = max(worst_inner, float(difference[:, 3:-3, 3:-3].max()))
      worst_weight = max(worst_weight, float(np.abs(np.asarray(ours.weight) - lam.numpy()[:, 0]).max()))
  finally:
    torch.Tensor.cuda = cuda  # type: ignore[method-assign]
  return {
    "draws": draws,
    "batch": batch,
    "side": side,
    "cycles_differing": cycles_differ,
    "mask_largest_difference": worst,
    "mask_largest_difference_3_pixels_from_the_border": worst_inner,
    "weight_largest_difference": worst_weight,
  }


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--openmixup", required=True)
  parser.add_argument("--draws", type=int, default=50)
  args = parser.parse_args(argv)
  log: list[tuple[str, Any]] = []
  onecycle, guidedmix = load(args.openmixup, log)
  for batch, side in ((8, 32), (16, 16)):
    print(json.dumps(compare(onecycle, guidedmix, log, draws=args.draws, batch=batch, side=side)))


if __name__ == "__main__":
  main()
