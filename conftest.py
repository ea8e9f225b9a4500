"""Suite-wide hooks for the tests and the doctests (``tests/conftest.py`` sets up the devices)."""

import gc

import pytest


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
  """Drops every compiled program and cached trace after each test module and doctest module.

  A worker runs hundreds of modules; without this the executables of all of them stay alive and
  a worker's memory grew past 7 GiB over the suite (two workers then exhaust a 24 GiB machine).
  Programs are rarely shared between modules, so recompiling costs little.
  """
  yield
  import jax  # imported here: the device flags of tests/conftest.py must come first

  jax.clear_caches()
  gc.collect()
