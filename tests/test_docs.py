"""The documentation says only what the library has: its code runs and its names exist.

Pages stored as notebooks (``{code-cell}`` blocks) are executed by every docs build; the plain
pages' ``python`` blocks are executed here, page by page in one namespace each (as a reader would
paste them). Every backticked ``msda_jax.<name>`` of the README and the pages must resolve, and
every backticked call of a public class's constructor (``Sample(lam, mask, ...)``,
``Mixer(method, mode=...)``) may name only its fields: a renamed field or a removed name fails
here instead of misleading a reader.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pathlib
import re

import pytest

import msda_jax

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [
  ROOT / "README.md",
  *sorted(p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts and p.name != "README.md"),
]


def _code_spans(text: str) -> list[str]:
  """Inline code spans and the lines of fenced code blocks."""
  spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
  blocks = re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.S)
  return spans + [line for block in blocks for line in block.splitlines()]


def _resolve(dotted: str) -> bool:
  """Whether ``msda_jax.a.b.c`` names a module or an attribute chain that exists."""
  parts = dotted.split(".")
  for cut in range(len(parts), 0, -1):
    try:
      obj = importlib.import_module(".".join(parts[:cut]))
    except ImportError:
      continue
    try:
      for name in parts[cut:]:
        obj = getattr(obj, name)
    except AttributeError:
      return False
    return True
  return False


def mentioned_names(text: str) -> set[str]:
  """Every ``msda_jax.<dotted name>`` in the page's code."""
  found = set()
  for span in _code_spans(text):
    for match in re.finditer(r"\bmsda_jax(?:\.[A-Za-z_]\w*)+", span):
      found.add(match.group(0))
  return found


def _fields(cls: type) -> set[str] | None:
  """The names a call of ``cls`` may take: a NamedTuple's fields, a dataclass's, or its signature's."""
  if hasattr(cls, "_fields"):
    return set(cls._fields)
  if dataclasses.is_dataclass(cls):
    return {f.name for f in dataclasses.fields(cls)}
  try:
    return set(inspect.signature(cls).parameters)
  except (TypeError, ValueError):
    return None


#: class names the peers use too (timm's ``Mixup``, torchvision's ``CutMix``): checked only as ``msda_jax.Name``.
PEER_NAMES = {"Mixup", "CutMix"}


def stale_fields(text: str) -> list[str]:
  """``Class(arg, ...)`` calls of public classes whose argument names are not the class's."""
  classes = {name: getattr(msda_jax, name) for name in msda_jax.__all__ if inspect.isclass(getattr(msda_jax, name))}
  problems = []
  for span in _code_spans(text):
    for match in re.finditer(r"(msda_jax\.)?\b([A-Z]\w*)\(([^()]*)\)", span):
      qualified, name, args = match.groups()
      if name in PEER_NAMES and not qualified:
        continue
      cls = classes.get(name)
      fields = None if cls is None else _fields(cls)
      if fields is None:
        continue
      for arg in (a.strip() for a in args.split(",")):
        name = arg.split("=")[0].strip() if "=" in arg else arg
        if re.fullmatch(r"[a-z_]\w*", name) and "=" in arg and name not in fields:
          problems.append(f"{match.group(0)}: {cls.__name__} has no field {name!r}")
        elif re.fullmatch(r"[a-z_]\w*", name) and "=" not in arg and hasattr(cls, "_fields") and name not in fields:
          problems.append(f"{match.group(0)}: {cls.__name__} has no field {name!r}")
  return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_name_a_page_mentions_exists(page):
  text = page.read_text()
  missing = sorted(name for name in mentioned_names(text) if not _resolve(name))
  assert not missing, f"{page.name} mentions names the library lacks: {missing}"
  assert not stale_fields(text), stale_fields(text)


def test_the_checker_catches_a_stale_field_and_a_missing_name():
  """The page checks can fail: the field this page once showed, and a name that is not there."""
  assert stale_fields("returning `Sample(lam, mask, weight, paste, data)`") == [
    "Sample(lam, mask, weight, paste, data): Sample has no field 'data'"
  ]
  assert stale_fields('`Mixer(method, mode="batch", return_info=True)`')
  assert not stale_fields('`Sample(lam, mask, weight, paste, keep)` and `Mixer(method, mode="example")`')
  assert not _resolve("msda_jax.theory.average_piecewise_exact") and _resolve("msda_jax.theory.regularizers_exact")


PLAIN = [p for p in PAGES if p.parent != ROOT and "```python" in p.read_text() and "{code-cell}" not in p.read_text()]


@pytest.mark.parametrize("page", PLAIN, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_python_blocks_of_every_plain_page_run(page):
  namespace: dict = {}
  for index, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), re.S)):
    exec(compile(block, f"{page.name} python block {index}", "exec"), namespace)
