"""An exact minimiser of the grid labeling energy by an s-t minimum cut (a NumPy / SciPy reference).

The energy is the one of ``msda_jax.masks._labeling``:

    E(l) = sum_i U[i, l_i] + sum_(u,v) w_uv theta(l_u, l_v),  theta(a, b) = (levels[a] - levels[b])^2,

on a ``b x b`` grid with 4-neighbour edges and ``w_uv >= 0``. With monotone levels every second
difference ``c[j, k] = theta(j-1, k) + theta(j, k-1) - theta(j-1, k-1) - theta(j, k)``
(``j, k = 1 .. n - 1``) equals ``2 (levels[j-1] - levels[j]) (levels[k-1] - levels[k]) >= 0``; for
equally spaced levels, ``theta(a, b) = f(a - b)`` with ``f(d) = step^2 d^2`` and ``c[j, k] =
f(d + 1) - 2 f(d) + f(d - 1) = 2 step^2`` at ``d = j - k``. So the energy is minimised exactly
by a minimum cut of the layered graph:

* each site ``i`` has ``n - 1`` nodes ``(i, j)``, ``j = 1 .. n - 1``, on the source side exactly
  when ``l_i >= j``; the chain ``source -> (i, 1) -> ... -> (i, n - 1) -> sink`` carries the unary
  costs (the edge leaving layer ``j``, the source being layer 0, costs ``U[i, j]``: it is cut
  when ``l_i = j``) and every reverse chain edge is infinite, so a finite cut crosses each chain
  once and the source side of each chain is a prefix;
* a pair ``(u, v)`` with labels ``(a, b)`` gets, for every pair of layers ``(j, k)``, capacity
  ``w c[j, k]`` shared between the edge ``(u, j) -> (v, k)`` (cut when ``a >= j`` and
  ``b < k``) and the edge ``(v, k) -> (u, j)`` (cut when ``b >= k`` and
  ``a < j``): all of it on the first for ``j > k``, on the second for ``j < k``, half on each for
  ``j = k``. The cut of these edges has the mixed second differences of ``w theta`` and is 0 when
  ``a = b``; what is left of ``w theta`` is a function of ``a`` plus one of ``b``, added to the
  unary terms (it is zero for equally spaced levels, where the edges' cut is ``w f(a - b)``).

Unary terms are made non-negative by subtracting each site's minimum (a constant). The max-flow
routine takes int32 capacities, so the capacities are scaled and rounded: exact up to that
quantisation. Each cut is scaled so that a known labeling's cut is ``CUT_UNITS = 2^29`` units,
infinite edges ``2^30``, so no flow sum overflows; ``solve_mincut`` refines the scale with the cut
it finds. The labels returned have an energy at most ``(b^2 + |edges| (n - 1)^2)`` units above
the minimum (half a unit of rounding on each cut edge, on both the cut found and the optimal
one). On the instances of ``benchmarks/labeling_gap.py`` (4 x 4 to 16 x 16, couplings x1 to x16;
seed 5, 20 each) a unit was at most ``1.5e-9`` of the minimum energy and the largest finite capacity
at least ``2.7e7`` units.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, maximum_flow

#: the cut of a known labeling, in capacity units, when a cut is scaled; infinite edges get ``2 * CUT_UNITS``.
CUT_UNITS = 2**29


def pair_second_differences(levels: np.ndarray) -> np.ndarray:
  """``c [n - 1, n - 1]``: ``c[j - 1, k - 1]`` the second difference of ``(levels[a] - levels[b])^2`` at ``(j, k)``.

  ``c[j, k] = theta(j-1, k) + theta(j, k-1) - theta(j-1, k-1) - theta(j, k)`` for ``j, k = 1 .. n-1``
  (float64). Raises ``ValueError`` if one is negative, i.e. the levels are not monotone.
  """
  m = np.asarray(levels, np.float64)
  theta = (m[:, None] - m[None, :]) ** 2
  c = theta[:-1, 1:] + theta[1:, :-1] - theta[:-1, :-1] - theta[1:, 1:]
  if np.any(c < -1e-12 * max(theta.max(), 1.0)):
    raise ValueError("the pairwise term is not submodular: the levels must be monotone.")
  return np.maximum(c, 0.0)


def pair_split(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The pair term ``theta(a, b) = (levels[a] - levels[b])^2`` as cut edges plus unary terms (float64).

  Returns ``(forward, backward, rest)``: ``forward [n - 1, n - 1]``, ``forward[j - 1, k - 1]`` the
  capacity of the edge ``(u, j) -> (v, k)`` (cut when ``a >= j`` and ``b < k``), ``c[j, k]`` for
  ``j > k``, half of it for ``j = k``, else 0; ``backward [n - 1, n - 1]``, ``backward[j - 1, k - 1]``
  that of ``(v, k) -> (u, j)`` (cut when ``b >= k`` and ``a < j``), the remaining ``c[j, k]``; and
  ``rest [n, n]``, ``theta`` minus the cut of these edges, a sum of a function of ``a`` and one of
  ``b`` (zero for equally spaced levels). No edge is cut when ``a = b``.
  """
  m = np.asarray(levels, np.float64)
  n = m.shape[0]
  theta = (m[:, None] - m[None, :]) ** 2
  c = pair_second_differences(m)
  j, k = np.meshgrid(np.arange(1, n), np.arange(1, n), indexing="ij")
  forward = np.where(j > k, c, np.where(j == k, 0.5 * c, 0.0))
  backward = c - forward
  a, b = np.arange(n)[:, None, None, None], np.arange(n)[None, :, None, None]
  cut = np.sum(forward * ((j <= a) & (k > b)) + backward * ((k <= b) & (j > a)), axis=(-2, -1))
  rest = theta - cut
  if not np.allclose(rest, rest[:, :1] + rest[:1, :] - rest[0, 0], rtol=0.0, atol=1e-12 * max(theta.max(), 1.0)):
    raise AssertionError("the edges do not represent the pair term up to unary terms.")
  return forward, backward, rest


