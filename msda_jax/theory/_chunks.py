"""Chunked Monte Carlo sums with bounded memory, shared by the sampled coefficient estimators.

``num_draws`` keys are split from one key, grouped into chunks of ``chunk_size`` (the last one
padded with zero-weight draws) and reduced chunk by chunk under ``jax.lax.scan``: only one
chunk's draws and the running sums are alive at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

ChunkFn = Callable[[jax.Array, jax.Array], Any]


def chunked_sum(key: jax.Array, chunk_fn: ChunkFn, *, num_draws: int, chunk_size: int) -> Any:
  """Sums ``chunk_fn(keys, weights)`` over ``ceil(num_draws / chunk_size)`` chunks.

  ``chunk_fn`` receives ``[chunk]`` keys and float ``[chunk]`` weights (1 for a real draw, 0 for
  padding) and returns a pytree of weighted sums over its chunk; the result is the pytree of
  totals. Draw ``t`` always uses the ``t``-th key of ``jax.random.split(key, padded)``, so two
  estimators given the same key, ``num_draws`` and ``chunk_size`` see the same masks.

  Args:
    key: a PRNG key.
    chunk_fn: ``(keys [chunk], weights [chunk]) -> pytree`` of weighted sums.
    num_draws: static number of draws, >= 1.
    chunk_size: static number of draws per chunk, >= 1 (capped at ``num_draws``).

  Returns:
    the pytree of sums over all draws.

  >>> ones = lambda keys, w: w.sum()
  >>> float(chunked_sum(jax.random.key(0), ones, num_draws=10, chunk_size=4))
  10.0
  """
  num_draws, chunk_size = int(num_draws), int(chunk_size)
  if num_draws < 1 or chunk_size < 1:
    raise ValueError(f"num_draws and chunk_size must be >= 1; got {num_draws} and {chunk_size}.")
  chunk_size = min(chunk_size, num_draws)
  num_chunks = -(-num_draws // chunk_size)
  keys = jax.random.split(key, num_chunks * chunk_size).reshape(num_chunks, chunk_size)
  weights = (jnp.arange(num_chunks * chunk_size) < num_draws).astype(jnp.float32).reshape(num_chunks, chunk_size)
  shapes = jax.eval_shape(chunk_fn, keys[0], weights[0])
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

  def step(total: Any, chunk: tuple[jax.Array, jax.Array]) -> tuple[Any, None]:
    return jax.tree.map(jnp.add, total, chunk_fn(*chunk)), None

  total, _ = jax.lax.scan(step, zeros, (keys, weights))
  return total


def mean_and_stderr(total: jax.Array, total_sq: jax.Array, num_draws: int) -> tuple[jax.Array, jax.Array]:
  """Sample mean and its standard error from the sums of values and of squared values.

  The standard error is ``sqrt(s^2 / n)`` with the unbiased sample variance ``s^2`` (0 when
  ``n = 1``); float rounding below zero is clipped.

  >>> m, se = mean_and_stderr(jnp.array(3.0), jnp.array(5.0), 2)  # draws 1 and 2
  >>> float(m), round(float(se), 6)
  (1.5, 0.5)
  """
  mean = total / num_draws
  variance = jnp.maximum(total_sq / num_draws - mean**2, 0.0) * (num_draws / max(num_draws - 1, 1))
  return mean, jnp.sqrt(variance / num_draws)
