"""Minimising a grid labeling energy inside ``jit``: PuzzleMix's mask labels, per image.

The energy of a labeling ``l`` of a ``b x b`` grid of blocks with ``n`` labels, label ``k``
meaning the mask value ``levels[k]``:

    E(l) = sum_i U[i, l_i] + sum_(u,v) w_uv (levels[l_u] - levels[l_v])^2

over the 4-neighbour edges, ``vertical[r, c]`` joining ``(r, c)`` and ``(r + 1, c)`` and
``horizontal[r, c]`` joining ``(r, c)`` and ``(r, c + 1)``. With non-negative weights and
ordered levels the pairwise term is a convex function of the label difference, so the energy is
multi-label submodular and has an exact minimiser by one min-cut; the solvers here work with
static shapes and a fixed amount of work instead:

* ``solve_exhaustive``: every labeling (``n^(b^2)``; the 2 x 2 grid has 81), exact;
* ``solve_rows``: dynamic programming over rows, one state per labeling of a row (``n^b``
  states; 81 for a 4 x 4 grid), exact;
* ``solve_iterative``: damped min-sum belief propagation for a fixed number of rounds, then
  checkerboard sweeps of exact conditional minimisation (each never raises the energy); for the
  8 x 8 and 16 x 16 grids. Not guaranteed optimal: its gap to the optimum is measured in
  ``tests/test_labeling.py``.
* ``solve_pairwise``: the same for any pairwise table ``pair[l_u, l_v]`` (``pair_energy``), such
  as Co-Mixup's Potts term over the inputs of a batch.

Ties go to the lowest index (label 0 first), as ``jnp.argmin`` breaks them.
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _backend

#: largest number of labelings ``solve_exhaustive`` enumerates, and of row states for ``solve_rows``.
MAX_ENUMERATED = 3**9
MAX_ROW_STATES = 3**5


def grid_energy(
  labels: ArrayLike, unary: ArrayLike, vertical: ArrayLike, horizontal: ArrayLike, levels: ArrayLike
) -> jax.Array:
  """``E(l)`` of the module docstring (float32 scalar).

  Args:
    labels: int ``[b, b]`` label of each block.
    unary: float ``[b, b, n]`` cost of each label at each block.
    vertical: float ``[b - 1, b]`` weights of the edges between rows.
    horizontal: float ``[b, b - 1]`` weights of the edges between columns.
    levels: float ``[n]`` mask value of each label.

  >>> u = jnp.zeros((2, 2, 2)); w = jnp.ones((1, 2))
  >>> float(grid_energy(jnp.array([[0, 1], [0, 1]]), u, w, w.T, jnp.array([1.0, 0.0])))
  2.0
  """
  labels = jnp.asarray(labels)
  unary = jnp.asarray(unary, jnp.float32)
  m = jnp.asarray(levels, jnp.float32)[labels]
  own = jnp.take_along_axis(unary, labels[..., None], axis=-1).sum()
  down = jnp.sum(jnp.asarray(vertical, jnp.float32) * (m[1:] - m[:-1]) ** 2)
  right = jnp.sum(jnp.asarray(horizontal, jnp.float32) * (m[:, 1:] - m[:, :-1]) ** 2)
  return own + down + right


def _all_labelings(size: int, n: int) -> np.ndarray:
  """Every labeling of ``size`` sites with ``n`` labels, int32 ``[n^size, size]``, lexicographic."""
  return np.asarray(list(itertools.product(range(n), repeat=size)), np.int32).reshape(-1, size)


def solve_exhaustive(unary: ArrayLike, vertical: ArrayLike, horizontal: ArrayLike, levels: ArrayLike) -> jax.Array:
  """The exact minimiser by trying every labeling (int32 ``[b, b]``); at most ``MAX_ENUMERATED``."""
  unary = jnp.asarray(unary, jnp.float32)
  b, _, n = unary.shape
  if n ** (b * b) > MAX_ENUMERATED:
    raise ValueError(f"solve_exhaustive tries n^(b^2) labelings, at most {MAX_ENUMERATED}; got {n}^{b * b}.")
  table = jnp.asarray(_all_labelings(b * b, n)).reshape(-1, b, b)
  energies = jax.vmap(lambda lab: grid_energy(lab, unary, vertical, horizontal, levels))(table)
  return table[jnp.argmin(energies)]


def solve_rows(unary: ArrayLike, vertical: ArrayLike, horizontal: ArrayLike, levels: ArrayLike) -> jax.Array:
  """The exact minimiser by dynamic programming over rows (int32 ``[b, b]``).

  A state is the labeling of one row (``n^b`` of them, at most ``MAX_ROW_STATES``): the cost of
  a row in a state (its unary and horizontal terms) plus the cost of the edges to the row above
  in its state, minimised row by row (min-plus), then traced back.
  """
  unary = jnp.asarray(unary, jnp.float32)
  vertical = jnp.asarray(vertical, jnp.float32)
  horizontal = jnp.asarray(horizontal, jnp.float32)
  levels = jnp.asarray(levels, jnp.float32)
  b, _, n = unary.shape
  if n**b > MAX_ROW_STATES:
    raise ValueError(f"solve_rows has n^b states per row, at most {MAX_ROW_STATES}; got {n}^{b}.")
  states = jnp.asarray(_all_labelings(b, n))  # [S, b]
  values = levels[states]  # [S, b]
  # row[r, s]: unary and horizontal cost of row r in state s.
  own = jnp.take_along_axis(unary[:, None, :, :], states[None, :, :, None], axis=-1)[..., 0].sum(-1)
  across = (horizontal[:, None, :] * (values[None, :, 1:] - values[None, :, :-1]) ** 2).sum(-1)
  row = own + across  # [b, S]
  # between[r, s, t]: edges from row r in state s to row r + 1 in state t.
  between = (vertical[:, None, None, :] * (values[None, :, None, :] - values[None, None, :, :]) ** 2).sum(-1)
  best = row[0]
  pointers = []
  for r in range(1, b):
    total = best[:, None] + between[r - 1]  # [S above, S here]
    pointers.append(jnp.argmin(total, axis=0))
    best = jnp.min(total, axis=0) + row[r]
  state = jnp.argmin(best)
  rows = [state]
  for back in reversed(pointers):
    state = back[state]
    rows.append(state)
  return states[jnp.stack(rows[::-1])]


def _neighbour_costs(labels: jax.Array, vertical: jax.Array, horizontal: jax.Array, pair: jax.Array) -> jax.Array:
  """``[b, b, n]``: the pairwise cost of each label at each block given its neighbours' labels."""
  cost = lambda w, other: w[..., None] * pair[:, other].transpose(*range(1, other.ndim + 1), 0)
  total = jnp.zeros((*labels.shape, pair.shape[0]), jnp.float32)
  total = total.at[1:].add(cost(vertical, labels[:-1]))  # the block above
  total = total.at[:-1].add(cost(vertical, labels[1:]))  # the block below
  total = total.at[:, 1:].add(cost(horizontal, labels[:, :-1]))  # the block to the left
  return total.at[:, :-1].add(cost(horizontal, labels[:, 1:]))  # the block to the right


