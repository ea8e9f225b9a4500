"""The cost of drawing ``lam``: ``jax.random.beta`` against the library's vectorised sampler.

Times, on the default JAX device, ``B`` Beta(1, 1) draws made by ``jax.vmap`` over ``B`` keys
(as a per-example mixing op draws them) with ``jax.random.beta`` and with
``msda_jax.lam_laws.sample_beta``, ``B`` uniform draws as the floor of any sampler, and a per-example
Mixup of a ``B x 32 x 32 x 3`` uint8 batch with ``lam`` drawn and with ``lam`` given. Warm medians
of jitted calls, each call with its own key, and the seconds XLA takes to compile each program
(the sampler is in every mixing program that draws ``lam``, so its compile time is paid by every
train step and test that mixes); last, the summed compile seconds of twelve small ``mix_batch``
programs (six methods, two modes) with ``lam`` drawn and given.

  python -m benchmarks.lam_sampler --batch 128 --repeats 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import msda_jax
from msda_jax import lam_laws


def compile_s(fn: Callable[..., Any], *args: Any) -> float:
  """Seconds to compile ``fn`` for these arguments (traced and lowered first, not counted), cold."""
  jax.clear_caches()
  lowered = fn.lower(jax.random.key(0), *args)
  start = time.perf_counter()
  lowered.compile()
  return time.perf_counter() - start


def median_ms(fn: Callable[..., Any], *args: Any, repeats: int) -> float:
  for i in range(3):
    jax.block_until_ready(fn(jax.random.key(i), *args))
  times = []
  for i in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(jax.random.key(1000 + i), *args))
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--repeats", type=int, default=200)
  args = parser.parse_args(argv)
  batch, alpha = args.batch, jnp.float32(1.0)
  each = lambda draw: jax.jit(lambda key, a: jax.vmap(lambda k: draw(k, a))(jax.random.split(key, batch)))
  rows = {
    "uniform": each(lambda k, a: jax.random.uniform(k)),
    "jax.random.beta": each(lambda k, a: jax.random.beta(k, a, a)),
    "msda_jax.lam_laws.sample_beta": each(lambda k, a: lam_laws.sample_beta(k, a)),
  }
  device = jax.devices()[0]
  print(f"device: {device.platform}: {device.device_kind}; batch {batch}; {args.repeats} timed calls each")
  print("| what | ms | compile s |\n|---|---|---|")
  for name, fn in rows.items():
    seconds = compile_s(fn, alpha)
    print(f"| {batch} draws, {name} | {median_ms(fn, alpha, repeats=args.repeats):.3f} | {seconds:.2f} |")
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8))
  labels = jnp.zeros((batch,), jnp.int32)
  mixer = msda_jax.Mixer(msda_jax.Mixup(), num_classes=100, mode="example")
  drawn = jax.jit(lambda key, x, y, m: m(key, x, y))
  given = jax.jit(
    lambda key, x, y, m: msda_jax.mix_batch(key, x, y, m.method, num_classes=100, mode="example", lam=0.4)
  )
  for name, fn in (("drawn", drawn), ("given", given)):
    seconds = compile_s(fn, images, labels, mixer)
    ms = median_ms(fn, images, labels, mixer, repeats=args.repeats)
    print(f"| Mixup per example, lam {name} | {ms:.3f} | {seconds:.2f} |")
  print_program_compiles()
  return 0


#: the methods of the summed compile: one program per method and mode.
COMPILED_METHODS = ("mixup", "cutmix", "hmix", "bernoulli", "fmix", "stochastic_mixup_cutmix")


def print_program_compiles() -> None:
  """Compile seconds of ``mix_batch`` for each method in ``COMPILED_METHODS`` and mode on a small
  6 x 10 x 13 x 3 batch (as the test suite compiles them), summed, with ``lam`` drawn and given."""
  x, y = jnp.ones((6, 10, 13, 3)), jnp.arange(6) % 5
  print("\n| mix_batch programs (6 x 10 x 13 x 3) | compile s, summed |\n|---|---|")
  for lam in (None, 0.5):
    total = 0.0
    for spec in COMPILED_METHODS:
      for mode in ("batch", "example"):
        step = jax.jit(
          lambda k, m, mode=mode, lam=lam: msda_jax.mix_batch(k, x, y, m, num_classes=5, mode=mode, lam=lam)
        )
        total += compile_s(step, msda_jax.from_string(spec))
    what = "drawn" if lam is None else "given"
    print(f"| {len(COMPILED_METHODS)} methods x 2 modes, lam {what} | {total:.1f} |")


if __name__ == "__main__":
  sys.exit(main())
