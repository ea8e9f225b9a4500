"""GuidedMixup: the greedy cycle, the per-pixel ratio of blurred maps, the spectral residual.

Each piece is compared with a numpy rewriting of its rule: the cycle (farthest pair first, then
the farthest unvisited column from the last one) on random distance matrices (seed 8, 30
matrices of 2 to 17 rows), whose result is one cycle through every row; the mask
``S_i / (S_i + S_j)`` from an explicit 7-tap Gaussian convolution, borders mirrored (seed 9); the spectral residual
from numpy's FFT. In ``mix_batch`` the partners are the cycle of the blurred maps' distances, and
a wrong rule (the nearest maps instead of the farthest) gives other partners.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from scipy import ndimage
from test_errors import no_work  # noqa: F401 (a fixture)

import msda_jax
from msda_jax import greedy_pairing, saliency
from msda_jax.masks import _guidedmixup


def numpy_cycle(distance, farthest=True):
  d = np.array(distance, np.float64)
  sign = 1.0 if farthest else -1.0
  d = sign * d
  np.fill_diagonal(d, -np.inf)
  n = d.shape[0]
  row, col = divmod(int(np.argmax(d)), n)
  first, order = row, np.zeros(n, int)
  order[row] = col
  d[:, row] = -np.inf
  for _ in range(n - 2):
    row, col = col, int(np.argmax(d[col]))
    order[row] = col
    d[:, row] = -np.inf
  order[col] = first
  return order


def test_the_cycle_matches_its_numpy_rewriting():
  rng = np.random.default_rng(8)
  for n in list(range(2, 17)) * 2:
    distance = rng.uniform(size=(n, n)).astype(np.float32)
    distance = distance + distance.T
    ours = np.asarray(greedy_pairing.greedy_cycle(jnp.asarray(distance)))
    np.testing.assert_array_equal(ours, numpy_cycle(distance))
    # One cycle through every row, nobody their own partner.
    seen, here = set(), 0
    for _ in range(n):
      seen.add(here)
      here = ours[here]
    assert here == 0 and len(seen) == n and (ours != np.arange(n)).all()


def blurred(s):
  taps = np.arange(7) - 3.0
  kernel = np.exp(-0.5 * (taps / 3.0) ** 2)
  kernel /= kernel.sum()
  out = ndimage.convolve1d(np.asarray(s, np.float64), kernel, axis=0, mode="mirror")
  out = ndimage.convolve1d(out, kernel, axis=1, mode="mirror")
  return out / out.sum()


def test_the_mask_is_the_share_of_the_blurred_maps():
  rng = np.random.default_rng(9)
  for i in range(5):
    s_i, s_j = rng.gamma(0.3, size=(2, 12, 10)).astype(np.float32)
    data = msda_jax.PairData(jnp.zeros((12, 10, 3)), jnp.ones((12, 10, 3)), jnp.asarray(s_i), jnp.asarray(s_j))
    out = msda_jax.GuidedMixup().sample(jax.random.key(i), shape=(12, 10), data=data)
    a, b = blurred(s_i), blurred(s_j)
    np.testing.assert_allclose(np.asarray(out.mask), a / (a + b), rtol=2e-5)
    assert float(out.weight) == pytest.approx(float(np.mean(a / (a + b))), rel=1e-5)


def test_the_batch_is_paired_along_the_cycle_of_the_blurred_maps():
  images = jax.random.uniform(jax.random.key(1), (12, 10, 10, 3))
  maps = jax.random.uniform(jax.random.key(2), (12, 10, 10)) ** 6
  method = msda_jax.GuidedMixup()
  _, targets, info = msda_jax.mix_batch_with_info(
    jax.random.key(3), images, jnp.arange(12) % 4, method, num_classes=4, saliency=maps, groups=2
  )
  guided = np.stack([blurred(m) for m in np.asarray(maps)]).reshape(2, 6, -1)
  for g in range(2):
    distance = np.linalg.norm(guided[g][:, None] - guided[g][None], axis=-1)
    np.testing.assert_array_equal(np.asarray(info.partner)[6 * g : 6 * g + 6] - 6 * g, numpy_cycle(distance))
    assert not np.array_equal(numpy_cycle(distance), numpy_cycle(distance, farthest=False))
  np.testing.assert_allclose(np.asarray(targets).sum(-1), 1.0, atol=1e-6)


def test_spectral_residual_matches_numpy():
  x = np.random.default_rng(10).uniform(size=(2, 16, 12, 3)).astype(np.float32)
  grey = x.mean(-1).astype(np.float64)
  f = np.fft.fft2(grey)
  amplitude = np.sqrt(f.real**2 + f.imag**2 + 1e-10)
  local = ndimage.uniform_filter(np.log(amplitude), size=(1, 3, 3), mode="nearest")
  want = np.abs(np.fft.ifft2(f * np.exp(np.log(amplitude) - local) / amplitude))
  np.testing.assert_allclose(np.asarray(saliency.spectral_residual(jnp.asarray(x))), want, rtol=2e-3, atol=1e-5)


def test_the_train_step_runs_both_variants():
  from msda_jax.train import init_train_state, make_train_step
  from msda_jax.train.models import SmallCNN

  tx = optax.sgd(0.1)
  graphdef, state, opt = init_train_state(SmallCNN(5, width=4, in_channels=3, rngs=nnx.Rngs(0)), tx)
  batch = {"image": jax.random.uniform(jax.random.key(4), (8, 16, 16, 3)), "label": jnp.arange(8) % 5}
  for variant in _guidedmixup.VARIANTS:
    mixer = msda_jax.Mixer(msda_jax.GuidedMixup(variant=variant), num_classes=5)
    step = jax.jit(make_train_step(graphdef=graphdef, tx=tx, mixer=mixer, weight_decay=0.0))
    assert "callback" not in step.lower(state, opt, batch, jax.random.key(0)).as_text()
    assert np.isfinite(float(step(state, opt, batch, jax.random.key(0))[2]["loss"]))


@pytest.mark.parametrize(
  "build, call, pattern",
  [
    ({"blur": 4}, {}, r"blur must be an odd positive int"),
    ({"variant": "grad"}, {}, r"variant must be one of \('ap', 'sr'\)"),
    ({}, {"lam": 0.5}, r"lam cannot be given to GuidedMixup"),
    ({}, {"saliency": None}, r"GuidedMixup reads the images: pass saliency="),
  ],
)
@pytest.mark.usefixtures("no_work")
def test_bad_input_raises_before_any_work(build, call, pattern):
  with pytest.raises(ValueError, match=pattern):
    method = msda_jax.GuidedMixup(**build)
    kwargs = {"saliency": jnp.ones((4, 8, 8))} | call
    msda_jax.mix_batch(jax.random.key(0), jnp.ones((4, 8, 8, 3)), jnp.arange(4), method, num_classes=4, **kwargs)


def test_the_greedy_pairing_needs_maps():
  with pytest.raises(ValueError, match=r"pairing='greedy' pairs examples by their saliency maps"):
    msda_jax.mix_batch(
      jax.random.key(0), jnp.ones((4, 8, 8, 3)), jnp.arange(4), msda_jax.Mixup(), num_classes=4, pairing="greedy"
    )
