"""k-sample mixing with Dirichlet weights (Appendix B).

Each example is mixed with ``k - 1`` partners of its batch:
``x~_i = sum_m M_m * x_{p_m(i)}`` with ``p_0(i) = i``, masks ``M_m`` that sum to 1 at every
pixel and a weight vector ``w ~ Dirichlet(alpha 1_k)``. Two mask styles:

* ``"mixup"``: ``M_m = w_m 1`` (k-way Mixup);
* ``"categorical"``: every pixel is taken from source ``m`` with probability ``w_m``,
  independently (one-hot over the ``k`` sources; the k-way Bernoulli mask).

Labels are mixed with the realised weights ``mean(M_m)`` (rows) or per pixel (dense maps).
For ``k = 2`` and the ``"mixup"`` style this is Mixup with Dirichlet (Beta) weights.
``KMix`` is a method of the batch layer like the two-sample ones (``Mixer(KMix(k=3))``,
``msda_jax.mix_k_batch``): the same pairing (``pairing.pair_k`` for ``k > 2``), the same
``combine`` and label mixing, with ``k`` sources and ``k`` weights in its ``draw``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from msda_jax import _bits, _validate, lam_laws
from msda_jax import pairing as pairing_lib
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.draws import Draw
from msda_jax.needs import Needs

STYLES = ("mixup", "categorical")
PAIRINGS = pairing_lib.K_PAIRINGS
#: tolerance on the sum of a given weight vector.
SUM_TOL = 1e-4


class KMixInfo(NamedTuple):
  """What a call of ``mix_k_batch`` drew, per example: ``MixInfo``'s fields with a source axis.

  Attributes:
    lam: float32 ``[B, k]`` the drawn (or given) weight vectors ``w`` (nominal).
    weight: float32 ``[B, k]`` realised weights ``mean(M_m)`` (the label weights).
    partner: int32 ``[B, k]`` index of source ``m`` of each example (column 0 is the example).
    applied: bool ``[B]`` whether the example was mixed (an invalid traced ``alpha`` or
      ``weights`` row gives ``e_0``: not mixed).
    mask: float32 ``[B, k, *S]`` the masks used.
  """

  lam: jax.Array
  weight: jax.Array
  partner: jax.Array
  applied: jax.Array
  mask: jax.Array


@pytree_dataclass
class KMix:
  """k-sample mixing: ``w ~ Dirichlet(alpha 1_k)`` and the masks of ``kmix_masks``.

  ``alpha`` traced (a scalar or ``[k]``), ``k`` and ``style`` static. A method of the batch layer
  (``Mixer(KMix(k=3))``, ``from_string("mix_k_batch(k=3)")``, training configs) with ``k``
  sources: a ``Mixer``'s default pairing is then ``"roll"`` (``k > 2`` takes ``"roll"`` or
  ``"permute"``), and its ``lam`` is the weight vector.

  >>> KMix(k=3)
  KMix(alpha=1.0, k=3, style='mixup')
  """

  name: ClassVar[str] = "mix_k_batch"
  #: the pairing a ``Mixer`` uses when none is given (``p_m(i) = i - m``).
  default_pairing: ClassVar[str] = "roll"

  alpha: ArrayLike = 1.0
  k: int = static_field(default=3)
  style: str = static_field(default="mixup")

  def __post_init__(self) -> None:
    _check_k(self.k)
    _validate.check_choice("style", self.style, STYLES)
    alpha = _validate.listed_as_array(self.alpha)
    if tuple(np.shape(alpha)) not in ((), (self.k,)):
      raise ValueError(f"alpha must be a scalar or a vector [k]=({self.k},); got shape {tuple(np.shape(alpha))}.")
    if np.shape(alpha) == ():
      alpha = _validate.hyperparameter("alpha", alpha)
    elif not isinstance(alpha, jax.core.Tracer):
      alpha = jnp.asarray(alpha, jnp.float32) if isinstance(alpha, jax.Array) else np.asarray(alpha, np.float32)
    object.__setattr__(self, "alpha", alpha)
    self.check_values()

  def __repr__(self) -> str:
    concrete = _validate.concrete_value(self.alpha)
    alpha = float(str(np.float32(concrete))) if concrete is not None and concrete.ndim == 0 else self.alpha
    return f"KMix(alpha={alpha!r}, k={self.k!r}, style={self.style!r})"

  def replace(self, **changes: Any) -> KMix:
    """A copy with ``changes``, checked as construction checks."""
    return dataclasses.replace(self, **changes)

  # -- the method protocol of the batch layer (``msda_jax.masks.MixMethod``) --------------------
  @property
  def sources(self) -> int:
    """``k``: the example and ``k - 1`` partners."""
    return int(self.k)

  @property
  def lam_shape(self) -> tuple[int, ...]:
    """A given ``lam`` is the weight vector ``[k]``."""
    return (int(self.k),)

  def check_lam(self, lam: Any, unbounded: bool) -> None:
    """Raises naming ``lam`` for concrete weight rows that are not finite, non-negative and summing to 1."""
    del unbounded
    _check_weight_values("lam", lam)

  def needs(self) -> Needs:
    """Nothing beyond the images and labels."""
    return Needs()

  def relabel(self, targets: jax.Array, info: Any, outputs: dict[str, Any]) -> jax.Array:
    """The unmixed ``targets [B, K]`` mixed by the realised weights of ``info`` (outputs unread)."""
    del outputs
    return jnp.einsum("bm,bmk->bk", info.weight, targets[info.partner])

  def constraints(self) -> list[_validate.Check]:
    """``alpha`` finite and > 0."""
    return [(_validate.positive_message("alpha", self.alpha), _validate.positive_ok(self.alpha), self.alpha)]

  def check_values(self) -> None:
    """Raises naming ``alpha`` when a concrete value is not finite and > 0."""
    _validate.check_positive("alpha", self.alpha)

  def valid(self) -> Any:
    """``True`` when ``alpha`` is concrete (checked), else a traced bool."""
    ok = _validate.positive_ok(self.alpha)
    return True if isinstance(ok, (bool, np.bool_)) else ok

  def sanitized(self, ok: Any) -> KMix:
    """This method with ``alpha`` 1 where ``ok`` is false (the batch layer then mixes nothing)."""
    if isinstance(ok, (bool, np.bool_)) and ok:
      return self
    rebuilt = object.__new__(KMix)
    for name, value in (
      ("alpha", jnp.where(ok, jnp.asarray(self.alpha, jnp.float32), 1.0)),
      ("k", self.k),
      ("style", self.style),
    ):
      object.__setattr__(rebuilt, name, value)
    return rebuilt

  def check_input(self, spatial: tuple[int, ...], block: int | None = None) -> None:
    """Raises unless ``k`` distinct sources fit in a block of ``block`` examples."""
    del spatial
    _check_k(self.k, block)

  def check_weights(self, name: str, weights: Any) -> None:
    """Raises naming ``name`` for concrete weight rows that are not finite, non-negative and summing to 1."""
    _check_weight_values(name, weights)

  def lam_checks(self, lam: Any, unbounded: bool) -> list[_validate.Check]:
    """The run-time condition on given weights (``check=True``)."""
    del unbounded
    if lam is None:
      return []
    return [("weights must be finite, non-negative rows summing to 1", _weights_ok(lam), lam)]

  def draw(self, key: jax.Array, sources: tuple[Any, ...], lam: Any, prob: Any, mixer: Any) -> Draw:
    """The weights and masks of the batch's ``k`` sources: a ``Draw`` with a source axis.

    Key use: ``split(key, 3)`` gives the weights' key (second) and the masks' (third);
    ``fold_in(key, 3)`` the ``prob`` coins. An unmixed example (``prob``, an invalid traced
    ``alpha`` or weight row) gets the weights ``e_0``.
    """
    images = sources[0]["images"]
    batch, spatial, k = images.shape[0], images.shape[1:-1], self.sources
    _, key_weights, key_mask = _bits.split(key, 3)
    coins = _bits.uniform(jax.random.fold_in(key, 3), () if mixer.mode == "batch" else (batch,))
    drawn = coins < prob  # False where not mixed (NaN never mixes)
    if mixer.mode == "batch":
      w = lam_laws.sample_dirichlet(key_weights, self.alpha, k) if lam is None else jnp.asarray(lam, jnp.float32)
      w = _usable(w, (True if lam is None else _weights_ok(lam)) & drawn)
      masks = _masks(key_mask, w, spatial, self.style)[None]
      nominal = jnp.broadcast_to(w[None], (batch, k))
    else:
      if lam is None:
        nominal = _usable(lam_laws.sample_dirichlet(key_weights, self.alpha, k, shape=(batch,)), drawn)
      else:
        given = jnp.broadcast_to(jnp.asarray(lam, jnp.float32), (batch, k))
        ok = _weights_ok(lam)
        nominal = _usable(given, drawn & (ok if isinstance(ok, bool) else jnp.broadcast_to(ok, (batch,))))
      keys = _bits.split(key_mask, batch)
      masks = jax.vmap(lambda kk, ww: _masks(kk, ww, spatial, self.style))(keys, nominal)
    realised = jnp.mean(masks, axis=tuple(range(2, 2 + len(spatial))))
    return Draw(nominal, masks, realised, nominal[:, 0] < 1.0)


def _check_k(k: Any, block: int | None = None) -> None:
  if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
    raise ValueError(f"k must be an int >= 2 (the number of mixed samples); got {k!r}.")
  if block is not None and k > block:
    raise ValueError(f"k={k} must not exceed the block size {block} (batch / groups): each source must be distinct.")


def _check_weight_values(name: str, weights: Any) -> None:
  """Non-negative rows summing to 1, when the values are known."""
  array = _validate.concrete_value(weights)
  if array is None:
    return
  if not np.isfinite(array).all():
    raise ValueError(f"{name} must be finite; got {array.tolist()}.")
  if (array < 0).any():
    raise ValueError(f"{name} must be non-negative; got {array[array < 0].ravel()[0].item()!r}.")
  sums = array.sum(axis=-1)
  if (np.abs(sums - 1.0) > SUM_TOL).any():
    bad = np.ravel(sums)[np.argmax(np.ravel(np.abs(sums - 1.0)))]
    raise ValueError(f"{name} must sum to 1 over the last axis (the k sources); got a sum of {float(bad)!r}.")


def _weights_ok(weights: ArrayLike) -> Any:
  """Per row: finite, non-negative and summing to 1 within ``SUM_TOL``; ``True`` when concrete (checked)."""
  if _validate.concrete_value(weights) is not None:
    return True
  w = jnp.asarray(weights, jnp.float32)
  return jnp.all(jnp.isfinite(w) & (w >= 0.0), axis=-1) & (jnp.abs(jnp.sum(w, axis=-1) - 1.0) <= SUM_TOL)


def _usable(w: jax.Array, ok: Any) -> jax.Array:
  """``w`` where ``ok``, else ``e_0`` (the example itself: no mixing), row by row."""
  if isinstance(ok, (bool, np.bool_)) and ok:
    return w
  identity = jax.nn.one_hot(0, w.shape[-1], dtype=w.dtype)
  return jnp.where(jnp.asarray(ok)[..., None], w, identity)


def kmix_masks(key: jax.Array | None, weights: ArrayLike, *, shape: tuple[int, ...], style: str = "mixup") -> jax.Array:
  """The ``k`` masks of one example, float32 ``[k, *shape]``, summing to 1 at every pixel.

  ``"mixup"``: ``M_m = w_m 1``. ``"categorical"``: each pixel ``j`` picks one source
  ``c_j ~ Categorical(w)`` independently and ``M_m[j] = 1[c_j = m]``, so ``E[M_m] = w_m 1``.

  Args:
    key: a PRNG key; unused (may be ``None``) by ``"mixup"``.
    weights: traced weight vector ``w``, ``[k]`` with ``k >= 2``, non-negative, summing to 1.
    shape: static spatial shape.
    style: static, ``"mixup"`` or ``"categorical"``.

  Returns:
    float32 ``[k, *shape]``.

  >>> kmix_masks(None, jnp.array([0.5, 0.25, 0.25]), shape=(2,)).tolist()
  [[0.5, 0.5], [0.25, 0.25], [0.25, 0.25]]
  >>> m = kmix_masks(jax.random.key(0), jnp.array([0.2, 0.3, 0.5]), shape=(4, 4), style="categorical")
  >>> m.shape, bool((m.sum(0) == 1).all())
  ((3, 4, 4), True)
  """
  _validate.check_choice("style", style, STYLES)
  shape = _validate.check_shape("shape", shape)
  if not hasattr(weights, "shape"):
    weights = np.asarray(weights)
  if len(weights.shape) != 1 or weights.shape[0] < 2:
    raise ValueError(f"weights must be a vector [k] with k >= 2; got shape {tuple(weights.shape)}.")
  _check_weight_values("weights", weights)
  if style == "categorical" and key is None:
    raise ValueError("style='categorical' needs a PRNG key; got key=None.")
  return _masks(key, jnp.asarray(weights, jnp.float32), shape, style)


def _masks(key: jax.Array | None, w: jax.Array, shape: tuple[int, ...], style: str) -> jax.Array:
  """``kmix_masks`` without the checks (``w`` float32 ``[k]``)."""
  k = int(w.shape[0])
  if style == "mixup":
    return jnp.broadcast_to(w.reshape((k,) + (1,) * len(shape)), (k, *shape))
  # Inverse CDF: source c_j = #{m < k - 1 : u_j >= w_0 + ... + w_m}, exact for zero weights.
  cdf = jnp.cumsum(w)[:-1].reshape((1,) * len(shape) + (k - 1,))
  if key is None:
    raise ValueError("style='categorical' draws the sources at random and needs a PRNG key; got key=None.")
  u = jax.random.uniform(key, (*shape, 1), jnp.float32)
  source = jnp.sum(u >= cdf, axis=-1)
  return jnp.moveaxis(jax.nn.one_hot(source, k, dtype=jnp.float32), -1, 0)
