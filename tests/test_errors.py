"""Every bad input raises before any work, with a message that names the argument.

Value checks (``alpha``, ``r``, ``q``, ``lam``, ``prob``, ``label_smoothing``, label values) run
whenever the value is concrete: when a method is built, or when a function gets Python or
numpy numbers. Shape, dtype and option checks are static and also run under ``jax.jit``, at
trace time.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import msda_jax
from msda_jax import masks, pairing

B, H, W, C, K = 4, 8, 8, 3, 5
STATIC = ("num_classes", "mode", "pairing", "groups", "unbounded", "spatial_ndim")
NAN = float("nan")


@pytest.fixture
def no_work(monkeypatch):
  """Makes any mixing work (random draws, one-hot encoding, pairing) fail loudly.

  A check that ran after work had started would then surface as this AssertionError instead
  of the expected ValueError / TypeError.
  """

  def started(*args, **kwargs):
    raise AssertionError("work started before the inputs were validated")

  monkeypatch.setattr(jax.random, "split", started)
  monkeypatch.setattr(jax.nn, "one_hot", started)
  monkeypatch.setattr(pairing, "pair", started)
  monkeypatch.setattr(masks.MixMethod, "sample", started)


def test_no_work_fixture_has_power(no_work):
  """A valid call does reach the work, so the fixture would expose a late check."""
  with pytest.raises(AssertionError, match="work started"):
    mix()


def images(batch=B, dtype=np.float32):
  return np.zeros((batch, H, W, C), dtype)


def labels(batch=B):
  return np.arange(batch) % K


KEY = jax.random.key(0)


def mix(info=False, **overrides):
  """``mix_batch`` (``mix_batch_with_info`` with ``info``) eagerly on a valid batch, with some arguments replaced."""
  args = {"key": KEY, "images": images(), "labels": labels(), "method": msda_jax.Mixup(), "num_classes": K}
  args.update(overrides)
  return (msda_jax.mix_batch_with_info if info else msda_jax.mix_batch)(**args)


# -- hyper-parameters of the methods -----------------------------------------------------------
def positive_fields():
  cases = []
  for name, cls in msda_jax.METHODS.items():
    for field in getattr(cls, "_positive", ()):
      cases += [pytest.param(name, field, bad, id=f"{name}-{field}-{bad}") for bad in (0.0, -1.0, NAN)]
  return cases


@pytest.mark.parametrize(("preset", "field", "bad"), positive_fields())
def test_non_positive_concentration(preset, field, bad):
  with pytest.raises(ValueError, match=rf"^{field} must be > 0"):
    msda_jax.METHODS[preset](**{field: bad})


def test_every_alpha_preset_is_covered():
  covered = {p.values[0] for p in positive_fields()}
  assert covered >= {"mixup", "cutmix", "stochastic_mixup_cutmix", "hmix", "gmix", "bernoulli", "fmix"}


@pytest.mark.parametrize("spec", ["mixup(alpha=0)", "hmix(alpha=-0.5)", "stochastic(cutmix_alpha=0.0)"])
def test_non_positive_alpha_from_string(spec):
  with pytest.raises(ValueError, match=r"alpha must be > 0"):
    msda_jax.from_string(spec)


def test_hmix_r_alpha_must_be_positive():
  with pytest.raises(ValueError, match=r"^r_alpha must be > 0"):
    msda_jax.HMix(r_alpha=0.0)


def test_unbounded_uint8_mix_clips():
  """Extrapolated uint8 mixes (lam outside [0, 1]) saturate at 0 and 255 instead of wrapping.

  The library clips them explicitly; XLA:CPU's float-to-uint8 conversion happens to saturate as
  well, so here the check guards the rounding and the range rather than the clip alone.
  """
  x = np.random.default_rng(1).integers(0, 256, (B, H, W, C)).astype(np.uint8)
  partner = np.roll(x, 1, axis=0).astype(np.float64)
  for lam in (1.5, -0.5):
    mixed = np.asarray(mix(images=x, lam=lam, unbounded=True, pairing="roll")[0], np.float64)
    want = np.clip(np.round(lam * x + (1 - lam) * partner), 0, 255)
    assert (want == 0).any() and (want == 255).any(), "the check needs saturated pixels"
    assert np.abs(mixed - want).max() <= 1.0 and np.mean(mixed == want) > 0.99, lam


@pytest.mark.parametrize("bad", [-0.1, 1.5, NAN])
def test_hmix_r_outside_unit_interval(bad):
  with pytest.raises(ValueError, match=r"^r must "):
    msda_jax.HMix(r=bad)
  with pytest.raises(ValueError, match=r"^r must "):
    msda_jax.HMix(r=bad)


@pytest.mark.parametrize("bad", [-0.1, 1.5, NAN])
def test_q_outside_unit_interval(bad):
  with pytest.raises(ValueError, match=r"^q must "):
    msda_jax.StochasticMixupCutMix(q=bad)
  with pytest.raises(ValueError, match=r"^q must "):
    msda_jax.from_string(f"stochastic(q={bad})") if bad == bad else msda_jax.StochasticMixupCutMix(q=bad)


@pytest.mark.parametrize(
  ("kwargs", "name"),
  [
    ({"scale_min": -0.1}, "scale_min"),
    ({"scale_max": 1.5}, "scale_max"),
    ({"scale_min": 0.9, "scale_max": 0.2}, "scale_min"),
  ],
)
def test_resizemix_scales(kwargs, name):
  with pytest.raises(ValueError, match=rf"^{name} must"):
    msda_jax.ResizeMix(**kwargs)


@pytest.mark.parametrize(
  ("build", "name"),
  [
    (lambda: msda_jax.CutMix(placement="outside"), "placement"),
    (lambda: msda_jax.HMix(placement="center"), "placement"),
    (lambda: msda_jax.StochasticMixupCutMix(placement="wrap"), "placement"),
    (lambda: msda_jax.GMix(scale="paper"), "scale"),
    (lambda: msda_jax.CutMix(placement="outside"), "placement"),
    (lambda: msda_jax.GMix(scale="paper"), "scale"),
  ],
)
def test_bad_option_strings_of_methods(build, name):
  with pytest.raises(ValueError, match=rf"^{name} must be one of"):
    build()


# -- mix_batch -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
  ("mode", "bad"), [("batch", 1.5), ("batch", -0.5), ("batch", NAN), ("example", [0.5, 0.2, 1.2, 0.1])]
)
def test_lam_outside_unit_interval(no_work, mode, bad):
  with pytest.raises(ValueError, match=r"^lam must "):
    mix(lam=bad, mode=mode)


@pytest.mark.parametrize(
  ("mode", "shape"), [("batch", (B,)), ("batch", (1,)), ("example", (B + 1,)), ("example", (B, 1))]
)
def test_lam_of_wrong_shape(no_work, mode, shape):
  with pytest.raises(ValueError, match=r"^lam must have shape"):
    mix(lam=np.full(shape, 0.5), mode=mode)


@pytest.mark.parametrize("mode", ["batch", "example"])
def test_unbounded_lam_gives_masks_outside_unit_interval(mode):
  x = np.random.default_rng(0).uniform(size=(B, H, W, C)).astype(np.float32)
  mixed, targets, info = mix(images=x, lam=1.5, unbounded=True, mode=mode, pairing="roll", info=True)
  np.testing.assert_allclose(np.asarray(info.mask), 1.5)
  np.testing.assert_allclose(np.asarray(mixed), 1.5 * x - 0.5 * np.roll(x, 1, axis=0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(np.asarray(targets).sum(-1), 1.0, rtol=1e-6)  # extrapolated labels
  assert np.asarray(targets).min() < 0.0
  _, _, info = mix(lam=-0.25, unbounded=True, mode=mode, info=True)
  np.testing.assert_allclose(np.asarray(info.mask), -0.25)


@pytest.mark.parametrize("bad", [-0.1, 1.5, NAN])
def test_prob_and_label_smoothing_outside_unit_interval(no_work, bad):
  with pytest.raises(ValueError, match=r"^prob must "):
    mix(prob=bad)
  with pytest.raises(ValueError, match=r"^label_smoothing must "):
    mix(label_smoothing=bad)
  with pytest.raises(ValueError, match=r"^prob must "):
    msda_jax.Mixer(msda_jax.Mixup(), num_classes=K, prob=bad)
  with pytest.raises(ValueError, match=r"^label_smoothing must "):
    msda_jax.Mixer(msda_jax.Mixup(), num_classes=K, label_smoothing=bad)


def bad_batches():
  """``(overrides of mix_batch's arguments, exception, pattern the message matches)``."""
  probs = np.full((B, K), 1.0 / K, np.float32)
  return [
    pytest.param({"labels": probs[:, :-1]}, ValueError, r"labels have width 4 but num_classes=5", id="width"),
    pytest.param({"labels": labels(), "num_classes": None}, ValueError, r"need num_classes", id="int-no-classes"),
    pytest.param(
      {"labels": np.array([0, 1, 5, 2])}, ValueError, r"integer labels must lie in \[0, num_classes=5\)", id="too-big"
    ),
    pytest.param({"labels": np.array([0, -1, 2, 2])}, ValueError, r"integer labels must lie in \[0", id="negative"),
    pytest.param({"labels": np.array([True, False, True, False])}, TypeError, r"^labels must be", id="bool-labels"),
    pytest.param(
      {"labels": labels(B - 1)}, ValueError, r"labels must have the images' batch size 4", id="batch-mismatch"
    ),
    pytest.param(
      {"labels": probs[:-1]}, ValueError, r"labels must have the images' batch size 4", id="batch-mismatch-probs"
    ),
    pytest.param({"labels": np.int32(1)}, ValueError, r"labels must have the images' batch size", id="scalar-label"),
    pytest.param({"labels": probs[..., None]}, ValueError, r"^float labels must be", id="labels-rank"),
    pytest.param({"num_classes": 0}, ValueError, r"^num_classes must be a positive int", id="classes-zero"),
    pytest.param({"images": np.zeros((H, W, C), np.float32)}, ValueError, r"^images must be batched", id="unbatched"),
    pytest.param({"images": [[1.0]]}, TypeError, r"^images must be an array", id="images-list"),
    pytest.param(
      {"images": images(dtype=np.int32)}, TypeError, r"^images must be a float dtype or uint8; got int32", id="int32"
    ),
    pytest.param(
      {"images": images(dtype=bool)}, TypeError, r"^images must be a float dtype or uint8; got bool", id="bool"
    ),
    pytest.param({"mode": "pair"}, ValueError, r"^mode must be one of \('batch', 'example'\); got 'pair'", id="mode"),
    pytest.param({"pairing": "flip"}, ValueError, r"^pairing must be one of .*got 'flip'", id="pairing"),
    pytest.param({"groups": 3}, ValueError, r"^groups=3 must divide the batch size 4", id="groups-3"),
    pytest.param({"groups": 0}, ValueError, r"^groups must be a positive int", id="groups-0"),
    pytest.param({"groups": 2.0}, ValueError, r"^groups must be a positive int", id="groups-float"),
    pytest.param({"spatial_ndim": 0}, ValueError, r"^spatial_ndim must be a positive int", id="spatial-ndim"),
    pytest.param(
      {"spatial_ndim": 3}, ValueError, r"^images must be batched, \[B, \*S, C\] with 3 spatial axes", id="ndim"
    ),
    pytest.param({"method": "mixup"}, TypeError, r"^method must be a MixMethod", id="method-str"),
  ]


@pytest.mark.parametrize(("overrides", "error", "pattern"), bad_batches())
def test_bad_batch(no_work, overrides, error, pattern):
  with pytest.raises(error, match=pattern):
    mix(**overrides)


@pytest.mark.parametrize(
  ("kwargs", "name"),
  [({"mode": "pair"}, "mode"), ({"pairing": "flip"}, "pairing")],
)
def test_bad_mixer_options(kwargs, name):
  with pytest.raises(ValueError, match=rf"^{name} must be one of"):
    msda_jax.Mixer(msda_jax.Mixup(), num_classes=K, **kwargs)


def test_bad_mixer_groups_raises_when_called(no_work):
  mixer = msda_jax.Mixer(msda_jax.Mixup(), num_classes=K, groups=3)
  with pytest.raises(ValueError, match=r"^groups=3 must divide the batch size 4"):
    mixer(KEY, images(), labels())


@pytest.mark.parametrize(
  ("call", "pattern"),
  [
    (lambda: msda_jax.partner_indices(None, 4, pairing="flip"), r"^pairing must be one of"),
    (lambda: msda_jax.partner_indices(None, 6, groups=4), r"^groups=4 must divide the batch size 6"),
    (lambda: msda_jax.pair(None, np.zeros((4, 2)), pairing="permute"), r"pairing='permute' needs a PRNG key"),
  ],
)
def test_bad_pairing_calls(call, pattern):
  with pytest.raises(ValueError, match=pattern):
    call()


# -- from_string ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
  ("spec", "pattern"),
  [
    ("mixupp", r"unknown method 'mixupp'; expected one of"),
    ("cutout(alpha=1.0)", r"unknown method 'cutout'"),
    ("mixup(0.5)", r"keyword arguments only"),
    ("hmix(1.0, r=0.5)", r"keyword arguments only"),
    ("mixup(alpha=x)", r"arguments must be literals; got 'x'"),
    ("mixup(alpha=1.0 / 3)", r"arguments must be literals; got '1.0 / 3'"),
    ("mixup(alpha=math.pi)", r"arguments must be literals"),
    ("mixup(beta=1.0)", r"mixup\(beta=1.0\)'.*Mixup has no argument 'beta'; expected some of \['alpha'\]"),
    ("hmix(alpha=1.0, gamma=2)", r"HMix has no argument 'gamma'"),
    ("mixup(**{'alpha': 1.0})", r"only key=value arguments"),
    ("none(alpha=1.0)", r"'none' takes no arguments"),
    ("mixup(", r"is not of the form"),
    ("mixup.alpha", r"must be 'name' or 'name\(key=value, ...\)'"),
    ("", r"method spec must be a non-empty string"),
    ("   ", r"method spec must be a non-empty string"),
  ],
)
def test_from_string_rejects(spec, pattern):
  with pytest.raises(ValueError, match=pattern):
    msda_jax.from_string(spec)


