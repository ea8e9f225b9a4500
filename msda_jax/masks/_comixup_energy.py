"""Co-Mixup's batch labeling problem, and its solvers inside ``jit``.

A partition of ``m`` inputs is mixed into ``m'`` outputs on an ``n x n`` block grid (``N = n^2``
blocks): output ``j`` takes block ``b`` from input ``z[j, b]``. With ``o_j[u]`` the number of
blocks output ``j`` takes from input ``u``, the energy of a labeling is

    E(z) = sum_j sum_b c[z_jb, b]
           + (beta / N) sum_j #{4-neighbour edges (b, b') with z_jb != z_jb'}
           + (gamma / N) sum_{j != j'} o_j^T A o_j'

* ``c[u, b] = -s_u[b] - (eta / N) log(p_u + 1e-8)``: the saliency of input ``u`` pooled to the
  blocks and normalised to sum 1 per input (lost saliency is paid), and a prior ``p ~
  Dirichlet(prior_alpha 1_m)`` drawn per partition, shared by its outputs;
* the Potts term: the boundaries created inside each output;
* the supermodular term: outputs that reuse the same inputs are penalised, through the
  compatibility ``A = (1 - omega) I + omega D`` (``D``: the L1 distances between the inputs' most
  salient places, scaled to sum ``m``; ``compatibility``).

These are the reference code's ``obj_fn`` and costs (``beta``, ``gamma``, ``eta`` divided by
``N``). For a fixed labeling of the other outputs the supermodular term is linear in ``o_j``:
``2 (gamma / N) (A q_j)[u]`` per block of ``u`` in output ``j``, ``q_j = sum_{j' != j} o_j'``. The
reference minimises ``E`` output by output with that modular cost, clipped by a threshold ``tau``
(``(A q_j)[u]`` counts only above ``tau N``; ``tau = 0`` is the exact coordinate), each output's
labeling (unary plus Potts) by a graph cut. Here:

* ``solve``: ``outer`` passes over the outputs in turn (a ``fori_loop`` of static length), each
  output's labeling by ``_labeling.solve_pairwise`` (belief propagation and checkerboard sweeps
  on the Potts table, warm-started from its current labeling and never worse than it under its
  own cost). With ``tau = 0`` every update lowers ``E`` or keeps it. Every loop has a static trip
  count;
* ``solve_exhaustive``: the exact minimiser by trying every labeling (``m^(m' N)``, at most
  ``MAX_ENUMERATED``), for the gaps of ``solve`` (``benchmarks/comixup_gap.py``).

Not done here, as in the reference's ``graphcut_wrapper`` after the first pass: blocks that blend
two inputs half and half (extra soft labels). The labels here are one-hot, so an output is a
one-gather selection of its inputs' pixels. Its post-processing of outputs that draw on the same
inputs is done (``coinciding``).
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax.masks import _labeling

#: most labelings ``solve_exhaustive`` tries.
MAX_ENUMERATED = 3**12


def block_saliency(saliency: ArrayLike, n: int) -> jax.Array:
  """Each map pooled to ``n x n`` blocks and normalised to sum 1, float32 ``[m, n, n]``.

  ``saliency``: non-negative ``[m, H, W]`` with ``n`` dividing ``H`` and ``W``. An all-zero map
  becomes uniform (the reference divides 0 by 0).
  """
  s = jnp.asarray(saliency, jnp.float32)
  m, h, w = s.shape
  blocks = s.reshape(m, n, h // n, n, w // n).sum(axis=(2, 4))
  total = blocks.sum(axis=(1, 2), keepdims=True)
  return jnp.where(total > 0, blocks / jnp.where(total > 0, total, 1.0), 1.0 / (n * n))


def compatibility(saliency: ArrayLike, omega: ArrayLike, window: int = 8) -> jax.Array:
  """``A = (1 - omega) I + omega D``, float32 ``[m, m]``, from the saliency ``[m, H, W]``.

  ``D[u, v]``: the L1 distance between the places of largest ``window x window`` mean saliency
  of inputs ``u`` and ``v`` (the window cut to the image), scaled so that ``D`` sums to ``m``
  (0 when every input peaks at one place).
  """
  s = jnp.asarray(saliency, jnp.float32)
  m, h, w = s.shape
  kh, kw = min(window, h), min(window, w)
  pooled = jax.lax.reduce_window(s, 0.0, jax.lax.add, (1, kh, kw), (1, 1, 1), "VALID")
  flat = jnp.argmax(pooled.reshape(m, -1), axis=1)
  place = jnp.stack([flat // pooled.shape[2], flat % pooled.shape[2]], axis=1).astype(jnp.float32)
  distance = jnp.abs(place[:, None, :] - place[None, :, :]).sum(-1)
  total = distance.sum()
  scaled = jnp.where(total > 0, distance / jnp.where(total > 0, total, 1.0) * m, 0.0)
  omega = jnp.asarray(omega, jnp.float32)
  return (1.0 - omega) * jnp.eye(m, dtype=jnp.float32) + omega * scaled


def unary_costs(blocks: ArrayLike, log_prior: ArrayLike, eta: ArrayLike) -> jax.Array:
  """``c[u, r, q] = -s_u[r, q] - (eta / N) log_prior[u]``, float32 ``[m, n, n]``."""
  blocks = jnp.asarray(blocks, jnp.float32)
  n_blocks = blocks.shape[1] * blocks.shape[2]
  return -blocks - (jnp.asarray(eta, jnp.float32) / n_blocks) * jnp.asarray(log_prior, jnp.float32)[:, None, None]


def energy(labels: ArrayLike, cost: ArrayLike, compat: ArrayLike, *, beta: ArrayLike, gamma: ArrayLike) -> jax.Array:
  """``E(z)`` of the module docstring (float32 scalar).

  Args:
    labels: int ``[m', n, n]`` the input of each output block.
    cost: float ``[m, n, n]`` unary costs ``c`` (``unary_costs``).
    compat: float ``[m, m]`` the compatibility ``A``.
    beta, gamma: the smoothness and diversity weights (divided by ``N`` here).

  >>> c = -jnp.full((2, 2, 2), 0.25)
  >>> float(energy(jnp.zeros((2, 2, 2), int), c, jnp.eye(2), beta=0.0, gamma=1.0))  # both outputs all input 0
  6.0
  """
  labels = jnp.asarray(labels)
  cost = jnp.asarray(cost, jnp.float32)
  m, n, _ = cost.shape
  n_blocks = n * n
  own = jnp.take_along_axis(jnp.moveaxis(cost, 0, -1)[None], labels[..., None], axis=-1).sum()
  cuts = jnp.sum(labels[:, 1:] != labels[:, :-1]) + jnp.sum(labels[:, :, 1:] != labels[:, :, :-1])
  counts = jax.nn.one_hot(labels.reshape(labels.shape[0], -1), m, dtype=jnp.float32).sum(1)  # [m', m]
  compat = jnp.asarray(compat, jnp.float32)
  total = counts.sum(0)
  pairs = total @ compat @ total - jnp.einsum("ju,uv,jv->", counts, compat, counts)
  beta, gamma = (jnp.asarray(v, jnp.float32) / n_blocks for v in (beta, gamma))
  return own + beta * cuts.astype(jnp.float32) + gamma * pairs


def _potts_edges(n: int, beta: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The vertical and horizontal edge weights of the ``n x n`` grid, all ``beta``."""
  return jnp.full((n - 1, n), beta, jnp.float32), jnp.full((n, n - 1), beta, jnp.float32)


def coinciding(labels: ArrayLike, m: int) -> jax.Array:
  """The reference's costs that part outputs drawing on the same set of inputs, float32 ``[m', m]``.

  For outputs ``i < i'`` that use the same inputs (two or more), ``i`` gets 1 on the first of
  them and ``i'`` on the second; 0 elsewhere.
  """
  labels = jnp.asarray(labels)
  used = jax.nn.one_hot(labels.reshape(labels.shape[0], -1), m, dtype=jnp.float32).sum(1) > 0  # [m', m]
  outputs = used.shape[0]
  same = jnp.all(used[:, None, :] == used[None, :, :], axis=-1)
  order = jnp.arange(outputs)
  later = same & (order[:, None] < order[None, :])  # [i, i']: i < i' coincide
  several = used.sum(1) > 1
  first = jnp.argmax(used, axis=1)
  second = jnp.argmax(used & (jnp.arange(m)[None, :] != first[:, None]), axis=1)
  ahead = several & later.any(axis=1)  # i has a later twin
  behind = several & later.any(axis=0)  # i' has an earlier twin
  cost = jnp.where(ahead[:, None], jax.nn.one_hot(first, m, dtype=jnp.float32), 0.0)
  return jnp.maximum(cost, jnp.where(behind[:, None], jax.nn.one_hot(second, m, dtype=jnp.float32), 0.0))


def solve(
  cost: ArrayLike,
  compat: ArrayLike,
  start: ArrayLike,
  *,
  beta: ArrayLike,
  gamma: ArrayLike,
  tau: ArrayLike,
  outer: int = 4,
  rounds: int = 10,
  sweeps: int = 2,
  resolve: bool = True,
) -> jax.Array:
  """A labeling of low ``E``, int32 ``[m', n, n]``, from ``start`` in a fixed amount of work.

  ``outer`` passes; in each, output ``j = 0, ..., m' - 1`` in turn takes the labeling of its
  cost ``c + 2 (gamma / N) [A q_j > tau N] (A q_j)`` plus the Potts term (``q_j``: the blocks of
  each input in the other outputs, as they are then), by ``_labeling.solve_pairwise`` with
  ``rounds`` rounds and ``sweeps`` sweeps, warm-started from its current labeling. With
  ``resolve`` (and ``outer >= 2``), the last pass also adds ``(gamma / N) coinciding(z)`` of the
  labeling after the pass before it, as the reference does, so that outputs that drew on the same
  inputs part.

  Args:
    cost: float ``[m, n, n]`` unary costs (``unary_costs``).
    compat: float ``[m, m]`` the compatibility ``A``.
    start: int ``[m', n, n]`` the initial labeling.
    beta, gamma: the weights of ``energy``; tau: the threshold, in images (``N`` blocks).
    outer, rounds, sweeps, resolve: static amounts of work.
  """
  cost = jnp.asarray(cost, jnp.float32)
  compat = jnp.asarray(compat, jnp.float32)
  labels = jnp.asarray(start, jnp.int32)
  m, n, _ = cost.shape
  outputs = labels.shape[0]
  n_blocks = n * n
  beta_n, gamma_n = (jnp.asarray(v, jnp.float32) / n_blocks for v in (beta, gamma))
  threshold = jnp.asarray(tau, jnp.float32) * n_blocks
  vertical, horizontal = _potts_edges(n, beta_n)
  potts = 1.0 - jnp.eye(m, dtype=jnp.float32)
  unary = jnp.moveaxis(cost, 0, -1)  # [n, n, m]
  count = lambda lab: jax.nn.one_hot(lab.reshape(-1), m, dtype=jnp.float32).sum(0)

  def update(j: int, state: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array, jax.Array]:
    labels, total, extra = state
    mine = labels[j]
    others = compat @ (total - count(mine))
    penalty = 2.0 * gamma_n * jnp.where(others > threshold, others, 0.0) + gamma_n * extra[j]
    new = _labeling.solve_pairwise(
      unary + penalty[None, None, :], vertical, horizontal, potts, rounds=rounds, sweeps=sweeps, start=mine
    )
    total = total - count(mine) + count(new)
    return labels.at[j].set(new), total, extra

  def sweep(state: tuple[jax.Array, jax.Array, jax.Array], passes: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    return jax.lax.fori_loop(0, passes * outputs, lambda i, st: update(i % outputs, st), state)

  total = jax.nn.one_hot(labels.reshape(-1), m, dtype=jnp.float32).sum(0)
  none = jnp.zeros((outputs, m), jnp.float32)
  if not resolve or outer < 2:
    return sweep((labels, total, none), outer)[0]
  labels, total, _ = sweep((labels, total, none), outer - 1)
  return sweep((labels, total, coinciding(labels, m)), 1)[0]


def solve_exhaustive(
  cost: ArrayLike, compat: ArrayLike, outputs: int, *, beta: ArrayLike, gamma: ArrayLike
) -> jax.Array:
  """The exact minimiser of ``E`` (int32 ``[outputs, n, n]``), trying all ``m^(outputs N)`` labelings.

  At most ``MAX_ENUMERATED`` (e.g. 3 inputs into 3 outputs of 2 x 2 blocks); ties go to the
  first labeling in lexicographic order.
  """
  cost = jnp.asarray(cost, jnp.float32)
  m, n, _ = cost.shape
  sites = outputs * n * n
  if m**sites > MAX_ENUMERATED:
    raise ValueError(f"solve_exhaustive tries m^(outputs n^2) labelings, at most {MAX_ENUMERATED}; got {m}^{sites}.")
  table = np.asarray(list(itertools.product(range(m), repeat=sites)), np.int32).reshape(-1, outputs, n, n)
  one = lambda lab: energy(lab, cost, compat, beta=beta, gamma=gamma)
  energies = jax.lax.map(one, jnp.asarray(table), batch_size=4096)
  return jnp.asarray(table)[jnp.argmin(energies)]
