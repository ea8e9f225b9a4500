"""Co-Mixup (Kim, Choo, Jeong, Song, ICLR 2021): every output built from the blocks of many inputs at once.

The batch is cut into partitions of ``part`` consecutive examples (inside each device's block).
For each partition, the ``part`` outputs' block labels (an ``n x n`` grid, ``n`` drawn per batch
from ``grid_sizes``) minimise ``_comixup_energy``'s energy: the saliency the outputs keep, the
boundaries they create, and a supermodular penalty on outputs that reuse the same inputs; the
solver is the reference's coordinate scheme with a fixed amount of work, inside ``jit``. Output
``i`` is its blocks' inputs' pixels (one gather), and its targets mix the inputs' targets by the
share of blocks each gave (the reference's labels).

In the batch layer it is a ``k``-source method with ``k = part``: source ``s`` of row ``i`` is
row ``i - s`` of its partition (``pairing="roll"`` inside partitions), so every output may read
every input of its partition. No ``lam`` is drawn: the info's ``lam`` and ``weight`` are the
realised shares. ``mode="batch"`` mixes all outputs or none (one ``prob`` coin); ``"example"``
draws a coin per output (an output not mixed is its own input, the others' solve unchanged).
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import _bits, _sharding, draws, lam_laws
from msda_jax import saliency as saliency_lib
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks import _comixup_energy
from msda_jax.masks._base import MixMethod, Sample
from msda_jax.masks._ksources import KSample, one_hot_regions
from msda_jax.needs import ModelView, Needs


def _is_int(value: object) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _upsample(labels: jax.Array, shape: tuple[int, ...]) -> jax.Array:
  """Block labels ``[..., n, n]`` repeated to the pixels ``[..., H, W]`` (nearest)."""
  n = labels.shape[-1]
  out = jnp.repeat(labels, shape[0] // n, axis=-2)
  return jnp.repeat(out, shape[1] // n, axis=-1)


@pytree_dataclass
class CoMixup(MixMethod):
  """Co-Mixup with the reference's CIFAR-100 settings as defaults (its ``m_part`` 20 for batch 100).

  Traced: ``beta`` (boundaries), ``gamma`` (reused inputs), ``eta`` (the prior's weight),
  ``tau`` (the threshold of the reuse penalty, in images; 0 is exact coordinate descent),
  ``omega`` (the compatibility's share of saliency-peak distances) and ``prior_alpha`` (the
  Dirichlet prior's concentration). Static: ``part`` (inputs and outputs per partition, 2 to 16
  by default so that it divides common batch sizes; the reference uses 20), ``grid_sizes`` (the
  block grid sides, one drawn per batch; the reference's default 4, or {2, 4, 8, 16} with -1),
  ``outer`` (passes over the outputs: the reference's ``m_niter`` 4), ``rounds`` and ``sweeps``
  (each output's labeling solve, ``_labeling.solve_pairwise``), ``resolve`` (the reference's
  parting of outputs that draw on the same inputs, in the last pass).

  >>> m = CoMixup()
  >>> m.part, m.grid_sizes, m.sources
  (16, (4,), 16)
  """

  name = "comixup"
  default_pairing: ClassVar[str] = "roll"
  pairings: ClassVar[tuple[str, ...] | None] = ("roll",)
  takes_lam: ClassVar[bool] = False
  _positive = ("prior_alpha",)
  _nonnegative = ("beta", "gamma", "eta", "tau")
  _unit = ("omega",)

  beta: ArrayLike = 0.32
  gamma: ArrayLike = 1.0
  eta: ArrayLike = 0.05
  tau: ArrayLike = 0.83
  omega: ArrayLike = 0.001
  prior_alpha: ArrayLike = 2.0
  part: int = static_field(default=16)
  grid_sizes: tuple[int, ...] = static_field(default=(4,))
  outer: int = static_field(default=4)
  rounds: int = static_field(default=10)
  sweeps: int = static_field(default=2)
  resolve: bool = static_field(default=True)

  def _check(self) -> None:
    if not _is_int(self.part) or self.part < 2:
      raise ValueError(f"part must be an int >= 2 (inputs per partition); got {self.part!r}.")
    sizes = self.grid_sizes
    if not isinstance(sizes, (tuple, list)) or not sizes or not all(_is_int(b) and b >= 1 for b in sizes):
      raise ValueError(f"grid_sizes must be a non-empty tuple of ints >= 1; got {sizes!r}.")
    object.__setattr__(self, "grid_sizes", tuple(sizes))
    if not isinstance(self.resolve, bool):
      raise ValueError(f"resolve must be a bool; got {self.resolve!r}.")
    for name in ("outer", "rounds", "sweeps"):
      value = getattr(self, name)
      if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}.")

  @property
  def sources(self) -> int:  # type: ignore[override]
    """Every input of the partition: ``part``."""
    return self.part

  @property
  def lam_shape(self) -> tuple[int, ...]:  # type: ignore[override]
    """A weight per source, ``[part]``."""
    return (self.part,)

  def source_groups(self, batch: int, groups: int) -> int:
    """The blocks that sources stay in: the partitions, ``batch / part`` of them."""
    del groups
    return batch // self.part

  def needs(self) -> Needs:
    """A saliency map of every image."""
    return Needs(inputs=("saliency",))

  def prepare(self, key: jax.Array, model: ModelView, images: jax.Array, labels: jax.Array) -> dict[str, Any]:
    """``{"saliency": [B, *S]}``: the input gradient of the model's clean loss (``msda_jax.saliency``)."""
    del key, labels
    return {"saliency": saliency_lib.input_saliency(model.loss, model.to_input(images))}

  def relabel(self, targets: jax.Array, info: Any, outputs: dict[str, Any]) -> jax.Array:
    """The unmixed ``targets [B, K]`` mixed by the shares of ``info`` (outputs unread)."""
    del outputs
    return jnp.einsum("bm,bmk->bk", info.weight, targets[info.partner])

  def check_input(self, spatial: tuple[int, ...], block: int | None = None) -> None:
    if len(spatial) != 2:
      raise ValueError(f"CoMixup mixes images [B, H, W, C] (spatial_ndim=2); got spatial shape {spatial}.")
    bad = [b for b in self.grid_sizes if spatial[0] % b or spatial[1] % b]
    if bad:
      raise ValueError(f"grid_sizes must divide both image sides {spatial}: {bad} do not.")
    if block is not None and block % self.part:
      raise ValueError(
        f"part={self.part} must divide the block size {block} (batch / groups): each partition of part inputs "
        "lies in one block."
      )

  # -- one partition ---------------------------------------------------------------------------
  def solve_partition(self, key: jax.Array, saliency: ArrayLike, *, grid_size: int) -> jax.Array:
    """The block labels of one partition, int32 ``[part, n, n]`` (the input of each output block).

    Args:
      key: the partition's key (its halves draw the prior and the starting labeling).
      saliency: float ``[part, H, W]`` non-negative maps of the partition's inputs.
      grid_size: static ``n``, dividing ``H`` and ``W``.
    """
    s = jnp.asarray(saliency, jnp.float32)
    key_prior, key_start = _bits.split(key)
    log_prior = jnp.log(lam_laws.sample_dirichlet(key_prior, self.prior_alpha, self.part) + 1e-8)
    cost = _comixup_energy.unary_costs(_comixup_energy.block_saliency(s, grid_size), log_prior, self.eta)
    compat = _comixup_energy.compatibility(s, self.omega)
    start = jax.random.randint(key_start, (self.part, grid_size, grid_size), 0, self.part)
    return _comixup_energy.solve(
      cost, compat, start, beta=self.beta, gamma=self.gamma, tau=self.tau,
      outer=self.outer, rounds=self.rounds, sweeps=self.sweeps, resolve=self.resolve,
    )  # fmt: skip

  def sample(  # type: ignore[override]
    self, key: jax.Array, *, shape: tuple[int, ...], lam: ArrayLike | None = None, data: Any = None
  ) -> KSample:
    """One partition's draw: ``KSample`` fields with the output axis first.

    ``data``: the saliency ``[part, *S]`` of the partition's inputs. Returns ``lam`` and
    ``weight`` ``[part, part]`` (each output's share of every input), ``mask`` ``[part, part,
    *S]`` (output, input) and ``owner`` ``[part, *S]`` (the input of each output pixel).
    """
    if lam is not None:
      raise ValueError(self._no_lam_message())
    shape = tuple(shape)
    self.check_input(shape)
    if data is None or tuple(jnp.shape(data)) != (self.part, *shape):
      raise ValueError(
        f"CoMixup draws a partition at once: pass data=saliency [part, *S] = {(self.part, *shape)}; "
        f"got {None if data is None else tuple(jnp.shape(data))}."
      )
    key_grid, key_solve = _bits.split(key)
    owner = self._owners(key_grid, key_solve, jnp.asarray(data, jnp.float32)[None], shape)[0]
    mask = jnp.moveaxis(jax.nn.one_hot(owner, self.part, dtype=jnp.float32), -1, 1)
    weight = mask.mean(axis=(2, 3))
    return KSample(weight, mask, weight, None, owner)

  def _sample(self, key_lam: jax.Array, key_mask: jax.Array, lam: Any, shape: tuple[int, ...], data: Any) -> Sample:
    raise TypeError("CoMixup draws a partition at once: call sample(key, shape=S, data=saliency [part, *S]).")

  def _owners(
    self, key_grid: jax.Array, key_solve: jax.Array, saliency: jax.Array, shape: tuple[int, ...]
  ) -> jax.Array:
    """The input of every output pixel, int32 ``[P, part, H, W]``, for partitions' maps ``[P, part, H, W]``."""
    keys = _sharding.shard_like_batch(jax.random.split(key_solve, saliency.shape[0]), saliency)

    def at(b: int, keys: jax.Array, saliency: jax.Array) -> jax.Array:
      solve = lambda k, s: _upsample(self.solve_partition(k, s, grid_size=b), shape)
      return _sharding.map_local(solve, keys, saliency)

    branches = [functools.partial(at, b) for b in self.grid_sizes]
    if len(branches) == 1:
      return branches[0](keys, saliency)
    choice = jax.random.randint(key_grid, (), 0, len(branches))
    return jax.lax.switch(choice, branches, keys, saliency)

  # -- the batch -------------------------------------------------------------------------------
  def draw(self, key: jax.Array, sources: tuple[Any, ...], lam: Any, prob: Any, mixer: Any) -> draws.Draw:
    """Every partition's labels from the saliency: a ``Draw`` with ``k = part`` sources and owners.

    Key use: ``split(key, 3)``'s third part draws the grid side and the partitions' solves,
    ``fold_in(key, 3)`` the ``prob`` coins.
    """
    del lam
    images, saliency = sources[0]["images"], sources[0]["saliency"]
    batch, spatial, k = images.shape[0], images.shape[1:-1], self.part
    key_grid, key_solve = _bits.split(_bits.split(key, 3)[2])
    by_part = saliency.reshape(batch // k, k, *spatial)
    inputs = self._owners(key_grid, key_solve, by_part, spatial)  # [P, k, H, W]: input within the partition
    # Output o reads input u as source s = (o - u) mod k (source s of row o is row o - s).
    outputs = jnp.arange(k, dtype=jnp.int32).reshape(1, k, 1, 1)
    owner = ((outputs - inputs) % k).reshape(batch, *spatial)
    coins = _bits.uniform(jax.random.fold_in(key, 3), () if mixer.mode == "batch" else (batch,))
    applied = jnp.broadcast_to(coins < prob, (batch,))
    owner = jnp.where(applied.reshape(-1, 1, 1), owner, 0)
    mask = one_hot_regions(owner, k).swapaxes(0, 1)  # [B, k, H, W]
    weight = mask.mean(axis=(2, 3))
    return draws.Draw(weight, mask, weight, applied, owner=owner)
