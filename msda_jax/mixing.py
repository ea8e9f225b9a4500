"""Mixing a batch: images ``[B, *S, C]`` and their labels, with any two-sample method.

``x~_i = M_i * x_i + (1 - M_i) * x_p(i)`` (Eq. 1) and
``y~_i = w_i y_i + (1 - w_i) y_p(i)`` where ``w_i = mean(M_i)`` is the realised mask weight
(exact after flooring and clipping), or per pixel ``M_i y_i + (1 - M_i) y_p(i)`` for dense
label maps. Two modes, both fully vectorised:

* ``mode="batch"``: one ``lam`` and one mask for the whole batch (the official code, timm's
  batch mode);
* ``mode="example"``: one ``lam`` and one mask per example (``jax.vmap`` of the method).

The library does not jit; jit the caller, passing the method as an argument (its
hyper-parameters are then traced) and the keyword options as static arguments.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _batched, _validate
from msda_jax import labels as labels_lib
from msda_jax import pairing as pairing_lib
from msda_jax.masks._base import MixMethod, method_dataclass, static_field

MODES = ("batch", "example")
PAIRINGS = pairing_lib.PAIRINGS


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


def _check_images(images: Any, spatial_ndim: int) -> tuple[int, tuple[int, ...], np.dtype]:
  if not hasattr(images, "shape") or not hasattr(images, "dtype"):
    raise TypeError(f"images must be an array [B, *S, C]; got {type(images).__name__}.")
  dtype = jnp.dtype(images.dtype)
  if not (jnp.issubdtype(dtype, jnp.floating) or dtype == jnp.uint8):
    raise TypeError(f"images must be a float dtype or uint8; got {dtype}.")
  if not isinstance(spatial_ndim, int) or spatial_ndim < 1:
    raise ValueError(f"spatial_ndim must be a positive int; got {spatial_ndim!r}.")
  if images.ndim != spatial_ndim + 2:
    raise ValueError(
      f"images must be batched, [B, *S, C] with {spatial_ndim} spatial axes (ndim {spatial_ndim + 2}); "
      f"got shape {tuple(images.shape)}. Add a batch axis for a single image."
    )
  if 0 in tuple(images.shape[1:-1]):
    raise ValueError(f"images must have non-empty spatial axes; got shape {tuple(images.shape)} (a zero-size axis).")
  return int(images.shape[0]), tuple(int(n) for n in images.shape[1:-1]), dtype


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
  method: MixMethod | None,
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
  check: bool = False,
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
  * probability labels that are not rows in [0, 1] summing to 1: mixed as given.

  Args:
    key: a PRNG key.
    images: ``[B, *S, C]``, any float dtype or uint8 (kept; uint8 rounds).
    labels: integer ``[B]`` or ``[B, *S]`` (with ``num_classes``), or float ``[B, K]`` or
      ``[B, *S, K]``.
    method: a ``MixMethod`` (e.g. ``msda_jax.hmix()``), or ``None`` for no mixing.
    num_classes: static ``K``; required for integer labels.
    mode: static, ``"batch"`` (one ``lam`` and mask) or ``"example"`` (one per example).
    pairing: static, ``"reverse"``, ``"roll"`` or ``"permute"``.
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
    check: static; also check the traced values at run time (``jax.debug.callback``): an invalid
      one raises a ``JaxRuntimeError`` whose text names the argument.

  Returns:
    ``(mixed_images, mixed_targets)`` (and ``info``): images like ``images``; targets float32
    ``[B, K]`` or ``[B, *S, K]`` whose rows sum to 1.

  >>> import msda_jax
  >>> x = jnp.ones((4, 8, 8, 3)); y = jnp.array([0, 1, 2, 3])
  >>> xm, ym = mix_batch(jax.random.key(0), x, y, msda_jax.cutmix(), num_classes=4)
  >>> xm.shape, ym.shape
  ((4, 8, 8, 3), (4, 4))
  """
  batch, spatial, _ = _check_images(images, spatial_ndim)
  _validate.check_choice("mode", mode, MODES)
  _validate.check_choice("pairing", pairing, PAIRINGS)
  pairing_lib.check_groups(batch, groups)
  for name, flag in (("unbounded", unbounded), ("return_info", return_info), ("check", check)):
    _validate.check_bool(name, flag)
  if method is not None and not isinstance(method, MixMethod):
    raise TypeError(
      f"method must be a MixMethod (e.g. msda_jax.mixup() or msda_jax.from_string('mixup')) or None; "
      f"got {type(method).__name__} {method!r}."
    )
  if method is not None:
    method.check_values()  # a method rebuilt from concrete leaves (tree_map) was never checked
  _check_scalar("prob", prob, ((),) if mode == "batch" else ((), (batch,)))
  _check_scalar("label_smoothing", label_smoothing)
  _validate.check_range("prob", prob, 0.0, 1.0)
  _check_lam(lam, batch, mode, unbounded)
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
  images = jnp.asarray(images)

  key_pair, key_mix, key_prob = jax.random.split(key, 3)
  if method is None:
    ones = jnp.ones((batch,), jnp.float32)
    info = MixInfo(
      ones,
      ones,
      jnp.arange(batch, dtype=jnp.int32),
      jnp.zeros((batch,), bool),
      jnp.ones((batch, *spatial), jnp.float32),
    )
    return (images, targets, info) if return_info else (images, targets)

  partner_images, partner_targets = pairing_lib.pair(key_pair, (images, targets), pairing=pairing, groups=groups)
  prob = jnp.clip(jnp.asarray(prob, jnp.float32), 0.0, 1.0)
  # An invalid traced hyper-parameter: draw from the defaults (no NaN reaches a sampler) and mix nothing.
  usable = method.valid()
  method = method.sanitized(usable)

  if mode == "batch":
    if lam is None:
      lam_b, lam_ok = method.nominal_lam(key_mix, shape=spatial), True
    else:
      lam_b, lam_ok = _given_lam(lam, unbounded)
    applied = (jax.random.uniform(key_prob) < prob) & usable & lam_ok

    def make_mask() -> tuple[jax.Array, jax.Array]:
      # The weight from the mask's parameters: no full-resolution reduction of the mask.
      mask, mean = method.mask_and_mean(method.partner_key(key_mix), lam_b, shape=spatial)
      return jnp.asarray(mask, jnp.float32), jnp.asarray(mean, jnp.float32)

    if _batched.on_cpu():
      # The one mask of the batch made apart from the mixing pass (XLA:CPU fuses nothing across
      # a conditional): fused into it, a mask computed per pixel (Bernoulli's random words) is
      # computed again for every example and channel. A batch left unmixed makes no mask.
      def unmixed() -> tuple[jax.Array, jax.Array]:
        # Ones that vary over mesh axes (inside shard_map) as the mask would: made from its inputs.
        seed = jax.random.key_data(key_mix).ravel()[0].astype(jnp.float32)
        zero = jnp.where(False, seed + jnp.asarray(lam_b, jnp.float32), jnp.float32(0.0))
        return jnp.ones(spatial, jnp.float32) + zero, jnp.float32(1.0) + zero

      mask, mean = jax.lax.cond(applied, make_mask, unmixed)
    else:
      mask, mean = make_mask()
      mask, mean = jnp.where(applied, mask, 1.0), jnp.where(applied, mean, 1.0)
    mask = mask[None]
    weight = jnp.broadcast_to(mean, (batch,))
    if method.transforms_partner:
      partner_key = method.partner_key(key_mix)
      move = functools.partial(
        _batched.map_in_chunks, lambda x: method.transform_partner(partner_key, lam_b, x), groups=groups
      )
      partner_images, partner_targets = move(partner_images), (move(partner_targets) if dense else partner_targets)
    lams = jnp.broadcast_to(lam_b, (batch,))
    applied = jnp.broadcast_to(applied, (batch,))
  else:
    keys = jax.random.split(key_mix, batch)
    if lam is None:
      lams = jax.vmap(lambda k: jnp.asarray(method.nominal_lam(k, shape=spatial), jnp.float32))(keys)
      lam_ok = True
    else:
      lams, lam_ok = (jnp.broadcast_to(v, (batch,)) for v in _given_lam(lam, unbounded))
    # Each mask with its mean from the mask's parameters (as ``method.sample`` would draw them):
    # no full-resolution reduction of the masks.
    masks_of = lambda k, lam_i: method.mask_and_mean(method.partner_key(k), lam_i, shape=spatial)
    if method.masks_in_chunks:
      mask, means = _batched.map_in_chunks(masks_of, keys, lams, groups=groups)
    else:
      mask, means = jax.vmap(masks_of)(keys, lams)
    applied = (jax.random.uniform(key_prob, (batch,)) < prob) & usable & lam_ok
    mask = jnp.where(applied.reshape((batch,) + (1,) * spatial_ndim), mask, 1.0)
    weight = jnp.where(applied, means, 1.0)
    if method.transforms_partner:

      def move_each(x: jax.Array) -> jax.Array:
        # A few examples at a time (bounded temporaries); keys and lams follow the images' batch axis.
        keys_b = pairing_lib.shard_like_batch(keys, x)
        lams_b = pairing_lib.shard_like_batch(lams, x)
        transform = lambda k, lam_i, x_i: method.transform_partner(method.partner_key(k), lam_i, x_i)
        return _batched.map_in_chunks(transform, keys_b, lams_b, x, groups=groups)

      partner_images = move_each(partner_images)
      if dense:
        partner_targets = move_each(partner_targets)

  mixed_images = _mix_images(images, partner_images, mask[..., None], clip=unbounded)
  if dense:
    mixed_targets = _mix_images(targets, partner_targets, mask[..., None])
  else:
    mixed_targets = _mix_images(targets, partner_targets, weight[:, None])
  if not return_info:
    return mixed_images, mixed_targets
  partner = pairing_lib.partner_indices(key_pair, batch, pairing=pairing, groups=groups)
  info = MixInfo(lams, weight, partner, applied, jnp.broadcast_to(mask, (batch, *spatial)))
  return mixed_images, mixed_targets, info


