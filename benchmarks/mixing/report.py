"""Markdown tables of a run: the op against the floor, against peers, by dtype, in a train step."""

from __future__ import annotations

from typing import Any

from benchmarks.mixing.cases import shape_name
from benchmarks.mixing.targets import peer_reference


def _ms(seconds: float | None) -> str:
  return "-" if seconds is None else f"{1e3 * seconds:.3g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  return lines + ["| " + " | ".join(row) + " |" for row in rows]


def floor_table(ours: list[dict], floors: list[dict], shape: list[int]) -> list[str]:
  """Per method and mode: ms and ratio to the floor for each dtype, and temp memory (batches)."""
  dtypes = [f["dtype"] for f in floors if f["shape"] == shape]
  header = ["method", "mode"] + [f"{d} ms (x floor)" for d in dtypes] + ["temp, batches"]
  floor_row = ["streaming floor", "-"]
  floor_row += [
    _ms(f["median_s"]) + " (1.00)" for d in dtypes for f in floors if f["shape"] == shape and f["dtype"] == d
  ]
  rows = [[*floor_row, "-"]]
  seen = []
  for r in ours:
    if r["shape"] == shape and (r["method"], r["mode"]) not in seen:
      seen.append((r["method"], r["mode"]))
  for method, mode in seen:
    row = [method, mode]
    temps = []
    for d in dtypes:
      match = [r for r in ours if (r["method"], r["mode"], r["shape"], r["dtype"]) == (method, mode, shape, d)]
      row.append(f"{_ms(match[0]['median_s'])} ({match[0]['ratio_to_floor']:.2f})" if match else "-")
      temps += [f"{m['temp_batches']:.2f}" for m in match if m["temp_batches"] is not None]
    rows.append([*row, " / ".join(temps) or "-"])
  return _table(header, rows)


def peer_table(ours: list[dict], peers: list[dict], shape: list[int]) -> list[str]:
  """Per peer call and dtype: its ms, its ratio to the floor, and how much faster the library is."""
  header = ["job", "peer call", "dtype", "peer ms", "peer x floor", "msda_jax ms", "msda_jax speed-up"]
  rows = []
  for p in peers:
    if p["shape"] != shape:
      continue
    mine = [
      r for r in ours if (r["method"], r["mode"], r["shape"], r["dtype"]) == (p["method"], p["mode"], shape, p["dtype"])
    ]
    job = f"{p['method']}/{p['mode']}"
    if "median_s" not in p:
      rows.append([job, f"{p['peer']}: {p['call']}", p["dtype"], "fails", "-", "-", p["error"].replace("|", "/")])
      continue
    ratio = f"{p['median_s'] / mine[0]['floor_s']:.2f}" if mine else "-"
    speedup = f"{p['median_s'] / mine[0]['median_s']:.1f}x" if mine else "-"
    rows.append(
      [
        job,
        f"{p['peer']}: {p['call']}",
        p["dtype"],
        _ms(p["median_s"]),
        ratio,
        _ms(mine[0]["median_s"]) if mine else "-",
        speedup,
      ]
    )
  return _table(header, rows)


def closest_peer_table(ours: list[dict], peers: list[dict], shape: list[int], dtype: str) -> list[str]:
  """Every method and mode against the fastest peer doing its job (or, lacking one, its mode)."""
  header = ["method", "mode", "fastest peer", "same job", "msda_jax speed-up", "vs timm elem"]
  rows = []
  for r in ours:
    if r["shape"] != shape or r["dtype"] != dtype:
      continue
    fastest = peer_reference(r, peers)
    timm = peer_reference(r, peers, library="timm") if r["mode"] == "example" else None
    rows.append(
      [
        r["method"],
        r["mode"],
        "-" if fastest is None else f"{fastest['peer']}: {fastest['call']}",
        "-" if fastest is None else ("yes" if fastest["method"] == r["method"] else "no (fastest in mode)"),
        "-" if fastest is None else f"{fastest['median_s'] / r['median_s']:.1f}x",
        "-" if timm is None else f"{timm['median_s'] / r['median_s']:.1f}x",
      ]
    )
  return _table(header, rows)


