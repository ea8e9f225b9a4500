"""The functional form of a batch mix: ``mix_batch`` and ``mix_k_batch``, thin wrappers of ``Mixer``.

``x~_i = M_i * x_i + (1 - M_i) * x_p(i)`` (Eq. 1) and ``y~_i = w_i y_i + (1 - w_i) y_p(i)`` with
``w_i = mean(M_i)`` the realised mask weight (or per pixel, for dense label maps). Each call
builds a ``Mixer`` from its options (where they are checked) and calls it; the ``*_with_info``
forms also return what was drawn. Two modes, both fully vectorised: ``mode="batch"`` (one
``lam`` and mask for the batch, the official code's and timm's batch mode) and
``mode="example"`` (one per example).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
from jax.typing import ArrayLike

from msda_jax import needs
from msda_jax.kmix import KMix
from msda_jax.mixer import LABEL_WEIGHTS, MODES, PAIRINGS, Mixer, MixInfo, number_leaf

__all__ = [
  "LABEL_WEIGHTS",
  "MODES",
  "PAIRINGS",
  "MixInfo",
  "mix_batch",
  "mix_batch_with_info",
  "mix_k_batch",
  "mix_k_batch_with_info",
]

_FIELDS = frozenset(f.name for f in dataclasses.fields(Mixer)) - {"method"}


def _mixer_and_inputs(method: Any, options: dict[str, Any]) -> tuple[Mixer, dict[str, Any]]:
  """The ``Mixer`` of ``method`` and the options that are its fields; the rest are the call's inputs."""
  if "return_info" in options:
    raise TypeError(
      "return_info is gone: mix_batch returns (images, targets); mix_batch_with_info (or Mixer.with_info) "
      "returns (images, targets, info)."
    )
  unknown = sorted(set(options) - _FIELDS - set(needs.INPUT_CHECKS))
  if unknown:
    raise TypeError(
      f"unexpected keyword {unknown[0]!r}: the options are the Mixer's fields {sorted(_FIELDS)} and the inputs a "
      f"method may read {sorted(needs.INPUT_CHECKS)}."
    )
  config = {name: value for name, value in options.items() if name in _FIELDS}
  inputs = {name: value for name, value in options.items() if name not in _FIELDS}
  return Mixer(method, **config), inputs


def mix_batch(
  key: jax.Array, images: ArrayLike, labels: ArrayLike, method: Any, **options: Any
) -> tuple[jax.Array, jax.Array]:
  """Mixes a batch of images and labels (Eq. 1) with ``method``: ``(mixed_images, mixed_targets)``.

  ``Mixer(method, **options)(key, images, labels, **inputs)``: ``options`` are the ``Mixer``'s
  fields (``num_classes``, ``mode``, ``pairing``, ``groups``, ``prob``, ``label_smoothing``,
  ``lam``, ``unbounded``, ``spatial_ndim``, ``dense_labels``, ``label_weight``, ``check``,
  ``platform``, ``chunk_bytes``, ``derange_rounds``; see ``Mixer``), every other keyword is an
  input the method reads (``saliency``, ``perturbation``; see ``Mixer.__call__``). Everything
  is checked before any work: the options when the ``Mixer`` is built, the arrays against them.

  Args:
    key: a PRNG key.
    images: ``[B, *S, C]``, any float dtype or uint8 (kept; uint8 rounds).
    labels: integer ``[B]`` or ``[B, *S]`` (with ``num_classes``), or float ``[B, K]`` or
      ``[B, *S, K]``.
    method: a ``MixMethod`` (e.g. ``msda_jax.HMix()``), a ``KMix``, or ``None`` for no mixing.
    **options: the ``Mixer``'s options and the method's inputs.

  Returns:
    images like ``images``; float32 targets ``[B, K]`` or ``[B, *S, K]`` whose rows sum to 1.

  >>> import jax.numpy as jnp, msda_jax
  >>> x = jnp.ones((4, 8, 8, 3)); y = jnp.array([0, 1, 2, 3])
  >>> xm, ym = mix_batch(jax.random.key(0), x, y, msda_jax.CutMix(), num_classes=4)
  >>> xm.shape, ym.shape
  ((4, 8, 8, 3), (4, 4))
  """
  mixer, inputs = _mixer_and_inputs(method, options)
  return mixer(key, images, labels, **inputs)


