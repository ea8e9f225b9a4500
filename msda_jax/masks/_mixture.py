"""A stochastic switch among library methods: component ``k`` with probability ``probs[k]``.

One categorical draw picks a component; that component then draws ``lam`` from its own law
and its own mask, exactly as its own ``sample`` does. The joint law of ``(lam, M)`` is
therefore the convex mixture ``sum_k p_k Law_k``, and everything the theory takes an
expectation of is the same mixture of the components' values:

* the MSDA objective (Eq. 4), an expectation over ``(lam, M)``, is ``sum_k p_k`` times each
  component's objective (each with its own ``lam`` law);
* the coefficients ``a_jk = E[(1 - M_j)(1 - M_k)]`` (Eq. 9) and the mean ``E[1 - M]``, averaged
  over each component's ``lam`` law, are ``sum_k p_k a^(k)_jk`` and ``sum_k p_k E[1 - M^(k)]``;
  at a given ``lam`` (every component then uses it) ``a_jk(lam) = sum_k p_k a^(k)_jk(lam)``.
  Stochastic Mixup & CutMix is the two-component case (``q a^mixup + (1 - q) a^cutmix``).

Keys. ``sample(key)`` splits ``key`` into ``(key_lam, key_mask)`` as every method does, and
the chosen component receives exactly that pair: with a one-hot ``probs`` the mixture's sample
is the component's ``sample(key)`` (binary masks pixel for pixel; continuous values to float32
rounding, the branch being compiled inside a switch). The switch reads its own key,
``jax.random.fold_in(key_mask, SWITCH_SALT)``, a counter that no library sampler uses on its
mask key, so the choice is drawn apart from the component's draws.

``methods`` is static structure (a tuple of methods is a pytree: their types and options are
part of the compiled program) while their numbers and ``probs`` are traced leaves: changing any
of them never recompiles. On the CPU ``jax.lax.switch`` runs only the chosen branch for one draw;
on an accelerator (``msda_jax._backend``), and under ``vmap`` (one draw per example) everywhere,
every component is drawn and the chosen one selected, so the program has no branch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _backend, _bits, _validate
from msda_jax._dataclass import pytree_dataclass
from msda_jax.masks._base import MixMethod, Sample
from msda_jax.masks._cutmix import CutMix
from msda_jax.masks._mixup import Mixup

#: the counter folded into the mask key to draw the switch (not used by any library sampler).
SWITCH_SALT = 0x6D697874
#: concrete ``probs`` must sum to 1 within this (float32 rounding of designed weights is ~1e-7).
PROBS_ATOL = 1e-5


def mask_only(label: str, method: Any, role: str) -> MixMethod:
  """``method`` as a two-source mask-only ``MixMethod``, or a clear error naming ``label``.

  ``role`` completes the refusals ("a mixture switches only among mask-only methods").
  """
  if isinstance(method, str):
    raise TypeError(
      f"{label} must be a MixMethod; got the string {method!r} (msda_jax.from_string builds nested methods from "
      f'specs: from_string("mixture(methods=({method!r}, ...))")).'
    )
  if not isinstance(method, MixMethod):
    raise TypeError(f"{label} must be a MixMethod (e.g. msda_jax.Mixup()); got {type(method).__name__}.")
  if method.needs().inputs or method.needs().outputs or method.sources != 2:
    raise ValueError(
      f"{label} = {type(method).__name__} reads the images or the model, or mixes more than two sources; "
      f"{role} methods whose masks are a function of lam and the key."
    )
  drawn = jax.eval_shape(lambda key: method.sample(key, shape=(8, 8)), jax.random.key(0))  # traced, not run
  if drawn.paste is not None or drawn.keep is not None:
    raise ValueError(
      f"{label} = {type(method).__name__} transforms the images it mixes (paste/keep); {role} mask-only methods."
    )
  return method


def _probs(value: Any, count: int) -> Any:
  """``probs`` as float32 ``[count]``: checked when concrete, shape-checked when traced."""
  if isinstance(value, (str, bytes, bool, np.bool_)):
    raise TypeError(f"probs must be an array of {count} numbers; got {value!r}.")
  if isinstance(value, jax.core.Tracer):
    if tuple(value.shape) != (count,):
      raise ValueError(f"probs must have shape ({count},), one per method; got a traced value of shape {value.shape}.")
    return value
  try:
    array = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError) as error:
    raise TypeError(f"probs must be an array of {count} numbers; got {value!r}.") from error
  if array.shape != (count,):
    raise ValueError(f"probs must have shape ({count},), one per method; got shape {array.shape}.")
  if not np.all(np.isfinite(array)) or np.any(array < 0.0):
    bad = array[~(np.isfinite(array) & (array >= 0.0))][0]
    raise ValueError(f"probs must be >= 0 and finite; got {float(bad)!r} in {array.tolist()}.")
  if abs(float(array.sum()) - 1.0) > PROBS_ATOL:
    raise ValueError(
      f"probs must sum to 1 (within {PROBS_ATOL:g}); got sum {float(array.sum())!r} of {array.tolist()}."
    )
  return jnp.asarray(array, jnp.float32) if isinstance(value, jax.Array) else array.astype(np.float32)


def _component(key_lam: jax.Array, key_mask: jax.Array, lam: Any, shape: tuple[int, ...], method: MixMethod) -> Sample:
  """The component's own draw as float32 ``(lam, mask, weight)`` (``mask_only`` refused image transforms)."""
  drawn = method._sample(key_lam, key_mask, lam, shape, None)
  as32 = lambda v: jnp.asarray(v, jnp.float32)
  return Sample(as32(drawn.lam), jnp.broadcast_to(as32(drawn.mask), shape), as32(drawn.weight))


