"""Theorem 1's regularisers R1, R2, R3 by autodiff: exact and scalable paths.

For an example ``x`` (``[*S, C]``, masks over the spatial grid ``S`` and shared by the
channels) with label ``y``, a partner ``r`` drawn uniformly from the data and a mask law
``(lam, M)``, the MSDA loss expands around ``x`` with ``delta = (1 - M) * (r - x)``:

``l(x + delta) ~ l(x) + (h'(f) - y) J delta + 1/2 (J delta)^T h''(f) (J delta)
+ 1/2 (h'(f) - y) delta^T (nabla^2 f) delta``

whose expectations are, per example, R1 (first order), R2 (gradient term ``G`` of Eq. 8) and
R3 (Hessian term ``H`` of Eq. 8), with ``E[delta] = b * (mu - x)``, ``b = E[1 - M]`` and
``E[delta delta^T] = A * E_r[(r - x)(r - x)^T]``, ``A_jk = E[(1 - M_j)(1 - M_k)]`` (Eq. 9)
expanded over channels.

Two forms (``form=``):

* ``"printed"``: Theorem 1 exactly as printed (Eq. 7-8): ``lam ~ D~``, ``M ~ M(lam)``,
  ``b = E_{D~}(1 - lam) 1`` and the data mean taken as 0 (``E r = 0``), so
  ``E_r[(r - x)(r - x)^T]`` becomes ``E[r r^T] + x x^T``;
* ``"general"``: the expansion that is exact to second order for any mask law: ``(lam, M)``
  from the swap law (``msda_jax.theory.laws.swap_law``) and the data mean kept. It reduces to
  the printed form for centred data and swap-symmetric masks with ``E[M | lam] = lam 1``.

Two paths that agree: ``regularizers_exact`` forms the input gradient and Hessian
(``jax.jacfwd``/``jax.hessian``, small inputs only) and contracts them with the coefficient
matrix; ``regularizers_sampled`` never forms a ``d x d`` matrix: it samples masks and partners
and evaluates ``J u`` and ``u^T nabla^2 f u`` by one nested ``jax.jvp`` (a Hessian-vector
product along ``u``), giving unbiased estimates with standard errors.

The label weight. The derivation holds for any weight ``w`` of the first image's label: the
own branch of the swap law carries ``w`` and the swapped one ``1 - w``, so the realised objective
that ``mix_batch`` trains (``w = mean(M)``) has the same R1-R3 with its own coefficients
(``swap_coefficients`` of realised atoms, ``method_coefficients``, ``swap_law(label_weight=
"realised")``, the default for a library method). The printed form is nominal by derivation.

R3 and piecewise-linear networks. R3 contracts the input Hessian ``nabla^2 f``. A ReLU network
(ReLU, max-pooling, linear layers) is piecewise linear in its input, so its Hessian is 0 almost
everywhere and R3 is exactly 0 (``jax.hessian`` and the nested ``jvp`` return 0 off the kinks).
Study R3 with a smooth network: softplus or GELU activations (``SmallCNN(activation="softplus")``
in ``msda_jax.train.models``).

Every entry point checks the model's output and the labels first (``_inputs.check_model_inputs``):
binary models return one logit ``[]`` (``[1]`` is squeezed) and labels are ``[m]`` in [0, 1];
softmax models return ``[K]`` and labels are probability rows ``[m, K]`` (one-hot encode class
indices with ``jax.nn.one_hot``). Shapes are checked at trace time, label values when concrete.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _validate
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.theory import _compiled, _inputs, laws, losses
from msda_jax.theory.laws import MaskLaw

FORMS = ("printed", "general")
Model = _inputs.Model


class Regularizers(NamedTuple):
  """R1, R2, R3 of Theorem 1 (Eq. 7) averaged over the examples, with standard errors.

  Standard errors are 0 for the exact path. ``per_example`` holds ``[m, 3]`` values.
  """

  r1: jax.Array
  r2: jax.Array
  r3: jax.Array
  r1_stderr: jax.Array
  r2_stderr: jax.Array
  r3_stderr: jax.Array
  per_example: jax.Array

  @property
  def total(self) -> jax.Array:
    """``R1 + R2 + R3``."""
    return self.r1 + self.r2 + self.r3


@pytree_dataclass
class Coefficients:
  """Mask coefficients: ``mean = E[1 - M]`` and ``second = E[(1 - M)(1 - M)^T]`` (Eq. 9).

  Attributes:
    mean: ``[*S]`` over the spatial grid, or flat ``[d]`` in row-major order (the layout of
      ``MaskMoments``); either is read against the examples' shape.
    second: ``[d, d]``.
    form: static, the form they were built for: ``"general"`` (the swap law, ``swap_coefficients``),
      ``"printed"`` (the D~ law, ``printed_coefficients``) or ``None`` (not recorded: any form).
    label_weight: static ``"realised"``, ``"nominal"`` or ``None`` (not recorded).
    beta: static ``(a, b)`` of the ``lam`` law, or ``None``.
  """

  mean: jax.Array
  second: jax.Array
  form: str | None = static_field(default=None)
  label_weight: str | None = static_field(default=None)
  beta: tuple[float, float] | None = static_field(default=None)

  @classmethod
  def from_moments(cls, moments: Any, *, form: str | None = None) -> Coefficients:
    """From ``MaskMoments`` or ``ExactMoments`` (flat ``[d]`` mean and ``[d, d]`` second moment).

    ``mask_moments`` of a ``swap_law`` gives ``form="general"`` coefficients, of a ``printed_law``
    the printed form's second moment (its mean is then ``printed_mean``).
    """
    if form is not None:
      _check_form(form)
    return cls(jnp.asarray(moments.mean), jnp.asarray(moments.second), form=form)


def _check_form(form: str) -> None:
  _validate.check_choice("form", form, FORMS)


def _grid_ndim(coefficients: Coefficients, example_shape: tuple[int, ...]) -> int:
  """The number of leading example axes the coefficients' grid covers; raises if none fits.

  A ``[*S]`` mean must be a prefix of the example's shape; a flat ``[d]`` mean fits the first
  ``k`` axes with ``prod(example_shape[:k]) = d`` (every such ``k`` flattens alike, row-major).
  """
  spatial = tuple(coefficients.mean.shape)
  if _validate.looks_channel_last(spatial):
    raise ValueError(
      f"coefficients are over the grid {spatial}, which ends with what looks like a channel axis: build them over "
      f"the spatial grid of the examples [*S, C] (shape=x.shape[1:-1], here {spatial[:-1]})."
    )
  d = math.prod(spatial)
  if coefficients.second.shape != (d, d):
    raise ValueError(f"coefficients.second must be [{d}, {d}] for the grid {spatial}; got {coefficients.second.shape}.")
  if example_shape[: len(spatial)] == spatial:
    return len(spatial)
  if len(spatial) == 1:
    for k in range(1, len(example_shape) + 1):
      if math.prod(example_shape[:k]) == d:
        return k
  raise ValueError(
    f"coefficients are over the grid {spatial} (d = {d}) but examples have shape {example_shape}: the mean must be "
    "the example's leading axes [*S] or flat [d] with d their product."
  )


def _check_grid(coefficients: Coefficients, example_shape: tuple[int, ...]) -> None:
  """Raises unless the coefficients are over the examples' spatial grid (checked before the model)."""
  _grid_ndim(coefficients, example_shape)


