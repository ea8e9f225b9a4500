"""Gamma and Beta draws in one vectorised pass: Marsaglia-Tsang with several proposals at once.

``jax.random.gamma`` runs Marsaglia and Tsang's rejection sampler as a ``while`` loop around
each draw (and a second loop around each normal). On a GPU every loop iteration waits for the
device, and those draws are most of a per-example Mixup of a small batch
(``benchmarks/README.md``). Here every draw makes
``proposals`` (x, u) pairs at once and keeps the first accepted one, in a ``while`` loop that
makes another round only while some draw has had every proposal rejected, so the law is exactly
the sampler's (the first accepted proposal of an i.i.d. sequence) and the loop almost never runs
twice: a proposal is accepted with probability above 0.95, so with 4 a draw needs a second round
with probability below 1e-5. The proposal code appears once in the program (no nested loops).

The loop is bounded: after ``MAX_ROUNDS`` rounds (``4 x 16`` proposals, each accepted with
probability above 0.95, so a valid draw reaches the bound with probability below 1e-80) a draw
still rejected is NaN. A shape that is not a finite number > 0 (NaN, 0, negative, infinite)
gives NaN at once and takes no part in the loop's condition, so no input can keep it running.
Shapes below ``MIN_SHAPE`` are raised to it: the law is then a point mass at 0 to float32
precision either way, and ``log G`` stays finite.

Marsaglia and Tsang (2000), for shape ``a >= 1``: with ``d = a - 1/3`` and ``c = 1 / sqrt(9 d)``,
draw ``x ~ N(0, 1)``, ``u ~ U(0, 1)``, ``v = (1 + c x)^3``; accept ``d v`` when ``v > 0`` and
``log u < x^2 / 2 + d - d v + d log v``. For ``a < 1``, ``G(a) = G(a + 1) U^(1/a)``. Everything is
in log space (``log G``), so Beta draws with small concentrations neither underflow nor divide 0
by 0. Realisations differ from ``jax.random.gamma``'s for the same key; the law is the same. Not
differentiable in the concentrations (they enter through a rejection step).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from msda_jax import _backend, _bits

#: proposals per draw and round.
PROPOSALS = 4
#: rounds after which a draw that was never accepted is NaN (bounds the loop for every input).
MAX_ROUNDS = 16
#: smallest shape used; smaller positive shapes are raised to it (keeps ``log U / a`` finite).
MIN_SHAPE = 1e-30


def _propose(key: jax.Array, d: jax.Array, c: jax.Array, proposals: int) -> tuple[jax.Array, jax.Array]:
  """One round: ``(accepted, log v of the first accepted proposal)``, each like ``d``."""
  key_x, key_u = jax.random.split(key)
  shape = (*d.shape, proposals)
  # jax.random.normal's and .uniform's draws, made where they are used (_bits).
  x = _bits.normal(key_x, shape)
  log_u = jnp.log(_bits.uniform(key_u, shape))
  d_k, c_k = d[..., None], c[..., None]
  v = (1.0 + c_k * x) ** 3
  positive = v > 0.0
  log_v = jnp.log(jnp.where(positive, v, 1.0))
  ok = positive & (log_u < 0.5 * x * x + d_k - d_k * v + d_k * log_v)
  first = jnp.argmax(ok, axis=-1)
  return jnp.any(ok, axis=-1), jnp.take_along_axis(log_v, first[..., None], axis=-1)[..., 0]


def log_gamma(key: jax.Array, a: ArrayLike, shape: tuple[int, ...] = (), *, proposals: int = PROPOSALS) -> jax.Array:
  """``log G`` for ``G ~ Gamma(a, 1)``, float32 ``[*shape]``.

  Args:
    key: a PRNG key.
    a: shape parameter, > 0 (traced), broadcastable to ``shape``.
    shape: static shape of the draw.
    proposals: static number of proposals per draw and round, >= 1.

  Returns:
    float32 ``[*shape]``; NaN where ``a`` is not a finite number > 0.

  >>> bool(jnp.isfinite(log_gamma(jax.random.key(0), 2.0)))
  True
  >>> bool(jnp.isnan(log_gamma(jax.random.key(0), jnp.inf)))
  True
  """
  if not isinstance(proposals, int) or proposals < 1:
    raise ValueError(f"proposals must be a positive int; got {proposals!r}.")
  a = lax.stop_gradient(jnp.broadcast_to(jnp.asarray(a, jnp.float32), shape))
  valid = jnp.isfinite(a) & (a > 0.0)
  a = jnp.where(valid, jnp.maximum(a, MIN_SHAPE), 1.0)
  boost = a < 1.0
  d = jnp.where(boost, a + 1.0, a) - 1.0 / 3.0
  c = lax.rsqrt(9.0 * d)
  key_rounds, key_boost = jax.random.split(key)

  def another_round(carry: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array, jax.Array]:
    round_, accepted, log_v = carry
    now, log_v_now = _propose(jax.random.fold_in(key_rounds, round_), d, c, proposals)
    return round_ + 1, accepted | now, jnp.where(accepted, log_v, log_v_now)

  # One copy of the proposal code, in the loop (it runs once, rarely twice): a small program.
  # Zeros that vary over mesh axes (inside shard_map) as the rounds will: made from the key's
  # data and d, as the rounds are.
  zero = _backend.varying_like(jnp.zeros_like(d), key_rounds, d)
  # Invalid shapes count as accepted (their result is NaN below): they never extend the loop.
  initial = (jnp.int32(0), (zero > 0.0) | ~valid, zero)

  def rejected_left(carry: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
    round_, accepted, _ = carry
    return (round_ < MAX_ROUNDS) & ~jnp.all(accepted)

  _, accepted, log_v = lax.while_loop(rejected_left, another_round, initial)
  # log U for U = 1 - uniform, in (0, 1]: finite.
  log_u = jnp.log1p(-_bits.uniform(key_boost, shape))
  log_g = jnp.log(d) + log_v + jnp.where(boost, log_u / a, 0.0)
  return jnp.where(valid & accepted, log_g, jnp.nan)


def beta(
  key: jax.Array, a: ArrayLike, b: ArrayLike, shape: tuple[int, ...] = (), *, proposals: int = PROPOSALS
) -> jax.Array:
  """``Beta(a, b)`` draws as ``G_a / (G_a + G_b)`` from ``log_gamma``, float32 ``[*shape]``.

  Both Gamma draws come from one ``log_gamma`` call (one loop for the pair). NaN where ``a`` or
  ``b`` is not a finite number > 0.

  >>> lam = beta(jax.random.key(0), 0.4, 0.4, (3,))
  >>> bool(((lam >= 0) & (lam <= 1)).all())
  True
  """
  both = jnp.stack(
    [jnp.broadcast_to(jnp.asarray(a, jnp.float32), shape), jnp.broadcast_to(jnp.asarray(b, jnp.float32), shape)]
  )
  log_a, log_b = log_gamma(key, both, (2, *shape), proposals=proposals)
  return jnp.exp(log_a - jnp.logaddexp(log_a, log_b))
