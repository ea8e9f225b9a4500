"""Gamma and Beta draws in one vectorised pass: Marsaglia-Tsang with several proposals at once.

``jax.random.gamma`` runs Marsaglia and Tsang's rejection sampler as a ``while`` loop around
each draw (and a second loop around each normal). On a GPU every loop iteration waits for the
device, and those draws are most of a per-example Mixup of a small batch
(``benchmarks/README.md``). Here every draw makes
``proposals`` (x, u) pairs at once and keeps the first accepted one, in a ``while`` loop that
makes another round only while some draw has had every proposal rejected, so the law is exactly
the sampler's (the first accepted proposal of an i.i.d. sequence) and the loop almost never runs
twice: a proposal is accepted with probability above 0.95, so with 4 a draw needs a second round
with probability below 1e-5.

The program is small, so it compiles fast (the sampler is in most mixing programs): a round's
random words are one Threefry-2x32 hash of counters (the round, the word's position) under the
key's words, computed where they are used, and the normals are Box-Muller's
(``sqrt(-2 log u1) cos(2 pi u2)``), so the proposal code appears once in the program, with no
nested loop, no key splitting and no inverse error function. The round counters carry a tag bit
that ``jax.random`` never sets for draws below ``2^63`` words, so the words are apart from any
``jax.random`` draw made with the same key. A key of another implementation draws its words with
``jax.random.bits`` from the key folded with the round.

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
by 0. Uniforms take 23 random bits and lie in the open interval ``(0, 1)`` (``2^-24`` to
``1 - 2^-24``), so every logarithm is finite and the normals reach 5.7 standard deviations.
Realisations differ from ``jax.random.gamma``'s for the same key; the law is the same. Not
differentiable in the concentrations (they enter through a rejection step).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from msda_jax import _backend, _bits

#: proposals per draw and round.
PROPOSALS = 4
#: rounds after which a draw that was never accepted is NaN (bounds the loop for every input).
MAX_ROUNDS = 16
#: smallest shape used; smaller positive shapes are raised to it (keeps ``log U / a`` finite).
MIN_SHAPE = 1e-30
#: high counter word of this sampler's hashes: the tag bit, or-ed with the round (``MAX_ROUNDS``
#: is the stream of the ``a < 1`` boost's uniforms).
_TAG = 0x80000000


def _words(key: jax.Array, stream: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """uint32 ``[*shape]``: the random words of ``stream`` (a round, or ``MAX_ROUNDS``) for ``key``."""
  size = math.prod(shape)
  if not 0 < size < 2**32:
    raise ValueError(f"a Gamma draw of shape {shape} needs 1 to 2^32 - 1 words per round; got {size}.")
  if not _bits.is_threefry(key):
    return jax.random.bits(jax.random.fold_in(key, stream), shape, jnp.uint32)
  k0, k1 = _bits.key_words(key)
  position = jnp.arange(size, dtype=jnp.uint32).reshape(shape)
  high = jnp.broadcast_to(jnp.asarray(stream).astype(jnp.uint32) | jnp.uint32(_TAG), shape)
  x0, x1 = _bits.threefry2x32(k0, k1, high, position)
  return x0 ^ x1


def _open_unit(words: jax.Array) -> jax.Array:
  """float32 uniforms on ``(0, 1)`` from the top 23 bits: ``(k + 1/2) 2^-23``, exact in float32."""
  return ((words >> jnp.uint32(9)).astype(jnp.float32) + jnp.float32(0.5)) * jnp.float32(2.0**-23)


def _propose(key: jax.Array, round_: jax.Array, d: jax.Array, c: jax.Array, proposals: int) -> jax.Array:
  """One round: ``log v`` of the first accepted proposal, like ``d``; NaN where none is accepted."""
  radius, angle, accept = _open_unit(_words(key, round_, (3, *d.shape, proposals)))
  x = jnp.sqrt(-2.0 * jnp.log(radius)) * jnp.cos(jnp.float32(2.0 * np.pi) * angle)
  d_k, c_k = d[..., None], c[..., None]
  v = (1.0 + c_k * x) ** 3
  positive = v > 0.0
  log_v = jnp.log(jnp.where(positive, v, 1.0))
  ok = positive & (jnp.log(accept) < 0.5 * x * x + d_k - d_k * v + d_k * log_v)
  # The first accepted proposal, as selects from the last one down: elementwise, and one result
  # (log v is finite where accepted), so the round is one fused pass over its words.
  first = jnp.full(d.shape, jnp.nan, jnp.float32)
  for p in range(proposals - 1, -1, -1):
    first = jnp.where(ok[..., p], log_v[..., p], first)
  return first


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

  def another_round(carry: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
    round_, log_v = carry
    return round_ + 1, jnp.where(jnp.isnan(log_v), _propose(key, round_, d, c, proposals), log_v)

  # One copy of the proposal code, in the loop (it runs once, rarely twice): a small program. The
  # carry is log v, NaN while a draw has had every proposal rejected. Invalid shapes start at 0
  # (their result is NaN below), so they never extend the loop. Made from the key's data and d,
  # so that inside shard_map it varies over mesh axes as the rounds will.
  initial = _backend.varying_like(jnp.where(valid, jnp.nan, 0.0), key, d)

  def rejected_left(carry: tuple[jax.Array, jax.Array]) -> jax.Array:
    round_, log_v = carry
    return (round_ < MAX_ROUNDS) & jnp.any(jnp.isnan(log_v))

  _, log_v = lax.while_loop(rejected_left, another_round, (jnp.int32(0), initial))
  # The a < 1 boost's uniforms: the stream after the last round.
  log_u = jnp.log(_open_unit(_words(key, jnp.int32(MAX_ROUNDS), shape)))
  log_g = jnp.log(d) + log_v + jnp.where(boost, log_u / a, 0.0)
  return jnp.where(valid, log_g, jnp.nan)


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
