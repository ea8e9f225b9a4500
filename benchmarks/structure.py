"""The structure of the programs a device runs: loops, branches and ops, exported from this CPU.

For each method and mode, a jitted ``Mixer`` call on a ``B x H x W x C`` float32 batch is exported
for CUDA and for TPU (``jax.export``: the StableHLO the device would compile, no device needed),
and compiled for this CPU. Per program it counts:

* ``while``: loops (``stablehlo.while``): on a GPU each iteration of a data-dependent one waits
  for the host to read its predicate, and under a sharded batch it is a barrier across devices;
  ``fixed``: those of them whose condition compares the counter with a constant (a ``fori_loop``
  or ``scan`` of static length: the trip count is known when the program is compiled);
* ``branch``: conditionals (``stablehlo.case`` and ``stablehlo.if``) on a computed value, each a
  host round trip;
* ``platform``: the ``case`` ops of ``jax.lax.platform_dependent`` (the CPU-or-accelerator choice
  of ``msda_jax._backend``). A single-platform export keeps them, on a constant index with only
  that platform's branch; JAX resolves them before the program is compiled (``platform_dependent``'s
  documentation: the compiler never sees the conditional), so the device runs no branch for them.
* ``ops``: every StableHLO op of the exported module (a proxy for kernels and compile time);
* ``hashes``: the Threefry hashes the program evaluates (its rotations over 20, counted through
  the functions that call them): the separate random-bits computations;
* ``fusions``: the fusions of the program compiled for this machine's default backend
  (``compiled_for``: the CPU here; on a GPU machine, ``benchmarks/gpu.sh``, the GPU's kernels).

It runs on any machine in seconds per program and needs no accelerator:

  python -m benchmarks.structure                     # the table, and benchmarks/results/structure.json
  python -m benchmarks.structure --methods mixup cutmix --modes batch

Every method runs with its default pairing; Mixup also with each of the other pairings. The
data-dependent methods (``DATA_METHODS``, given a saliency map) keep the loops of their solvers:
they are counted, with how many have a fixed trip count.
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import re
import sys
from typing import Any

import jax
import jax.numpy as jnp

import msda_jax

#: the mask-only methods (the data-dependent ones keep the loops their solvers need).
METHODS = (
  "mixup",
  "cutmix",
  "stochastic",
  "hmix",
  "gmix",
  "bernoulli",
  "fmix",
  "resizemix",
  "smoothmix",
  "gridmix",
  "specmix",
  "ricap",
  "k_cutmix(k=3)",
  "manifold_mixup",
  "patchup",
  "mixture",
  "mix_k_batch(k=3)",
)
#: the methods that read the images (a saliency map is passed); their solvers loop.
DATA_METHODS = ("puzzlemix", "saliencymix")
MODES = ("batch", "example")
#: the pairings beside each method's default, run with Mixup.
PAIRINGS = ("reverse", "roll", "permute", "derange")
PLATFORMS = ("cuda", "tpu")
_OP = re.compile(r"^\s*(?:%[^=]+= )?\"?((?:stablehlo|chlo|mhlo)\.[a-z_]+)", re.M)
_CONSTANT = re.compile(r"^\s*(%[\w#]+) = stablehlo\.constant\b")
_CASE = re.compile(r"^\s*(%[\w]+)(?::\d+)? = \"stablehlo\.case\"\((%[\w#]+)\)")


def op_counts(text: str) -> collections.Counter[str]:
  """The StableHLO (and CHLO) ops of a module's text, by name."""
  return collections.Counter(_OP.findall(text))


_COND = re.compile(r"cond \{(.*?)\} do \{", re.S)
_COMPARE = re.compile(r"stablehlo\.compare\s+\w+,\s*(%[\w#]+),\s*(%[\w#]+)")
_FUNCTION = re.compile(r"func\.func (?:public |private )?@([\w.$-]+)")
_CALL = re.compile(r"\bcall @([\w.$-]+)")


def fixed_trip_loops(text: str) -> int:
  """The ``while`` ops whose condition is one comparison of a loop variable with a constant."""
  constants = {m.group(1) for line in text.splitlines() if (m := _CONSTANT.match(line))}
  count = 0
  for block in _COND.findall(text):
    ops = set(_OP.findall(block)) - {"stablehlo.constant", "stablehlo.return"}
    compare = _COMPARE.search(block)
    if ops == {"stablehlo.compare"} and compare and compare.group(2) in constants | set(_CONSTANT.findall(block)):
      count += 1
  return count


def platform_cases(text: str) -> int:
  """The ``case`` ops whose index is a constant, or the result of such a case, in each function:
  ``platform_dependent``'s choice in a single-platform export (resolved before compilation)."""
  count = 0
  for function in text.split("func.func")[1:]:
    constant: set[str] = set()
    for line in function.splitlines():
      if match := _CONSTANT.match(line):
        constant.add(match.group(1))
      elif (match := _CASE.match(line)) and match.group(2) in constant:
        constant.add(match.group(1))
        count += 1
  return count


