"""PuzzleMix: a three-level block mask that keeps both images' salient parts, and their patches moved there.

Per batch a grid side ``b`` is drawn uniformly from ``grid_sizes`` (the reference's
{2, 4, 8, 16}); per pair the ``b x b`` block labels minimise the energy of
``_puzzle_energy.puzzle_energy`` (saliency lost, the binomial prior towards ``lam``, the
boundaries created), solved inside ``jit`` by the exact solver the grid allows (every labeling
for 2 x 2, dynamic programming over rows up to 5 x 5) or the fixed-iteration one
(``_labeling.solve_iterative``). With ``transport`` each image's patches are then moved within it
towards where the mask keeps it (``_transport``), and the pair is
``M * T_i(x_i) + (1 - M) * T_j(x_j)`` with label weight the mean of ``M``.

The grid side changes shapes, so it is drawn once per batch and the four solves sit in one
``lax.switch`` outside the ``vmap`` over pairs (only the drawn one runs). ``mode="example"``
draws ``lam`` per pair and keeps the batch's grid. Images are read in [0, 1] units (uint8 / 255)
for the boundary term, as the reference computes it in pixel space.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax.tree_util import Partial
from jax.typing import ArrayLike

from msda_jax import _sharding, _validate
from msda_jax import saliency as saliency_lib
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks import _labeling, _puzzle_energy, _transport
from msda_jax.masks._base import Sample
from msda_jax.masks._data import DataMixMethod, PairData, pixel_units
from msda_jax.needs import ModelView, Needs


def _gather(index: jax.Array, x: jax.Array) -> jax.Array:
  """``x [..., H, W, C]`` with each image's pixels gathered by its ``index [..., H * W]``."""
  if index.ndim == 1:
    return _transport.gather_pixels(index, x)
  return jax.vmap(_gather)(index, x)


def _is_int(value: object) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


