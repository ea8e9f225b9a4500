"""The curated public API: every exported name imports, and presets build from strings."""

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


def test_every_preset_builds_by_name_with_paper_defaults():
  for name, factory in msda_jax.PRESETS.items():
    built = msda_jax.from_string(name)
    assert isinstance(built, msda_jax.MixMethod)
    assert type(built) is type(factory())
  assert float(msda_jax.from_string("gmix").alpha) == 0.5
  assert float(msda_jax.from_string("hmix").r) == 0.5
  assert float(msda_jax.from_string("stochastic").q) == 0.5
  assert msda_jax.from_string("none") is None and msda_jax.from_string("vanilla") is None
  spec = msda_jax.from_string("hmix(alpha=2.0, r=0.75, placement='inside')")
  assert (float(spec.alpha), float(spec.r), spec.placement) == (2.0, 0.75, "inside")


def test_method_repr_round_trips_through_from_string():
  for name in msda_jax.PRESETS:
    method = msda_jax.from_string(name)
    text = repr(method)
    rebuilt = msda_jax.from_string(name + text[text.index("(") :])
    assert repr(rebuilt) == text
