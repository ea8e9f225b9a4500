"""Theorem 3 measured: l2 adversarial losses by projected gradient ascent, set against ``L~``.

Theorem 3 (informal, Section 3): with the logistic loss and a ReLU network, the approximate
MSDA loss ``L~ = L_m + R1 + R2 + R3`` (Eq. 6-7) is at least the adversarial loss under an l2
attack of size ``eps sqrt(d)``,

    L_adv(rho) = (1/m) sum_i max_{||delta||_2 <= rho} l(f(x_i + delta), y_i).

What the text gives, what is derived here, what is assumed and what is measured:

* From the text: the statement above and its proof outline ("defining adversarial loss function
  and using second order Taylor expansion"). ``eps`` is not defined in the text: the full
  statement is deferred to an appendix that the text does not contain. ``d`` is the parameter
  dimension in the paper's notation (``theta`` in ``R^d``); an l2 attack lives in input space,
  so ``d`` is read here as the input dimension ``D`` (pixels x channels of one example).
* Derived (the reading that follows the proof outline, for ``loss="binary"``, ``h = softplus``):
  a ReLU network has ``nabla^2 f = 0`` off its kinks, so R3 = 0 and the second-order expansion
  of the attacked loss, maximised over the ball, is
  ``l_i + |s_i - y_i| ||g_i|| rho + 1/2 s_i (1 - s_i) ||g_i||^2 rho^2`` (``g_i = nabla f(x_i)``,
  ``s_i = sigmoid(f(x_i))``; ``quadratic_adversarial_loss``). With ``b = E[1 - M]`` and
  ``u_i = b * (x_i - mu)`` (``mu = 0`` in the printed form, the data mean in the general one),
  R1's term is ``(y_i - s_i) g_i . u_i`` and R2's term is at least
  ``1/2 s_i (1 - s_i) (g_i . u_i)^2``: the partners' moment is positive semi-definite and
  ``E_M[(g . ((1 - M) * v))^2] >= (g . (b * v))^2`` (Jensen) when ``A - b b^T`` is the
  covariance of ``1 - M``. Both terms dominate the attack's when
  ``rho <= rho_i = (y_i - s_i) g_i . u_i / (|y_i - s_i| ||g_i||)`` (``rho_i = 0`` if that is
  negative). So, when every example has ``(y_i - s_i) g_i . u_i >= 0``, ``L~ >= quadratic
  adversarial loss`` for every ``rho <= min_i rho_i`` = the implied ``eps sqrt(D)``
  (``implied_radius``); when one has not, its R1 term is negative and the reading implies no
  radius (NaN). In the printed form with ``E[M | lam] = lam 1``,
  ``u_i = E_{D~}(1 - lam) x_i``; for a bias-free ReLU network (``f(x) = g . x``) the sign
  condition is that every example is classified correctly, and the factored bound
  ``eps = R c_x E_{D~}(1 - lam)`` (``R = min_i |cos(g_i, x_i)|``, ``c_x = min_i ||x_i|| / sqrt(D)``)
  follows; it is ``product_eps``, never larger than the per-example ``eps``.
* Assumptions: ``nabla^2 f = 0`` (not checked; a smooth network adds R3 and a Hessian term to
  the attack), the coefficients' mean and second moment come from one law
  (``covariance_min_eigenvalue >= 0``; printed box masks whose mean is nominal may break it),
  and the attack's expansion is only second order.
* Measured: the true adversarial loss by l2 projected gradient ascent (``pgd_l2``), a lower
  bound of the maximum (a local ascent finds a feasible point, not necessarily the worst one),
  compared with ``L~`` on a grid of radii (``theorem3_check``) and at the crossing found by
  bisection (``crossing_radius``). Beyond second order the logistic loss along an attack
  towards the decision boundary grows faster than its quadratic, and ReLU kinks bend the
  path, so the measured inequality can fail at the implied radius: it is reported, not assumed.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _validate
from msda_jax.theory import _inputs, losses
from msda_jax.theory import regularizers as regularizers_lib
from msda_jax.theory.regularizers import Coefficients, Regularizers

Model = _inputs.Model
#: The default step of the ascent, ``STEP_SCALE * radius / num_steps``: the path can cross the
#: ball 2.5 times, so it reaches the boundary and can still move along it.
STEP_SCALE = 2.5


class Attack(NamedTuple):
  """The best point found by ``pgd_l2`` for each example.

  Attributes:
    examples: ``[m, *S, C]`` attacked examples, ``||examples_i - x_i||_2 <= radius_i``.
    losses: ``[m]`` their losses ``l(f(examples_i), y_i)``.
  """

  examples: jax.Array
  losses: jax.Array


class ImpliedRadius(NamedTuple):
  """The l2 radius ``eps sqrt(D)`` below which ``L~`` dominates the second-order attack.

  Attributes:
    radius: ``min_i rho_i`` (``inf`` if every gradient is 0); NaN when some example is not
      ``satisfied``: its R1 term is negative, so even ``L~ >= L_m`` (radius 0) can fail and the
      reading implies no radius.
    eps: ``radius / sqrt(D)``, ``D`` the size of one example.
    per_example: ``[m]`` ``rho_i`` (module docstring).
    satisfied: ``[m]`` whether ``(y_i - s_i) g_i . u_i >= 0`` (else ``rho_i = 0``).
    product_eps: ``R c`` with ``R = min_i |cos(g_i, u_i)|``, ``c = min_i ||u_i|| / sqrt(D)``
      (``R c_x E_{D~}(1 - lam)`` in the printed Mixup case), 0 unless every example is satisfied.
    covariance_min_eigenvalue: the smallest eigenvalue of ``A - b b^T`` over the grid; the
      Jensen step needs it ``>= 0`` (up to rounding).
  """

  radius: jax.Array
  eps: jax.Array
  per_example: jax.Array
  satisfied: jax.Array
  product_eps: jax.Array
  covariance_min_eigenvalue: jax.Array


class Theorem3Check(NamedTuple):
  """``L~`` against the measured adversarial loss on a grid of radii.

  Attributes:
    radii: ``[R]`` the grid.
    adversarial: ``[R]`` mean adversarial losses (warm-started along the grid).
    approximate: ``L~ = L_m + R1 + R2 + R3``, a scalar.
    holds: ``[R]`` ``approximate >= adversarial``.
    largest_radius: the largest grid radius up to which (in grid order) it holds at every grid
      radius; NaN if it fails at the first one.
  """

  radii: jax.Array
  adversarial: jax.Array
  approximate: jax.Array
  holds: jax.Array
  largest_radius: jax.Array


class Crossing(NamedTuple):
  """A bracket ``[low, high]`` of the radius where the adversarial loss reaches ``L~``.

  Attributes:
    low: the largest radius found with ``adversarial <= L~``.
    high: the smallest radius found with ``adversarial > L~``.
    bracketed: whether the search interval's ends had opposite signs; if not, ``low = high`` is
      the end at which the search stopped (the interval's lower end if ``L~`` is already below
      the attack there, the upper end if it is never reached).
  """

  low: jax.Array
  high: jax.Array
  bracketed: jax.Array


def _check_radius_value(name: str, value: ArrayLike) -> None:
  if isinstance(value, (str, bytes, bool, np.bool_)):
    raise TypeError(f"{name} must be a number or an array of numbers; got {value!r}.")
  array = _validate.concrete_value(value)
  if array is None:
    return
  bad = array[~(np.isfinite(array) & (array >= 0))].ravel()
  if bad.size:
    raise ValueError(f"{name} must be finite and >= 0 (an l2 radius); got {bad[0].item()!r}.")


def _check_radius(name: str, value: ArrayLike, m: int) -> None:
  _check_radius_value(name, value)
  shape = np.shape(value)
  if shape not in ((), (m,)):
    raise ValueError(f"{name} must be a scalar or one value per example [m] = [{m}]; got shape {shape}.")


def _check_attack(num_steps: int, radius: ArrayLike, step_size: ArrayLike | None, x: ArrayLike, loss: str) -> None:
  losses.check_loss(loss)
  _validate.check_positive_int("num_steps", num_steps)
  shape = np.shape(x)
  m = shape[0] if shape else 0
  _check_radius("radius", radius, m)
  if step_size is not None:
    _check_radius("step_size", step_size, m)


def _float(x: jax.Array) -> jax.Array:
  return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.result_type(float))


def _per_example(f: Model, shape: tuple[int, ...], loss: str):
  """``(z [D], y) -> l(f(z reshaped), y)`` for one flattened example."""
  return lambda z, yi: losses.loss_value(f(z.reshape(shape)), yi, loss)


def _project(delta: jax.Array, radius: jax.Array) -> jax.Array:
  """Each row of ``delta [m, D]`` onto the l2 ball of its ``radius [m]``; 0 stays 0."""
  norm = jnp.linalg.norm(delta, axis=1)
  scale = jnp.where(norm > radius, radius / jnp.where(norm > 0, norm, 1.0), 1.0)
  return delta * scale[:, None]


def _unit(g: jax.Array) -> jax.Array:
  """Rows of ``g [m, D]`` scaled to unit l2 norm; zero rows stay zero (no NaN)."""
  norm = jnp.linalg.norm(g, axis=1, keepdims=True)
  return jnp.where(norm > 0, g / jnp.where(norm > 0, norm, 1.0), 0.0)


def _ascend(one, x: jax.Array, y: jax.Array, radius: jax.Array, step: jax.Array, start: jax.Array, num_steps: int):
  """``num_steps`` normalised-gradient ascent steps with projection; the best iterate per example.

  ``x [m, D]`` flattened examples, ``radius``/``step`` ``[m]``, ``start [m, D]`` inside the ball.
  Every iterate, the start and the last included, is a candidate: ``(best_delta, best_loss)``.
  """
  value_and_grad = jax.vmap(jax.value_and_grad(one))

  def body(_, carry):
    delta, best_delta, best_loss = carry
    value, grad = value_and_grad(x + delta, y)
    better = value > best_loss
    best_delta = jnp.where(better[:, None], delta, best_delta)
    best_loss = jnp.where(better, value, best_loss)
    return _project(delta + step[:, None] * _unit(grad), radius), best_delta, best_loss

  loss_dtype = jax.eval_shape(one, x[0], y[0]).dtype  # a float64 model may attack float32 examples
  init = (start, start, jnp.full(radius.shape, -jnp.inf, loss_dtype))
  delta, best_delta, best_loss = jax.lax.fori_loop(0, num_steps, body, init)
  value = jax.vmap(one)(x + delta, y)
  better = value > best_loss
  return jnp.where(better[:, None], delta, best_delta), jnp.where(better, value, best_loss)


def pgd_l2(
  f: Model,
  x: ArrayLike,
  y: ArrayLike,
  *,
  radius: ArrayLike,
  num_steps: int = 20,
  step_size: ArrayLike | None = None,
  loss: str = "binary",
  key: jax.Array | None = None,
  random_start: bool = False,
) -> Attack:
  """An l2 projected-gradient-ascent attack on the per-example loss ``l(f(x_i + delta), y_i)``.

  ``delta <- P(delta + step * g / ||g||)`` with ``g`` the input gradient of the loss and ``P``
  the projection onto ``{||delta||_2 <= radius}`` of the whole flattened example; a zero
  gradient leaves ``delta`` where it is. The best of the ``num_steps + 1`` iterates (start
  included) is kept, so the loss is at least the clean one. The result is a feasible point,
  hence a lower bound of the maximum. Jit-compatible: ``radius`` and ``step_size`` may be
  traced; traced negative or infinite radii give NaN.

  Args:
    f: model of one example ``[*S, C] -> []`` (binary; ``[1]`` is squeezed) or ``-> [K]`` (softmax).
    x: examples ``[m, *S, C]``.
    y: labels ``[m]`` in [0, 1] (binary) or probability rows ``[m, K]`` (softmax).
    radius: ``>= 0``, a scalar or ``[m]``; 0 returns ``x`` exactly.
    num_steps: static number of ascent steps, ``>= 1``.
    step_size: ``> 0``, a scalar or ``[m]``; default ``2.5 radius / num_steps``.
    loss: ``"binary"`` or ``"softmax"``.
    key: a PRNG key, needed by (and only by) ``random_start``.
    random_start: start from a uniform point of the ball instead of ``x``.

  Returns:
    ``Attack`` with ``examples [m, *S, C]`` and ``losses [m]``.

  Raises:
    ValueError: naming ``loss``, ``num_steps``, ``radius``, ``step_size`` or ``key``, or the
      model's output or the labels (``_inputs.check_model_inputs``).

  >>> f = lambda z: jnp.sum(z)  # a linear logit, ||grad|| = 2
  >>> attack = pgd_l2(f, jnp.zeros((1, 2, 2)), jnp.array([1.0]), radius=0.5)
  >>> round(float(attack.losses[0]), 4)  # softplus(-1): the logit pushed down by 0.5 * 2
  1.3133
  """
  _check_attack(num_steps, radius, step_size, x, loss)
  _validate.check_bool("random_start", random_start)
  if random_start and key is None:
    raise ValueError("key must be a PRNG key when random_start=True (jax.random.key(seed)); got None.")
  if key is not None and not random_start:
    raise ValueError("key is used only with random_start=True; pass random_start=True or drop key.")
  f, x, y = _inputs.check_model_inputs(f, x, y, loss=loss)
  x = _float(x)
  m, shape = x.shape[0], tuple(x.shape[1:])
  flat = x.reshape(m, -1)
  r = jnp.broadcast_to(jnp.asarray(radius, x.dtype), (m,))
  step = STEP_SCALE * r / num_steps if step_size is None else jnp.broadcast_to(jnp.asarray(step_size, x.dtype), (m,))
  start = jnp.zeros_like(flat)
  if random_start:
    assert key is not None
    key_direction, key_length = jax.random.split(key)
    direction = _unit(jax.random.normal(key_direction, flat.shape, x.dtype))
    length = r * jax.random.uniform(key_length, (m,), x.dtype) ** (1.0 / flat.shape[1])
    start = _project(direction * length[:, None], r)
  delta, values = _ascend(_per_example(f, shape, loss), flat, y, r, step, start, num_steps)
  valid = jnp.isfinite(r) & (r >= 0)
  examples = jnp.where(valid[:, None], flat + delta, jnp.nan).reshape(x.shape)
  return Attack(examples, jnp.where(valid, values, jnp.nan))


def adversarial_loss(
  f: Model,
  x: ArrayLike,
  y: ArrayLike,
  *,
  radius: ArrayLike,
  num_steps: int = 20,
  step_size: ArrayLike | None = None,
  loss: str = "binary",
  key: jax.Array | None = None,
  random_start: bool = False,
) -> jax.Array:
  """``(1/m) sum_i max_{||delta||_2 <= radius} l(f(x_i + delta), y_i)`` estimated by ``pgd_l2``.

  A lower bound of the true maximum (the attack returns a feasible point); arguments as in
  ``pgd_l2``. At ``radius = 0`` it is the empirical loss ``L_m``.

  >>> f = lambda z: jnp.sum(z)
  >>> round(float(adversarial_loss(f, jnp.zeros((1, 2, 2)), jnp.array([1.0]), radius=0.0)), 4)  # log 2
  0.6931
  """
  attack = pgd_l2(
    f, x, y, radius=radius, num_steps=num_steps, step_size=step_size, loss=loss, key=key, random_start=random_start
  )
  return jnp.mean(attack.losses)


def robust_accuracy(
  f: Model,
  x: ArrayLike,
  labels: ArrayLike,
  *,
  radius: ArrayLike,
  num_steps: int = 20,
  step_size: ArrayLike | None = None,
) -> jax.Array:
  """The share of examples still classified correctly after ``pgd_l2`` on the softmax loss.

  An upper bound of the true robust accuracy (the attack finds a feasible point, not always the
  worst one). A model returning ``[K]`` logits, integer ``labels`` ``[m]``.

  >>> f = lambda z: jnp.stack([jnp.sum(z), -jnp.sum(z)])  # class 0 iff sum(z) > 0; margin 2 sum(z)
  >>> x = jnp.array([[[0.1]], [[1.0]]])
  >>> float(robust_accuracy(f, x, jnp.array([0, 0]), radius=0.5))  # only the second keeps its class
  0.5
  """
  labels = jnp.asarray(labels)
  if labels.ndim != 1 or not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(f"labels must be integer classes [m]; got shape {labels.shape} and dtype {labels.dtype}.")
  out = jax.eval_shape(f, jax.ShapeDtypeStruct(tuple(np.shape(x)[1:]), jnp.result_type(float)))
  if len(out.shape) != 1:
    raise ValueError(f"robust_accuracy needs a model returning logits [K]; got shape {out.shape}.")
  y = jax.nn.one_hot(labels, out.shape[0], dtype=out.dtype)
  attack = pgd_l2(f, x, y, radius=radius, num_steps=num_steps, step_size=step_size, loss="softmax")
  predicted = jnp.argmax(jax.vmap(f)(attack.examples), axis=-1)
  return jnp.mean((predicted == labels).astype(jnp.float32))


def _binary_only(loss: str) -> None:
  losses.check_loss(loss)
  if loss != "binary":
    raise ValueError(f"loss must be 'binary' here: Theorem 3 is stated for the logistic loss; got {loss!r}.")


def _logit_gradients(f: Model, x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Logits ``[m]`` and input gradients ``[m, D]`` of a binary model."""
  shape = tuple(x.shape[1:])
  one = lambda z: f(z.reshape(shape))
  return jax.vmap(jax.value_and_grad(one))(x.reshape(x.shape[0], -1))