def hash_count(text: str, entry: str = "main") -> int:
  """The Threefry-2x32 hashes ``entry`` evaluates: its ``shift_left`` ops over 20, rounded (one
  rotation per round, 20 rounds a hash, in JAX's ``threefry2x32`` function and in
  ``msda_jax._bits``' inlined form alike; 19 where only the first output word is used), each
  function's counted as often as it is called (the compiler inlines every call)."""
  bodies: dict[str, tuple[int, list[str]]] = {}
  for chunk in text.split("func.func")[1:]:
    if match := _FUNCTION.match("func.func" + chunk):
      bodies[match.group(1)] = (chunk.count("stablehlo.shift_left"), _CALL.findall(chunk))
  memo: dict[str, int] = {}

  def shifts(name: str) -> int:
    if name not in memo:
      memo[name] = 0  # StableHLO has no recursion; this guards a malformed module
      own, callees = bodies.get(name, (0, []))
      memo[name] = own + sum(shifts(c) for c in callees)
    return memo[name]

  return (shifts(entry) + 10) // 20


def structure(
  spec: str, mode: str, shape: tuple[int, ...], pairing: str | None = None, *, cpu: bool = True
) -> dict[str, Any]:
  """One record: the exported programs' loops, branches, ops and hashes per platform, and
  (``cpu``) the fusions of the program compiled for the default backend."""
  mixer = msda_jax.Mixer(msda_jax.from_string(spec), num_classes=10, mode=mode, pairing=pairing)
  args = [
    mixer,
    jax.random.key(0),
    jax.ShapeDtypeStruct(shape, jnp.float32),
    jax.ShapeDtypeStruct(shape[:1], jnp.int32),
  ]
  if "saliency" in mixer.method.needs().inputs:
    step = jax.jit(lambda m, k, x, y, s: m(k, x, y, saliency=s))
    args.append(jax.ShapeDtypeStruct(shape[:-1], jnp.float32))
  else:
    step = jax.jit(lambda m, k, x, y: m(k, x, y))
  record: dict[str, Any] = {"method": spec, "mode": mode, "pairing": str(mixer.pairing), "shape": list(shape)}
  for platform in PLATFORMS:
    text = jax.export.export(step, platforms=[platform])(*args).mlir_module()
    counts, chosen = op_counts(text), platform_cases(text)
    record[platform] = {
      "while": counts["stablehlo.while"],
      "fixed": fixed_trip_loops(text),
      "branch": counts["stablehlo.case"] + counts["stablehlo.if"] - chosen,
      "platform": chosen,
      "ops": sum(counts.values()),
      "hashes": hash_count(text),
    }
  if not cpu:
    return record
  compiled = step.lower(*args).compile().as_text()
  record["compiled_for"] = jax.default_backend()
  record["fusions"] = sum(line.lstrip().startswith("%fusion") or " fusion(" in line for line in compiled.splitlines())
  return record


def table(records: list[dict[str, Any]]) -> str:
  """A markdown table of the records."""
  backend = records[0].get("compiled_for", "cpu").upper() if records else "CPU"
  head = "| method | mode | pairing | CUDA while (fixed) / branch / ops (platform) / hashes "
  head += "| TPU while (fixed) / branch / ops (platform) / hashes "
  head += f"| {backend} fusions |"
  rows = [head, "|---|---|---|---|---|---:|"]
  for r in records:
    cells = [
      f"{r[p]['while']} ({r[p]['fixed']}) / {r[p]['branch']} / {r[p]['ops']} ({r[p]['platform']}) / {r[p]['hashes']}"
      for p in PLATFORMS
    ]
    rows.append(f"| {r['method']} | {r['mode']} | {r['pairing']} | {cells[0]} | {cells[1]} | {r.get('fusions', '-')} |")
  return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--methods", nargs="+", default=[*METHODS, *DATA_METHODS])
  parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
  parser.add_argument("--pairings", nargs="*", choices=PAIRINGS, default=list(PAIRINGS), help="Mixup's extra rows")
  parser.add_argument("--shape", default="128x32x32x3", help="B x H x W x C")
  parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results/structure.json"))
  args = parser.parse_args(argv)
  shape = tuple(int(n) for n in args.shape.split("x"))
  cases = [(spec, None) for spec in args.methods] + [("mixup", p) for p in args.pairings]
  records, seen = [], set()
  for spec, pairing in cases:
    for mode in args.modes:
      record = structure(spec, mode, shape, pairing)
      if (spec, mode, record["pairing"]) not in seen:  # Mixup's default pairing is one of the pairings
        seen.add((spec, mode, record["pairing"]))
        records.append(record)
  print(table(records))
  args.out.parent.mkdir(parents=True, exist_ok=True)
  args.out.write_text(json.dumps({"jax": jax.__version__, "records": records}, indent=1))
  return 0


if __name__ == "__main__":
  sys.exit(main())