def test_from_string_rejects_non_strings():
  with pytest.raises(ValueError, match=r"method spec must be a non-empty string"):
    msda_jax.from_string(None)  # type: ignore[arg-type]
  with pytest.raises(ValueError, match=r"method spec must be a non-empty string"):
    msda_jax.from_string(msda_jax.Mixup())  # type: ignore[arg-type]


def test_from_string_accepts_what_it_should():
  assert msda_jax.from_string("none") is None and msda_jax.from_string("Vanilla") is None
  assert isinstance(msda_jax.from_string(" HMix(r=0.75) "), msda_jax.HMix)
  assert math.isclose(float(msda_jax.from_string("stochastic(q=0.3)").q), 0.3, rel_tol=1e-6)


# -- under jax.jit ---------------------------------------------------------------------------------
@functools.cache
def jitted_mix():
  return jax.jit(msda_jax.mix_batch, static_argnames=STATIC)


@pytest.mark.parametrize(
  ("overrides", "error", "pattern"),
  [p for p in bad_batches() if p.id not in ("too-big", "negative", "images-list", "method-str", "scalar-label")],
)
def test_static_errors_raise_at_trace_time(no_work, overrides, error, pattern):
  args = {"images": images(), "labels": labels(), "method": msda_jax.Mixup(), "num_classes": K}
  args.update(overrides)
  images_, labels_, method = args.pop("images"), args.pop("labels"), args.pop("method")
  with pytest.raises(error, match=pattern):
    jitted_mix()(KEY, jnp.asarray(images_), jnp.asarray(labels_), method, **args)


