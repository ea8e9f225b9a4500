"""Coefficients a_jk (Eq. 9): closed forms, exact enumeration, Monte Carlo, lam averages, Figure 4 maps.

Statistical tests state their seed and draws; a Monte Carlo estimate passes when every entry is
within ``Z`` standard errors of the exact value plus ``10 / num_draws`` (an entry of true value
``a`` shows no hit in ``N`` draws with probability ``(1 - a)^N``, so tiny entries need the
additive slack). With ``Z = 6`` a correct implementation fails with negligible probability.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

import msda_jax
from msda_jax import theory
from msda_jax.theory import closed_forms, enumeration, lam_average, translation
from msda_jax.theory.laws import fixed_lam_law, msda_law, printed_law

Z = 6.0
SEED = 20220
matrix_map = jax.jit(translation.matrix_translation_map, static_argnames="shape")

BOX_SHAPES = [(9,), (6, 9), (8, 8), (3, 4, 5)]
LAMS = [0.1, 0.37, 0.5, 0.81]


def assert_within_stderr(estimate, stderr, exact, num_draws):
  estimate, stderr, exact = (np.asarray(v, np.float64) for v in (estimate, stderr, exact))
  excess = np.abs(estimate - exact) - (Z * stderr + 10.0 / num_draws)
  assert excess.max() <= 0.0, f"worst excess {excess.max():.3g} at {np.unravel_index(excess.argmax(), excess.shape)}"


def test_every_public_name_imports():
  for name in theory.__all__:
    assert getattr(theory, name) is not None
  assert theory.__all__ == sorted(theory.__all__)


# -- closed forms against exact enumeration (to 1e-6) ---------------------------------------------


@pytest.mark.parametrize("shape", BOX_SHAPES)
@pytest.mark.parametrize("placement", ["inside", "clip"])
def test_cutmix_closed_form_is_exact(shape, placement):
  for lam in LAMS:
    exact = enumeration.box_moments(lam, shape=shape, placement=placement)
    closed = closed_forms.cutmix_coefficients(lam, shape=shape, placement=placement)
    np.testing.assert_allclose(closed, exact.second, atol=1e-6, err_msg=f"lam={lam}")
    np.testing.assert_allclose(np.diagonal(closed), exact.mean, atol=1e-6)


@pytest.mark.parametrize("shape", BOX_SHAPES)
def test_hmix_inside_and_stochastic_closed_forms_are_exact(shape):
  for lam, r in [(0.1, 0.5), (0.37, 0.75), (0.5, 0.5), (0.81, 1.0), (0.6, 0.0)]:
    exact = enumeration.box_moments(lam, shape=shape, family="hmix", placement="inside", r=r)
    np.testing.assert_allclose(closed_forms.hmix_coefficients(lam, shape=shape, r=r), exact.second, atol=1e-6)
    assert exact.mean.mean() == pytest.approx(1.0 - lam, abs=1e-12)  # the image mean of M is lam exactly
    cutmix = enumeration.box_moments(lam, shape=shape, placement="clip").second
    stochastic = closed_forms.stochastic_coefficients(lam, shape=shape, q=0.3, placement="clip")
    np.testing.assert_allclose(stochastic, 0.3 * (1.0 - lam) ** 2 + 0.7 * cutmix, atol=1e-6)


def test_hmix_limits_and_clip_mean():
  shape = (6, 9)
  np.testing.assert_allclose(closed_forms.hmix_coefficients(0.4, shape=shape, r=0.0), 0.36, atol=1e-7)
  # r = 1 is CutMix when the floored box has the nominal area 1 - lam (4 x 4 of 8 x 8 at lam = 0.75);
  # otherwise HMix still mixes outside the box, so that E M = lam.
  np.testing.assert_allclose(
    closed_forms.hmix_coefficients(0.75, shape=(8, 8), r=1.0),
    closed_forms.cutmix_coefficients(0.75, shape=(8, 8), placement="inside"),
    atol=1e-7,
  )
  assert float(closed_forms.hmix_inside_parts(0.4, shape=shape, r=1.0).outside) > 0.2  # 4 x 6 box: A = 0.44 < 0.6
  # With clipping the outside weight follows the realised area: E M = lam still holds per position.
  masks = enumeration.box_masks(0.3, shape=shape, family="hmix", placement="clip", r=0.5)
  np.testing.assert_allclose(masks.reshape(len(masks), -1).mean(1), 0.3, atol=1e-12)


def test_bernoulli_and_mixup_closed_forms():
  a = closed_forms.bernoulli_coefficients(0.3, shape=(2, 3))
  np.testing.assert_allclose(np.diagonal(a), 0.7, atol=1e-7)
  np.testing.assert_allclose(a[0, 1], 0.49, atol=1e-7)
  np.testing.assert_allclose(closed_forms.mixup_coefficients(0.3, shape=(2, 3)), 0.49, atol=1e-7)


def test_eq10_as_printed_differs_from_the_exact_count():
  n = 10
  for lam in [0.19, 0.5, 0.75]:
    printed = np.asarray(closed_forms.eq10_printed_coefficients(lam, n=n), np.float64)
    exact = enumeration.box_moments(lam, shape=(n, n), placement="inside").second
    side = int(enumeration.box_sides(lam, shape=(n, n))[0])
    # Eq. (10) is the law of a box whose start avoids 0 on each axis, normalised by (n - s)^2.
    starts = np.stack(np.meshgrid(np.arange(n - side + 1), np.arange(n - side + 1), indexing="ij"), -1).reshape(-1, 2)
    masks = enumeration.box_masks(lam, shape=(n, n), placement="inside")[(starts >= 1).all(1)]
    np.testing.assert_allclose(printed, enumeration.enumerated_moments(masks).second, atol=1e-6)
    # Where it differs: a corner pixel is never covered in Eq. (10) ...
    assert printed[0, 0] == 0.0 and exact[0, 0] == pytest.approx(1.0 / (n - side + 1) ** 2)
    # ... and away from the first s rows and columns it is too large by ((n - s + 1) / (n - s))^2.
    far = np.ravel_multi_index((side, side), (n, n))
    ratio = printed[far, far] / exact[far, far]
    assert ratio == pytest.approx(((n - side + 1) / (n - side)) ** 2, rel=1e-6)
    difference = closed_forms.eq10_difference(lam, n=n)
    assert float(difference.max_abs_difference) == pytest.approx(np.abs(printed - exact).max(), abs=1e-6)
    assert float(difference.max_abs_difference) > 0.05
    # Both put the same total mass on the diagonal (the mean box area).
    assert np.trace(printed) == pytest.approx(np.trace(exact), rel=1e-5)


@pytest.mark.parametrize(
  "shape, lam, scale, symmetric, margin",
  [
    ((28, 36), 0.98, "code", False, 9),
    ((28, 36), 0.98, "text", False, 12),
    ((28, 36), 0.02, "code", True, 9),
    ((28, 36), 0.99, "text", True, 9),
    ((12, 14, 16), 0.99, "code", False, 5),
    ((40,), 0.85, "code", False, 12),
  ],
)
def test_gmix_plane_form_matches_enumeration_away_from_the_border(shape, lam, scale, symmetric, margin):
  exact = enumeration.enumerated_moments(enumeration.gmix_masks(lam, shape=shape, scale=scale, symmetric=symmetric))
  interior = np.ones(shape, bool)
  for axis, n in enumerate(shape):
    keep = (np.arange(n) >= margin) & (np.arange(n) < n - margin)
    interior &= keep.reshape([n if k == axis else 1 for k in range(len(shape))])
  index = np.flatnonzero(interior)
  plane = closed_forms.gmix_plane_coefficients(lam, shape=shape, scale=scale, symmetric=symmetric)
  np.testing.assert_allclose(np.asarray(plane)[np.ix_(index, index)], exact.second[np.ix_(index, index)], atol=2e-6)
  mean = closed_forms.gmix_plane_mean(lam, shape=shape, scale=scale, symmetric=symmetric)
  np.testing.assert_allclose(exact.mean[index], mean, atol=2e-6)


def test_gmix_text_scale_is_eq11_and_code_scale_its_own_derivation():
  n, lam = 64, 0.6
  distance = jnp.array([0.0, 9.0, 100.0])
  text = closed_forms.gmix_plane_kernel(lam, distance, shape=(n, n), scale="text", symmetric=False)
  eq11 = (1 - lam) * np.exp(-math.pi * np.asarray(distance) / 4.0 / ((1 - lam) * n**2))
  np.testing.assert_allclose(text, eq11, rtol=1e-6)
  code = closed_forms.gmix_plane_kernel(lam, distance, shape=(n, n), scale="code", symmetric=False)
  derived = (1 - lam) / 2 * np.exp(-math.pi * np.asarray(distance) / (2.0 * (1 - lam) * n**2))
  np.testing.assert_allclose(code, derived, rtol=1e-6)
  text_mean = closed_forms.gmix_plane_mean(lam, shape=(n, n), scale="text", symmetric=False)
  assert float(text_mean) == pytest.approx(2 * (1 - lam), rel=1e-6)  # the text form's mean is 2 (1 - lam)


# -- Monte Carlo against exact values ---------------------------------------------------------------


def crop(law, region):
  def cropped(key):
    lam, mask = law(key)
    return lam, mask[region]

  return cropped


MC_DRAWS = 20_000
MC_SHAPE = (5, 7)


MC_LAM = 0.4
MIXUP_MEAN = np.full(math.prod(MC_SHAPE), 1.0 - MC_LAM)


@pytest.mark.parametrize(
  "method, mean, second",
  [
    (msda_jax.Mixup(), MIXUP_MEAN, closed_forms.mixup_coefficients(MC_LAM, shape=MC_SHAPE)),
    (msda_jax.Bernoulli(), MIXUP_MEAN, closed_forms.bernoulli_coefficients(MC_LAM, shape=MC_SHAPE)),
    (msda_jax.CutMix(placement="clip"), *enumeration.box_moments(MC_LAM, shape=MC_SHAPE)[:2]),
    (
      msda_jax.CutMix(placement="inside"),
      None,
      closed_forms.cutmix_coefficients(MC_LAM, shape=MC_SHAPE, placement="inside"),
    ),
    (
      msda_jax.StochasticMixupCutMix(q=0.5),
      None,
      closed_forms.stochastic_coefficients(MC_LAM, shape=MC_SHAPE, q=0.5),
    ),
    (
      msda_jax.HMix(r=0.5, placement="clip"),
      *enumeration.box_moments(MC_LAM, shape=MC_SHAPE, family="hmix", r=0.5)[:2],
    ),
    (
      msda_jax.HMix(r=0.75, placement="inside"),
      *enumeration.box_moments(MC_LAM, shape=MC_SHAPE, family="hmix", placement="inside", r=0.75)[:2],
    ),
  ],
  ids=["mixup", "bernoulli", "cutmix_clip", "cutmix_inside", "stochastic", "hmix_clip", "hmix_inside"],
)
def test_monte_carlo_matches_exact(method, mean, second):
  law = fixed_lam_law(method, MC_LAM, shape=MC_SHAPE)
  moments = theory.mask_moments(jax.random.key(SEED), law, num_draws=MC_DRAWS, chunk_size=2000)
  assert_within_stderr(moments.second, moments.second_stderr, second, MC_DRAWS)
  if mean is not None:
    assert_within_stderr(moments.mean, moments.mean_stderr, mean, MC_DRAWS)


@pytest.mark.parametrize("lam, scale, symmetric", [(0.97, "code", True), (0.985, "text", False), (0.03, "code", True)])
def test_gmix_monte_carlo_matches_plane_form_away_from_the_border(lam, scale, symmetric):
  shape, region = (24, 24), (slice(8, 16), slice(8, 16))
  law = crop(fixed_lam_law(msda_jax.GMix(scale=scale, symmetric=symmetric), lam, shape=shape), region)
  moments = theory.mask_moments(jax.random.key(SEED), law, num_draws=MC_DRAWS, chunk_size=2000)
  coords = np.stack(np.meshgrid(np.arange(8), np.arange(8), indexing="ij"), -1).reshape(-1, 2)
  squared = ((coords[:, None] - coords[None]) ** 2).sum(-1)
  plane = closed_forms.gmix_plane_kernel(lam, squared, shape=shape, scale=scale, symmetric=symmetric)
  assert_within_stderr(moments.second, moments.second_stderr, plane, MC_DRAWS)


# -- translation maps (Figure 4) ---------------------------------------------------------------------


def test_fft_translation_map_equals_brute_force_on_the_same_draws():
  shape = (5, 7)
  law = fixed_lam_law(msda_jax.HMix(r=0.5), 0.45, shape=shape)
  key = jax.random.key(SEED)
  sampled = theory.translation_map_monte_carlo(key, law, num_draws=128, chunk_size=64)
  moments = theory.mask_moments(key, law, num_draws=128, chunk_size=64)
  np.testing.assert_allclose(sampled.mean, matrix_map(moments.second, shape=shape), atol=1e-5)
  assert sampled.mean.shape == (9, 13)


@pytest.mark.parametrize("shape", [(9,), (6, 9), (3, 4, 5)])
def test_exact_translation_maps_equal_brute_force(shape):
  for fast, matrix in jax.jit(exact_map_pairs, static_argnames="shape")(0.37, shape=shape):
    np.testing.assert_allclose(fast, matrix_map(matrix, shape=shape), atol=1e-6)
  masks = enumeration.box_masks(0.37, shape=shape, family="hmix", placement="clip", r=0.6)
  np.testing.assert_allclose(
    translation.translation_map_of_masks(masks, chunk_size=7),
    matrix_map(enumeration.enumerated_moments(masks).second, shape=shape),
    atol=1e-6,
  )


def exact_map_pairs(lam, *, shape):
  return [
    (translation.mixup_translation_map(lam, shape=shape), closed_forms.mixup_coefficients(lam, shape=shape)),
    (translation.cutmix_translation_map(lam, shape=shape), closed_forms.cutmix_coefficients(lam, shape=shape)),
    (
      translation.cutmix_translation_map(lam, shape=shape, placement="inside"),
      closed_forms.cutmix_coefficients(lam, shape=shape, placement="inside"),
    ),
    (
      translation.stochastic_translation_map(lam, shape=shape, q=0.3),
      closed_forms.stochastic_coefficients(lam, shape=shape, q=0.3),
    ),
    (
      translation.hmix_translation_map(lam, shape=shape, r=0.6),
      closed_forms.hmix_coefficients(lam, shape=shape, r=0.6),
    ),
    (
      translation.gmix_plane_translation_map(0.3, shape=shape, scale="text"),
      closed_forms.gmix_plane_coefficients(0.3, shape=shape, scale="text"),
    ),
  ]


def test_translation_map_monte_carlo_matches_closed_form():
  shape = (16, 16)
  law = fixed_lam_law(msda_jax.CutMix(), 0.5, shape=shape)
  sampled = theory.translation_map_monte_carlo(jax.random.key(SEED), law, num_draws=2000, chunk_size=500)
  exact = translation.cutmix_translation_map(0.5, shape=shape)
  assert_within_stderr(sampled.mean, sampled.stderr, exact, 2000)
  centre = np.asarray(exact)[15]
  assert centre.argmax() == 15 and np.all(np.diff(centre[15:]) <= 1e-7)  # peaked at p = 0, decaying


# -- lam averages --------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, alpha, beta", [(1, 0.0, 0.0), (5, -0.5, 0.5), (12, 2.0, 0.3), (40, -0.7, -0.7)])
def test_gauss_jacobi_matches_scipy(n, alpha, beta):
  nodes, weights = lam_average.gauss_jacobi(n, alpha, beta)
  ref_nodes, ref_weights = scipy.special.roots_jacobi(n, alpha, beta)
  np.testing.assert_allclose(nodes, ref_nodes, atol=1e-12)
  np.testing.assert_allclose(weights, ref_weights, rtol=1e-10)


def test_lam_quadrature_integrates_beta_and_d_tilde_moments():
  a, b = 0.7, 1.6
  lam, w = lam_average.lam_quadrature(8, a, b)
  for k in range(1, 10):
    assert w @ lam**k == pytest.approx(scipy.stats.beta(a, b).moment(k), rel=1e-10)
  lam, w = lam_average.lam_quadrature(8, a, b, law="d_tilde")
  assert w.sum() == pytest.approx(1.0)
  assert w @ (1 - lam) == pytest.approx(float(msda_jax.lam_laws.d_tilde_mean_one_minus_lam(a, b)), rel=1e-6)
  mixup = lambda t: closed_forms.mixup_coefficients(t, shape=(1,))
  second = scipy.stats.beta(a + 1, b).moment(2) * a / (a + b) + scipy.stats.beta(b + 1, a).moment(2) * b / (a + b)
  expected = 1 - 2 * (1 - w @ (1 - lam)) + second
  assert float(lam_average.average_smooth(mixup, a, b, law="d_tilde")[0, 0]) == pytest.approx(expected, rel=1e-5)


def test_interval_moments_match_scipy():
  edges = jnp.array([0.0, 0.1, 0.35, 0.35, 0.8, 1.0])
  for law in ["beta", "d_tilde"]:
    got = np.asarray(lam_average.interval_moments(edges, 0.8, 1.7, law=law, order=3))
    components = [(1.0, 0.8, 1.7)] if law == "beta" else [(0.8 / 2.5, 1.8, 1.7), (1.7 / 2.5, 2.7, 0.8)]
    want = np.zeros_like(got)
    for weight, p, q in components:
      for k in range(3):
        scale = math.exp(scipy.special.betaln(p + k, q) - scipy.special.betaln(p, q))
        want[k] += weight * scale * np.diff(scipy.special.betainc(p + k, q, np.asarray(edges, np.float64)))
    np.testing.assert_allclose(got, want, atol=3e-6)


def test_lam_terms_reassemble_the_coefficients():
  shape, lam = (6, 9), 0.43
  powers = jnp.array([1.0, lam, lam**2])
  hmix = jnp.tensordot(powers, lam_average.hmix_lam_terms(lam, shape=shape, r=0.7), axes=1)
  np.testing.assert_allclose(hmix, closed_forms.hmix_coefficients(lam, shape=shape, r=0.7), atol=1e-6)
  stochastic = jnp.tensordot(powers, lam_average.stochastic_lam_terms(lam, shape=shape, q=0.2), axes=1)
  np.testing.assert_allclose(stochastic, closed_forms.stochastic_coefficients(lam, shape=shape, q=0.2), atol=1e-6)


def test_exact_lam_average_matches_a_fine_midpoint_rule():
  shape, a, b, cells = (6, 6), 2.0, 3.0, 20_000
  lams = (np.arange(cells) + 0.5) / cells
  density = (a * scipy.stats.beta(a + 1, b).pdf(lams) + b * scipy.stats.beta(b + 1, a).pdf(lams)) / (a + b)
  values = jax.lax.map(
    lambda t: closed_forms.stochastic_coefficients(t, shape=shape, q=0.3),
    jnp.asarray(lams, jnp.float32),
    batch_size=2000,
  )
  riemann = np.tensordot(density / cells, np.asarray(values, np.float64), axes=1)
  edges = lam_average.box_lam_edges(shape=shape)
  exact = lam_average.average_piecewise(
    lambda t: lam_average.stochastic_lam_terms(t, shape=shape, q=0.3), a, b, edges=edges, law="d_tilde"
  )
  np.testing.assert_allclose(exact, riemann, atol=2e-5)  # the midpoint rule errs by O(1 / cells) at each jump


LAM_DRAWS = 10_000  # Beta draws are the slow part


@pytest.mark.parametrize(
  "name, method, terms, r, law",
  [
    ("cutmix_inside", msda_jax.CutMix(placement="inside"), "cutmix", 1.0, "beta"),
    ("stochastic", msda_jax.StochasticMixupCutMix(q=0.5), "stochastic", 1.0, "d_tilde"),
    ("hmix_inside", msda_jax.HMix(r=0.6, placement="inside"), "hmix", 0.6, "d_tilde"),
  ],
)
def test_exact_lam_average_matches_monte_carlo_over_lam(name, method, terms, r, law):
  shape, a, b = (5, 6), 0.8, 1.3
  term_fns = {
    "cutmix": lambda t: lam_average.cutmix_lam_terms(t, shape=shape, placement="inside"),
    "stochastic": lambda t: lam_average.stochastic_lam_terms(t, shape=shape, q=0.5),
    "hmix": lambda t: lam_average.hmix_lam_terms(t, shape=shape, r=r),
  }
  edges = lam_average.box_lam_edges(shape=shape, r=r)
  exact = lam_average.average_piecewise(term_fns[terms], a, b, edges=edges, law=law)
  law_fn = (msda_law if law == "beta" else printed_law)(method, a, b, shape=shape)
  sampled = theory.mask_moments(jax.random.key(SEED), law_fn, num_draws=LAM_DRAWS, chunk_size=2000)
  assert_within_stderr(sampled.second, sampled.second_stderr, exact, LAM_DRAWS)


def test_closed_forms_and_averages_do_not_recompile_for_new_values():
  traces = []

  @jax.jit
  def coefficient(lam, q, a):
    traces.append(None)
    edges = lam_average.box_lam_edges(shape=(4, 5), r=0.5)
    average = lam_average.average_piecewise(
      lambda t: lam_average.hmix_lam_terms(t, shape=(4, 5), r=0.5), a, edges=edges
    )
    return translation.stochastic_translation_map(lam, shape=(4, 5), q=q), average

  for lam, q, a in [(0.2, 0.5, 1.0), (0.7, 0.1, 0.4)]:
    jax.block_until_ready(coefficient(lam, q, a))
  assert len(traces) == 1


def test_distance_profile_of_a_hand_made_map():
  """A 2 x 2 grid's 3 x 3 map: distance 0 the centre, 1 the four axis neighbours, 1.41 -> 1 the corners."""
  values = np.array([[1.0, 2.0, 3.0], [4.0, 10.0, 6.0], [7.0, 8.0, 9.0]])
  distances, means = theory.distance_profile(values)
  assert distances.tolist() == [0, 1]
  assert means.tolist() == [10.0, (2 + 4 + 6 + 8 + 1 + 3 + 7 + 9) / 8]
  _, maxima = theory.distance_profile(values, reduce="max")
  assert maxima.tolist() == [10.0, 9.0]
  flat = theory.distance_profile(np.asarray(theory.mixup_translation_map(0.3, shape=(5, 5))))[1]
  np.testing.assert_allclose(flat, 0.49, rtol=1e-6)  # Mixup's map is (1 - lam)^2 at every offset
  with pytest.raises(ValueError, match="odd"):
    theory.distance_profile(np.zeros((4, 4)))