def quadratic_adversarial_loss(
  f: Model, x: ArrayLike, y: ArrayLike, *, radius: ArrayLike, loss: str = "binary"
) -> jax.Array:
  """The maximum over the l2 ball of the attacked loss's second-order expansion, ``nabla^2 f = 0``.

  ``(1/m) sum_i [l_i + |s_i - y_i| ||g_i|| rho + 1/2 s_i (1 - s_i) ||g_i||^2 rho^2]``, ``s_i =
  sigmoid(f(x_i))``: the quantity the proof's reading bounds by ``L~`` (module docstring). For
  a ReLU network it is the expansion inside the linear piece around ``x_i``.

  Args:
    f, x, y: a binary model and its examples and labels, as in ``pgd_l2``.
    radius: ``>= 0``, a scalar or ``[m]``.
    loss: must be ``"binary"``.

  Returns:
    the scalar mean.
  """
  _binary_only(loss)
  _check_radius("radius", radius, np.shape(x)[0] if np.shape(x) else 0)
  f, x, y = _inputs.check_model_inputs(f, x, y, loss=loss)
  x = _float(x)
  logits, grads = _logit_gradients(f, x)
  s = jax.nn.sigmoid(logits)
  norm = jnp.linalg.norm(grads, axis=1)
  rho = jnp.broadcast_to(jnp.asarray(radius, x.dtype), logits.shape)
  value = losses.loss_value(logits, y, loss) + jnp.abs(s - y) * norm * rho + 0.5 * s * (1.0 - s) * (norm * rho) ** 2
  return jnp.mean(value)


