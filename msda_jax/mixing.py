"""Mixing a batch: images ``[B, *S, C]`` and their labels, with any two-sample method.

``x~_i = M_i * x_i + (1 - M_i) * x_p(i)`` (Eq. 1) and
``y~_i = w_i y_i + (1 - w_i) y_p(i)`` where ``w_i = mean(M_i)`` is the realised mask weight
(exact after flooring and clipping), or per pixel ``M_i y_i + (1 - M_i) y_p(i)`` for dense
label maps. Two modes, both fully vectorised:

* ``mode="batch"``: one ``lam`` and one mask for the whole batch (the official code, timm's
  batch mode);
* ``mode="example"``: one ``lam`` and one mask per example (``jax.vmap`` of the method).

``mix_batch`` checks its arguments where it is called, then does the work (pairing, drawing,
mixing) in ``_mix``. Inside the caller's ``jit`` (or ``vmap``, ``grad``, ``shard_map``) that work
is traced into the caller's program. Called outside any trace (a notebook, a data pipeline), it
is compiled: the first call per shapes and options compiles one program and later calls reuse
it, instead of running primitive by primitive. Jit the train step as usual, passing the method
as an argument (its hyper-parameters are then traced) and the keyword options as static arguments.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _backend, _batched, _sharding, _validate
from msda_jax import kmix as kmix_lib
from msda_jax import labels as labels_lib
from msda_jax import pairing as pairing_lib
from msda_jax import saliency as saliency_lib
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks._base import MixMethod, Sample
from msda_jax.masks._data import DataMixMethod, PairData

MODES = _validate.MODES
PAIRINGS = pairing_lib.PAIRINGS
LABEL_WEIGHTS = ("realised", "nominal")


class MixInfo(NamedTuple):
  """What a call of ``mix_batch`` drew, per example.

  Attributes:
    lam: float32 ``[B]`` nominal ratios.
    weight: float32 ``[B]`` realised label weight of the first image (mean of ``M``).
    partner: int32 ``[B]`` partner index of each example.
    applied: bool ``[B]`` whether mixing happened (``prob``).
    mask: float32 ``[B, *S]`` the masks used.
  """

  lam: jax.Array
  weight: jax.Array
  partner: jax.Array
  applied: jax.Array
  mask: jax.Array


def _check_lam(lam: Any, batch: int, mode: str, unbounded: bool) -> None:
  if lam is None:
    return
  if isinstance(lam, (str, bytes, bool, np.bool_)):
    raise TypeError(f"lam must be a number or an array of numbers; got {lam!r}.")
  shape = tuple(np.shape(lam))
  allowed = ((),) if mode == "batch" else ((), (batch,))
  if shape not in allowed:
    raise ValueError(f"lam must have shape {' or '.join(map(str, allowed))} in mode={mode!r}; got {shape}.")
  if not unbounded:
    _validate.check_range("lam", lam, 0.0, 1.0)
  elif (array := _validate.concrete_value(lam)) is not None and not np.isfinite(array).all():
    raise ValueError(f"lam must be finite; got {array[~np.isfinite(array)].ravel()[0]!r}.")


def _check_scalar(name: str, value: Any, shapes: tuple[tuple[int, ...], ...] = ((),)) -> None:
  """``prob`` and ``label_smoothing``: numbers (not strings or bools) of an allowed shape."""
  if isinstance(value, (str, bytes, bool, np.bool_)):
    raise TypeError(f"{name} must be a number; got {value!r}.")
  if tuple(np.shape(value)) not in shapes:
    raise ValueError(f"{name} must have shape {' or '.join(map(str, shapes))}; got {tuple(np.shape(value))}.")


def _given_lam(lam: ArrayLike, unbounded: bool) -> tuple[jax.Array, jax.Array]:
  """``(lam, ok)``: a given ratio as used, and whether it was usable (traced values).

  A non-finite ``lam`` leaves its examples unmixed (``lam = 1``); without ``unbounded`` a finite
  one outside [0, 1] is clipped into it, as the mask functions do.
  """
  lam = jnp.asarray(lam, jnp.float32)
  ok = jnp.isfinite(lam)
  lam = jnp.where(ok, lam, 1.0)
  return (lam if unbounded else jnp.clip(lam, 0.0, 1.0)), ok


def _traced(checks: list[_validate.Check]) -> list[_validate.Check]:
  """The checks whose flag is traced (concrete ones have been raised eagerly)."""
  return [c for c in checks if not isinstance(c[1], (bool, np.bool_))]


def _mix_images(images: jax.Array, partners: jax.Array, masks: jax.Array, *, clip: bool = False) -> jax.Array:
  """``M x + (1 - M) x_p`` in float32 (float64 kept), back to the input dtype (uint8 rounds).

  With ``M`` in [0, 1] a uint8 mix is a convex combination of two values in [0, 255] and rounds
  into that range; ``clip`` (for weights outside [0, 1], ``unbounded``) clips it there first.
  """
  compute = jnp.float64 if images.dtype == jnp.float64 else jnp.float32
  x = images.astype(compute)
  xp = partners.astype(compute)
  m = masks.astype(compute)
  # M x + (1 - M) x_p is exact where M is 0 or 1 (the image or its partner, bit for bit).
  mixed = m * x + (1.0 - m) * xp
  if images.dtype == jnp.uint8:
    mixed = jnp.round(mixed)
    if clip:
      mixed = jnp.clip(mixed, 0, 255)
  return mixed.astype(images.dtype)


def mix_batch(
  key: jax.Array,
  images: ArrayLike,
  labels: ArrayLike,
  method: MixMethod | kmix_lib.KMix | None,
  *,
  num_classes: int | None = None,
  mode: str = "batch",
  pairing: str = "reverse",
  groups: int = 1,
  prob: ArrayLike = 1.0,
  label_smoothing: ArrayLike = 0.0,
  lam: ArrayLike | None = None,
  unbounded: bool = False,
  spatial_ndim: int = 2,
  return_info: bool = False,
  dense_labels: bool | None = None,
  label_weight: str = "realised",
  check: bool = False,
  saliency: ArrayLike | None = None,
) -> tuple[Any, ...]:
  """Mixes a batch of images and labels (Eq. 1) with ``method``.

  Every argument is checked before any work: shapes, dtypes and options always (at trace
  time), numbers whenever they are concrete. Inside ``jit`` traced numbers cannot raise; each
  invalid value has a defined result instead (and ``check=True`` raises on it at run time):

  * a method hyper-parameter out of range (``alpha`` <= 0, NaN or infinite; ``r``, ``q``
    outside [0, 1]; ...): no mixing (``lam = 1``, images and targets unchanged, ``applied``
    false in the info);
  * ``lam`` given and not finite: that example (batch) is not mixed; finite but outside [0, 1]
    without ``unbounded``: clipped into [0, 1];
  * ``prob``: clipped into [0, 1] (NaN never mixes);
  * ``label_smoothing``: clipped into [0, 1] (NaN is 0);
  * integer labels outside ``[0, num_classes)``: that example's target row is NaN;
  * probability labels that are not rows in [0, 1] summing to 1: mixed as given;
  * ``saliency`` entries that are negative or not finite: read as 0.

  Args:
    key: a PRNG key.
    images: ``[B, *S, C]``, any float dtype or uint8 (kept; uint8 rounds).
    labels: integer ``[B]`` or ``[B, *S]`` (with ``num_classes``), or float ``[B, K]`` or
      ``[B, *S, K]``.
    method: a ``MixMethod`` (e.g. ``msda_jax.hmix()``), or ``None`` for no mixing.
    num_classes: static ``K``; required for integer labels.
    mode: static, ``"batch"`` (one ``lam`` and mask) or ``"example"`` (one per example).
    pairing: static, ``"reverse"``, ``"roll"``, ``"permute"`` or ``"derange"`` (``msda_jax.pairing``);
      an example paired with itself is left unmixed (``applied`` false).
    groups: static number of blocks of the batch axis that pairs stay in (set it to the
      number of devices the batch is sharded over).
    prob: traced probability of mixing a batch (batch mode) or an example (example mode).
    label_smoothing: traced ``eps`` applied to the targets before mixing.
    lam: optional nominal ratio, scalar or ``[B]`` (example mode), instead of sampling it.
    unbounded: static; allow a given ``lam`` outside [0, 1] (Figure 2).
    spatial_ndim: static number of spatial axes (1 audio, 2 images, 3 video).
    return_info: static; also return a ``MixInfo``.
    dense_labels: static; whether the labels are dense maps (``True``) or one per example
      (``False``); ``None`` infers it from the shapes and raises where they cannot tell (integer
      ``[B, T]`` audio labels with ``T == num_classes``: ids per frame, or one-hot rows).
    label_weight: static; ``"realised"`` (the mean of each mask, the default) or ``"nominal"``
      (``lam`` itself, timm's ``correct_lam=False``; rows only, not dense label maps).
    check: static; also check the traced values at run time (``jax.debug.callback``): an invalid
      one raises a ``JaxRuntimeError`` whose text names the argument.
    saliency: float ``[B, *S]`` non-negative saliency of each image, required by the methods that
      read the data (``method.needs_saliency``: PuzzleMix, SaliencyMix; ``msda_jax.saliency``
      computes it in a train step); moved with the images by the pairing. Checked and unused
      by the other methods. A ``msda_jax.saliency.Saliency`` (map and adversarial noise, from
      ``adversarial_saliency``) adds the noise to the images and partners mixed by a
      data-dependent method (clipped to the pixel range), after the mask is solved on the clean
      images.

  Returns:
    ``(mixed_images, mixed_targets)`` (and ``info``): images like ``images``; targets float32
    ``[B, K]`` or ``[B, *S, K]`` whose rows sum to 1.

  >>> import msda_jax
  >>> x = jnp.ones((4, 8, 8, 3)); y = jnp.array([0, 1, 2, 3])
  >>> xm, ym = mix_batch(jax.random.key(0), x, y, msda_jax.cutmix(), num_classes=4)
  >>> xm.shape, ym.shape
  ((4, 8, 8, 3), (4, 4))
  """
  batch, spatial, _ = _validate.check_images(images, spatial_ndim)
  _validate.check_choice("mode", mode, MODES)
  _validate.check_choice("pairing", pairing, PAIRINGS)
  _validate.check_choice("label_weight", label_weight, LABEL_WEIGHTS)
  _validate.check_groups(batch, groups)
  for name, flag in (("unbounded", unbounded), ("return_info", return_info), ("check", check)):
    _validate.check_bool(name, flag)
  if isinstance(method, kmix_lib.KMix):
    return _mix_k(
      key,
      images,
      labels,
      method,
      num_classes,
      mode,
      pairing,
      groups,
      prob,
      label_smoothing,
      lam,
      unbounded,
      spatial_ndim,
      return_info,
      dense_labels,
      label_weight,
      check,
    )
  if method is not None and not isinstance(method, MixMethod):
    raise TypeError(
      f"method must be a MixMethod (e.g. msda_jax.mixup() or msda_jax.from_string('mixup')), a KMix or None; "
      f"got {type(method).__name__} {method!r}."
    )
  if method is not None:
    method.check_values()  # a method rebuilt from concrete leaves (tree_map) was never checked
  _check_scalar("prob", prob, ((),) if mode == "batch" else ((), (batch,)))
  _check_scalar("label_smoothing", label_smoothing)
  _validate.check_range("prob", prob, 0.0, 1.0)
  _check_lam(lam, batch, mode, unbounded)
  needs_saliency = isinstance(method, DataMixMethod)
  if needs_saliency:
    method.check_input(spatial)  # type: ignore[union-attr]
  perturbation = None
  if isinstance(saliency, saliency_lib.Saliency):
    saliency, perturbation = saliency.map, saliency.perturbation
    if perturbation is not None:
      _check_perturbation(perturbation, np.shape(images))
  given_saliency = saliency
  saliency = _check_saliency(saliency, batch, spatial, required=method if needs_saliency else None)
  targets, dense = labels_lib.prepare_targets(
    labels,
    batch=batch,
    spatial_shape=spatial,
    num_classes=num_classes,
    label_smoothing=label_smoothing,
    dense_labels=dense_labels,
  )
  if check:
    checks = [
      *(
        []
        if given_saliency is None
        else [("saliency must be >= 0 and finite", _validate.nonnegative_ok(given_saliency), given_saliency)]
      ),
      ("prob must lie in [0.0, 1.0]", _validate.unit_ok(prob), prob),
      ("label_smoothing must lie in [0.0, 1.0]", _validate.unit_ok(label_smoothing), label_smoothing),
      *labels_lib.label_checks(labels, num_classes=num_classes),
    ]
    if method is not None:
      checks += method.constraints()
    if lam is not None:
      lam_ok = _validate.unit_ok(lam) if not unbounded else jnp.all(jnp.isfinite(jnp.asarray(lam)))
      checks.append(("lam must be finite" + ("" if unbounded else " and lie in [0.0, 1.0]"), lam_ok, lam))
    _validate.runtime_check(_traced(checks))
  if dense and label_weight == "nominal":
    raise ValueError("label_weight='nominal' weights label rows by lam; dense label maps are mixed by the mask itself.")
  if method is None:
    images = jnp.asarray(images)
    info = _unmixed_info(batch, spatial)
    return (images, targets, info) if return_info else (images, targets)
  # Numbers given as lists are arrays to the compiled function (not one argument per entry).
  prob, lam = _validate.listed_as_array(prob), _validate.listed_as_array(lam)
  arguments = (key, images, targets, method, prob, lam, saliency, perturbation)
  # Inside the caller's jit (or vmap, grad): traced into the caller's program. Outside: compiled.
  mix = (
    _mix
    if _validate.traced(arguments)
    else _compiled_mix(_backend.FORCE, _batched.CHUNK_BYTES, pairing_lib.DERANGE_ROUNDS)
  )
  return mix(
    key,
    images,
    targets,
    method,
    prob,
    lam,
    saliency,
    perturbation,
    spatial=spatial,
    dense=dense,
    mode=mode,
    pairing=pairing,
    groups=groups,
    unbounded=unbounded,
    label_weight=label_weight,
    return_info=return_info,
  )


def _mix(
  key: jax.Array,
  images: ArrayLike,
  targets: jax.Array,
  method: MixMethod,
  prob: ArrayLike,
  lam: ArrayLike | None,
  saliency: jax.Array | None,
  perturbation: saliency_lib.Perturbation | None,
  *,
  spatial: tuple[int, ...],
  dense: bool,
  mode: str,
  pairing: str,
  groups: int,
  unbounded: bool,
  label_weight: str,
  return_info: bool,
) -> tuple[Any, ...]:
  """``mix_batch``'s work on checked arguments: pair, draw, mix (Eq. 1); ``targets`` as prepared."""
  images = jnp.asarray(images)
  batch = images.shape[0]
  needs_saliency = isinstance(method, DataMixMethod)
  key_pair, key_mix, key_prob = jax.random.split(key, 3)

  # Pair: the partners' images and targets, and their indices (and saliency), moved alike.
  index = jnp.arange(batch, dtype=jnp.int32)
  paired = (images, targets, index) if saliency is None else (images, targets, index, saliency)
  if perturbation is not None and needs_saliency:
    paired = (*paired, jnp.asarray(perturbation.noise, jnp.float32))
  partner_images, partner_targets, partner, *partner_extra = pairing_lib.pair(
    key_pair, paired, pairing=pairing, groups=groups
  )
  # Sample lam, M, its weight and whether each example is mixed (prob, valid values, a partner).
  # An invalid traced hyper-parameter: draw from the defaults (no NaN reaches a sampler), mix nothing.
  usable = method.valid()
  prob = jnp.where(usable, jnp.clip(jnp.asarray(prob, jnp.float32), 0.0, 1.0), 0.0)  # NaN never mixes
  keep = None
  if needs_saliency and saliency is not None:
    data = PairData(images, partner_images, saliency, partner_extra[0])
    lams, mask, weight, applied, paste, keep = _draw_pairs(
      batch,
      method.sanitized(usable),  # type: ignore[arg-type]
      key_mix,
      key_prob,
      spatial,
      lam,
      prob,
      unbounded,
      mode,
      data,
    )
  else:
    draw = _draw_batch if mode == "batch" else _draw_examples
    lams, mask, weight, applied, paste = draw(
      batch, method.sanitized(usable), key_mix, key_prob, spatial, lam, prob, unbounded, groups
    )
  applied = applied & (partner != index)  # an example paired with itself is not mixed
  if label_weight == "nominal":
    weight = jnp.where(applied, lams, 1.0)
  images_in = images
  if perturbation is not None and needs_saliency:
    # The adversarial noise on the images mixed (the energy above read the clean ones).
    images_in = _perturb(images, perturbation.noise, applied & perturbation.on_image)
    partner_images = _perturb(partner_images, partner_extra[1], applied & perturbation.on_partner)
  if paste is not None:
    partner_images = paste(partner_images)
    if dense:
      partner_targets = paste(partner_targets)
  if keep is not None:
    # Only the examples that are mixed are transformed (an unmixed one is returned as it is).
    kept = lambda x: jnp.where(applied.reshape((batch,) + (1,) * (x.ndim - 1)), keep(x), x)
    images_in, targets_in = kept(images_in), (kept(targets) if dense else targets)
  else:
    targets_in = targets
  # Eq. 1 for the images, the realised weight (or the mask, for dense maps) for the labels.
  mixed_images = _mix_images(images_in, partner_images, mask[..., None], clip=unbounded)
  target_weight = mask[..., None] if dense else weight[:, None]
  mixed_targets = _mix_images(targets_in, partner_targets, target_weight)
  if not return_info:
    return mixed_images, mixed_targets
  info = MixInfo(lams, weight, partner, applied, jnp.broadcast_to(mask, (batch, *spatial)))
  return mixed_images, mixed_targets, info


@functools.cache
def _compiled_mix(*settings: Any) -> Callable[..., tuple[Any, ...]]:
  """``_mix`` jitted (options static), for calls outside any trace: one program per shapes and options.

  ``settings``: the module switches read while tracing (the platform form forced, the chunk size,
  the derangement's rounds); a program is kept per setting, so changing one compiles anew.
  """
  del settings
  static = ("spatial", "dense", "mode", "pairing", "groups", "unbounded", "label_weight", "return_info")
  return jax.jit(_mix, static_argnames=static)


def _mix_k(
  key: jax.Array,
  images: ArrayLike,
  labels: ArrayLike,
  method: kmix_lib.KMix,
  num_classes: int | None,
  mode: str,
  pairing: str,
  groups: int,
  prob: ArrayLike,
  label_smoothing: ArrayLike,
  lam: ArrayLike | None,
  unbounded: bool,
  spatial_ndim: int,
  return_info: bool,
  dense_labels: bool | None,
  label_weight: str,
  check: bool,
) -> tuple[Any, ...]:
  """``mix_batch`` with a ``KMix``: ``mix_k_batch`` with its options (those it has no form of raise)."""
  if pairing not in kmix_lib.PAIRINGS:
    raise ValueError(
      f"pairing={pairing!r} has no k-sample form: k-sample mixing (KMix) takes pairing 'roll' or 'permute'."
    )
  for name, used in (("lam", lam is not None), ("unbounded", unbounded), ("label_weight", label_weight != "realised")):
    if used:
      raise ValueError(
        f"{name} is not supported by k-sample mixing (KMix; its weights are vectors); leave the default."
      )
  return kmix_lib.mix_k_batch(
    key,
    images,
    labels,
    k=method.k,
    alpha=method.alpha,
    style=method.style,
    num_classes=num_classes,
    mode=mode,
    pairing=pairing,
    groups=groups,
    prob=prob,
    label_smoothing=label_smoothing,
    spatial_ndim=spatial_ndim,
    return_info=return_info,
    dense_labels=dense_labels,
    check=check,
  )


def _check_saliency(saliency: Any, batch: int, spatial: tuple[int, ...], required: Any) -> jax.Array | None:
  """The saliency as float32 ``[B, *S]`` with invalid entries read as 0; raises naming it when wrong.

  ``required``: the method that needs it (``None`` when none does).
  """
  if saliency is None:
    if required is not None:
      raise ValueError(
        f"{type(required).__name__} reads the images: pass saliency=[B, *S] maps (msda_jax.saliency.input_saliency "
        "computes them from the model and loss), to mix_batch or to the Mixer call."
      )
    return None
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


def _check_perturbation(perturbation: Any, shape: tuple[int, ...]) -> None:
  """Raises naming the field unless the noise has the images' shape and the flags are scalars."""
  if tuple(np.shape(perturbation.noise)) != tuple(shape):
    raise ValueError(
      f"saliency.perturbation.noise must have the images' shape {tuple(shape)}; got {np.shape(perturbation.noise)}."
    )
  for name in ("on_image", "on_partner"):
    if np.shape(getattr(perturbation, name)) != ():
      raise ValueError(
        f"saliency.perturbation.{name} must be a scalar bool; got shape {np.shape(getattr(perturbation, name))}."
      )


def _perturb(images: jax.Array, noise: jax.Array, where: jax.Array) -> jax.Array:
  """``clip(x + noise)`` to the pixel range (0-255 for uint8, else [0, 1]) where ``where`` [B], else ``x``."""
  top = 255.0 if images.dtype == jnp.uint8 else 1.0
  moved = jnp.clip(images.astype(jnp.float32) + noise, 0.0, top)
  if images.dtype == jnp.uint8:
    moved = jnp.round(moved)
  moved = moved.astype(images.dtype)
  return jnp.where(where.reshape((-1,) + (1,) * (images.ndim - 1)), moved, images)


def _unmixed_info(batch: int, spatial: tuple[int, ...]) -> MixInfo:
  ones = jnp.ones((batch,), jnp.float32)
  index = jnp.arange(batch, dtype=jnp.int32)
  return MixInfo(ones, ones, index, jnp.zeros((batch,), bool), jnp.ones((batch, *spatial), jnp.float32))


_Draw = tuple[jax.Array, jax.Array, jax.Array, jax.Array, Callable[[jax.Array], jax.Array] | None]


def _draw_batch(
  batch: int,
  method: MixMethod,
  key_mix: jax.Array,
  key_prob: jax.Array,
  spatial: tuple[int, ...],
  lam: ArrayLike | None,
  prob: ArrayLike,
  unbounded: bool,
  groups: int,
) -> _Draw:
  """One ``lam`` and mask for the batch: ``(lam [B], mask [1, *S], weight [B], applied [B], paste)``.

  An unapplied batch has the mask 1 and weight 1. ``paste`` maps the partners ``[B, *S, C]``.
  """
  given, lam_ok = (None, True) if lam is None else _given_lam(lam, unbounded)
  applied = (jax.random.uniform(key_prob) < prob) & lam_ok
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

  mask, weight = _backend.by_platform(on_cpu, on_accelerator, s.mask, s.weight)
  s = s._replace(mask=mask, weight=weight)
  paste = None
  if s.paste is not None:
    paste = functools.partial(_batched.map_in_chunks, s.paste, groups=groups)
  every = lambda v: jnp.broadcast_to(v, (batch,))
  return every(s.lam), s.mask[None], every(s.weight), every(applied), paste


def _draw_examples(
  batch: int,
  method: MixMethod,
  key_mix: jax.Array,
  key_prob: jax.Array,
  spatial: tuple[int, ...],
  lam: ArrayLike | None,
  prob: ArrayLike,
  unbounded: bool,
  groups: int,
) -> _Draw:
  """One ``lam`` and mask per example: ``(lam [B], mask [B, *S], weight [B], applied [B], paste)``.

  Unapplied examples have the mask 1 and weight 1. ``paste`` maps the partners ``[B, *S, C]``,
  each with its own example's draw.
  """
  keys = jax.random.split(key_mix, batch)
  per_example: Callable[..., Sample]
  args: tuple[jax.Array, ...]
  lam_ok: Any = True
  if lam is None:
    per_example, args = (lambda k: method.sample(k, shape=spatial)), (keys,)
  else:
    given, lam_ok = (jnp.broadcast_to(v, (batch,)) for v in _given_lam(lam, unbounded))
    per_example, args = (lambda k, lam_i: method.sample(k, shape=spatial, lam=lam_i)), (keys, given)
  if method.masks_in_chunks:
    s = _batched.map_in_chunks(per_example, *args, groups=groups)
  else:
    s = jax.vmap(per_example)(*args)
  applied = (jax.random.uniform(key_prob, (batch,)) < prob) & lam_ok
  mask = jnp.where(applied.reshape((batch,) + (1,) * len(spatial)), s.mask, 1.0)
  weight = jnp.where(applied, s.weight, 1.0)
  paste = None
  if s.paste is not None:
    leaves, tree = jax.tree.flatten(s.paste)

    def paste(x: jax.Array) -> jax.Array:
      # A few examples at a time (bounded temporaries); the draws follow the images' batch axis.
      each = lambda *a: jax.tree.unflatten(tree, a[:-1])(a[-1])
      return _batched.map_in_chunks(each, *(_sharding.shard_like_batch(v, x) for v in leaves), x, groups=groups)

  return s.lam, mask, weight, applied, paste


def _draw_pairs(
  batch: int,
  method: DataMixMethod,
  key_mix: jax.Array,
  key_prob: jax.Array,
  spatial: tuple[int, ...],
  lam: ArrayLike | None,
  prob: ArrayLike,
  unbounded: bool,
  mode: str,
  data: PairData,
) -> tuple[Any, ...]:
  """A data-dependent method's draw: ``(lam [B], mask [B, *S], weight [B], applied [B], paste, keep)``.

  Every pair has its own mask (it reads the pair); ``mode="batch"`` shares one ``lam`` and one
  ``prob`` draw over the batch, ``mode="example"`` draws both per pair. Batch mode with one
  pair is ``method.sample(key_mix, data=...)``. Unapplied pairs have the mask 1 and weight 1.
  """
  key_lam, key_mask = jax.random.split(key_mix)
  lam_ok: Any = True
  if lam is None:
    lams = method.draw_lam(key_lam, None if mode == "batch" else batch)
  else:
    lams, lam_ok = _given_lam(lam, unbounded)
  lams = jnp.broadcast_to(lams, (batch,))
  draws = jax.random.uniform(key_prob, () if mode == "batch" else (batch,))
  applied = jnp.broadcast_to((draws < prob) & lam_ok, (batch,))
  s = method.sample_pairs(key_mask, shape=spatial, lam=lams, data=data)
  mask = jnp.where(applied.reshape((batch,) + (1,) * len(spatial)), s.mask, 1.0)
  weight = jnp.where(applied, s.weight, 1.0)
  return lams, mask, weight, applied, s.paste, s.keep


@pytree_dataclass
class Mixer:
  """A method bundled with its batch options, to call inside a train step.

  The method's hyper-parameters and the numbers ``prob``, ``label_smoothing`` and ``lam`` are
  pytree leaves, converted to float32 scalars when the mixer is built (``0`` and ``0.0`` give the
  same program): pass the mixer as an argument of the jitted step and changing them never
  recompiles. The other options (``num_classes``, ``mode``, ``pairing``, ``groups``, ...) are
  static. Change any field with ``replace``, which checks the new values as construction does:
  ``mixer.replace(prob=0.5)``, ``mixer.replace(method=mixer.method.replace(alpha=0.3))``.
  ``mixer(key, images, labels)`` is ``mix_batch`` with these options.

  >>> import msda_jax
  >>> mixer = Mixer(msda_jax.hmix(r=0.5), num_classes=10, mode="example")
  >>> x, y = mixer(jax.random.key(0), jnp.zeros((2, 8, 8, 3)), jnp.array([1, 2]))
  >>> y.shape
  (2, 10)
  >>> float(mixer.replace(prob=0.5).prob)
  0.5
  """

  method: MixMethod | kmix_lib.KMix | None
  num_classes: int | None = static_field(default=None)
  mode: str = static_field(default="batch")
  pairing: str = static_field(default="reverse")
  groups: int = static_field(default=1)
  prob: ArrayLike = 1.0
  label_smoothing: ArrayLike = 0.0
  lam: ArrayLike | None = None
  spatial_ndim: int = static_field(default=2)
  dense_labels: bool | None = static_field(default=None)
  label_weight: str = static_field(default="realised")
  check: bool = static_field(default=False)

  def __post_init__(self) -> None:
    if self.method is not None and not isinstance(self.method, (MixMethod, kmix_lib.KMix)):
      hint = f" (msda_jax.from_string({self.method!r}) builds one from a name)" if isinstance(self.method, str) else ""
      raise TypeError(f"method must be a MixMethod or None; got {type(self.method).__name__} {self.method!r}{hint}.")
    if self.num_classes is not None:
      _validate.check_positive_int("num_classes", self.num_classes)
    _validate.check_choice("mode", self.mode, MODES)
    _validate.check_choice("pairing", self.pairing, PAIRINGS)
    _validate.check_choice("label_weight", self.label_weight, LABEL_WEIGHTS)
    _validate.check_positive_int("groups", self.groups)
    _validate.check_positive_int("spatial_ndim", self.spatial_ndim)
    if self.dense_labels is not None:
      _validate.check_bool("dense_labels", self.dense_labels)
    _validate.check_bool("check", self.check)
    for name in ("prob", "label_smoothing", "lam"):
      if getattr(self, name) is None:
        continue
      value = _validate.hyperparameter(name, getattr(self, name))
      _validate.check_range(name, value, 0.0, 1.0)
      object.__setattr__(self, name, value)

  def replace(self, **changes: Any) -> Mixer:
    """A copy with ``changes`` (field names to values), checked as construction checks."""
    return dataclasses.replace(self, **changes)

  @property
  def needs_saliency(self) -> bool:
    """Whether the method reads the images and needs ``saliency`` in the call (PuzzleMix, SaliencyMix)."""
    return bool(getattr(self.method, "needs_saliency", False))

  def __call__(
    self, key: jax.Array, images: ArrayLike, labels: ArrayLike, saliency: ArrayLike | None = None
  ) -> tuple[jax.Array, jax.Array]:
    """``mix_batch(key, images, labels, method, saliency=saliency, **options)``: ``(mixed_images, mixed_targets)``."""
    options = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "method"}
    return mix_batch(key, images, labels, self.method, saliency=saliency, **options)
