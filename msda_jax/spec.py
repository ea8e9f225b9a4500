"""Methods by name: the registry of the method classes and ``from_string`` for config strings.

``METHODS`` maps each class's ``name`` to the class; ``from_string("hmix(alpha=1.0, r=0.75)")``
builds ``HMix(alpha=1.0, r=0.75)``. A bare name (``"cutmix"``) takes the class's defaults and
``"none"`` (or ``"vanilla"``) means no mixing; ``"mix_k_batch(k=3, alpha=1.0)"`` names k-sample
mixing (``msda_jax.KMix``), and a mixture's components are specs themselves
(``"mixture(methods=('mixup', 'gmix(alpha=1.0)'), probs=(0.3, 0.7))"``). Only literal keyword
arguments are accepted. The parser sits above the method classes: no class imports it.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable
from typing import Any

from msda_jax import _validate
from msda_jax.kmix import KMix
from msda_jax.masks._alignmix import AlignMix
from msda_jax.masks._attentive import AttentiveCutMix
from msda_jax.masks._base import MixMethod
from msda_jax.masks._bernoulli import Bernoulli
from msda_jax.masks._comixup import CoMixup
from msda_jax.masks._cutmix import CutMix
from msda_jax.masks._fmix import FMix
from msda_jax.masks._gmix import GMix
from msda_jax.masks._gridmix import GridMix
from msda_jax.masks._guidedmixup import GuidedMixup
from msda_jax.masks._hidden import ManifoldMixup, PatchUp
from msda_jax.masks._hmix import HMix
from msda_jax.masks._kcutmix import KCutMix
from msda_jax.masks._mixpro import MixPro
from msda_jax.masks._mixture import Mixture
from msda_jax.masks._mixup import Mixup
from msda_jax.masks._patches import PatchAligned
from msda_jax.masks._puzzlemix import PuzzleMix
from msda_jax.masks._resizemix import ResizeMix
from msda_jax.masks._ricap import RICAP
from msda_jax.masks._saliencymix import SaliencyMix
from msda_jax.masks._smmix import SMMix
from msda_jax.masks._smoothmix import SmoothMix
from msda_jax.masks._snapmix import SnapMix
from msda_jax.masks._specmix import SpecMix
from msda_jax.masks._stochastic import StochasticMixupCutMix
from msda_jax.masks._tokenmix import TokenMix
from msda_jax.masks._transmix import TransMix
from msda_jax.masks._videomix import VideoMix

#: every method by name (its class's ``name``), and the aliases ``from_string`` accepts.
METHODS: dict[str, type[Any]] = {
  cls.name: cls
  for cls in (
    Mixup,
    CutMix,
    StochasticMixupCutMix,
    HMix,
    GMix,
    Bernoulli,
    FMix,
    ResizeMix,
    PuzzleMix,
    SaliencyMix,
    AttentiveCutMix,
    SnapMix,
    GuidedMixup,
    CoMixup,
    SmoothMix,
    GridMix,
    SpecMix,
    VideoMix,
    Mixture,
    KMix,
    RICAP,
    KCutMix,
    ManifoldMixup,
    PatchUp,
    AlignMix,
    PatchAligned,
    TransMix,
    TokenMix,
    MixPro,
    SMMix,
  )
}
ALIASES = {"stochastic": StochasticMixupCutMix.name, "kmix": KMix.name}
NO_MIXING = ("none", "vanilla")


#: keywords other libraries use, accepted by ``from_string``: name -> (field, map).
ALIAS_KEYWORDS: dict[type[Any], dict[str, tuple[str, Callable[[Any], Any]]]] = {
  # timm's switch_prob: the probability of the CutMix branch.
  StochasticMixupCutMix: {"switch_prob": ("q", lambda p: 1.0 - p)},
}


def _keywords(cls: type[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
  """``kwargs`` with the aliases of ``ALIAS_KEYWORDS`` replaced by the fields they set."""
  kwargs = dict(kwargs)
  for alias, (field, convert) in ALIAS_KEYWORDS.get(cls, {}).items():
    if alias not in kwargs:
      continue
    if field in kwargs:
      raise ValueError(f"give {field} or {alias}, not both; got {field}={kwargs[field]!r}, {alias}={kwargs[alias]!r}.")
    value = _validate.hyperparameter(alias, kwargs.pop(alias))
    _validate.check_range(alias, value, 0.0, 1.0)
    kwargs[field] = convert(value)
  return kwargs


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


def from_string(spec: str) -> MixMethod | KMix | None:
  """Builds a method from ``"name"`` or ``"name(key=value, ...)"``.

  Args:
    spec: e.g. ``"mixup"``, ``"gmix(alpha=1.0)"``, ``"stochastic(q=0.3)"``,
      ``"mix_k_batch(k=3)"`` or ``"none"``.

  Returns:
    the method (an instance of a class in ``METHODS``), or ``None`` for ``"none"``/``"vanilla"``.

  >>> from_string("hmix(r=0.75)")
  HMix(alpha=1.0, r=0.75, r_alpha=None, placement='clip', box_sides='floor')
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
  name = ALIASES.get(name, name)
  if name not in METHODS:
    known = sorted([*METHODS, *ALIASES]) + list(NO_MIXING)
    raise ValueError(f"unknown method {name!r}; expected one of {known}.")
  cls = METHODS[name]
  unknown = sorted(set(kwargs) - set(inspect.signature(cls).parameters) - set(ALIAS_KEYWORDS.get(cls, {})))
  if unknown:
    raise ValueError(
      f"method spec {spec!r}: {cls.__name__} has no argument {unknown[0]!r}; "
      f"expected some of {list(inspect.signature(cls).parameters)}."
    )
  if cls is Mixture and isinstance(kwargs.get("methods"), (tuple, list)):
    # Nested specs: each component a spec string (or the spec of no method, refused by Mixture).
    kwargs["methods"] = tuple(from_string(m) if isinstance(m, str) else m for m in kwargs["methods"])
  if cls in (PatchAligned, TransMix) and isinstance(kwargs.get("method"), str):
    kwargs["method"] = from_string(kwargs["method"])  # the wrapped method, by its spec
  try:
    return cls(**_keywords(cls, kwargs))  # type: ignore[no-any-return]
  except TypeError as error:
    raise ValueError(f"method spec {spec!r}: {error}") from error
