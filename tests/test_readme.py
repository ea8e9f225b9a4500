"""The README's Python blocks run as written, in order, in one namespace (as a reader would paste them)."""

import pathlib
import re

import jax.numpy as jnp

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run_as_written():
  blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
  assert len(blocks) >= 2, "the README should show the train step and the theory of a model"
  namespace: dict = {}
  for index, block in enumerate(blocks):
    exec(compile(block, f"README.md python block {index}", "exec"), namespace)
  # the train step trained and kept its loss finite; the theory example computed finite regularisers
  assert jnp.isfinite(namespace["loss"])
  assert namespace["a"].shape == (64, 64)
  r = namespace["r"]
  assert all(jnp.isfinite(v) for v in (r.r1, r.r2, r.r3)) and float(r.r3) == 0.0


def test_readme_reads_in_five_minutes():
  """Under 8,000 characters: the rest lives in the documentation site."""
  assert len(README.read_text()) < 8000
