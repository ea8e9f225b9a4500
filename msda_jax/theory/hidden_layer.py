"""Theorem 1 at a hidden layer: the head network, the features it reads, and the masks' law there.

Feature-level mixing (Manifold Mixup, PatchUp; the paper's Theorem 4 setting) mixes the features
``h = g(x)`` of a layer and trains the head ``f_head(h~)``. Theorem 1 applies to the head as it
does to a whole network on images: the regularisers R1-R3 of ``f_head`` at the features, with the
coefficients ``a_jk`` of the mask law over the feature map's positions. This module gives the two
pieces from a model that takes the mixing hook (``model(x, mix=hook)``, every model of
``msda_jax.train.models``): ``features_at`` (the layer's features of a batch) and ``head_at`` (the
network after the layer, one example ``[*S_l, C_l] -> [K]``). Both are plain functions of the
model: put the model in eval mode first (BatchNorm then acts per example). With them,
``regularizers_exact(head, h, y, coefficients)`` and ``regularizers_sampled(key, head, h, y,
swap_law(method, shape=S_l))`` are the exact and sampled paths at that layer.

For per-channel masks (PatchUp's reference law) the features are laid out channel-first with a
singleton channel, ``[m, C_l, *S_l, 1]`` (``channel_first=True``), so that the coefficients run over
every (channel, position) pair: ``patchup_moments`` gives them exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from msda_jax import _validate
from msda_jax.masks import _hidden
from msda_jax.theory.enumeration import ExactMoments
from msda_jax.train import hidden


def features_at(model: Callable[..., Any], images: jax.Array, layer: int, *, channel_first: bool = False) -> jax.Array:
  """The features ``[m, *S_l, C_l]`` the model computes at ``layer`` (0: the images) for ``images [m, ...]``.

  With ``channel_first`` they are returned as ``[m, C_l, *S_l, 1]``.
  """
  h = hidden.features_at(model, images, layer)
  return jnp.moveaxis(h, -1, 1)[..., None] if channel_first else h


def head_at(
  model: Callable[..., Any], layer: int, image_shape: tuple[int, ...], *, channel_first: bool = False
) -> Callable[[jax.Array], jax.Array]:
  """The network after ``layer`` for one example: features ``[*S_l, C_l]`` (or ``[C_l, *S_l, 1]``) to logits ``[K]``.

  The layers before ``layer`` run on a zero image of ``image_shape`` (``[*S, C]``) and are
  replaced by the given features at ``layer``: nothing of them reaches the output.
  """
  image_shape = tuple(image_shape)
  zeros = jnp.zeros((1, *image_shape), jnp.float32)

  def head(h: jax.Array) -> jax.Array:
    features = jnp.moveaxis(h[..., 0], 0, -1) if channel_first else h
    return model(zeros, mix=lambda index, t: features[None].astype(t.dtype) if index == layer else t)[0]

  return head


def patchup_moments(
  lam: float,
  *,
  shape: tuple[int, ...],
  gamma: float = 0.9,
  block: int = 7,
  mode: str = "soft",
  channel_first: bool = True,
) -> ExactMoments:
  """PatchUp's exact ``E[1 - M]`` and ``a_jk(lam)`` over the features' grid (float64).

  A feature is changed when a seed falls in the square around it (its ``cover`` set of seed
  positions, one channel each with ``channel_first``); seeds are independent with probability
  ``p``. So ``P(j changed) = 1 - q^|c_j|`` and ``P(j, k changed) = 1 - q^|c_j| - q^|c_k| +
  q^|c_j u c_k|`` with ``q = 1 - p``; ``1 - M`` is the change indicator (hard) or ``1 - lam`` times
  it (soft).

  >>> m = patchup_moments(0.5, shape=(1, 3), gamma=0.5, block=1, mode="hard", channel_first=False)
  >>> m.second.round(3).tolist()  # squares of one feature: independent changes
  [[0.5, 0.25, 0.25], [0.25, 0.5, 0.25], [0.25, 0.25, 0.5]]
  """
  shape = _validate.check_shape("shape", shape)
  _validate.check_choice("mode", mode, _hidden.PATCHUP_MODES)
  spatial = shape[1:] if channel_first else shape
  q = 1.0 - float(_hidden.patchup_probability(np.float32(gamma), spatial[-1], block))
  d = int(np.prod(shape))
  # cover[j, s] = whether seed s changes feature j: the same window the sampler pools over.
  window = ((1,) if channel_first else ()) + tuple(min(block, n) for n in spatial)
  index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(d, len(shape))
  low = np.array([w // 2 for w in window])
  high = np.array([w - 1 - w // 2 for w in window])
  diff = index[None, :, :] - index[:, None, :]  # [j, s, axes]: seed s minus feature j
  cover = np.all((diff >= -low) & (diff <= high), axis=-1).astype(np.float64)
  sizes = cover.sum(1)
  union = sizes[:, None] + sizes[None, :] - cover @ cover.T
  kept = q**sizes
  both_changed = 1.0 - kept[:, None] - kept[None, :] + q**union
  scale = 1.0 if mode == "hard" else (1.0 - float(np.clip(lam, 0.0, 1.0)))
  return ExactMoments(scale * (1.0 - kept), scale**2 * both_changed, 0)
