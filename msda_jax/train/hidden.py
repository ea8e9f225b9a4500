"""Mixing at a hidden layer inside the train step's forward pass (Manifold Mixup, PatchUp, AlignMix).

``hidden_mixing(mixer, key, labels)`` returns the hook a model takes (``model(x, mix=hook)``,
``msda_jax.train.models``) and a function that gives the mixed targets once the forward pass has
run. The layer is drawn uniformly from the method's ``layers`` with a key folded from the step's;
at every candidate layer the hook mixes the features with the ``Mixer`` and the step's key, and
keeps them where the drawn layer is that one (a select: every candidate's mix is computed, no
branch, the cost of a few elementwise passes over the feature maps). The partners and ``lam`` are
the same at every layer; the targets are those of the drawn layer's mask (its realised weight).
A layer the model does not reach raises at trace time, naming ``layers``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from msda_jax import _bits
from msda_jax.mixer import Mixer

#: the counter folded into the step's key to draw the layer.
LAYER_SALT = 0x6C617972


def features_at(model: Callable[..., jax.Array], x: jax.Array, layer: int) -> jax.Array:
  """The features ``[B, *S_l, C_l]`` a model taking the hook computes at ``layer`` for its input ``x``.

  ``layer``: 0 the input, ``s`` after stage ``s``, -1 the last stage (``model.num_stages``). The
  forward pass runs to the end (its logits unused; under ``jit`` the layers after it are dead
  code). Raises naming ``layer`` for one the model does not reach.

  >>> from flax import nnx
  >>> from msda_jax.train.models import SmallCNN
  >>> features_at(SmallCNN(4, width=4, in_channels=1, rngs=nnx.Rngs(0)), jnp.ones((2, 8, 8, 1)), 1).shape
  (2, 4, 4, 4)
  """
  index = getattr(model, "num_stages", None) if layer == -1 else layer
  seen: dict[int, jax.Array] = {}

  def hook(i: int, h: jax.Array) -> jax.Array:
    if i == index:
      seen[i] = h
    return h

  model(x, mix=hook)
  if index not in seen:
    raise ValueError(
      f"layer={layer}: the model has no mixable layer {index} (0 is the input, s the output of stage s)."
    )
  return seen[index]


def head_after(
  model: Callable[..., jax.Array], input_shape: tuple[int, ...], features: jax.Array, layer: int
) -> jax.Array:
  """The logits ``[N, K]`` of the network after ``layer`` for ``features [N, *S', C_l]``.

  The layers before ``layer`` run on one zero input ``[1, *input_shape[1:]]`` and their output
  there is replaced by ``features`` (whose batch and spatial size may differ: the layers after it
  must accept them, as position-wise layers, a global pool and a linear head do).

  >>> from flax import nnx
  >>> from msda_jax.train.models import SmallCNN
  >>> model = SmallCNN(4, width=4, in_channels=1, rngs=nnx.Rngs(0))
  >>> head_after(model, (2, 16, 16, 1), jnp.ones((6, 1, 1, 16)), -1).shape
  (6, 4)
  """
  index = getattr(model, "num_stages", None) if layer == -1 else layer
  reached: list[int] = []

  def hook(i: int, h: jax.Array) -> jax.Array:
    if i != index:
      return h
    reached.append(i)
    return features.astype(h.dtype)

  logits = model(jnp.zeros((1, *input_shape[1:]), jnp.float32), mix=hook)
  if not reached:
    raise ValueError(
      f"layer={layer}: the model has no mixable layer {index} (0 is the input, s the output of stage s)."
    )
  return logits


def is_hidden(mixer: Mixer | None) -> bool:
  """Whether the mixer's method mixes inside the model."""
  return mixer is not None and bool(getattr(mixer.method, "hidden", False))


def _mix_features(mixer: Mixer, key: jax.Array, features: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``(mixed features, mixed targets)`` of one layer's features ``[B, *S, C]``."""
  method = mixer.method
  if getattr(method, "per_channel", False):
    # Channels as the first mask axis: [B, C, *S, 1], each channel its own squares.
    channel_mixer = mixer.replace(method=method.replace(channel_first=True), spatial_ndim=features.ndim - 1)  # type: ignore[union-attr]
    mixed, targets = channel_mixer(key, jnp.moveaxis(features, -1, 1)[..., None], labels)
    return jnp.moveaxis(mixed[..., 0], 1, -1), targets
  return mixer.replace(spatial_ndim=features.ndim - 2)(key, features, labels)


def resolved_layers(layers: tuple[int, ...], num_stages: int | None) -> tuple[int, ...]:
  """``layers`` with -1 (the last stage) replaced by ``num_stages``; raises naming ``layers`` without it.

  >>> resolved_layers((0, -1), 3)
  (0, 3)
  """
  if -1 not in layers:
    return layers
  if num_stages is None:
    raise ValueError(f"layers={layers}: -1 names the last stage, and the model gives no num_stages.")
  return tuple(sorted({num_stages if layer == -1 else layer for layer in layers}))


def hidden_mixing(
  mixer: Mixer, key: jax.Array, labels: jax.Array, num_stages: int | None = None
) -> tuple[Callable[[int, jax.Array], jax.Array], Callable[[], jax.Array]]:
  """``(hook, targets)``: the model's mixing hook and, after the forward pass, the mixed targets ``[B, K]``.

  ``num_stages``: the model's, where a layer is -1 (its last stage).

  >>> import msda_jax
  >>> from flax import nnx
  >>> from msda_jax.train.models import SmallCNN
  >>> mixer = msda_jax.Mixer(msda_jax.ManifoldMixup(layers=(1, 2)), num_classes=4)
  >>> hook, targets = hidden_mixing(mixer, jax.random.key(0), jnp.arange(4))
  >>> logits = SmallCNN(4, width=4, in_channels=1, rngs=nnx.Rngs(0))(jnp.ones((4, 8, 8, 1)), mix=hook)
  >>> targets().shape
  (4, 4)
  """
  layers = resolved_layers(mixer.method.layers, num_stages)  # type: ignore[union-attr]
  layer = jnp.asarray(layers, jnp.int32)[_bits.randint(jax.random.fold_in(key, LAYER_SALT), (), 0, len(layers))]
  seen: dict[int, jax.Array] = {}

  def hook(index: int, features: jax.Array) -> jax.Array:
    if index not in layers:
      return features
    mixed, targets = _mix_features(mixer, key, features, labels)
    seen[index] = targets
    return jnp.where(layer == index, mixed, features)

  def targets() -> jax.Array:
    missing = [index for index in layers if index not in seen]
    if missing:
      raise ValueError(
        f"layers={layers}: the model has no mixable layer {missing[0]} (0 is the input, s the output of stage s; "
        f"it reached {sorted(seen) or 'none'} of them)."
      )
    chosen = jnp.zeros_like(seen[layers[0]])
    for index in layers:
      chosen = jnp.where(layer == index, seen[index], chosen)
    return chosen

  return hook, targets
