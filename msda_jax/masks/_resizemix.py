"""ResizeMix: the whole partner, shrunk, pasted into a box of the image.

The box has side ratio ``tau`` on every axis, ``tau ~ Uniform(scale_min, scale_max)``, lies
fully inside the image at a uniform position, and receives the partner resized to the box
(linear interpolation, antialiased); ``lam = 1 - tau^d`` nominally and the label weight is the
realised share of the image kept, as for every method. ``M`` is the CutMix-inside mask of that
box and the sample's ``paste`` does the resize and placement with traced scale and translation,
so shapes stay static.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial
from jax.typing import ArrayLike

from msda_jax import _validate
from msda_jax._dataclass import pytree_dataclass
from msda_jax.masks import _box, _resample
from msda_jax.masks._base import MixMethod, Sample


def _paste_box(key: jax.Array, lam: jax.Array, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
  """``(start, size)`` of the paste box of nominal area ``1 - lam`` (int32 ``[d]`` each).

  Fully inside the grid at a uniform position; a non-empty box has at least one pixel per side
  unless ``lam >= 1``.
  """
  size = jnp.maximum(_box.cut_sizes(lam, shape), 1)
  size = jnp.where(lam >= 1.0, 0, size)
  return _box.sample_box(key, size, shape, "inside"), size


def _paste(start: jax.Array, size: jax.Array, partner: jax.Array) -> jax.Array:
  """The partner ``[*S, C]`` resized into the box ``start, size`` (0 outside it, dtype kept).

  Linear, antialiased: the weights of ``jax.image.scale_and_translate`` with
  ``method="linear", antialias=True`` (equal values up to float rounding), applied with work
  bounded by the number of nonzero weights on the CPU (``_resample``). uint8 rounds and clips.
  """
  compute = jnp.float64 if partner.dtype == jnp.float64 else jnp.float32
  pasted = _resample.paste_resized(partner.astype(compute), start, size)
  if partner.dtype == jnp.uint8:
    return jnp.clip(jnp.round(pasted), 0, 255).astype(jnp.uint8)
  return pasted.astype(partner.dtype)


@pytree_dataclass
class ResizeMix(MixMethod):
  """ResizeMix with side ratio ``tau ~ Uniform(scale_min, scale_max)``, ``lam = 1 - tau^d``.

  The sample's ``paste`` maps the partner ``[*S, C]`` to the partner shrunk into the box (0
  outside it), where the mask is 0.

  >>> ResizeMix()
  ResizeMix(scale_min=0.1, scale_max=0.8)
  >>> s = ResizeMix().sample(jax.random.key(0), shape=(8, 8), lam=0.75)
  >>> float(s.weight), s.paste(jnp.ones((8, 8, 1))).shape
  (0.75, (8, 8, 1))
  """

  name = "resizemix"
  _unit = ("scale_min", "scale_max")

  scale_min: ArrayLike = 0.1
  scale_max: ArrayLike = 0.8

  def constraints(self) -> list[_validate.Check]:
    low, high = self.scale_min, self.scale_max
    concrete = _validate.concrete_value(low) is not None and _validate.concrete_value(high) is not None
    ordered = np.asarray(low) <= np.asarray(high) if concrete else jnp.asarray(low) <= jnp.asarray(high)
    return [*super().constraints(), ("scale_min must be <= scale_max", ordered, low)]

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del data
    if lam is None:
      tau = jax.random.uniform(key_lam, (), jnp.float32, self.scale_min, self.scale_max)
      lam = 1.0 - tau ** len(shape)
    start, size = _paste_box(key_mask, lam, shape)
    mask = jnp.where(_box.box_indicator(start, size, shape), 0.0, 1.0).astype(jnp.float32)
    weight = _box.box_complement_fraction(start, size, shape)
    return Sample(lam, mask, weight, Partial(_paste, start, size))