def mix_batch_with_info(
  key: jax.Array, images: ArrayLike, labels: ArrayLike, method: Any, **options: Any
) -> tuple[Any, ...]:
  """``mix_batch`` that also returns what it drew: ``(mixed_images, mixed_targets, info)``.

  ``info`` is a ``MixInfo`` (``lam``, ``weight``, ``partner``, ``applied``, ``mask``, each
  ``[B, ...]``), or a ``KMixInfo`` (the same fields with a source axis) for a ``KMix``.

  >>> import jax.numpy as jnp, msda_jax
  >>> x, y = jnp.ones((4, 8, 8, 3)), jnp.arange(4)
  >>> _, _, info = mix_batch_with_info(jax.random.key(0), x, y, msda_jax.Mixup(), num_classes=4)
  >>> info.partner.tolist()
  [3, 2, 1, 0]
  """
  mixer, inputs = _mixer_and_inputs(method, options)
  return mixer.with_info(key, images, labels, **inputs)


def _kmix(k: Any, alpha: Any, style: Any, weights: Any, options: dict[str, Any]) -> tuple[Mixer, dict[str, Any]]:
  """The ``Mixer`` of ``KMix(k, alpha, style)`` with ``weights`` as its ``lam`` (checked under that name)."""
  method = KMix(alpha=alpha, k=k, style=style)
  if weights is not None:
    mode = options.get("mode", "batch")
    shapes = ((k,), (-1, k)) if mode == "example" else ((k,),)
    weights = number_leaf("weights", weights, shapes, f" in mode={mode!r}")
    method.check_weights("weights", weights)
  return _mixer_and_inputs(method, {**options, "lam": weights})


def mix_k_batch(
  key: jax.Array, images: ArrayLike, labels: ArrayLike, *, k: int, alpha: ArrayLike = 1.0, style: str = "mixup",
  weights: ArrayLike | None = None, **options: Any,
) -> tuple[jax.Array, jax.Array]:  # fmt: skip
  """Mixes every example with ``k - 1`` partners: ``x~_i = sum_m M_m * x_{p_m(i)}`` (Appendix B).

  ``Mixer(KMix(alpha, k, style), lam=weights, **options)(key, images, labels)``: ``w ~
  Dirichlet(alpha 1_k)`` (or ``weights``: ``[k]``, or ``[B, k]`` in example mode, rows summing to
  1) and masks from ``kmix_masks``; targets ``y~_i = sum_m mean(M_m) y_{p_m(i)}`` (rows) or
  ``sum_m M_m y_{p_m(i)}`` per pixel (dense maps). Source ``m = 0`` is the example itself; with
  ``"roll"`` (the default), ``p_m(i) = i - m`` inside its block, with ``"permute"`` ``p_1, ...,
  p_{k-1}`` are independent random permutations of the block (``k = 2`` takes every pairing).

  >>> import jax.numpy as jnp
  >>> x = jnp.ones((4, 8, 8, 3)); y = jnp.array([0, 1, 2, 3])
  >>> xm, ym = mix_k_batch(jax.random.key(0), x, y, k=3, num_classes=4)
  >>> xm.shape, ym.shape, ym.sum(-1).round(5).tolist()
  ((4, 8, 8, 3), (4, 4), [1.0, 1.0, 1.0, 1.0])
  """
  mixer, inputs = _kmix(k, alpha, style, weights, options)
  return mixer(key, images, labels, **inputs)


def mix_k_batch_with_info(
  key: jax.Array, images: ArrayLike, labels: ArrayLike, *, k: int, alpha: ArrayLike = 1.0, style: str = "mixup",
  weights: ArrayLike | None = None, **options: Any,
) -> tuple[Any, ...]:  # fmt: skip
  """``mix_k_batch`` that also returns what it drew: ``(mixed_images, mixed_targets, KMixInfo)``."""
  mixer, inputs = _kmix(k, alpha, style, weights, options)
  return mixer.with_info(key, images, labels, **inputs)
