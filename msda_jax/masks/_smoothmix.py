"""SmoothMix: the partner blended in through a soft bump with smooth edges.

``1 - M = G`` with ``G(i) = exp(-rho(i - c)^2 / (2 sigma^2))``: the partner's share peaks at 1
at the centre ``c`` and fades smoothly, so no edge is sharp. ``profile="circle"`` takes the
Euclidean distance ``rho = ||.||_2`` (round level sets: the Gaussian kernel of the reference
implementation); ``profile="square"`` the largest axis distance ``rho = ||.||_inf`` (square level
sets: the paper's square mask, here with the same Gaussian fall-off).

The law is the reference implementation's, which draws no ``lam``: the width is
``sigma = s * side`` with ``s ~ Uniform(sigma_min, sigma_max)`` (``0.25`` and ``0.5`` there) and
``side`` the geometric mean of the grid's sides (the image side for square images); the centre
is uniform over the pixels. The nominal ``lam`` and the label weight are both the realised mask
mean ``mean(M) = 1 - mean(G)``; a given ``lam`` raises, as it would have no effect.

Differences from the reference (OpenMixup's ``smoothmix``), documented and measured in
``benchmarks/README.md``: it places the centre half a pixel before each pixel (its grid's centre
is ``(2n - 1) / 2``), only for square images of even side; and it returns the kernel's mean as
the weight of the *first* label although the kernel is the *partner's* share, so its targets
weight the two labels the wrong way round. Here the first label gets ``mean(M)``.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _bits, _validate
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks._base import MixMethod, Sample

PROFILES = ("circle", "square")


def smooth_bump(centre: ArrayLike, sigma: ArrayLike, shape: tuple[int, ...], profile: str) -> jax.Array:
  """``G(i) = exp(-rho(i - centre)^2 / (2 sigma^2))`` on the grid (float32 of ``shape``).

  Args:
    centre: float ``[d]`` the bump's centre in pixel coordinates (any real position).
    sigma: float scalar width in pixels, > 0.
    shape: static spatial shape.
    profile: ``"circle"`` (Euclidean distance) or ``"square"`` (largest axis distance).

  >>> [round(v, 4) for v in smooth_bump(jnp.array([1.0]), 1.0, (3,), "circle").tolist()]
  [0.6065, 1.0, 0.6065]
  """
  sigma = jnp.asarray(sigma, jnp.float32)
  centre = jnp.asarray(centre, jnp.float32)
  factors = []
  for axis, n in enumerate(shape):
    offset = jnp.arange(n, dtype=jnp.float32) - centre[axis]
    view = [1] * len(shape)
    view[axis] = n
    # exp(-sum_k a_k) = prod_k exp(-a_k) and exp(-max_k a_k) = min_k exp(-a_k): one exp per index.
    factors.append(jnp.exp(-(offset**2) / (2.0 * sigma**2)).reshape(view))
  bump = factors[0]
  for factor in factors[1:]:
    bump = bump * factor if profile == "circle" else jnp.minimum(bump, factor)
  return jnp.broadcast_to(bump, shape).astype(jnp.float32)


def side_scale(shape: tuple[int, ...]) -> float:
  """The length that ``sigma_min`` and ``sigma_max`` are fractions of: the geometric mean side."""
  return float(math.prod(shape)) ** (1.0 / len(shape))


@pytree_dataclass
class SmoothMix(MixMethod):
  """SmoothMix: ``1 - M`` a Gaussian bump of width ``s * side``, ``s ~ Uniform(sigma_min, sigma_max)``.

  ``profile``: ``"circle"`` or ``"square"`` (the module docstring). The label weight is the
  realised mean of ``M``, and so is the sample's ``lam`` (the law draws none; a given ``lam``
  raises).

  >>> SmoothMix()
  SmoothMix(sigma_min=0.25, sigma_max=0.5, profile='circle')
  >>> s = SmoothMix().sample(jax.random.key(0), shape=(16, 16))
  >>> float(s.mask.min()) < 1e-3, bool(abs(float(s.weight) - float(s.mask.mean())) < 1e-6)
  (True, True)
  """

  name = "smoothmix"
  takes_lam = False
  _positive = ("sigma_min", "sigma_max")

  sigma_min: ArrayLike = 0.25
  sigma_max: ArrayLike = 0.5
  profile: str = static_field(default="circle")

  def _check(self) -> None:
    _validate.check_choice("profile", self.profile, PROFILES)

  def constraints(self) -> list[_validate.Check]:
    low, high = self.sigma_min, self.sigma_max
    concrete = _validate.concrete_value(low) is not None and _validate.concrete_value(high) is not None
    ordered = np.asarray(low) <= np.asarray(high) if concrete else jnp.asarray(low) <= jnp.asarray(high)
    return [*super().constraints(), ("sigma_min must be <= sigma_max", ordered, low)]

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del data
    if lam is not None:
      raise ValueError(self._no_lam_message())
    s = jax.random.uniform(key_lam, (), jnp.float32, self.sigma_min, self.sigma_max)
    centre = _bits.randint(key_mask, (len(shape),), 0, jnp.asarray(shape, jnp.int32))
    mask = 1.0 - smooth_bump(centre, s * side_scale(shape), shape, self.profile)
    weight = jnp.mean(mask)
    return Sample(weight, mask, weight)