def implied_radius(
  f: Model,
  x: ArrayLike,
  y: ArrayLike,
  coefficients: Coefficients,
  *,
  data: ArrayLike | None = None,
  form: str = "general",
  loss: str = "binary",
) -> ImpliedRadius:
  """The attack size ``eps sqrt(D)`` that the proof's reading of Theorem 3 implies (module docstring).

  ``rho_i = (y_i - s_i) g_i . u_i / (|y_i - s_i| ||g_i||)`` clipped at 0, with ``u_i = b * (x_i - mu)``,
  ``b = coefficients.mean`` over the channels, ``mu`` the data mean (``form="general"``) or 0
  (``"printed"``); ``|g_i . u_i| / ||g_i||`` when ``s_i = y_i``, ``inf`` when ``g_i = 0``.

  Args:
    f, x, y: a binary model and its examples and labels, as in ``pgd_l2``.
    coefficients: of the mask law for ``form`` (``swap_coefficients`` or ``printed_coefficients``).
    data: the partners' population ``[n, *S, C]``; defaults to ``x`` (its mean is ``mu``).
    form: ``"general"`` or ``"printed"``, as in ``regularizers_exact``.
    loss: must be ``"binary"``.

  Returns:
    ``ImpliedRadius``.
  """
  _binary_only(loss)
  regularizers_lib._check_form(form)
  regularizers_lib._check_coefficient_form(coefficients, form)
  example = tuple(np.shape(x)[1:])
  grid = regularizers_lib._grid_ndim(coefficients, example)
  f, x, y = _inputs.check_model_inputs(f, x, y, loss=loss)
  x = _float(x)
  flat = x.reshape(x.shape[0], -1)
  data_flat = flat if data is None else jnp.asarray(data, x.dtype).reshape(-1, flat.shape[1])
  mu = jnp.zeros_like(flat[0]) if form == "printed" else jnp.mean(data_flat, axis=0)
  mean = coefficients.mean.reshape(-1).astype(x.dtype)
  b = jnp.repeat(mean, math.prod(example[grid:]))
  logits, grads = _logit_gradients(f, x)
  s = jax.nn.sigmoid(logits)
  u = b[None, :] * (flat - mu[None, :])
  c = jnp.sum(grads * u, axis=1)
  g_norm = jnp.linalg.norm(grads, axis=1)
  safe = jnp.where(g_norm > 0, g_norm, 1.0)
  gap = y - s
  satisfied = gap * c >= 0
  rho = jnp.where(gap == 0, jnp.abs(c), jnp.sign(gap) * c) / safe
  rho = jnp.where(g_norm > 0, jnp.where(satisfied, rho, 0.0), jnp.inf)
  radius = jnp.where(jnp.all(satisfied), jnp.min(rho), jnp.nan)
  d = flat.shape[1]
  u_norm = jnp.linalg.norm(u, axis=1)
  cosine = jnp.where((g_norm > 0) & (u_norm > 0), jnp.abs(c) / (safe * jnp.where(u_norm > 0, u_norm, 1.0)), 1.0)
  product = jnp.where(jnp.all(satisfied), jnp.min(cosine) * jnp.min(u_norm) / math.sqrt(d), 0.0)
  second = coefficients.second.astype(x.dtype)
  covariance = second - jnp.outer(mean, mean)
  min_eigenvalue = jnp.min(jnp.linalg.eigvalsh(0.5 * (covariance + covariance.T)))
  return ImpliedRadius(radius, radius / math.sqrt(d), rho, satisfied, product, min_eigenvalue)


