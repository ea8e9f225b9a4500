"""Monte Carlo moments of ``1 - M`` for any mask law: the coefficients ``a_jk`` of Eq. (9).

For a mask law ``key -> (lam, M)`` (``msda_jax.theory.laws``) the first and second moments of
``1 - M`` over the flattened spatial grid (``d = prod(shape)`` pixels, row-major, as
``M.reshape(-1)``) are

    mean_j = E[1 - M_j],        second_jk = E[(1 - M_j)(1 - M_k)] = a_jk   (Eq. 9).

With ``fixed_lam_law`` this is ``a_jk(lam)``; with ``msda_law``, ``printed_law`` or ``swap_law``
it is the coefficient averaged over the corresponding law of ``lam`` (Theorem 1). Draws are
vmapped in chunks and reduced with one matrix product per chunk under ``jax.lax.scan``, so the
memory is ``chunk_size x d`` plus a few ``d x d`` accumulators.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from msda_jax.theory._chunks import chunked_sum, mean_and_stderr
from msda_jax.theory.laws import MaskLaw


class MaskMoments(NamedTuple):
  """Sampled moments of ``1 - M`` (float32 JAX arrays).

  Attributes:
    mean: ``[d]`` estimate of ``E[1 - M_j]``.
    second: ``[d, d]`` estimate of ``a_jk = E[(1 - M_j)(1 - M_k)]`` (Eq. 9).
    mean_stderr: ``[d]`` standard error of ``mean``.
    second_stderr: ``[d, d]`` standard error of ``second``.
    num_draws: number of sampled masks.
  """

  mean: jax.Array
  second: jax.Array
  mean_stderr: jax.Array
  second_stderr: jax.Array
  num_draws: int


def mask_moments(key: jax.Array, law: MaskLaw, *, num_draws: int, chunk_size: int = 512) -> MaskMoments:
  """Monte Carlo estimate of ``E[1 - M]`` and ``a_jk = E[(1 - M_j)(1 - M_k)]`` (Eq. 9).

  Draw ``t`` uses the ``t``-th key of ``jax.random.split(key, padded)``, the same split as
  ``translation_map_monte_carlo``, so both see the same masks for the same arguments.

  Args:
    key: a PRNG key (typed, ``jax.random.key``).
    law: a mask law ``key -> (lam, M)`` with ``M`` of a static spatial shape.
    num_draws: static number of masks, >= 1.
    chunk_size: static number of masks vmapped at once; memory is ``chunk_size x d``.

  Returns:
    ``MaskMoments`` over the flattened grid (``d = M.size``, row-major).

  >>> import msda_jax
  >>> from msda_jax.theory.laws import fixed_lam_law
  >>> law = fixed_lam_law(msda_jax.Bernoulli(), 0.5, shape=(2, 2))
  >>> moments = mask_moments(jax.random.key(0), law, num_draws=4000)
  >>> moments.second.shape
  (4, 4)
  >>> bool(abs(moments.second[0, 0] - 0.5) < 5 * moments.second_stderr[0, 0])  # (1 - lam) on the diagonal
  True
  """

  def chunk_fn(keys: jax.Array, weights: jax.Array) -> tuple[jax.Array, ...]:
    _, masks = jax.vmap(law)(keys)
    x = 1.0 - masks.reshape(keys.shape[0], -1).astype(jnp.float32)
    x2 = x * x
    wx, wx2 = weights[:, None] * x, weights[:, None] * x2
    highest = jax.lax.Precision.HIGHEST
    return (
      wx.sum(0),
      wx2.sum(0),
      jnp.matmul(x.T, wx, precision=highest),
      jnp.matmul(x2.T, wx2, precision=highest),
    )

  sum_x, sum_x2, sum_xx, sum_xx2 = chunked_sum(key, chunk_fn, num_draws=num_draws, chunk_size=chunk_size)
  mean, mean_stderr = mean_and_stderr(sum_x, sum_x2, num_draws)
  second, second_stderr = mean_and_stderr(sum_xx, sum_xx2, num_draws)
  return MaskMoments(mean, second, mean_stderr, second_stderr, int(num_draws))
