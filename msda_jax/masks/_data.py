"""Methods whose masks read the data: the images of a pair and their saliency maps (Remark 2).

A data-dependent method (``needs_saliency = True``) draws a pair's mask from ``PairData``: the
image, its partner and a saliency map of each (any non-negative ``[*S]`` map; the library's
``msda_jax.saliency`` computes the input-gradient one inside a train step). ``lam`` is
``Beta(alpha, alpha)``. ``sample(key, shape=S, data=PairData(...))`` draws one pair;
``sample_pairs`` draws a batch of pairs at once (``mix_batch`` calls it), which lets a method
share one draw over the batch (PuzzleMix's grid size) outside ``vmap``.

Key use, as for every method: the first half of ``split(key)`` draws ``lam``, the second the
mask; ``sample`` of one pair is ``sample_pairs`` of a batch of that one pair.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _sharding, draws, lam_laws, saliency
from msda_jax.masks._base import MixMethod, Sample
from msda_jax.needs import ModelView, Needs


class PairData(NamedTuple):
  """What a data-dependent mask reads about one pair (a leading batch axis in ``sample_pairs``).

  Attributes:
    image: ``[*S, C]`` the image ``x_i`` (float in [0, 1] or uint8).
    partner: ``[*S, C]`` its partner ``x_j``.
    saliency: float32 ``[*S]`` non-negative saliency of the image.
    partner_saliency: float32 ``[*S]`` the partner's.
  """

  image: jax.Array
  partner: jax.Array
  saliency: jax.Array
  partner_saliency: jax.Array


def pixel_units(images: jax.Array) -> jax.Array:
  """Images as float32 in [0, 1] units: uint8 divided by 255, floats as given."""
  images = jnp.asarray(images)
  if images.dtype == jnp.uint8:
    return images.astype(jnp.float32) / 255.0
  return images.astype(jnp.float32)


class DataMixMethod(MixMethod):
  """Base class of the methods that read ``PairData`` (see the module docstring).

  Subclasses have an ``alpha`` field (``lam ~ Beta(alpha, alpha)``) and implement
  ``_sample_pairs``; ``check_input`` raises for spatial shapes they cannot mix.
  """

  def needs(self) -> Needs:
    """A saliency map of every image: ``Needs(inputs=("saliency",))``."""
    return Needs(inputs=("saliency",))

  def prepare(self, key: jax.Array, model: ModelView, images: jax.Array, labels: jax.Array) -> dict[str, Any]:
    """``{"saliency": [B, *S]}``: the input gradient of the model's clean loss (``msda_jax.saliency``)."""
    del key, labels
    return {"saliency": saliency.input_saliency(model.loss, model.to_input(images))}

  def draw(self, key: jax.Array, sources: tuple[Any, ...], lam: Any, prob: Any, mixer: Any) -> draws.Draw:
    """Every pair's mask from the pair (``msda_jax.draws.draw_pairs``), the images read clean."""
    mine, theirs = sources
    data = PairData(mine["images"], theirs["images"], mine["saliency"], theirs["saliency"])
    return draws.draw_pairs(self, key, data, lam, prob, mixer)

  def draw_lam(self, key: jax.Array, count: int | None = None) -> jax.Array:
    """``Beta(alpha, alpha)`` ratios: a scalar, or ``[count]`` independent ones."""
    alpha = self.alpha  # type: ignore[attr-defined]
    if count is None:
      return lam_laws.sample_beta(key, alpha)
    return jax.vmap(lambda k: lam_laws.sample_beta(k, alpha))(jax.random.split(key, count))

  def sample_pairs(self, key: jax.Array, *, shape: tuple[int, ...], lam: ArrayLike, data: PairData) -> Sample:
    """The masks of a batch of pairs: a ``Sample`` of ``[B]`` ratios and weights and ``[B, *S]`` masks.

    Args:
      key: the batch's mask key.
      shape: static spatial shape ``S``.
      lam: float32 ``[B]`` the pairs' ratios.
      data: ``PairData`` with a leading ``[B]`` axis.

    ``paste`` and ``keep``, when present, map ``[B, *S, C]`` (the partners, the images).
    """
    self.check_input(tuple(shape))
    lam = _sharding.shard_like_batch(jnp.asarray(lam, jnp.float32), data.image)  # on the pairs' devices
    return self._sample_pairs(key, tuple(shape), lam, data)

  def _sample_pairs(self, key: jax.Array, shape: tuple[int, ...], lam: jax.Array, data: PairData) -> Sample:
    """Default: each pair by ``_pair`` under ``vmap`` with its own key."""
    keys = _sharding.shard_like_batch(jax.random.split(key, lam.shape[0]), data.image)
    return _sharding.map_local(lambda k, lam_k, d: self._pair(k, lam_k, shape, d), keys, lam, data)

  def _pair(self, key: jax.Array, lam: jax.Array, shape: tuple[int, ...], data: PairData) -> Sample:
    """One pair's draw, for the default ``_sample_pairs``: a subclass overrides one of the two."""
    raise TypeError(f"{type(self).__name__} must override _pair (one pair) or _sample_pairs (a batch of pairs).")

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    if not isinstance(data, PairData):
      raise ValueError(
        f"{type(self).__name__} reads the images: pass data=PairData(image, partner, saliency, partner_saliency); "
        f"got {type(data).__name__}."
      )
    lam = self.draw_lam(key_lam) if lam is None else lam
    batched = jax.tree.map(lambda v: jnp.asarray(v)[None], data)
    pairs = self.sample_pairs(key_mask, shape=shape, lam=lam[None], data=batched)
    return jax.tree.map(lambda v: v[0], pairs)
