"""The cost of the optimal-transport pairing: ``mix_batch`` with ``pairing="transport"`` against ``"roll"``.

Times, on the default JAX device, a per-batch Mixup of ``B x 32 x 32 x 3`` float32 images with the
``"roll"`` partners (no data read to pair) and with k-mixup's matching for several chunk sizes
``k`` (``B / k`` chunks, each matched to the next by the exact assignment,
``msda_jax._assignment``). Warm medians of jitted calls over rotated inputs, each call with its
own key; the ratio to ``"roll"`` is measured in the same run. Also the seconds XLA takes to compile
each program.

  python -m benchmarks.transport_pairing --batch 256 --k 2 4 8 16 32 64 --repeats 30
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

import msda_jax
from benchmarks.mixing.timing import median_seconds


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batch", type=int, default=256)
  parser.add_argument("--k", type=int, nargs="+", default=[2, 4, 8, 16, 32, 64])
  parser.add_argument("--repeats", type=int, default=30)
  args = parser.parse_args(argv)
  rng = np.random.default_rng(0)
  inputs = [jnp.asarray(rng.normal(size=(args.batch, 32, 32, 3)), jnp.float32) for _ in range(4)]
  labels = jnp.arange(args.batch) % 10
  calls = [(jax.random.key(i), x, labels) for i, x in enumerate(inputs)]
  rows = []
  for pairing, k in [("roll", None)] + [("transport", k) for k in args.k]:
    options = {"pairing": pairing} | ({"transport_k": k} if k else {})

    def mix(key: jax.Array, x: jax.Array, y: jax.Array, options: dict = options) -> jax.Array:
      return msda_jax.mix_batch(key, x, y, msda_jax.Mixup(), num_classes=10, **options)[0]

    fn = jax.jit(mix)
    lowered = fn.lower(*calls[0])
    start = time.perf_counter()
    lowered.compile()
    compile_s = time.perf_counter() - start
    seconds = median_seconds(fn, calls, args.repeats)
    rows.append({"pairing": pairing, "k": k, "ms": round(seconds * 1e3, 3), "compile_s": round(compile_s, 2)})
  base = rows[0]["ms"]
  for row in rows:
    row["over_roll"] = round(row["ms"] / base, 2)
    print(json.dumps(row))


if __name__ == "__main__":
  main()