def _check_coefficient_form(coefficients: Coefficients, form: str) -> None:
  recorded = getattr(coefficients, "form", None)
  if recorded is not None and recorded != form:
    builder = "swap_coefficients" if recorded == "general" else "printed_coefficients"
    raise ValueError(
      f"coefficients were built for form={recorded!r} ({builder}) but form={form!r} was asked; build them for "
      f"form={form!r} ({'swap_coefficients' if form == 'general' else 'printed_coefficients'})."
    )


def _expand_channels(coefficients: Coefficients, example_shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
  """``b`` and ``A`` over the flattened input ``[D]`` (pixels x channels)."""
  grid = _grid_ndim(coefficients, example_shape)
  channels = math.prod(example_shape[grid:])
  b = jnp.repeat(coefficients.mean.reshape(-1), channels)
  a = jnp.kron(coefficients.second, jnp.ones((channels, channels), coefficients.second.dtype))
  return b, a


def regularizers_exact(
  f: Model,
  x: ArrayLike,
  y: ArrayLike,
  coefficients: Coefficients,
  *,
  data: ArrayLike | None = None,
  form: str = "general",
  loss: str = "binary",
) -> Regularizers:
  """R1, R2, R3 from the full input gradient and Hessian (small inputs).

  Args:
    f: model of one example ``[*S, C] -> []`` (binary; ``[1]`` is squeezed) or ``-> [K]`` (softmax).
    x: examples ``[m, *S, C]`` at which the regularisers are evaluated.
    y: labels ``[m]`` in [0, 1] (binary; ``[m, 1]`` is squeezed) or probability rows ``[m, K]``
      (softmax; not class indices).
    coefficients: ``E[1 - M]`` and ``E[(1 - M)(1 - M)^T]`` under the law of ``form``
      (``printed``: the D~ law with ``mean = E_{D~}(1 - lam)``; ``general``: the swap law).
    data: the partners' population ``[n, *S, C]``; defaults to ``x``.
    form: ``"printed"`` (data mean taken as 0) or ``"general"`` (data mean kept).
    loss: ``"binary"`` or ``"softmax"``.

  Returns:
    ``Regularizers`` with zero standard errors.

  Raises:
    ValueError: for a bad ``form`` or ``loss``, a model output or labels that do not fit ``loss``
      (see the module docstring), or coefficients over another grid.
  """
  _check_form(form)
  losses.check_loss(loss)
  _check_coefficient_form(coefficients, form)
  _check_grid(coefficients, tuple(jnp.shape(x)[1:]))
  f, x, y = _inputs.check_model_inputs(f, x, y, loss=loss)
  data = x if data is None else jnp.asarray(data)
  b, a = _expand_channels(coefficients, tuple(x.shape[1:]))
  # One compiled program, kept per model (eagerly, every batched primitive would be compiled alone).
  per_example = _compiled.call(_exact_terms, (f, form, loss), x, y, data, b, a)
  means = jnp.mean(per_example, axis=0)
  zero = jnp.zeros((), means.dtype)
  return Regularizers(means[0], means[1], means[2], zero, zero, zero, per_example)


def _exact_terms(
  f: Model, form: str, loss: str, x: jax.Array, y: jax.Array, data: jax.Array, b: jax.Array, a: jax.Array
) -> jax.Array:
  """Per-example ``[R1, R2, R3]`` terms ``[m, 3]`` of ``regularizers_exact`` (its inputs checked)."""
  flat_data = data.reshape(data.shape[0], -1)
  second_data = flat_data.T @ flat_data / flat_data.shape[0]
  mu = jnp.zeros_like(flat_data[0]) if form == "printed" else jnp.mean(flat_data, axis=0)

  def one(xi: jax.Array, yi: jax.Array) -> jax.Array:
    flat = xi.reshape(-1)
    fx = lambda z: f(z.reshape(xi.shape))
    logits = fx(flat)
    jac = jax.jacfwd(fx)(flat)  # [D] or [K, D]
    hess = jax.hessian(fx)(flat)  # [D, D] or [K, D, D]
    res = losses.residual(logits, yi, loss)
    # E_r[(r - x)(r - x)^T] = E[r r^T] - mu x^T - x mu^T + x x^T.
    moment = second_data - jnp.outer(mu, flat) - jnp.outer(flat, mu) + jnp.outer(flat, flat)
    weighted = a * moment
    first = jnp.sum(res * (jac @ (b * (mu - flat))))
    if loss == "binary":
      grad_term = losses.curvature_matrix(logits, loss) * (jac @ weighted @ jac)
      hess_term = res * jnp.sum(weighted * hess)
    else:
      grad_term = jnp.trace(losses.curvature_matrix(logits, loss) @ jac @ weighted @ jac.T)
      hess_term = jnp.sum(res * jnp.sum(weighted[None] * hess, axis=(1, 2)))
    return jnp.stack([first, 0.5 * grad_term, 0.5 * hess_term])

  return jax.vmap(one)(x, y)


def directional_derivatives(f: Model, x: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """``(f(x), J u, u^T nabla^2 f(x) u)`` by one nested ``jax.jvp`` (no matrix formed).

  >>> f = lambda z: jnp.sum(z**3)
  >>> [float(v) for v in directional_derivatives(f, jnp.array([1.0, 2.0]), jnp.array([1.0, 0.0]))]
  [9.0, 3.0, 6.0]
  """
  inner = lambda z: jax.jvp(f, (z,), (u,))
  (value, slope), (_, curvature) = jax.jvp(inner, (x,), (u,))
  return value, slope, curvature


def _terms(f: Model, xi: jax.Array, yi: jax.Array, u: jax.Array, loss: str) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(residual . J u, 1/2 (J u)^T h'' (J u), 1/2 residual . u^T H u) for one direction."""
  logits, slope, curvature = directional_derivatives(f, xi, u)
  res = losses.residual(logits, yi, loss)
  return jnp.sum(res * slope), 0.5 * losses.curvature_form(logits, slope, loss), 0.5 * jnp.sum(res * curvature)


def _sampled_terms(
  f: Model, law: MaskLaw, form: str, loss: str, keys: jax.Array, x: jax.Array, y: jax.Array, data: jax.Array
) -> jax.Array:
  """The three terms of every draw, float32 ``[m, S, 3]``: ``keys [m, S]`` draw ``(lam, M)`` and a partner."""

  def draw(key_s: jax.Array, xi: jax.Array, yi: jax.Array) -> jax.Array:
    key_law, key_partner = jax.random.split(key_s)
    lam, mask = law(key_law)
    keep = 1.0 - mask
    keep = keep.reshape(keep.shape + (1,) * (xi.ndim - keep.ndim))
    r = data[jax.random.randint(key_partner, (), 0, data.shape[0])]
    if form == "general":
      return jnp.stack(_terms(f, xi, yi, keep * (r - xi), loss))
    first = _terms(f, xi, yi, -(1.0 - lam) * xi, loss)[0]
    _, g_r, h_r = _terms(f, xi, yi, keep * r, loss)
    _, g_x, h_x = _terms(f, xi, yi, keep * xi, loss)
    return jnp.stack([first, g_r + g_x, h_r + h_x])

  return jax.vmap(lambda ks, xi, yi: jax.vmap(lambda kk: draw(kk, xi, yi))(ks))(keys, x, y)


def regularizers_sampled(
  key: jax.Array,
  f: Model,
  x: ArrayLike,
  y: ArrayLike,
  law: MaskLaw,
  *,
  data: ArrayLike | None = None,
  form: str = "general",
  loss: str = "binary",
  num_samples: int = 8,
) -> Regularizers:
  """Unbiased Monte Carlo R1, R2, R3 with Hessian-vector products; no ``d x d`` matrix.

  For each example, ``num_samples`` draws of ``(lam, M)`` from ``law`` and a uniform partner
  ``r`` from ``data``. ``"general"``: direction ``u = (1 - M) (r - x)``. ``"printed"``: the two
  directions ``(1 - M) r`` and ``(1 - M) x`` (the data mean taken as 0) and the first-order
  direction ``-(1 - lam) x``. Standard errors come from the per-example sample variances.

  Args:
    key: a PRNG key.
    f: model of one example ``[*S, C] -> []`` (binary; ``[1]`` is squeezed) or ``-> [K]`` (softmax).
    x: examples ``[m, *S, C]``.
    y: labels ``[m]`` in [0, 1] (binary; ``[m, 1]`` is squeezed) or probability rows ``[m, K]``
      (softmax; not class indices).
    law: ``msda_jax.theory.laws.swap_law(...)`` for ``"general"``,
      ``printed_law(...)`` for ``"printed"``.
    data: partners' population ``[n, *S, C]``; defaults to ``x``.
    form: ``"printed"`` or ``"general"``.
    loss: ``"binary"`` or ``"softmax"``.
    num_samples: static draws per example, >= 2.

  Returns:
    ``Regularizers`` with standard errors.

  Raises:
    ValueError: for a bad ``form``, ``loss`` or ``num_samples``, or a model output or labels
      that do not fit ``loss`` (see the module docstring).
  """
  _check_form(form)
  losses.check_loss(loss)
  kind = laws.law_attribute(law, "kind")
  wanted = "swap" if form == "general" else "printed"
  if kind is not None and kind != wanted:
    builder = "swap_law" if form == "general" else "printed_law"
    raise ValueError(f"form={form!r} needs a law of kind {wanted!r} ({builder}); got a law of kind {kind!r}.")
  if not isinstance(num_samples, int) or num_samples < 2:
    raise ValueError(f"num_samples must be an int >= 2 (for a standard error); got {num_samples!r}.")
  f, x, y = _inputs.check_model_inputs(f, x, y, loss=loss)
  data = x if data is None else jnp.asarray(data)

  keys = jax.random.split(key, (x.shape[0], num_samples))
  # One compiled program per model, law and options (eagerly, every primitive of the law and the
  # nested jvp would be compiled alone).
  samples = _compiled.call(_sampled_terms, (f, law, form, loss), keys, x, y, data)  # [m, S, 3]
  per_example = jnp.mean(samples, axis=1)
  means = jnp.mean(per_example, axis=0)
  variance = jnp.var(samples, axis=1, ddof=1) / num_samples  # [m, 3]
  stderr = jnp.sqrt(jnp.sum(variance, axis=0)) / x.shape[0]
  return Regularizers(means[0], means[1], means[2], stderr[0], stderr[1], stderr[2], per_example)


def empirical_loss(f: Model, x: ArrayLike, y: ArrayLike, *, loss: str = "binary") -> jax.Array:
  """``L_m = (1/m) sum_i l(f(x_i), y_i)``, the unmixed empirical loss.

  Args:
    f: model of one example ``[*S, C] -> []`` (binary; ``[1]`` is squeezed) or ``-> [K]`` (softmax).
    x: examples ``[m, *S, C]``.
    y: labels ``[m]`` in [0, 1] (binary; ``[m, 1]`` is squeezed) or probability rows ``[m, K]``
      (softmax; not class indices).
    loss: ``"binary"`` or ``"softmax"``.

  Returns:
    the scalar mean loss.

  Raises:
    ValueError: for a bad ``loss``, or a model output or labels that do not fit it.

  >>> f = lambda z: jnp.sum(z)
  >>> round(float(empirical_loss(f, jnp.zeros((2, 1, 1)), jnp.array([0.0, 1.0]))), 4)  # log 2
  0.6931
  """
  f, x, y = _inputs.check_model_inputs(f, x, y, loss=loss)
  values = jax.vmap(lambda xi, yi: losses.loss_value(f(xi), yi, loss))(x, y)
  return jnp.mean(values)


def approximate_msda_loss(
  f: Model, x: ArrayLike, y: ArrayLike, regularizers: Regularizers, *, loss: str = "binary"
) -> jax.Array:
  """``L~_m = L_m + R1 + R2 + R3`` (the approximate MSDA loss of Section 3).

  ``f``, ``x``, ``y`` and ``loss`` as in ``empirical_loss`` (and checked there), ``regularizers``
  from ``regularizers_exact`` or ``regularizers_sampled`` on the same examples.
  """
  return empirical_loss(f, x, y, loss=loss) + regularizers.total
