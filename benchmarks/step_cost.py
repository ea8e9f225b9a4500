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
    python -m benchmarks.step_cost --model vit_cifar --batch 64 --size 32 --token-head --methods cutmix \
        "patch_aligned(method='cutmix', patch=4)" "transmix(method=\"patch_aligned(method='cutmix', patch=4)\")" \
        "tokenmix(patch=4)" "mixpro(cell=8)" "smmix(patch=4)"

``--token-head`` builds the ViT with SMMix's second classifier for every row (the vanilla step
carries its parameters too, untouched), so the baseline is the same model.
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
  "transmix": "none (the attention sown in the training forward pass)",
  "mixpro": "none (the attention sown in the training forward pass)",
  "tokenmix": "1 forward (the unmixed batch's attention)",
  "smmix": "1 forward (the unmixed batch's attention and logits), the token head on every token",
}


def measure(
  model_name: str, width: int | None, batch: int, size: int, repeats: int, specs: list[str], token_head: bool = False
) -> dict:
  rng = np.random.default_rng(0)
  classes = 100
  data = {
    "image": jnp.asarray(rng.uniform(size=(batch, size, size, 3)), jnp.float32),
    "label": jnp.asarray(rng.integers(0, classes, batch), jnp.int32),
  }
  options = {"token_head": True} if token_head else {}
  model = get_model(model_name, num_classes=classes, rngs=nnx.Rngs(0), width=width, **options)
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
  parser.add_argument("--token-head", action="store_true", help="a ViT with SMMix's token head (every row)")
  args = parser.parse_args(argv)
  result = measure(args.model, args.width, args.batch, args.size, args.repeats, args.methods, args.token_head)
  print(json.dumps(result, indent=1))
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
