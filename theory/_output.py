"""What every reproduction script shares: its command line and how it writes its outputs."""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import Any


def figure_parser(doc: str | None, name: str) -> argparse.ArgumentParser:
  """An argument parser described by the script's docstring, with ``--out outputs/<name>.png``."""
  parser = argparse.ArgumentParser(description=(doc or name).splitlines()[0])
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(f"outputs/{name}.png"))
  return parser


def save_figure(fig: Any, out: pathlib.Path) -> None:
  """Writes the matplotlib figure ``fig`` to ``out`` (folders created) and closes it."""
  import matplotlib.pyplot as plt

  out.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(out, dpi=110)
  plt.close(fig)


def save_numbers(out: pathlib.Path, numbers: Any) -> None:
  """Writes the numbers a figure plots as JSON next to its PNG."""
  out.with_suffix(".json").write_text(json.dumps(numbers, indent=1))
