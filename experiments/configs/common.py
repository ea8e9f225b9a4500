"""Helpers shared by the configs: the method names and the parsing of a config's ``arg``."""

from __future__ import annotations

from collections.abc import Sequence

# The methods of the paper's tables, by the names the configs' ``arg`` uses.
METHOD_NAMES = ("none", "mixup", "cutmix", "stochastic_mixup_cutmix", "hmix", "gmix")


def parse_arg(arg: str, fields: Sequence[tuple[str, Sequence[str] | None]]) -> tuple[str, ...]:
  """Splits ``"a,b"`` into one value per field and checks each against its choices.

  Args:
    arg: comma-separated values, e.g. ``"preact_resnet18,hmix"``.
    fields: ``(name, choices)`` per value; ``choices=None`` accepts any value.

  Returns:
    the values, stripped, in the order of ``fields``.

  >>> parse_arg("resnet56, hmix", [("model", ("resnet56",)), ("method", ("hmix", "gmix"))])
  ('resnet56', 'hmix')
  """
  values = tuple(value.strip() for value in arg.split(","))
  names = ",".join(name for name, _ in fields)
  if len(values) != len(fields):
    raise ValueError(f"config arg must be {names!r}; got {arg!r}.")
  for value, (name, choices) in zip(values, fields, strict=True):
    if choices is not None and value not in choices:
      raise ValueError(f"config arg {arg!r}: {name} must be one of {list(choices)}; got {value!r}.")
  return values