def _conditional_sweeps(
  labels: jax.Array, unary: jax.Array, vertical: jax.Array, horizontal: jax.Array, pair: jax.Array, sweeps: int
) -> jax.Array:
  """``sweeps`` checkerboard rounds: each colour's blocks take their best label given the others'.

  Blocks of one colour share no edge, so updating them together is exact coordinate descent and
  the energy never rises.
  """
  b = labels.shape[0]
  colour = (np.add.outer(np.arange(b), np.arange(b)) % 2).astype(bool)

  def sweep(_: int, labels: jax.Array) -> jax.Array:
    for parity in (False, True):
      local = unary + _neighbour_costs(labels, vertical, horizontal, pair)
      labels = jnp.where(colour == parity, jnp.argmin(local, axis=-1).astype(labels.dtype), labels)
    return labels

  return jax.lax.fori_loop(0, sweeps, sweep, labels)


def pair_energy(
  labels: ArrayLike, unary: ArrayLike, vertical: ArrayLike, horizontal: ArrayLike, pair: ArrayLike
) -> jax.Array:
  """``sum_i U[i, l_i] + sum_(u,v) w_uv pair[l_u, l_v]`` (float32 scalar): any pairwise table ``[n, n]``.

  ``grid_energy`` is the case ``pair[a, c] = (levels[a] - levels[c])^2``; the Potts table
  ``1 - I`` counts the edges whose labels differ (Co-Mixup's smoothness term).

  >>> u = jnp.zeros((2, 2, 3)); w = jnp.ones((1, 2)); potts = 1.0 - jnp.eye(3)
  >>> float(pair_energy(jnp.array([[0, 1], [0, 2]]), u, w, w.T, potts))
  3.0
  """
  labels = jnp.asarray(labels)
  unary = jnp.asarray(unary, jnp.float32)
  pair = jnp.asarray(pair, jnp.float32)
  own = jnp.take_along_axis(unary, labels[..., None], axis=-1).sum()
  down = jnp.sum(jnp.asarray(vertical, jnp.float32) * pair[labels[1:], labels[:-1]])
  right = jnp.sum(jnp.asarray(horizontal, jnp.float32) * pair[labels[:, 1:], labels[:, :-1]])
  return own + down + right


