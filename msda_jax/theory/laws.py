"""Joint laws of ``(w, M)`` that the theory averages over: a label weight and a mask.

A *mask law* is a pure function ``key -> (w, M)`` with ``w`` a float32 scalar, the weight of the
first image's label, and ``M`` float32 of the spatial shape. The laws built here are ``Law``
objects: callables that also record what they are (``kind``, the ``Beta`` parameters, the label
weight and the method), so that the entry points can refuse a law that does not fit the form
asked (``regularizers_sampled``, ``sampled_atoms``). Four kinds (Section 3 and the notes):

* ``fixed_lam_law``: ``lam`` given, ``M ~ M(lam)`` (the coefficients ``a_jk(lam)``, Eq. 9);
* ``msda_law``: ``lam ~ Beta(a, b)`` (the method's own law when ``a`` is omitted), ``M ~ M(lam)``
  (the MSDA loss, Eq. 4);
* ``printed_law``: ``lam ~ D~_lam``, ``M ~ M(lam)`` (Theorem 1 as printed, Eq. 6-8);
* ``swap_law``: the law of ``(w', M')`` that rewriting Eq. (4) as a sum over single examples with
  their own labels produces: with probability ``w`` the example keeps its mask, ``M' = M``, and
  otherwise it is the partner's, ``M' = 1 - M`` (then ``w' = 1 - w``). The second-order expansion
  with it is exact to second order for every mask family (``regularizers``, form ``"general"``).

The label weight (``label_weight=``). Eq. (4) weights the labels by the nominal ``lam``;
``msda_jax.mix_batch``, which trains, weights them by the realised mean of the mask (the
``weight`` of a ``Sample``). The two differ where the mask's mean is not ``lam`` (clipped boxes,
GMix at the border, Bernoulli masks). ``"realised"`` (the default, the objective trained) returns
``w = mean(M)``; ``"nominal"`` returns ``w = lam`` (Eq. 4 as printed). The swap law is the same
construction for both: a partner's example keeps weight ``1 - w``. With the nominal weight and a
Beta law it equals the paper's form ``a/(a+b) Beta(a+1, b) + b/(a+b) Beta(b+1, a)`` (tested).

Every ``lam`` is drawn with the library's sampler (``msda_jax.lam_laws``), so a law compiles as
fast as the method it samples.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _validate, lam_laws
from msda_jax.masks._base import MixMethod, Sample

MaskLaw = Callable[[jax.Array], tuple[jax.Array, jax.Array]]
KINDS = ("fixed", "msda", "printed", "swap")
LABEL_WEIGHTS = ("realised", "nominal")


@dataclasses.dataclass(frozen=True)
class Law:
  """A mask law ``key -> (w, M)`` with what it was built for.

  Attributes:
    fn: the law itself.
    kind: ``"fixed"``, ``"msda"``, ``"printed"`` or ``"swap"`` (module docstring).
    label_weight: ``"realised"`` or ``"nominal"``.
    beta: ``(a, b)`` of the ``lam`` law as floats when concrete and given, else ``None``.
    method: the ``repr`` of the method sampled.
  """

  fn: MaskLaw
  kind: str
  label_weight: str
  beta: tuple[float, float] | None
  method: str

  def __call__(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    return self.fn(key)


def check_label_weight(label_weight: str) -> None:
  """Raises unless ``label_weight`` is ``"realised"`` or ``"nominal"``."""
  _validate.check_choice("label_weight", label_weight, LABEL_WEIGHTS)


def law_attribute(law: MaskLaw, name: str) -> object:
  """``law.<name>`` for a ``Law``, ``None`` for a plain function (which is then not checked)."""
  return getattr(law, name, None) if isinstance(law, Law) else None


def _concrete_pair(a: ArrayLike | None, b: ArrayLike | None) -> tuple[float, float] | None:
  values = [_validate.concrete_value(jnp.asarray(v)) if v is not None else None for v in (a, b)]
  if any(v is None for v in values):
    return None
  return float(values[0]), float(values[1])  # type: ignore[arg-type]


def _concentrations(a: ArrayLike, b: ArrayLike | None) -> tuple[jax.Array, jax.Array]:
  _validate.check_positive("a", a)
  b = a if b is None else b
  _validate.check_positive("b", b)
  return jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)


def method_beta(method: MixMethod) -> tuple[float, float] | None:
  """``(alpha, alpha)`` of a method whose ``lam`` law is one symmetric Beta, else ``None``.

  Stochastic Mixup & CutMix has one only when its two ``alpha`` are equal; HMix with a random
  ``r`` still has one law of ``lam``.
  """
  alphas = [getattr(method, name) for name in ("alpha", "mixup_alpha", "cutmix_alpha") if hasattr(method, name)]
  if not alphas:
    return None
  values = [_validate.concrete_value(jnp.asarray(v)) for v in alphas]
  if any(v is None for v in values) or len({float(v) for v in values}) != 1:  # type: ignore[arg-type]
    return None
  return float(values[0]), float(values[0])  # type: ignore[arg-type]


def _weight(label_weight: str, sample: Sample) -> jax.Array:
  """The first image's label weight: the sample's realised ``weight`` or its nominal ``lam``."""
  return sample.weight if label_weight == "realised" else sample.lam


def fixed_lam_law(method: MixMethod, lam: ArrayLike, *, shape: tuple[int, ...], label_weight: str = "realised") -> Law:
  """``(w, M(lam))`` with ``lam`` fixed: the law behind ``a_jk(lam)`` (Eq. 9).

  >>> import msda_jax
  >>> lam, m = fixed_lam_law(msda_jax.Mixup(), 0.3, shape=(2, 2))(jax.random.key(0))
  >>> float(m[0, 0])
  0.3...
  """
  check_label_weight(label_weight)
  lam = jnp.asarray(lam, jnp.float32)

  def law(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    sample = method.sample(key, shape=shape, lam=lam)
    return _weight(label_weight, sample), sample.mask

  return Law(law, "fixed", label_weight, None, repr(method))


def msda_law(
  method: MixMethod,
  a: ArrayLike | None = None,
  b: ArrayLike | None = None,
  *,
  shape: tuple[int, ...],
  label_weight: str = "realised",
) -> Law:
  """``lam ~ Beta(a, b)``, ``M ~ M(lam)``: the law of the MSDA loss (Eq. 4).

  With ``a`` omitted, ``lam`` comes from the method's own law (Stochastic Mixup & CutMix's
  per-branch laws, HMix's ``r`` law included): ``method.sample(key, shape=shape)``. With ``a``,
  ``lam = lam_laws.sample_beta(split(key)[0], a, b)`` and the mask from the second half of the
  split, the keys ``method.sample`` uses, so both agree draw for draw when ``a`` is the method's
  ``alpha``.

  Args:
    method: a library method (``msda_jax.CutMix()``...).
    a: first concentration, > 0; the method's own law when ``None``.
    b: second concentration, > 0 (``a`` when omitted).
    shape: static spatial shape.
    label_weight: ``"realised"`` (``w = mean(M)``, what ``mix_batch`` trains) or ``"nominal"``
      (``w = lam``, Eq. 4 as printed).

  Returns:
    a ``Law`` of kind ``"msda"``.

  >>> import msda_jax
  >>> w, m = msda_law(msda_jax.CutMix(), shape=(4, 4))(jax.random.key(0))
  >>> bool(abs(w - m.mean()) < 1e-6)
  True
  """
  check_label_weight(label_weight)
  if a is None:
    if b is not None:
      raise ValueError(f"msda_law: b={b!r} needs a as well (a=None samples the method's own law).")

    def own(key: jax.Array) -> tuple[jax.Array, jax.Array]:
      sample = method.sample(key, shape=shape)
      return _weight(label_weight, sample), sample.mask

    return Law(own, "msda", label_weight, method_beta(method), repr(method))
  a, b = _concentrations(a, b)

  def law(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    key_lam, _ = jax.random.split(key)  # the sample's own split: the second half draws the mask
    lam = lam_laws.sample_beta(key_lam, a, b)
    sample = method.sample(key, shape=shape, lam=lam)
    return _weight(label_weight, sample), sample.mask

  return Law(law, "msda", label_weight, _concrete_pair(a, b), repr(method))


def source_law(method: MixMethod, *, shape: tuple[int, ...]) -> Law:
  """A k-source method's own law as ``key -> (w_0, M)`` with ``M`` the ``[k, *S]`` source masks.

  ``moments.mask_moments`` of it gives ``E[1 - M]`` and ``E[(1 - M_a)(1 - M_b)]`` over every
  (source, pixel) pair ``a, b`` of the flattened ``[k * d]`` masks: the block of source 0 is the
  example's own ``a_jk`` (Eq. 9), the others the cross moments Appendix B's expansion needs.

  >>> import msda_jax
  >>> w, m = source_law(msda_jax.RICAP(), shape=(4, 4))(jax.random.key(0))
  >>> m.shape
  (4, 4, 4)
  """
  if getattr(method, "sources", 2) <= 2 or not hasattr(method, "_partition"):
    raise ValueError(f"source_law takes a k-source region method (RICAP, KCutMix); got {type(method).__name__}.")

  def law(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    sample = method.sample(key, shape=shape)
    return sample.weight[0], sample.mask

  return Law(law, "msda", "realised", None, repr(method))


def printed_law(method: MixMethod, a: ArrayLike, b: ArrayLike | None = None, *, shape: tuple[int, ...]) -> Law:
  """``lam ~ D~_lam``, ``M ~ M(lam)``: the law of Theorem 1 as printed (Eq. 6-8), nominal weights.

  The printed form is derived for the nominal label weight only (``D~`` is the ``lam``-tilted
  Beta law); the realised objective has no printed form.
  """
  a, b = _concentrations(a, b)

  def law(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    key_lam, _ = jax.random.split(key)  # the sample's own split: the second half draws the mask
    lam = lam_laws.sample_d_tilde(key_lam, a, b)
    return lam, method.sample(key, shape=shape, lam=lam).mask

  return Law(law, "printed", "nominal", _concrete_pair(a, b), repr(method))


def swap_law(
  method: MixMethod,
  a: ArrayLike | None = None,
  b: ArrayLike | None = None,
  *,
  shape: tuple[int, ...],
  label_weight: str = "realised",
) -> Law:
  """The law of ``(w', M')`` that the per-example rewriting of Eq. (4) really produces.

  ``(w, M)`` from ``msda_law(method, a, b, shape=shape, label_weight=label_weight)``, then with
  probability ``w`` the example is the first image (``w' = w``, ``M' = M``) and otherwise the
  second (``w' = 1 - w``, ``M' = 1 - M``): an uniform draw ``u < w`` from a third key. ``w'`` is
  the weight of the example's own label in both branches.

  Args:
    method: a library method.
    a: first concentration, > 0; the method's own law when ``None``.
    b: second concentration (``a`` when omitted).
    shape: static spatial shape.
    label_weight: ``"realised"`` (default, the objective trained) or ``"nominal"``.

  Returns:
    a ``Law`` of kind ``"swap"``.

  >>> import msda_jax
  >>> lam, m = swap_law(msda_jax.CutMix(), 1.0, shape=(4, 4))(jax.random.key(0))
  >>> m.shape
  (4, 4)
  """
  inner = msda_law(method, a, b, shape=shape, label_weight=label_weight)

  def law(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    key_pair, key_side = jax.random.split(key)
    w, mask = inner(key_pair)
    first = jax.random.uniform(key_side) < w
    return jnp.where(first, w, 1.0 - w), jnp.where(first, mask, 1.0 - mask)

  return Law(law, "swap", label_weight, inner.beta, repr(method))
