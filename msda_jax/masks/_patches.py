"""Masks aligned to a vision transformer's patch grid: a patch is never split.

A ViT reads an image as ``(H / p) x (W / p)`` tokens of ``p x p`` pixels. A box drawn on the
pixels cuts through tokens, so some tokens carry both images and a method that reads the
model's attention per token (TransMix, TokenMix) must guess how much of each such token is whose.
``PatchAligned(method, patch=p)`` draws ``method``'s mask on the token grid ``S / p`` and repeats
each cell over its ``p x p`` pixels (nearest-neighbour upsampling), so every token is wholly one
image's:

* the law of the aligned mask is the law of ``method``'s mask on the grid ``S / p``, each cell
  blown up; ``lam`` and the label weight are the grid mask's (repetition keeps the mean exactly);
* ``a_jk`` (Eq. 9) of the aligned mask at pixels ``j, k`` is the grid mask's at the tokens holding
  them (``msda_jax.theory.exact_atoms`` builds it from the grid law, exactly where that is finite);
* ``PatchAligned(CutMix(), p)`` is a box of whole tokens, ``PatchAligned(Bernoulli(), p)``
  independent random tokens, ``PatchAligned(FMix(), p)`` token blobs: any two-source mask-only
  method, by name ``from_string("patch_aligned(method='cutmix', patch=4)")``.

The same key gives the same grid draw as ``method.sample(key, shape=S / p)``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks._base import MixMethod, Sample
from msda_jax.masks._cutmix import CutMix
from msda_jax.masks._wrapped import Wrapped


def patch_sides(patch: Any, name: str = "patch") -> int | tuple[int, ...]:
  """``patch`` as a positive int or a tuple of them; raises naming it (or ``name``) otherwise."""
  sides = tuple(patch) if isinstance(patch, (tuple, list)) else (patch,)
  if not sides or any(isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)) or s < 1 for s in sides):
    raise ValueError(f"{name} must be a positive int or a tuple of positive ints (one per axis); got {patch!r}.")
  as_ints = tuple(int(s) for s in sides)
  return as_ints[0] if not isinstance(patch, (tuple, list)) else as_ints


def grid_shape(shape: tuple[int, ...], patch: int | tuple[int, ...], name: str = "patch") -> tuple[int, ...]:
  """The token grid ``S / p`` of spatial shape ``shape``; raises naming ``patch`` (or ``name``) unless it
  divides ``shape``.

  >>> grid_shape((32, 32), 4)
  (8, 8)
  """
  sides = (patch,) * len(shape) if isinstance(patch, int) else tuple(patch)
  if len(sides) != len(shape):
    raise ValueError(f"{name} must have one side per spatial axis of {tuple(shape)}; got {patch!r}.")
  if any(n % s for n, s in zip(shape, sides, strict=True)):
    raise ValueError(f"{name} {patch!r} must divide the spatial shape {tuple(shape)} (whole tokens); it does not.")
  return tuple(n // s for n, s in zip(shape, sides, strict=True))


def upsample(grid_mask: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """The grid mask ``[*G]`` with each cell repeated over its patch: ``[*S]`` (``S`` a multiple of ``G``)."""
  mask = grid_mask
  for axis, (n, g) in enumerate(zip(shape, grid_mask.shape, strict=True)):
    mask = jnp.repeat(mask, n // g, axis=axis, total_repeat_length=n)
  return mask


def patch_means(masks: jax.Array, grid: tuple[int, ...]) -> jax.Array:
  """The mean of ``masks [B, *S]`` over each cell of the grid ``G``: ``[B, *G]`` (``S`` a multiple of ``G``).

  >>> patch_means(jnp.arange(4.0).reshape(1, 2, 2), (1, 2)).tolist()
  [[[1.0, 2.0]]]
  """
  shape = masks.shape[1:]
  split = [masks.shape[0]]
  for n, g in zip(shape, grid, strict=True):
    split += [g, n // g]
  return jnp.mean(masks.reshape(split), axis=tuple(range(2, 2 * len(grid) + 1, 2)))


@pytree_dataclass
class PatchAligned(Wrapped):
  """``method``'s mask drawn on the patch grid ``S / patch`` and repeated over each patch.

  Args:
    method: a two-source mask-only library method (default ``CutMix()``); its numbers stay traced.
    patch: static side of a patch in pixels, an int or one per spatial axis; it must divide the
      images' spatial shape (raised by ``check_input`` before any work, and by ``sample``).

  The law, ``lam`` and the label weight are ``method``'s on the grid (module docstring).

  >>> import msda_jax
  >>> s = PatchAligned(msda_jax.CutMix(), patch=4).sample(jax.random.key(0), shape=(16, 16), lam=0.75)
  >>> s.mask.shape, float(s.weight), bool((s.mask.reshape(4, 4, 4, 4).std(axis=(1, 3)) == 0).all())
  ((16, 16), 0.75, True)
  """

  name = "patch_aligned"

  method: MixMethod = CutMix()
  patch: int | tuple[int, ...] = static_field(default=16)

  role = "patch alignment takes"

  def _check(self) -> None:
    object.__setattr__(self, "patch", patch_sides(self.patch))

  def check_input(self, spatial: tuple[int, ...], block: int | None = None) -> None:
    """Raises naming ``patch`` unless it divides ``spatial``, then the aligned method's check on the grid."""
    self.method.check_input(grid_shape(tuple(spatial), self.patch), block)

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del data
    grid = grid_shape(shape, self.patch)
    drawn = self.method._sample(key_lam, key_mask, lam, grid, None)
    grid_mask = jnp.broadcast_to(jnp.asarray(drawn.mask, jnp.float32), grid)
    return Sample(drawn.lam, upsample(grid_mask, shape), drawn.weight)
