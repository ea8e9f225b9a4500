"""The README's Python blocks run as written, in order, in one namespace (as a reader would paste them)."""

import pathlib
import re

import jax.numpy as jnp

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run_as_written():
  blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
  assert len(blocks) >= 3, "the README should show the train step, a sample and PuzzleMix"
  namespace: dict = {}
  for index, block in enumerate(blocks):
    exec(compile(block, f"README.md python block {index}", "exec"), namespace)
  # the train step trained and kept its loss finite; the sample and the mixed batch have their shapes
  assert jnp.isfinite(namespace["loss"])
  assert namespace["s"].mask.shape == (32, 32)
  assert namespace["mixed"].shape == (8, 32, 32, 3) and namespace["targets"].shape == (8, 10)