def _approximate(f: Model, x: ArrayLike, y: ArrayLike, approximate: Regularizers | ArrayLike, loss: str) -> jax.Array:
  """``L~`` from ``Regularizers`` of the same examples, or a given scalar."""
  if isinstance(approximate, Regularizers):
    m = np.shape(x)[0] if np.shape(x) else 0
    rows = np.shape(approximate.per_example)
    if not rows or rows[0] != m:
      raise ValueError(
        f"approximate: the regularizers were computed on {rows[0] if rows else 0} examples but x has m = {m}; "
        "compute them on the same examples."
      )
    return regularizers_lib.approximate_msda_loss(f, x, y, approximate, loss=loss)
  if isinstance(approximate, (str, bytes, bool, np.bool_)) or np.shape(approximate) != ():
    raise ValueError(f"approximate must be Regularizers or a scalar L~; got {approximate!r}.")
  return jnp.asarray(approximate)


def theorem3_check(
  f: Model,
  x: ArrayLike,
  y: ArrayLike,
  approximate: Regularizers | ArrayLike,
  *,
  radii: ArrayLike,
  num_steps: int = 20,
  loss: str = "binary",
) -> Theorem3Check:
  """``L~`` against the adversarial loss at each radius of a grid (Theorem 3, measured).

  The attack at each grid radius starts from the previous radius's best point (projected onto
  the new ball), so along an increasing grid the adversarial loss is non-decreasing and
  ``holds`` is a prefix. Steps of ``2.5 radius / num_steps``, no random start.

  Args:
    f, x, y: model, examples and labels, as in ``pgd_l2``.
    approximate: ``Regularizers`` of these examples (``regularizers_exact`` or
      ``regularizers_sampled`` for a method's coefficients), or ``L~`` as a scalar.
    radii: ``[R]`` non-decreasing radii ``>= 0`` (may be traced).
    num_steps: static ascent steps per radius, ``>= 1``.
    loss: ``"binary"`` or ``"softmax"``.

  Returns:
    ``Theorem3Check``.
  """
  losses.check_loss(loss)
  _validate.check_positive_int("num_steps", num_steps)
  _check_radius_value("radii", radii)
  if np.ndim(radii) != 1 or np.shape(radii)[0] < 1:
    raise ValueError(f"radii must be a non-empty 1-D grid [R]; got shape {np.shape(radii)}.")
  values = _validate.concrete_value(radii)
  if values is not None and (np.diff(values) < 0).any():
    raise ValueError(f"radii must be non-decreasing; got {values.tolist()!r}.")
  target = _approximate(f, x, y, approximate, loss)
  f, x, y = _inputs.check_model_inputs(f, x, y, loss=loss)
  x = _float(x)
  m, shape = x.shape[0], tuple(x.shape[1:])
  flat = x.reshape(m, -1)
  one = _per_example(f, shape, loss)
  grid = jnp.asarray(radii, x.dtype)

  def at(delta: jax.Array, radius: jax.Array) -> tuple[jax.Array, jax.Array]:
    r = jnp.broadcast_to(radius, (m,))
    best, values = _ascend(one, flat, y, r, STEP_SCALE * r / num_steps, _project(delta, r), num_steps)
    return best, jnp.mean(values)

  _, adversarial = jax.lax.scan(at, jnp.zeros_like(flat), grid)
  adversarial = jnp.where(jnp.isfinite(grid) & (grid >= 0), adversarial, jnp.nan)
  holds = target >= adversarial
  prefix = jnp.cumprod(holds.astype(jnp.int32)) > 0
  largest = jnp.where(prefix[0], jnp.max(jnp.where(prefix, grid, -jnp.inf)), jnp.nan)
  return Theorem3Check(grid, adversarial, target, holds, largest)


