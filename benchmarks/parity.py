"""Parity with the reference implementations: the same inputs and the same random draws.

```bash
python -m benchmarks.parity --official /path/to/hmix-gmix --draws 200
```

For each peer that imports (timm's ``Mixup``, torchvision's ``v2.MixUp`` / ``v2.CutMix``, and the
official HMix/GMix ``mixup.py`` loaded from the checkout given by ``--official``), every draw:

1. makes images ``[B, C, H, W]`` (float32, uniform in [0, 1]) and integer labels ``[B]``;
2. runs the peer with its random calls wrapped (numpy's ``beta`` / ``randint``, torch's ``randint``
   and the Beta distribution's ``sample``), which records ``lam`` and the box centre(s) it drew;
3. runs ``msda_jax.mix_batch`` on the same images ``[B, H, W, C]`` with the recorded ``lam``
   (rounded to float32) as ``lam=``, the peer's pairing (``"reverse"`` for timm and the official
   code, ``"roll"`` for torchvision) and label smoothing, with its box placement fed the
   recorded centre: ``msda_jax.masks._box``'s ``random_box_extent`` / ``random_cut_extent`` are
   wrapped for the run to return ``(centre - size // 2, size)``, the size computed with the
   ``sides`` under test (the centre is looked up by the box's nominal fraction, which tells the
   examples of a batch apart);
4. records the max absolute difference of the mixed images and of the target rows ``[B, K]``,
   and whether any pixel of the mask differs (a box one row or column off).

The table has one row per peer and case, and for each ``sides`` (``"floor"``, ``"even"``) the max
differences over all draws and the number of draws whose box differs. Nothing here is asserted;
``tests/test_parity_reference.py`` checks the box formula without torch.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import msda_jax
from msda_jax.masks import _box

SIDES = _box.BOX_SIDES


@dataclasses.dataclass
class Draws:
  """What a peer drew in one call: ``lam`` per example ``[B]`` and box centres ``[B, 2]`` (row, column)."""

  lam: np.ndarray
  centre: np.ndarray


@dataclasses.dataclass
class Case:
  """One peer configuration and the ``mix_batch`` settings that mirror it."""

  peer: str
  name: str
  run_peer: Callable[[Any, Any, int], tuple[np.ndarray, np.ndarray, Draws]]  # (images, labels, seed)
  method: str  # "mixup", "cutmix" or "hmix"
  mode: str  # "batch" or "example"
  pairing: str
  label_smoothing: float
  r: float = 1.0


# -- recording the peers' random calls ------------------------------------------------------------


@contextlib.contextmanager
def recording(target: Any, name: str, log: list[Any]) -> Iterator[None]:
  """Wraps ``target.name`` for the block so that every value it returns is appended to ``log``."""
  original = getattr(target, name)

  def wrapped(*args: Any, **kwargs: Any) -> Any:
    value = original(*args, **kwargs)
    log.append(value)
    return value

  setattr(target, name, wrapped)
  try:
    yield
  finally:
    setattr(target, name, original)


def numpy_draws(call: Callable[[], Any], batch: int, per_example: bool) -> tuple[Any, Draws]:
  """Runs ``call`` recording ``np.random.beta`` (lam) and ``np.random.randint`` (row, then column centre)."""
  betas: list[Any] = []
  ints: list[Any] = []
  with recording(np.random, "beta", betas), recording(np.random, "randint", ints):
    out = call()
  lam = np.asarray(betas[0], np.float64).reshape(-1)
  lam = np.broadcast_to(lam, (batch,)) if not per_example else lam
  drawn = np.array([int(v) for v in ints], np.int64).reshape(-1, 2)
  centres = np.zeros((batch, 2), np.int64)
  if per_example and len(drawn):  # one box per example whose float32 lam is not 1, in order
    centres[np.asarray(lam, np.float32) != 1.0] = drawn
  elif len(drawn):
    centres[:] = drawn[0]
  return out, Draws(np.array(lam), centres)


# -- peers ------------------------------------------------------------------------------------------


def timm_cases(classes: int) -> list[Case]:
  import torch
  from timm.data import Mixup

  def runner(mode: str, mixup: float, cutmix: float) -> Callable[[Any, Any, int], tuple[Any, Any, Draws]]:
    def run(images: np.ndarray, labels: np.ndarray, seed: int) -> tuple[Any, Any, Draws]:
      np.random.seed(seed)  # noqa: NPY002 (the peer draws from the legacy global generator)
      mixer = Mixup(
        mixup_alpha=mixup, cutmix_alpha=cutmix, mode=mode, correct_lam=True, label_smoothing=0.1, num_classes=classes
      )
      x, y = torch.from_numpy(images.copy()), torch.from_numpy(labels)
      (x, target), draws = numpy_draws(lambda: mixer(x, y), len(labels), per_example=(mode == "elem"))
      return x.numpy(), target.numpy(), draws

    return run

  cases = []
  for mode, ours_mode in (("batch", "batch"), ("elem", "example")):
    for method, alphas in (("mixup", (1.0, 0.0)), ("cutmix", (0.0, 1.0))):
      cases.append(Case("timm", f"{method} {mode}", runner(mode, *alphas), method, ours_mode, "reverse", 0.1))
  return cases


def torchvision_cases(classes: int) -> list[Case]:
  import torch
  from torchvision.transforms import v2

  def runner(cls: Any) -> Callable[[Any, Any, int], tuple[Any, Any, Draws]]:
    def run(images: np.ndarray, labels: np.ndarray, seed: int) -> tuple[Any, Any, Draws]:
      torch.manual_seed(seed)
      transform = cls(alpha=1.0, num_classes=classes)
      lams: list[Any] = []
      ints: list[Any] = []
      with recording(transform._dist, "sample", lams), recording(torch, "randint", ints):
        x, target = transform(torch.from_numpy(images.copy()), torch.from_numpy(labels))
      lam = np.full(len(labels), float(lams[0]), np.float64)
      centre = np.zeros((len(labels), 2), np.int64)
      if ints:  # CutMix draws the column centre (over W), then the row centre (over H)
        centre[:] = (int(ints[1]), int(ints[0]))
      return x.numpy(), target.numpy(), Draws(lam, centre)

    return run

  return [
    Case("torchvision", "MixUp", runner(v2.MixUp), "mixup", "batch", "roll", 0.0),
    Case("torchvision", "CutMix", runner(v2.CutMix), "cutmix", "batch", "roll", 0.0),
  ]


def official_cases(path: str, classes: int) -> list[Case]:
  """The HMix/GMix code's ``Mixup`` from ``path/mixup.py`` (its batch mode: HMix exists only there)."""
  import torch

  if "cv2" not in sys.modules and importlib.util.find_spec("cv2") is None:
    sys.modules["cv2"] = types.ModuleType("cv2")  # imported by the file, never used by Mixup
  spec = importlib.util.spec_from_file_location("official_hmix_gmix_mixup", Path(path) / "mixup.py")
  if spec is None or spec.loader is None:
    raise ImportError(f"--official must name a checkout holding mixup.py; got {path!r}.")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)

  def runner(mixup: float, cutmix: float, cutmix_mode: str, r: float) -> Callable[[Any, Any, int], Any]:
    def run(images: np.ndarray, labels: np.ndarray, seed: int) -> tuple[Any, Any, Draws]:
      np.random.seed(seed)  # noqa: NPY002 (the peer draws from the legacy global generator)
      mixer = module.Mixup(
        mixup_alpha=mixup,
        cutmix_alpha=cutmix,
        mode="batch",
        correct_lam=True,
        label_smoothing=0.1,
        num_classes=classes,
        cutmix_mode=cutmix_mode,
        hmix_ratio=r,
      )
      x, y = torch.from_numpy(images.copy()), torch.from_numpy(labels)
      (x, target), draws = numpy_draws(lambda: mixer(x, y), len(labels), per_example=False)
      return x.numpy(), target.numpy(), draws

    return run

  return [
    Case("official", "mixup", runner(1.0, 0.0, "bbox", 1.0), "mixup", "batch", "reverse", 0.1),
    Case("official", "cutmix", runner(0.0, 1.0, "bbox", 1.0), "cutmix", "batch", "reverse", 0.1),
    Case("official", "hmix r=0.5", runner(0.0, 1.0, "hmix", 0.5), "hmix", "batch", "reverse", 0.1, r=0.5),
  ]