@pytree_dataclass
class PuzzleMix(DataMixMethod):
  """PuzzleMix with ``lam ~ Beta(alpha, alpha)`` and the reference's CIFAR-100 settings as defaults.

  Traced: ``alpha``, ``beta`` (boundary weight, divided by ``16 b``), ``gamma`` (its data
  share), ``eta`` (prior weight), ``t_eps`` (transport distance weight), ``adv_p`` and
  ``adv_eps`` (the optional adversarial step: the probability of perturbing the images, and the
  partners, of a batch, and the size in 1/255 of the pixel range; the train step computes the
  noise with ``msda_jax.saliency.adversarial_saliency`` when ``adv_p`` is not the constant 0,
  the reference's adversarial runs use 0.1 and 10). Static: ``n_labels``
  (mask values ``1 - k / (n - 1)``), ``neigh_size`` (pooling of the boundary statistics),
  ``transport``, ``t_size`` (transport patch side; -1: the blocks), ``grid_sizes``.

  >>> m = PuzzleMix()
  >>> m.n_labels, m.neigh_size, m.t_size, m.grid_sizes
  (3, 4, 4, (2, 4, 8, 16))
  >>> import numpy as np
  >>> x = jnp.asarray(np.random.default_rng(0).uniform(size=(2, 16, 16, 3)), jnp.float32)
  >>> data = PairData(x[0], x[1], jnp.ones((16, 16)), jnp.ones((16, 16)))
  >>> s = PuzzleMix(grid_sizes=(4,)).sample(jax.random.key(0), shape=(16, 16), lam=0.5, data=data)
  >>> set(np.unique(s.mask).tolist()) <= {0.0, 0.5, 1.0}, float(s.weight) == float(s.mask.mean())
  (True, True)
  """

  name = "puzzlemix"
  _positive = ("alpha",)
  _nonnegative = ("beta", "gamma", "eta", "t_eps", "adv_eps")
  _unit = ("adv_p",)

  alpha: ArrayLike = 1.0
  beta: ArrayLike = 1.2
  gamma: ArrayLike = 0.5
  eta: ArrayLike = 0.2
  t_eps: ArrayLike = 0.8
  adv_p: ArrayLike = 0.0
  adv_eps: ArrayLike = 10.0
  n_labels: int = static_field(default=3)
  neigh_size: int = static_field(default=4)
  transport: bool = static_field(default=True)
  t_size: int = static_field(default=4)
  grid_sizes: tuple[int, ...] = static_field(default=(2, 4, 8, 16))

  def _check(self) -> None:
    _labeling.labeling_levels(self.n_labels)  # raises naming n_labels
    if not _is_int(self.neigh_size) or self.neigh_size < 1:
      raise ValueError(f"neigh_size must be an int >= 1; got {self.neigh_size!r}.")
    if not _is_int(self.t_size) or (self.t_size < 1 and self.t_size != -1):
      raise ValueError(f"t_size must be an int >= 1, or -1 for the blocks; got {self.t_size!r}.")
    if not isinstance(self.transport, bool):
      raise ValueError(f"transport must be a bool; got {self.transport!r}.")
    sizes = self.grid_sizes
    if not isinstance(sizes, (tuple, list)) or not sizes or not all(_is_int(b) and b >= 2 for b in sizes):
      raise ValueError(f"grid_sizes must be a non-empty tuple of ints >= 2; got {sizes!r}.")
    object.__setattr__(self, "grid_sizes", tuple(sizes))

  def adversarial(self) -> bool:
    """Whether the adversarial step is on: ``adv_p`` is not the constant 0 (a traced one counts as on)."""
    concrete = _validate.concrete_value(self.adv_p)
    return concrete is None or bool(concrete != 0.0)

  def needs(self) -> Needs:
    """The saliency; the adversarial ``perturbation`` is accepted (``prepare`` makes it when ``adversarial()``)."""
    return Needs(inputs=("saliency",), optional=("perturbation",))

  def prepare(self, key: jax.Array, model: ModelView, images: jax.Array, labels: jax.Array) -> dict[str, Any]:
    """The saliency, and with ``adversarial()`` the noise from the same one gradient (``adversarial_saliency``)."""
    if not self.adversarial():
      return super().prepare(key, model, images, labels)
    out = saliency_lib.adversarial_saliency(
      key, model.loss, images, adv_p=self.adv_p, adv_eps=self.adv_eps, to_input=model.to_input
    )
    return {"saliency": out.map, "perturbation": out.perturbation}

  def check_input(self, spatial: tuple[int, ...], block: int | None = None) -> None:
    del block
    if len(spatial) != 2 or spatial[0] != spatial[1]:
      raise ValueError(f"PuzzleMix mixes square images [B, H, H, C] (spatial_ndim=2); got spatial shape {spatial}.")
    bad = [b for b in self.grid_sizes if spatial[0] % b]
    if bad:
      raise ValueError(
        f"grid_sizes must divide the image side {spatial[0]}: {bad} do not (e.g. grid_sizes=(2, 4) for 28 x 28)."
      )

  def _solve(self, b: int, lam: jax.Array, data: PairData) -> tuple[jax.Array, ...]:
    """The batch's masks ``[B, H, W]`` and gathers ``[B, H * W]`` at the static grid side ``b``."""
    solve = functools.partial(
      _puzzle_energy.solve_pair,
      b=b, t_size=self.t_size, t_eps=self.t_eps, transport=self.transport, n_labels=self.n_labels,
      beta=self.beta, gamma=self.gamma, eta=self.eta, neigh_size=self.neigh_size,
    )  # fmt: skip
    image, partner = pixel_units(data.image), pixel_units(data.partner)
    out = _sharding.map_local(solve, image, partner, data.saliency, data.partner_saliency, lam)
    return tuple(v for v in out if v is not None)

  def energy(self, data: PairData, lam: ArrayLike, *, grid_size: int) -> _puzzle_energy.PuzzleEnergy:
    """The labeling energy of one pair on the ``grid_size x grid_size`` block grid, term by term.

    Args:
      data: one pair, ``PairData(image [H, H, C], partner [H, H, C], saliency [H, H],
        partner_saliency [H, H])`` (images in [0, 1] or uint8, read in [0, 1] units as ``sample``
        reads them).
      lam: the mixing ratio in [0, 1] (the prior's target).
      grid_size: static grid side ``b``, dividing ``H`` (need not be one of ``grid_sizes``).

    Returns:
      A ``PuzzleEnergy``: the saliency, boundary and prior terms, the unary cost and edge weights
      the solver reads, and the labels it returns (``levels[labels]`` is the block mask that
      ``sample`` makes at this grid side, before transport).

    >>> import msda_jax
    >>> x = jnp.zeros((8, 8, 1)); s = jnp.ones((8, 8))
    >>> e = msda_jax.PuzzleMix().energy(PairData(x, x, s, s), 0.5, grid_size=2)
    >>> e.unary.shape, e.labels.shape
    ((2, 2, 3), (2, 2))
    """
    if not _is_int(grid_size) or grid_size < 2:
      raise ValueError(f"grid_size must be an int >= 2; got {grid_size!r}.")
    image, partner = pixel_units(data.image), pixel_units(data.partner)
    if image.ndim != 3 or image.shape[0] != image.shape[1] or image.shape != partner.shape:
      raise ValueError(
        f"data must hold one pair: image and partner [H, H, C] alike; got {image.shape} and {partner.shape}."
      )
    if image.shape[0] % grid_size:
      raise ValueError(f"grid_size must divide the image side {image.shape[0]}; got {grid_size}.")
    return _puzzle_energy.energy_terms(
      data.saliency, data.partner_saliency, image, partner, lam,
      b=grid_size, n_labels=self.n_labels, beta=self.beta, gamma=self.gamma, eta=self.eta, neigh_size=self.neigh_size,
    )  # fmt: skip

  def _sample_pairs(self, key: jax.Array, shape: tuple[int, ...], lam: jax.Array, data: PairData) -> Sample:
    branches = [functools.partial(self._solve, b) for b in self.grid_sizes]
    if len(branches) == 1:
      out = branches[0](lam, data)
    else:
      choice = jax.random.randint(key, (), 0, len(branches))
      out = jax.lax.switch(choice, branches, lam, data)
    mask = out[0]
    weight = jnp.mean(mask, axis=(1, 2))
    if not self.transport:
      return Sample(lam, mask, weight)
    return Sample(lam, mask, weight, paste=Partial(_gather, out[2]), keep=Partial(_gather, out[1]))
