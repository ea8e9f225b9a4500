"""AlignMix (Venkataramanan et al., CVPR 2022): the pair's feature maps aligned by optimal transport, then mixed.

At the last feature map (layer ``-1``: the output of the model's last stage, before its head) the
``r`` positions of the two maps ``A = h_i`` and ``A' = h_j`` (``[r, C]`` each) are matched by
entropic optimal transport: with the cost ``C[a, b] = |A_a - A'_b|^2`` and uniform marginals
``1 / r``, ``iterations`` log-domain Sinkhorn steps give the plan ``P`` and the assignment
``R = r P`` (its rows and columns sum to 1). A coin per batch (per example in
``mode="example"``) chooses the direction, as the reference does:

* ``A' `` aligned to ``A``: ``h~ = lam A + (1 - lam) R A'``;
* ``A`` aligned to ``A'``: ``h~ = lam R^T A + (1 - lam) A'``;

the targets are ``lam y_i + (1 - lam) y_j`` with ``lam ~ Beta(alpha, alpha)``. The plan is a
constant of the step (``stop_gradient``, the reference's ``detach``); the gradient flows through
both feature maps. In the batch layer the alignment is the draw's ``paste`` (the partner moved)
or ``keep`` (the image moved) of a constant mask ``lam``.

The reference stops Sinkhorn early once the potentials move by less than 0.1 (summed over
positions) and otherwise after 100 steps; here the number of steps is fixed (``iterations``, 100
by default), so that the program has no data-dependent loop. ``benchmarks/alignmix_parity.py``
measures the difference.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _backend, _bits, draws
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks._base import Sample
from msda_jax.masks._hidden import HiddenMixMethod


def sinkhorn_plan(x: ArrayLike, y: ArrayLike, eps: ArrayLike, iterations: int) -> jax.Array:
  """The entropic transport plan between the rows of ``x [r, C]`` and ``y [r', C]``, float32 ``[r, r']``.

  Squared Euclidean cost, uniform marginals, ``iterations`` log-domain Sinkhorn steps from zero
  potentials (each: the row potential, then the column potential), regularisation ``eps``.

  >>> p = sinkhorn_plan(jnp.eye(3), jnp.eye(3)[::-1], 0.1, 50)
  >>> jnp.round(3 * p, 3).tolist()
  [[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]
  """
  x = jnp.asarray(x, jnp.float32)
  y = jnp.asarray(y, jnp.float32)
  eps = jnp.asarray(eps, jnp.float32)
  cost = jnp.sum((x[:, None, :] - y[None, :, :]) ** 2, axis=-1)
  log_mu = jnp.log(jnp.float32(1.0 / x.shape[0]) + 1e-8)
  log_nu = jnp.log(jnp.float32(1.0 / y.shape[0]) + 1e-8)
  scaled = lambda u, v: (-cost + u[:, None] + v[None, :]) / eps

  def step(_: int, potentials: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
    u, v = potentials
    u = eps * (log_mu - jax.nn.logsumexp(scaled(u, v), axis=-1)) + u
    v = eps * (log_nu - jax.nn.logsumexp(scaled(u, v), axis=0)) + v
    return u, v

  zero_u = _backend.varying_like(jnp.zeros(x.shape[0], jnp.float32), cost)  # varying as the inputs
  zero_v = _backend.varying_like(jnp.zeros(y.shape[0], jnp.float32), cost)
  u, v = jax.lax.fori_loop(0, iterations, step, (zero_u, zero_v))
  return jnp.exp(scaled(u, v))


def assignments(images: jax.Array, partners: jax.Array, eps: ArrayLike, iterations: int) -> jax.Array:
  """``R = r P`` of every pair of feature maps ``[B, *S, C]``: float32 ``[B, r, r]``, ``r = prod(S)``, no gradient."""
  flat = lambda h: h.reshape(h.shape[0], -1, h.shape[-1])
  plans = jax.vmap(lambda a, b: sinkhorn_plan(a, b, eps, iterations))(flat(images), flat(partners))
  return jax.lax.stop_gradient(plans * plans.shape[-1])


def _moved(assignment: jax.Array, chosen: jax.Array, x: jax.Array) -> jax.Array:
  """``R x`` (positions of ``x [B, *S, C]`` carried by ``assignment [B, r, r]``) where ``chosen [B]``, else ``x``."""
  flat = x.reshape(x.shape[0], -1, x.shape[-1]).astype(jnp.float32)
  moved = jnp.einsum("bpq,bqc->bpc", assignment, flat).reshape(x.shape).astype(x.dtype)
  return jnp.where(chosen.reshape((-1,) + (1,) * (x.ndim - 1)), moved, x)


@pytree_dataclass
class AlignMix(HiddenMixMethod):
  """AlignMix at the last feature map (``layers=(-1,)``), ``lam ~ Beta(alpha, alpha)``.

  Traced: ``alpha``, ``eps`` (the entropic regularisation, the reference's 0.1). Static:
  ``iterations`` (Sinkhorn steps, the reference's at most 100), ``layers`` (-1: the last stage;
  other layers as for Manifold Mixup).

  >>> AlignMix()
  AlignMix(alpha=2.0, eps=0.1, iterations=100, layers=(-1,))
  """

  name = "alignmix"
  _positive = ("alpha", "eps")

  alpha: ArrayLike = 2.0
  eps: ArrayLike = 0.1
  iterations: int = static_field(default=100)
  layers: tuple[int, ...] = static_field(default=(-1,))

  def _check(self) -> None:
    self._check_layers()
    if isinstance(self.iterations, bool) or not isinstance(self.iterations, int) or self.iterations < 1:
      raise ValueError(f"iterations must be an int >= 1 (Sinkhorn steps); got {self.iterations!r}.")

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del key_mask, data
    lam = jnp.clip(self._beta_lam(key_lam, lam), 0.0, 1.0)
    return Sample(lam, jnp.full(shape, lam, jnp.float32), lam)

  def draw(self, key: jax.Array, sources: tuple[Any, ...], lam: Any, prob: Any, mixer: Any) -> draws.Draw:
    """Mixup's draw with the alignment: ``paste`` moves the partner, or ``keep`` the image, by ``R``.

    Key use: the draw of ``lam`` and ``prob`` is Mixup's; ``fold_in(key, 5)`` draws the direction
    coins (one per batch, or per example).
    """
    base = super().draw(key, sources, lam, prob, mixer)
    images, partners = sources[0]["images"], sources[1]["images"]
    assignment = assignments(images, partners, self.eps, self.iterations)
    batch = images.shape[0]
    coins = _bits.uniform(jax.random.fold_in(key, 5), () if mixer.mode == "batch" else (batch,))
    partner_moved = jnp.broadcast_to(coins < 0.5, (batch,))
    paste = lambda x: _moved(assignment, partner_moved, x)
    keep = lambda x: _moved(jnp.swapaxes(assignment, 1, 2), ~partner_moved, x)
    return base._replace(paste=paste, keep=keep)
