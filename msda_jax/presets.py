"""Presets with the paper's defaults, and methods built by name from a config string.

``from_string("hmix(alpha=1.0, r=0.75)")`` builds ``HMix(alpha=1.0, r=0.75)``; a bare name
(``"cutmix"``) takes the defaults and ``"none"`` (or ``"vanilla"``) means no mixing. Only
literal keyword arguments are accepted.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from msda_jax.masks._base import MixMethod
from msda_jax.masks.bernoulli import Bernoulli
from msda_jax.masks.cutmix import CutMix
from msda_jax.masks.fmix import FMix
from msda_jax.masks.gmix import GMix
from msda_jax.masks.hmix import HMix
from msda_jax.masks.mixup import Mixup
from msda_jax.masks.resizemix import ResizeMix
from msda_jax.masks.stochastic import StochasticMixupCutMix


def mixup(alpha: float = 1.0) -> Mixup:
  """Mixup, ``lam ~ Beta(alpha, alpha)`` (Table 2: alpha 1; Table 3: alpha 0.8)."""
  return Mixup(alpha=alpha)


def cutmix(alpha: float = 1.0, placement: str = "clip") -> CutMix:
  """CutMix, ``lam ~ Beta(alpha, alpha)``, box clipped at the border (Tables 2 and 3: alpha 1)."""
  return CutMix(alpha=alpha, placement=placement)


def stochastic_mixup_cutmix(
  mixup_alpha: float = 1.0, cutmix_alpha: float = 1.0, q: float = 0.5, placement: str = "clip"
) -> StochasticMixupCutMix:
  """Stochastic Mixup & CutMix: Mixup with probability ``q = 0.5`` (the paper's choice)."""
  return StochasticMixupCutMix(mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, q=q, placement=placement)


def hmix(alpha: float = 1.0, r: float = 0.5, r_alpha: float | None = None, placement: str = "clip") -> HMix:
  """HMix, ``alpha = 1`` and ``r = 0.5`` (Table 2; Table 3 uses ``r = 0.75``)."""
  return HMix(alpha=alpha, r=r, r_alpha=r_alpha, placement=placement)


def gmix(alpha: float = 0.5, scale: str = "code", symmetric: bool = True) -> GMix:
  """GMix, ``alpha = 0.5`` (Table 2; Table 3 uses ``alpha = 1``), the official code's scale."""
  return GMix(alpha=alpha, scale=scale, symmetric=symmetric)


def bernoulli(alpha: float = 1.0) -> Bernoulli:
  """I.i.d. Bernoulli pixel masks, ``lam ~ Beta(alpha, alpha)`` (Figure 1 uses alpha 1)."""
  return Bernoulli(alpha=alpha)


def fmix(alpha: float = 1.0, decay: float = 3.0) -> FMix:
  """FMix: binarised low-frequency Fourier masks of exact area, decay power 3."""
  return FMix(alpha=alpha, decay=decay)


def resizemix(scale_min: float = 0.1, scale_max: float = 0.8) -> ResizeMix:
  """ResizeMix: the partner shrunk by a side ratio uniform in [0.1, 0.8] and pasted."""
  return ResizeMix(scale_min=scale_min, scale_max=scale_max)


PRESETS: dict[str, Callable[..., MixMethod]] = {
  "mixup": mixup,
  "cutmix": cutmix,
  "stochastic_mixup_cutmix": stochastic_mixup_cutmix,
  "stochastic": stochastic_mixup_cutmix,
  "hmix": hmix,
  "gmix": gmix,
  "bernoulli": bernoulli,
  "fmix": fmix,
  "resizemix": resizemix,
}
NO_MIXING = ("none", "vanilla")


#: longest spec accepted: far above any real one, and short enough that parsing is instant.
MAX_SPEC_LENGTH = 1000


def _source(spec: str, node: ast.AST) -> str:
  """The text of ``node`` in ``spec``, at most 60 characters (no recursion over the tree)."""
  text = ast.get_source_segment(spec.strip(), node) or "?"
  return text if len(text) <= 60 else text[:57] + "..."


def _literal(node: ast.AST, spec: str, name: str) -> Any:
  try:
    return ast.literal_eval(node)
  except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError) as error:
    raise ValueError(
      f"method spec {spec!r}: arguments must be literals; got {_source(spec, node)!r} for {name}."
    ) from error


def from_string(spec: str) -> MixMethod | None:
  """Builds a method from ``"name"`` or ``"name(key=value, ...)"``.

  Args:
    spec: e.g. ``"mixup"``, ``"gmix(alpha=1.0)"``, ``"stochastic(q=0.3)"`` or ``"none"``.

  Returns:
    the method, or ``None`` for ``"none"``/``"vanilla"``.

  >>> from_string("hmix(r=0.75)")
  HMix(alpha=1.0, r=0.75, r_alpha=None, placement='clip')
  """
  if not isinstance(spec, str) or not spec.strip():
    raise ValueError(f"method spec must be a non-empty string such as 'mixup(alpha=0.8)'; got {spec!r}.")
  if len(spec) > MAX_SPEC_LENGTH:
    raise ValueError(f"method spec must be at most {MAX_SPEC_LENGTH} characters; got {len(spec)}: {spec[:60]!r}...")
  try:
    node = ast.parse(spec.strip(), mode="eval").body
  except (SyntaxError, RecursionError, MemoryError) as error:
    raise ValueError(f"method spec {spec!r} is not of the form 'name' or 'name(key=value, ...)'.") from error
  if isinstance(node, ast.Name):
    name, kwargs = node.id, {}
  elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args:
    name = node.func.id
    if any(kw.arg is None for kw in node.keywords):
      raise ValueError(f"method spec {spec!r}: only key=value arguments are accepted (no **).")
    names = [str(kw.arg) for kw in node.keywords]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
      raise ValueError(f"method spec {spec!r}: argument {repeated[0]!r} is given more than once.")
    kwargs = {kw.arg: _literal(kw.value, spec, kw.arg) for kw in node.keywords if kw.arg is not None}
  else:
    raise ValueError(f"method spec {spec!r} must be 'name' or 'name(key=value, ...)' with keyword arguments only.")
  name = name.lower()
  if name in NO_MIXING:
    if kwargs:
      raise ValueError(f"method spec {spec!r}: {name!r} takes no arguments.")
    return None
  if name not in PRESETS:
    raise ValueError(f"unknown method {name!r}; expected one of {sorted(PRESETS) + list(NO_MIXING)}.")
  try:
    return PRESETS[name](**kwargs)
  except TypeError as error:
    raise ValueError(f"method spec {spec!r}: {error}") from error
