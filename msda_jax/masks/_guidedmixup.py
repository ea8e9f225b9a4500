"""GuidedMixup: a per-pixel ratio from the two saliency maps, partners chosen to complement each other.

Kang and Kim (AAAI 2023). Each image's saliency map is blurred (a Gaussian, the reference's 7 x 7
window and sigma 3) and normalised to sum 1, ``S``; the pair is mixed pixel by pixel with the
image's share of the two maps,

    ``M = S_i / (S_i + S_j)``  (1/2 where both are 0),

and the label weight is the realised ``mean(M)``: no ``lam`` is drawn (a given one raises). The
partners come from the ``"greedy"`` pairing (the method's default, ``msda_jax.greedy_pairing``):
one cycle through the block, farthest maps first, so that salient regions meet weak ones.

The saliency: ``variant="ap"`` (the reference's default) is the input gradient of the model's
clean loss (``DataMixMethod.prepare``, one forward and one backward pass in the train step);
``variant="sr"`` the spectral residual of the images (``msda_jax.saliency.spectral_residual``),
which reads no model. Given maps (``saliency=``) are blurred and normalised the same way.
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax import saliency as saliency_lib
from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks._base import Sample
from msda_jax.masks._data import DataMixMethod, PairData
from msda_jax.needs import ModelView

VARIANTS = ("ap", "sr")


def gaussian_blur(saliency: jax.Array, size: int, sigma: ArrayLike) -> jax.Array:
  """float32 ``[*S]``: the map blurred by a ``size``-tap Gaussian of ``sigma`` along each axis, the
  border padded by reflection (``d c b | a b c d | c b a``), as the reference's ``gaussian_blur``.

  >>> out = gaussian_blur(jnp.zeros((5, 5)).at[2, 2].set(1.0), 3, 1.0)
  >>> bool(out[2, 2] > out[1, 2] > out[0, 2]), bool(jnp.allclose(out, out.T))
  (True, True)
  """
  taps = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
  kernel = jnp.exp(-0.5 * (taps / jnp.asarray(sigma, jnp.float32)) ** 2)
  kernel = kernel / jnp.sum(kernel)
  out = jnp.asarray(saliency, jnp.float32)
  half = size // 2
  for axis in range(out.ndim):
    pad = [(0, 0)] * out.ndim
    pad[axis] = (half, half)
    padded = jnp.pad(out, pad, mode="reflect") if out.shape[axis] > half else jnp.pad(out, pad, mode="edge")
    out = jnp.apply_along_axis(lambda v: jnp.convolve(v, kernel, mode="valid"), axis, padded)
  return out


@pytree_dataclass
class GuidedMixup(DataMixMethod):
  """GuidedMixup: ``M = S_i / (S_i + S_j)`` of the blurred, normalised saliency maps; ``"greedy"`` partners.

  ``sigma`` (traced) and ``blur`` (static, odd window) shape the blur; ``variant`` (static) picks
  the saliency the train step computes: ``"ap"`` (input gradient) or ``"sr"`` (spectral residual).

  >>> import numpy as np
  >>> left = np.zeros((8, 8), np.float32); left[:, :4] = 1.0
  >>> data = PairData(jnp.zeros((8, 8, 1)), jnp.ones((8, 8, 1)), jnp.asarray(left), jnp.asarray(1.0 - left))
  >>> out = GuidedMixup().sample(jax.random.key(0), shape=(8, 8), data=data)
  >>> bool(out.mask[0, 0] > 0.5 > out.mask[0, 7]), round(float(out.weight), 4)
  (True, 0.5)
  """

  name = "guidedmixup"
  default_pairing: ClassVar[str] = "greedy"
  takes_lam: ClassVar[bool] = False
  _positive = ("sigma",)

  sigma: ArrayLike = 3.0
  blur: int = static_field(default=7)
  variant: str = static_field(default="ap")

  def _check(self) -> None:
    if isinstance(self.blur, bool) or not isinstance(self.blur, int) or self.blur < 1 or self.blur % 2 == 0:
      raise ValueError(f"blur must be an odd positive int (the window of the Gaussian); got {self.blur!r}.")
    if self.variant not in VARIANTS:
      raise ValueError(f"variant must be one of {VARIANTS} (input gradient, spectral residual); got {self.variant!r}.")

  def prepare(self, key: jax.Array, model: ModelView, images: jax.Array, labels: jax.Array) -> dict[str, Any]:
    """``{"saliency": [B, *S]}``: the input gradient (``"ap"``) or the spectral residual (``"sr"``)."""
    if self.variant == "sr":
      return {"saliency": saliency_lib.spectral_residual(images)}
    return super().prepare(key, model, images, labels)

  def guide(self, saliency: jax.Array) -> jax.Array:
    """float32 ``[B, *S]``: the maps as the method reads them (blurred, normalised to sum 1); the
    ``"greedy"`` pairing measures its distances between these."""
    return jax.vmap(lambda s: _normalized(gaussian_blur(s, self.blur, self.sigma)))(saliency)

  def draw_lam(self, key: jax.Array, count: int | None = None) -> jax.Array:
    """No ``lam``: zeros (the sample's ``lam`` is the realised share)."""
    del key
    return jnp.zeros(() if count is None else (count,), jnp.float32)

  def _pair(self, key: jax.Array, lam: jax.Array, shape: tuple[int, ...], data: PairData) -> Sample:
    del key, lam
    s_i, s_j = self.guide(jnp.stack([data.saliency, data.partner_saliency]))
    total = s_i + s_j
    mask = jnp.where(total > 0, s_i / jnp.where(total > 0, total, 1.0), 0.5).astype(jnp.float32)
    weight = jnp.mean(mask)
    return Sample(weight, mask, weight)


def _normalized(s: jax.Array) -> jax.Array:
  total = jnp.sum(s)
  return jnp.where(total > 0, s / jnp.where(total > 0, total, 1.0), 1.0 / s.size)