def grid_edges(b: int) -> tuple[np.ndarray, np.ndarray]:
  """``(first, second)`` int ``[2 b (b - 1)]``: the flat (row-major) sites of the vertical, then horizontal, edges.

  The order is ``vertical.ravel()`` then ``horizontal.ravel()``.
  """
  sites = np.arange(b * b).reshape(b, b)
  first = np.concatenate([sites[:-1].ravel(), sites[:, :-1].ravel()])
  second = np.concatenate([sites[1:].ravel(), sites[:, 1:].ravel()])
  return first, second


def build_graph(
  unary: np.ndarray, vertical: np.ndarray, horizontal: np.ndarray, levels: np.ndarray
) -> tuple[sp.csr_array, float]:
  """The layered graph of the module docstring, unscaled (float64, infinite edges ``inf``).

  Args:
    unary: float ``[b, b, n]``.
    vertical: float ``[b - 1, b]``, non-negative.
    horizontal: float ``[b, b - 1]``, non-negative.
    levels: float ``[n]``, monotone.

  Returns:
    ``(capacity, constant)``: capacity a csr ``[2 + b^2 (n - 1), 2 + b^2 (n - 1)]`` (node 0 the
    source, 1 the sink, ``2 + i (n - 1) + j - 1`` the layer ``j`` of flat site ``i``), and the
    constant with ``E(l) = cut(l) + constant``.
  """
  unary = np.array(unary, np.float64)
  b, _, n = unary.shape
  weights = np.concatenate([np.ravel(vertical), np.ravel(horizontal)]).astype(np.float64)
  if np.any(weights < 0):
    raise ValueError("the edge weights must be non-negative.")
  m = np.asarray(levels, np.float64)
  forward, backward, rest = pair_split(m)
  first, second = grid_edges(b)
  flat = unary.reshape(b * b, n)
  # The rest of each pair, rest(a, b) = rest(a, 0) - rest(0, 0) + rest(0, b): unary terms.
  np.add.at(flat, first, weights[:, None] * (rest[:, 0] - rest[0, 0])[None, :])
  np.add.at(flat, second, weights[:, None] * rest[0, :][None, :])
  lowest = flat.min(axis=1)
  constant = float(lowest.sum())
  flat = flat - lowest[:, None]

  node = lambda site, layer: 2 + site * (n - 1) + layer - 1  # layer 1 .. n - 1
  rows, cols, caps = [], [], []
  sites = np.arange(b * b)
  for j in range(n):  # the chain edge cut when l_i = j
    tail = np.zeros(b * b, np.int64) if j == 0 else node(sites, j)
    head = np.ones(b * b, np.int64) if j == n - 1 else node(sites, j + 1)
    rows.append(tail)
    cols.append(head)
    caps.append(flat[:, j])
    if 0 < j < n - 1:  # the reverse edge keeps the source side of the chain a prefix
      rows.append(head)
      cols.append(tail)
      caps.append(np.full(b * b, np.inf))
  for j in range(1, n):
    for k in range(1, n):
      if forward[j - 1, k - 1] > 0:  # (u, j) -> (v, k): cut when l_u >= j and l_v < k
        rows.append(node(first, j))
        cols.append(node(second, k))
        caps.append(weights * forward[j - 1, k - 1])
      if backward[j - 1, k - 1] > 0:  # (v, k) -> (u, j): cut when l_v >= k and l_u < j
        rows.append(node(second, k))
        cols.append(node(first, j))
        caps.append(weights * backward[j - 1, k - 1])
  size = 2 + b * b * (n - 1)
  capacity = sp.coo_array(
    (np.concatenate(caps), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size)
  ).tocsr()  # duplicates summed
  capacity.eliminate_zeros()
  return capacity, constant


