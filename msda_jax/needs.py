"""What a method reads besides the images and labels, and how a train step provides it.

Most methods mix from a key alone. Some read the model: PuzzleMix and SaliencyMix read a
saliency map of the clean batch (and PuzzleMix, optionally, adversarial noise) before mixing;
others read attention or features of the unmixed batch (TokenMix, SMMix), or relabel the mixed
batch from the model's attention after the forward pass (TransMix, MixPro). Every method says which in one place:

* ``method.needs()`` -> ``Needs(inputs, optional, outputs)``: the names of the call inputs it
  requires (``mixer(key, images, labels, saliency=...)``), those it accepts when given, and the
  model outputs it reads after the forward pass;
* ``method.prepare(key, model, images, labels)`` computes its inputs from a ``ModelView`` of the
  model (a train step calls it only when ``needs().inputs`` is not empty, so other methods cost
  nothing);
* ``method.relabel(targets, info, outputs)`` mixes the unmixed targets anew from the named model
  outputs of the mixed batch (a train step calls it only when ``needs().outputs`` is not empty;
  the model ``sow``s each output as an ``nnx.Intermediate`` under its name, only inside
  ``nnx.capture`` (``if hasattr(self, "__captures__")``, as the ViTs do: Flax deprecates a ``sow``
  outside it, and the other passes need none), and ``"logits"`` names the model's own output);
* ``method.auxiliary_loss(logits, targets, info, outputs, inputs)``, for a method that has one
  (SMMix), adds the method's own terms to the loss, from the named outputs of the mixed batch and
  the inputs its ``prepare`` made.

``INPUT_CHECKS`` holds, for every input name, the check a call runs on it before any work. A new
kind of input adds a name and a check here and a ``prepare``; the batch layer pairs every input
with the images and hands both sides to the method's ``draw``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from msda_jax import _validate


class Needs(NamedTuple):
  """The names of what a method reads beyond the images and labels.

  Attributes:
    inputs: call inputs it requires (e.g. ``("saliency",)``), computed by ``prepare``.
    optional: call inputs it accepts when given (e.g. PuzzleMix's ``"perturbation"``).
    outputs: model outputs of the mixed batch it reads in ``relabel`` (e.g. ``("attention",)``).
  """

  inputs: tuple[str, ...] = ()
  optional: tuple[str, ...] = ()
  outputs: tuple[str, ...] = ()


class ModelView(NamedTuple):
  """The model, as a method's ``prepare`` may read it (built by the train step).

  Attributes:
    loss: the mean loss of the model in inference mode on the clean labels, as a function of
      the model input ``[B, *S, C]`` (its input gradient is the saliency).
    to_input: maps images in their own units (uint8 0-255, or float) to the model input.
    features: ``features(x, layer)``: the model's features ``[B, *S_l, C_l]`` at a mixable layer
      (0 the input, ``s`` after stage ``s``, -1 the last stage) for the model input ``x``, in
      inference mode (one forward pass); ``None`` when the model gives none.
    head: ``head(features, layer)``: the network after ``layer`` applied to features
      ``[N, *S', C_l]`` of any batch and spatial size, giving logits ``[N, K]`` (inference mode);
      ``None`` when the model gives none.
    attention: ``attention(x)``: the class token's attention over the token grid ``[B, *G]`` the
      model sows as ``"attention"`` (a ViT's last block, averaged over heads) for the model input
      ``x``, in inference mode (one forward pass); ``None`` when not given.
    logits: ``logits(x)``: the model's logits ``[B, K]`` for the model input ``x`` in inference
      mode; ``None`` when not given.
  """

  loss: Callable[[jax.Array], jax.Array]
  to_input: Callable[[jax.Array], jax.Array]
  features: Callable[[jax.Array, int], jax.Array] | None = None
  head: Callable[[jax.Array, int], jax.Array] | None = None
  attention: Callable[[jax.Array], jax.Array] | None = None
  logits: Callable[[jax.Array], jax.Array] | None = None


def check_saliency(saliency: Any, batch: int, spatial: tuple[int, ...]) -> jax.Array:
  """The saliency as float32 ``[B, *S]`` with invalid entries read as 0; raises naming it when wrong."""
  if isinstance(saliency, tuple) and hasattr(saliency, "perturbation"):
    raise TypeError(
      "saliency must be a float array [B, *S]; got a Saliency: pass saliency=s.map, perturbation=s.perturbation."
    )
  if isinstance(saliency, (str, bytes, bool)) or (not hasattr(saliency, "shape") and not isinstance(saliency, list)):
    raise TypeError(f"saliency must be a float array [B, *S]; got {type(saliency).__name__}.")
  shape = tuple(np.shape(saliency))
  if shape != (batch, *spatial):
    raise ValueError(f"saliency must have shape [B, *S] = {(batch, *spatial)} (one map per image); got {shape}.")
  dtype = np.asarray(saliency).dtype if isinstance(saliency, list) else saliency.dtype
  if not jnp.issubdtype(dtype, jnp.floating) and not jnp.issubdtype(dtype, jnp.integer):
    raise TypeError(f"saliency must be a real float array; got dtype {dtype}.")
  array = _validate.concrete_value(saliency)
  if array is not None:
    bad = ~np.isfinite(array) | (array < 0)
    if bad.any():
      raise ValueError(f"saliency must be >= 0 and finite; got {float(array[bad].ravel()[0])!r}.")
  saliency = jnp.asarray(saliency, jnp.float32)
  return jnp.where(jnp.isfinite(saliency) & (saliency >= 0), saliency, 0.0)


def check_perturbation(perturbation: Any, batch: int, spatial: tuple[int, ...], images_shape: tuple[int, ...]) -> Any:
  """The perturbation, its noise float32; raises naming the field unless the noise has the images' shape
  and the flags are scalars."""
  del batch, spatial
  if not all(hasattr(perturbation, f) for f in ("noise", "on_image", "on_partner")):
    raise TypeError(f"perturbation must be a msda_jax.saliency.Perturbation; got {type(perturbation).__name__}.")
  if tuple(np.shape(perturbation.noise)) != tuple(images_shape):
    raise ValueError(
      f"perturbation.noise must have the images' shape {tuple(images_shape)}; got {np.shape(perturbation.noise)}."
    )
  for name in ("on_image", "on_partner"):
    if np.shape(getattr(perturbation, name)) != ():
      raise ValueError(f"perturbation.{name} must be a scalar bool; got shape {np.shape(getattr(perturbation, name))}.")
  return type(perturbation)(
    jnp.asarray(perturbation.noise, jnp.float32), perturbation.on_image, perturbation.on_partner
  )


def check_predictions(predictions: Any, batch: int, spatial: tuple[int, ...], images_shape: tuple[int, ...]) -> Any:
  """The predictions as float32 ``[B, K]`` (logits of the unmixed batch); raises naming them when misshapen."""
  del spatial, images_shape
  shape = tuple(np.shape(predictions))
  if len(shape) != 2 or shape[0] != batch:
    raise ValueError(f"predictions must be logits [B, K] with B = {batch} (one row per image); got shape {shape}.")
  array = _validate.concrete_value(predictions)
  if array is not None and not np.isfinite(array).all():
    raise ValueError("predictions must be finite.")
  return jnp.asarray(predictions, jnp.float32)


def runtime_checks(name: str, value: Any) -> list[_validate.Check]:
  """The run-time conditions on a traced input (``check=True``)."""
  if name == "saliency":
    return [("saliency must be >= 0 and finite", _validate.nonnegative_ok(value), value)]
  return []


#: every input name a method may declare, with its check ``(value, batch, spatial, images_shape) -> value``.
INPUT_CHECKS: dict[str, Callable[..., Any]] = {
  "saliency": lambda value, batch, spatial, images_shape: check_saliency(value, batch, spatial),
  "perturbation": check_perturbation,
  "predictions": check_predictions,
}


def check_inputs(
  method: Any, inputs: dict[str, Any], images_shape: tuple[int, ...], spatial_ndim: int
) -> dict[str, Any]:
  """The inputs ``method`` reads, checked and converted; raises naming what is missing or unknown.

  Every given input is checked; those the method does not read are then left out.
  """
  needs = Needs() if method is None else method.needs()
  name = type(method).__name__
  for key in inputs:
    if key not in INPUT_CHECKS:
      raise TypeError(f"unexpected input {key!r}: the inputs a method may read are {sorted(INPUT_CHECKS)}.")
  for key in needs.inputs:
    if inputs.get(key) is None:
      raise ValueError(
        f"{name} reads the images: pass {key}=[B, *S] maps (msda_jax.saliency.input_saliency computes them from the "
        "model and loss, method.prepare(...) computes all it needs), to mix_batch or to the Mixer call."
        if key == "saliency"
        else f"{name} needs the input {key!r}; method.prepare(...) computes it."
      )
  batch, spatial = images_shape[0], tuple(images_shape[1 : 1 + spatial_ndim])
  checked = {k: INPUT_CHECKS[k](v, batch, spatial, images_shape) for k, v in inputs.items() if v is not None}
  # Inputs the method does not read are checked (a wrong one is still a mistake) and left out.
  return {k: v for k, v in checked.items() if k in (*needs.inputs, *needs.optional)}
