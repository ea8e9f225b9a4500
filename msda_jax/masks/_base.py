"""The mixing-method protocol shared by every mask family: one call, ``sample``.

A method is a small frozen dataclass registered as a JAX pytree (``msda_jax._dataclass``): its
hyper-parameters (``alpha``, ``r``, ``q``, ...) are array leaves, traced under ``jax.jit`` so
that sweeping them never recompiles, and its options (box placement, scale, ...) are static.

``method.sample(key, shape=S)`` draws everything one example needs from one key, each part once:

* ``lam``: the nominal mixing ratio (Eq. 4, ``D_lam``), or the one given;
* ``mask``: ``M`` of the spatial shape, meaning ``x~ = M * x_i + (1 - M) * x_j`` (Eq. 1);
* ``weight``: the realised label weight, the mean of ``M`` (computed from the mask's parameters
  where the family allows: a box's extent, a separable bump, a pixel count);
* ``paste``: what is mixed in instead of the partner ``x_j``, for the methods that transform it
  (ResizeMix's shrunk partner, PuzzleMix's transported partner), else ``None``;
* ``keep``: likewise what is mixed in instead of the image ``x_i`` (PuzzleMix's transported
  image), else ``None``.

A jitted caller that reads only the mask does not compute the weight (XLA removes unused
outputs). The batch functions in ``msda_jax.mixing`` vmap ``sample`` over examples or call it
once per batch. Key use: the first half of ``jax.random.split(key)`` draws ``lam``, the second
the mask, so a given ``lam`` leaves the mask's draws unchanged.

Hyper-parameters are converted to float32 scalars and checked when the method is built
(``alpha`` > 0 and finite, ``r`` and ``q`` in [0, 1], ...): a string, a bool, an array or a
non-finite value raises there, naming the field. A method built inside ``jit`` from traced
values cannot be checked then: ``valid()`` computes the same conditions as a traced bool, and
``mix_batch`` leaves the examples of an invalid method unmixed (see ``constraints``).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial
from jax.typing import ArrayLike

from msda_jax import _bits, _dataclass, _validate, draws, lam_laws
from msda_jax.needs import ModelView, Needs


class Sample(NamedTuple):
  """One example's draw: ``x~ = M * keep(x_i) + (1 - M) * paste(x_j)`` and ``y~ = w y_i + (1 - w) y_j``.

  Attributes:
    lam: float32 ``[]`` nominal ratio.
    mask: float32 ``[*S]`` the mask ``M``.
    weight: float32 ``[]`` realised label weight of the first image, the mean of ``M``.
    paste: ``None``, or a ``jax.tree_util.Partial`` mapping the partner ``[*S, C]`` to what is
      mixed in instead of it (a pytree: it can be vmapped and returned from ``jit``).
    keep: ``None``, or a ``Partial`` mapping the image ``[*S, C]`` to what is mixed in instead.
    partner_weight: ``None`` (the partner's label weight is ``1 - weight``), or float32 ``[]``
      the partner's own label weight, for a method whose two weights need not sum to 1
      (SnapMix's, from class-activation maps; ``weight`` is then not the mean of ``M``).
  """

  lam: jax.Array
  mask: jax.Array
  weight: jax.Array
  paste: Partial | None = None
  keep: Partial | None = None
  partner_weight: jax.Array | None = None


class MixMethod(abc.ABC):
  """Base class of every two-sample mixing method (see the module docstring)."""

  #: the name that ``msda_jax.from_string`` knows the method by.
  name: ClassVar[str] = ""
  #: whether per-example masks are made a few at a time on the CPU (masks that many passes read,
  #: as FMix's threshold search, stay in cache instead of streaming the whole batch each pass).
  masks_in_chunks: ClassVar[bool] = False
  #: how many sources an example is mixed from (itself and one partner).
  sources: ClassVar[int] = 2
  #: the pairing a ``Mixer`` uses when none is given.
  default_pairing: ClassVar[str] = "reverse"
  #: whether a given ``lam`` sets the mask; ``False`` for laws that draw no ``lam`` (SmoothMix,
  #: SpecMix: the sample's ``lam`` is the realised mask mean, and a given one raises).
  takes_lam: ClassVar[bool] = True
  #: the shape of one example's given ``lam`` (a scalar; a vector of weights for k sources).
  lam_shape: ClassVar[tuple[int, ...]] = ()
  #: data fields that must be > 0 and fields that must lie in [0, 1].
  _positive: ClassVar[tuple[str, ...]] = ()
  _nonnegative: ClassVar[tuple[str, ...]] = ()
  _unit: ClassVar[tuple[str, ...]] = ()

  def __post_init__(self) -> None:
    for field in dataclasses.fields(self):  # type: ignore[arg-type]
      if _dataclass.is_static(field):
        continue
      value = getattr(self, field.name)
      if value is None and field.default is None:  # an optional hyper-parameter (HMix's r_alpha)
        continue
      object.__setattr__(self, field.name, _validate.hyperparameter(field.name, value))
    self.check_values()
    self._check()

  def _check(self) -> None:  # noqa: B027 (optional hook, empty by default)
    """Extra checks of static options; subclasses override."""

  def replace(self, **changes: Any) -> MixMethod:
    """A copy with ``changes`` (field names to values), checked as construction checks.

    >>> import msda_jax
    >>> msda_jax.Mixup(alpha=1.0).replace(alpha=0.3)
    Mixup(alpha=0.3)
    """
    return dataclasses.replace(self, **changes)  # type: ignore[type-var]

  # -- the one entry point ---------------------------------------------------------------------
  def sample(self, key: jax.Array, *, shape: tuple[int, ...], lam: ArrayLike | None = None, data: Any = None) -> Sample:
    """Draws ``Sample(lam, mask, weight, paste)`` for one example from one key.

    Args:
      key: the example's PRNG key.
      shape: static spatial shape ``S``.
      lam: optional nominal ratio (traced scalar); drawn from the method's law when ``None``.
        Each family clips it where its mask needs ``[0, 1]`` (Mixup's does not: Figure 2).
      data: what a method that reads the images needs: a ``PairData`` of one pair for the
        methods whose ``needs()`` names inputs (PuzzleMix, SaliencyMix), ignored by the others.

    Returns:
      a ``Sample`` of float32 arrays: ``lam`` and ``weight`` scalars, ``mask`` of ``shape``.

    >>> import msda_jax
    >>> s = msda_jax.CutMix().sample(jax.random.key(0), shape=(8, 8), lam=0.75)
    >>> s.mask.shape, float(s.weight) == float(s.mask.mean())
    ((8, 8), True)
    """
    shape = _validate.check_shape("shape", shape)
    if lam is not None:
      lam = jnp.asarray(lam, jnp.float32)
      if lam.shape != ():
        raise ValueError(f"lam must be a scalar for one example; got shape {lam.shape} (vmap over examples).")
    key_lam, key_mask = _bits.split(key)
    drawn = self._sample(key_lam, key_mask, lam, shape, data)
    return Sample(
      jnp.asarray(drawn.lam, jnp.float32),
      jnp.asarray(drawn.mask, jnp.float32),
      jnp.asarray(drawn.weight, jnp.float32),
      drawn.paste,
      drawn.keep,
      None if drawn.partner_weight is None else jnp.asarray(drawn.partner_weight, jnp.float32),
    )

  @abc.abstractmethod
  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    """The family's draw: ``lam`` from ``key_lam`` when ``None``, the mask from ``key_mask``."""

  def _beta_lam(self, key_lam: jax.Array, lam: jax.Array | None) -> jax.Array:
    """``lam`` as given, else ``Beta(alpha, alpha)`` from ``key_lam``."""
    return lam_laws.sample_beta(key_lam, self.alpha) if lam is None else lam  # type: ignore[attr-defined]

  # -- the batch: what the method reads, and its draw -----------------------------------------
  def needs(self) -> Needs:
    """What the method reads beyond the images and labels (``msda_jax.needs``): nothing by default."""
    return Needs()

  def prepare(self, key: jax.Array, model: ModelView, images: jax.Array, labels: jax.Array) -> dict[str, Any]:
    """The call inputs of ``needs().inputs``, computed from the model (none by default)."""
    del key, model, images, labels
    return {}

  def relabel(self, targets: jax.Array, info: Any, outputs: dict[str, Any]) -> jax.Array:
    """The mixed targets recomputed from the model ``outputs`` named in ``needs().outputs``.

    A train step calls it after the forward pass of the mixed batch, for the methods that name
    outputs (TransMix's label weight from attention); the others are never asked.

    Args:
      targets: the unmixed targets ``[B, K]`` (one-hot, smoothed); a partner's row is
        ``targets[info.partner]``.
      info: the ``MixInfo`` of the mix.
      outputs: the named model outputs of the mixed batch.

    Returns:
      the targets to train on, ``[B, K]``; by default the targets mixed by the realised weight.
    """
    del outputs
    w = info.weight[:, None]
    return w * targets + (1.0 - w) * targets[info.partner]

  def check_input(self, spatial: tuple[int, ...], block: int | None = None) -> None:
    """Raises naming the argument when images of spatial shape ``spatial`` cannot be mixed.

    ``block``: the examples a source may come from (batch / groups), when known.
    """
    del spatial, block

  def draw(self, key: jax.Array, sources: tuple[Any, ...], lam: Any, prob: Any, mixer: Any) -> draws.Draw:
    """The batch's draw (``msda_jax.draws``): one for the batch or one per example, by ``mixer.mode``.

    Args:
      key: the batch's key (its second third draws the masks, its third the ``prob`` coins).
      sources: the example and its partner, each a dict of ``[B, ...]`` arrays (``"images"``,
        ``"targets"``, ``"index"`` and the inputs the method reads).
      lam: ``None``, or the given nominal ratio (scalar or ``[B]``).
      prob: traced float32 probability of mixing, in [0, 1].
      mixer: the ``Mixer`` whose static options apply.
    """
    shape = sources[0]["images"].shape[:-1]
    draw = draws.draw_batch if mixer.mode == "batch" else draws.draw_examples
    return draw(self, key, shape, lam, prob, mixer)

  def check_lam(self, lam: Any, unbounded: bool) -> None:
    """Raises naming ``lam`` for concrete values outside [0, 1] (not finite, with ``unbounded``), or
    for any ``lam`` given to a method whose law draws none (``takes_lam`` false)."""
    if not self.takes_lam:
      raise ValueError(self._no_lam_message())
    if not unbounded:
      _validate.check_range("lam", lam, 0.0, 1.0)
    elif (array := _validate.concrete_value(lam)) is not None and not np.isfinite(array).all():
      raise ValueError(f"lam must be finite; got {array[~np.isfinite(array)].ravel()[0].item()!r}.")

  def _no_lam_message(self) -> str:
    return (
      f"lam cannot be given to {type(self).__name__}: its law draws no lam, and the sample's lam is the "
      "realised mask mean."
    )

  def lam_checks(self, lam: Any, unbounded: bool) -> list[_validate.Check]:
    """The run-time condition on a given ``lam`` (``check=True``)."""
    if lam is None:
      return []
    ok = _validate.unit_ok(lam) if not unbounded else jnp.all(jnp.isfinite(jnp.asarray(lam)))
    return [("lam must be finite" + ("" if unbounded else " and lie in [0.0, 1.0]"), ok, lam)]

  # -- hyper-parameter checks ------------------------------------------------------------------
  def constraints(self) -> list[_validate.Check]:
    """``(message, ok, value)`` for every condition on the hyper-parameters.

    ``ok`` is a numpy bool when the values are concrete and a traced bool inside ``jit``. The
    default covers ``_positive`` (finite and > 0), ``_nonnegative`` (finite and >= 0) and
    ``_unit`` (in [0, 1]) fields; families with
    joint conditions (ResizeMix's ``scale_min <= scale_max``) extend it.
    """
    checks: list[_validate.Check] = []
    for name in self._positive:
      value = getattr(self, name)
      if value is not None:
        checks.append((_validate.positive_message(name, value), _validate.positive_ok(value), value))
    for name in self._nonnegative:
      value = getattr(self, name)
      checks.append((f"{name} must be >= 0 and finite", _validate.nonnegative_ok(value), value))
    for name in self._unit:
      value = getattr(self, name)
      checks.append((f"{name} must lie in [0.0, 1.0]", _validate.unit_ok(value), value))
    return checks

  def check_values(self) -> None:
    """Raises ``ValueError`` naming the field for every concrete hyper-parameter out of range."""
    for message, ok, value in self.constraints():
      if isinstance(ok, (bool, np.bool_)) and not ok:
        raise ValueError(f"{message}; got {float(np.asarray(value))!r}.")

  def valid(self) -> Any:
    """Whether every hyper-parameter is in range: ``True`` when concrete and checked, else a traced bool."""
    flags = [ok for _, ok, _ in self.constraints()]
    if all(isinstance(ok, (bool, np.bool_)) for ok in flags):
      return bool(all(flags))
    return jnp.all(jnp.stack([jnp.asarray(ok) for ok in flags]))

  def sanitized(self, ok: Any) -> MixMethod:
    """This method with every hyper-parameter replaced by its default where ``ok`` is false.

    The batch functions draw from the result, so that an invalid traced value (NaN, negative,
    infinite) never reaches a sampler; they also leave those examples unmixed.
    """
    if isinstance(ok, (bool, np.bool_)) and ok:
      return self
    rebuilt = object.__new__(type(self))
    for field in dataclasses.fields(self):  # type: ignore[arg-type]
      value = getattr(self, field.name)
      if not _dataclass.is_static(field) and value is not None:
        fallback = 1.0 if field.default is None else field.default  # optional ones: a valid stand-in
        value = jnp.where(ok, value, jnp.float32(fallback))
      object.__setattr__(rebuilt, field.name, value)
    return rebuilt

  def __repr__(self) -> str:
    parts = []
    for field in dataclasses.fields(self):  # type: ignore[arg-type]
      value = getattr(self, field.name)
      concrete = None if _dataclass.is_static(field) else _validate.concrete_value(value)
      if concrete is not None and concrete.ndim == 0:
        value = float(str(np.float32(concrete)))
      parts.append(f"{field.name}={value!r}")
    return f"{type(self).__name__}({', '.join(parts)})"
