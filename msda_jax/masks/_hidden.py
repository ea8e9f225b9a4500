"""Mixing at a hidden layer: Manifold Mixup and PatchUp (the feature-level MSDA of Theorem 4).

Both are two-sample methods whose ``layers`` (static) name where the train step may mix: 0 is the
input, ``s`` the output of the model's stage ``s``, -1 the output of its last stage
(``msda_jax.train.models``: every model takes
``model(x, mix=hook)``). Each step draws one layer uniformly from ``layers``; the batch layer
(``Mixer``) then mixes that layer's features ``h [B, *S_l, C_l]`` exactly as it mixes images, with
the step's key: the same partners and ``lam`` whatever the layer (the draws of the pairing and of
``lam`` do not depend on the shape), labels by the realised mask weight (``msda_jax.train.step``).
Called on images directly (``mix_batch``), a hidden method mixes the images: layer 0.

* ``ManifoldMixup`` (Verma et al.): ``h~ = lam h_i + (1 - lam) h_j``, ``lam ~ Beta(alpha, alpha)``
  (the reference's CIFAR setting: ``alpha = 2``, layers 0, 1, 2).
* ``PatchUp`` (Faramarzi et al.): blocks of the feature map are changed, independently per channel
  as in the reference: every feature ``(i, c)`` seeds a ``block x block`` square (over the spatial
  axes, that channel only) with probability ``gamma_adj = gamma n^2 / (block^2 (n - block + 1)^2)``
  for an ``n x n`` map (the reference's adjustment; ``n`` the last spatial side, the block clipped
  to the map), and the union of the squares is changed: ``"hard"`` takes the partner's features
  there (``M = 0``), ``"soft"`` mixes them (``M = lam``); ``M = 1`` elsewhere. The label weight is
  the realised mean ``mean(M)``: ``1 - p`` (hard) and ``1 - p + p lam`` (soft) for the changed
  share ``p``, the reference's re-weighted target. The reference's loss adds the cross-entropies of
  its two other targets weighted by ``p``; their sum is that same re-weighted target's
  cross-entropy again (cross-entropy is linear in the target), so training on the re-weighted
  target alone is the reference's objective up to a factor 2. The reference draws one mask for the
  batch (``mode="batch"`` here); ``mode="example"`` draws one per example.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _validate
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks._base import MixMethod, Sample

PATCHUP_MODES = ("soft", "hard")


def check_layers(layers: Any) -> tuple[int, ...]:
  """``layers`` as a sorted tuple of distinct ints >= -1 (-1: the last stage), or a ``ValueError`` naming it."""
  values = tuple(layers) if isinstance(layers, (tuple, list)) else ()
  if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < -1 for v in values):
    raise ValueError(
      f"layers must be a non-empty tuple of ints >= -1 (0: the input, s: after stage s, -1: after the last stage); "
      f"got {layers!r}."
    )
  if len(set(values)) != len(values):
    raise ValueError(f"layers must be distinct; got {layers!r}.")
  return tuple(sorted(values))


class HiddenMixMethod(MixMethod):
  """A method the train step applies at a hidden layer drawn from ``layers`` (the module docstring)."""

  #: whether the train step mixes inside the model (``msda_jax.train.step``).
  hidden: ClassVar[bool] = True
  layers: tuple[int, ...]

  def _check_layers(self) -> None:
    object.__setattr__(self, "layers", check_layers(self.layers))

  def check_model(self, num_stages: int) -> None:
    """Raises naming ``layers`` when a layer is past the model's ``num_stages`` stages."""
    missing = [layer for layer in self.layers if layer > num_stages]
    if missing:
      raise ValueError(
        f"layers={self.layers}: the model has layers 0 (the input) to {num_stages} (after its last stage); "
        f"no layer {missing[0]}."
      )


@pytree_dataclass
class ManifoldMixup(HiddenMixMethod):
  """Manifold Mixup: Mixup of the features at a layer drawn from ``layers`` each step.

  >>> ManifoldMixup()
  ManifoldMixup(alpha=2.0, layers=(0, 1, 2))
  >>> float(ManifoldMixup().sample(jax.random.key(0), shape=(4, 4), lam=0.3).mask.mean())
  0.30000001192092896
  """

  name = "manifold_mixup"
  _positive = ("alpha",)

  alpha: ArrayLike = 2.0
  layers: tuple[int, ...] = static_field(default=(0, 1, 2))

  def _check(self) -> None:
    self._check_layers()

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del key_mask, data
    lam = self._beta_lam(key_lam, lam)
    return Sample(lam, jnp.full(shape, lam, jnp.float32), lam)