def cut_value(capacity: sp.csr_array, labels: np.ndarray, n: int) -> float:
  """The capacity of the cut of ``labels`` (int ``[b, b]``): edges from its source side to its sink side."""
  source_side = source_side_of(labels, n)
  coo = capacity.tocoo()
  return float(coo.data[source_side[coo.row] & ~source_side[coo.col]].sum())


def source_side_of(labels: np.ndarray, n: int) -> np.ndarray:
  """bool ``[2 + b^2 (n - 1)]``: the source side for int ``labels [b, b]``, node order ``build_graph``'s.

  Layer ``j`` of site ``i`` is on it iff ``l_i >= j``; the source is, the sink is not.
  """
  flat = np.ravel(labels)
  layers = np.arange(1, n)
  side = np.zeros(2 + flat.size * (n - 1), bool)
  side[0] = True
  side[2:] = (flat[:, None] >= layers[None, :]).ravel()
  return side


def min_cut_side(capacity: sp.csr_array, bound: float) -> np.ndarray:
  """bool ``[nodes]``: the source side of a minimum cut of ``capacity`` scaled to integers.

  Args:
    capacity: float csr ``[nodes, nodes]`` of ``build_graph`` (node 0 the source, 1 the sink).
    bound: ``> 0``, at least the minimum cut (the cut of a known labeling).

  The capacities are multiplied by ``CUT_UNITS / bound`` and rounded, infinite ones (and any larger)
  set to ``2 * CUT_UNITS``: the maximum flow is at most about ``CUT_UNITS``, so the int32 sums of
  the max-flow routine cannot overflow and no cut through a capped edge is minimal. The side is
  the set of nodes reachable from the source along edges of positive residual capacity.
  """
  scale = CUT_UNITS / bound
  data = np.minimum(np.rint(capacity.data * scale), 2 * CUT_UNITS)
  scaled = sp.csr_array((data.astype(np.int32), capacity.indices, capacity.indptr), shape=capacity.shape)
  scaled.eliminate_zeros()
  flow = maximum_flow(scaled, 0, 1).flow  # antisymmetric: a reverse edge carries minus the flow
  residual = (scaled.astype(np.int64) - flow.astype(np.int64)).tocsr()
  residual.data[residual.data < 0] = 0
  residual.eliminate_zeros()
  side = np.zeros(capacity.shape[0], bool)
  side[breadth_first_order(residual, 0, directed=True, return_predecessors=False)] = True
  return side


def solve_mincut(
  unary: np.ndarray, vertical: np.ndarray, horizontal: np.ndarray, levels: np.ndarray, *, passes: int = 3
) -> np.ndarray:
  """The minimiser of ``E`` by a minimum cut (int ``[b, b]``), exact up to the capacity rounding.

  Args:
    unary: float ``[b, b, n]`` cost of each label at each block.
    vertical: float ``[b - 1, b]`` non-negative weights of the edges between rows.
    horizontal: float ``[b, b - 1]`` non-negative weights of the edges between columns.
    levels: float ``[n]`` monotone mask value of each label.
    passes: at most this many cuts: the first scaled to the best of the per-site best unary
      labeling and the constant ones, each next one to the cut just found (a finer scale), while
      that halves the bound.

  Returns:
    int64 ``[b, b]``: the labels, ``l_i`` the number of layers of site ``i`` on the source side.
    The energy is at most ``(b^2 + |edges| (n - 1)^2) bound / CUT_UNITS`` above the minimum, with
    ``bound`` the cut the last pass was scaled to (half a unit of rounding on each cut edge, for
    both the cut found and the optimal one).
  """
  unary = np.asarray(unary, np.float64)
  b, _, n = unary.shape
  capacity, _ = build_graph(unary, vertical, horizontal, levels)
  candidates = [np.argmin(unary, axis=-1)] + [np.full((b, b), k) for k in range(n)]
  cuts = [cut_value(capacity, labels, n) for labels in candidates]
  best, bound = candidates[int(np.argmin(cuts))], min(cuts)
  for _ in range(passes):
    if bound <= 0.0:  # a cut of 0 is minimal
      break
    side = min_cut_side(capacity, bound)
    found = side[2:].reshape(b * b, n - 1).sum(axis=1).reshape(b, b)
    value = cut_value(capacity, found, n)
    if value < bound:
      best = found
    if not value < 0.5 * bound:
      break
    bound = value
  return best
