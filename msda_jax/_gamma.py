"""Gamma and Beta draws in one vectorised pass: Marsaglia-Tsang with every proposal made at once.

``jax.random.gamma`` runs Marsaglia and Tsang's rejection sampler as a ``while`` loop around
each draw (and a second loop around each normal). On a GPU every loop iteration waits for the
host to read its predicate, and under a sharded batch the predicate is a barrier across devices.
Here, on an accelerator, every draw makes ``rounds x proposals`` (x, u) pairs side by side (2 x 4
by default) and keeps the first accepted one: one fused pass with no loop and no branch. On the
CPU (``_backend.by_platform``), where a loop costs little and every word costs its hash, the
rounds are made in turn, a round only while some draw has had all its proposals rejected: the
same draws, about half the words. A proposal is accepted with
probability above 0.95 (0.951 at the smallest ``d = 2/3``), so all eight are rejected with
probability below ``0.049^8 < 4e-11``; that draw is then ``d`` (``log v = 0``, the mode of the
proposal's law), a defined result whose weight in the law is below 4e-11. Up to that event the
draw is the sampler's (the first accepted proposal of an i.i.d. sequence), and the realisation
is that of a loop making rounds of ``proposals`` until one is accepted.

The program is small, so it compiles fast (the sampler is in most mixing programs): the random
words are one Threefry-2x32 hash of counters (the round, the word's position) under the key's
words, computed where they are used, and the normals are Box-Muller's
(``sqrt(-2 log u1) cos(2 pi u2)``), so the proposal code appears once in the program, with no
key splitting and no inverse error function. The round counters carry a tag bit that
``jax.random`` never sets for draws below ``2^63`` words, so the words are apart from any
``jax.random`` draw made with the same key. A key of another implementation draws its words with
``jax.random.bits`` from the key folded with the round.

A shape that is not a finite number > 0 (NaN, 0, negative, infinite) gives NaN. Shapes below
``MIN_SHAPE`` are raised to it: the law is then a point mass at 0 to float32 precision either
way, and ``log G`` stays finite.

Marsaglia and Tsang (2000), for shape ``a >= 1``: with ``d = a - 1/3`` and ``c = 1 / sqrt(9 d)``,
draw ``x ~ N(0, 1)``, ``u ~ U(0, 1)``, ``v = (1 + c x)^3``; accept ``d v`` when ``v > 0`` and
``log u < x^2 / 2 + d - d v + d log v``. For ``a < 1``, ``G(a) = G(a + 1) U^(1/a)``. Everything is
in log space (``log G``), so Beta draws with small concentrations neither underflow nor divide 0
by 0. Uniforms take 23 random bits and lie in the open interval ``(0, 1)`` (``2^-24`` to
``1 - 2^-24``), so every logarithm is finite and the normals reach 5.7 standard deviations.
Realisations differ from ``jax.random.gamma``'s for the same key; the law is the same. Not
differentiable in the concentrations (they enter through a rejection step).

``beta`` turns two log-Gamma draws into ``lam = G_a / (G_a + G_b)`` as a logistic of
``t = log G_a - log G_b`` computed on the side where it is small: ``min(lam, 1 - lam) =
e^-|t| / (1 + e^-|t|)`` to a few float32 ulps, and the other side as ``1`` minus it, one rounding.
So ``lam`` next to 1 is rounded like a correctly rounded float32 Beta (``exp(log G_a -
logaddexp(log G_a, log G_b))`` loses the small difference in the ulps of ``log G_a`` and puts
too many draws at exactly 1).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from msda_jax import _backend, _bits

#: proposals per draw in a round.
PROPOSALS = 4
#: rounds of proposals per draw, made side by side (the first accepted proposal is the draw).
ROUNDS = 2
#: smallest shape used; smaller positive shapes are raised to it (keeps ``log U / a`` finite).
MIN_SHAPE = 1e-30
#: high counter word of this sampler's hashes: the tag bit, or-ed with the round (``BOOST_STREAM``
#: is the stream of the ``a < 1`` boost's uniforms).
_TAG = 0x80000000
#: the stream of the boost's uniforms (after any round a loop of the same draws would make).
BOOST_STREAM = 16


def _words(key: jax.Array, streams: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """uint32 ``[len(streams), *shape]``: the random words of each stream (int32 ``[R]``: rounds,
  or ``BOOST_STREAM``) for ``key``, in one hash."""
  size = math.prod(shape)
  if not 0 < size < 2**32:
    raise ValueError(f"a Gamma draw of shape {shape} needs 1 to 2^32 - 1 words per round; got {size}.")
  streams = jnp.asarray(streams, jnp.int32)
  if not _bits.is_threefry(key):
    return jax.vmap(lambda s: jax.random.bits(jax.random.fold_in(key, s), shape, jnp.uint32))(streams)
  k0, k1 = _bits.key_words(key)
  position = jnp.arange(size, dtype=jnp.uint32).reshape(1, *shape)
  high = (streams.astype(jnp.uint32) | jnp.uint32(_TAG)).reshape(-1, *(1 for _ in shape))
  x0, x1 = _bits.threefry2x32(k0, k1, high, position)
  return x0 ^ x1


def _open_unit(words: jax.Array) -> jax.Array:
  """float32 uniforms on ``(0, 1)`` from the top 23 bits: ``(k + 1/2) 2^-23``, exact in float32."""
  return ((words >> jnp.uint32(9)).astype(jnp.float32) + jnp.float32(0.5)) * jnp.float32(2.0**-23)


def _propose(key: jax.Array, rounds: jax.Array, d: jax.Array, c: jax.Array, proposals: int) -> jax.Array:
  """``log v`` of the first accepted of the ``proposals`` of each round in ``rounds`` (int32
  ``[R]``, in that order), like ``d``; NaN where none is accepted."""
  rounds = jnp.asarray(rounds, jnp.int32)
  words = _words(key, rounds, (3, *d.shape, proposals))
  # [rounds, 3, *S, P] -> three [*S, rounds * P], in the order a loop of rounds would make them.
  count = rounds.shape[0] * proposals
  radius, angle, accept = jnp.moveaxis(_open_unit(words), 0, -2).reshape(3, *d.shape, count)
  x = jnp.sqrt(-2.0 * jnp.log(radius)) * jnp.cos(jnp.float32(2.0 * np.pi) * angle)
  d_k, c_k = d[..., None], c[..., None]
  v = (1.0 + c_k * x) ** 3
  positive = v > 0.0
  log_v = jnp.log(jnp.where(positive, v, 1.0))
  ok = positive & (jnp.log(accept) < 0.5 * x * x + d_k - d_k * v + d_k * log_v)
  # The first accepted proposal, as selects from the last one down: elementwise, and one result
  # (log v is finite where accepted), so the draw is one fused pass over its words.
  first = jnp.full(d.shape, jnp.nan, jnp.float32)
  for p in range(count - 1, -1, -1):
    first = jnp.where(ok[..., p], log_v[..., p], first)
  return first


def log_gamma(
  key: jax.Array, a: ArrayLike, shape: tuple[int, ...] = (), *, proposals: int = PROPOSALS, rounds: int = ROUNDS
) -> jax.Array:
  """``log G`` for ``G ~ Gamma(a, 1)``, float32 ``[*shape]``, with no loop and no branch.

  Args:
    key: a PRNG key.
    a: shape parameter, > 0 (traced), broadcastable to ``shape``.
    shape: static shape of the draw.
    proposals: static number of proposals per draw and round, >= 1.
    rounds: static number of rounds, >= 1, all made side by side; a draw with every one of its
      ``rounds x proposals`` proposals rejected is ``d`` (``log v = 0``).

  Returns:
    float32 ``[*shape]``; NaN where ``a`` is not a finite number > 0.

  >>> bool(jnp.isfinite(log_gamma(jax.random.key(0), 2.0)))
  True
  >>> bool(jnp.isnan(log_gamma(jax.random.key(0), jnp.inf)))
  True
  """
  if not isinstance(proposals, int) or proposals < 1:
    raise ValueError(f"proposals must be a positive int; got {proposals!r}.")
  if not isinstance(rounds, int) or not 1 <= rounds <= BOOST_STREAM:
    raise ValueError(f"rounds must be an int from 1 to {BOOST_STREAM}; got {rounds!r}.")
  a = lax.stop_gradient(jnp.broadcast_to(jnp.asarray(a, jnp.float32), shape))
  valid = jnp.isfinite(a) & (a > 0.0)
  a = jnp.where(valid, jnp.maximum(a, MIN_SHAPE), 1.0)
  boost = a < 1.0
  d = jnp.where(boost, a + 1.0, a) - 1.0 / 3.0
  c = lax.rsqrt(9.0 * d)

  def side_by_side(d: jax.Array, c: jax.Array) -> jax.Array:
    return _propose(key, jnp.arange(rounds), d, c, proposals)

  def in_turn(d: jax.Array, c: jax.Array) -> jax.Array:
    # The CPU's form: a round only while a draw has every proposal so far rejected (the first
    # round always; a second one for one draw in about 170,000). The same draws.
    def another(state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
      t, found = state
      return t + 1, jnp.where(jnp.isnan(found), _propose(key, t[None], d, c, proposals), found)

    first = _propose(key, jnp.zeros((1,), jnp.int32), d, c, proposals)
    searching = lambda state: (state[0] < rounds) & jnp.any(jnp.isnan(state[1]))
    return lax.while_loop(searching, another, (jnp.int32(1), first))[1]

  # log v = 0 where no proposal is accepted.
  found = _backend.by_platform(in_turn, side_by_side, d, c)
  log_v = jnp.where(jnp.isnan(found), 0.0, found)
  log_u = jnp.log(_open_unit(_words(key, jnp.full((1,), BOOST_STREAM), shape)[0]))
  log_g = jnp.log(d) + log_v + jnp.where(boost, log_u / a, 0.0)
  return jnp.where(valid, log_g, jnp.nan)


def beta(
  key: jax.Array,
  a: ArrayLike,
  b: ArrayLike,
  shape: tuple[int, ...] = (),
  *,
  proposals: int = PROPOSALS,
  rounds: int = ROUNDS,
) -> jax.Array:
  """``Beta(a, b)`` draws as ``G_a / (G_a + G_b)`` from ``log_gamma``, float32 ``[*shape]``.

  Both Gamma draws come from one ``log_gamma`` call. ``lam`` is the logistic of ``t = log G_a -
  log G_b``, computed on its small side (module docstring). NaN where ``a`` or ``b`` is not a
  finite number > 0.

  >>> lam = beta(jax.random.key(0), 0.4, 0.4, (3,))
  >>> bool(((lam >= 0) & (lam <= 1)).all())
  True
  """
  both = jnp.stack(
    [jnp.broadcast_to(jnp.asarray(a, jnp.float32), shape), jnp.broadcast_to(jnp.asarray(b, jnp.float32), shape)]
  )
  log_a, log_b = log_gamma(key, both, (2, *shape), proposals=proposals, rounds=rounds)
  t = log_a - log_b
  e = jnp.exp(-jnp.abs(t))
  small = e / (1.0 + e)  # min(lam, 1 - lam), to a few ulps
  return jnp.where(t >= 0.0, 1.0 - small, small)
