"""``Mixer``: a method and its batch options, validated once, called inside a train step.

A call reads as Eq. 1, one small stage each:

1. ``check_call``: the arrays against the options (shapes, dtypes, labels to float targets, the
   inputs the method reads); the options themselves were checked when the mixer was built;
2. ``pair_sources``: the ``k`` sources of every example (itself and its partners,
   ``msda_jax.pairing``), images, targets and inputs moved alike;
3. ``method.draw``: each example's ``lam``, mask, label weight and whether it is mixed
   (``msda_jax.draws``, ``msda_jax.KMix``);
4. ``combine``: the images by the masks and the targets by the realised weights (or the masks,
   for dense label maps), in the inputs' dtypes (``msda_jax.combine``).

Inside the caller's ``jit`` (or ``vmap``, ``grad``, ``shard_map``) the stages are traced into the
caller's program. Called outside any trace (a notebook, a data pipeline), the work is one
compiled program kept per shapes and static options (the mixer's static fields are its cache
key), instead of running primitive by primitive.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _backend, _batched, _bits, _validate, needs
from msda_jax import labels as labels_lib
from msda_jax import pairing as pairing_lib
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.combine import combine, perturb, selected, shifted
from msda_jax.draws import Draw
from msda_jax.kmix import KMix, KMixInfo
from msda_jax.masks._base import MixMethod
from msda_jax.transport_pairing import check_transport

MODES = _validate.MODES
PAIRINGS = pairing_lib.PAIRINGS
LABEL_WEIGHTS = ("realised", "nominal")


class MixInfo(NamedTuple):
  """What a two-sample call drew, per example (``Mixer.with_info``, ``mix_batch_with_info``).

  Attributes:
    lam: float32 ``[B]`` nominal ratios.
    weight: float32 ``[B]`` realised label weight of the first image (mean of ``M``).
    partner: int32 ``[B]`` partner index of each example.
    applied: bool ``[B]`` whether mixing happened (``prob``).
    mask: float32 ``[B, *S]`` the masks used.
    partner_weight: float32 ``[B]`` the partner's label weight: ``1 - weight``, except for a
      method whose two weights need not sum to 1 (SnapMix).
  """

  lam: jax.Array
  weight: jax.Array
  partner: jax.Array
  applied: jax.Array
  mask: jax.Array
  partner_weight: jax.Array


def number_leaf(name: str, value: Any, shapes: tuple[tuple[int, ...], ...], context: str = "") -> Any:
  """``value`` as float32 (a scalar through ``_validate.hyperparameter``), of one of ``shapes`` (``-1``: any length).

  Raises naming ``name`` (and the ``context`` text after the shapes, such as the mode) for another shape
  or a non-number.
  """
  if isinstance(value, (str, bytes, bool, np.bool_)):
    raise TypeError(f"{name} must be a number or an array of numbers; got {value!r}.")
  value = _validate.listed_as_array(value)
  shape = tuple(np.shape(value))
  fits = lambda s: len(s) == len(shape) and all(a in (-1, b) for a, b in zip(s, shape, strict=True))
  if not any(fits(s) for s in shapes):
    named = " or ".join(str(s).replace("-1", "B") for s in shapes)
    raise ValueError(f"{name} must have shape {named}{context}; got {shape}.")
  if shape == ():
    return _validate.hyperparameter(name, value)
  if isinstance(value, jax.core.Tracer):
    return value
  array = np.asarray(value)
  if array.dtype.kind not in "iuf":
    raise TypeError(f"{name} must be real numbers; got dtype {array.dtype}.")
  return value.astype(jnp.float32) if isinstance(value, jax.Array) else array.astype(np.float32)


@pytree_dataclass
class Mixer:
  """A method bundled with its batch options: the one configuration of a batch mix.

  Every option is checked when the mixer is built (and by ``replace``); a call checks only the
  arrays it is given against them. The method's hyper-parameters and ``prob``,
  ``label_smoothing`` and ``lam`` are pytree leaves, converted to float32 when the mixer is built:
  pass the mixer as an argument of the jitted step and changing them never recompiles. The
  other options are static. ``mixer(key, images, labels)`` returns ``(mixed_images,
  mixed_targets)``; ``mixer.with_info(...)`` also returns what was drawn.

  Attributes:
    method: a ``MixMethod`` (e.g. ``msda_jax.HMix()``), a ``KMix`` (k sources), or ``None`` (no
      mixing: one-hot, smoothed targets).
    num_classes: static ``K``; required for integer labels.
    mode: static, ``"batch"`` (one ``lam`` and mask) or ``"example"`` (one per example).
    pairing: static, ``"reverse"``, ``"roll"``, ``"permute"``, ``"derange"`` or ``"transport"``
      (``msda_jax.pairing``; ``"transport"`` matches partners by minimal total distance, k-mixup's
      optimal-transport pairing); ``None`` (default) is ``"reverse"``, or ``"roll"`` for a ``KMix``
      (k > 2 sources take ``"roll"`` or ``"permute"``). An example paired with itself is unmixed.
    groups: static number of blocks of the batch axis that pairs stay in (the number of devices
      the batch is sharded over, under plain ``jit`` with sharded arrays).
    prob: traced probability of mixing the batch (batch mode) or each example (example mode:
      a scalar or ``[B]``).
    label_smoothing: traced ``eps`` applied to the targets before mixing.
    lam: optional nominal ratio instead of drawing it: a scalar, or ``[B]`` in example mode
      (a ``KMix``: the weights ``[k]``, or ``[B, k]`` in example mode, rows summing to 1).
    unbounded: static; allow a given ``lam`` outside [0, 1] (Figure 2; two-sample only).
    spatial_ndim: static number of spatial axes (1 audio, 2 images, 3 video).
    dense_labels: static; dense label maps (``True``), one label per example (``False``), or
      inferred from the shapes (``None``; ``msda_jax.labels``).
    label_weight: static; ``"realised"`` (the mean of each mask) or ``"nominal"`` (``lam``
      itself, timm's ``correct_lam=False``; two-sample label rows only).
    check: static; also check the traced values at run time (an invalid one raises a
      ``JaxRuntimeError`` naming it).
    platform: static form of the per-example work (``"auto"``: chosen by the platform compiled
      for; ``"cpu"`` or ``"accelerator"`` forces one, with the same values).
    chunk_bytes: static working set of one step of the CPU form's per-example loop.
    derange_rounds: static bound on the rejection rounds of ``pairing="derange"``.
    transport_k: static chunk size of ``pairing="transport"`` (k-mixup's ``k``; each chunk's
      assignment is exact, ``O(k^3)``), which must divide the block at least twice.

  Inside ``jit`` an invalid traced number has a defined result (``check=True`` raises on it):
  a method hyper-parameter out of range mixes nothing; a non-finite ``lam`` leaves its examples
  unmixed, a finite one outside [0, 1] is clipped (without ``unbounded``); ``prob`` and
  ``label_smoothing`` are clipped into [0, 1] (NaN never mixes, NaN smoothing is 0); integer
  labels out of range give NaN target rows; saliency entries that are negative or not finite
  are read as 0.

  >>> import msda_jax
  >>> mixer = Mixer(msda_jax.HMix(r=0.5), num_classes=10, mode="example")
  >>> x, y = mixer(jax.random.key(0), jnp.zeros((2, 8, 8, 3)), jnp.array([1, 2]))
  >>> y.shape
  (2, 10)
  >>> float(mixer.replace(prob=0.5).prob)
  0.5
  """

  method: MixMethod | KMix | None
  num_classes: int | None = static_field(default=None)
  mode: str = static_field(default="batch")
  pairing: str | None = static_field(default=None)
  groups: int = static_field(default=1)
  prob: ArrayLike = 1.0
  label_smoothing: ArrayLike = 0.0
  lam: ArrayLike | None = None
  unbounded: bool = static_field(default=False)
  spatial_ndim: int = static_field(default=2)
  dense_labels: bool | None = static_field(default=None)
  label_weight: str = static_field(default="realised")
  check: bool = static_field(default=False)
  platform: str = static_field(default="auto")
  chunk_bytes: int = static_field(default=_batched.CHUNK_BYTES)
  derange_rounds: int = static_field(default=pairing_lib.DERANGE_ROUNDS)
  transport_k: int = static_field(default=8)

  def __post_init__(self) -> None:
    method = self.method
    if method is not None and not isinstance(method, (MixMethod, KMix)):
      hint = f" (msda_jax.from_string({method!r}) builds one from a name)" if isinstance(method, str) else ""
      raise TypeError(
        f"method must be a MixMethod (e.g. msda_jax.Mixup()), a KMix or None; "
        f"got {type(method).__name__} {method!r}{hint}."
      )
    if method is not None:
      method.check_values()
    if self.num_classes is not None:
      _validate.check_positive_int("num_classes", self.num_classes)
    _validate.check_choice("mode", self.mode, MODES)
    _validate.check_choice("label_weight", self.label_weight, LABEL_WEIGHTS)
    _validate.check_choice("platform", self.platform, _backend.PLATFORMS)
    for name in ("groups", "spatial_ndim", "chunk_bytes", "derange_rounds"):
      _validate.check_positive_int(name, getattr(self, name))
    check_transport(self.transport_k)
    for name in ("unbounded", "check"):
      _validate.check_bool(name, getattr(self, name))
    if self.dense_labels is not None:
      _validate.check_bool("dense_labels", self.dense_labels)
    object.__setattr__(self, "pairing", self._pairing())
    self._check_numbers()

  def _pairing(self) -> str:
    """The pairing, its default resolved; raises for one the method's sources have no form of."""
    many = self.method is not None and self.method.sources > 2
    default = "reverse" if self.method is None else self.method.default_pairing
    pairing = self.pairing if self.pairing is not None else default
    _validate.check_choice("pairing", pairing, PAIRINGS)
    allowed = getattr(self.method, "pairings", None)
    if allowed is not None and pairing not in allowed:
      raise ValueError(
        f"pairing must be one of {allowed} for {type(self.method).__name__} (its sources are its partition's "
        f"inputs in that order); got {pairing!r}."
      )
    if many and pairing not in pairing_lib.K_PAIRINGS:
      raise ValueError(
        f"pairing must be one of {pairing_lib.K_PAIRINGS} for k-sample mixing (KMix with k > 2: the reversal and the "
        f"derangement have no k-source form); got {pairing!r}."
      )
    return pairing

  def _check_numbers(self) -> None:
    """``prob``, ``label_smoothing`` and ``lam`` as float32, their shapes and concrete values checked."""
    example = self.mode == "example"
    where = f" in mode={self.mode!r}"
    prob = number_leaf("prob", self.prob, ((), (-1,)) if example else ((),), where)
    _validate.check_range("prob", prob, 0.0, 1.0)
    smoothing = number_leaf("label_smoothing", self.label_smoothing, ((),))
    _validate.check_range("label_smoothing", smoothing, 0.0, 1.0)
    object.__setattr__(self, "prob", prob)
    object.__setattr__(self, "label_smoothing", smoothing)
    one = () if self.method is None else self.method.lam_shape
    if one:  # a vector of weights per draw (k sources)
      for name, used in (("unbounded", self.unbounded), ("label_weight", self.label_weight != "realised")):
        if used:
          raise ValueError(
            f"{name} is not supported by k-sample mixing (KMix; its weights are vectors); leave the default."
          )
    if self.lam is None:
      return
    lam = number_leaf("lam", self.lam, (one, (-1, *one)) if example else (one,), where)
    if self.method is not None:
      self.method.check_lam(lam, self.unbounded)
    else:
      _validate.check_range("lam", lam, 0.0, 1.0)
    object.__setattr__(self, "lam", lam)

  def check_values(self) -> None:
    """Raises naming the field for a concrete number out of range.

    Construction checks them; a mixer rebuilt from its leaves (``jax.tree.map``, a jitted
    function's arguments) is not constructed, so a call checks its concrete numbers again.
    """
    if self.method is not None:
      self.method.check_values()
    _validate.check_range("prob", self.prob, 0.0, 1.0)
    _validate.check_range("label_smoothing", self.label_smoothing, 0.0, 1.0)
    if self.lam is not None and self.method is not None:
      self.method.check_lam(self.lam, self.unbounded)

  def replace(self, **changes: Any) -> Mixer:
    """A copy with ``changes`` (field names to values), checked as construction checks."""
    return dataclasses.replace(self, **changes)

  def needs(self) -> needs.Needs:
    """What the method reads besides the images and labels (``msda_jax.needs``)."""
    return needs.Needs() if self.method is None else self.method.needs()

  def unmixed_targets(self, images: ArrayLike, labels: ArrayLike) -> jax.Array:
    """The targets before mixing (one-hot, smoothed), float32 ``[B, K]`` or ``[B, *S, K]``.

    What ``method.relabel`` mixes anew after the forward pass.
    """
    batch, spatial, _ = _validate.check_images(images, self.spatial_ndim)
    return self._targets(labels, batch, spatial)[0]

  def _targets(self, labels: ArrayLike, batch: int, spatial: tuple[int, ...]) -> tuple[jax.Array, bool]:
    """``(targets, dense)``: the labels checked and one-hot encoded, smoothed (``msda_jax.labels``)."""
    return labels_lib.prepare_targets(
      labels, batch=batch, spatial_shape=spatial, num_classes=self.num_classes,
      label_smoothing=self.label_smoothing, dense_labels=self.dense_labels,
    )  # fmt: skip

  def __call__(
    self, key: jax.Array, images: ArrayLike, labels: ArrayLike, **inputs: Any
  ) -> tuple[jax.Array, jax.Array]:
    """Mixes a batch (Eq. 1): ``(mixed_images, mixed_targets)``.

    Args:
      key: a PRNG key.
      images: ``[B, *S, C]``, any float dtype or uint8 (kept; uint8 rounds).
      labels: integer ``[B]`` or ``[B, *S]`` (with ``num_classes``), or float ``[B, K]`` or
        ``[B, *S, K]``.
      **inputs: what the method reads besides them (``method.needs()``, computed by
        ``method.prepare``): ``saliency`` float ``[B, *S]`` non-negative maps for PuzzleMix and
        SaliencyMix; ``perturbation`` (``msda_jax.saliency.Perturbation``), PuzzleMix's
        adversarial noise. Inputs a method does not read are checked and ignored.

    Returns:
      images like ``images``; float32 targets ``[B, K]`` or ``[B, *S, K]`` whose rows sum to 1.
    """
    return self.with_info(key, images, labels, **inputs)[:2]

  def with_info(self, key: jax.Array, images: ArrayLike, labels: ArrayLike, **inputs: Any) -> tuple[Any, ...]:
    """``(mixed_images, mixed_targets, info)``: the call, and a ``MixInfo`` (``KMixInfo`` for a ``KMix``)."""
    images, targets, dense, inputs = check_call(self, key, images, labels, inputs)
    arguments = (self, key, images, targets, inputs)
    # Inside the caller's jit (or vmap, grad): traced into the caller's program. Outside: compiled.
    work = _mix if _validate.traced(arguments) else _compiled_mix
    return work(*arguments, dense=dense)  # type: ignore[no-any-return]


def check_call(
  mixer: Mixer, key: Any, images: ArrayLike, labels: ArrayLike, inputs: dict[str, Any]
) -> tuple[jax.Array, jax.Array, bool, dict[str, Any]]:
  """The arrays of a call checked against the mixer's options: ``(images, targets, dense, inputs)``.

  Raises naming the argument for a wrong shape, dtype or layout, before any work; with
  ``check=True`` adds the run-time checks of the traced values.
  """
  if isinstance(key, (int, np.integer)):
    raise TypeError(f"key must be a PRNG key (jax.random.key({key})); got the int {key!r}.")
  if "return_info" in inputs:
    raise TypeError(
      "return_info is not an option of a call: mixer(...) returns (images, targets); mixer.with_info(...) "
      "also returns the info."
    )
  batch, spatial, _ = _validate.check_images(images, mixer.spatial_ndim)
  _validate.check_groups(batch, mixer.groups)
  method = mixer.method
  if mixer.mode == "example":
    rows = {"prob": 1, "lam": 1 + (0 if method is None else len(method.lam_shape))}
    for name, ndim in rows.items():
      value = getattr(mixer, name)
      if value is not None and np.ndim(value) == ndim and np.shape(value)[0] != batch:
        raise ValueError(
          f"{name} must have shape {'(k,) or (B, k)' if ndim == 2 else '() or (B,)'} with B = {batch} in "
          f"mode='example' (one per example); got {np.shape(value)}."
        )
  if method is not None:
    method.check_input(spatial, batch // mixer.groups)
  if mixer.pairing == "transport":
    check_transport(mixer.transport_k, batch // mixer.groups)
  mixer.check_values()
  given = inputs
  inputs = needs.check_inputs(method, inputs, tuple(np.shape(images)), mixer.spatial_ndim)
  targets, dense = mixer._targets(labels, batch, spatial)
  if dense and mixer.label_weight == "nominal":
    raise ValueError("label_weight='nominal' weights label rows by lam; dense label maps are mixed by the mask itself.")
  if mixer.check:
    _runtime_checks(mixer, labels, given)
  return jnp.asarray(images), targets, dense, inputs


def _runtime_checks(mixer: Mixer, labels: ArrayLike, inputs: dict[str, Any]) -> None:
  """``check=True``: raise at run time on the first invalid traced value."""
  checks: list[_validate.Check] = [
    *(c for name, value in inputs.items() for c in needs.runtime_checks(name, value)),
    ("prob must lie in [0.0, 1.0]", _validate.unit_ok(mixer.prob), mixer.prob),
    ("label_smoothing must lie in [0.0, 1.0]", _validate.unit_ok(mixer.label_smoothing), mixer.label_smoothing),
    *labels_lib.label_checks(labels, num_classes=mixer.num_classes),
  ]
  if mixer.method is not None:
    checks += mixer.method.constraints()
    checks += mixer.method.lam_checks(mixer.lam, mixer.unbounded)
  _validate.runtime_check([c for c in checks if not isinstance(c[1], (bool, np.bool_))])


def pair_sources(mixer: Mixer, key: jax.Array, tree: dict[str, Any], k: int) -> tuple[dict[str, Any], ...]:
  """The ``k`` sources of every row of ``tree`` (source 0 the row itself), leaves ``[B, ...]`` moved alike.

  Two sources: the row and its partner by ``mixer.pairing``; more: ``pairing.pair_k``. Scalar
  leaves (flags) are not moved.
  """
  moved, fixed = _split_scalars(tree)
  pairing = str(mixer.pairing)  # resolved when the mixer was built
  if k == 2:
    partners = pairing_lib.pair(
      key,
      moved,
      pairing=pairing,
      groups=mixer.groups,
      derange_rounds=mixer.derange_rounds,
      platform=mixer.platform,
      images=tree["images"],
      transport_k=mixer.transport_k,
      saliency=_guide(mixer.method, tree.get("saliency")),
    )
    sources = (moved, partners)
  else:
    groups = mixer.groups
    narrower = getattr(mixer.method, "source_groups", None)
    if narrower is not None:  # sources kept inside smaller blocks (Co-Mixup's partitions)
      groups = narrower(tree["images"].shape[0], groups)
    sources = pairing_lib.pair_k(key, moved, k, pairing=pairing, groups=groups)
  return tuple(jax.tree.map(lambda m, f: f if m is None else m, s, fixed, is_leaf=lambda v: v is None) for s in sources)


def _guide(method: Any, saliency: jax.Array | None) -> jax.Array | None:
  """The maps the ``"greedy"`` pairing reads: as the method reads them (``method.guide``), or as given."""
  if saliency is None or not hasattr(method, "guide"):
    return saliency
  return method.guide(saliency)


def _split_scalars(tree: Any) -> tuple[Any, Any]:
  """``(tree with scalar leaves None, tree with the other leaves None)``."""
  scalar = lambda v: np.ndim(v) == 0
  moved = jax.tree.map(lambda v: None if scalar(v) else v, tree)
  fixed = jax.tree.map(lambda v: v if scalar(v) else None, tree)
  return moved, fixed


def _mix(
  mixer: Mixer, key: jax.Array, images: jax.Array, targets: jax.Array, inputs: dict[str, Any], *, dense: bool
) -> tuple[Any, ...]:
  """The work of a call on checked arrays: pair, draw, combine (Eq. 1), with the mixer's forms."""
  with _backend.forced(mixer.platform):
    return _mix_forms(mixer, key, images, targets, inputs, dense=dense)


def _mix_forms(
  mixer: Mixer, key: jax.Array, images: jax.Array, targets: jax.Array, inputs: dict[str, Any], *, dense: bool
) -> tuple[Any, ...]:
  batch = images.shape[0]
  method = mixer.method
  if method is None:
    return images, targets, _unmixed_info(images.shape[: 1 + mixer.spatial_ndim])
  # An invalid traced hyper-parameter: draw from the defaults (no NaN reaches a sampler), mix nothing.
  usable = method.valid()
  prob = jnp.where(usable, jnp.clip(jnp.asarray(mixer.prob, jnp.float32), 0.0, 1.0), 0.0)  # NaN never mixes
  index = jnp.arange(batch, dtype=jnp.int32)
  k = method.sources
  tree = {"images": images, "targets": targets, "index": index, **inputs}
  sources = pair_sources(mixer, _bits.split(key, 3)[0], tree, k)
  draw = method.sanitized(usable).draw(key, sources, mixer.lam, prob, mixer)
  if draw.weight.ndim == 1:  # two sources: an example paired with itself is not mixed
    draw = draw._replace(applied=draw.applied & (sources[1]["index"] != index))
    if draw.paste is not None:
      # Its own pasted copy (resized, moved) must not show: the mask keeps the image there.
      shown = draw.applied.reshape((-1,) + (1,) * (draw.mask.ndim - 1))
      draw = draw._replace(mask=jnp.where(shown, draw.mask, 1.0))
  if mixer.label_weight == "nominal":
    draw = draw._replace(weight=jnp.where(draw.applied, draw.lam, 1.0), partner_weight=None)
  if draw.partner_weight is not None:
    draw = draw._replace(
      weight=jnp.where(draw.applied, draw.weight, 1.0), partner_weight=jnp.where(draw.applied, draw.partner_weight, 0.0)
    )
  partners = [s["index"] for s in sources]
  pixel, label = _source_weights(draw, k)
  if draw.owner is not None and "perturbation" not in sources[0]:
    # One-hot regions: each pixel is one source's pixel, read by one gather from the batch.
    owner = jnp.where(draw.applied.reshape((-1,) + (1,) * (draw.owner.ndim - 1)), draw.owner, 0)
    mixed_images = selected(images, owner, jnp.stack(partners, axis=1), draw.moves)
    mixed_targets = (
      selected(targets, owner, jnp.stack(partners, axis=1), draw.moves)
      if dense
      else combine([s["targets"] for s in sources], label)
    )
    return mixed_images, mixed_targets, _info(draw, partners, images.shape[: images.ndim - 1])
  images_k, targets_k = _transformed(sources, draw, dense)
  mixed_images = combine(images_k, pixel)
  if draw.partner_weight is not None and not dense:
    # Two label weights that need not sum to 1 (SnapMix): each row weighted by its own.
    mixed_targets = draw.weight[:, None] * targets_k[0] + draw.partner_weight[:, None] * targets_k[1]
  else:
    mixed_targets = combine(targets_k, pixel if dense else label)
  return mixed_images, mixed_targets, _info(draw, partners, images.shape[: images.ndim - 1])


def _transformed(sources: tuple[dict[str, Any], ...], draw: Draw, dense: bool) -> tuple[list[Any], list[Any]]:
  """The images and targets of every source as they are mixed: perturbed, pasted, kept, moved."""
  images = [s["images"] for s in sources]
  targets = [s["targets"] for s in sources]
  if "perturbation" in sources[0]:
    # The adversarial noise on the images mixed (the draw read the clean ones).
    mine, theirs = sources[0]["perturbation"], sources[1]["perturbation"]
    images[0] = perturb(images[0], mine.noise, draw.applied & mine.on_image)
    images[1] = perturb(images[1], theirs.noise, draw.applied & theirs.on_partner)
  if draw.paste is not None:
    images[1] = draw.paste(images[1])
    targets[1] = draw.paste(targets[1]) if dense else targets[1]
  if draw.keep is not None:
    # Only the examples that are mixed are transformed (an unmixed one is returned as it is).
    kept = lambda x: jnp.where(draw.applied.reshape((-1,) + (1,) * (x.ndim - 1)), draw.keep(x), x)  # type: ignore[misc]
    images[0] = kept(images[0])
    targets[0] = kept(targets[0]) if dense else targets[0]
  if draw.moves is not None:
    # Each source read where its region shows it (unmixed examples have no move).
    spatial_ndim = draw.moves.shape[-1]
    for m in range(len(images)):
      images[m] = shifted(images[m], draw.moves[:, m], spatial_ndim)
      targets[m] = shifted(targets[m], draw.moves[:, m], spatial_ndim) if dense else targets[m]
  return images, targets


def _source_weights(draw: Draw, k: int) -> tuple[list[jax.Array], list[jax.Array]]:
  """The pixel weights ``[B | 1, *S, 1]`` and label weights ``[B, 1]`` of the first ``k - 1`` sources."""
  if draw.weight.ndim == 1:  # two sources: the first one's mask and weight
    return [draw.mask[..., None]], [draw.weight[:, None]]
  return [draw.mask[:, m, ..., None] for m in range(k - 1)], [draw.weight[:, m, None] for m in range(k - 1)]


def _info(draw: Draw, partners: list[jax.Array], shape: tuple[int, ...]) -> MixInfo | KMixInfo:
  """What was drawn, every field with the batch axis (``shape = (B, *S)``)."""
  batch, spatial = shape[0], shape[1:]
  if draw.weight.ndim == 2:  # a weight per source
    k = len(partners)
    mask = jnp.broadcast_to(draw.mask, (batch, k, *spatial))
    weight = jnp.broadcast_to(draw.weight, (batch, k))
    return KMixInfo(draw.lam, weight, jnp.stack(partners, axis=1), draw.applied, mask)
  partner_weight = 1.0 - draw.weight if draw.partner_weight is None else draw.partner_weight
  mask = jnp.broadcast_to(draw.mask, (batch, *spatial))
  return MixInfo(draw.lam, draw.weight, partners[1], draw.applied, mask, partner_weight)


def _unmixed_info(shape: tuple[int, ...]) -> MixInfo:
  batch = shape[0]
  ones = jnp.ones((batch,), jnp.float32)
  index = jnp.arange(batch, dtype=jnp.int32)
  return MixInfo(ones, ones, index, jnp.zeros((batch,), bool), jnp.ones(shape, jnp.float32), jnp.zeros_like(ones))


#: ``_mix`` compiled, for calls outside any trace: the mixer's static fields are part of the key.
_compiled_mix = jax.jit(_mix, static_argnames=("dense",))
