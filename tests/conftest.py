"""Test configuration: 8 fake CPU devices for the sharded paths, strict rank promotion."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import jax
import pytest

jax.config.update("jax_numpy_rank_promotion", "raise")

# Every method preset, by name, for the conformance suite.
METHOD_SPECS = [
  "mixup",
  "cutmix",
  "cutmix(placement='inside')",
  "stochastic_mixup_cutmix",
  "hmix",
  "hmix(r_alpha=0.5)",
  "gmix",
  "gmix(scale='text', symmetric=False)",
  "bernoulli",
  "fmix",
  "resizemix",
  "saliencymix",
  "puzzlemix(grid_sizes=(2, 4))",
]


@pytest.fixture
def key():
  """A fixed PRNG key (seed 0)."""
  return jax.random.key(0)