def dtype_table(ours: list[dict], floors: list[dict], shape: list[int]) -> list[str]:
  """How much faster bfloat16 and uint8 run than float32 (bytes alone would give 2x and 4x)."""
  others = [d for d in ("bfloat16", "uint8") if any(f["shape"] == shape and f["dtype"] == d for f in floors)]
  header = ["method", "mode"] + [f"float32 / {d} time" for d in others]

  def speedups(find) -> list[str]:
    base = find("float32")
    return [f"{base / find(d):.2f}x" if base and find(d) else "-" for d in others]

  floor_time = lambda d: next((f["median_s"] for f in floors if f["shape"] == shape and f["dtype"] == d), None)
  rows = [["streaming floor", "-", *speedups(floor_time)]]
  pairs = []
  for r in ours:
    if r["shape"] == shape and (r["method"], r["mode"]) not in pairs:
      pairs.append((r["method"], r["mode"]))
  for method, mode in pairs:

    def op_time(d, method=method, mode=mode):
      match = [r for r in ours if (r["method"], r["mode"], r["shape"], r["dtype"]) == (method, mode, shape, d)]
      return match[0]["median_s"] if match else None

    rows.append([method, mode, *speedups(op_time)])
  return _table(header, rows)


def train_table(train: list[dict]) -> list[str]:
  header = ["method", "mode", "step ms", "direct overhead", "op ms", "op share of step"]
  rows = []
  for t in train:
    rows.append(
      [
        t["method"],
        t["mode"] or "-",
        _ms(t["step_median_s"]),
        "-" if t["mode"] is None or t["direct_overhead"] is None else f"{100 * t['direct_overhead']:+.1f}%",
        _ms(t.get("op_median_s")),
        "-" if t["mode"] is None else f"{100 * t['op_share']:.3f}%",
      ]
    )
  spread = train[0]["baseline_spread"] if train else 0.0
  return [
    *_table(header, rows),
    "",
    f"Step-to-step spread without mixing (max - min over median): {100 * spread:.1f}%.",
  ]


def targets_table(targets: list[dict]) -> list[str]:
  rows = []
  for t in targets:
    verdict = "met" if t["met"] else ("not measured" if not t["checked"] else "missed")
    detail = "; ".join(t["misses"][:6]) + (f"; ... ({len(t['misses'])} in all)" if len(t["misses"]) > 6 else "")
    rows.append([t["target"], verdict, f"{t['checked']}", detail or t["note"] or "-"])
  return _table(["target", "verdict", "cases", "misses"], rows)


def markdown(result: dict[str, Any]) -> str:
  ours, peers, floors = result["ours"], result["peers"], result["floors"]
  shapes = []
  for f in floors:
    if f["shape"] not in shapes:
      shapes.append(f["shape"])
  machine = result.get("machine", {})
  out: list[str] = [
    f"Machine: {machine.get('jax_device', '?')}; {machine.get('processor', '?')}, {machine.get('cores', '?')} cores; "
    f"torch peers on {machine.get('torch_device', 'cpu')}.",
    "",
  ]
  for shape in shapes:
    out += [f"### {shape_name(shape)}: the op against the streaming floor", ""]
    out += [*floor_table(ours, floors, shape), ""]
    if sum(f["shape"] == shape for f in floors) > 1 and any(
      f["shape"] == shape and f["dtype"] == "float32" for f in floors
    ):
      out += [f"### {shape_name(shape)}: dtype speed-ups", ""]
      out += [*dtype_table(ours, floors, shape), ""]
    if any(p["shape"] == shape for p in peers):
      out += [f"### {shape_name(shape)}: peers on the same inputs", ""]
      out += [*peer_table(ours, peers, shape), ""]
      for dtype in ("float32",):
        if any(r["shape"] == shape and r["dtype"] == dtype for r in ours):
          out += [f"### {shape_name(shape)} {dtype}: every method against the fastest peer", ""]
          out += [*closest_peer_table(ours, peers, shape, dtype), ""]
  if result["train"]:
    out += ["### PreActResNet-18 train step (128 x 32 x 32 x 3 uint8, 100 classes)", ""]
    out += [*train_table(result["train"]), ""]
  out += ["### Targets", "", *targets_table(result["targets"]), ""]
  return "\n".join(out)
