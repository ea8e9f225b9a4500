"""The mixing-method protocol shared by every mask family.

A method is a small frozen dataclass registered as a JAX pytree: its hyper-parameters
(``alpha``, ``r``, ``q``, ...) are array leaves, traced under ``jax.jit`` so that sweeping them
never recompiles, and its options (box placement, scale, ...) are static metadata. It knows
three things about one example:

* ``sample_lam(key)``: the nominal mixing ratio ``lam`` (Eq. 4, ``D_lam``);
* ``mask(key, lam, shape=...)``: the mask ``M`` of the spatial ``shape``, meaning
  ``x~ = M * x_i + (1 - M) * x_j`` (Eq. 1), and ``mask_mean`` with the same arguments, its
  mean (the label weight), without building ``M`` where the family allows;
* ``transform_partner(key, lam, x_j)``: what is pasted instead of ``x_j`` (the identity, except
  for ResizeMix).

``sample`` draws ``lam`` and ``M`` together from one example key; the batch functions in
``msda_jax.mixing`` vmap it over examples or call it once per batch.

Hyper-parameters are converted to float32 scalars and checked when the method is built
(``alpha`` > 0 and finite, ``r`` and ``q`` in [0, 1], ...): a string, a bool, an array or a
non-finite value raises there, naming the field. A method built inside ``jit`` from traced
values cannot be checked then: ``valid()`` computes the same conditions as a traced bool, and
``mix_batch`` leaves the examples of an invalid method unmixed (see ``constraints``).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar, TypeVar, dataclass_transform

import jax
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _validate
from msda_jax import lam as lam_laws

T = TypeVar("T")


def static_field(default: Any) -> Any:
  """A dataclass field that is static pytree metadata (part of the compiled program)."""
  return dataclasses.field(default=default, metadata={"static": True})


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, static_field))
def method_dataclass(cls: type[T]) -> type[T]:
  """Makes ``cls`` a frozen dataclass and a pytree with static fields as metadata.

  Unflattening (``jax.tree.map``, ``jax.grad(..., allow_int=True)``, a jitted function's
  arguments) rebuilds the object without ``__init__``: the leaves may then be tracers, zeros,
  tangents or ``None``, and no validation runs on them. Construction validates.
  """
  cls = dataclasses.dataclass(frozen=True, eq=False, repr=not issubclass(cls, MixMethod))(cls)
  fields = dataclasses.fields(cls)  # type: ignore[arg-type]
  meta = tuple(f.name for f in fields if f.metadata.get("static", False))
  data = tuple(f.name for f in fields if not f.metadata.get("static", False))

  def flatten_with_keys(obj: Any) -> tuple[list[tuple[Any, Any]], tuple[Any, ...]]:
    children = [(jax.tree_util.GetAttrKey(name), getattr(obj, name)) for name in data]
    return children, tuple(getattr(obj, name) for name in meta)

  def flatten(obj: Any) -> tuple[list[Any], tuple[Any, ...]]:
    return [getattr(obj, name) for name in data], tuple(getattr(obj, name) for name in meta)

  def unflatten(aux: tuple[Any, ...], children: Any) -> Any:
    obj = object.__new__(cls)
    for name, value in zip(data, children, strict=True):
      object.__setattr__(obj, name, value)
    for name, value in zip(meta, aux, strict=True):
      object.__setattr__(obj, name, value)
    return obj

  jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)
  return cls


class MixMethod(abc.ABC):
  """Base class of every two-sample mixing method (see the module docstring)."""

  name: ClassVar[str] = ""
  #: whether ``transform_partner`` is not the identity (ResizeMix).
  transforms_partner: ClassVar[bool] = False
  #: whether per-example masks are made a few at a time (masks that many passes read, as FMix's
  #: threshold search, stay in cache instead of streaming the whole batch each pass).
  masks_in_chunks: ClassVar[bool] = False
  #: data fields that must be > 0 and fields that must lie in [0, 1].
  _positive: ClassVar[tuple[str, ...]] = ()
  _unit: ClassVar[tuple[str, ...]] = ()

  def __post_init__(self) -> None:
    for field in dataclasses.fields(self):  # type: ignore[arg-type]
      if field.metadata.get("static", False):
        continue
      value = getattr(self, field.name)
      if value is None and field.default is None:  # an optional hyper-parameter (HMix's r_alpha)
        continue
      object.__setattr__(self, field.name, _validate.hyperparameter(field.name, value))
    self.check_values()
    self._check()

  def _check(self) -> None:  # noqa: B027 (optional hook, empty by default)
    """Extra checks of static options; subclasses override."""

  def constraints(self) -> list[_validate.Check]:
    """``(message, ok, value)`` for every condition on the hyper-parameters.

    ``ok`` is a numpy bool when the values are concrete and a traced bool inside ``jit``. The
    default covers ``_positive`` (finite and > 0) and ``_unit`` (in [0, 1]) fields; families with
    joint conditions (ResizeMix's ``scale_min <= scale_max``) extend it.
    """
    checks: list[_validate.Check] = []
    for name in self._positive:
      value = getattr(self, name)
      if value is not None:
        checks.append((_validate.positive_message(name, value), _validate.positive_ok(value), value))
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
    return jax.numpy.all(jax.numpy.stack([jax.numpy.asarray(ok) for ok in flags]))

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
      if not field.metadata.get("static", False) and value is not None:
        fallback = 1.0 if field.default is None else field.default  # optional ones: a valid stand-in
        value = jax.numpy.where(ok, value, jax.numpy.float32(fallback))
      object.__setattr__(rebuilt, field.name, value)
    return rebuilt

  def __repr__(self) -> str:
    parts = []
    for field in dataclasses.fields(self):  # type: ignore[arg-type]
      value = getattr(self, field.name)
      concrete = None if field.metadata.get("static", False) else _validate.concrete_value(value)
      if concrete is not None and concrete.ndim == 0:
        value = float(str(np.float32(concrete)))
      parts.append(f"{field.name}={value!r}")
    return f"{type(self).__name__}({', '.join(parts)})"

  # -- what a family defines ---------------------------------------------------------------
  def sample_lam(self, key: jax.Array) -> jax.Array:
    """Nominal ``lam`` for one example, ``Beta(alpha, alpha)`` unless overridden."""
    return lam_laws.sample_beta(key, self.alpha)  # type: ignore[attr-defined]

  @abc.abstractmethod
  def mask(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
    """The mask ``M`` (float32 of ``shape``) for one example."""

  def mask_mean(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> jax.Array:
    """The mean of ``mask(key, lam, shape=shape)`` (float32 scalar): the realised label weight.

    The default averages the mask. Families whose mean follows from the mask's parameters (a
    box's extent, a separable bump, a pixel count) override it, so that the batch functions
    never reduce a full-resolution mask; an override equals the average up to float32 rounding.

    Args:
      key: the same key that ``mask`` receives.
      lam: traced scalar ratio.
      shape: static spatial shape.
    """
    return jax.numpy.mean(self.mask(key, lam, shape=shape), dtype=jax.numpy.float32)

  def mask_and_mean(self, key: jax.Array, lam: ArrayLike, *, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    """``(mask(key, lam, shape=shape), mask_mean(key, lam, shape=shape))``.

    A family whose mean is a by-product of building the mask (FMix's pixel count) overrides this
    to compute the shared part once: a compiled program does not merge two identical loops.
    """
    return self.mask(key, lam, shape=shape), self.mask_mean(key, lam, shape=shape)

  def transform_partner(self, key: jax.Array, lam: ArrayLike, partner: jax.Array) -> jax.Array:
    """What is mixed in instead of the partner ``[*shape, C]``; the identity by default."""
    del key, lam
    return partner

  def nominal_lam(self, key: jax.Array, *, shape: tuple[int, ...]) -> jax.Array:
    """The ``lam`` that ``sample`` draws from the example ``key`` (float32 scalar).

    ``sample_lam`` of the first half of the key by default; families whose law depends on the
    mask's key or on the number of spatial axes override it.
    """
    del shape
    return self.sample_lam(jax.random.split(key)[0])

  # -- shared --------------------------------------------------------------------------------
  def sample(
    self, key: jax.Array, *, shape: tuple[int, ...], lam: ArrayLike | None = None
  ) -> tuple[jax.Array, jax.Array]:
    """Draws ``(lam, M)`` for one example from one key; ``lam`` may be given instead.

    Args:
      key: the example's PRNG key.
      shape: static spatial shape.
      lam: optional nominal ratio; drawn from the method's law when ``None``.

    Returns:
      ``(lam, M)``: a float32 scalar and a float32 array of ``shape``.
    """
    if lam is None:
      lam = self.nominal_lam(key, shape=shape)
    lam = jax.numpy.asarray(lam, jax.numpy.float32)
    return lam, self.mask(self.partner_key(key), lam, shape=shape)

  def partner_key(self, key: jax.Array) -> jax.Array:
    """The key that ``sample`` hands to ``mask``, for ``transform_partner`` to reuse."""
    return jax.random.split(key)[1]
