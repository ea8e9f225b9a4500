"""SmoothMix against OpenMixup's ``smoothmix`` on the same images and the same draws.

```bash
git clone https://github.com/Westlake-AI/openmixup /path/to/openmixup
python -m benchmarks.openmixup_parity --openmixup /path/to/openmixup --draws 200
```

The peer's file ``openmixup/models/augments/smoothmix.py`` is loaded alone (its one import from
the package, ``batch_shuffle_ddp``, is stubbed: the non-distributed path never calls it, and
``.cuda()`` returns the tensor on this CPU). Each draw:

1. makes images ``[B, C, H, W]`` (float32 uniform in [0, 1], H = W even: the peer needs that) and
   one-hot labels, seeds torch, and runs the peer with ``torch.randint``, ``torch.rand`` and
   ``torch.randperm`` recorded;
2. rebuilds the peer's kernel with ``msda_jax.masks._smoothmix.smooth_bump`` from the recorded
   draws: the centre ``((H - 1) / 2 + a, (W - 1) / 2 + b)`` for the recorded roll offsets ``a, b``
   (the peer's grid of side ``2H`` has its bump at ``(2H - 1) / 2`` and is cropped from ``H / 2``)
   and the recorded width ``sigma = (u / 4 + 1 / 4) H``;
3. mixes the images by Eq. 1 with ``M = 1 - kernel`` and the recorded permutation
   (``msda_jax.combine``), and compares the kernel, the mixed images and the label weights.

The peer returns ``lam = mean(kernel)`` as the weight of the first label ``y_a``; the kernel is
the partner's share, so the first label's weight is ``1 - mean(kernel)`` (``mean(M)``, what
``msda_jax.SmoothMix`` uses): the report shows that difference as it is. OpenMixup's ``gridmix``
is another law (a lattice of holes whose side is ``sqrt(1 - lam)`` of each patch, placed without
randomness when the crop is the whole image) with no counterpart to compare; see
``benchmarks/README.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from msda_jax.combine import combine
from msda_jax.masks._smoothmix import smooth_bump


def load_smoothmix(root: str) -> Any:
  """The peer's ``smoothmix`` function from the checkout at ``root`` (its package import stubbed)."""
  path = Path(root) / "openmixup" / "models" / "augments" / "smoothmix.py"
  if not path.is_file():
    raise FileNotFoundError(
      f"--openmixup must name an OpenMixup checkout holding {path.relative_to(root)}; got {root!r}."
    )
  for name in ("openmixup", "openmixup.models"):
    sys.modules.setdefault(name, types.ModuleType(name))
  utils = types.ModuleType("openmixup.models.utils")
  utils.batch_shuffle_ddp = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("the distributed path is not compared"))  # type: ignore[attr-defined]
  sys.modules["openmixup.models.utils"] = utils
  spec = importlib.util.spec_from_file_location("openmixup_smoothmix", path)
  if spec is None or spec.loader is None:
    raise ImportError(f"cannot load {path}")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.smoothmix


@contextlib.contextmanager
def recorded(torch: Any, log: dict[str, list[Any]]) -> Iterator[None]:
  """``torch.randint``, ``rand`` and ``randperm`` recorded, and ``Tensor.cuda`` a no-op, while inside."""
  saved = {name: getattr(torch, name) for name in ("randint", "rand", "randperm")}
  saved_cuda = torch.Tensor.cuda

  def wrap(name: str) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
      out = saved[name](*args, **kwargs)
      log.setdefault(name, []).append(out.clone())
      return out

    return call

  for name in saved:
    setattr(torch, name, wrap(name))
  torch.Tensor.cuda = lambda self, *a, **k: self
  try:
    yield
  finally:
    for name, fn in saved.items():
      setattr(torch, name, fn)
    torch.Tensor.cuda = saved_cuda


def compare(smoothmix: Any, *, draws: int, batch: int, side: int, classes: int) -> dict[str, float]:
  """The largest differences over ``draws`` calls (kernel, mixed images, first-label weight)."""
  import torch

  worst = {"kernel": 0.0, "images": 0.0, "weight_as_peer": 0.0, "weight_swapped": 0.0}
  rng = np.random.default_rng(0)
  for seed in range(draws):
    images = rng.uniform(size=(batch, 3, side, side)).astype(np.float32)
    labels = np.eye(classes, dtype=np.float32)[rng.integers(0, classes, batch)]
    torch.manual_seed(seed)
    log: dict[str, list[Any]] = {}
    with recorded(torch, log), torch.no_grad():
      (mixed, peer_kernel), (_, _, lam) = smoothmix(
        torch.from_numpy(images), torch.from_numpy(labels), alpha=1.0, return_mask=True
      )
    perm = log["randperm"][0].numpy()
    a, b = (int(v.item() - side / 2) for v in log["randint"][:2])  # the peer's int(randint - side / 2)
    sigma = float((log["rand"][0] / 4 + 0.25).item() * side)
    # The peer passes (rand_h, rand_w) and rolls the rows by the second draw: the centre is (row, column).
    centre = jnp.asarray([(side - 1) / 2 + b, (side - 1) / 2 + a], jnp.float32)
    kernel = np.asarray(smooth_bump(centre, sigma, (side, side), "circle"))
    mask = 1.0 - kernel
    x = jnp.asarray(images.transpose(0, 2, 3, 1))
    ours = np.asarray(combine((x, x[perm]), (jnp.asarray(mask)[None, :, :, None],)))
    worst["kernel"] = max(worst["kernel"], float(np.abs(peer_kernel[0, 0].numpy() - kernel).max()))
    worst["images"] = max(worst["images"], float(np.abs(ours - mixed.numpy().transpose(0, 2, 3, 1)).max()))
    worst["weight_as_peer"] = max(worst["weight_as_peer"], abs(float(lam) - float(mask.mean())))
    worst["weight_swapped"] = max(worst["weight_swapped"], abs(float(lam) - float(kernel.mean())))
  return worst


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--openmixup", required=True, help="an OpenMixup checkout")
  parser.add_argument("--draws", type=int, default=200)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--side", type=int, default=32)
  parser.add_argument("--classes", type=int, default=10)
  args = parser.parse_args(argv)
  if args.side % 2:
    raise SystemExit(f"--side must be even: the peer's kernel has the wrong shape for odd sides; got {args.side}.")
  worst = compare(
    load_smoothmix(args.openmixup), draws=args.draws, batch=args.batch, side=args.side, classes=args.classes
  )
  print(json.dumps({"draws": args.draws, "batch": args.batch, "side": args.side, "max_abs": worst}, indent=1))


if __name__ == "__main__":
  main()