def crossing_radius(
  f: Model,
  x: ArrayLike,
  y: ArrayLike,
  approximate: Regularizers | ArrayLike,
  *,
  high: ArrayLike,
  low: ArrayLike = 0.0,
  num_iterations: int = 30,
  num_steps: int = 20,
  loss: str = "binary",
) -> Crossing:
  """Bisection over the radius for ``adversarial_loss(radius) = L~`` (bounded iterations).

  Assumes the (estimated) adversarial loss grows with the radius; after ``num_iterations``
  halvings ``high - low = (high0 - low0) / 2^num_iterations`` when bracketed. Each evaluation is
  ``adversarial_loss`` with the default step and no random start.

  Args:
    f, x, y: model, examples and labels, as in ``pgd_l2``.
    approximate: ``Regularizers`` of these examples, or ``L~`` as a scalar.
    high: the search interval's upper end, ``> low``.
    low: its lower end, ``>= 0``.
    num_iterations: static number of halvings, ``>= 1``.
    num_steps: static ascent steps per evaluation, ``>= 1``.
    loss: ``"binary"`` or ``"softmax"``.

  Returns:
    ``Crossing``.
  """
  losses.check_loss(loss)
  _validate.check_positive_int("num_iterations", num_iterations)
  _validate.check_positive_int("num_steps", num_steps)
  for name, value in (("low", low), ("high", high)):
    _check_radius_value(name, value)
    if np.shape(value) != ():
      raise ValueError(f"{name} must be a scalar radius; got shape {np.shape(value)}.")
  low_value, high_value = _validate.concrete_value(low), _validate.concrete_value(high)
  if low_value is not None and high_value is not None and not high_value > low_value:
    raise ValueError(f"high must be > low; got low={low_value.item()!r}, high={high_value.item()!r}.")
  target = _approximate(f, x, y, approximate, loss)
  f, x, y = _inputs.check_model_inputs(f, x, y, loss=loss)
  x = _float(x)
  attack = lambda r: adversarial_loss(f, x, y, radius=r, num_steps=num_steps, loss=loss)
  lo, hi = jnp.asarray(low, x.dtype), jnp.asarray(high, x.dtype)
  below_low, below_high = attack(lo) <= target, attack(hi) <= target

  def halve(_, bounds):
    a, b = bounds
    mid = 0.5 * (a + b)
    below = attack(mid) <= target
    return jnp.where(below, mid, a), jnp.where(below, b, mid)

  a, b = jax.lax.fori_loop(0, num_iterations, halve, (lo, hi))
  bracketed = below_low & ~below_high
  end = jnp.where(below_low, hi, lo)
  return Crossing(jnp.where(bracketed, a, end), jnp.where(bracketed, b, end), bracketed)


