"""The MSDA loss itself (Eq. 4), to compare the approximations of Theorem 1 with.

``L^MSDA = E_{i,j} E_{lam, M} [lam l(x~_ij, y_i) + (1 - lam) l(x~_ij, y_j)]`` with
``x~_ij = M x_i + (1 - M) x_j``: the loss is linear in the mixed label, so a mask law enters
through its atoms ``(M_q, own_q, partner_q)`` (``msda_jax.theory.atoms``) and the loss is an
exact finite sum over all pairs ``i, j`` and atoms ``q``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax.theory import _inputs, losses
from msda_jax.theory.atoms import MaskAtoms
from msda_jax.theory.regularizers import Model


def msda_loss(
  f: Model, x: ArrayLike, y: ArrayLike, atoms: MaskAtoms, *, loss: str = "binary", chunk_size: int = 8
) -> jax.Array:
  """Eq. (4) over all ``m^2`` ordered pairs and every atom.

  Args:
    f: model of one example ``[*S, C] -> []`` (binary; ``[1]`` is squeezed) or ``-> [K]`` (softmax).
    x: examples ``[m, *S, C]``.
    y: labels ``[m]`` in [0, 1] (binary; ``[m, 1]`` is squeezed) or probability rows ``[m, K]``
      (softmax; not class indices). Checked first, as in ``msda_jax.theory.regularizers``.
    atoms: the mask law (``bernoulli_atoms``, ``box_atoms``, ``mixup_atoms``, ``sampled_atoms``).
    loss: ``"binary"`` or ``"softmax"``.
    chunk_size: atoms evaluated at once (memory ``chunk_size x m^2`` forward passes).

  Returns:
    the scalar MSDA loss.

  Raises:
    ValueError: for a bad ``loss``, or a model output or labels that do not fit it.

  >>> from msda_jax.theory.atoms import mixup_atoms
  >>> f = lambda z: jnp.sum(z)
  >>> x = jnp.array([[[1.0]], [[-1.0]]]); y = jnp.array([1.0, 0.0])
  >>> bool(msda_loss(f, x, y, mixup_atoms(1.0, shape=(1,))) > 0)
  True
  """
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

  values = jax.lax.map(one_atom, (atoms.masks, atoms.own, atoms.partner), batch_size=chunk_size)
  return jnp.sum(values)