def solve_iterative(
  unary: ArrayLike,
  vertical: ArrayLike,
  horizontal: ArrayLike,
  levels: ArrayLike,
  *,
  rounds: int = 40,
  sweeps: int = 4,
  damping: float = 0.5,
) -> jax.Array:
  """A labeling of low energy (int32 ``[b, b]``) in a fixed amount of work, for any ``b``.

  ``rounds`` of damped min-sum belief propagation on the 4-neighbour grid (messages normalised to
  a minimum of 0), the labels of least belief, then ``sweeps`` checkerboard sweeps of exact
  conditional minimisation. Every loop has a static trip count.
  """
  levels = jnp.asarray(levels, jnp.float32)
  pair = (levels[:, None] - levels[None, :]) ** 2  # [n, n]
  return solve_pairwise(unary, vertical, horizontal, pair, rounds=rounds, sweeps=sweeps, damping=damping)


def solve_pairwise(
  unary: ArrayLike,
  vertical: ArrayLike,
  horizontal: ArrayLike,
  pair: ArrayLike,
  *,
  rounds: int = 40,
  sweeps: int = 4,
  damping: float = 0.5,
  start: ArrayLike | None = None,
) -> jax.Array:
  """``solve_iterative`` for any symmetric pairwise table ``pair [n, n]`` (``pair_energy``).

  With ``start`` (int ``[b, b]``), the sweeps also run from it, and the labeling of lower energy
  of the two is returned (ties: ``start``), so that the result never has a higher energy than
  ``start``.
  """
  unary = jnp.asarray(unary, jnp.float32)
  vertical = jnp.asarray(vertical, jnp.float32)
  horizontal = jnp.asarray(horizontal, jnp.float32)
  pair = jnp.asarray(pair, jnp.float32)
  b, _, n = unary.shape
  # Messages into each block from the block above / below / left / right ([b, b, n], 0 at borders).
  zero = _backend.varying_like(jnp.zeros((b, b, n), jnp.float32), unary, vertical, horizontal)  # as the inputs vary

  def send(belief_less: jax.Array, weight: jax.Array) -> jax.Array:
    """min over the sender's label of (its cost without the receiver's message + w * pair)."""
    out = jnp.min(belief_less[..., :, None] + weight[..., None, None] * pair[None, None], axis=-2)
    return out - jnp.min(out, axis=-1, keepdims=True)

  def step(_: int, messages: tuple[jax.Array, ...]) -> tuple[jax.Array, ...]:
    above, below, left, right = messages
    belief = unary + above + below + left + right
    # A block's message to the block below excludes what came from below, and so on.
    new_above = zero.at[1:].set(send((belief - below)[:-1], vertical))
    new_below = zero.at[:-1].set(send((belief - above)[1:], vertical))
    new_left = zero.at[:, 1:].set(send((belief - right)[:, :-1], horizontal))
    new_right = zero.at[:, :-1].set(send((belief - left)[:, 1:], horizontal))
    new = (new_above, new_below, new_left, new_right)
    return tuple(damping * old + (1.0 - damping) * fresh for old, fresh in zip(messages, new, strict=True))

  above, below, left, right = jax.lax.fori_loop(0, rounds, step, (zero, zero, zero, zero))
  labels = jnp.argmin(unary + above + below + left + right, axis=-1).astype(jnp.int32)
  labels = _conditional_sweeps(labels, unary, vertical, horizontal, pair, sweeps)
  if start is None:
    return labels
  start = _conditional_sweeps(jnp.asarray(start, jnp.int32), unary, vertical, horizontal, pair, sweeps)
  energy = lambda lab: pair_energy(lab, unary, vertical, horizontal, pair)
  return jnp.where(energy(labels) < energy(start), labels, start)


def labeling_levels(n_labels: int) -> np.ndarray:
  """Mask value of each label, float32 ``[n]``: label ``k`` keeps ``1 - k / (n - 1)`` of the first image."""
  if isinstance(n_labels, bool) or not isinstance(n_labels, int) or n_labels < 2:
    raise ValueError(f"n_labels must be an int >= 2; got {n_labels!r}.")
  return (1.0 - np.arange(n_labels) / (n_labels - 1)).astype(np.float32)


def binomial_prior(lam: ArrayLike, n_labels: int) -> jax.Array:
  """``-log(Binomial(n - 1 - k; n - 1, lam) + 1e-8)`` for each label ``k`` (float32 ``[n]``).

  The prior that keeps the labeling's mixing ratio near ``lam``: label ``k`` stands for
  ``n - 1 - k`` of ``n - 1`` units taken from the first image.
  """
  lam = jnp.clip(jnp.asarray(lam, jnp.float32), 0.0, 1.0)
  trials = n_labels - 1
  units = trials - np.arange(n_labels)
  choose = np.asarray([math.comb(trials, int(u)) for u in units], np.float32)
  probability = choose * lam**units * (1.0 - lam) ** (trials - units)
  return -jnp.log(probability + 1e-8)
