"""Joint laws of ``(lam, M)`` that the theory averages over.

A *mask law* is a pure function ``key -> (lam, M)`` with ``lam`` a float32 scalar and ``M``
float32 of the spatial shape. Four are needed (Section 3 and the corrections in the notes):

* ``fixed_lam_law``: ``lam`` given, ``M ~ M(lam)`` (the coefficients ``a_jk(lam)``, Eq. 9);
* ``msda_law``: ``lam ~ Beta(a, b)``, ``M ~ M(lam)`` (the MSDA loss, Eq. 4);
* ``printed_law``: ``lam ~ D~_lam``, ``M ~ M(lam)`` (Theorem 1 as printed, Eq. 6-8);
* ``swap_law``: with probability ``a/(a+b)``, ``lam ~ Beta(a+1, b)`` and ``M' = M(lam)``; with
  probability ``b/(a+b)``, ``lam ~ Beta(b+1, a)`` and ``M' = 1 - M(1 - lam)``. Rewriting Eq. (4)
  as a sum over single examples with their own labels produces exactly this law, so the
  second-order expansion with it is exact to second order for every mask family. It equals
  ``printed_law`` when ``E[M | lam] = lam 1`` and ``1 - M(lam)`` has the law of ``M(1 - lam)``
  (Mixup, Bernoulli), and differs otherwise (boxes, HMix, GMix).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _validate, lam_laws
from msda_jax.masks._base import MixMethod

MaskLaw = Callable[[jax.Array], tuple[jax.Array, jax.Array]]


def _concentrations(a: ArrayLike, b: ArrayLike | None) -> tuple[jax.Array, jax.Array]:
  _validate.check_positive("a", a)
  b = a if b is None else b
  _validate.check_positive("b", b)
  return jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)


def fixed_lam_law(method: MixMethod, lam: ArrayLike, *, shape: tuple[int, ...]) -> MaskLaw:
  """``(lam, M(lam))`` with ``lam`` fixed: the law behind ``a_jk(lam)`` (Eq. 9).

  >>> import msda_jax
  >>> lam, m = fixed_lam_law(msda_jax.mixup(), 0.3, shape=(2, 2))(jax.random.key(0))
  >>> float(m[0, 0])
  0.3...
  """
  lam = jnp.asarray(lam, jnp.float32)
  return lambda key: (lam, method.sample(key, shape=shape, lam=lam).mask)


def msda_law(method: MixMethod, a: ArrayLike, b: ArrayLike | None = None, *, shape: tuple[int, ...]) -> MaskLaw:
  """``lam ~ Beta(a, b)``, ``M ~ M(lam)``: the law of the MSDA loss (Eq. 4)."""
  a, b = _concentrations(a, b)

  def law(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    key_lam, key_mask = jax.random.split(key)
    del key_mask  # the sample's own split: the second half of ``key`` draws the mask
    lam = jax.random.beta(key_lam, a, b)
    return lam, method.sample(key, shape=shape, lam=lam).mask

  return law


def printed_law(method: MixMethod, a: ArrayLike, b: ArrayLike | None = None, *, shape: tuple[int, ...]) -> MaskLaw:
  """``lam ~ D~_lam``, ``M ~ M(lam)``: the law of Theorem 1 as printed (Eq. 6-8)."""
  a, b = _concentrations(a, b)

  def law(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    key_lam, key_mask = jax.random.split(key)
    del key_mask  # the sample's own split: the second half of ``key`` draws the mask
    lam = lam_laws.sample_d_tilde(key_lam, a, b)
    return lam, method.sample(key, shape=shape, lam=lam).mask

  return law


def swap_law(method: MixMethod, a: ArrayLike, b: ArrayLike | None = None, *, shape: tuple[int, ...]) -> MaskLaw:
  """The law of ``(lam, M')`` that the per-example rewriting of Eq. (4) really produces.

  With probability ``a/(a+b)``: ``lam ~ Beta(a+1, b)``, ``M' = M(lam)``; otherwise
  ``lam ~ Beta(b+1, a)``, ``M' = 1 - M(1 - lam)``. ``lam`` is the weight of the example's own
  label in both branches.

  >>> import msda_jax
  >>> lam, m = swap_law(msda_jax.cutmix(), 1.0, shape=(4, 4))(jax.random.key(0))
  >>> m.shape
  (4, 4)
  """
  a, b = _concentrations(a, b)

  def law(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    key_choice, key_first, key_second, key_mask = jax.random.split(key, 4)
    first = jax.random.uniform(key_choice) < a / (a + b)
    lam_first = jax.random.beta(key_first, a + 1.0, b)
    lam_second = jax.random.beta(key_second, b + 1.0, a)
    lam = jnp.where(first, lam_first, lam_second)
    # M is drawn at the ratio of the image it weights: lam itself, or 1 - lam after the swap.
    mask = method.sample(key_mask, shape=shape, lam=jnp.where(first, lam, 1.0 - lam)).mask
    return lam, jnp.where(first, mask, 1.0 - mask)

  return law
