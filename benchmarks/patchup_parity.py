"""PatchUp against the reference module on the same features, seeds, partners and ``lam``.

```bash
git clone https://github.com/chandar-lab/PatchUp /path/to/PatchUp
python -m benchmarks.patchup_parity --patchup /path/to/PatchUp --draws 200
```

The reference's ``modules/patchup.py`` is loaded alone and its ``PatchUp`` module run in training
mode on random features ``[B, C, H, W]`` with one-hot targets and a given ``lam``; its
``torch.bernoulli`` (the seeds and their probability) and ``np.random.permutation`` (the partners) are recorded. The
library side, from the same seeds: ``msda_jax.masks._hidden.square_union`` (channel first) gives
the changed features, ``M`` is 0 (hard) or ``lam`` (soft) there and 1 elsewhere, the features are
mixed by Eq. 1 with the recorded partners (``msda_jax.combine``) and the targets weighted by
``mean(M)``. Printed: the largest differences of the changed-feature masks, the mixed features and
the targets (the reference's ``target_reweighted``) per mode. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from msda_jax.combine import combine
from msda_jax.masks._hidden import patchup_probability, square_union


def load_reference(root: str) -> Any:
  """The reference's ``modules/patchup.py`` module (``PatchUp``, ``PatchUpMode``)."""
  path = Path(root) / "modules" / "patchup.py"
  if not path.is_file():
    raise FileNotFoundError(f"--patchup must name a PatchUp checkout holding modules/patchup.py; got {root!r}.")
  spec = importlib.util.spec_from_file_location("reference_patchup", path)
  if spec is None or spec.loader is None:
    raise ImportError(f"cannot load {path}")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def compare(
  reference: Any, *, mode: str, draws: int, batch: int, channels: int, side: int, block: int, gamma: float
) -> dict[str, Any]:
  import torch

  worst = {"seed_probability": 0.0, "changed": 0, "features": 0.0, "targets": 0.0}
  rng = np.random.default_rng(0)
  for seed in range(draws):
    x = rng.normal(size=(batch, channels, side, side)).astype(np.float32)
    targets = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    lam = float(np.float32(rng.beta(2.0, 2.0)))
    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the reference draws from the legacy global generator)
    module = reference.PatchUp(block_size=block, gamma=gamma)
    module.train()
    recorded: dict[str, Any] = {}
    bernoulli, permutation = torch.bernoulli, np.random.permutation

    def seeds(p: Any, _bernoulli: Any = bernoulli, out: dict[str, Any] = recorded) -> Any:
      out["p"] = float(p.flatten()[0])
      out["seeds"] = _bernoulli(p)
      return out["seeds"]

    def partners(n: Any, _permutation: Any = permutation, out: dict[str, Any] = recorded) -> Any:
      out["partners"] = _permutation(n)
      return out["partners"]

    torch.bernoulli, np.random.permutation = seeds, partners
    try:
      kind = reference.PatchUpMode.HARD if mode == "hard" else reference.PatchUpMode.SOFT
      _, _, reweighted, mixed, _ = module(torch.from_numpy(x), torch.from_numpy(targets), lam=lam, patchup_type=kind)
    finally:
      torch.bernoulli, np.random.permutation = bernoulli, permutation
    ours_p = float(patchup_probability(gamma, side, block))
    worst["seed_probability"] = max(worst["seed_probability"], abs(ours_p - recorded["p"]))
    holes = np.asarray(square_union(jnp.asarray(recorded["seeds"].numpy() > 0.5), block, channel_first=True))
    peer_holes = torch.nn.functional.max_pool2d(recorded["seeds"][None], block, 1, block // 2)[0].numpy() > 0.5
    worst["changed"] += int((holes != peer_holes).sum())
    mask = np.where(holes, 0.0 if mode == "hard" else lam, 1.0).astype(np.float32)
    perm = np.asarray(recorded["partners"])
    xs = jnp.asarray(x)
    ours = np.asarray(combine((xs, xs[perm]), (jnp.asarray(mask)[None],)))
    w = float(mask.mean())
    ours_targets = w * targets + (1.0 - w) * targets[perm]
    worst["features"] = max(worst["features"], float(np.abs(ours - mixed.detach().numpy()).max()))
    worst["targets"] = max(worst["targets"], float(np.abs(ours_targets - reweighted.numpy()).max()))
  return worst


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--patchup", required=True, help="a PatchUp checkout")
  parser.add_argument("--draws", type=int, default=200)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--channels", type=int, default=4)
  parser.add_argument("--side", type=int, default=16)
  parser.add_argument("--block", type=int, default=7)
  parser.add_argument("--gamma", type=float, default=0.9)
  args = parser.parse_args(argv)
  reference = load_reference(args.patchup)
  for mode in ("hard", "soft"):
    worst = compare(
      reference, mode=mode, draws=args.draws, batch=args.batch, channels=args.channels, side=args.side,
      block=args.block, gamma=args.gamma,
    )  # fmt: skip
    print(json.dumps({"mode": mode, "draws": args.draws, "shape": [args.batch, args.channels, args.side, args.side],
                      "block": args.block, "gamma": args.gamma, "max_abs": worst}))  # fmt: skip


if __name__ == "__main__":
  main()
