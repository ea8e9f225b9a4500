"""The ViT mixers against their official code: TransMix's label rule, TokenMix's block law, MixPro's MaskMix.

```bash
git clone https://github.com/Beckschen/TransMix /path/to/TransMix
git clone https://github.com/Sense-X/TokenMix /path/to/TokenMix
git clone https://github.com/fistyee/MixPro /path/to/MixPro
git clone https://github.com/Westlake-AI/openmixup /path/to/openmixup   # optional: its TransMix branches
python -m benchmarks.vit_parity --transmix /path/to/TransMix --tokenmix /path/to/TokenMix \
    --mixpro /path/to/MixPro [--openmixup /path/to/openmixup] --draws 2000
```

Only the mixing code is read (``benchmarks.peer_code``; ``.cuda()`` made the identity, CPU torch):

* **TransMix** (``transmix.py``, ``Mixup_transmix.transmix_label``): on the same boxes, attention
  ``[B, 196]`` and labels, its partner weight against ``TransMix.partner_weight`` at ``ratio`` 0.5,
  for boxes on whole 16-pixel tokens of a 224 x 224 image and for timm's pixel boxes. With
  ``--openmixup``, OpenMixup's ``transmix`` (both branches) on the same boxes and attention, read
  through its returned image weight.
* **TokenMix** (``tokenmix.py``, ``generate_mask`` and ``generate_mask_random``, 14 x 14 tokens):
  ``--draws`` masks at each of a few ``lam``; the share of draws that paste each token and the
  mean count, against ``--draws`` of the library's ``block_tokens`` / ``random_tokens`` (the laws,
  not the draws: the reference draws with Python's ``random``), with the largest two-sample z of
  the 196 shares (about 3.5 is the 95 % quantile of the largest of 196 independent normals).
* **MixPro** (``utils.py``, ``MaskMix``): for 1,000 ratios on the 4 x 4 grid of 56-pixel cells at
  224 x 224, the kept-cell count (``ceil(ratio N)``) and area weight against ``MixPro``'s.

Prints one JSON object; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import types
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import msda_jax
from benchmarks.peer_code import exec_functions
from msda_jax.masks import _tokenmix


def _torch_on_cpu() -> Any:
  import torch

  torch.Tensor.cuda = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
  return torch


def transmix_label(root: str) -> Any:
  """The reference's ``transmix_label`` (a method that reads nothing of its instance)."""
  torch = _torch_on_cpu()
  import torch.nn as nn

  path = Path(root) / "transmix.py"
  if not path.is_file():
    raise FileNotFoundError(f"--transmix must name a TransMix checkout; got {root!r}.")
  namespace: dict[str, Any] = {"torch": torch, "nn": nn, "math": math}
  exec_functions(path, ("transmix_label",), namespace, owner="Mixup_transmix")
  return lambda *args, **kwargs: namespace["transmix_label"](None, *args, **kwargs)


def openmixup_transmix(root: str) -> Any:
  torch = _torch_on_cpu()
  import torch.nn as nn

  path = Path(root) / "openmixup" / "models" / "augments" / "transmix.py"
  namespace: dict[str, Any] = {"torch": torch, "nn": nn, "np": np, "batch_shuffle_ddp": _identity_shuffle}
  exec_functions(path, ("transmix",), namespace)
  return namespace["transmix"]


def _identity_shuffle(x: Any, idx_shuffle: Any = None, no_repeat: bool = False) -> tuple[Any, Any, Any]:
  """OpenMixup's cross-device shuffle on one process, as the identity (the same partner as the plain branch)."""
  del idx_shuffle, no_repeat
  return x, None, None


