"""The issue's targets, judged from a run's records: each is met or missed, with the cases that miss.

* floor: every method, both modes, within 1.25x of the streaming floor at the largest shape;
* bytes: bfloat16 and uint8 faster than float32 in proportion to their bytes (2x and 4x,
  with the same 1.25 slack), at the largest shape;
* timm elem: per-example modes at least 10x faster than timm's ``mode="elem"`` doing the same
  job (methods timm lacks: its fastest elem job);
* peers: no method slower than the fastest peer doing the same job (methods no peer has: the
  fastest peer in the same mode);
* memory: the compiled op's temporary buffers at most one image batch;
* example mode: each method's per-example mode within 1.5x of its batch mode (same shape, dtype);
* train step: mixing adds under 2% to the PreActResNet-18 step.
"""

from __future__ import annotations

from typing import Any

FLOOR_SLACK = 1.25
TIMM_ELEM_FACTOR = 10.0
TRAIN_SHARE = 0.02
EXAMPLE_OVER_BATCH = 1.5
BYTES = {"float32": 4, "bfloat16": 2, "uint8": 1}


def _key(r: dict[str, Any]) -> tuple[str, str, tuple[int, ...], str]:
  return r["method"], r["mode"], tuple(r["shape"]), r["dtype"]


def _case(r: dict[str, Any]) -> str:
  return f"{r['method']}/{r['mode']} {'x'.join(map(str, r['shape']))} {r['dtype']}"


def _result(name: str, checked: int, misses: list[str], note: str = "") -> dict[str, Any]:
  return {"target": name, "met": checked > 0 and not misses, "checked": checked, "misses": misses, "note": note}


def peer_reference(record: dict[str, Any], peers: list[dict[str, Any]], library: str | None = None) -> dict | None:
  """The fastest timed peer doing the record's job (same shape and dtype), else the fastest in its mode."""
  timed = [
    p
    for p in peers
    if "median_s" in p
    and p["mode"] == record["mode"]
    and p["shape"] == record["shape"]
    and p["dtype"] == record["dtype"]
    and (library is None or p["peer"] == library)
  ]
  same = [p for p in timed if p["method"] == record["method"]]
  pool = same or timed
  return min(pool, key=lambda p: p["median_s"]) if pool else None


def judge(ours: list[dict], peers: list[dict], train: list[dict]) -> list[dict[str, Any]]:
  results = []
  largest = max((tuple(r["shape"]) for r in ours), key=lambda s: s[1] * s[2], default=None)
  big = [r for r in ours if tuple(r["shape"]) == largest]
  misses = [f"{_case(r)}: {r['ratio_to_floor']:.2f}x" for r in big if r["ratio_to_floor"] > FLOOR_SLACK]
  results.append(_result(f"within {FLOOR_SLACK}x of the streaming floor at the largest shape", len(big), misses))

  by_key = {_key(r): r for r in big}
  misses, checked = [], 0
  for r in big:
    if r["dtype"] == "float32":
      continue
    reference = by_key.get((r["method"], r["mode"], tuple(r["shape"]), "float32"))
    if reference is None:
      continue
    checked += 1
    speedup = reference["median_s"] / r["median_s"]
    wanted = BYTES["float32"] / BYTES[r["dtype"]] / FLOOR_SLACK
    if speedup < wanted:
      misses.append(f"{_case(r)}: {speedup:.2f}x faster than float32 (wanted {wanted:.2f}x)")
  results.append(_result("bfloat16 and uint8 faster than float32 in proportion to bytes", checked, misses))

  misses, checked = [], 0
  for r in ours:
    if r["mode"] != "example":
      continue
    timm = peer_reference(r, peers, library="timm")
    if timm is None:
      continue
    checked += 1
    speedup = timm["median_s"] / r["median_s"]
    if speedup < TIMM_ELEM_FACTOR:
      misses.append(f"{_case(r)}: {speedup:.1f}x faster than timm elem")
  results.append(_result(f"per-example modes {TIMM_ELEM_FACTOR:.0f}x faster than timm elem", checked, misses))

  misses, checked = [], 0
  for r in ours:
    fastest = peer_reference(r, peers)
    if fastest is None:
      continue
    checked += 1
    if r["median_s"] > fastest["median_s"]:
      misses.append(f"{_case(r)}: {r['median_s'] / fastest['median_s']:.2f}x the time of {fastest['peer']}")
  results.append(_result("no method slower than the fastest peer doing the same job", checked, misses))

  misses, checked = [], 0
  batch_modes = {(r["method"], tuple(r["shape"]), r["dtype"]): r for r in ours if r["mode"] == "batch"}
  for r in ours:
    batch = batch_modes.get((r["method"], tuple(r["shape"]), r["dtype"])) if r["mode"] == "example" else None
    if batch is None:
      continue
    checked += 1
    if r["median_s"] > EXAMPLE_OVER_BATCH * batch["median_s"]:
      misses.append(f"{_case(r)}: {r['median_s'] / batch['median_s']:.2f}x the batch mode's time")
  results.append(_result(f"per-example modes within {EXAMPLE_OVER_BATCH}x of batch mode", checked, misses))

  misses = [f"{_case(r)}: {r['temp_batches']:.2f} batches" for r in ours if (r["temp_batches"] or 0.0) > 1.0]
  results.append(_result("temporary memory at most one image batch", len(ours), misses))

  mixed = [t for t in train if t["mode"] is not None]
  misses = [
    f"{t['method']}/{t['mode']}: op {100 * t['op_share']:.2f}% of the step"
    for t in mixed
    if t["op_share"] >= TRAIN_SHARE
  ]
  note = "judged on op_share; the direct step difference is within the step's jitter"
  results.append(_result(f"mixing adds under {100 * TRAIN_SHARE:.0f}% to the ResNet-18 step", len(mixed), misses, note))
  return results
