"""Train-step cost of the methods that read the model, against the vanilla step of the same model and batch.

Times, in one run and on the same inputs, warm medians of jitted ``make_train_step`` programs
without mixing (the baseline) and with each method (a ``from_string`` spec); ``+decoupled``
after a spec trains it with DecoupleMix's loss (``msda_jax.losses``). The extra work each method
declares is listed beside its time: Attentive CutMix and SnapMix run the model once more in
inference mode (a forward pass: features, and the head at every position for SnapMix);
SaliencyMix, PuzzleMix and Co-Mixup a forward and an input-gradient backward pass (Co-Mixup then
solves its partitions' labelings).

    python -m benchmarks.step_cost --model small_cnn --batch 100 --size 32
    python -m benchmarks.step_cost --model preact_resnet18 --batch 32 --size 32
    python -m benchmarks.step_cost --model small_cnn --batch 100 --size 32 --methods saliencymix "comixup(part=20)"
    python -m benchmarks.step_cost --model small_cnn --batch 100 --size 32 --methods manifold_mixup alignmix
"""

from __future__ import annotations

import argparse
import json
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import msda_jax
from benchmarks.theory_regularizers import median_seconds
from msda_jax import losses
from msda_jax.train import get_model, init_train_state, make_train_step

METHODS = (
  "mixup",
  "mixup+decoupled",
  "cutmix",
  "saliencymix",
  "attentive_cutmix(top_k=None, grid=8)",
  "snapmix",
)
EXTRA = {
  "saliencymix": "1 forward + 1 input-gradient backward",
  "attentive_cutmix": "1 forward (features)",
  "snapmix": "1 forward (features, head per position)",
  "puzzlemix": "1 forward + 1 input-gradient backward",
  "comixup": "1 forward + 1 input-gradient backward, the partitions' labeling solve",
  "alignmix": "none (a Sinkhorn plan per pair at the last stage)",
}


def measure(model_name: str, width: int | None, batch: int, size: int, repeats: int, specs: list[str]) -> dict:
  rng = np.random.default_rng(0)
  classes = 100
  data = {
    "image": jnp.asarray(rng.uniform(size=(batch, size, size, 3)), jnp.float32),
    "label": jnp.asarray(rng.integers(0, classes, batch), jnp.int32),
  }
  model = get_model(model_name, num_classes=classes, rngs=nnx.Rngs(0), width=width)
  tx = optax.sgd(0.1, momentum=0.9)
  graphdef, state, opt = init_train_state(model, tx)
  rows: dict[str, dict[str, float | str]] = {}
  for spec in ["vanilla", *specs]:
    name, _, loss_name = spec.partition("+")
    method = None if name == "vanilla" else msda_jax.from_string(name)
    mixer = None if method is None else msda_jax.Mixer(method, num_classes=classes)
    loss = losses.get_loss("decoupled_mixup") if loss_name == "decoupled" else losses.cross_entropy
    step = jax.jit(make_train_step(graphdef=graphdef, tx=tx, mixer=mixer, weight_decay=5e-4, loss=loss))
    seconds = median_seconds(step, state, opt, data, jax.random.key(0), repeats=repeats)
    rows[spec] = {"ms": 1e3 * seconds, "extra": EXTRA.get(getattr(method, "name", ""), "none")}
    print(f"  {spec:40s} {1e3 * seconds:9.1f} ms", file=sys.stderr)
  base = float(rows["vanilla"]["ms"])
  for row in rows.values():
    row["ratio_to_vanilla"] = float(row["ms"]) / base
  return {"model": model_name, "width": width, "batch": batch, "size": size, "rows": rows}


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="small_cnn")
  parser.add_argument("--width", type=int, default=None)
  parser.add_argument("--batch", type=int, default=100)
  parser.add_argument("--size", type=int, default=32)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--methods", nargs="+", default=list(METHODS))
  args = parser.parse_args(argv)
  print(json.dumps(measure(args.model, args.width, args.batch, args.size, args.repeats, args.methods), indent=1))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