def patchup_probability(gamma: ArrayLike, n: int, block: int) -> jax.Array:
  """The seed probability ``gamma n^2 / (b^2 (n - b + 1)^2)`` (clipped to [0, 1]) with ``b = min(block, n)``."""
  b = min(block, n)
  return jnp.clip(jnp.asarray(gamma, jnp.float32) * n**2 / (b**2 * (n - b + 1) ** 2), 0.0, 1.0)


def patchup_holes(
  key: jax.Array, gamma: ArrayLike, shape: tuple[int, ...], block: int, channel_first: bool
) -> jax.Array:
  """The changed features (bool of ``shape``): squares of side ``block`` around random seeds.

  The squares span every axis of ``shape`` but the first when ``channel_first`` (then one channel
  each), centred on the seed with ``block // 2`` before it (the reference's max-pool with padding
  ``block // 2``). The seed probability reads the last side.
  """
  spatial = shape[1:] if channel_first else shape
  p = patchup_probability(gamma, spatial[-1], block)
  return square_union(jax.random.uniform(key, shape, jnp.float32) < p, block, channel_first)


def square_union(seeds: jax.Array, block: int, channel_first: bool) -> jax.Array:
  """The union of the ``block``-squares around the ``seeds`` (bool, any shape; not across the first axis
  when ``channel_first``): the reference's max-pool of its seeds with stride 1 and padding ``block // 2``.

  A square is the product of its sides, so the union is an OR over a window along each spatial
  axis in turn (``block`` reads per pixel and axis instead of ``block^d``).

  >>> square_union(jnp.zeros((5, 5), bool).at[2, 2].set(True), 3, False).astype(int).sum(1).tolist()
  [0, 3, 3, 3, 0]
  """
  out = seeds
  for axis in range(1 if channel_first else 0, seeds.ndim):
    side = min(block, seeds.shape[axis])
    window = tuple(side if a == axis else 1 for a in range(seeds.ndim))
    pad = tuple((side // 2, side - 1 - side // 2) if a == axis else (0, 0) for a in range(seeds.ndim))
    out = jax.lax.reduce_window(out, False, jax.lax.bitwise_or, window, (1,) * seeds.ndim, pad)
  return out


@pytree_dataclass
class PatchUp(HiddenMixMethod):
  """PatchUp: blocks of the features, per channel, from the partner (``"hard"``) or mixed (``"soft"``).

  ``gamma`` (traced, in [0, 1]) and ``alpha`` (``lam ~ Beta(alpha, alpha)``, the reference's 2) are
  numbers; ``block`` (odd, the reference's 7), ``mode``, ``per_channel`` and ``layers`` are static.
  ``per_channel=True`` (the reference) changes each channel's own squares: the train step then
  samples masks of shape ``(C, *S)`` from ``replace(channel_first=True)``, whose squares span the
  spatial axes only. ``per_channel=False`` shares one spatial mask across the channels; so does a
  ``Mixer`` applied to images directly (``mix_batch``), whatever ``per_channel``.

  >>> PatchUp()
  PatchUp(alpha=2.0, gamma=0.9, block=7, mode='soft', per_channel=True, layers=(0, 1, 2), channel_first=False)
  >>> m = PatchUp(mode="hard", channel_first=True).sample(jax.random.key(0), shape=(4, 16, 16), lam=0.5).mask
  >>> m.shape, sorted(set(m.ravel().tolist())) == [0.0, 1.0]
  ((4, 16, 16), True)
  """

  name = "patchup"
  _positive = ("alpha",)
  _unit = ("gamma",)

  alpha: ArrayLike = 2.0
  gamma: ArrayLike = 0.9
  block: int = static_field(default=7)
  mode: str = static_field(default="soft")
  per_channel: bool = static_field(default=True)
  layers: tuple[int, ...] = static_field(default=(0, 1, 2))
  channel_first: bool = static_field(default=False)

  def _check(self) -> None:
    self._check_layers()
    _validate.check_choice("mode", self.mode, PATCHUP_MODES)
    _validate.check_bool("per_channel", self.per_channel)
    _validate.check_bool("channel_first", self.channel_first)
    if isinstance(self.block, bool) or not isinstance(self.block, int) or self.block < 1 or self.block % 2 == 0:
      raise ValueError(f"block must be an odd int >= 1 (the side of the changed squares); got {self.block!r}.")

  def check_input(self, spatial: tuple[int, ...], block: int | None = None) -> None:
    del block
    if self.channel_first and len(spatial) < 2:
      raise ValueError(f"PatchUp with channel_first needs a shape (C, *S) with spatial axes; got {spatial}.")

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del data
    self.check_input(shape)
    lam = jnp.clip(self._beta_lam(key_lam, lam), 0.0, 1.0)
    holes = patchup_holes(key_mask, self.gamma, shape, self.block, self.channel_first)
    inside = 0.0 if self.mode == "hard" else lam
    mask = jnp.where(holes, inside, 1.0).astype(jnp.float32)
    return Sample(lam, mask, jnp.mean(mask))
