"""Attentive CutMix against OpenMixup's ``attentivemix`` and the original code's top-k cells.

```bash
git clone https://github.com/Westlake-AI/openmixup /path/to/openmixup
git clone https://github.com/xden2331/attentive_cutmix /path/to/attentive_cutmix
python -m benchmarks.attentive_parity --openmixup /path/to/openmixup --original /path/to/attentive_cutmix
```

From each checkout only the selection is taken, read with ``ast``: OpenMixup's ``attentivemix``
(``openmixup/models/augments/attentivemix.py``; its ``.cuda()`` calls made the identity) and the
original's ``_top_k`` (``AttentiveInputTransform`` in ``attentive_transform.py``, run with a
``self`` that holds ``k``). Each draw makes random feature maps ``[B, C, s, s]`` (a ReLU'd
normal, as a network's last stage gives) and images ``[B, 3, s g, s g]``:

* OpenMixup: its mask for ``top_k`` cells (``return_mask=True``), against the library's mask from
  the channel mean of the same features (``_attentive.attention_map``, the train step's map) on
  an ``s x s`` grid; also its ``lam`` (the first mask's mean) against the library's weight;
* the original: its ``k`` cells of the last channel's map, against the library's cells from that
  channel's map given as the saliency.

Nothing is asserted; the counts are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import types
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import msda_jax
from benchmarks.peer_code import exec_functions
from msda_jax.masks import _attentive


def load(openmixup: str, original: str) -> tuple[Any, Any]:
  import torch
  import torch.nn.functional as F

  path = Path(openmixup) / "openmixup" / "models" / "augments" / "attentivemix.py"
  if not path.is_file():
    raise FileNotFoundError(f"--openmixup must name an OpenMixup checkout; got {openmixup!r}.")
  namespace: dict[str, Any] = {"torch": torch, "F": F, "np": np}
  exec_functions(path, ("attentivemix",), namespace)
  original_path = Path(original) / "attentive_transform.py"
  if not original_path.is_file():
    raise FileNotFoundError(f"--original must name an attentive_cutmix checkout; got {original!r}.")
  other: dict[str, Any] = {"np": np}
  exec_functions(original_path, ("_top_k",), other, owner="AttentiveInputTransform")
  return namespace["attentivemix"], other["_top_k"]


def compare(attentivemix: Any, top_k: Any, *, draws: int, batch: int, side: int, scale: int, k: int) -> dict[str, Any]:
  import torch

  cuda = torch.Tensor.cuda
  torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
  try:
    masks_differ, cells_differ, worst_lam = 0, 0, 0.0
    method = msda_jax.AttentiveCutMix(grid=side, top_k=k)
    size = side * scale
    for seed in range(draws):
      rng = np.random.default_rng(seed)
      features = np.maximum(rng.normal(size=(batch, 16, side, side)), 0).astype(np.float32)
      images = rng.uniform(size=(batch, 3, size, size)).astype(np.float32)
      labels = torch.nn.functional.one_hot(torch.arange(batch) % 10, 10).float()
      torch.manual_seed(seed)
      (_, theirs), _ = attentivemix(
        torch.from_numpy(images),
        labels,
        features=torch.from_numpy(features),
        grid_scale=scale,
        top_k=k,
        return_mask=True,
      )
      saliency = _attentive.attention_map(jnp.asarray(features.transpose(0, 2, 3, 1)), (size, size))
      ours = jax.vmap(
        lambda s: method.sample(
          jax.random.key(0),
          shape=(size, size),
          data=msda_jax.PairData(jnp.zeros((size, size, 3)), jnp.zeros((size, size, 3)), s, s),
        )
      )(saliency)
      masks_differ += int(np.any(np.asarray(ours.mask) != theirs.numpy()[:, 0], axis=(1, 2)).sum())
      worst_lam = max(worst_lam, float(np.abs(np.asarray(ours.weight) - theirs.numpy()[0, 0].mean()).max()))
      # The original: k cells of the last channel's map.
      for b in range(batch):
        last = features[b, -1]
        want = {tuple(map(int, cell)) for cell in top_k(types.SimpleNamespace(k=k), last)}
        mine = _attentive.top_cells(jnp.asarray(last.reshape(-1)), jnp.asarray(k))
        got = {divmod(int(i), side) for i in np.flatnonzero(np.asarray(mine))}
        cells_differ += int(want != got)
  finally:
    torch.Tensor.cuda = cuda  # type: ignore[method-assign]
  return {
    "draws": draws,
    "batch": batch,
    "grid": side,
    "cell_pixels": scale,
    "top_k": k,
    "openmixup_masks_differing": masks_differ,
    "openmixup_largest_lam_difference": worst_lam,
    "original_cell_sets_differing": cells_differ,
  }


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--openmixup", required=True)
  parser.add_argument("--original", required=True)
  parser.add_argument("--draws", type=int, default=100)
  parser.add_argument("--batch", type=int, default=8)
  args = parser.parse_args(argv)
  attentivemix, top_k = load(args.openmixup, args.original)
  for side, scale, k in ((7, 32, 6), (4, 8, 3), (8, 4, 20)):
    print(json.dumps(compare(attentivemix, top_k, draws=args.draws, batch=args.batch, side=side, scale=scale, k=k)))


if __name__ == "__main__":
  main()
