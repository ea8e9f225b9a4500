"""VideoMix: CutMix's box as a cuboid of a video ``[T, H, W]``, over time, space or both.

``kind`` names the axes the box is cut along; it spans the others whole:

* ``"spatial"``: a box in ``(H, W)`` of sides ``floor(sqrt(1 - lam) n_k)``, in every frame;
* ``"temporal"``: the frames ``[t, t + floor((1 - lam) T))``, whole;
* ``"spatiotemporal"``: a cuboid of sides ``floor((1 - lam)^(1/3) n_k)`` on all three axes.

``lam ~ Beta(alpha, alpha)``; the sides are CutMix's exact floors on the cut axes
(``_box.cut_sizes`` of those axes), the placement (``"clip"``: centre uniform, clipped;
``"inside"``: fully inside) applies along them, and the label weight is the realised share outside
the cuboid. The spatial kind is the VideoMix paper's default. Videos only: the spatial shape must
have three axes (``spatial_ndim=3``); anything else raises naming it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _validate
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks import _box
from msda_jax.masks._base import MixMethod, Sample
from msda_jax.masks._cutmix import check_box_options

#: the axes of ``[T, H, W]`` each kind cuts along.
KINDS = {"spatial": (1, 2), "temporal": (0,), "spatiotemporal": (0, 1, 2)}


def cuboid_extent(
  key: jax.Array, lam: ArrayLike, shape: tuple[int, ...], axes: tuple[int, ...], placement: str, sides: str
) -> tuple[jax.Array, jax.Array]:
  """``(start, size)`` (int32 ``[d]``) of a box cut along ``axes`` and whole along the others."""
  cut = tuple(shape[a] for a in axes)
  start_cut, size_cut = _box.random_cut_extent(key, lam, cut, placement, sides=sides)
  start = jnp.zeros(len(shape), jnp.int32).at[jnp.asarray(axes)].set(start_cut)
  size = jnp.asarray(shape, jnp.int32).at[jnp.asarray(axes)].set(size_cut)
  return start, size


@pytree_dataclass
class VideoMix(MixMethod):
  """VideoMix: 0 in a cuboid of nominal volume ``1 - lam`` cut along ``kind``'s axes, 1 outside.

  ``kind``: ``"spatial"`` (default), ``"temporal"`` or ``"spatiotemporal"``; ``placement`` and
  ``box_sides`` as ``CutMix``'s. Mixes videos ``[B, T, H, W, C]`` (``spatial_ndim=3``).

  >>> VideoMix()
  VideoMix(alpha=1.0, kind='spatial', placement='clip', box_sides='floor')
  >>> s = VideoMix(kind="temporal", placement="inside").sample(jax.random.key(0), shape=(8, 4, 4), lam=0.75)
  >>> float(s.weight), s.mask.sum(axis=(1, 2)).tolist().count(0.0)  # 2 of 8 frames are the partner's
  (0.75, 2)
  """

  name = "videomix"
  _positive = ("alpha",)

  alpha: ArrayLike = 1.0
  kind: str = static_field(default="spatial")
  placement: str = static_field(default="clip")
  box_sides: str = static_field(default="floor")

  def _check(self) -> None:
    _validate.check_choice("kind", self.kind, tuple(KINDS))
    check_box_options(self.placement, self.box_sides)

  def check_input(self, spatial: tuple[int, ...], block: int | None = None) -> None:
    del block
    if len(spatial) != 3:
      raise ValueError(
        f"VideoMix mixes videos [B, T, H, W, C] (spatial_ndim=3); got {len(spatial)} spatial axes {spatial}."
      )

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del data
    self.check_input(shape)
    lam = self._beta_lam(key_lam, lam)
    start, size = cuboid_extent(key_mask, lam, shape, KINDS[self.kind], self.placement, self.box_sides)
    mask = jnp.where(_box.box_indicator(start, size, shape), 0.0, 1.0).astype(jnp.float32)
    return Sample(lam, mask, _box.box_complement_fraction(start, size, shape))