@method_dataclass
class Mixer:
  """A method bundled with its batch options, to call inside a train step.

  The method is a pytree field (traced hyper-parameters); every option is static.

  >>> import msda_jax
  >>> mixer = Mixer(msda_jax.hmix(r=0.5), num_classes=10, mode="example")
  >>> x, y = mixer(jax.random.key(0), jnp.zeros((2, 8, 8, 3)), jnp.array([1, 2]))
  >>> y.shape
  (2, 10)
  """

  method: MixMethod | None
  num_classes: int | None = static_field(default=None)
  mode: str = static_field(default="batch")
  pairing: str = static_field(default="reverse")
  groups: int = static_field(default=1)
  prob: ArrayLike = 1.0
  label_smoothing: ArrayLike = 0.0
  spatial_ndim: int = static_field(default=2)
  dense_labels: bool | None = static_field(default=None)
  check: bool = static_field(default=False)

  def __post_init__(self) -> None:
    if self.method is not None and not isinstance(self.method, MixMethod):
      hint = f" (msda_jax.from_string({self.method!r}) builds one from a name)" if isinstance(self.method, str) else ""
      raise TypeError(f"method must be a MixMethod or None; got {type(self.method).__name__} {self.method!r}{hint}.")
    if self.num_classes is not None and (
      isinstance(self.num_classes, bool) or not isinstance(self.num_classes, (int, np.integer)) or self.num_classes < 1
    ):
      raise ValueError(f"num_classes must be a positive int or None; got {self.num_classes!r}.")
    _validate.check_choice("mode", self.mode, MODES)
    _validate.check_choice("pairing", self.pairing, PAIRINGS)
    if isinstance(self.groups, bool) or not isinstance(self.groups, (int, np.integer)) or self.groups < 1:
      raise ValueError(f"groups must be a positive int; got {self.groups!r}.")
    if (
      isinstance(self.spatial_ndim, bool)
      or not isinstance(self.spatial_ndim, (int, np.integer))
      or self.spatial_ndim < 1
    ):
      raise ValueError(f"spatial_ndim must be a positive int; got {self.spatial_ndim!r}.")
    if self.dense_labels is not None:
      _validate.check_bool("dense_labels", self.dense_labels)
    _validate.check_bool("check", self.check)
    for name in ("prob", "label_smoothing"):
      value = _validate.hyperparameter(name, getattr(self, name))
      _validate.check_range(name, value, 0.0, 1.0)
      object.__setattr__(self, name, value)

  def __call__(self, key: jax.Array, images: ArrayLike, labels: ArrayLike) -> tuple[jax.Array, jax.Array]:
    options = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "method"}
    return mix_batch(key, images, labels, self.method, **options)