def transmix_case(label: Any, omx: Any, draws: int, aligned: bool) -> dict[str, Any]:
  import torch

  rng = np.random.default_rng(0)
  batch, side, tokens = 8, 224, 14
  worst, worst_omx, worst_dist = 0.0, 0.0, 0.0
  for _ in range(draws):
    top = tokens if aligned else side
    (yl, yh), (xl, xh) = np.sort(rng.integers(0, top + 1, size=(2, 2)), axis=1) * (side // top)
    if yl == yh or xl == xh:
      continue
    attn = rng.uniform(size=(batch, tokens * tokens)) ** 3
    attn = attn / attn.sum(1, keepdims=True) * 0.7  # the class token keeps the rest of its row
    y1 = torch.eye(10)[torch.arange(batch) % 10]
    y2 = y1.flip(0)
    box = (int(yl), int(yh), int(xl), int(xh))
    target = label((None, y1, y2, box), torch.from_numpy(attn).float(), (batch, 3, side, side), ratio=0.5)
    theirs = target.numpy()[np.arange(batch), (np.arange(batch)[::-1]) % 10]  # the partner's weight
    own = np.ones((batch, side, side), np.float32)
    own[:, box[0] : box[1], box[2] : box[3]] = 0.0
    grid = jnp.asarray(attn.reshape(batch, tokens, tokens), jnp.float32)
    ours = np.asarray(msda_jax.TransMix(ratio=0.5).partner_weight(jnp.asarray(own), grid))
    same_class = (np.arange(batch) % 10) == (np.arange(batch)[::-1] % 10)
    worst = max(worst, float(np.abs(np.where(same_class, 0.0, ours - theirs)).max()))
    if omx is not None:
      mask = torch.from_numpy(1.0 - own[:1, None]).expand(batch, 1, side, side)
      full = np.zeros((batch, 1, 1 + tokens * tokens, 1 + tokens * tokens), np.float32)
      full[:, 0, 0, 1:] = attn
      for dist_mode in (False, True):
        img = torch.zeros((batch, 3, side, side))
        _, (_, _, lam) = omx(
          img,
          torch.arange(batch),
          dist_mode=dist_mode,
          mask=mask,
          lam=float(own[0].mean()),
          attn=torch.from_numpy(full),
          patch_shape=(tokens, tokens),
          ratio=0.5,
        )
        diff = float(np.abs((1.0 - np.asarray(lam)) - ours).max())  # its lam is the image's weight
        if dist_mode:
          worst_dist = max(worst_dist, diff)
        else:
          worst_omx = max(worst_omx, diff)
  out = {"boxes": "whole 16-pixel tokens" if aligned else "pixel boxes", "largest_partner_weight_difference": worst}
  if omx is not None:
    out["openmixup_plain_branch_largest_difference"] = worst_omx
    out["openmixup_distributed_branch_largest_difference"] = worst_dist
  return out


def tokenmix_laws(root: str, draws: int) -> list[dict[str, Any]]:
  torch = _torch_on_cpu()
  path = Path(root) / "tokenmix.py"
  if not path.is_file():
    raise FileNotFoundError(f"--tokenmix must name a TokenMix checkout; got {root!r}.")
  numpy_with_int = types.SimpleNamespace(**{k: getattr(np, k) for k in dir(np) if not k.startswith("__")})
  numpy_with_int.int = int  # the reference predates numpy 1.24's removal of np.int
  random.seed(0)
  np.random.seed(0)  # noqa: NPY002 (the reference draws from numpy's global generator)
  namespace: dict[str, Any] = {"np": numpy_with_int, "torch": torch, "math": math, "random": random}
  exec_functions(path, ("generate_mask", "generate_mask_random"), namespace)
  results = []
  for lam in (0.2, 0.5, 0.8):
    count = min(196, int((1 - lam) * 196) + 14)
    for kind, make, ours in (
      ("block", namespace["generate_mask"], _tokenmix.block_tokens),
      ("random", namespace["generate_mask_random"], _tokenmix.random_tokens),
    ):
      theirs = np.stack([make(lam, "cpu", 14)[0].numpy()[0, 0] for _ in range(draws)])
      keys = jax.random.split(jax.random.key(0), draws)
      mine = np.asarray(jax.jit(jax.vmap(lambda k, f=ours, n=count: f(k, (14, 14), jnp.int32(n))))(keys), np.float64)
      results.append(
        {
          "mask": kind,
          "lam": lam,
          "tokens_asked": count,
          "mean_count_reference_library": [float(theirs.sum((1, 2)).mean()), float(mine.sum((1, 2)).mean())],
          "largest_per_token_share_difference": float(np.abs(theirs.mean(0) - mine.mean(0)).max()),
          "largest_z_of_196_tokens": _largest_z(theirs, mine),
        }
      )
  return results


def _largest_z(a: np.ndarray, b: np.ndarray) -> float:
  """The largest ``|p_a - p_b| / se`` over the tokens, ``p`` the share of draws pasting each token
  (a constant token, pasted in every draw or none by both, counts 0)."""
  pa, pb = a.mean(0), b.mean(0)
  se = np.sqrt(pa * (1 - pa) / a.shape[0] + pb * (1 - pb) / b.shape[0])
  return float(np.max(np.where(se > 0, np.abs(pa - pb) / np.where(se > 0, se, 1.0), 0.0)))


def mixpro_counts(root: str) -> dict[str, Any]:
  torch = _torch_on_cpu()
  path = Path(root) / "utils.py"
  if not path.is_file():
    raise FileNotFoundError(f"--mixpro must name a MixPro checkout; got {root!r}.")
  namespace: dict[str, Any] = {"np": np, "torch": torch}
  exec_functions(path, ("one_hot", "mixup_target", "MaskMix"), namespace)
  method = msda_jax.MixPro(cell=56)
  sample = jax.jit(lambda key, lam: method.sample(key, shape=(224, 224), lam=lam))
  rng = np.random.default_rng(0)
  mismatched, ratios = 0, rng.uniform(size=1000)
  for i, ratio in enumerate(ratios):
    np.random.seed(i)  # noqa: NPY002 (the reference draws from numpy's global generator)
    original_beta = np.random.beta
    np.random.beta = lambda a, b, r=ratio: r  # type: ignore[assignment]
    try:
      images = torch.zeros((2, 3, 224, 224))
      _, _, mask, kept = namespace["MaskMix"](images, images, 1.0, 4, 4, 56, torch.zeros(2), torch.zeros(2), 0.1, 10)
    finally:
      np.random.beta = original_beta  # type: ignore[assignment]
    drawn = sample(jax.random.key(i), jnp.float32(ratio))
    mismatched += int(abs(float(kept[0]) - float(drawn.weight)) > 1e-7) + int(
      mask[0].sum() // 16 != round(16 * float(drawn.weight))
    )
  return {"ratios": len(ratios), "grid": "4 x 4 cells of 56 pixels", "weights_or_counts_differing": mismatched}


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--transmix", required=True)
  parser.add_argument("--tokenmix", required=True)
  parser.add_argument("--mixpro", required=True)
  parser.add_argument("--openmixup", default=None)
  parser.add_argument("--draws", type=int, default=2000)
  args = parser.parse_args(argv)
  jax.config.update("jax_numpy_rank_promotion", "allow")
  label = transmix_label(args.transmix)
  omx = None if args.openmixup is None else openmixup_transmix(args.openmixup)
  out = {
    "transmix": [transmix_case(label, omx, min(args.draws, 200), aligned) for aligned in (True, False)],
    "tokenmix": tokenmix_laws(args.tokenmix, args.draws),
    "mixpro": mixpro_counts(args.mixpro),
  }
  print(json.dumps(out, indent=1))


if __name__ == "__main__":
  main()
