"""Test configuration: 8 fake CPU devices for the sharded paths, strict rank promotion, one compilation cache.

The whole run (both xdist workers and every subprocess a test starts) shares one persistent JAX
compilation cache in a temporary directory made for the run and removed after it: a program
compiled by one test (or process) is loaded, not compiled again, by any other that builds the
same program. Loading is exact (the same executable), so no result depends on the cache; a run
with ``MSDA_TEST_COMPILATION_CACHE=none`` compiles everything itself.
"""

import os
import shutil
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

_CACHE_VARIABLE = "MSDA_TEST_COMPILATION_CACHE"
# The controller (or a run without xdist) imports this file first and makes the directory; the
# workers and subprocesses inherit it through the environment.
_OWN_CACHE = _CACHE_VARIABLE not in os.environ
if _OWN_CACHE:
  os.environ[_CACHE_VARIABLE] = tempfile.mkdtemp(prefix="msda-jax-test-compilation-cache-")
if os.environ[_CACHE_VARIABLE] != "none":
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.environ[_CACHE_VARIABLE])
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")

import jax  # noqa: E402  (after the environment above, which jax reads at import)
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
if os.environ[_CACHE_VARIABLE] != "none":  # also when a plugin imported jax before this file
  jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
  jax.config.update(
    "jax_persistent_cache_min_compile_time_secs", float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"])
  )


def pytest_unconfigure(config):
  """Removes the run's compilation cache (made by this process only; a worker leaves it)."""
  if _OWN_CACHE and not hasattr(config, "workerinput"):
    shutil.rmtree(os.environ[_CACHE_VARIABLE], ignore_errors=True)


@pytest.fixture
def key():
  """A fixed PRNG key (seed 0)."""
  return jax.random.key(0)
