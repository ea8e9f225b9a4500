"""Test configuration: 8 fake CPU devices for the sharded paths, strict rank promotion."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def key():
  """A fixed PRNG key (seed 0)."""
  return jax.random.key(0)
