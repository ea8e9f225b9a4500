"""Laws of the mixing ratio ``lam``.

MSDA draws ``lam ~ Beta(alpha, alpha)`` (Eq. 4, ``D_lam``). Theorem 1 re-expresses the MSDA
loss with the law ``D~_lam = a/(a+b) Beta(a+1, b) + b/(a+b) Beta(b+1, a)`` for
``lam ~ Beta(a, b)``; k-sample mixing (Appendix B) draws a weight vector from a Dirichlet law.
All parameters are traced: changing them never recompiles.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _bits, _gamma, _validate


def sample_beta(key: jax.Array, a: ArrayLike, b: ArrayLike | None = None, shape: tuple[int, ...] = ()) -> jax.Array:
  """Draws ``lam ~ Beta(a, b)`` (``b = a`` when omitted), float32 of ``shape``.

  Marsaglia-Tsang Gamma draws with eight proposals each made side by side and the first accepted
  kept (``_gamma``): no loop and no branch, the law of ``jax.random.beta`` (not its realisations),
  and ``lam`` next to 0 and 1 rounded like a correctly rounded float32 Beta.

  Args:
    key: a PRNG key.
    a: first concentration, > 0 (traced).
    b: second concentration, > 0 (traced); defaults to ``a``.
    shape: static shape of the draw.

  Returns:
    float32 array of ``shape`` with values in [0, 1].

  >>> lam = sample_beta(jax.random.key(0), 1.0)
  >>> bool(0.0 <= lam <= 1.0)
  True
  """
  _validate.check_positive("alpha", a)
  b = a if b is None else b
  _validate.check_positive("beta", b)
  # Every proposal at once instead of jax.random.beta's per-draw loops (same law; see _gamma).
  return _gamma.beta(key, a, b, shape)


def sample_d_tilde(key: jax.Array, a: ArrayLike, b: ArrayLike | None = None, shape: tuple[int, ...] = ()) -> jax.Array:
  """Draws from ``D~_lam = a/(a+b) Beta(a+1, b) + b/(a+b) Beta(b+1, a)`` (Theorem 1).

  Args:
    key: a PRNG key.
    a: first concentration of the MSDA law ``Beta(a, b)``, > 0 (traced).
    b: second concentration, > 0 (traced); defaults to ``a``.
    shape: static shape of the draw.

  Returns:
    float32 array of ``shape`` with values in [0, 1].

  >>> lam = sample_d_tilde(jax.random.key(0), 1.0, shape=(4,))
  >>> lam.shape
  (4,)
  """
  _validate.check_positive("alpha", a)
  b = a if b is None else b
  _validate.check_positive("beta", b)
  a = jnp.asarray(a, jnp.float32)
  b = jnp.asarray(b, jnp.float32)
  key_choice, key_lam = _bits.split(key)
  first = _bits.uniform(key_choice, shape) < a / (a + b)
  # The chosen component's Beta, one vectorised draw per element (sample_beta's sampler).
  return _gamma.beta(key_lam, jnp.where(first, a + 1.0, b + 1.0), jnp.where(first, b, a), shape)


def d_tilde_mean_one_minus_lam(a: ArrayLike, b: ArrayLike | None = None) -> jax.Array:
  """``E_{lam ~ D~}[1 - lam]``, the factor of R1 in Theorem 1 (Eq. 7).

  With ``Beta(a+1, b)`` of mean ``(a+1)/(a+b+1)`` and ``Beta(b+1, a)`` of mean
  ``(b+1)/(a+b+1)``, the mixture has ``E[1 - lam] = 2ab / ((a+b)(a+b+1))``.

  >>> float(d_tilde_mean_one_minus_lam(1.0))  # Beta(1, 1): 2 / (2 * 3)
  0.3333...
  """
  b = a if b is None else b
  a = jnp.asarray(a, jnp.float32)
  b = jnp.asarray(b, jnp.float32)
  return 2.0 * a * b / ((a + b) * (a + b + 1.0))


def sample_dirichlet(key: jax.Array, alpha: ArrayLike, k: int, shape: tuple[int, ...] = ()) -> jax.Array:
  """Draws weights ``w ~ Dirichlet(alpha 1_k)`` for k-sample mixing (Appendix B).

  Args:
    key: a PRNG key.
    alpha: concentration, > 0 (traced), scalar or ``[k]``.
    k: static number of mixed samples, >= 2.
    shape: static batch shape of the draw.

  Returns:
    float32 array ``[*shape, k]`` whose rows sum to 1: ``k`` Gamma draws normalised, in log space
    (``sample_beta``'s sampler, so small concentrations neither underflow nor divide 0 by 0); NaN
    rows where ``alpha`` is not a finite number > 0.

  >>> w = sample_dirichlet(jax.random.key(0), 1.0, 3)
  >>> w.shape
  (3,)
  """
  _validate.check_positive("alpha", alpha)
  if int(k) < 2:
    raise ValueError(f"k must be an int >= 2 (the number of mixed samples); got {k!r}.")
  alpha = jnp.broadcast_to(jnp.asarray(alpha, jnp.float32), (k,))
  return jax.nn.softmax(_gamma.log_gamma(key, alpha, (*shape, k)), axis=-1)
