"""Finite mask laws ("atoms") that make the MSDA loss (Eq. 4) and its coefficients exact.

The MSDA loss of a pair is linear in the mixed label, so only two lam-moments of each mask
matter: ``own_q = E[lam 1{M = M_q}]`` and ``partner_q = E[(1 - lam) 1{M = M_q}]``. A law with
finitely many masks is then represented exactly by ``(M_q, own_q, partner_q)``:

* Bernoulli pixel masks (all ``2^d`` masks, Beta moments in closed form);
* CutMix boxes, clipped or inside: ``lam`` enters only through the integer box sides, so
  ``[0, 1]`` splits into intervals of constant sides, each weighted by Beta CDF differences,
  and every box position is enumerated;
* Mixup: Gauss-Jacobi quadrature nodes of the Beta law (exact for polynomials of degree
  ``2 n - 1``, exponentially accurate for a smooth loss);
* any mask law: Monte Carlo draws with weights ``lam / N`` and ``(1 - lam) / N``.

From the same atoms come the coefficients of the general expansion (the swap law) and of
Theorem 1 as printed (the ``D~`` law), see ``swap_coefficients`` and ``printed_coefficients``.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from msda_jax import _validate
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.theory import _compiled, laws
from msda_jax.theory.enumeration import box_masks
from msda_jax.theory.lam_average import box_lam_edges, interval_moments, lam_quadrature
from msda_jax.theory.laws import MaskLaw
from msda_jax.theory.regularizers import Coefficients


@pytree_dataclass
class MaskAtoms:
  """A finite joint law of ``(w, M)`` through its label moments (a pytree: arrays traced).

  Attributes:
    masks: ``[Q, *S]`` the masks ``M_q``.
    own: ``[Q]`` ``E[w 1{M = M_q}]``, ``w`` the first image's label weight.
    partner: ``[Q]`` ``E[(1 - w) 1{M = M_q}]``; ``own + partner`` sums to 1.
    label_weight: static, ``"nominal"`` (``w = lam``, Eq. 4) or ``"realised"`` (``w = mean(M)``,
      what ``mix_batch`` trains; ``realised_atoms``).
    beta: static ``(a, b)`` of the ``lam ~ Beta(a, b)`` law the atoms were built for, or ``None``
      (a mixture of laws, or a law not recorded).
    num_draws: static number of Monte Carlo draws (``sampled_atoms``), 0 for exact atoms.
  """

  masks: jax.Array
  own: jax.Array
  partner: jax.Array
  label_weight: str = static_field(default="nominal")
  beta: tuple[float, float] | None = static_field(default=None)
  num_draws: int = static_field(default=0)


def _mask_means(masks: jax.Array) -> jax.Array:
  return jnp.mean(masks.reshape(masks.shape[0], -1).astype(jnp.result_type(float)), axis=1)


def realised_atoms(atoms: MaskAtoms) -> MaskAtoms:
  """The same masks with the realised label weight ``w = mean(M_q)``: ``own_q = P_q mean(M_q)``.

  ``P_q = own_q + partner_q`` is the atom's probability; the label weight of a mask is a function
  of the mask, so the transform is exact. Atoms already realised are returned as they are.

  >>> atoms = box_atoms(1.0, shape=(4,), placement="clip")
  >>> bool(jnp.allclose(realised_atoms(atoms).own.sum() + realised_atoms(atoms).partner.sum(), 1.0))
  True
  """
  if atoms.label_weight == "realised":
    return atoms
  probability = atoms.own + atoms.partner
  means = _mask_means(atoms.masks).astype(probability.dtype)
  return MaskAtoms(
    atoms.masks, probability * means, probability * (1.0 - means), "realised", atoms.beta, atoms.num_draws
  )


def with_label_weight(atoms: MaskAtoms, label_weight: str | None) -> MaskAtoms:
  """``atoms`` with ``label_weight`` (``None`` keeps theirs); realised atoms cannot become nominal.

  Raises:
    ValueError: for a bad ``label_weight``, or ``"nominal"`` asked of realised atoms (``lam`` is
      not recorded in them: build them nominal, then ``realised_atoms``).
  """
  if label_weight is None:
    return atoms
  laws.check_label_weight(label_weight)
  if label_weight == "realised":
    return realised_atoms(atoms)
  if atoms.label_weight != "nominal":
    raise ValueError(
      "label_weight='nominal' asked of atoms built with the realised weight: the nominal lam is not in them; "
      "build the atoms with label_weight='nominal'."
    )
  return atoms


def _log_beta(a: float, b: float) -> float:
  return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _beta_pair(a: float, b: float | None) -> tuple[float, float]:
  _validate.check_positive("a", a)
  b = a if b is None else b
  _validate.check_positive("b", b)
  return float(a), float(b)


def _finish(masks: jax.Array, own: jax.Array, partner: jax.Array, beta: tuple[float, float], label_weight: str):
  laws.check_label_weight(label_weight)
  return with_label_weight(MaskAtoms(masks, own, partner, "nominal", beta), label_weight)


def bernoulli_atoms(
  a: float, b: float | None = None, *, shape: tuple[int, ...], label_weight: str = "nominal"
) -> MaskAtoms:
  """All ``2^d`` Bernoulli masks with exact Beta moments (``d <= 16``).

  ``own = B(a + k + 1, b + d - k) / B(a, b)`` for a mask with ``k`` ones (nominal weight);
  ``label_weight="realised"`` weights by ``k / d`` instead (``realised_atoms``).

  >>> atoms = bernoulli_atoms(1.0, shape=(2,))
  >>> round(float(atoms.own.sum() + atoms.partner.sum()), 6)
  1.0
  """
  a, b = _beta_pair(a, b)
  laws.check_label_weight(label_weight)
  d = math.prod(shape)
  if d > 16:
    raise ValueError(f"bernoulli_atoms enumerates 2^d masks; the grid {shape} has d={d} > 16.")
  masks = np.array(list(itertools.product((0.0, 1.0), repeat=d)), np.float64)
  ones = masks.sum(axis=1)
  base = _log_beta(a, b)
  own = np.exp([_log_beta(a + k + 1, b + d - k) - base for k in ones])
  partner = np.exp([_log_beta(a + k, b + d - k + 1) - base for k in ones])
  masks_out = jnp.asarray(masks.reshape((-1, *shape)), jnp.result_type(float))
  return _finish(masks_out, jnp.asarray(own), jnp.asarray(partner), (a, b), label_weight)


def mixup_atoms(
  a: float, b: float | None = None, *, shape: tuple[int, ...], num_nodes: int = 32, label_weight: str = "nominal"
) -> MaskAtoms:
  """Mixup masks ``lam_q 1`` at the Gauss-Jacobi nodes of ``Beta(a, b)`` (realised = nominal).

  >>> atoms = mixup_atoms(1.0, shape=(3,), num_nodes=4)
  >>> round(float(atoms.own.sum()), 6)  # E[lam] for Beta(1, 1)
  0.5
  """
  a, b = _beta_pair(a, b)
  nodes, weights = lam_quadrature(num_nodes, a, b)
  masks = jnp.broadcast_to(
    jnp.asarray(nodes, jnp.result_type(float)).reshape((-1,) + (1,) * len(shape)), (len(nodes), *shape)
  )
  return _finish(masks, jnp.asarray(weights * nodes), jnp.asarray(weights * (1.0 - nodes)), (a, b), label_weight)


def box_atoms(
  a: float,
  b: float | None = None,
  *,
  shape: tuple[int, ...],
  placement: str = "clip",
  label_weight: str = "nominal",
) -> MaskAtoms:
  """CutMix masks, exactly: every box position for every interval of constant box sides.

  Between consecutive ``box_lam_edges`` the sides are constant; on such an interval ``I``,
  ``own = E[lam 1{lam in I}]`` and ``partner = E[(1 - lam) 1{lam in I}]`` (``interval_moments``)
  are shared equally by the positions (``enumeration.box_masks``). ``label_weight="realised"``
  weights by the box's realised complement area (the clipped box covers less than ``1 - lam``).

  >>> atoms = box_atoms(1.0, shape=(4,), placement="inside")
  >>> round(float(atoms.own.sum()), 6)
  0.5
  """
  a, b = _beta_pair(a, b)
  laws.check_label_weight(label_weight)
  edges = np.asarray(box_lam_edges(shape=shape), np.float64)
  moments = np.asarray(interval_moments(jnp.asarray(edges), a, b, order=2), np.float64)
  masks, own, partner = [], [], []
  for index in range(len(edges) - 1):
    if edges[index + 1] <= edges[index]:
      continue
    at = box_masks(0.5 * (edges[index] + edges[index + 1]), shape=shape, placement=placement)
    masks.append(at)
    own.append(np.full(len(at), moments[1, index] / len(at)))
    partner.append(np.full(len(at), (moments[0, index] - moments[1, index]) / len(at)))
  return _finish(
    jnp.asarray(np.concatenate(masks), jnp.float32),
    jnp.asarray(np.concatenate(own)),
    jnp.asarray(np.concatenate(partner)),
    (a, b),
    label_weight,
  )


def sampled_atoms(key: jax.Array, law: MaskLaw, *, num_draws: int) -> MaskAtoms:
  """Monte Carlo atoms from a mask law ``key -> (w, M)``: weights ``w / N`` and ``(1 - w) / N``.

  ``law`` is ``msda_law(method, ...)`` for Eq. (4): its ``label_weight`` (realised by default)
  and ``Beta`` parameters are recorded in the atoms. Laws of another kind (swap, printed) raise.

  Raises:
    ValueError: for ``num_draws < 1``, or a ``Law`` that is not of kind ``"msda"``.
  """
  _validate.check_positive_int("num_draws", num_draws)
  kind = laws.law_attribute(law, "kind")
  if kind is not None and kind != "msda":
    raise ValueError(f"sampled_atoms needs the MSDA law of Eq. (4) (msda_law); got a law of kind {kind!r}.")
  weight, masks = _compiled.call(_draws, (law, int(num_draws)), key)
  label_weight = str(laws.law_attribute(law, "label_weight") or "nominal")
  beta = laws.law_attribute(law, "beta")
  recorded = beta if isinstance(beta, tuple) else None
  return MaskAtoms(
    masks.astype(jnp.float32), weight / num_draws, (1.0 - weight) / num_draws, label_weight, recorded, num_draws
  )


def _draws(law: MaskLaw, num_draws: int, key: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``num_draws`` draws ``(w [N], M [N, *S])`` of ``law``, one per key of ``split(key, num_draws)``."""
  return jax.vmap(law)(jax.random.split(key, num_draws))


