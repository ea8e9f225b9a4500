"""ResizeMix: the whole partner, shrunk, pasted into a box of the image.

The box has side ratio ``tau`` on every axis, ``tau ~ Uniform(scale_min, scale_max)``, lies
fully inside the image at a uniform position, and receives the partner resized to the box
(linear interpolation, antialiased); ``lam = 1 - tau^d`` nominally and the label weight is the
realised share of the image kept, as for every method. ``M`` is the CutMix-inside mask of that
box and ``transform_partner`` does the resize and placement with traced scale and translation,
so shapes stay static.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _validate
from msda_jax.masks import _box, _resample
from msda_jax.masks._base import MixMethod, method_dataclass


def resizemix_box(key: jax.Array, lam: ArrayLike, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
  """``(start, size)`` of the paste box of nominal area ``1 - lam`` (int32 ``[d]`` each)."""
  lam = jnp.asarray(lam, jnp.float32)
  size = jnp.maximum(_box.box_sizes(1.0 - lam, shape), 1)
  size = jnp.where(lam >= 1.0, 0, size)
  start = _box.sample_box(key, size, shape, "inside")
  return start, size


def resizemix_mask(key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
  """ResizeMix mask: 0 on the paste box (fully inside), 1 elsewhere.

  A non-empty box has at least one pixel per side unless ``lam >= 1``.

  >>> m = resizemix_mask(jax.random.key(0), 0.75, shape=(8, 8))
  >>> float(m.mean())
  0.75
  """
  start, size = resizemix_box(key, lam, shape)
  return jnp.where(_box.box_indicator(start, size, shape), 0.0, 1.0).astype(jnp.float32)


def resizemix_mask_mean(key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
  """Mean of ``resizemix_mask`` with the same arguments (float32 scalar), from the box's extent.

  >>> float(resizemix_mask_mean(jax.random.key(0), 0.75, shape=(8, 8)))
  0.75
  """
  start, size = resizemix_box(key, lam, shape)
  return _box.box_complement_fraction(start, size, shape)


def resizemix_paste(key: jax.Array, lam: ArrayLike, partner: jax.Array) -> jax.Array:
  """The partner ``[*S, C]`` resized into the box that ``resizemix_mask`` draws from ``key``.

  Linear, antialiased: the weights of ``jax.image.scale_and_translate`` with
  ``method="linear", antialias=True`` (equal values up to float rounding), applied with work
  bounded by the number of nonzero weights (``_resample``). Values outside the box are 0 (the mask
  keeps the image there).
  """
  shape = tuple(partner.shape[:-1])
  start, size = resizemix_box(key, lam, shape)
  compute = jnp.float64 if partner.dtype == jnp.float64 else jnp.float32
  # The weights of jax.image.scale_and_translate (linear, antialiased), applied sparsely.
  pasted = _resample.paste_resized(partner.astype(compute), start, size)
  return (
    pasted.astype(partner.dtype)
    if partner.dtype != jnp.uint8
    else jnp.clip(jnp.round(pasted), 0, 255).astype(jnp.uint8)
  )


@method_dataclass
class ResizeMix(MixMethod):
  """ResizeMix with side ratio ``tau ~ Uniform(scale_min, scale_max)``, ``lam = 1 - tau^d``.

  >>> ResizeMix()
  ResizeMix(scale_min=0.1, scale_max=0.8)
  """

  name = "resizemix"
  transforms_partner = True
  _unit = ("scale_min", "scale_max")

  scale_min: ArrayLike = 0.1
  scale_max: ArrayLike = 0.8

  def constraints(self) -> list[_validate.Check]:
    low, high = self.scale_min, self.scale_max
    concrete = _validate.concrete_value(low) is not None and _validate.concrete_value(high) is not None
    ordered = np.asarray(low) <= np.asarray(high) if concrete else jnp.asarray(low) <= jnp.asarray(high)
    return [*super().constraints(), ("scale_min must be <= scale_max", ordered, low)]

  def sample_lam(self, key: jax.Array) -> jax.Array:
    # d is unknown here: lam is drawn for images (d = 2); sample() handles any d.
    tau = jax.random.uniform(key, (), jnp.float32, self.scale_min, self.scale_max)
    return 1.0 - tau**2

  def nominal_lam(self, key: jax.Array, *, shape: tuple[int, ...]) -> jax.Array:
    tau = jax.random.uniform(jax.random.split(key)[0], (), jnp.float32, self.scale_min, self.scale_max)
    return 1.0 - tau ** len(shape)

  def mask(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
    return resizemix_mask(key, lam, shape=shape)

  def mask_mean(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
    return resizemix_mask_mean(key, lam, shape=shape)

  def transform_partner(self, key: jax.Array, lam: ArrayLike, partner: jax.Array) -> jax.Array:
    return resizemix_paste(key, lam, partner)
