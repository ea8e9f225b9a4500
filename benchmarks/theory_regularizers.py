"""Cost of the scalable R2/R3 estimate against one forward-backward pass of the same model.

For a PreActResNet-18 (100 classes, eval-mode BatchNorm) at 32 x 32 (and optionally 64 x 64),
times, in one run and on the same inputs:

* the baseline: one jitted forward-backward pass (``jax.value_and_grad`` of the mean softmax
  cross-entropy with respect to the parameters) over a batch;
* ``msda_jax.theory.regularizers_sampled`` (general form, CutMix swap law): for every example
  and draw one nested ``jax.jvp`` (the directional derivative ``J u`` and the Hessian-vector
  form ``u^T nabla^2 f u``), no ``d x d`` matrix.

Both are warm (compiled first) medians over repeats, per example; the ratio is the cost of one
draw of the R1-R3 estimate per example in units of one forward-backward pass per example. A
ReLU network is piecewise linear in its input, so its input Hessian, and R3, vanish almost
everywhere: the nested ``jvp`` returns exact zeros there.

    python -m benchmarks.theory_regularizers --sizes 32 64 --out benchmarks/results/theory_regularizers.json
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
import optax
from flax import nnx

import msda_jax
from benchmarks.mixing.machine import cpu_model
from msda_jax.theory import laws, regularizers_sampled
from msda_jax.train import get_model


def median_seconds(fn, *args, repeats: int) -> float:
  jax.block_until_ready(fn(*args))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def measure(size: int, batch: int, draws: int, repeats: int) -> dict:
  model = get_model("preact_resnet18", num_classes=100, rngs=nnx.Rngs(0))
  model.eval()
  graphdef, state = nnx.split(model)
  params, rest = state.split(nnx.Param, ...)
  key_x, key_y = jax.random.split(jax.random.key(1))
  images = jax.random.normal(key_x, (batch, size, size, 3))
  labels = jax.nn.one_hot(jax.random.randint(key_y, (batch,), 0, 100), 100)

  def loss(p, x, y):
    logits = nnx.merge(graphdef, p, rest)(x)
    return optax.softmax_cross_entropy(logits, y).mean()

  forward_backward = jax.jit(jax.value_and_grad(loss))
  f = lambda x: nnx.merge(graphdef, params, rest)(x[None])[0]
  law = laws.swap_law(msda_jax.CutMix(), 1.0, shape=(size, size))
  estimate = jax.jit(
    lambda k, x, y: regularizers_sampled(k, f, x, y, law, form="general", loss="softmax", num_samples=draws)
  )
  t_fb = median_seconds(forward_backward, params, images, labels, repeats=repeats)
  t_reg = median_seconds(estimate, jax.random.key(2), images, labels, repeats=repeats)
  result = estimate(jax.random.key(2), images, labels)
  per_draw = t_reg / (batch * draws)
  return {
    "size": size,
    "batch": batch,
    "draws_per_example": draws,
    "forward_backward_s_per_example": t_fb / batch,
    "estimate_s_per_example_per_draw": per_draw,
    "ratio_per_draw": per_draw / (t_fb / batch),
    "r2": float(result.r2),
    "r2_stderr": float(result.r2_stderr),
    "r3": float(result.r3),
    "r3_stderr": float(result.r3_stderr),
  }


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--sizes", type=int, nargs="+", default=[32])
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--draws", type=int, default=2)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results/theory_regularizers.json"))
  args = parser.parse_args(argv)
  rows = [measure(size, args.batch, args.draws, args.repeats) for size in args.sizes]
  machine = {"device": str(jax.devices()[0].device_kind), "processor": cpu_model(), "cores": os.cpu_count()}
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps({"machine": machine, "jax": jax.__version__, "rows": rows}, indent=2))
  print("size  fwd-bwd ms/example  R1-R3 draw ms/example  ratio   R2 (+- se)            R3 (+- se)")
  for r in rows:
    print(
      f"{r['size']:>4}  {1e3 * r['forward_backward_s_per_example']:>18.2f}"
      f"  {1e3 * r['estimate_s_per_example_per_draw']:>21.2f}"
      f"  {r['ratio_per_draw']:>5.2f}   {r['r2']:.3e} +- {r['r2_stderr']:.1e}  {r['r3']:.3e} +- {r['r3_stderr']:.1e}"
    )
  print(f"written to {args.out.resolve()}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
