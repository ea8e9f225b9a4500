"""k-sample mixing with Dirichlet weights (Appendix B).

Each example is mixed with ``k - 1`` partners of its batch:
``x~_i = sum_m M_m * x_{p_m(i)}`` with ``p_0(i) = i``, masks ``M_m`` that sum to 1 at every
pixel and a weight vector ``w ~ Dirichlet(alpha 1_k)``. Two mask styles:

* ``"mixup"``: ``M_m = w_m 1`` (k-way Mixup);
* ``"categorical"``: every pixel is taken from source ``m`` with probability ``w_m``,
  independently (one-hot over the ``k`` sources; the k-way Bernoulli mask).

Labels are mixed with the realised weights ``mean(M_m)`` (rows) or per pixel (dense maps).
For ``k = 2`` and the ``"mixup"`` style this is ``mix_batch`` with Mixup and ``"roll"`` pairing.
``mix_k_batch`` checks its arguments where it is called, then does the work in ``_mix_k``: traced
into the caller's program inside its ``jit``, compiled (one program per shapes and options) when
called outside any trace. Keep the options static and ``alpha`` traced in the caller's jit.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _validate, lam_laws
from msda_jax import labels as labels_lib
from msda_jax import pairing as pairing_lib
from msda_jax._dataclass import pytree_dataclass, static_field

STYLES = ("mixup", "categorical")
PAIRINGS = pairing_lib.K_PAIRINGS
#: tolerance on the sum of a given weight vector.
SUM_TOL = 1e-4


class KMixInfo(NamedTuple):
  """What a call of ``mix_k_batch`` drew, per example: ``MixInfo``'s fields with a source axis.

  Attributes:
    lam: float32 ``[B, k]`` the drawn (or given) weight vectors ``w`` (nominal).
    weight: float32 ``[B, k]`` realised weights ``mean(M_m)`` (the label weights).
    partner: int32 ``[B, k]`` index of source ``m`` of each example (column 0 is the example).
    applied: bool ``[B]`` whether the example was mixed (an invalid traced ``alpha`` or
      ``weights`` row gives ``e_0``: not mixed).
    mask: float32 ``[B, k, *S]`` the masks used.
  """

  lam: jax.Array
  weight: jax.Array
  partner: jax.Array
  applied: jax.Array
  mask: jax.Array


@pytree_dataclass
class KMix:
  """k-sample mixing by name (``from_string("mix_k_batch(k=3)")``, ``Mixer``, training configs).

  The options of ``mix_k_batch``: ``alpha`` traced, ``k`` and ``style`` static. ``mix_batch``
  (and so ``Mixer``) given a ``KMix`` calls ``mix_k_batch`` with its own ``mode``, ``pairing``
  (``"roll"`` or ``"permute"``: the reversal has no k-source form), ``groups`` and label options.

  >>> KMix(k=3)
  KMix(alpha=1.0, k=3, style='mixup')
  """

  name = "mix_k_batch"

  alpha: ArrayLike = 1.0
  k: int = static_field(default=3)
  style: str = static_field(default="mixup")

  def __post_init__(self) -> None:
    _check_k(self.k)
    _validate.check_choice("style", self.style, STYLES)
    object.__setattr__(self, "alpha", _validate.hyperparameter("alpha", self.alpha))
    _validate.check_positive("alpha", self.alpha)

  def __repr__(self) -> str:
    concrete = _validate.concrete_value(self.alpha)
    alpha = float(str(np.float32(concrete))) if concrete is not None and concrete.ndim == 0 else self.alpha
    return f"KMix(alpha={alpha!r}, k={self.k!r}, style={self.style!r})"

  def replace(self, **changes: Any) -> KMix:
    """A copy with ``changes``, checked as construction checks."""
    return dataclasses.replace(self, **changes)


def _check_k(k: Any, block: int | None = None) -> None:
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
    raise ValueError(f"k must be an int >= 2 (the number of mixed samples); got {k!r}.")
  if block is not None and k > block:
    raise ValueError(f"k={k} must not exceed the block size {block} (batch / groups): each source must be distinct.")


def _check_weight_values(name: str, weights: Any) -> None:
  """Non-negative rows summing to 1, when the values are known."""
  array = _validate.concrete_value(weights)
  if array is None:
    return
  if not np.isfinite(array).all():
    raise ValueError(f"{name} must be finite; got {array.tolist()}.")
  if (array < 0).any():
    raise ValueError(f"{name} must be non-negative; got {array[array < 0].ravel()[0]!r}.")
  sums = array.sum(axis=-1)
  if (np.abs(sums - 1.0) > SUM_TOL).any():
    bad = np.ravel(sums)[np.argmax(np.ravel(np.abs(sums - 1.0)))]
    raise ValueError(f"{name} must sum to 1 over the last axis (the k sources); got a sum of {float(bad)!r}.")


def _weights_ok(weights: ArrayLike) -> Any:
  """Per row: finite, non-negative and summing to 1 within ``SUM_TOL``; ``True`` when concrete (checked)."""
  if _validate.concrete_value(weights) is not None:
    return True
  w = jnp.asarray(weights, jnp.float32)
  return jnp.all(jnp.isfinite(w) & (w >= 0.0), axis=-1) & (jnp.abs(jnp.sum(w, axis=-1) - 1.0) <= SUM_TOL)


def _usable(w: jax.Array, ok: Any) -> jax.Array:
  """``w`` where ``ok``, else ``e_0`` (the example itself: no mixing), row by row."""
  if isinstance(ok, (bool, np.bool_)) and ok:
    return w
  identity = jax.nn.one_hot(0, w.shape[-1], dtype=w.dtype)
  return jnp.where(jnp.asarray(ok)[..., None], w, identity)


def kmix_masks(key: jax.Array | None, weights: ArrayLike, *, shape: tuple[int, ...], style: str = "mixup") -> jax.Array:
  """The ``k`` masks of one example, float32 ``[k, *shape]``, summing to 1 at every pixel.

  ``"mixup"``: ``M_m = w_m 1``. ``"categorical"``: each pixel ``j`` picks one source
  ``c_j ~ Categorical(w)`` independently and ``M_m[j] = 1[c_j = m]``, so ``E[M_m] = w_m 1``.

  Args:
    key: a PRNG key; unused (may be ``None``) by ``"mixup"``.
    weights: traced weight vector ``w``, ``[k]`` with ``k >= 2``, non-negative, summing to 1.
    shape: static spatial shape.
    style: static, ``"mixup"`` or ``"categorical"``.

  Returns:
    float32 ``[k, *shape]``.

  >>> kmix_masks(None, jnp.array([0.5, 0.25, 0.25]), shape=(2,)).tolist()
  [[0.5, 0.5], [0.25, 0.25], [0.25, 0.25]]
  >>> m = kmix_masks(jax.random.key(0), jnp.array([0.2, 0.3, 0.5]), shape=(4, 4), style="categorical")
  >>> m.shape, bool((m.sum(0) == 1).all())
  ((3, 4, 4), True)
  """
  _validate.check_choice("style", style, STYLES)
  shape = _validate.check_shape("shape", shape)
  if not hasattr(weights, "shape"):
    weights = np.asarray(weights)
  if len(weights.shape) != 1 or weights.shape[0] < 2:
    raise ValueError(f"weights must be a vector [k] with k >= 2; got shape {tuple(weights.shape)}.")
  _check_weight_values("weights", weights)
  if style == "categorical" and key is None:
    raise ValueError("style='categorical' needs a PRNG key; got key=None.")
  return _masks(key, jnp.asarray(weights, jnp.float32), shape, style)


def _masks(key: jax.Array | None, w: jax.Array, shape: tuple[int, ...], style: str) -> jax.Array:
  """``kmix_masks`` without the checks (``w`` float32 ``[k]``)."""
  k = int(w.shape[0])
  if style == "mixup":
    return jnp.broadcast_to(w.reshape((k,) + (1,) * len(shape)), (k, *shape))
  # Inverse CDF: source c_j = #{m < k - 1 : u_j >= w_0 + ... + w_m}, exact for zero weights.
  cdf = jnp.cumsum(w)[:-1].reshape((1,) * len(shape) + (k - 1,))
  if key is None:
    raise ValueError("style='categorical' draws the sources at random and needs a PRNG key; got key=None.")
  u = jax.random.uniform(key, (*shape, 1), jnp.float32)
  source = jnp.sum(u >= cdf, axis=-1)
  return jnp.moveaxis(jax.nn.one_hot(source, k, dtype=jnp.float32), -1, 0)


def _combine(sources: tuple[jax.Array, ...], weights: list[jax.Array]) -> jax.Array:
  """``sum_{m<k-1} W_m x_m + (1 - sum_{m<k-1} W_m) x_{k-1}`` in float32 (float64 kept).

  Uses that the weights sum to 1; for ``k = 2`` it is the arithmetic of ``mix_batch``, and it is
  exact where the masks are 0 or 1. The result has the sources' dtype (uint8 rounds and clips).
  """
  dtype = sources[0].dtype
  compute = jnp.float64 if dtype == jnp.float64 else jnp.float32
  mixed = jnp.zeros((), compute)
  rest = jnp.ones((), compute)
  for x, w in zip(sources[:-1], weights[:-1], strict=True):
    w = w.astype(compute)
    mixed = mixed + w * x.astype(compute)
    rest = rest - w
  mixed = mixed + rest * sources[-1].astype(compute)
  if dtype == jnp.uint8:
    mixed = jnp.clip(jnp.round(mixed), 0, 255)
  return mixed.astype(dtype)


def mix_k_batch(
  key: jax.Array,
  images: ArrayLike,
  labels: ArrayLike,
  *,
  k: int,
  alpha: ArrayLike = 1.0,
  style: str = "mixup",
  num_classes: int | None = None,
  mode: str = "batch",
  pairing: str = "roll",
  groups: int = 1,
  prob: ArrayLike = 1.0,
  label_smoothing: ArrayLike = 0.0,
  weights: ArrayLike | None = None,
  spatial_ndim: int = 2,
  return_info: bool = False,
  dense_labels: bool | None = None,
  check: bool = False,
) -> tuple[jax.Array, jax.Array] | tuple[jax.Array, jax.Array, KMixInfo]:
  """Mixes every example with ``k - 1`` partners: ``x~_i = sum_m M_m * x_{p_m(i)}``.

  ``w ~ Dirichlet(alpha 1_k)`` and masks ``M_m`` from ``kmix_masks``; targets
  ``y~_i = sum_m mean(M_m) y_{p_m(i)}`` (rows) or ``sum_m M_m y_{p_m(i)}`` per pixel (dense
  maps). Source ``m = 0`` is the example itself; with ``"roll"``, ``p_m(i) = i - m`` inside its
  block, with ``"permute"`` ``p_1, ..., p_{k-1}`` are independent random permutations of the block.

  Args:
    key: a PRNG key.
    images: ``[B, *S, C]``, any float dtype or uint8 (kept; uint8 rounds).
    labels: integer ``[B]`` or ``[B, *S]`` (with ``num_classes``), or float ``[B, K]`` or
      ``[B, *S, K]``.
    k: static number of mixed samples, ``2 <= k <=`` block size ``B / groups``.
    alpha: traced Dirichlet concentration, > 0, scalar or ``[k]``.
    style: static, ``"mixup"`` or ``"categorical"``.
    num_classes: static ``K``; required for integer labels.
    mode: static, ``"batch"`` (one ``w`` and mask set) or ``"example"`` (one per example).
    pairing: static, ``"roll"`` or ``"permute"``.
    groups: static number of blocks of the batch axis that sources stay in.
    prob: traced probability of mixing the batch (batch mode) or each example (example mode);
      an unmixed one gets the weights ``e_0``. Clipped into [0, 1] (NaN never mixes).
    label_smoothing: traced ``eps`` applied to the targets before mixing.
    weights: optional weight vector instead of sampling it: ``[k]``, or ``[B, k]`` in example
      mode; non-negative rows summing to 1.
    spatial_ndim: static number of spatial axes.
    return_info: static; also return a ``KMixInfo``.
    dense_labels: static; dense maps or one label per example, inferred when ``None`` (as in
      ``mix_batch``).
    check: static; also check the traced values at run time (as in ``mix_batch``).

  Inside ``jit`` an invalid traced ``alpha`` (not finite and > 0) or ``weights`` row (not finite,
  negative, or not summing to 1) leaves the examples it concerns unmixed (weights ``e_0``);
  labels and ``label_smoothing`` behave as in ``mix_batch``.

  Returns:
    ``(mixed_images, mixed_targets)`` (and ``info``): images like ``images``; targets float32
    ``[B, K]`` or ``[B, *S, K]`` whose rows sum to 1.

  >>> x = jnp.ones((4, 8, 8, 3)); y = jnp.array([0, 1, 2, 3])
  >>> xm, ym = mix_k_batch(jax.random.key(0), x, y, k=3, num_classes=4)
  >>> xm.shape, ym.shape, ym.sum(-1).round(5).tolist()
  ((4, 8, 8, 3), (4, 4), [1.0, 1.0, 1.0, 1.0])
  """
  batch, spatial, _ = _validate.check_images(images, spatial_ndim)
  _validate.check_choice("mode", mode, _validate.MODES)
  _validate.check_choice("pairing", pairing, PAIRINGS)
  _validate.check_choice("style", style, STYLES)
  _validate.check_groups(batch, groups)
  _check_k(k, batch // groups)
  k = int(k)
  for name, flag in (("return_info", return_info), ("check", check)):
    _validate.check_bool(name, flag)
  for name, value in (("alpha", alpha), ("weights", weights), ("label_smoothing", label_smoothing), ("prob", prob)):
    if isinstance(value, (str, bytes, bool, np.bool_)):
      raise TypeError(f"{name} must be a number or an array of numbers; got {value!r}.")
  if tuple(np.shape(prob)) not in (((),) if mode == "batch" else ((), (batch,))):
    raise ValueError(f"prob must be a scalar (or [B] in example mode); got shape {tuple(np.shape(prob))}.")
  _validate.check_range("prob", prob, 0.0, 1.0)
  if tuple(np.shape(label_smoothing)) != ():
    raise ValueError(f"label_smoothing must be a scalar; got shape {tuple(np.shape(label_smoothing))}.")
  if tuple(np.shape(alpha)) not in ((), (k,)):
    raise ValueError(f"alpha must be a scalar or a vector [k]=({k},); got shape {tuple(np.shape(alpha))}.")
  _validate.check_positive("alpha", alpha)
  if weights is not None:
    allowed = ((k,),) if mode == "batch" else ((k,), (batch, k))
    if tuple(np.shape(weights)) not in allowed:
      raise ValueError(
        f"weights must have shape {' or '.join(map(str, allowed))} in mode={mode!r}; got {tuple(np.shape(weights))}."
      )
    _check_weight_values("weights", weights)
  targets, dense = labels_lib.prepare_targets(
    labels,
    batch=batch,
    spatial_shape=spatial,
    num_classes=num_classes,
    label_smoothing=label_smoothing,
    dense_labels=dense_labels,
  )
  alpha_ok = _validate.positive_ok(alpha)
  if check:
    checks: list[_validate.Check] = [
      ("alpha must be > 0 and finite", alpha_ok, alpha),
      ("label_smoothing must lie in [0.0, 1.0]", _validate.unit_ok(label_smoothing), label_smoothing),
      ("prob must lie in [0.0, 1.0]", _validate.unit_ok(prob), prob),
      *labels_lib.label_checks(labels, num_classes=num_classes),
    ]
    if weights is not None:
      checks.append(("weights must be finite, non-negative rows summing to 1", _weights_ok(weights), weights))
    _validate.runtime_check([c for c in checks if not isinstance(c[1], (bool, np.bool_))])
  # Numbers given as lists are arrays to the compiled function (not one argument per entry).
  alpha, weights, prob = (_validate.listed_as_array(v) for v in (alpha, weights, prob))
  arguments = (key, images, targets, alpha, weights, prob)
  # Inside the caller's jit (or vmap, grad): traced into the caller's program. Outside: compiled.
  mix = _mix_k if _validate.traced(arguments) else _compiled_mix_k(pairing_lib.DERANGE_ROUNDS)
  return mix(
    *arguments,
    k=k,
    style=style,
    mode=mode,
    pairing=pairing,
    groups=groups,
    spatial=spatial,
    dense=dense,
    return_info=return_info,
  )


def _mix_k(
  key: jax.Array,
  images: ArrayLike,
  targets: jax.Array,
  alpha: ArrayLike,
  weights: ArrayLike | None,
  prob: ArrayLike,
  *,
  k: int,
  style: str,
  mode: str,
  pairing: str,
  groups: int,
  spatial: tuple[int, ...],
  dense: bool,
  return_info: bool,
) -> tuple[Any, ...]:
  """``mix_k_batch``'s work on checked arguments: pair, draw the weights and masks, mix; ``targets`` as prepared."""
  batch = np.shape(images)[0]
  alpha_ok = _validate.positive_ok(alpha)
  images = jnp.asarray(images)
  if not isinstance(alpha_ok, (bool, np.bool_)):  # traced: draw from a valid stand-in, use e_0 below
    alpha = jnp.where(alpha_ok, jnp.asarray(alpha, jnp.float32), 1.0)

  key_pair, key_weights, key_mask = jax.random.split(key, 3)
  prob = jnp.clip(jnp.asarray(prob, jnp.float32), 0.0, 1.0)
  unit = jax.random.uniform(jax.random.fold_in(key, 3), () if mode == "batch" else (batch,))
  drawn = unit < prob  # False where not mixed (NaN never mixes); fold_in leaves the other draws as they were
  if mode == "batch":
    w = lam_laws.sample_dirichlet(key_weights, alpha, k) if weights is None else jnp.asarray(weights, jnp.float32)
    w = _usable(w, (alpha_ok if weights is None else _weights_ok(weights)) & drawn)
    masks = _masks(key_mask, w, spatial, style)[None]
    nominal = jnp.broadcast_to(w[None], (batch, k))
  else:
    if weights is None:
      nominal = _usable(lam_laws.sample_dirichlet(key_weights, alpha, k, shape=(batch,)), drawn & alpha_ok)
    else:
      given = jnp.broadcast_to(jnp.asarray(weights, jnp.float32), (batch, k))
      ok = _weights_ok(weights)
      nominal = _usable(given, drawn & (ok if isinstance(ok, bool) else jnp.broadcast_to(ok, (batch,))))
    keys = jax.random.split(key_mask, batch)
    masks = jax.vmap(lambda kk, ww: _masks(kk, ww, spatial, style))(keys, nominal)
  realised = jnp.mean(masks, axis=tuple(range(2, 2 + len(spatial))))

  source_images, source_targets = zip(
    *pairing_lib.pair_k(key_pair, (images, targets), k, pairing=pairing, groups=groups), strict=True
  )
  pixel_weights = [masks[:, m, ..., None] for m in range(k)]
  mixed_images = _combine(source_images, pixel_weights)
  if dense:
    mixed_targets = _combine(source_targets, pixel_weights)
  else:
    mixed_targets = _combine(source_targets, [realised[:, m, None] for m in range(k)])
  if not return_info:
    return mixed_images, mixed_targets
  info = KMixInfo(
    lam=nominal,
    weight=jnp.broadcast_to(realised, (batch, k)),
    partner=pairing_lib.partner_sets(key_pair, batch, k, pairing=pairing, groups=groups),
    applied=nominal[:, 0] < 1.0,
    mask=jnp.broadcast_to(masks, (batch, k, *spatial)),
  )
  return mixed_images, mixed_targets, info


@functools.cache
def _compiled_mix_k(*settings: Any) -> Any:
  """``_mix_k`` jitted (options static), for calls outside any trace: one program per shapes and options.

  ``settings``: the module switches read while tracing (the derangement's rounds); a program is
  kept per setting.
  """
  del settings
  static = ("k", "style", "mode", "pairing", "groups", "spatial", "dense", "return_info")
  return jax.jit(_mix_k, static_argnames=static)