def choose(key_mask: jax.Array, probs: ArrayLike) -> jax.Array:
  """The component index: ``#{k < K - 1 : c_k <= u c_K}`` with ``c`` the cumulative ``probs``, ``u ~ U[0, 1)``.

  ``u`` comes from ``fold_in(key_mask, SWITCH_SALT)``. A zero probability is never chosen, and
  ``probs`` is normalised by its sum (a float32 sum a few ulps from 1 changes nothing).

  Args:
    key_mask: the mask key of one example.
    probs: traced float32 ``[K]``, >= 0, summing to 1.

  Returns:
    int32 ``[]`` in ``[0, K)``.

  >>> int(choose(jax.random.key(0), jnp.array([0.0, 1.0, 0.0])))
  1
  """
  cumulative = jnp.cumsum(jnp.asarray(probs, jnp.float32))
  u = _bits.uniform(jax.random.fold_in(key_mask, SWITCH_SALT), ()) * cumulative[-1]
  return jnp.sum(cumulative[:-1] <= u).astype(jnp.int32)


@pytree_dataclass
class Mixture(MixMethod):
  """Component ``methods[k]`` (its own ``lam`` law and mask) with probability ``probs[k]``.

  Args:
    methods: a non-empty tuple of mask-only library methods (default Mixup and CutMix); methods
      that read the images (PuzzleMix, SaliencyMix) or transform them (ResizeMix) are refused. By name:
      ``from_string("mixture(methods=('mixup', 'gmix'), probs=(0.3, 0.7))")``.
    probs: float32 ``[K]``, >= 0, summing to 1 (within ``PROBS_ATOL``); uniform when omitted.

  The law, the Eq. (4) objective and the coefficients ``a_jk`` (Eq. 9) are the ``probs``-mixture
  of the components' (module docstring). With a one-hot ``probs`` the sample is the
  component's ``sample`` for the same key.

  >>> import msda_jax
  >>> m = Mixture((msda_jax.Mixup(), msda_jax.GMix()), probs=(0.3, 0.7))
  >>> m
  Mixture(methods=(Mixup(alpha=1.0), GMix(alpha=0.5, scale='code', symmetric=True)), probs=[0.3, 0.7])
  >>> one = Mixture((msda_jax.Mixup(), msda_jax.CutMix()), probs=(0.0, 1.0))
  >>> key = jax.random.key(3)
  >>> bool((one.sample(key, shape=(8, 8)).mask == msda_jax.CutMix().sample(key, shape=(8, 8)).mask).all())
  True
  """

  name = "mixture"

  methods: tuple[MixMethod, ...] = (Mixup(), CutMix())
  probs: ArrayLike | None = None

  def __post_init__(self) -> None:
    methods = self.methods
    if isinstance(methods, (MixMethod, str)) or not isinstance(methods, Sequence) or not methods:
      raise ValueError(f"methods must be a non-empty tuple of MixMethod; got {methods!r}.")
    methods = tuple(mask_only(f"methods[{i}]", m, "a mixture switches only among") for i, m in enumerate(methods))
    object.__setattr__(self, "methods", methods)
    probs = np.full(len(methods), 1.0 / len(methods)) if self.probs is None else self.probs
    object.__setattr__(self, "probs", _probs(probs, len(methods)))

  def constraints(self) -> list[_validate.Check]:
    """``probs`` >= 0, finite and summing to 1, then every component's conditions (named ``methods[k]``)."""
    probs = self.probs
    total = jnp.sum(jnp.asarray(probs, jnp.float32))
    concrete = _validate.concrete_value(probs)
    if concrete is not None:
      sums_to_one: Any = np.bool_(abs(float(np.sum(concrete, dtype=np.float64)) - 1.0) <= PROBS_ATOL)
    else:
      sums_to_one = jnp.abs(total - 1.0) <= PROBS_ATOL
    checks: list[_validate.Check] = [
      ("probs must be >= 0 and finite", _validate.nonnegative_ok(probs), probs),
      (f"probs must sum to 1 (within {PROBS_ATOL:g})", sums_to_one, total),
    ]
    for index, method in enumerate(self.methods):
      for message, ok, value in method.constraints():
        checks.append((f"methods[{index}] ({type(method).__name__}): {message}", ok, value))
    return checks

  def check_values(self) -> None:
    """Raises ``ValueError`` naming ``probs`` or ``methods[k]`` for a concrete value out of range."""
    _probs(self.probs, len(self.methods))
    for index, method in enumerate(self.methods):
      try:
        method.check_values()
      except ValueError as error:
        raise ValueError(f"methods[{index}] ({type(method).__name__}): {error}") from error

  def sanitized(self, ok: Any) -> MixMethod:
    """Uniform ``probs`` and every component's defaults where ``ok`` is false (see ``MixMethod``)."""
    if isinstance(ok, (bool, np.bool_)) and ok:
      return self
    rebuilt = object.__new__(type(self))
    uniform = jnp.full((len(self.methods),), 1.0 / len(self.methods), jnp.float32)
    object.__setattr__(rebuilt, "methods", tuple(m.sanitized(ok) for m in self.methods))
    object.__setattr__(rebuilt, "probs", jnp.where(ok, jnp.asarray(self.probs, jnp.float32), uniform))
    return rebuilt

  def _sample(
    self, key_lam: jax.Array, key_mask: jax.Array, lam: jax.Array | None, shape: tuple[int, ...], data: Any
  ) -> Sample:
    del data
    assert self.probs is not None  # set in __post_init__
    index = choose(key_mask, self.probs)
    branches = [(lambda kl, km, m=method: _component(kl, km, lam, shape, m)) for method in self.methods]

    def every_one(index: jax.Array, kl: jax.Array, km: jax.Array) -> Sample:
      # An accelerator draws every component and selects the chosen one: no branch for the host.
      drawn = [branch(kl, km) for branch in branches]
      pick = lambda *values: functools.reduce(
        lambda chosen, k: jnp.where(index == k, values[k], chosen), range(len(values) - 2, -1, -1), values[-1]
      )
      return jax.tree.map(pick, *drawn)

    if _backend.is_per_example():
      # Mapped over the batch, a switch on each example's index is this select anyway.
      return every_one(index, key_lam, key_mask)
    switch = lambda index, kl, km: jax.lax.switch(index, branches, kl, km)
    return _backend.by_platform(switch, every_one, index, key_lam, key_mask)

  def __repr__(self) -> str:
    concrete = _validate.concrete_value(self.probs)
    probs = [float(str(v)) for v in np.asarray(concrete, np.float32)] if concrete is not None else self.probs
    return f"{type(self).__name__}(methods={tuple(self.methods)!r}, probs={probs!r})"
