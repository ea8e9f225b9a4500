"""The draw of a batch: each example's ``lam``, mask and label weight, and whether it is mixed.

A batch op mixes ``k`` sources per example (source 0 is the example, the others its partners
from ``msda_jax.pairing``): ``x~ = sum_m W_m * x_m`` and ``y~ = sum_m w_m y_m`` (Eq. 1). A
method's ``draw`` returns those weights as a ``Draw``; the two-sample methods (``k = 2``) give
the first source's mask ``M`` and weight ``w = mean(M)`` (the partner takes ``1 - M``), k-sample
mixing (``msda_jax.KMix``) gives all ``k`` with a source axis. The functions here are the
two-sample draws:

* ``draw_batch``: one ``lam`` and mask for the whole batch (``mode="batch"``);
* ``draw_examples``: one per example, the method's ``sample`` under ``jax.vmap``
  (``mode="example"``);
* ``draw_pairs``: the methods that read each pair (PuzzleMix, SaliencyMix) draw every pair's
  mask at once from the pair's images and saliency; ``mode`` decides whether ``lam`` and the
  ``prob`` draw are shared.

Each reads its static options (``mode``, ``groups``, ``unbounded``, the platform form and chunk
size) from the ``Mixer`` it is given and its numbers from the arguments; none checks anything
(the ``Mixer`` did). An example that is not mixed has the mask 1 and weight 1.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _backend, _batched, _bits, _sharding

if TYPE_CHECKING:
  from msda_jax.masks._base import MixMethod, Sample
  from msda_jax.masks._data import DataMixMethod
  from msda_jax.mixer import Mixer

#: a batch transform of a source ``[B, *S, C] -> [B, *S, C]`` (a pasted or moved image), or ``None``.
Transform = Callable[[jax.Array], jax.Array] | None


class Draw(NamedTuple):
  """What a batch draw decided, before any image is touched.

  Attributes:
    lam: float32 ``[B]`` nominal ratios (``[B, k]`` weight vectors for k sources).
    mask: float32 ``[B, *S]`` or ``[1, *S]`` (one for the batch): the first source's pixel weight
      ``M``; ``[B | 1, k, *S]`` with k sources.
    weight: float32 ``[B]`` realised label weight ``mean(M)`` (``[B, k]`` with k sources).
    applied: bool ``[B]`` whether the example is mixed.
    paste: what the partner (source 1) is replaced by before mixing (a batch transform), or ``None``.
    keep: likewise for the example itself (source 0), applied to mixed examples only, or ``None``.
    moves: int32 ``[B | 1, k, d]``: with k sources, where each source is read from
      (``x_m[i + moves[:, m]]``, cyclically; RICAP's crops), or ``None``.
    owner: int32 ``[B | 1, *S]``: with one-hot source masks, the source of each pixel (the batch
      layer then mixes by one gather), or ``None``.
    partner_weight: float32 ``[B]`` the partner's label weight where it is not ``1 - weight``
      (SnapMix), or ``None``.
  """

  lam: jax.Array
  mask: jax.Array
  weight: jax.Array
  applied: jax.Array
  paste: Transform = None
  keep: Transform = None
  moves: jax.Array | None = None
  owner: jax.Array | None = None
  partner_weight: jax.Array | None = None


def given_lam(lam: ArrayLike, unbounded: bool) -> tuple[jax.Array, jax.Array]:
  """``(lam, ok)``: a given ratio as used, and whether it was usable (traced values).

  A non-finite ``lam`` leaves its examples unmixed (``lam = 1``); without ``unbounded`` a finite
  one outside [0, 1] is clipped into it, as the mask functions do.

  >>> [v.tolist() for v in given_lam(jnp.array([0.5, 1.5, jnp.nan]), unbounded=False)]
  [[0.5, 1.0, 1.0], [True, True, False]]
  """
  lam = jnp.asarray(lam, jnp.float32)
  ok = jnp.isfinite(lam)
  lam = jnp.where(ok, lam, 1.0)
  return (lam if unbounded else jnp.clip(lam, 0.0, 1.0)), ok


def draw_batch(
  method: MixMethod, key: jax.Array, shape: tuple[int, ...], lam: ArrayLike | None, prob: ArrayLike, mixer: Mixer
) -> Draw:
  """One ``lam`` and mask for the batch of ``shape = (B, *S)``: a ``[1, *S]`` mask.

  ``key`` is the batch's key: its second and third thirds (``split(key, 3)``) draw the sample
  and the ``prob`` coin. ``paste`` maps the partners ``[B, *S, C]`` with the one draw.
  """
  batch, spatial = shape[0], shape[1:]
  _, key_mix, key_prob = _bits.split(key, 3)
  given, lam_ok = (None, True) if lam is None else given_lam(lam, mixer.unbounded)
  applied = (_bits.uniform(key_prob, ()) < prob) & lam_ok
  # One draw, traced once for both forms below (an unmixed batch keeps its lam, for the info).
  s = method.sample(key_mix, shape=spatial, lam=given)

  def on_cpu(mask: jax.Array, weight: jax.Array) -> tuple[jax.Array, jax.Array]:
    # The one mask made apart from the mixing pass (XLA:CPU fuses nothing across a conditional):
    # fused into it, a mask computed per pixel (Bernoulli's random words) is computed again for
    # every example and channel.
    one = _backend.varying_like(jnp.float32(1.0), key_mix, s.lam)
    return jax.lax.cond(applied, lambda: (mask, weight), lambda: (jnp.broadcast_to(one, spatial), one))

  def on_accelerator(mask: jax.Array, weight: jax.Array) -> tuple[jax.Array, jax.Array]:
    return jnp.where(applied, mask, 1.0), jnp.where(applied, weight, 1.0)

  mask, weight = _backend.by_platform(on_cpu, on_accelerator, s.mask, s.weight, platform=mixer.platform)
  paste = None
  if s.paste is not None:
    paste = functools.partial(_batched.map_in_chunks, s.paste, **_chunking(mixer))
  every = lambda v: jnp.broadcast_to(v, (batch,))
  return Draw(every(s.lam), mask[None], every(weight), every(applied), paste)


def draw_examples(
  method: MixMethod, key: jax.Array, shape: tuple[int, ...], lam: ArrayLike | None, prob: ArrayLike, mixer: Mixer
) -> Draw:
  """One ``lam`` and mask per example of ``shape = (B, *S)``: ``[B, *S]`` masks.

  Example ``i`` is ``method.sample(split(key_mix, B)[i])``; ``paste`` maps the partners
  ``[B, *S, C]``, each with its own example's draw.
  """
  batch, spatial = shape[0], shape[1:]
  # JAX's own split and uniform: over the batch's vectors they measured faster on the CPU than fused.
  _, key_mix, key_prob = jax.random.split(key, 3)
  keys = jax.random.split(key_mix, batch)
  per_example: Callable[..., Sample]
  args: tuple[jax.Array, ...]
  lam_ok: Any = True
  if lam is None:
    per_example, args = (lambda k: method.sample(k, shape=spatial)), (keys,)
  else:
    given, lam_ok = (jnp.broadcast_to(v, (batch,)) for v in given_lam(lam, mixer.unbounded))
    per_example, args = (lambda k, lam_i: method.sample(k, shape=spatial, lam=lam_i)), (keys, given)
  with _backend.per_example():
    if method.masks_in_chunks:
      s = _batched.map_in_chunks(per_example, *args, **_chunking(mixer))
    else:
      s = jax.vmap(per_example)(*args)
  applied = (jax.random.uniform(key_prob, (batch,)) < prob) & lam_ok
  mask = jnp.where(applied.reshape((batch,) + (1,) * len(spatial)), s.mask, 1.0)
  weight = jnp.where(applied, s.weight, 1.0)
  return Draw(s.lam, mask, weight, applied, None if s.paste is None else _per_example(s.paste, mixer))


def _per_example(transforms: Any, mixer: Mixer) -> Callable[[jax.Array], jax.Array]:
  """The batch transform applying example ``i``'s ``transforms[i]`` to row ``i``, a few rows at a time."""
  leaves, tree = jax.tree.flatten(transforms)

  def transform(x: jax.Array) -> jax.Array:
    each = lambda *a: jax.tree.unflatten(tree, a[:-1])(a[-1])
    # The draws follow the images' batch axis (its devices).
    return _batched.map_in_chunks(each, *(_sharding.shard_like_batch(v, x) for v in leaves), x, **_chunking(mixer))

  return transform


def draw_pairs(
  method: DataMixMethod,
  key: jax.Array,
  data: Any,
  lam: ArrayLike | None,
  prob: ArrayLike,
  mixer: Mixer,
) -> Draw:
  """A data-dependent method's draw from ``data`` (a ``PairData`` of the batch): ``[B, *S]`` masks.

  Every pair has its own mask (it reads the pair); ``mode="batch"`` shares one ``lam`` and one
  ``prob`` coin over the batch, ``mode="example"`` draws both per pair. Batch mode with one
  pair is ``method.sample(key_mix, data=...)``.
  """
  batch, spatial = data.image.shape[0], data.image.shape[1:-1]
  _, key_mix, key_prob = _bits.split(key, 3)
  key_lam, key_mask = _bits.split(key_mix)
  lam_ok: Any = True
  if lam is None:
    lams = method.draw_lam(key_lam, None if mixer.mode == "batch" else batch)
  else:
    lams, lam_ok = given_lam(lam, mixer.unbounded)
  lams = jnp.broadcast_to(lams, (batch,))
  coins = _bits.uniform(key_prob, () if mixer.mode == "batch" else (batch,))
  applied = jnp.broadcast_to((coins < prob) & lam_ok, (batch,))
  s = method.sample_pairs(key_mask, shape=spatial, lam=lams, data=data)
  mask = jnp.where(applied.reshape((batch,) + (1,) * len(spatial)), s.mask, 1.0)
  weight = jnp.where(applied, s.weight, 1.0)
  partner_weight = None if s.partner_weight is None else jnp.where(applied, s.partner_weight, 0.0)
  return Draw(lams, mask, weight, applied, s.paste, s.keep, partner_weight=partner_weight)


def _chunking(mixer: Mixer) -> dict[str, Any]:
  """``map_in_chunks``'s static options from the mixer."""
  return {"groups": mixer.groups, "chunk_bytes": mixer.chunk_bytes, "platform": mixer.platform}
