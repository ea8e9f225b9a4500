"""Theorem 1 by autodiff: derivatives, exact vs scalable paths, and the eps-convergence check.

The convergence check follows the notes: with inputs scaled by eps, ``(approx - exact) / eps^2``
must shrink like eps for the general form with every mask law and for the printed form with
Mixup and Bernoulli masks; for box masks the printed form does not shrink.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import msda_jax
from msda_jax.theory import atoms as atoms_lib
from msda_jax.theory import laws
from msda_jax.theory import regularizers as reg
from msda_jax.theory.exact_loss import msda_loss

GRID = (6,)  # a 1-D "image" of 6 pixels with 2 channels: boxes are meaningful, Hessians small.
CHANNELS = 2
EPSILONS = (0.4, 0.2, 0.1, 0.05)


def make_model(seed=0, classes=None):
  """A smooth two-layer tanh network ``[6, 2] -> []`` (or ``-> [K]``), float64 parameters."""
  rng = np.random.default_rng(seed)
  d = GRID[0] * CHANNELS
  w1 = jnp.asarray(rng.normal(size=(d, 8)) / np.sqrt(d))
  w2 = jnp.asarray(rng.normal(size=(8,) if classes is None else (8, classes)))
  c = jnp.asarray(rng.normal(size=(d,)) * 0.5)

  def f(x):
    flat = x.reshape(-1)
    return jnp.tanh(flat @ w1 + 0.3) @ w2 + 0.2 * jnp.sum(c * flat) ** 2 / d

  return f


def make_data(seed=1, m=10, centred=True, classes=None):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(m, *GRID, CHANNELS))
  if centred:
    x = x - x.mean(axis=0)
  if classes is None:
    y = rng.integers(0, 2, m).astype(np.float64)
  else:
    y = np.eye(classes)[rng.integers(0, classes, m)]
  return jnp.asarray(x), jnp.asarray(y)


def finite_difference_hessian(f, x, h=1e-4):
  flat = np.asarray(x, np.float64).reshape(-1)
  d = flat.size
  out = np.zeros((d, d))
  g = lambda z: float(f(jnp.asarray(z.reshape(x.shape))))
  for i in range(d):
    for j in range(d):
      e_i, e_j = np.eye(d)[i] * h, np.eye(d)[j] * h
      out[i, j] = (g(flat + e_i + e_j) - g(flat + e_i - e_j) - g(flat - e_i + e_j) + g(flat - e_i - e_j)) / (4 * h * h)
  return out


def test_input_gradients_and_hessians_match_float64_finite_differences():
  with jax.enable_x64(True):
    f = make_model()
    x, _ = make_data()
    xi = x[0]
    flat_f = lambda z: f(z.reshape(xi.shape))
    grad = np.asarray(jax.grad(flat_f)(xi.reshape(-1)))
    h = 1e-6
    fd_grad = np.array(
      [(flat_f(xi.reshape(-1) + h * e) - flat_f(xi.reshape(-1) - h * e)) / (2 * h) for e in np.eye(12)]
    )
    np.testing.assert_allclose(grad, fd_grad, rtol=1e-6, atol=1e-8)
    hess = np.asarray(jax.hessian(flat_f)(xi.reshape(-1)))
    np.testing.assert_allclose(hess, finite_difference_hessian(f, xi), rtol=1e-4, atol=1e-6)
    # The nested jvp used by the scalable path gives J u and u^T H u.
    u = jnp.asarray(np.random.default_rng(2).normal(size=xi.shape))
    value, slope, curvature = reg.directional_derivatives(f, xi, u)
    np.testing.assert_allclose(float(slope), grad @ np.asarray(u).reshape(-1), rtol=1e-10)
    np.testing.assert_allclose(
      float(curvature), np.asarray(u).reshape(-1) @ hess @ np.asarray(u).reshape(-1), rtol=1e-10
    )
    assert float(value) == pytest.approx(float(f(xi)))


LAWS = {
  "mixup": (msda_jax.Mixup(), lambda: atoms_lib.mixup_atoms(1.0, shape=GRID, num_nodes=24)),
  "bernoulli": (msda_jax.Bernoulli(), lambda: atoms_lib.bernoulli_atoms(1.0, shape=GRID)),
  "cutmix": (msda_jax.CutMix(), lambda: atoms_lib.box_atoms(1.0, shape=GRID, placement="clip")),
}


def exact_coefficients(name, form, label_weight=None):
  """The exact path's coefficients; the general form with the atoms' own (nominal) label weight
  unless ``label_weight`` is given (``swap_law`` samples the realised one by default)."""
  atoms = LAWS[name][1]()
  if form == "general":
    return atoms_lib.swap_coefficients(atoms, label_weight=label_weight)
  return atoms_lib.printed_coefficients(atoms, None, 1.0)


# Mixup's realised weight is its nominal one: its general form is checked once.
SCALABLE_CASES = [
  (name, form, label_weight)
  for name in sorted(LAWS)
  for form, label_weight in [("general", "realised"), ("general", "nominal"), ("printed", None)]
  if not (name == "mixup" and label_weight == "nominal")
]


SAMPLES = 6400  # draws per example
Z_MAX = 4.5  # largest accepted |exact - sampled| in standard errors


@pytest.mark.parametrize("loss", ["binary", "softmax"])
@pytest.mark.parametrize(("name", "form", "label_weight"), SCALABLE_CASES)
def test_scalable_path_agrees_with_exact_path_within_its_standard_error(name, form, label_weight, loss):
  """Seed 3, 10 examples x 6400 draws each: |exact - sampled| < 4.5 standard errors for R1, R2 and
  R3, the paths using the same label weight.

  Under the right law each |z| is about standard normal: 48 comparisons (16 cases x 3 terms) at
  4.5 SE reject one by chance with probability about 48 x 7e-6 = 3e-4 (this seed: all |z| < 2.7).
  Power: the exact path with the other label weight (realised vs nominal) differs from the sampled
  one by more than 4.5 SE in at least one term, so the criterion rejects the wrong weight. The
  gap grows as sqrt(draws): at 400 draws CutMix's wrong weight was only 2 to 2.7 SE away in its
  most separated term (accepted); at 6400 it is 9 to 11 SE away (Bernoulli: 16 to 21 SE).
  """
  with jax.enable_x64(True):
    classes = 3 if loss == "softmax" else None
    f = make_model(classes=classes)
    x, y = make_data(centred=False, classes=classes)
    exact = reg.regularizers_exact(f, x, y, exact_coefficients(name, form, label_weight), form=form, loss=loss)
    method = LAWS[name][0]
    if form == "general":
      law = laws.swap_law(method, 1.0, shape=GRID, label_weight=label_weight)
    else:
      law = laws.printed_law(method, 1.0, shape=GRID)
    sampled = jax.jit(lambda k: reg.regularizers_sampled(k, f, x, y, law, form=form, loss=loss, num_samples=SAMPLES))(
      jax.random.key(3)
    )
    z = {}
    for term in ("r1", "r2", "r3"):
      e, s, se = float(getattr(exact, term)), float(getattr(sampled, term)), float(getattr(sampled, term + "_stderr"))
      assert se > 0
      z[term] = (s - e) / se
      assert abs(e - s) < Z_MAX * se + 1e-9, (
        f"{name} {form} {label_weight} {loss} {term}: exact {e}, sampled {s} +- {se}"
      )
    if form == "general" and name != "mixup":  # Mixup's realised weight is its nominal one
      other = "nominal" if label_weight == "realised" else "realised"
      wrong = reg.regularizers_exact(f, x, y, exact_coefficients(name, form, other), form=form, loss=loss)
      z_wrong = {
        t: (float(getattr(sampled, t)) - float(getattr(wrong, t))) / float(getattr(sampled, t + "_stderr"))
        for t in ("r1", "r2", "r3")
      }
      assert max(abs(v) for v in z_wrong.values()) > Z_MAX, (
        f"{name} {label_weight} {loss}: the {other} weight's exact terms are accepted too (z {z_wrong}; right: {z})"
      )


def gaps(name, form, epsilons=EPSILONS):
  """``|approx - exact| / eps^2`` for each eps, float64."""
  with jax.enable_x64(True):
    f = make_model()
    x0, y = make_data(centred=True)
    atoms = LAWS[name][1]()
    coefficients = exact_coefficients(name, form)
    out = []
    for eps in epsilons:
      x = eps * x0
      exact = float(msda_loss(f, x, y, atoms))
      regs = reg.regularizers_exact(f, x, y, coefficients, form=form)
      approx = float(reg.approximate_msda_loss(f, x, y, regs))
      out.append((approx - exact) / eps**2)
    return np.abs(np.array(out))


@pytest.mark.parametrize(
  ("name", "form"), [(n, "general") for n in sorted(LAWS)] + [("mixup", "printed"), ("bernoulli", "printed")]
)
def test_second_order_gap_shrinks_linearly_in_eps(name, form):
  g = gaps(name, form)
  assert np.all(np.diff(g) < 0), f"{name} {form}: |approx - exact| / eps^2 = {g} must shrink"
  # Linear shrinkage: halving eps roughly halves the scaled gap (ratios in [0.3, 0.7]).
  ratios = g[1:] / g[:-1]
  assert np.all((ratios > 0.3) & (ratios < 0.7)), f"{name} {form}: ratios {ratios} for gaps {g}"


def test_printed_form_does_not_shrink_for_box_masks():
  # For boxes the printed R1 uses E(1 - lam) where the swap law has a non-uniform E[1 - M']: the
  # first-order mismatch makes |approx - exact| / eps^2 grow like 1 / eps once eps is small.
  small = (0.1, 0.05, 0.025, 0.0125)
  printed = gaps("cutmix", "printed", small)
  general = gaps("cutmix", "general", small)
  assert np.all(np.diff(printed) > 0), f"printed form with boxes: scaled gaps {printed} (expected growth)"
  assert np.all(printed[2:] / printed[1:-1] > 1.5), f"printed form with boxes: {printed} should grow like 1/eps"
  assert np.all(np.diff(general) < 0), f"general form with boxes: {general} must shrink"
  assert printed[-1] > 100 * general[-1], f"printed {printed} vs general {general}"


def test_exact_and_printed_coincide_for_mixup_on_centred_data():
  with jax.enable_x64(True):
    f = make_model()
    x, y = make_data(centred=True)
    general = reg.regularizers_exact(f, x, y, exact_coefficients("mixup", "general"), form="general")
    printed = reg.regularizers_exact(f, x, y, exact_coefficients("mixup", "printed"), form="printed")
    np.testing.assert_allclose(np.asarray(general.per_example), np.asarray(printed.per_example), rtol=1e-8, atol=1e-12)


def test_bad_arguments_raise():
  f = make_model()
  x, y = make_data()
  coefficients = exact_coefficients("mixup", "general")
  with pytest.raises(ValueError, match="form"):
    reg.regularizers_exact(f, x, y, coefficients, form="paper")
  with pytest.raises(ValueError, match="loss"):
    reg.regularizers_exact(f, x, y, coefficients, loss="mse")
  with pytest.raises(ValueError, match="num_samples"):
    reg.regularizers_sampled(
      jax.random.key(0), f, x, y, laws.swap_law(msda_jax.Mixup(), 1.0, shape=GRID), num_samples=1
    )
  with pytest.raises(ValueError, match="grid"):
    reg.regularizers_exact(f, x[:, :4], y, coefficients)