def _moments(masks: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
  flat = masks.reshape(masks.shape[0], -1)
  return jnp.einsum("q,qj->j", weights, flat), jnp.einsum("q,qj,qk->jk", weights, flat, flat)


def swap_coefficients(atoms: MaskAtoms, *, label_weight: str | None = None) -> Coefficients:
  """``E[1 - M']`` and ``E[(1 - M')(1 - M')^T]`` under the swap law (the general expansion).

  The branch of the example's own label has ``M' = M`` with weights ``own``; the swapped branch
  has ``1 - M' = M`` with weights ``partner``. The derivation holds for any label weight ``w``
  (``own = E[w 1{M = M_q}]``), so the realised objective's coefficients are those of its atoms.

  Args:
    atoms: the mask law.
    label_weight: ``None`` (the atoms' own), ``"realised"`` or ``"nominal"``.

  Returns:
    ``Coefficients`` recorded as ``form="general"`` with the atoms' label weight.
  """
  atoms = with_label_weight(atoms, label_weight)
  spatial = atoms.masks.shape[1:]
  mean_own, second_own = _moments(1.0 - atoms.masks, atoms.own)
  mean_partner, second_partner = _moments(atoms.masks, atoms.partner)
  return Coefficients(
    (mean_own + mean_partner).reshape(spatial),
    second_own + second_partner,
    form="general",
    label_weight=atoms.label_weight,
    beta=atoms.beta,
  )


def printed_mean(a: float, b: float | None = None, *, shape: tuple[int, ...]) -> jax.Array:
  """The printed form's first-order coefficient ``E_{D~}(1 - lam) 1`` over the grid (Eq. 7).

  ``E_{D~}(1 - lam) = 2ab / ((a + b)(a + b + 1))`` (``lam_laws.d_tilde_mean_one_minus_lam``), in
  the default float precision.

  >>> float(printed_mean(1.0, shape=(2,))[0])  # 2 / 6
  0.333...
  """
  a, b = _beta_pair(a, b)
  return jnp.full(shape, 2.0 * a * b / ((a + b) * (a + b + 1.0)), jnp.result_type(float))


def _check_beta(atoms: MaskAtoms, expected: tuple[float, float], name: str) -> None:
  if atoms.beta is not None and not np.allclose(atoms.beta, expected, rtol=1e-6, atol=0.0):
    raise ValueError(
      f"printed_coefficients: {name} were built for Beta{atoms.beta} but Beta{expected} was asked; "
      "build them with the same a, b."
    )


def printed_coefficients(atoms: MaskAtoms, swapped: MaskAtoms | None, a: float, b: float | None = None) -> Coefficients:
  """Theorem 1 as printed: ``E_{D~}(1 - lam) 1`` and ``E_{lam ~ D~} a(lam)`` (Eq. 7-9).

  ``D~ = a/(a+b) Beta(a+1, b) + b/(a+b) Beta(b+1, a)``: the first part is carried by the
  ``own`` weights of the ``Beta(a, b)`` atoms, the second by the ``own`` weights of atoms of
  ``Beta(b, a)`` (``swapped``; not needed when ``a = b``). The printed form is derived for the
  nominal label weight: realised atoms raise, and so do atoms built for other Beta parameters.

  Returns:
    ``Coefficients`` recorded as ``form="printed"``, nominal.
  """
  a, b = _beta_pair(a, b)
  if swapped is None:
    if a != b:
      raise ValueError(f"printed_coefficients needs atoms of Beta(b, a) when a != b; got a={a}, b={b}.")
    swapped = atoms
  for name, given in (("atoms", atoms), ("swapped", swapped)):
    if given.label_weight != "nominal":
      raise ValueError(
        f"printed_coefficients: {name} carry the realised label weight; Theorem 1's printed form (the D~ law) "
        "is derived for the nominal one. Use swap_coefficients (form='general') for the realised objective."
      )
  _check_beta(atoms, (a, b), "atoms")
  _check_beta(swapped, (b, a), "swapped")
  spatial = atoms.masks.shape[1:]
  _, second_first = _moments(1.0 - atoms.masks, atoms.own)
  _, second_second = _moments(1.0 - swapped.masks, swapped.own)
  return Coefficients(
    printed_mean(a, b, shape=spatial),
    second_first + second_second,
    form="printed",
    label_weight="nominal",
    beta=(a, b),
  )
