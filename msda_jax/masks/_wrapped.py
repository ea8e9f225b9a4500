"""Methods built around another method: ``PatchAligned`` (its mask on a token grid) and ``TransMix``
(its mix, relabelled from attention).

``Wrapped`` holds the inner method in the field ``method`` (a two-source mask-only method, refused
by name otherwise) and answers for it where the wrapper adds nothing: whether a given ``lam`` sets
the mask, the checks of ``lam`` and of the images, and the conditions on its numbers (named
``method (Class): ...``). A wrapper's own numbers (TransMix's ``ratio``) follow the usual
``_positive`` / ``_unit`` rules.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np

from msda_jax import _dataclass, _validate
from msda_jax.masks._base import MixMethod
from msda_jax.masks._mixture import mask_only


class Wrapped(MixMethod):
  """Base class of a method with an inner ``method`` field (module docstring)."""

  method: MixMethod
  #: completes the refusal of an inner method that reads or transforms the images.
  role: ClassVar[str] = "a wrapper takes"

  def __post_init__(self) -> None:
    object.__setattr__(self, "method", mask_only("method", self.method, self.role))
    for field in dataclasses.fields(self):  # type: ignore[arg-type]
      if field.name != "method" and not _dataclass.is_static(field):
        object.__setattr__(self, field.name, _validate.hyperparameter(field.name, getattr(self, field.name)))
    self.check_values()
    self._check()

  @property
  def takes_lam(self) -> bool:  # type: ignore[override]
    """Whether a given ``lam`` sets the mask: the inner method's answer."""
    return self.method.takes_lam

  def constraints(self) -> list[_validate.Check]:
    """The wrapper's own conditions, then the inner method's, named ``method``."""
    inner = [(f"method ({type(self.method).__name__}): {m}", ok, v) for m, ok, v in self.method.constraints()]
    return [*super().constraints(), *inner]

  def sanitized(self, ok: Any) -> MixMethod:
    """The defaults of the wrapper's numbers and of the inner method's where ``ok`` is false."""
    if isinstance(ok, (bool, np.bool_)) and ok:
      return self
    rebuilt = object.__new__(type(self))
    for field in dataclasses.fields(self):  # type: ignore[arg-type]
      value = getattr(self, field.name)
      if field.name == "method":
        value = value.sanitized(ok)
      elif not _dataclass.is_static(field):
        value = jnp.where(ok, jnp.asarray(value, jnp.float32), jnp.float32(field.default))
      object.__setattr__(rebuilt, field.name, value)
    return rebuilt

  def check_input(self, spatial: tuple[int, ...], block: int | None = None) -> None:
    """The inner method's check of the images."""
    self.method.check_input(spatial, block)

  def check_lam(self, lam: Any, unbounded: bool) -> None:
    """The inner method's check of a given ``lam``."""
    self.method.check_lam(lam, unbounded)