# -- msda_jax on the recorded draws -----------------------------------------------------------------


class _Feed:
  """The recorded centres and the box fractions they belong to, while ``ours`` is traced."""

  values: jax.Array  # float32 [B]: the nominal fraction (or lam) each example's box comes from
  lams: jax.Array  # float32 [B]
  centres: jax.Array  # int32 [B, 2]


FEED = _Feed()
_ORIGINAL: dict[str, Any] = {"random_box_extent": _box.random_box_extent, "random_cut_extent": _box.random_cut_extent}


def _nearest(table: jax.Array, value: jax.Array) -> jax.Array:
  """Centre (int32 ``[2]``) of the example whose recorded value is nearest ``value``."""
  return FEED.centres[jnp.argmin(jnp.abs(table - value))]


def _fed_box_extent(
  key: Any, area_fraction: Any, shape: tuple[int, ...], placement: str, *, sides: str = "floor"
) -> Any:
  del key
  assert placement == "clip", placement
  size = _box.box_sizes(area_fraction, shape, sides=sides)
  return _nearest(FEED.values, jnp.asarray(area_fraction, jnp.float32)) - size // 2, size


def _fed_cut_extent(key: Any, lam: Any, shape: tuple[int, ...], placement: str, *, sides: str = "floor") -> Any:
  del key
  assert placement == "clip", placement
  size = _box.cut_sizes(lam, shape, sides=sides)
  return _nearest(FEED.lams, jnp.asarray(lam, jnp.float32)) - size // 2, size


