"""RICAP against its reference code on the same boundary draws, crops and permutations.

```bash
git clone https://github.com/jackryo/ricap /path/to/ricap
python -m benchmarks.ricap_parity --ricap /path/to/ricap --draws 200
```

The reference's ``trainers.py`` trains; only its mixing method (``TrainerRICAP.ricap``) is taken
from it, read with ``ast`` and run with a ``self`` that holds ``beta`` and an identity ``cuda``.
Each draw:

1. makes images ``[B, 3, H, W]`` whose pixels name themselves (channel 0 the example, 1 the row,
   2 the column) and integer labels, and runs the reference with numpy's ``beta`` and ``randint``
   and torch's ``randperm`` recorded;
2. rebuilds the mix with the library's functions from the same draws: the boundary point from
   the two Beta draws (``_ricap.boundary_point``, float32), the partition from it and the crops
   (``_ricap.tiled``), and the images by one gather (``combine.selected``) with the four recorded
   permutations as the sources;
3. compares which pixel of which example every output pixel shows, the boundary points, and the
   targets (the reference's ``sum_k W_k onehot(c_k)`` against the library's realised areas).

Non-square images check the axis order. Nothing is asserted; the counts and largest differences
are printed as JSON.
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
from msda_jax import combine
from msda_jax.masks._ricap import boundary_point, tiled


def load_reference(root: str) -> Path:
  """The path of ``trainers.py`` (its ``TrainerRICAP.ricap`` is run by ``compare``)."""
  path = Path(root) / "trainers.py"
  if not path.is_file():
    raise FileNotFoundError(f"--ricap must name a RICAP checkout holding trainers.py; got {root!r}.")
  return path


def compare(code: Any, *, beta: float, draws: int, batch: int, shape: tuple[int, int], classes: int) -> dict[str, Any]:
  import torch

  log: list[tuple[str, Any]] = []
  numpy = types.SimpleNamespace(**{**np.__dict__, "random": Recorded(np.random, ("beta", "randint"), log)})
  namespace: dict[str, Any] = {"np": numpy, "torch": Recorded(torch, ("randperm",), log), "Variable": lambda x: x}
  exec_functions(code, ("ricap",), namespace, owner="TrainerRICAP")
  ricap = namespace["ricap"]
  owner = types.SimpleNamespace(beta=beta, cuda=lambda x: x)
  height, width = shape
  b_index, rows, cols = np.meshgrid(np.arange(batch), np.arange(height), np.arange(width), indexing="ij")
  images = torch.from_numpy(np.stack([b_index, rows, cols], 1).astype(np.float32))
  labels = torch.from_numpy(np.arange(batch) % classes)
  pixels_differ, boundaries_differ, worst_target = 0, 0, 0.0
  for seed in range(draws):
    np.random.seed(seed)  # noqa: NPY002 (the reference draws from the legacy global generator)
    torch.manual_seed(seed)
    log.clear()
    patched, (c_, w_) = ricap(owner, images, labels)
    betas = np.asarray([float(v) for name, v in log if name == "beta"])
    crops = np.asarray([int(v) for name, v in log if name == "randint"], np.int32).reshape(4, 2)
    perms = np.stack([np.asarray(v) for name, v in log if name == "randperm"], axis=1)  # [B, 4]
    reference_boundary = (int(np.round(height * betas[0])), int(np.round(width * betas[1])))
    boundary = boundary_point(jnp.asarray(betas, jnp.float32), shape)
    boundaries_differ += int(tuple(int(v) for v in boundary) != reference_boundary)
    drawn = tiled(jnp.asarray(reference_boundary, jnp.int32), jnp.asarray(crops), shape)
    assert drawn.owner is not None and drawn.shifts is not None
    ours = combine.selected(
      jnp.asarray(images.numpy().transpose(0, 2, 3, 1)), drawn.owner[None], jnp.asarray(perms), drawn.shifts[None]
    )
    theirs = patched.numpy().transpose(0, 2, 3, 1)
    pixels_differ += int(np.any(np.asarray(ours) != theirs, axis=-1).sum())
    onehot = np.eye(classes)[labels.numpy()]
    reference_targets = sum(float(w_[k]) * np.eye(classes)[c_[k].numpy()] for k in range(4))
    our_targets = np.einsum("m,bmk->bk", np.asarray(drawn.weight), onehot[perms])
    worst_target = max(worst_target, float(np.abs(reference_targets - our_targets).max()))
  return {
    "beta": beta,
    "shape": list(shape),
    "batch": batch,
    "draws": draws,
    "pixels_with_another_source": pixels_differ,
    "boundary_points_differing_in_float32": boundaries_differ,
    "largest_target_difference": worst_target,
  }


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--ricap", required=True, help="a checkout of the RICAP reference code")
  parser.add_argument("--draws", type=int, default=200)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--beta", type=float, nargs="+", default=[0.3, 1.0])
  parser.add_argument("--shapes", nargs="+", default=["32x32", "24x40"])
  args = parser.parse_args(argv)
  code = load_reference(args.ricap)
  for beta in args.beta:
    for text in args.shapes:
      shape = tuple(int(v) for v in text.split("x"))
      result = compare(code, beta=beta, draws=args.draws, batch=args.batch, shape=shape, classes=10)  # type: ignore[arg-type]
      print(json.dumps(result))


if __name__ == "__main__":
  main()
