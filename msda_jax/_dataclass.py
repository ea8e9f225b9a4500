"""Frozen dataclasses that are JAX pytrees: array fields are leaves, static fields metadata.

The methods (``msda_jax.masks``) and the ``Mixer`` are such dataclasses: their numbers
(``alpha``, ``r``, ``prob``, ...) are leaves, traced when the object is an argument of a jitted
function, and their options (box placement, mode, ...) are static, part of the compiled program.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar, dataclass_transform

import jax

T = TypeVar("T")


def static_field(default: Any) -> Any:
  """A dataclass field that is static pytree metadata (part of the compiled program)."""
  return dataclasses.field(default=default, metadata={"static": True})


def is_static(field: dataclasses.Field[Any]) -> bool:
  """Whether ``field`` was declared with ``static_field``."""
  return bool(field.metadata.get("static", False))


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, static_field))
def pytree_dataclass(cls: type[T]) -> type[T]:
  """Makes ``cls`` a frozen dataclass and a pytree with static fields as metadata.

  Unflattening (``jax.tree.map``, ``jax.grad(..., allow_int=True)``, a jitted function's
  arguments) rebuilds the object without ``__init__``: the leaves may then be tracers, zeros,
  tangents or ``None``, and no validation runs on them. Construction validates.
  ``dataclasses.replace`` constructs, so it validates too.
  """
  own_repr = "__repr__" in cls.__dict__ or any("__repr__" in base.__dict__ for base in cls.__mro__[1:-1])
  cls = dataclasses.dataclass(frozen=True, eq=False, repr=not own_repr)(cls)
  fields = dataclasses.fields(cls)  # type: ignore[arg-type]
  meta = tuple(f.name for f in fields if is_static(f))
  data = tuple(f.name for f in fields if not is_static(f))

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
