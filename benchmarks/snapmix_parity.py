"""SnapMix against its reference code on the same maps, boxes, partners and ratios.

```bash
git clone https://github.com/Shaoli-Huang/SnapMix /path/to/SnapMix
python -m benchmarks.snapmix_parity --snapmix /path/to/SnapMix --draws 100
```

From the checkout only the mixing is taken, read with ``ast``: ``snapmix`` of
``utils/mixmethod.py`` and ``rand_bbox`` of ``utils/custom_ops.py`` (the removed alias ``np.int``
given as ``int``; ``.cuda()`` made the identity). Its ``get_spm`` (the network's class-activation
maps) is replaced by random normalised maps given to both sides. Each draw records numpy's
``rand``, ``beta`` and ``randint`` and torch's ``randperm`` and rebuilds the pair with the
library's functions from them: ``_snapmix.box_at`` from the recorded centres and ratios (float32),
``resized_box`` for the paste, ``semantic_share`` for the two weights. Compared: the mixed images,
the image's weight and the partner's weight; for pairs of the same class the reference adds each
weight to the other, so there its weights are compared with the library's sum ``w_i + w_j``.
Nothing is asserted; the largest differences are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import types
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from benchmarks.peer_code import Recorded, exec_functions
from msda_jax.masks import _snapmix


def load(root: str, log: list[tuple[str, Any]], maps: dict[str, Any]) -> Any:
  import torch
  import torch.nn.functional as F

  folder = Path(root) / "utils"
  if not (folder / "mixmethod.py").is_file():
    raise FileNotFoundError(f"--snapmix must name a SnapMix checkout; got {root!r}.")
  numpy = types.SimpleNamespace(**{**np.__dict__, "int": int})
  numpy.random = Recorded(np.random, ("rand", "beta", "randint"), log)  # type: ignore[attr-defined]
  namespace: dict[str, Any] = {"np": numpy, "torch": Recorded(torch, ("randperm",), log), "F": F}
  exec_functions(folder / "custom_ops.py", ("rand_bbox",), namespace)
  namespace["utils"] = types.SimpleNamespace(rand_bbox=namespace["rand_bbox"])
  namespace["get_spm"] = lambda input, target, conf, model: (maps["current"], None)
  exec_functions(folder / "mixmethod.py", ("snapmix",), namespace)
  return namespace["snapmix"]


def compare(
  snapmix: Any, log: list[tuple[str, Any]], maps: dict[str, Any], *, draws: int, batch: int, side: int
) -> dict[str, Any]:
  import torch

  cuda = torch.Tensor.cuda
  torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
  worst = {"images": 0.0, "own_weight": 0.0, "partner_weight": 0.0, "same_class_sum": 0.0}
  boxes_differ, mixed_draws = 0, 0
  conf = types.SimpleNamespace(prob=1.0, beta=1.0, cropsize=side)
  shape = (side, side)
  try:
    for seed in range(draws):
      rng = np.random.default_rng(seed)
      images = rng.uniform(size=(batch, 3, side, side)).astype(np.float32)
      raw = rng.gamma(0.5, size=(batch, side, side)).astype(np.float32)
      maps["current"] = torch.from_numpy(raw / raw.sum(axis=(1, 2), keepdims=True))
      labels = torch.from_numpy(rng.integers(0, 4, batch))
      np.random.seed(seed)  # noqa: NPY002 (the reference draws from the legacy global generator)
      torch.manual_seed(seed)
      log.clear()
      out, _, _, lam_a, lam_b = snapmix(torch.from_numpy(images.copy()), labels, conf)
      betas = [float(v) for name, v in log if name == "beta"]
      centres = np.asarray([int(v) for name, v in log if name == "randint"], np.int32).reshape(2, 2)
      partner = np.asarray(next(v for name, v in log if name == "randperm"))
      box_a = _snapmix.box_at(jnp.asarray(centres[0]), jnp.float32(betas[0]), shape)
      box_b = _snapmix.box_at(jnp.asarray(centres[1]), jnp.float32(betas[1]), shape)
      ours_sides = [int(_snapmix._box.cut_sizes(jnp.float32(b), shape, sides="even")[0]) for b in betas]
      boxes_differ += sum(2 * (int(side * np.sqrt(1.0 - b)) // 2) != o for b, o in zip(betas, ours_sides, strict=True))
      inside_a = np.asarray(_snapmix.box_mask(*box_a, shape))
      inside_b = np.asarray(_snapmix.box_mask(*box_b, shape))
      if not (inside_a.any() and inside_b.any()):
        continue
      mixed_draws += 1
      x = jnp.asarray(images.transpose(0, 2, 3, 1))
      pasted = np.stack([np.asarray(_snapmix.resized_box(x[partner[b]], box_b, box_a)) for b in range(batch)])
      ours = np.where(inside_a[None, :, :, None], pasted, images.transpose(0, 2, 3, 1))
      worst["images"] = max(worst["images"], float(np.abs(ours - out.numpy().transpose(0, 2, 3, 1)).max()))
      s = np.asarray(maps["current"])
      own = np.asarray([float(_snapmix.semantic_share(jnp.asarray(s[b]), jnp.asarray(inside_a))) for b in range(batch)])
      theirs_b = np.asarray(
        [float(_snapmix.semantic_share(jnp.asarray(s[partner[b]]), jnp.asarray(inside_b))) for b in range(batch)]
      )
      w_i, w_j = 1.0 - own, theirs_b
      same = labels.numpy() == labels.numpy()[partner]
      for name, mine, ref in (("own_weight", w_i, lam_a.numpy()), ("partner_weight", w_j, lam_b.numpy())):
        worst[name] = max(worst[name], float(np.abs(mine - ref)[~same].max(initial=0.0)))
      total = w_i + w_j
      worst["same_class_sum"] = max(
        worst["same_class_sum"],
        float(np.abs(total - lam_a.numpy())[same].max(initial=0.0)),
        float(np.abs(total - lam_b.numpy())[same].max(initial=0.0)),
      )
  finally:
    torch.Tensor.cuda = cuda  # type: ignore[method-assign]
  return {
    "draws": draws,
    "mixed_draws": mixed_draws,
    "batch": batch,
    "side": side,
    "box_sides_differing": boxes_differ,
    "largest_differences": worst,
  }


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--snapmix", required=True, help="a checkout of the SnapMix reference code")
  parser.add_argument("--draws", type=int, default=100)
  parser.add_argument("--batch", type=int, default=8)
  args = parser.parse_args(argv)
  log: list[tuple[str, Any]] = []
  maps: dict[str, Any] = {}
  snapmix = load(args.snapmix, log, maps)
  for side in (16, 32):
    print(json.dumps(compare(snapmix, log, maps, draws=args.draws, batch=args.batch, side=side)))


if __name__ == "__main__":
  main()
