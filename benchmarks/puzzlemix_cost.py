"""Cost of a PuzzleMix train step against the vanilla step of the same model and batch.

Times, in one run and on the same inputs (warm medians of jitted programs):

* the train step (``msda_jax.train.make_train_step``) without mixing (the baseline), with Mixup,
  SaliencyMix and PuzzleMix (the reference's settings, every grid side drawn, and each grid
  side alone);
* the parts of a PuzzleMix step: the saliency pass (one more forward and an input-gradient
  backward) and ``mix_batch`` with the saliency given (energy, labeling, transport, mix).

The ratio ``puzzlemix / vanilla`` is the figure the PuzzleMix reference reports as about 1.5 on a
GPU (CIFAR-100, PreActResNet-18). On a CPU the labeling and the transport's ``top_k`` run on the
same cores as the network, so the ratio depends on the network's size: report both models.

    python -m benchmarks.puzzlemix_cost --model preact_resnet18 --batch 32 \
      --out benchmarks/results/puzzlemix_cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import msda_jax
from benchmarks.mixing.machine import cpu_model
from benchmarks.theory_regularizers import median_seconds
from msda_jax.train import get_model, init_train_state, make_train_step


def measure(model_name: str, width: int | None, batch: int, size: int, repeats: int) -> dict:
  rng = np.random.default_rng(0)
  classes = 100
  images = jnp.asarray(rng.uniform(size=(batch, size, size, 3)), jnp.float32)
  labels = jnp.asarray(rng.integers(0, classes, batch), jnp.int32)
  data = {"image": images, "label": labels}
  model = get_model(model_name, num_classes=classes, rngs=nnx.Rngs(0), width=width)
  tx = optax.sgd(0.1, momentum=0.9)
  graphdef, state, opt = init_train_state(model, tx)
  puzzle = msda_jax.PuzzleMix()
  methods = {
    "vanilla": None,
    "mixup": msda_jax.Mixup(),
    "saliencymix": msda_jax.SaliencyMix(),
    "puzzlemix": puzzle,
    **{f"puzzlemix b={b}": puzzle.replace(grid_sizes=(b,)) for b in puzzle.grid_sizes},
  }
  seconds = {}
  for name, method in methods.items():
    mixer = None if method is None else msda_jax.Mixer(method, num_classes=classes)
    step = jax.jit(make_train_step(graphdef=graphdef, tx=tx, mixer=mixer, weight_decay=5e-4))
    if name == "puzzlemix":
      # The grid side the key draws: the mean over 16 keys (the expectation over the uniform draw
      # is the mean of the per-side rows, reported as "puzzlemix expected").
      keys = [jax.random.key(k) for k in range(16)]
      step(state, opt, data, keys[0])
      times = []
      for _ in range(max(1, repeats // 2)):
        for key in keys:
          start = time.perf_counter()
          jax.block_until_ready(step(state, opt, data, key))
          times.append(time.perf_counter() - start)
      seconds[name] = statistics.mean(times)
    else:
      seconds[name] = median_seconds(step, state, opt, data, jax.random.key(0), repeats=repeats)
    print(f"  {name:16s} {1e3 * seconds[name]:9.1f} ms", file=sys.stderr)

  seconds["puzzlemix expected"] = statistics.mean(seconds[f"puzzlemix b={b}"] for b in puzzle.grid_sizes)

  # The parts of a PuzzleMix step.
  def clean_loss(x):
    m = nnx.merge(graphdef, state)
    m.eval()
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(m(x), labels))

  saliency_fn = jax.jit(lambda x: msda_jax.saliency.input_saliency(clean_loss, x))
  saliency = saliency_fn(images)
  seconds["saliency pass"] = median_seconds(saliency_fn, images, repeats=repeats)
  for b in puzzle.grid_sizes:
    mix = jax.jit(
      lambda x, s, b=b: msda_jax.mix_batch(
        jax.random.key(1), x, labels, puzzle.replace(grid_sizes=(b,)), num_classes=classes, saliency=s
      )
    )
    seconds[f"mask b={b}"] = median_seconds(mix, images, saliency, repeats=repeats)
  base = seconds["vanilla"]
  return {
    "model": model_name,
    "width": width,
    "batch": batch,
    "size": size,
    "ms": {k: 1e3 * v for k, v in seconds.items()},
    "ratio_to_vanilla": {k: v / base for k, v in seconds.items()},
  }


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="small_cnn")
  parser.add_argument("--width", type=int, default=None)
  parser.add_argument("--batch", type=int, default=100)
  parser.add_argument("--size", type=int, default=32)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--out", type=pathlib.Path, default=None)
  args = parser.parse_args(argv)
  result = measure(args.model, args.width, args.batch, args.size, args.repeats)
  result["machine"] = {"cpu": cpu_model(), "cores": os.cpu_count(), "backend": jax.default_backend()}
  print(f"{'part':18s} {'ms':>9s} {'x vanilla':>10s}")
  for name, ms in result["ms"].items():
    print(f"{name:18s} {ms:9.1f} {result['ratio_to_vanilla'][name]:10.2f}")
  if args.out is not None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
