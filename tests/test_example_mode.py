"""``mode="example"``: every example its own draw, its own ``prob`` coin, and the method's ``lam`` law.

The conformance suite checks that example mode mixes correctly; these tests check that the
draws really are per example: the masks and ratios differ between examples (one draw broadcast
over the batch fails), the share of examples mixed matches ``prob`` (binomial), and the data
methods' ratios follow ``Beta(alpha, alpha)`` (Kolmogorov-Smirnov).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import msda_jax

CLASSES = 3


def batch(size, shape, seed=0):
  rng = np.random.default_rng(seed)
  images = jnp.asarray(rng.uniform(size=(size, *shape, 3)), jnp.float32)
  saliency = jnp.asarray(rng.gamma(0.5, size=(size, *shape)), jnp.float32)
  return images, jnp.arange(size) % CLASSES, saliency


def mix_with_info(method, images, labels, saliency=None, **options):
  """``mix_batch_with_info`` in example mode, compiled (one program per call site)."""
  extra = {"saliency": saliency} if saliency is not None else {}
  run = jax.jit(
    lambda key: msda_jax.mix_batch_with_info(
      key, images, labels, method, num_classes=CLASSES, mode="example", **extra, **options
    )
  )
  return run(jax.random.key(0))


@pytest.mark.parametrize("spec", ["cutmix", "fmix", "bernoulli", "mixup"])
def test_each_example_gets_its_own_draw(spec):
  """Key 0, 12 examples of 10 x 13: the 12 ratios are distinct, and so are the 12 masks (Mixup's
  constant masks included, being their ratios); each mixed image is its own mask's mix. One draw
  broadcast over the batch gives 12 equal masks and fails."""
  images, labels, _ = batch(12, (10, 13))
  mixed, _, info = mix_with_info(msda_jax.from_string(spec), images, labels)
  lam, mask, partner = np.asarray(info.lam), np.asarray(info.mask), np.asarray(info.partner)
  assert mask.shape == (12, 10, 13)
  assert len(np.unique(lam)) == 12, f"{spec}: ratios {lam}"
  assert len({m.tobytes() for m in mask}) == 12, f"{spec}: some examples share a mask"
  x, m = np.asarray(images, np.float64), mask[..., None].astype(np.float64)
  np.testing.assert_allclose(np.asarray(mixed), m * x + (1 - m) * x[partner], atol=1e-5)


P = 0.3
N_PROB = 4000
Z_PROB = 4.5


@pytest.mark.parametrize("spec", ["cutmix", "saliencymix"])
def test_prob_is_the_share_of_examples_mixed(spec):
  """Key 0, 4000 examples of 4 x 4, prob 0.3: the number mixed (``info.applied``; reverse pairing
  of an even batch pairs nobody with itself) is Binomial(4000, 0.3), accepted within 4.5 standard
  deviations (29): 1200 +- 130 (this key: 1202 for both methods). The same criterion rejects
  prob 0.5 (2000) and one coin for the whole batch (0 or 4000). The examples not mixed are
  returned as they were, with weight 1."""
  method = msda_jax.from_string(spec)
  images, labels, saliency = batch(N_PROB, (4, 4))
  mixed, _, info = mix_with_info(method, images, labels, saliency if spec == "saliencymix" else None, prob=P)
  applied = np.asarray(info.applied)
  count = int(applied.sum())
  sd = np.sqrt(N_PROB * P * (1 - P))
  assert abs(count - N_PROB * P) < Z_PROB * sd, f"{spec}: {count} of {N_PROB} mixed at prob {P}"
  for wrong in (0.5, 0.0, 1.0):  # power: another probability, or a single coin for the batch
    wrong_sd = max(np.sqrt(N_PROB * wrong * (1 - wrong)), sd)
    assert abs(count - N_PROB * wrong) > Z_PROB * wrong_sd
  np.testing.assert_array_equal(np.asarray(mixed)[~applied], np.asarray(images)[~applied])
  np.testing.assert_array_equal(np.asarray(info.weight)[~applied], 1.0)


N_LAM = 2000
P_MIN = 1e-3  # smallest accepted KS p-value
P_POWER = 1e-6  # largest p-value accepted as a rejection of a wrong law


@pytest.mark.parametrize(
  ("spec", "alpha"), [("puzzlemix(grid_sizes=(2,), transport=False, alpha=0.4)", 0.4), ("saliencymix(alpha=2.0)", 2.0)]
)
def test_data_methods_draw_lam_from_beta_alpha_alpha_per_example(spec, alpha):
  """Key 0, one batch of 2000 pairs of 4 x 4 images in example mode: the 2000 ratios
  ``info.lam`` pass ``scipy.stats.kstest`` against Beta(alpha, alpha) at p > 1e-3 (this key: 0.27
  for PuzzleMix, 0.70 for SaliencyMix), and the same sample rejects the default law Beta(1, 1) at
  p < 1e-6 (the method's alpha is used). One ratio broadcast over the batch has a KS distance near
  1 and fails."""
  method = msda_jax.from_string(spec)
  images, labels, saliency = batch(N_LAM, (4, 4))
  _, _, info = mix_with_info(method, images, labels, saliency)
  lam = np.asarray(info.lam, np.float64)
  assert lam.shape == (N_LAM,) and np.all((lam >= 0) & (lam <= 1))
  p = stats.kstest(lam, stats.beta(alpha, alpha).cdf).pvalue
  assert p > P_MIN, f"{spec}: KS p = {p:.2e} against Beta({alpha}, {alpha}), N = {N_LAM}"
  p_wrong = stats.kstest(lam, stats.beta(1.0, 1.0).cdf).pvalue
  assert p_wrong < P_POWER, f"{spec}: KS fails to reject Beta(1, 1): p = {p_wrong:.2e}"
