"""GMix (Section 4): a Gaussian bump of the partner around a uniform point.

``1 - M_i = exp(-pi ||i - p||^2 / c)`` with ``p`` uniform over the pixels. On the infinite
plane the bump integrates to ``c^(d/2)``; the official code's scale (the default,
``scale="code"``) takes ``c = ((1 - lam) V)^(2/d)`` for a grid of volume ``V``, i.e.
``(1 - lam) N^2`` for an ``N x N`` image, so the bump's mean is ``1 - lam`` before the border
truncates it. The paper's text (``scale="text"``, the form that Eq. (11) belongs to) uses twice
that ``c``: mean ``2 (1 - lam)`` for images. The border truncates the bump, so the realised
mask mean differs from ``lam``; labels use the realised mean.

``symmetric=True`` (as the official code) puts the bump on whichever image has the smaller
nominal weight: for ``lam < 0.5`` the bump is ``M`` itself, with nominal mean ``lam``.
Non-square grids use an isotropic bump in pixel units.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _bits, _validate
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks._base import MixMethod, Sample

SCALES = ("code", "text")


def squared_distance(centre: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """``||i - centre||^2`` for every grid index ``i`` (float32 of ``shape``)."""
  total = jnp.zeros(shape, jnp.float32)
  for axis, n in enumerate(shape):
    view = [1] * len(shape)
    view[axis] = n
    offset = jnp.arange(n, dtype=jnp.float32) - centre[axis].astype(jnp.float32)
    total = total + (offset**2).reshape(view)
  return total


def gaussian_width(weight: ArrayLike, shape: tuple[int, ...], scale: str) -> jax.Array:
  """The ``c`` of ``exp(-pi ||i - p||^2 / c)`` for a bump of nominal mean ``weight``."""
  _validate.check_choice("scale", scale, SCALES)
  volume = float(math.prod(shape))
  weight = jnp.clip(jnp.asarray(weight, jnp.float32), 0.0, 1.0)
  width = (weight * volume) ** (2.0 / len(shape))
  return 2.0 * width if scale == "text" else width


def gaussian_bump_factors(weight: ArrayLike, centre: jax.Array, shape: tuple[int, ...], scale: str) -> list[jax.Array]:
  """The 1-D factors ``exp(-pi (i_k - centre_k)^2 / c)`` of the bump, one float32 ``[n_k]`` per axis.

  All zero when the nominal weight is 0 (``c = 0``).
  """
  width = gaussian_width(weight, shape, scale)
  positive = width > 0.0
  safe = jnp.where(positive, width, 1.0)
  factors = []
  for axis, n in enumerate(shape):
    offset = jnp.arange(n, dtype=jnp.float32) - centre[axis].astype(jnp.float32)
    factors.append(jnp.where(positive, jnp.exp(-math.pi * offset**2 / safe), 0.0))
  return factors


def gaussian_bump(
  weight: ArrayLike, centre: jax.Array, shape: tuple[int, ...], scale: str
) -> tuple[jax.Array, jax.Array]:
  """``(bump, mean(bump))``: ``exp(-pi ||i - centre||^2 / c)`` (float32 of ``shape``) and its mean.

  The bump is the outer product of one ``exp`` factor per axis (``exp(-sum_k a_k) =
  prod_k exp(-a_k)``), so only ``sum_k n_k`` exponentials are evaluated; it equals the
  full-resolution formula to float32 rounding (a few ulps). Its mean is the product of the
  factors' means. Both are identically 0 when the weight is 0.
  """
  factors = gaussian_bump_factors(weight, centre, shape, scale)
  bump = jnp.ones(shape, jnp.float32)
  for axis, factor in enumerate(factors):
    view = [1] * len(shape)
    view[axis] = shape[axis]
    bump = bump * factor.reshape(view)
  return bump, jnp.prod(jnp.stack([jnp.mean(factor) for factor in factors]))


def _gmix(
  key: jax.Array, lam: jax.Array, shape: tuple[int, ...], scale: str, symmetric: bool
) -> tuple[jax.Array, jax.Array]:
  """``(M, mean(M))``: ``1 - M`` a Gaussian bump around a uniform pixel (the module docstring).

  ``lam`` is clipped to [0, 1]; with ``symmetric`` the bump is on the image of smaller nominal
  weight (``M`` itself for ``lam < 0.5``). The mean comes from the bump's 1-D factors.
  """
  lam = jnp.clip(jnp.asarray(lam, jnp.float32), 0.0, 1.0)
  centre = _bits.randint(key, (len(shape),), 0, jnp.asarray(shape, jnp.int32))
  if not symmetric:
    bump, mean = gaussian_bump(1.0 - lam, centre, shape, scale)
    return 1.0 - bump, 1.0 - mean
  bump_on_first = lam < 0.5
  bump, mean = gaussian_bump(jnp.where(bump_on_first, lam, 1.0 - lam), centre, shape, scale)
  return jnp.where(bump_on_first, bump, 1.0 - bump), jnp.where(bump_on_first, mean, 1.0 - mean)


@pytree_dataclass
class GMix(MixMethod):
  """GMix with ``lam ~ Beta(alpha, alpha)`` (the paper uses ``alpha = 0.5``).

  ``scale``: ``"code"`` (bump mean ``1 - lam`` before borders) or ``"text"`` (twice the width);
  ``symmetric``: put the bump on the image of smaller nominal weight (official code). The weight
  is the realised mean of the mask, which the border makes differ from ``lam``.

  >>> GMix()
  GMix(alpha=0.5, scale='code', symmetric=True)
  >>> s = GMix(symmetric=False).sample(jax.random.key(0), shape=(64, 64), lam=0.9)
  >>> bool(0.85 < float(s.weight) < 0.95), bool(abs(float(s.weight) - float(s.mask.mean())) < 1e-6)
  (True, True)
  """

  name = "gmix"
  _positive = ("alpha",)

  alpha: ArrayLike = 0.5
  scale: str = static_field(default="code")
  symmetric: bool = static_field(default=True)

  def _check(self) -> None:
    _validate.check_choice("scale", self.scale, SCALES)
    _validate.check_bool("symmetric", self.symmetric)

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del data
    lam = self._beta_lam(key_lam, lam)
    return Sample(lam, *_gmix(key_mask, lam, shape, self.scale, self.symmetric))
