"""DecoupleMix's loss against OpenMixup's ``soft_mix_cross_entropy`` on the same logits and mixes.

```bash
git clone https://github.com/Westlake-AI/openmixup /path/to/openmixup
python -m benchmarks.decouple_parity --openmixup /path/to/openmixup --draws 200
```

Only the loss is taken from the checkout (``soft_mix_cross_entropy`` of
``openmixup/models/losses/cross_entropy_loss.py`` and ``weight_reduce_loss`` of
``losses/utils.py``, read with ``ast``). Each draw makes random logits ``[B, K]``, a batch-level
``lam ~ Beta(1, 1)`` and partners ``y_b`` (a permutation), the targets ``lam y_a + (1 - lam) y_b``,
and the reference's ``eta_weight = [eta lam, eta (1 - lam)]`` (its head's default ``mode="both"``
with the linear ``lam`` scale); it compares the reference's mean loss with the mean of
``msda_jax.losses.decoupled_mixup`` on the same targets.

The reference pairs its weights with the mixed classes of the batch's *first* example in class
order (once the examples of one class are set apart): when that example's ``y_a`` has the larger
class index, ``eta lam`` goes to the class of weight ``1 - lam`` in every example. And it reduces the batch as
the mean over the mixed examples *plus* the mean over those whose two classes are the same (not
the batch mean). The largest differences are printed for the reference's reduction applied to
the library's per-example losses, in two groups by that order, and for the batch mean. Nothing
is asserted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import jax.numpy as jnp
import numpy as np

from benchmarks.peer_code import exec_functions
from msda_jax import losses


def load_reference(root: str) -> Any:
  """``soft_mix_cross_entropy`` with the ``weight_reduce_loss`` it calls."""
  import torch
  import torch.nn.functional as F

  folder = Path(root) / "openmixup" / "models" / "losses"
  if not (folder / "cross_entropy_loss.py").is_file():
    raise FileNotFoundError(f"--openmixup must name an OpenMixup checkout; got {root!r}.")
  namespace: dict[str, Any] = {"torch": torch, "F": F}
  for name, wanted in (("utils.py", "weight_reduce_loss"), ("cross_entropy_loss.py", "soft_mix_cross_entropy")):
    exec_functions(folder / name, (wanted,), namespace)
  return namespace["soft_mix_cross_entropy"]


def compare(reference: Any, *, draws: int, batch: int, classes: int, eta: float) -> dict[str, Any]:
  import torch

  worst = {"first_example_in_order": 0.0, "first_example_reversed": 0.0}
  worst_mean = 0.0
  counts = dict.fromkeys(worst, 0)
  for seed in range(draws):
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(batch, classes)).astype(np.float32)
    y_a = rng.integers(0, classes, batch)
    y_b = y_a[rng.permutation(batch)]
    lam = float(np.float32(rng.beta(1.0, 1.0)))
    eye = np.eye(classes, dtype=np.float32)
    targets = (lam * eye[y_a] + (1 - lam) * eye[y_b]).astype(np.float32)
    theirs = float(
      reference(torch.from_numpy(logits), torch.from_numpy(targets), eta_weight=[eta * lam, eta * (1 - lam)])
    )
    per_example = np.asarray(losses.decoupled_mixup(jnp.asarray(logits), jnp.asarray(targets), eta=eta), np.float64)
    same = y_a == y_b
    # The reference's reduction: the mean over the mixed examples plus the mean over the others.
    grouped = per_example[~same].mean() + (per_example[same].mean() if same.any() else 0.0)
    first = int(np.flatnonzero(~same)[0])  # the reference's first example, once the unmixed are set apart
    group = "first_example_in_order" if y_a[first] < y_b[first] else "first_example_reversed"
    counts[group] += 1
    worst[group] = max(worst[group], abs(grouped - theirs) / abs(theirs))
    worst_mean = max(worst_mean, abs(per_example.mean() - theirs) / abs(theirs))
  return {
    "draws": counts,
    "largest_relative_difference_in_the_reference_reduction": worst,
    "largest_relative_difference_of_the_batch_mean": worst_mean,
    "batch": batch,
    "classes": classes,
    "eta": eta,
  }


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--openmixup", required=True, help="a checkout of OpenMixup")
  parser.add_argument("--draws", type=int, default=200)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--classes", type=int, default=10)
  parser.add_argument("--eta", type=float, default=0.1)
  args = parser.parse_args(argv)
  reference = load_reference(args.openmixup)
  print(json.dumps(compare(reference, draws=args.draws, batch=args.batch, classes=args.classes, eta=args.eta)))


if __name__ == "__main__":
  main()
