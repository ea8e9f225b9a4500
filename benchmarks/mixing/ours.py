"""The library's mixing op and the streaming floor, timed on the same inputs.

The floor is the cheapest pass that does the op's memory traffic: a jitted
``a * x + b * flip(x)`` (the partner of the "reverse" pairing), computed in float32 and
written back in the input dtype. It reads the batch twice and writes it once, as the op
must. The op is ``Mixer(method, mode=...)`` jitted with the mixer as an argument (its
hyper-parameters traced, as a train step passes it), labels included (int32 ids one-hot
encoded and mixed inside the op).
"""

from __future__ import annotations

import re
from typing import Any

import jax
import jax.numpy as jnp

import msda_jax
from benchmarks.mixing import timing
from benchmarks.mixing.cases import Inputs


def floor_fn(a: jax.Array, b: jax.Array, x: jax.Array) -> jax.Array:
  """``a x + b x[::-1]`` in float32, back to the dtype of ``x``."""
  y = a * x.astype(jnp.float32) + b * jnp.flip(x, axis=0).astype(jnp.float32)
  return y.astype(x.dtype)


_floor = jax.jit(floor_fn)


def time_floor(inputs: Inputs, repeats: int) -> float:
  """Median seconds of the streaming floor over the rotated buffers."""
  a, b = jnp.float32(0.3), jnp.float32(0.7)
  return timing.median_seconds(_floor, [(a, b, x) for x in inputs.images], repeats)


def make_mixer(method: str, mode: str, classes: int, spatial_ndim: int = 2) -> msda_jax.Mixer:
  return msda_jax.Mixer(msda_jax.from_string(method), num_classes=classes, mode=mode, spatial_ndim=spatial_ndim)


def mixes(method: str, shape: tuple[int, ...]) -> bool:
  """Whether ``method`` mixes batches of ``shape`` (VideoMix needs videos, RICAP images, ...)."""
  try:
    msda_jax.from_string(method).check_input(tuple(shape[1:-1]), shape[0])  # type: ignore[union-attr]
  except ValueError:
    return False
  return True


def _apply(mixer: msda_jax.Mixer, key: jax.Array, images: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
  return mixer(key, images, labels)


mix = jax.jit(_apply)


def hlo_stats(text: str) -> dict[str, int]:
  """Counts in an optimised HLO module.

  Top-level fusions and copies (kernels launched, buffers copied) in the entry computation;
  sorts, gathers, transposes, FFTs and dots anywhere (the costly non-elementwise work).
  """
  entry = text.split("\nENTRY", 1)[-1]
  count = lambda pattern, where: len(re.findall(pattern, where))
  return {
    "fusions": count(r" fusion\(", entry),
    "copies": count(r" copy\(", entry),
    "sorts": count(r" sort\(", text),
    "gathers": count(r" gather\(", text),
    "transposes": count(r" transpose\(", text),
    "ffts": count(r" fft\(", text),
    "dots": count(r" dot\(", text),
  }


def measure(method: str, mode: str, inputs: Inputs, repeats: int, floor_s: float, seed: int = 0) -> dict[str, Any]:
  """Times one (method, mode) on ``inputs``; returns a JSON record (ratios against ``floor_s``)."""
  mixer = make_mixer(method, mode, inputs.num_classes, spatial_ndim=len(inputs.shape) - 2)
  keys = jax.random.split(jax.random.key(seed), len(inputs.images))
  calls = [(mixer, keys[i], x, y) for i, (x, y) in enumerate(zip(inputs.images, inputs.labels, strict=True))]
  compiled = mix.lower(*calls[0]).compile()
  memory = compiled.memory_analysis()
  temp = int(memory.temp_size_in_bytes) if memory is not None else None
  out_images, out_targets = jax.block_until_ready(mix(*calls[0]))
  seconds = timing.median_seconds(mix, calls, repeats)
  rss = timing.peak_rss_growth(lambda: mix(*calls[1 % len(calls)]))
  return {
    "method": method,
    "mode": mode,
    "shape": list(inputs.shape),
    "dtype": inputs.dtype,
    "output_dtype": str(out_images.dtype),
    "targets_shape": list(out_targets.shape),
    "median_s": seconds,
    "floor_s": floor_s,
    "ratio_to_floor": seconds / floor_s,
    "temp_bytes": temp,
    "temp_batches": None if temp is None else temp / inputs.batch_bytes,
    "peak_rss_growth_batches": None if rss is None else rss / inputs.batch_bytes,
    "hlo": hlo_stats(compiled.as_text()),
    "repeats": repeats,
    "buffers": len(inputs.images),
  }
