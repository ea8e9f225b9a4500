"""The curated public API: every exported name imports, and every method builds from its name."""

import importlib

import pytest

import msda_jax


@pytest.mark.parametrize("module", ["msda_jax", "msda_jax.masks", "msda_jax.theory", "msda_jax.data"])
def test_every_public_name_imports(module):
  mod = importlib.import_module(module)
  assert mod.__all__, module
  assert len(set(mod.__all__)) == len(mod.__all__), "duplicate names in __all__"
  for name in mod.__all__:
    assert getattr(mod, name) is not None, f"{module}.{name}"


def test_every_method_builds_by_name_with_paper_defaults():
  for name, cls in msda_jax.METHODS.items():
    built = msda_jax.from_string(name)
    assert type(built) is cls and repr(built) == repr(cls())
  assert float(msda_jax.from_string("gmix").alpha) == 0.5
  assert float(msda_jax.from_string("hmix").r) == 0.5
  assert float(msda_jax.from_string("stochastic").q) == 0.5
  assert msda_jax.from_string("none") is None and msda_jax.from_string("vanilla") is None
  spec = msda_jax.from_string("hmix(alpha=2.0, r=0.75, placement='inside')")
  assert (float(spec.alpha), float(spec.r), spec.placement) == (2.0, 0.75, "inside")


def test_method_repr_round_trips_through_from_string():
  # a mixture's and a wrapper's repr hold classes, not specs
  for name in msda_jax.METHODS.keys() - {"mixture", "patch_aligned", "transmix"}:
    method = msda_jax.from_string(name)
    text = repr(method)
    rebuilt = msda_jax.from_string(name + text[text.index("(") :])
    assert repr(rebuilt) == text


def _module_imports(path):
  """The msda_jax modules a file imports, at module level or inside a function (a lazy import
  that works around a cycle is still one); only ``if TYPE_CHECKING:`` blocks are left out."""
  import ast

  tree = ast.parse(path.read_text())
  typing_only = {
    id(sub) for node in ast.walk(tree)
    if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
    for sub in ast.walk(node)
  }  # fmt: skip
  found = set()
  for node in ast.walk(tree):
    if id(node) in typing_only:
      continue
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("msda_jax"):
      found.add(node.module)
      found.update(f"{node.module}.{a.name}" for a in node.names)
    elif isinstance(node, ast.Import):
      found.update(a.name for a in node.names if a.name.startswith("msda_jax"))
  return found


def test_the_library_has_no_import_cycle():
  """The imports between ``msda_jax``'s modules form a DAG: no module imports one that imports it back."""
  import graphlib
  import pathlib

  root = pathlib.Path(msda_jax.__file__).parent
  modules = {}
  for path in root.rglob("*.py"):
    parts = path.relative_to(root.parent).with_suffix("").parts
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    modules[name] = path
  graph = {name: {m for m in _module_imports(path) if m in modules and m != name} for name, path in modules.items()}
  # A package's __init__ re-exports its modules; a module importing its own package is not a cycle of files.
  graph = {name: {m for m in deps if not name.startswith(m + ".")} for name, deps in graph.items()}
  tuple(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError naming the cycle
