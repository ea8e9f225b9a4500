"""SaliencyMix: CutMix's box centred at the most salient pixel of the partner.

The box has CutMix's sides for ``lam ~ Beta(alpha, alpha)`` (``_box.cut_sizes``), starts at
``peak - size // 2`` and is clipped at the border, and receives the partner there; the label
weight is the realised share outside the clipped box. The peak is the first maximum of the
partner's saliency map in row-major order (a map with no positive value gives the first pixel).
The reference computes one box for the whole batch from the first partner's spectral-residual
saliency; here every pair's box is centred on its own partner's peak, from any map given
(``msda_jax.saliency``'s input gradient in the train step), and ``mode="batch"`` shares ``lam``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from msda_jax._dataclass import pytree_dataclass, static_field
from msda_jax.masks import _box
from msda_jax.masks._base import Sample
from msda_jax.masks._cutmix import check_box_options
from msda_jax.masks._data import DataMixMethod, PairData


@pytree_dataclass
class SaliencyMix(DataMixMethod):
  """SaliencyMix: the partner's box of nominal area ``1 - lam`` around its saliency peak.

  ``box_sides`` as CutMix's (``"floor"`` or ``"even"``).

  >>> import numpy as np
  >>> s = np.zeros((8, 8)); s[6, 1] = 1.0
  >>> data = PairData(jnp.zeros((8, 8, 3)), jnp.ones((8, 8, 3)), jnp.zeros((8, 8)), jnp.asarray(s))
  >>> out = SaliencyMix().sample(jax.random.key(0), shape=(8, 8), lam=0.75, data=data)
  >>> np.argwhere(np.asarray(out.mask) == 0).min(0).tolist(), float(out.weight)  # the 4 x 4 box from (4, -1), clipped
  ([4, 0], 0.8125)
  """

  name = "saliencymix"
  _positive = ("alpha",)

  alpha: ArrayLike = 1.0
  box_sides: str = static_field(default="floor")

  def _check(self) -> None:
    check_box_options("clip", self.box_sides)

  def _pair(self, key: jax.Array, lam: jax.Array, shape: tuple[int, ...], data: PairData) -> Sample:
    del key
    size = _box.cut_sizes(lam, shape, sides=self.box_sides)
    peak = jnp.asarray(jnp.unravel_index(jnp.argmax(data.partner_saliency), shape), jnp.int32)
    start = peak - size // 2
    mask = jnp.where(_box.box_indicator(start, size, shape), 0.0, 1.0).astype(jnp.float32)
    return Sample(lam, mask, _box.box_complement_fraction(start, size, shape))