@contextlib.contextmanager
def fed_boxes() -> Iterator[None]:
  """``_box``'s random boxes placed at ``FEED``'s centres for the block."""
  _box.random_box_extent = _fed_box_extent
  _box.random_cut_extent = _fed_cut_extent
  try:
    yield
  finally:
    _box.random_box_extent = _ORIGINAL["random_box_extent"]
    _box.random_cut_extent = _ORIGINAL["random_cut_extent"]


def _method(name: str, r: float, sides: str) -> Any:
  """The method with the box sides under test (the class's own ``box_sides`` option)."""
  if name == "mixup":
    return msda_jax.Mixup()
  if name == "cutmix":
    return msda_jax.CutMix(box_sides=sides)
  return msda_jax.HMix(r=r, box_sides=sides)


@partial(jax.jit, static_argnames=("method", "mode", "pairing", "classes", "sides", "r"))
def ours(
  images: jax.Array,
  labels: jax.Array,
  lam: jax.Array,
  centres: jax.Array,
  label_smoothing: jax.Array,
  *,
  method: str,
  mode: str,
  pairing: str,
  classes: int,
  sides: str,
  r: float,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """``mix_batch`` with ``lam`` [B] and the boxes at ``centres`` [B, 2]: ``(images, targets, masks)``."""
  lam32 = lam.astype(jnp.float32)
  FEED.lams, FEED.centres = lam32, centres
  FEED.values = (1.0 - lam32) * jnp.float32(r)
  given = lam32 if mode == "example" else lam32[0]
  mixed, targets, info = msda_jax.mix_batch_with_info(
    jax.random.key(0),
    images,
    labels,
    _method(method, r, sides),
    num_classes=classes,
    mode=mode,
    pairing=pairing,
    label_smoothing=label_smoothing,
    lam=given,
  )
  return mixed, targets, info.mask


# -- the comparison -------------------------------------------------------------------------------


def compare(case: Case, *, draws: int, batch: int, shape: tuple[int, int], classes: int) -> dict[str, Any]:
  """Max |difference| of images and targets over ``draws`` calls, per ``sides``, and boxes that differ."""
  rng = np.random.default_rng(0)
  result: dict[str, Any] = {side: {"image": 0.0, "target": 0.0, "boxes_differ": 0} for side in SIDES}
  for seed in range(draws):
    images = rng.uniform(0.0, 1.0, (batch, 3, *shape)).astype(np.float32)
    labels = rng.integers(0, classes, batch).astype(np.int64)
    peer_x, peer_y, drawn = case.run_peer(images, labels, seed)
    centres = drawn.centre
    peer_mask = None
    if case.method != "mixup":  # where the peer pasted its partner: 0 in the mask
      partner = np.roll(images, 1, 0) if case.pairing == "roll" else images[::-1]
      peer_mask = ~np.all((peer_x == partner) & (peer_x != images), axis=1)
    for side in SIDES:
      with fed_boxes():
        x, y, mask = ours(
          jnp.asarray(images.transpose(0, 2, 3, 1)),
          jnp.asarray(labels.astype(np.int32)),
          jnp.asarray(drawn.lam, jnp.float32),
          jnp.asarray(centres, jnp.int32),
          jnp.float32(case.label_smoothing),
          method=case.method,
          mode=case.mode,
          pairing=case.pairing,
          classes=classes,
          sides=side,
          r=case.r,
        )
      x = np.asarray(x).transpose(0, 3, 1, 2)
      entry = result[side]
      entry["image"] = max(entry["image"], float(np.abs(x - peer_x).max()))
      entry["target"] = max(entry["target"], float(np.abs(np.asarray(y) - peer_y).max()))
      if peer_mask is not None:
        entry["boxes_differ"] += int(np.any((np.asarray(mask) > 0) != peer_mask))
  return result


def available_cases(official: str | None, classes: int) -> tuple[list[Case], list[str]]:
  cases: list[Case] = []
  skipped = []
  for label, build in (("timm", lambda: timm_cases(classes)), ("torchvision", lambda: torchvision_cases(classes))):
    try:
      cases += build()
    except ImportError as error:
      skipped.append(f"{label}: {error}")
  if official:
    try:
      cases += official_cases(official, classes)
    except (ImportError, OSError) as error:
      skipped.append(f"official: {error}")
  else:
    skipped.append("official: no --official checkout given")
  return cases, skipped


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--official", help="checkout of the official HMix/GMix code (holding mixup.py)")
  parser.add_argument("--draws", type=int, default=100, help="calls per case (each with its own seed)")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--shape", type=int, nargs=2, default=(32, 32), metavar=("H", "W"))
  parser.add_argument("--classes", type=int, default=10)
  args = parser.parse_args(argv)
  cases, skipped = available_cases(args.official, args.classes)
  versions = {}
  for name in ("torch", "torchvision", "timm", "jax"):
    with contextlib.suppress(Exception):
      versions[name] = importlib.import_module(name).__version__
  print(f"batch {args.batch}, images {args.shape[0]} x {args.shape[1]}, {args.draws} draws per case; {versions}")
  for reason in skipped:
    print(f"skipped {reason}")
  header = "| peer | case | " + " | ".join(f"{s}: max abs image, target, draws with another box" for s in SIDES) + " |"
  print(header)
  print("|" + "---|" * (2 + len(SIDES)))
  for case in cases:
    result = compare(case, draws=args.draws, batch=args.batch, shape=tuple(args.shape), classes=args.classes)
    cells = []
    for side in SIDES:
      entry = result[side]
      boxes = "-" if case.method == "mixup" else f"{entry['boxes_differ']}/{args.draws}"
      cells.append(f"{entry['image']:.3g}, {entry['target']:.3g}, {boxes}")
    print(f"| {case.peer} | {case.name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
  main()
