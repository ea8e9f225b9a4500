"""Losses of mixed targets: soft cross-entropy and the decoupled mixup loss (DecoupleMix).

Every loss here is ``loss(logits [B, K], targets [B, K]) -> [B]``, per example, and reads the
targets as given: they need not sum to 1 (SnapMix's label weights do not), and a loss of
non-normalised targets is the same weighted sum of one-hot terms.

**Decoupled mixup** (Liu et al., NeurIPS 2023, "Harnessing hard mixed samples with decoupled
regularizer"; OpenMixup's ``soft_mix_cross_entropy``): a mixed example whose targets put weight
on several classes (the support ``S``, the classes with ``t_c > threshold``) is also asked to
predict each of them against the *unmixed* classes only: class ``c`` in ``S`` competes with
itself and the classes outside ``S``, not with the other mixed classes. Its decoupled
log-probability is

    ``l_c = z_c - log(exp z_c + sum_(j not in S) exp z_j)``,

and ``decoupled(z, t) = -sum_(c in S) t_c l_c``, 0 for an example with fewer than two classes in
its support (an unmixed one, or a pair of the same class). The trained loss is
``cross_entropy + eta * decoupled``. The softmax's competition between the mixed classes, which
pulls the confident class's logit down when the mix says ``lam``, is what the extra term leaves
out: hard mixed examples keep a gradient towards each of their classes.

The class weights ``t_c`` are the targets' own (the realised label weights, per example): the
reference's ``eta_weight`` with its default ``mode="both"`` and linear ``lam`` scale, in the
order of the classes. The reference indexes its weights by the classes of the batch's first
example and needs one ``lam`` for the whole batch; here each example reads its own
(``benchmarks/decouple_parity.py`` gives the differences).

With label smoothing ``s`` over ``K`` classes every class has ``t_c >= s / K``: give a
``threshold`` above that (the reference adds ``s / K`` to its ``1e-3``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from msda_jax import _validate

#: a loss of mixed targets, per example: ``loss(logits [B, K], targets [B, K]) -> [B]``.
Loss = Callable[[jax.Array, jax.Array], jax.Array]


def cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """``-sum_c t_c log softmax(z)_c`` per example, ``[B]`` (``optax.softmax_cross_entropy``).

  >>> float(cross_entropy(jnp.zeros((1, 2)), jnp.array([[0.5, 0.5]]))[0]) == float(jnp.log(2.0))
  True
  """
  return optax.softmax_cross_entropy(logits, targets)


def decoupled(logits: jax.Array, targets: jax.Array, *, threshold: ArrayLike = 1e-3) -> jax.Array:
  """The decoupled term ``-sum_(c in S) t_c l_c`` per example, ``[B]`` (the module docstring).

  Args:
    logits: float ``[B, K]``.
    targets: float ``[B, K]`` the mixed targets (any non-negative weights).
    threshold: a class is in the support ``S`` when ``t_c > threshold`` (traced).

  >>> z = jnp.array([[2.0, 1.0, 0.0]])
  >>> t = jnp.array([[0.7, 0.3, 0.0]])
  >>> l0, l1 = jax.nn.log_softmax(jnp.array([2.0, 0.0]))[0], jax.nn.log_softmax(jnp.array([1.0, 0.0]))[0]
  >>> bool(jnp.isclose(decoupled(z, t)[0], -(0.7 * l0 + 0.3 * l1)))
  True
  >>> float(decoupled(z, jnp.array([[1.0, 0.0, 0.0]]))[0])  # one class: no decoupled term
  0.0
  """
  logits = jnp.asarray(logits, jnp.result_type(logits, jnp.float32))
  support = targets > threshold
  # log sum_(j not in S) exp z_j, -inf when every class is mixed (then l_c = 0).
  rest = jax.nn.logsumexp(jnp.where(support, -jnp.inf, logits), axis=-1, keepdims=True)
  rest = jnp.where(jnp.all(support, axis=-1, keepdims=True), -jnp.inf, rest)
  log_prob = logits - jnp.logaddexp(logits, rest)
  term = -jnp.sum(jnp.where(support, targets * log_prob, 0.0), axis=-1)
  return jnp.where(jnp.sum(support, axis=-1) >= 2, term, 0.0)


def decoupled_mixup(
  logits: jax.Array, targets: jax.Array, *, eta: ArrayLike = 0.1, threshold: ArrayLike = 1e-3
) -> jax.Array:
  """DecoupleMix's loss ``cross_entropy + eta * decoupled`` per example, ``[B]`` (``eta`` traced;
  the reference's configs use 0.1)."""
  return cross_entropy(logits, targets) + eta * decoupled(logits, targets, threshold=threshold)


LOSSES = ("cross_entropy", "decoupled_mixup")


def get_loss(name: str, **options: float) -> Loss:
  """The loss named ``name`` (``LOSSES``) with its numbers bound: ``get_loss("decoupled_mixup", eta=0.1)``.

  Raises ``ValueError`` naming ``loss`` for an unknown name, and the option for an unknown or
  invalid one (``eta`` finite and non-negative, ``threshold`` in ``[0, 1)``).

  >>> get_loss("decoupled_mixup", eta=0.2).keywords
  {'eta': 0.2, 'threshold': 0.001}
  """
  if name not in LOSSES:
    raise ValueError(f"loss must be one of {LOSSES}; got {name!r}.")
  allowed = {"cross_entropy": (), "decoupled_mixup": ("eta", "threshold")}[name]
  for option, value in options.items():
    if option not in allowed:
      raise ValueError(f"loss {name!r} takes the options {allowed}; got {option}={value!r}.")
  if "eta" in options:
    _validate.check_range("eta", options["eta"], 0.0, float("inf"), high_open=True)
  if "threshold" in options:
    _validate.check_range("threshold", options["threshold"], 0.0, 1.0, high_open=True)
  if name == "cross_entropy":
    return cross_entropy
  return functools.partial(decoupled_mixup, eta=options.get("eta", 0.1), threshold=options.get("threshold", 1e-3))
