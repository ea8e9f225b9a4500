"""Exact atoms for every library family whose law is finite at a fixed ``lam``, and a dispatcher.

At a fixed ``lam`` a box (CutMix, HMix) and a GMix bump take one of finitely many equally likely
positions (``enumeration``); over ``lam`` the law is split into intervals on which the mask is a
smooth function of ``lam``, and each is integrated by a Gauss rule of the Beta density
(``lam_average.interval_rule``):

* CutMix: the mask is constant on each interval of constant sides (``atoms.box_atoms``: exact);
* HMix: the sides are constant on the intervals of ``box_lam_edges(r=r)`` and the outside value
  ``lam / (1 - A)`` is linear in ``lam``, so ``num_nodes >= 2`` per interval makes the
  coefficients (degree 3 in ``lam`` with the label weight) exact for ``Beta(1, 1)``, and the loss
  exact to the quadrature's (exponential) accuracy;
* GMix: the width is smooth in ``lam`` on ``[0, 1/2)`` and ``[1/2, 1]`` (the symmetric switch);
* Stochastic Mixup & CutMix: ``q`` times Mixup's atoms and ``1 - q`` times CutMix's, each branch
  with its own ``lam`` law;
* Mixup (Gauss-Jacobi nodes) and Bernoulli (all ``2^d`` masks, ``d <= 16``).

``method_atoms(method, ...)`` picks the exact builder for a library method, with the method's
own hyper-parameters, and falls back to Monte Carlo atoms (``sampled_atoms`` of ``msda_law``)
for the others (FMix, ResizeMix, HMix with a random ``r``, CutMix's ``minmax`` or even sides),
whose Eq. (4) then has a standard error (``exact_loss.msda_loss_estimate``). Data-dependent
methods (PuzzleMix, SaliencyMix) need the images: they raise. Atoms from a method carry the
realised label weight by default, the objective ``mix_batch`` trains.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from msda_jax import _validate
from msda_jax.masks import _patches as patches
from msda_jax.masks._base import MixMethod
from msda_jax.theory import atoms as atoms_lib
from msda_jax.theory import laws
from msda_jax.theory.atoms import MaskAtoms
from msda_jax.theory.enumeration import box_masks, gmix_masks
from msda_jax.theory.lam_average import box_lam_edges, interval_rule
from msda_jax.theory.regularizers import Coefficients


def _nodes(num_nodes: int) -> int:
  _validate.check_positive_int("num_nodes", num_nodes)
  return int(num_nodes)


def _from_nodes(
  pieces: list[tuple[np.ndarray, float, float]], beta: tuple[float, float] | None, label_weight: str
) -> MaskAtoms:
  """Atoms from ``(masks [P, *S], probability, lam)`` pieces: each mask ``probability / P``."""
  masks = np.concatenate([m for m, _, _ in pieces])
  prob = np.concatenate([np.full(len(m), p / len(m)) for m, p, _ in pieces])
  lam = np.concatenate([np.full(len(m), lam) for m, _, lam in pieces])
  nominal = MaskAtoms(
    jnp.asarray(masks, jnp.result_type(float)),
    jnp.asarray(prob * lam),
    jnp.asarray(prob * (1.0 - lam)),
    "nominal",
    beta,
  )
  return atoms_lib.with_label_weight(nominal, label_weight)


def _intervals(edges: np.ndarray) -> list[tuple[float, float]]:
  return [(float(lo), float(hi)) for lo, hi in itertools.pairwise(edges) if hi > lo]


def hmix_atoms(
  a: float,
  b: float | None = None,
  *,
  shape: tuple[int, ...],
  r: float = 0.5,
  placement: str = "clip",
  num_nodes: int = 4,
  label_weight: str = "nominal",
) -> MaskAtoms:
  """HMix masks at ``num_nodes`` Gauss nodes of every interval of constant box sides.

  Args:
    a: first concentration of ``lam ~ Beta(a, b)``, > 0.
    b: second concentration (``a`` when omitted).
    shape: static spatial shape.
    r: concrete box ratio in [0, 1].
    placement: ``"clip"`` or ``"inside"``.
    num_nodes: nodes per interval (>= 2 makes the coefficients exact for ``Beta(1, 1)``).
    label_weight: ``"nominal"`` or ``"realised"`` (equal for HMix up to the box covering all).

  Returns:
    ``MaskAtoms`` (``intervals x num_nodes x positions`` masks).

  >>> atoms = hmix_atoms(1.0, shape=(4,), r=0.5)
  >>> round(float(atoms.own.sum() + atoms.partner.sum()), 6)
  1.0
  """
  a, b = atoms_lib._beta_pair(a, b)
  laws.check_label_weight(label_weight)
  num_nodes = _nodes(num_nodes)
  _validate.check_range("r", r, 0.0, 1.0)
  edges = np.asarray(box_lam_edges(shape=shape, r=r), np.float64)
  pieces = []
  for lo, hi in _intervals(edges):
    lams, weights = interval_rule(lo, hi, num_nodes, a, b)
    for lam, weight in zip(lams, weights, strict=True):
      pieces.append((box_masks(lam, shape=shape, family="hmix", placement=placement, r=r), weight, lam))
  return _from_nodes(pieces, (a, b), label_weight)


def gmix_atoms(
  a: float,
  b: float | None = None,
  *,
  shape: tuple[int, ...],
  scale: str = "code",
  symmetric: bool = True,
  num_nodes: int = 24,
  label_weight: str = "nominal",
) -> MaskAtoms:
  """GMix masks for every centre at ``num_nodes`` Gauss nodes of ``[0, 1/2)`` and ``[1/2, 1]``.

  Args:
    a: first concentration, > 0.
    b: second concentration (``a`` when omitted).
    shape: static spatial shape.
    scale: ``"code"`` or ``"text"``.
    symmetric: as ``msda_jax.gmix``.
    num_nodes: nodes per half (the width, and so the mask, is smooth in ``lam`` on each).
    label_weight: ``"nominal"`` or ``"realised"`` (the border makes them differ).

  Returns:
    ``MaskAtoms`` (``2 num_nodes x d`` masks).

  >>> gmix_atoms(1.0, shape=(3, 3), num_nodes=2).masks.shape
  (36, 3, 3)
  """
  a, b = atoms_lib._beta_pair(a, b)
  laws.check_label_weight(label_weight)
  num_nodes = _nodes(num_nodes)
  pieces = []
  for lo, hi in ((0.0, 0.5), (0.5, 1.0)):
    lams, weights = interval_rule(lo, hi, num_nodes, a, b)
    for lam, weight in zip(lams, weights, strict=True):
      pieces.append((gmix_masks(lam, shape=shape, scale=scale, symmetric=symmetric), weight, lam))
  return _from_nodes(pieces, (a, b), label_weight)


def mixture_atoms(parts: list[tuple[float, MaskAtoms]]) -> MaskAtoms:
  """The atoms of a law that picks ``parts[i][1]`` with probability ``parts[i][0]``.

  The parts must share the spatial shape and the label weight; ``beta`` is kept when they agree.
  """
  if not parts:
    raise ValueError("mixture_atoms needs at least one (probability, atoms) part.")
  probabilities = [float(p) for p, _ in parts]
  kept = [(p, at) for p, at in parts if p > 0.0]
  if min(probabilities) < 0.0 or not math.isclose(sum(probabilities), 1.0, rel_tol=0.0, abs_tol=1e-9):
    raise ValueError(f"mixture_atoms: the probabilities must be >= 0 and sum to 1; got {probabilities}.")
  shapes = {tuple(at.masks.shape[1:]) for _, at in kept}
  weights_kind = {at.label_weight for _, at in kept}
  if len(shapes) != 1 or len(weights_kind) != 1:
    raise ValueError(f"mixture_atoms: parts must share the grid and label weight; got {shapes}, {weights_kind}.")
  betas = {at.beta for _, at in kept}
  dtype = jnp.result_type(*[at.masks.dtype for _, at in kept])
  return MaskAtoms(
    jnp.concatenate([at.masks.astype(dtype) for _, at in kept]),
    jnp.concatenate([p * at.own for p, at in kept]),
    jnp.concatenate([p * at.partner for p, at in kept]),
    weights_kind.pop(),
    betas.pop() if len(betas) == 1 else None,
  )


def stochastic_atoms(
  mixup_alpha: float,
  cutmix_alpha: float,
  q: float,
  *,
  shape: tuple[int, ...],
  placement: str = "clip",
  num_nodes: int = 32,
  label_weight: str = "nominal",
) -> MaskAtoms:
  """Stochastic Mixup & CutMix: Mixup's atoms with probability ``q``, CutMix's otherwise.

  >>> atoms = stochastic_atoms(1.0, 1.0, 0.5, shape=(4,), num_nodes=3)
  >>> round(float(atoms.own.sum()), 6)
  0.5
  """
  _validate.check_range("q", q, 0.0, 1.0)
  q = float(q)
  mixup = atoms_lib.mixup_atoms(mixup_alpha, shape=shape, num_nodes=num_nodes, label_weight=label_weight)
  box = atoms_lib.box_atoms(cutmix_alpha, shape=shape, placement=placement, label_weight=label_weight)
  return mixture_atoms([(q, mixup), (1.0 - q, box)])


def concrete_parameter(method: MixMethod, name: str) -> float:
  """``method.<name>`` as a float, or a clear error when it is traced (exact laws need numbers)."""
  value = _validate.concrete_value(getattr(method, name))
  if value is None:
    raise ValueError(f"the exact law needs concrete hyper-parameters; {type(method).__name__}.{name} is traced.")
  return float(value)


def exact_atoms(
  method: MixMethod, *, shape: tuple[int, ...], label_weight: str = "realised", num_nodes: int | None = None
) -> MaskAtoms | None:
  """The exact atoms of a library method with its own hyper-parameters, or ``None`` if it has none.

  Exact for Mixup, Bernoulli (``d <= 16``), CutMix (floor sides, no ``minmax``), HMix (fixed ``r``,
  floor sides), GMix, Stochastic Mixup & CutMix (floor sides), a ``Mixture`` of those (the
  ``probs``-mixture of its components' atoms, ``mixture_atoms``), a ``PatchAligned`` one (its law on
  the patch grid, each cell repeated over its patch) and a ``TransMix`` one (the atoms of its base
  method: the area-weighted objective, ``ratio = 1``; the weight read from the attention depends on
  the model, ``theory.figure_vit`` measures it).
  """
  laws.check_label_weight(label_weight)
  shape = _validate.check_shape("shape", shape)
  name = type(method).name
  sides = getattr(method, "box_sides", "floor")
  nodes = {} if num_nodes is None else {"num_nodes": num_nodes}
  if name in ("mixup", "manifold_mixup"):  # Manifold Mixup's mask is Mixup's, at whatever layer
    return atoms_lib.mixup_atoms(concrete_parameter(method, "alpha"), shape=shape, label_weight=label_weight, **nodes)
  if name == "bernoulli" and math.prod(shape) <= 16:
    return atoms_lib.bernoulli_atoms(concrete_parameter(method, "alpha"), shape=shape, label_weight=label_weight)
  if name == "cutmix" and sides == "floor" and getattr(method, "minmax", None) is None:
    return atoms_lib.box_atoms(
      concrete_parameter(method, "alpha"),
      shape=shape,
      placement=method.placement,  # type: ignore[attr-defined]
      label_weight=label_weight,
    )
  if name == "hmix" and sides == "floor" and getattr(method, "r_alpha", None) is None:
    return hmix_atoms(
      concrete_parameter(method, "alpha"),
      shape=shape,
      r=concrete_parameter(method, "r"),
      placement=method.placement,  # type: ignore[attr-defined]
      label_weight=label_weight,
      **nodes,
    )
  if name == "gmix":
    return gmix_atoms(
      concrete_parameter(method, "alpha"),
      shape=shape,
      scale=method.scale,  # type: ignore[attr-defined]
      symmetric=method.symmetric,  # type: ignore[attr-defined]
      label_weight=label_weight,
      **nodes,
    )
  if name == "stochastic_mixup_cutmix" and sides == "floor":
    return stochastic_atoms(
      concrete_parameter(method, "mixup_alpha"),
      concrete_parameter(method, "cutmix_alpha"),
      concrete_parameter(method, "q"),
      shape=shape,
      placement=method.placement,  # type: ignore[attr-defined]
      label_weight=label_weight,
      **nodes,
    )
  if name == "transmix":
    return exact_atoms(method.method, shape=shape, label_weight=label_weight, num_nodes=num_nodes)  # type: ignore[attr-defined]
  if name == "patch_aligned":  # the grid law, each cell repeated over its patch
    grid = patches.grid_shape(shape, method.patch)  # type: ignore[attr-defined]
    inner = exact_atoms(method.method, shape=grid, label_weight=label_weight, num_nodes=num_nodes)  # type: ignore[attr-defined]
    if inner is None:
      return None
    masks = jax.vmap(lambda m: patches.upsample(m, shape))(inner.masks)
    return dataclasses.replace(inner, masks=masks)
  if name == "mixture":
    probs = _validate.concrete_value(method.probs)  # type: ignore[attr-defined]
    if probs is None:
      raise ValueError("the exact law needs concrete hyper-parameters; Mixture.probs is traced.")
    probs = probs.astype(np.float64) / probs.sum()
    parts = [exact_atoms(m, shape=shape, label_weight=label_weight, num_nodes=num_nodes) for m in method.methods]  # type: ignore[attr-defined]
    if any(p is None for p in parts):
      return None
    return mixture_atoms([(float(p), a) for p, a in zip(probs, parts, strict=True) if p > 0])  # type: ignore[misc]
  return None


def method_atoms(
  method: MixMethod,
  *,
  shape: tuple[int, ...],
  label_weight: str = "realised",
  key: jax.Array | None = None,
  num_draws: int = 4096,
  num_nodes: int | None = None,
) -> MaskAtoms:
  """The atoms of Eq. (4) for a library method: exact where the family allows, else Monte Carlo.

  Args:
    method: a library method (``msda_jax.HMix()``...), with concrete hyper-parameters.
    shape: static spatial shape.
    label_weight: ``"realised"`` (default: the objective ``mix_batch`` trains) or ``"nominal"``.
    key: PRNG key for the Monte Carlo fallback; required when the method has no exact atoms.
    num_draws: Monte Carlo draws of the fallback.
    num_nodes: quadrature nodes per interval (the builders' defaults when ``None``).

  Returns:
    ``MaskAtoms``; ``num_draws > 0`` marks Monte Carlo ones.

  Raises:
    ValueError: for a data-dependent method, or one without exact atoms and no ``key``.

  >>> import msda_jax
  >>> atoms = method_atoms(msda_jax.CutMix(), shape=(4, 4))
  >>> atoms.label_weight, atoms.num_draws
  ('realised', 0)
  """
  laws.check_label_weight(label_weight)
  if method.needs().inputs:
    raise ValueError(
      f"method_atoms: {type(method).__name__} draws its masks from the images; its law is not a function of lam "
      "alone (use msda_jax.mix_batch on the data, or theory.translation_map_of_masks on its masks)."
    )
  exact = exact_atoms(method, shape=shape, label_weight=label_weight, num_nodes=num_nodes)
  if exact is not None:
    return exact
  if key is None:
    raise ValueError(
      f"method_atoms: {type(method).__name__} has no exact atoms on the grid {shape}; pass key= (and num_draws=) "
      "for Monte Carlo atoms."
    )
  return atoms_lib.sampled_atoms(
    key, laws.msda_law(method, shape=shape, label_weight=label_weight), num_draws=num_draws
  )


def method_coefficients(
  method: MixMethod,
  *,
  shape: tuple[int, ...],
  form: str = "general",
  label_weight: str = "realised",
  key: jax.Array | None = None,
  num_draws: int = 4096,
  num_nodes: int | None = None,
) -> Coefficients:
  """Theorem 1's coefficients of a library method: ``form="general"`` (the swap law) or ``"printed"``.

  The printed form is nominal by derivation and needs one symmetric Beta law (``label_weight``
  must then be ``"nominal"``). Arguments as ``method_atoms``.

  >>> import msda_jax
  >>> method_coefficients(msda_jax.Mixup(), shape=(2, 2)).form
  'general'
  """
  if form not in ("general", "printed"):
    raise ValueError(f"form must be one of ('general', 'printed'); got {form!r}.")
  atoms = method_atoms(
    method, shape=shape, label_weight=label_weight, key=key, num_draws=num_draws, num_nodes=num_nodes
  )
  if form == "general":
    return atoms_lib.swap_coefficients(atoms)
  if atoms.beta is None:
    raise ValueError(f"the printed form needs one Beta law of lam; {type(method).__name__} has none recorded.")
  return atoms_lib.printed_coefficients(atoms, None, *atoms.beta)
