"""The methods by name: a registry built from the classes, presets, and ``from_string``.

Each class states its defaults once; a preset (``msda_jax.hmix(r=0.75)``) builds its class with
the given keywords, and ``from_string("hmix(alpha=1.0, r=0.75)")`` does the same from a config
string. A bare name (``"cutmix"``) takes the defaults and ``"none"`` (or ``"vanilla"``) means no
mixing; ``"mix_k_batch(k=3, alpha=1.0)"`` names k-sample mixing (``msda_jax.KMix``). Only
literal keyword arguments are accepted.
"""

from __future__ import annotations

import ast
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from msda_jax import _validate
from msda_jax.kmix import KMix
from msda_jax.masks._base import MixMethod
from msda_jax.masks._bernoulli import Bernoulli
from msda_jax.masks._cutmix import CutMix
from msda_jax.masks._fmix import FMix
from msda_jax.masks._gmix import GMix
from msda_jax.masks._hmix import HMix
from msda_jax.masks._mixture import Mixture
from msda_jax.masks._mixup import Mixup
from msda_jax.masks._puzzlemix import PuzzleMix
from msda_jax.masks._resizemix import ResizeMix
from msda_jax.masks._saliencymix import SaliencyMix
from msda_jax.masks._stochastic import StochasticMixupCutMix

M = TypeVar("M")

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
    Mixture,
    KMix,
  )
}
ALIASES = {"stochastic": StochasticMixupCutMix.name, "kmix": KMix.name}
NO_MIXING = ("none", "vanilla")


#: keywords other libraries use, accepted by the presets and ``from_string``: name -> (field, map).
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


def _preset(cls: type[M], doc: str) -> Callable[..., M]:
  """A function building ``cls`` from keywords (and their aliases), with the class's signature and ``doc``."""

  @functools.wraps(cls, assigned=("__module__",), updated=())
  def build(**kwargs: Any) -> M:
    return cls(**_keywords(cls, kwargs))

  signature = inspect.signature(cls)
  aliases = [inspect.Parameter(a, inspect.Parameter.KEYWORD_ONLY, default=None) for a in ALIAS_KEYWORDS.get(cls, {})]
  params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()]
  build.__signature__ = signature.replace(parameters=params + aliases, return_annotation=cls.__name__)  # type: ignore[attr-defined]
  build.__name__ = build.__qualname__ = cls.name  # type: ignore[attr-defined]
  build.__doc__ = doc
  return build


mixup = _preset(Mixup, "Mixup, ``lam ~ Beta(alpha, alpha)`` (Table 2: alpha 1; Table 3: alpha 0.8).")
cutmix = _preset(CutMix, "CutMix, ``lam ~ Beta(alpha, alpha)``, box clipped at the border (Tables 2 and 3: alpha 1).")
stochastic_mixup_cutmix = _preset(
  StochasticMixupCutMix,
  "Stochastic Mixup & CutMix: Mixup with probability ``q = 0.5`` (the paper's choice); "
  "``switch_prob`` (timm's) sets ``q = 1 - switch_prob``.",
)
hmix = _preset(HMix, "HMix, ``alpha = 1`` and ``r = 0.5`` (Table 2; Table 3 uses ``r = 0.75``).")
gmix = _preset(GMix, "GMix, ``alpha = 0.5`` (Table 2; Table 3 uses ``alpha = 1``), the official code's scale.")
bernoulli = _preset(Bernoulli, "I.i.d. Bernoulli pixel masks, ``lam ~ Beta(alpha, alpha)`` (Figure 1 uses alpha 1).")
fmix = _preset(FMix, "FMix: binarised low-frequency Fourier masks of exact area, decay power 3.")
resizemix = _preset(ResizeMix, "ResizeMix: the partner shrunk by a side ratio uniform in [0.1, 0.8] and pasted.")
puzzlemix = _preset(
  PuzzleMix,
  "PuzzleMix with the reference's CIFAR-100 settings (alpha 1, n_labels 3, eta 0.2, beta 1.2, gamma 0.5, "
  "neigh_size 4, transport on, t_size 4, t_eps 0.8); needs ``saliency`` (Table 2's data-dependent row).",
)
saliencymix = _preset(SaliencyMix, "SaliencyMix: CutMix's box at the partner's saliency peak; needs ``saliency``.")

#: the presets by name (``from_string`` builds the classes of ``METHODS`` directly).
PRESETS: dict[str, Callable[..., Any]] = {
  "mixup": mixup,
  "cutmix": cutmix,
  "stochastic_mixup_cutmix": stochastic_mixup_cutmix,
  "hmix": hmix,
  "gmix": gmix,
  "bernoulli": bernoulli,
  "fmix": fmix,
  "resizemix": resizemix,
  "puzzlemix": puzzlemix,
  "saliencymix": saliencymix,
}


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
  try:
    return cls(**_keywords(cls, kwargs))  # type: ignore[no-any-return]
  except TypeError as error:
    raise ValueError(f"method spec {spec!r}: {error}") from error
