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
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from msda_jax import _validate
from msda_jax.theory.enumeration import box_masks
from msda_jax.theory.lam_average import box_lam_edges, interval_moments, lam_quadrature
from msda_jax.theory.laws import MaskLaw
from msda_jax.theory.regularizers import Coefficients


class MaskAtoms(NamedTuple):
  """A finite joint law of ``(lam, M)`` through its label moments.

  Attributes:
    masks: ``[Q, *S]`` the masks ``M_q``.
    own: ``[Q]`` ``E[lam 1{M = M_q}]``.
    partner: ``[Q]`` ``E[(1 - lam) 1{M = M_q}]``; ``own + partner`` sums to 1.
  """

  masks: jax.Array
  own: jax.Array
  partner: jax.Array


def _log_beta(a: float, b: float) -> float:
  return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def bernoulli_atoms(a: float, b: float | None = None, *, shape: tuple[int, ...]) -> MaskAtoms:
  """All ``2^d`` Bernoulli masks with exact Beta moments (``d <= 16``).

  ``own = B(a + k + 1, b + d - k) / B(a, b)`` for a mask with ``k`` ones.

  >>> atoms = bernoulli_atoms(1.0, shape=(2,))
  >>> round(float(atoms.own.sum() + atoms.partner.sum()), 6)
  1.0
  """
  _validate.check_positive("a", a)
  b = a if b is None else b
  _validate.check_positive("b", b)
  d = math.prod(shape)
  if d > 16:
    raise ValueError(f"bernoulli_atoms enumerates 2^d masks; the grid {shape} has d={d} > 16.")
  masks = np.array(list(itertools.product((0.0, 1.0), repeat=d)), np.float64)
  ones = masks.sum(axis=1)
  base = _log_beta(a, b)
  own = np.exp([_log_beta(a + k + 1, b + d - k) - base for k in ones])
  partner = np.exp([_log_beta(a + k, b + d - k + 1) - base for k in ones])
  return MaskAtoms(
    jnp.asarray(masks.reshape((-1, *shape)), jnp.result_type(float)), jnp.asarray(own), jnp.asarray(partner)
  )


def mixup_atoms(a: float, b: float | None = None, *, shape: tuple[int, ...], num_nodes: int = 32) -> MaskAtoms:
  """Mixup masks ``lam_q 1`` at the Gauss-Jacobi nodes of ``Beta(a, b)``.

  >>> atoms = mixup_atoms(1.0, shape=(3,), num_nodes=4)
  >>> round(float(atoms.own.sum()), 6)  # E[lam] for Beta(1, 1)
  0.5
  """
  nodes, weights = lam_quadrature(num_nodes, a, b)
  masks = jnp.broadcast_to(
    jnp.asarray(nodes, jnp.result_type(float)).reshape((-1,) + (1,) * len(shape)), (len(nodes), *shape)
  )
  return MaskAtoms(masks, jnp.asarray(weights * nodes), jnp.asarray(weights * (1.0 - nodes)))


def box_atoms(
  a: float,
  b: float | None = None,
  *,
  shape: tuple[int, ...],
  placement: str = "clip",
) -> MaskAtoms:
  """CutMix masks, exactly: every box position for every interval of constant box sides.

  Between consecutive ``box_lam_edges`` the sides are constant; on such an interval ``I``,
  ``own = E[lam 1{lam in I}]`` and ``partner = E[(1 - lam) 1{lam in I}]`` (``interval_moments``)
  are shared equally by the positions (``enumeration.box_masks``).

  >>> atoms = box_atoms(1.0, shape=(4,), placement="inside")
  >>> round(float(atoms.own.sum()), 6)
  0.5
  """
  _validate.check_positive("a", a)
  b = a if b is None else b
  _validate.check_positive("b", b)
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
  return MaskAtoms(
    jnp.asarray(np.concatenate(masks), jnp.float32),
    jnp.asarray(np.concatenate(own)),
    jnp.asarray(np.concatenate(partner)),
  )


def sampled_atoms(key: jax.Array, law: MaskLaw, *, num_draws: int) -> MaskAtoms:
  """Monte Carlo atoms from a mask law ``key -> (lam, M)`` (``msda_law`` for Eq. 4)."""
  lam, masks = jax.vmap(law)(jax.random.split(key, num_draws))
  return MaskAtoms(masks.astype(jnp.float32), lam / num_draws, (1.0 - lam) / num_draws)


def _moments(masks: jax.Array, weights: jax.Array) -> tuple[jax.Array, jax.Array]:
  flat = masks.reshape(masks.shape[0], -1)
  return jnp.einsum("q,qj->j", weights, flat), jnp.einsum("q,qj,qk->jk", weights, flat, flat)


def swap_coefficients(atoms: MaskAtoms) -> Coefficients:
  """``E[1 - M']`` and ``E[(1 - M')(1 - M')^T]`` under the swap law (the general expansion).

  The branch of the example's own label has ``M' = M`` with weights ``own``; the swapped branch
  has ``1 - M' = M`` with weights ``partner``.
  """
  spatial = atoms.masks.shape[1:]
  mean_own, second_own = _moments(1.0 - atoms.masks, atoms.own)
  mean_partner, second_partner = _moments(atoms.masks, atoms.partner)
  return Coefficients((mean_own + mean_partner).reshape(spatial), second_own + second_partner)


def printed_coefficients(atoms: MaskAtoms, swapped: MaskAtoms | None, a: float, b: float | None = None) -> Coefficients:
  """Theorem 1 as printed: ``E_{D~}(1 - lam) 1`` and ``E_{lam ~ D~} a(lam)`` (Eq. 7-9).

  ``D~ = a/(a+b) Beta(a+1, b) + b/(a+b) Beta(b+1, a)``: the first part is carried by the
  ``own`` weights of the ``Beta(a, b)`` atoms, the second by the ``own`` weights of atoms of
  ``Beta(b, a)`` (``swapped``; not needed when ``a = b``).
  """
  b = a if b is None else b
  if swapped is None:
    if a != b:
      raise ValueError(f"printed_coefficients needs atoms of Beta(b, a) when a != b; got a={a}, b={b}.")
    swapped = atoms
  spatial = atoms.masks.shape[1:]
  _, second_first = _moments(1.0 - atoms.masks, atoms.own)
  _, second_second = _moments(1.0 - swapped.masks, swapped.own)
  # E_{D~}(1 - lam) = 2ab / ((a + b)(a + b + 1)), as lam_laws.d_tilde_mean_one_minus_lam, in full precision.
  mean = jnp.full(spatial, 2.0 * a * b / ((a + b) * (a + b + 1.0)), jnp.result_type(float))
  return Coefficients(mean, second_first + second_second)
