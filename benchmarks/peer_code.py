"""Reading a peer's functions from its checkout, and recording the random draws they make.

The parity scripts run only the peer's mixing code (never its training code, and nothing of it in
the library): ``exec_functions`` compiles the named top-level functions (or methods of a class) of
one file into a namespace the script provides, and ``Recorded`` wraps a module so that the calls
of the named functions are logged (the draws the library then replays).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any


def exec_functions(path: Path, names: tuple[str, ...], namespace: dict[str, Any], owner: str | None = None) -> None:
  """Runs the definitions of ``names`` in ``path`` (in class ``owner``'s body if given) in ``namespace``."""
  tree = ast.parse(path.read_text())
  scope = tree.body
  if owner is not None:
    scope = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == owner).body
  body: list[ast.stmt] = [
    node for node in scope if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in names
  ]
  exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)


class Recorded:
  """A module whose named functions are recorded into ``log`` as ``(name, result)`` (other attributes pass through)."""

  def __init__(self, module: Any, names: tuple[str, ...], log: list[tuple[str, Any]]) -> None:
    self._module, self._names, self._log = module, names, log

  def __getattr__(self, name: str) -> Any:
    value = getattr(self._module, name)
    if name not in self._names:
      return value

    def recorded(*args: Any, **kwargs: Any) -> Any:
      out = value(*args, **kwargs)
      self._log.append((name, out))
      return out

    return recorded