@pytest.mark.parametrize(("mode", "shape"), [("batch", (B,)), ("example", (B + 1,))])
def test_traced_lam_of_wrong_shape_raises_at_trace_time(no_work, mode, shape):
  with pytest.raises(ValueError, match=r"^lam must have shape"):
    jitted_mix()(KEY, images(), labels(), msda_jax.Mixup(), num_classes=K, mode=mode, lam=jnp.full(shape, 0.5))


def test_concrete_values_inside_jit_are_checked_at_trace_time(no_work):
  """A Python number closed over inside the jitted function is concrete: it is checked."""
  for option, pattern in (({"lam": 1.5}, r"^lam must "), ({"prob": 2.0}, r"^prob must ")):

    @jax.jit
    def step(key, x, y, option=option):
      return msda_jax.mix_batch(key, x, y, msda_jax.Mixup(), num_classes=K, **option)

    with pytest.raises(ValueError, match=pattern):
      step(KEY, images(), labels())

  @jax.jit
  def build(x):
    return msda_jax.mix_batch(KEY, x, labels(), msda_jax.HMix(r=1.5), num_classes=K)

  with pytest.raises(ValueError, match=r"^r must "):
    build(images())


def test_bad_method_is_rejected_before_jit():
  """A method with a bad hyper-parameter cannot even be built, so it never reaches a jitted step."""
  with pytest.raises(ValueError, match=r"^alpha must be > 0"):
    jitted_mix()(KEY, images(), labels(), msda_jax.Mixup(alpha=-1.0), num_classes=K)
