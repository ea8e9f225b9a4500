"""Region methods with ``k`` sources: the grid split into regions, each from one image (Appendix B).

A ``KSourceMethod`` draws, for one example, a partition of the grid into ``k`` regions, one per
source (source 0 is the example, the others its partners from ``pairing.pair_k``):
``x~ = sum_m M_m * x_m`` with one-hot masks ``M_m`` that sum to 1 at every pixel, and labels
``y~ = sum_m mean(M_m) y_m`` (the realised areas). A method may also move a source before it is
mixed (RICAP crops each source at a random place and shows the crop in its tile): ``shifts``
``[k, d]`` says by how much, ``x_m`` being read at ``i + shifts[m]`` for the pixels of its region.

``sample(key, shape=S)`` returns a ``KSample`` with a source axis; the batch's ``draw`` calls it
once (``mode="batch"``) or vmapped per example (``mode="example"``). These laws draw their own
weights: a given ``lam`` raises (``takes_lam`` is false). An unmixed example (``prob``, an invalid
traced hyper-parameter) has source 0 everywhere and is not moved.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _bits, _validate, draws
from msda_jax.masks._base import MixMethod, Sample


class KSample(NamedTuple):
  """One example's partition into ``k`` source regions.

  Attributes:
    lam: float32 ``[k]`` the nominal weights the partition was drawn for.
    mask: float32 ``[k, *S]`` one-hot source masks ``M_m``.
    weight: float32 ``[k]`` the realised areas ``mean(M_m)`` (the label weights).
    shifts: int32 ``[k, d]`` where each source is read from (``x_m[i + shifts[m]]``), or ``None``.
    owner: int32 ``[*S]`` the source of each pixel (``mask`` is its one-hot form).
  """

  lam: jax.Array
  mask: jax.Array
  weight: jax.Array
  shifts: jax.Array | None = None
  owner: jax.Array | None = None


def one_hot_regions(owner: jax.Array, k: int) -> jax.Array:
  """float32 ``[k, *S]`` masks from the source index of every pixel (int ``[*S]``)."""
  return jnp.moveaxis(jax.nn.one_hot(owner, k, dtype=jnp.float32), -1, 0)


class KSourceMethod(MixMethod):
  """Base of the ``k``-source region methods (the module docstring)."""

  default_pairing: ClassVar[str] = "permute"
  takes_lam: ClassVar[bool] = False

  @property
  def lam_shape(self) -> tuple[int, ...]:  # type: ignore[override]
    """A weight per source, ``[k]``."""
    return (self.sources,)

  def _sample(self, key_lam: jax.Array, key_mask: jax.Array, lam: Any, shape: tuple[int, ...], data: Any) -> Sample:
    """The example's own view of the partition (source 0): its mask and its area as a ``Sample``."""
    del lam, data
    drawn = self._partition(key_lam, key_mask, shape)
    return Sample(drawn.weight[0], drawn.mask[0], drawn.weight[0])

  @abc.abstractmethod
  def _partition(self, key_weights: jax.Array, key_regions: jax.Array, shape: tuple[int, ...]) -> KSample:
    """The family's draw of one example's partition."""

  def sample(  # type: ignore[override]
    self, key: jax.Array, *, shape: tuple[int, ...], lam: ArrayLike | None = None, data: Any = None
  ) -> KSample:
    """Draws one example's ``KSample`` (weights ``[k]``, masks ``[k, *S]``) from one key.

    The first half of ``split(key)`` draws the weights, the second the regions.
    """
    del data
    shape = _validate.check_shape("shape", shape)
    if lam is not None:
      raise ValueError(self._no_lam_message())
    self.check_input(shape)
    key_weights, key_regions = _bits.split(key)
    return self._partition(key_weights, key_regions, shape)

  def relabel(self, targets: jax.Array, info: Any, outputs: dict[str, Any]) -> jax.Array:
    """The unmixed ``targets [B, K]`` mixed by the realised areas of ``info`` (outputs unread)."""
    del outputs
    return jnp.einsum("bm,bmk->bk", info.weight, targets[info.partner])

  def check_input(self, spatial: tuple[int, ...], block: int | None = None) -> None:
    if block is not None and self.sources > block:
      raise ValueError(
        f"{type(self).__name__} mixes {self.sources} sources: they must not exceed the block size {block} "
        "(batch / groups), so that each source is a distinct example."
      )

  def draw(self, key: jax.Array, sources: tuple[Any, ...], lam: Any, prob: Any, mixer: Any) -> draws.Draw:
    """The partitions of the batch: a ``Draw`` with a source axis and the sources' shifts.

    Key use: ``split(key, 3)``'s third part draws the partitions (one, or one per example from its
    ``split``), ``fold_in(key, 3)`` the ``prob`` coins.
    """
    del lam
    images = sources[0]["images"]
    batch, spatial, k = images.shape[0], images.shape[1:-1], self.sources
    key_mask = _bits.split(key, 3)[2]
    coins = _bits.uniform(jax.random.fold_in(key, 3), () if mixer.mode == "batch" else (batch,))
    drawn = jnp.reshape(coins < prob, (-1,))  # [1] for the batch, [B] per example
    if mixer.mode == "batch":
      drawn_sample = jax.tree.map(lambda v: v[None], self.sample(key_mask, shape=spatial))
    else:
      drawn_sample = jax.vmap(lambda kk: self.sample(kk, shape=spatial))(_bits.split(key_mask, batch))
    identity = jax.nn.one_hot(0, k, dtype=jnp.float32)
    weight = jnp.broadcast_to(jnp.where(drawn[:, None], drawn_sample.weight, identity), (batch, k))
    nominal = jnp.broadcast_to(jnp.where(drawn[:, None], drawn_sample.lam, identity), (batch, k))
    own = identity.reshape((1, k) + (1,) * len(spatial))
    masks = jnp.where(drawn.reshape((-1, 1) + (1,) * len(spatial)), drawn_sample.mask, own)  # [B | 1, k, *S]
    moves = None
    if drawn_sample.shifts is not None:
      moves = jnp.where(drawn.reshape(-1, 1, 1), drawn_sample.shifts, 0)
    owner = drawn_sample.owner if drawn_sample.owner is not None else jnp.argmax(drawn_sample.mask, axis=1)
    owner = owner.astype(jnp.int32)  # [B | 1, *S]
    return draws.Draw(nominal, masks, weight, jnp.broadcast_to(drawn, (batch,)), moves=moves, owner=owner)
