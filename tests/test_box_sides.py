"""Box sides at every float32 step boundary, against numpy float64 and exact integer arithmetic.

``cut_sizes(lam, shape)`` must give, for every float32 ``lam``, the side the reference code
computes in float64 from that ``lam``: ``floor(n (1 - lam)^(1/d))`` (``sqrt`` for images), and
``2 * (that // 2)`` with ``sides="even"`` (torchvision's ``2 * int(0.5 * sqrt(1 - lam) * n)``).
``box_sizes(f, shape)`` must give the exact ``floor(f^(1/d) n)`` for every float32 ``f``. The
cases are every float32 within 3 ulps of every step ``1 - (s / n)^d`` (``(s / n)^d`` for
``box_sizes``), for a few ``n`` up to 4096 and ``d`` in {1, 2, 3}, plus the tiniest ``lam``
(subnormals, and where float64 rounds ``1 - lam`` to 1).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from msda_jax.masks import _box

SIZES = {1: (7, 10, 224, 255, 4096), 2: (7, 10, 32, 224, 255, 4096), 3: (7, 32, 100, 4096)}
CASES = [(n, d) for d, ns in SIZES.items() for n in ns]
ULPS = 3


def near(values: np.ndarray, ulps: int = ULPS) -> np.ndarray:
  """Every float32 in [0, 1] within ``ulps`` ulps of the float32 nearest each of ``values``, sorted."""
  centre = values.astype(np.float32)
  out, up, down = [centre], centre, centre
  for _ in range(ulps):
    up, down = np.nextafter(up, np.float32(2)), np.nextafter(down, np.float32(-1))
    out += [up, down]
  lam = np.unique(np.concatenate(out))
  return lam[(lam >= 0) & (lam <= 1)]


def reference_side(lam: np.ndarray, n: int, d: int) -> np.ndarray:
  """``floor(n (1 - lam)^(1/d))`` in numpy float64 from float32 ``lam``, as the reference code does."""
  complement = 1.0 - lam.astype(np.float64)
  root = complement if d == 1 else np.sqrt(complement) if d == 2 else complement ** (1.0 / d)
  return np.floor(n * root).astype(np.int64)


def exact_side(value: float, n: int, d: int, *, complement: bool) -> int:
  """The largest ``s`` in [0, n] with ``s^d <= v n^d``, ``v = 1 - value`` or ``value``, in integers."""
  p, q = float(value).as_integer_ratio()  # value = p / q exactly, q a power of 2
  top = (q - p) if complement else p
  s = min(n, math.floor((top / q) ** (1.0 / d) * n) + 1)
  while s > 0 and s**d * q > top * n**d:
    s -= 1
  while s < n and (s + 1) ** d * q <= top * n**d:
    s += 1
  return s


def sides_of(fn, values: np.ndarray, n: int, d: int, **kwargs) -> np.ndarray:
  """``fn(value, shape)[0]`` for each value (jitted, vmapped) on ``shape = (n, 1, ..., 1)`` of rank ``d``."""
  shape = (n,) + (1,) * (d - 1)
  run = jax.jit(jax.vmap(lambda v: fn(v, shape, **kwargs)[0]))
  return np.asarray(run(jnp.asarray(values, jnp.float32))).astype(np.int64)


def boundary_lams(n: int, d: int) -> np.ndarray:
  return near(1.0 - (np.arange(n + 1, dtype=np.float64) / n) ** d)


@pytest.mark.parametrize(("n", "d"), CASES)
def test_cut_sides_equal_the_float64_reference_at_every_step(n, d):
  lam = boundary_lams(n, d)
  got = sides_of(_box.cut_sizes, lam, n, d)
  want = reference_side(lam, n, d)
  bad = np.nonzero(got != want)[0]
  assert bad.size == 0, [(repr(lam[i]), int(got[i]), int(want[i])) for i in bad[:10]]
  # Away from lam ~ 0 the reference is the exact floor; check it on the cases that matter here.
  for i in np.nonzero(lam > 2.0**-40)[0][:: max(1, lam.size // 3000)]:
    assert got[i] == exact_side(lam[i], n, d, complement=True), repr(lam[i])


@pytest.mark.parametrize(("n", "d"), CASES)
def test_even_sides_equal_torchvision_and_the_official_formula(n, d):
  lam = boundary_lams(n, d)
  got = sides_of(_box.cut_sizes, lam, n, d, sides="even")
  floor = reference_side(lam, n, d)
  np.testing.assert_array_equal(got, 2 * (floor // 2))  # official: cut = int(n * sqrt(1 - lam)), cut // 2 each side
  if d == 2:  # torchvision: r_half = int(0.5 * sqrt(1 - lam) * n)
    halves = np.array([int(0.5 * math.sqrt(1.0 - float(x)) * n) for x in lam])
    np.testing.assert_array_equal(got, 2 * halves)


@pytest.mark.parametrize(("n", "d"), CASES)
def test_box_sides_are_the_exact_floor_at_every_step(n, d):
  fraction = near((np.arange(n + 1, dtype=np.float64) / n) ** d)
  for sides in _box.BOX_SIDES:
    got = sides_of(_box.box_sizes, fraction, n, d, sides=sides)
    want = np.array([exact_side(f, n, d, complement=False) for f in fraction])
    if sides == "even":
      want = 2 * (want // 2)
    bad = np.nonzero(got != want)[0]
    assert bad.size == 0, (sides, [(repr(fraction[i]), int(got[i]), int(want[i])) for i in bad[:10]])


@pytest.mark.parametrize(("n", "d"), CASES)
def test_tiny_lam_follows_the_float64_reference(n, d):
  """Subnormals (flushed to 0 by XLA: side ``n``), and ``lam`` near ``2^-53`` where float64's ``1 - lam``
  rounds to 1 or to the float64 just below (side ``n`` or ``n - 1`` as the reference has it)."""
  powers = [2.0**-j * (1 + i / 8) for j in range(13, 127) for i in range(8)]
  ties = [(q + 0.5) * 2.0**-53 for q in range(8)]
  subnormal = [float(np.float32(2.0**-149)), float(np.float32(2.0**-130)), 0.0]
  lam = near(np.array(powers + ties + subnormal), ulps=2)
  got = sides_of(_box.cut_sizes, lam, n, d)
  want = reference_side(lam, n, d)
  bad = np.nonzero(got != want)[0]
  assert bad.size == 0, [(repr(lam[i]), int(got[i]), int(want[i])) for i in bad[:10]]
  assert set(np.unique(got)) <= {n - 1, n}


def test_random_lams_and_shapes_match_the_reference():
  """Uniform float32 ``lam`` on non-square images: each axis follows its own ``n``."""
  lam = np.random.default_rng(0).uniform(0, 1, 20000).astype(np.float32)
  shape = (224, 160)
  got = np.asarray(jax.jit(jax.vmap(lambda v: _box.cut_sizes(v, shape)))(lam))
  for axis, n in enumerate(shape):
    np.testing.assert_array_equal(got[:, axis], reference_side(lam, n, 2))


def test_sides_choice_is_checked():
  for fn in (_box.box_sizes, _box.cut_sizes):
    with pytest.raises(ValueError, match=r"^sides must be one of \('floor', 'even'\); got 'odd'"):
      fn(0.5, (8, 8), sides="odd")
  with pytest.raises(ValueError, match=r"^sides must be one of"):
    _box.random_box(jax.random.key(0), 0.5, (8, 8), "clip", sides="round")


def test_out_of_range_and_nan():
  shape = (10, 10)
  assert _box.cut_sizes(-0.5, shape).tolist() == [10, 10]
  assert _box.cut_sizes(1.5, shape).tolist() == [0, 0]
  assert _box.cut_sizes(float("nan"), shape).tolist() == [0, 0]
  assert _box.box_sizes(1.5, shape).tolist() == [10, 10]
  assert _box.box_sizes(float("nan"), shape).tolist() == [0, 0]


def test_random_cut_extent_draws_the_start_of_random_box_extent():
  """The same key places the box as ``random_box_extent`` does, for either placement and sides."""
  shape = (12, 9)
  for seed in range(20):
    key = jax.random.key(seed)
    lam = np.float32(0.2 + 0.03 * seed)
    for placement in ("clip", "inside"):
      for sides in _box.BOX_SIDES:
        start, size = _box.random_cut_extent(key, lam, shape, placement, sides=sides)
        start_f, size_f = _box.random_box_extent(key, 1 - lam, shape, placement, sides=sides)
        np.testing.assert_array_equal(size, _box.cut_sizes(lam, shape, sides=sides))
        if np.array_equal(size, size_f):
          np.testing.assert_array_equal(start, start_f)


# -- HMix: the box of area (1 - lam) r, exact for traced lam and r ----------------------------------

HMIX_SHAPES = ((32, 32), (224, 160), (10, 13), (7, 3, 5), (24,))


def exact_scaled_side(lam: np.float32, r: np.float32, n: int, d: int) -> int:
  """``max{s <= n : s^d <= (1 - lam) r n^d}`` in rational arithmetic (XLA flushes subnormals to 0)."""
  from fractions import Fraction

  flush = lambda v: 0.0 if abs(float(v)) < np.finfo(np.float32).tiny else float(v)
  area = (1 - Fraction(flush(lam))) * Fraction(flush(r)) * n**d
  return max(s for s in range(n + 1) if s**d <= area)


def scaled_boundary_cases(shape, count, seed):
  """``(lam, r)`` float32 pairs at and next to side boundaries of ``shape``: ``lam`` one ulp around
  ``1 - s^d / (r n^d)`` for drawn ``r``, ``s``, an axis; and ``r`` around ``s^d / ((1 - lam) n^d)``."""
  rng = np.random.default_rng(seed)
  d, cases = len(shape), []
  for _ in range(count):
    n, s = shape[rng.integers(d)], 0
    s = int(rng.integers(1, n + 1))
    r = np.float32(rng.choice([rng.uniform(0.05, 1.0), 0.5, 0.75, 1.0]))
    lam = np.float32(rng.choice([rng.uniform(), 0.0, 0.5, 1e-30]))
    at_lam, at_r = 1 - s**d / (float(r) * n**d), s**d / ((1 - float(lam)) * n**d)
    for centre, fixed, which in ((at_lam, r, "lam"), (at_r, lam, "r")):
      if 0 <= centre <= 1:
        for v in near(np.array([centre]), ulps=1):
          cases.append((v, fixed) if which == "lam" else (fixed, v))
  return np.array(cases, np.float32)


@pytest.mark.parametrize("shape", HMIX_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_hmix_sides_are_the_exact_floor_for_traced_lam_and_r(shape):
  """``scaled_sizes(lam, r)`` is ``max{s : s^d <= (1 - lam) r n^d}`` exactly, at and one ulp around
  every drawn boundary, in ``lam`` and in ``r`` (seed 31, 120 draws per shape, about 700 cases);
  the float32 product ``(1 - lam) r`` (the sides before) misses some of them (the test's power)."""
  from msda_jax.masks import _scaled_sides

  cases = scaled_boundary_cases(shape, 120, seed=31)
  exact = jax.jit(jax.vmap(lambda lam, r: _scaled_sides.scaled_sizes(lam, r, shape)))
  rounded = jax.jit(jax.vmap(lambda lam, r: _box.box_sizes((1.0 - lam) * r, shape)))
  got, before = np.asarray(exact(cases[:, 0], cases[:, 1])), np.asarray(rounded(cases[:, 0], cases[:, 1]))
  want = np.array([[exact_scaled_side(lam, r, n, len(shape)) for n in shape] for lam, r in cases])
  wrong = np.flatnonzero(np.any(got != want, axis=1))
  assert wrong.size == 0, [(cases[i].tolist(), got[i].tolist(), want[i].tolist()) for i in wrong[:5]]
  assert np.any(before != want), "no case where the float32 product rounds across a side boundary"


def test_hmix_sides_at_the_ends_and_for_invalid_values():
  from msda_jax.masks import _scaled_sides

  sizes = lambda lam, r, shape=(10, 13), sides="floor": _scaled_sides.scaled_sizes(lam, r, shape, sides=sides).tolist()
  assert sizes(0.0, 1.0) == [10, 13] and sizes(1.0, 1.0) == [0, 0] and sizes(0.5, 0.0) == [0, 0]
  assert sizes(0.0, 0.25, (32, 32)) == [16, 16] and sizes(1e-30, 0.25, (32, 32)) == [15, 15]  # a tie, then below it
  assert sizes(-1.0, 2.0) == [10, 13]  # clipped to [0, 1]
  assert sizes(float("nan"), 0.5) == [0, 0] and sizes(0.5, float("nan")) == [0, 0]
  assert sizes(0.0, 0.3, (10,), "even") == [2]  # floor(3.0) = 3, cut as 2
  big = (4096, 4096)  # n^d >= 2^24: the float32 product's sides
  assert sizes(0.5, 0.5, big) == _box.box_sizes(0.25, big).tolist()