def quadratic_crossing_radius(
  f: Model, x: ArrayLike, y: ArrayLike, approximate: Regularizers | ArrayLike, *, loss: str = "binary"
) -> jax.Array:
  """The radius where ``quadratic_adversarial_loss`` reaches ``L~``, in closed form.

  With ``B = mean |s_i - y_i| ||g_i||``, ``A = mean s_i (1 - s_i) ||g_i||^2 / 2`` and
  ``C = L~ - L_m``: ``rho = 2 C / (B + sqrt(B^2 + 4 A C))``; ``inf`` when ``A = B = 0 <= C``,
  NaN when ``C < 0`` (no radius, not even 0). At least ``implied_radius(...).radius`` when the
  regularisers and the radius come from the same coefficients and ``nabla^2 f = 0``.
  """
  _binary_only(loss)
  target = _approximate(f, x, y, approximate, loss)
  f, x, y = _inputs.check_model_inputs(f, x, y, loss=loss)
  x = _float(x)
  logits, grads = _logit_gradients(f, x)
  s = jax.nn.sigmoid(logits)
  norm = jnp.linalg.norm(grads, axis=1)
  slope = jnp.mean(jnp.abs(s - y) * norm)
  curve = jnp.mean(0.5 * s * (1.0 - s) * norm**2)
  gain = target - jnp.mean(losses.loss_value(logits, y, loss))
  denominator = slope + jnp.sqrt(slope**2 + 4.0 * curve * jnp.maximum(gain, 0.0))
  rho = jnp.where(denominator > 0, 2.0 * gain / jnp.where(denominator > 0, denominator, 1.0), jnp.inf)
  return jnp.where(gain >= 0, rho, jnp.nan)
