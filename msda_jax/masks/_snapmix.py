"""SnapMix: a partner's box resized into the image's box, labels weighted by class-activation mass.

Huang, Wang and Tao (AAAI 2021). Two boxes are drawn by the reference's law (its ``rand_bbox``:
sides ``2 * (floor(n sqrt(1 - lam)) // 2)`` per axis, centre uniform over the pixels, clipped at
the border), box ``A`` for ``lam`` and box ``B`` for a second, independent ``lam'``, both
``Beta(alpha, alpha)``. The partner's box ``B`` is resized into box ``A`` (bilinear, corners
aligned, as the reference's ``F.interpolate(..., align_corners=True)``) and replaces the image
there: ``x~ = M * x_i + (1 - M) * R(x_j)`` with ``M = 0`` on ``A``.

The label weights come from each image's semantic map ``S`` (the class-activation map of its own
class, shifted to a minimum of 0 and normalised to sum 1; ``prepare`` computes it from the model
being trained):

    ``w_i = 1 - sum_(p in A) S_i(p)``,   ``w_j = sum_(p in B) S_j(p)``,

the share of the image's semantics kept and of the partner's pasted. They need not sum to 1, and
the targets are ``w_i y_i + w_j y_j`` (``MixInfo.partner_weight`` holds ``w_j``). A pair with an
empty box is not mixed (the reference skips the batch then). The reference adds the two weights
to each other when the classes agree, so its loss counts that class twice; here the targets of
the two rows add up (``(w_i + w_j) y``), which is the same class mass counted once.

A map summing to 0 gives ``w_i = 1`` and ``w_j = 0`` (the reference's ``1e-8`` in the ratio).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.tree_util import Partial
from jax.typing import ArrayLike

from msda_jax import _bits
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks import _box
from msda_jax.masks._base import Sample
from msda_jax.masks._data import DataMixMethod, PairData
from msda_jax.needs import ModelView

#: the reference's guard in the ratio of map sums.
EPS = 1e-8


def box_at(centre: jax.Array, lam: jax.Array, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
  """``(low, high)`` int32 ``[d]``: the box of sides ``2 * (floor(n sqrt(1 - lam)) // 2)`` around
  ``centre`` (int ``[d]``), ``[centre - side / 2, centre + side / 2)`` clipped to the grid.

  >>> [v.tolist() for v in box_at(jnp.array([1, 6]), jnp.float32(0.75), (8, 8))]
  [[0, 4], [3, 8]]
  """
  size = _box.cut_sizes(lam, shape, sides="even")
  n = jnp.asarray(shape, jnp.int32)
  return jnp.clip(centre - size // 2, 0, n), jnp.clip(centre + size // 2, 0, n)


def reference_box(key: jax.Array, lam: jax.Array, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
  """``box_at`` a centre uniform over the pixels: the reference's ``rand_bbox`` for ``lam``."""
  return box_at(_bits.randint(key, (len(shape),), 0, jnp.asarray(shape, jnp.int32)), lam, shape)


def box_mask(low: jax.Array, high: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """bool ``[*S]``: the pixels of ``[low, high)``."""
  inside = jnp.ones(shape, bool)
  for axis, n in enumerate(shape):
    index = jnp.arange(n).reshape([n if a == axis else 1 for a in range(len(shape))])
    inside = inside & (index >= low[axis]) & (index < high[axis])
  return inside


def resized_box(
  image: jax.Array, source: tuple[jax.Array, jax.Array], target: tuple[jax.Array, jax.Array]
) -> jax.Array:
  """``image [*S, C]`` with its box ``source`` resized onto the pixels of box ``target`` (elsewhere: any value).

  Linear per axis with the corners aligned (``align_corners=True``): output ``o`` of the target
  box reads the source at ``low_s + (o - low_t) (n_s - 1) / (n_t - 1)`` (``low_s`` for a box of
  one pixel), between its two neighbours. Computed in float32, returned in the image's dtype
  (uint8 rounded).

  >>> x = jnp.arange(4.0).reshape(4, 1)
  >>> resized_box(x, (jnp.array([0]), jnp.array([2])), (jnp.array([0]), jnp.array([3])))[:3, 0].tolist()
  [0.0, 0.5, 1.0]
  """
  out = image.astype(jnp.float32)
  for axis in range(image.ndim - 1):
    n = image.shape[axis]
    src_len = (source[1][axis] - source[0][axis]).astype(jnp.float32)
    dst_len = (target[1][axis] - target[0][axis]).astype(jnp.float32)
    step = jnp.where(dst_len > 1, (src_len - 1) / jnp.maximum(dst_len - 1, 1), 0.0)
    position = source[0][axis] + (jnp.arange(n) - target[0][axis]) * step
    last = jnp.maximum(source[1][axis] - 1, source[0][axis]).astype(jnp.float32)
    position = jnp.clip(position, 0.0, last)
    below = jnp.floor(position)
    frac = (position - below).reshape([n if a == axis else 1 for a in range(image.ndim)])
    lo = below.astype(jnp.int32)
    hi = jnp.minimum(lo + 1, last.astype(jnp.int32))
    out = jnp.take(out, lo, axis=axis) * (1 - frac) + jnp.take(out, hi, axis=axis) * frac
  if image.dtype == jnp.uint8:
    return jnp.clip(jnp.round(out), 0, 255).astype(jnp.uint8)
  return out.astype(image.dtype)


def semantic_share(saliency: jax.Array, inside: jax.Array) -> jax.Array:
  """float32 ``[]``: the share ``sum_(p in box) S(p) / (sum_p S(p) + 1e-8)`` of a non-negative map."""
  total = jnp.sum(saliency)
  return jnp.sum(jnp.where(inside, saliency, 0.0)) / (total + EPS)


def class_activation_maps(logits_per_position: jax.Array, labels: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """float32 ``[B, *S]``: each image's map of its own class from ``[B, *S_l, K]`` logits per position,
  resized to ``shape`` (linear, as the reference's bilinear upsampling), shifted to a minimum of 0
  and normalised to sum 1 (a constant map: uniform)."""
  batch = logits_per_position.shape[0]
  own = jnp.take_along_axis(
    logits_per_position.reshape(batch, -1, logits_per_position.shape[-1]), labels.reshape(batch, 1, 1), axis=-1
  ).reshape(logits_per_position.shape[:-1])
  resized = jax.image.resize(own.astype(jnp.float32), (batch, *shape), method="linear")
  axes = tuple(range(1, resized.ndim))
  shifted = resized - jnp.min(resized, axis=axes, keepdims=True)
  total = jnp.sum(shifted, axis=axes, keepdims=True)
  return jnp.where(total > 0, shifted / jnp.where(total > 0, total, 1.0), 1.0 / float(shifted[0].size))


def _pasted(images: jax.Array, source: tuple[jax.Array, jax.Array], target: tuple[jax.Array, jax.Array]) -> jax.Array:
  """``resized_box`` of one image ``[*S, C]`` (boxes ``[d]``) or of a batch ``[B, *S, C]`` (boxes ``[B, d]``)."""
  if source[0].ndim == 1:
    return resized_box(images, source, target)
  return jax.vmap(resized_box)(images, source, target)


@pytree_dataclass
class SnapMix(DataMixMethod):
  """SnapMix: the partner's box ``B`` resized into the image's box ``A``; weights from semantic maps.

  ``alpha`` (traced): both boxes' ``Beta(alpha, alpha)`` (the reference's default 5 for
  fine-grained data; 1 here, CutMix's). ``layer`` (static): the model layer the train step reads
  the class-activation maps from (-1: the last stage; the head after it must be position-wise
  with a global average pool and a linear classifier, as every model in ``msda_jax.train.models``).

  >>> import numpy as np
  >>> s = np.zeros((8, 8), np.float32); s[:4] = 1.0 / 32  # the image's semantics: its top half
  >>> data = PairData(jnp.zeros((8, 8, 1)), jnp.ones((8, 8, 1)), jnp.asarray(s), jnp.full((8, 8), 1 / 64))
  >>> out = SnapMix().sample(jax.random.key(0), shape=(8, 8), lam=0.75, data=data)
  >>> inside = np.asarray(out.mask) == 0
  >>> bool(np.isclose(float(out.weight), 1 - s[inside].sum())), out.partner_weight is not None
  (True, True)
  """

  name = "snapmix"
  _positive = ("alpha",)

  alpha: ArrayLike = 1.0
  layer: int = static_field(default=-1)

  def _check(self) -> None:
    if isinstance(self.layer, bool) or not isinstance(self.layer, int) or self.layer < -1:
      raise ValueError(f"layer must be an int >= -1 (0 the input, s after stage s, -1 the last); got {self.layer!r}.")

  def check_model(self, num_stages: int) -> None:
    """Raises naming ``layer`` when it is past the model's ``num_stages`` stages."""
    if self.layer > num_stages:
      raise ValueError(
        f"layer={self.layer}: the model has layers 0 (the input) to {num_stages} (after its last stage), or -1."
      )

  def prepare(self, key: jax.Array, model: ModelView, images: jax.Array, labels: jax.Array) -> dict[str, Any]:
    """``{"saliency": [B, *S]}``: each image's class-activation map of its label (one forward pass)."""
    del key
    if model.features is None or model.head is None:
      raise ValueError(f"{type(self).__name__} reads class-activation maps: the ModelView has no features or head.")
    features = jax.lax.stop_gradient(model.features(model.to_input(images), self.layer))
    batch, spatial, channels = features.shape[0], features.shape[1:-1], features.shape[-1]
    # The head on every position alone (a 1 x 1 map): the class scores per position, the CAM.
    per_position = features.reshape((-1,) + (1,) * len(spatial) + (channels,))
    logits = jax.lax.stop_gradient(model.head(per_position, self.layer))
    class_labels = labels if labels.ndim == 1 else jnp.argmax(labels, axis=-1)
    cams = class_activation_maps(logits.reshape(batch, *spatial, -1), class_labels, images.shape[1:-1])
    return {"saliency": cams}

  def _sample_pairs(self, key: jax.Array, shape: tuple[int, ...], lam: jax.Array, data: PairData) -> Sample:
    """Every pair by ``_pair``; the partner's resize mapped over the batch."""
    pairs = super()._sample_pairs(key, shape, lam, data)
    assert pairs.paste is not None
    return pairs._replace(paste=Partial(_pasted, **pairs.paste.keywords))

  def _pair(self, key: jax.Array, lam: jax.Array, shape: tuple[int, ...], data: PairData) -> Sample:
    key_a, key_lam_b, key_b = _bits.split(key, 3)
    lam_b = super().draw_lam(key_lam_b)
    box_a = reference_box(key_a, lam, shape)
    box_b = reference_box(key_b, lam_b, shape)
    inside_a, inside_b = box_mask(*box_a, shape), box_mask(*box_b, shape)
    mixed = jnp.any(inside_a) & jnp.any(inside_b)
    mask = jnp.where(mixed & inside_a, 0.0, 1.0).astype(jnp.float32)
    weight = jnp.where(mixed, 1.0 - semantic_share(data.saliency, inside_a), 1.0)
    partner_weight = jnp.where(mixed, semantic_share(data.partner_saliency, inside_b), 0.0)
    return Sample(lam, mask, weight, Partial(resized_box, source=box_b, target=box_a), None, partner_weight)
