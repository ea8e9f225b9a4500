"""k-image CutMix against the reference DCutMix code on the same weights and the same box offsets.

```bash
git clone https://github.com/clovaai/DCutMix /path/to/DCutMix
python -m benchmarks.dcutmix_parity --dcutmix /path/to/DCutMix --k 3 --draws 200
```

The reference's ``main.py`` trains; only its two mixing functions are taken from it
(``rand_bbox`` and ``joint_dirichlet``, read with ``ast`` and run in a namespace that gives them
``np``, ``torch`` and the ``args`` they read; the removed aliases ``np.int`` and ``np.float`` are
provided as ``int`` and ``float``). Each draw:

1. makes images ``[B, 3, H, W]`` whose pixels name themselves (channel 0 the example, 1 the row,
   2 the column) and integer labels, draws the weights ``phi ~ Dirichlet(alpha 1_k)`` per example
   with numpy, and runs ``joint_dirichlet(..., beta=2)`` (always mixing) with numpy's ``randint``
   and torch's ``randperm`` recorded;
2. rebuilds each example's source map with ``msda_jax.masks._kcutmix.nested_boxes`` from the same
   weights (float32) and the recorded offsets;
3. compares which example every pixel shows (the reference's read from channel 0 of its mixed
   images, ours from the rebuilt map and the recorded permutations) and the targets (the
   reference's area shares per class against ours from the realised areas).

Nothing is asserted; the counts and largest differences are printed as JSON.
"""

from __future__ import annotations

import argparse
import ast
import json
import types
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from msda_jax.masks._kcutmix import nested_boxes


def load_reference(root: str, k: int, classes: int) -> Any:
  """``joint_dirichlet`` from ``root/main.py``, with ``rand_bbox`` and the ``args`` it reads."""
  import torch

  path = Path(root) / "main.py"
  if not path.is_file():
    raise FileNotFoundError(f"--dcutmix must name a DCutMix checkout holding main.py; got {root!r}.")
  tree = ast.parse(path.read_text())
  wanted = [
    node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in ("rand_bbox", "joint_dirichlet")
  ]
  numpy = types.ModuleType("numpy_with_aliases")
  numpy.__dict__.update(np.__dict__)
  numpy.int = int  # type: ignore[attr-defined]
  numpy.float = float  # type: ignore[attr-defined]
  namespace: dict[str, Any] = {"np": numpy, "torch": torch, "args": types.SimpleNamespace(trial=k, num_classes=classes)}
  exec(compile(ast.Module(body=wanted, type_ignores=[]), str(path), "exec"), namespace)
  return namespace["joint_dirichlet"]


def compare(
  joint_dirichlet: Any, *, k: int, alpha: float, draws: int, batch: int, side: int, classes: int
) -> dict[str, Any]:
  import torch

  worst_weight, maps_differ, pixels_differ = 0.0, 0, 0
  b_index, rows, cols = np.meshgrid(np.arange(batch), np.arange(side), np.arange(side), indexing="ij")
  images = torch.from_numpy(np.stack([b_index, rows, cols], 1).astype(np.float32))
  labels = torch.from_numpy(np.arange(batch) % classes)
  for seed in range(draws):
    np.random.seed(seed)  # noqa: NPY002 (the peer draws from the legacy global generator)
    torch.manual_seed(seed)
    phis = np.random.dirichlet(alpha * np.ones(k), batch)  # noqa: NPY002
    offsets: list[int] = []
    permutations: list[np.ndarray] = []
    randint, randperm = np.random.randint, torch.randperm

    def recorded_randint(*args: Any, _randint: Any = randint, offsets: list[int] = offsets, **kwargs: Any) -> Any:
      out = _randint(*args, **kwargs)
      offsets.append(int(np.asarray(out).ravel()[0]))
      return out

    def recorded_randperm(
      *args: Any, _randperm: Any = randperm, permutations: list[np.ndarray] = permutations, **kwargs: Any
    ) -> Any:
      out = _randperm(*args, **kwargs)
      permutations.append(out.numpy())
      return out

    np.random.randint, torch.randperm = recorded_randint, recorded_randperm
    try:
      mixed, targets = joint_dirichlet(images.clone(), labels, phis, 2.0, mode="dcutmix")
    finally:
      np.random.randint, torch.randperm = randint, randperm
    peer_source = mixed[:, 0].numpy().astype(int)  # [B, H, W] the example each pixel shows
    stage_offsets: dict[tuple[int, int], tuple[int, int]] = {}
    # The peer's loop is stage-major: for each stage, every example (two calls when it can move).
    calls = iter(offsets)
    sizes = np.tile(np.array([side, side]), (batch, 1))
    left = np.ones(batch)
    for m in range(k - 1):
      keep = phis[:, m] / (left + 1e-10)
      left = left * (1 - keep)
      cut = np.round(sizes * np.sqrt(np.maximum(1 - keep, 0))[:, None]).astype(int)
      for b in range(batch):
        if (cut[b] < sizes[b]).all():
          stage_offsets[m, b] = (next(calls), next(calls))
        else:
          stage_offsets[m, b] = (0, 0)
      sizes = cut
    ours_maps = []
    for b in range(batch):
      owner = nested_boxes(
        None,
        jnp.asarray(phis[b], jnp.float32),
        (side, side),
        offsets=lambda m, high, b=b, chosen=stage_offsets: jnp.minimum(jnp.asarray(chosen[m, b], jnp.int32), high - 1),
      )
      ours_maps.append(np.asarray(owner))
    ours = np.stack(ours_maps)  # [B, H, W] the stage (source index) of each pixel
    sources = np.stack([np.arange(batch), *permutations[: k - 1]], 1)  # [B, k] the example of each source
    differ = np.take_along_axis(sources, ours.reshape(batch, -1), 1).reshape(ours.shape) != peer_source
    maps_differ += int(differ.any(axis=(1, 2)).sum())
    pixels_differ += int(differ.sum())
    areas = np.stack([(ours == m).mean(axis=(1, 2)) for m in range(k)], 1)
    ours_targets = np.zeros((batch, classes))
    for m in range(k):
      np.add.at(ours_targets, (np.arange(batch), np.asarray(labels)[sources[:, m]]), areas[:, m])
    worst_weight = max(worst_weight, float(np.abs(ours_targets - targets.numpy()).max()))
  return {
    "examples": draws * batch,
    "maps_differ": maps_differ,
    "pixels_differ": pixels_differ,
    "max_abs_target": worst_weight,
  }


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--dcutmix", required=True, help="a DCutMix checkout")
  parser.add_argument("--k", type=int, default=3)
  parser.add_argument("--alpha", type=float, default=1.0)
  parser.add_argument("--draws", type=int, default=200)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--side", type=int, default=32)
  parser.add_argument("--classes", type=int, default=10)
  args = parser.parse_args(argv)
  reference = load_reference(args.dcutmix, args.k, args.classes)
  result = compare(
    reference, k=args.k, alpha=args.alpha, draws=args.draws, batch=args.batch, side=args.side, classes=args.classes
  )
  print(json.dumps({"k": args.k, "alpha": args.alpha, "batch": args.batch, "side": args.side, **result}))


if __name__ == "__main__":
  main()
