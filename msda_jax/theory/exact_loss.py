"""The MSDA loss itself (Eq. 4), to compare the approximations of Theorem 1 with.

``L^MSDA = E_{i,j} E_{lam, M} [lam l(x~_ij, y_i) + (1 - lam) l(x~_ij, y_j)]`` with
``x~_ij = M x_i + (1 - M) x_j``: the loss is linear in the mixed label, so a mask law enters
through its atoms ``(M_q, own_q, partner_q)`` (``msda_jax.theory.atoms``) and the loss is an
exact finite sum over all pairs ``i, j`` and atoms ``q``.

The label weight: Eq. (4) weights the labels by the nominal ``lam``; ``mix_batch``, which trains,
by the realised mean of the mask. Atoms carry one or the other (``MaskAtoms.label_weight``;
``method_atoms`` of a library method is realised by default) and ``label_weight=`` converts
nominal atoms to realised ones (``atoms.realised_atoms``). Monte Carlo atoms give an estimate
with a standard error (``msda_loss_estimate``).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax.theory import _inputs, losses
from msda_jax.theory.atoms import MaskAtoms, with_label_weight
from msda_jax.theory.regularizers import Model


class LossEstimate(NamedTuple):
  """Eq. (4) with its Monte Carlo standard error (0 for exact atoms)."""

  value: jax.Array
  stderr: jax.Array


def msda_loss(
  f: Model,
  x: ArrayLike,
  y: ArrayLike,
  atoms: MaskAtoms,
  *,
  loss: str = "binary",
  chunk_size: int = 8,
  label_weight: str | None = None,
) -> jax.Array:
  """Eq. (4) over all ``m^2`` ordered pairs and every atom.

  Args:
    f: model of one example ``[*S, C] -> []`` (binary; ``[1]`` is squeezed) or ``-> [K]`` (softmax).
    x: examples ``[m, *S, C]``.
    y: labels ``[m]`` in [0, 1] (binary; ``[m, 1]`` is squeezed) or probability rows ``[m, K]``
      (softmax; not class indices). Checked first, as in ``msda_jax.theory.regularizers``.
    atoms: the mask law (``method_atoms``, ``box_atoms``, ``hmix_atoms``, ``sampled_atoms``...).
    loss: ``"binary"`` or ``"softmax"``.
    chunk_size: atoms evaluated at once (memory ``chunk_size x m^2`` forward passes).
    label_weight: ``None`` (the atoms' own), ``"realised"`` or ``"nominal"`` (module docstring).

  Returns:
    the scalar MSDA loss.

  Raises:
    ValueError: for a bad ``loss`` or ``label_weight``, or a model output or labels that do not fit it.

  >>> from msda_jax.theory.atoms import mixup_atoms
  >>> f = lambda z: jnp.sum(z)
  >>> x = jnp.array([[[1.0]], [[-1.0]]]); y = jnp.array([1.0, 0.0])
  >>> bool(msda_loss(f, x, y, mixup_atoms(1.0, shape=(1,))) > 0)
  True
  """
  return jnp.sum(_atom_losses(f, x, y, with_label_weight(atoms, label_weight), loss, chunk_size))


def _atom_losses(f: Model, x: ArrayLike, y: ArrayLike, atoms: MaskAtoms, loss: str, chunk_size: int) -> jax.Array:
  """``[Q]`` each atom's share of Eq. (4): ``own_q l(., y_i) + partner_q l(., y_j)`` over all pairs."""
  f, x, y = _inputs.check_model_inputs(f, x, y, loss=loss)
  spatial_ndim = atoms.masks.ndim - 1
  extra = x.ndim - 1 - spatial_ndim

  def one_atom(atom: tuple[jax.Array, jax.Array, jax.Array]) -> jax.Array:
    mask, own, partner = atom
    m = mask.reshape(mask.shape + (1,) * extra)

    def pair(xi: jax.Array, xj: jax.Array, yi: jax.Array, yj: jax.Array) -> jax.Array:
      logits = f(m * xi + (1.0 - m) * xj)
      return own * losses.loss_value(logits, yi, loss) + partner * losses.loss_value(logits, yj, loss)

    over_j = jax.vmap(pair, in_axes=(None, 0, None, 0))
    return jnp.mean(jax.vmap(over_j, in_axes=(0, None, 0, None))(x, x, y, y))

  return jax.lax.map(one_atom, (atoms.masks, atoms.own, atoms.partner), batch_size=chunk_size)


def msda_loss_estimate(
  f: Model,
  x: ArrayLike,
  y: ArrayLike,
  atoms: MaskAtoms,
  *,
  loss: str = "binary",
  chunk_size: int = 8,
  label_weight: str | None = None,
) -> LossEstimate:
  """Eq. (4) as ``msda_loss``, with the standard error of Monte Carlo atoms (``num_draws > 0``).

  Each of the ``N`` draws contributes ``1/N`` of the estimate; the standard error is the sample
  standard deviation of ``N`` times the contributions over ``sqrt(N)``. Exact atoms give 0.

  >>> import msda_jax
  >>> from msda_jax.theory.family_atoms import method_atoms
  >>> f = lambda z: jnp.sum(z)
  >>> x = jnp.array([[[1.0]], [[-1.0]]]); y = jnp.array([1.0, 0.0])
  >>> atoms = method_atoms(msda_jax.FMix(), shape=(1,), key=jax.random.key(0), num_draws=64)
  >>> bool(msda_loss_estimate(f, x, y, atoms).stderr > 0)
  True
  """
  atoms = with_label_weight(atoms, label_weight)
  values = _atom_losses(f, x, y, atoms, loss, chunk_size)
  total = jnp.sum(values)
  if atoms.num_draws < 2:
    return LossEstimate(total, jnp.zeros((), total.dtype))
  n = atoms.num_draws
  return LossEstimate(total, jnp.std(n * values, ddof=1) / jnp.sqrt(jnp.asarray(n, total.dtype)))
