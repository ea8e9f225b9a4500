"""The one sampling call, the platform forms of ``mix_batch``, and the options migrating users need."""

import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import msda_jax

SPECS = (
  "mixup",
  "cutmix",
  "stochastic",
  "hmix",
  "hmix(r_alpha=0.5)",
  "gmix",
  "bernoulli",
  "fmix",
  "resizemix",
  "mixture(methods=('mixup', 'fmix', 'cutmix'))",
)
FAST = {"xla_backend_optimization_level": 0}


def _batch(batch=6, shape=(12, 10)):
  rng = np.random.default_rng(0)
  return jnp.asarray(rng.uniform(0, 1, (batch, *shape, 3)), jnp.float32), jnp.arange(batch) % 4


@pytest.mark.parametrize("spec", SPECS)
def test_sample_is_one_draw_with_its_weight(spec):
  """``sample``: float32 ``lam``, ``mask [*S]``, ``weight == mean(mask)``; a given lam keeps the mask's draws."""
  method = msda_jax.from_string(spec)
  key = jax.random.key(3)
  drawn = jax.jit(lambda k, m: m.sample(k, shape=(9, 7)), compiler_options=FAST)(key, method)
  assert isinstance(drawn, msda_jax.Sample)
  assert drawn.mask.shape == (9, 7) and drawn.mask.dtype == jnp.float32
  assert drawn.lam.shape == drawn.weight.shape == () and drawn.weight.dtype == jnp.float32
  np.testing.assert_allclose(float(drawn.weight), float(drawn.mask.mean()), atol=1e-6)
  again = method.sample(key, shape=(9, 7), lam=drawn.lam)
  np.testing.assert_array_equal(np.asarray(again.mask), np.asarray(drawn.mask))
  assert (drawn.paste is not None) == (spec == "resizemix")


def test_sample_rejects_a_batched_lam():
  with pytest.raises(ValueError, match=r"lam must be a scalar for one example"):
    msda_jax.Mixup().sample(jax.random.key(0), shape=(4, 4), lam=jnp.ones(3))


@pytest.mark.parametrize("mode", ["batch", "example"])
@pytest.mark.parametrize("spec", [*SPECS, "mixup|derange"])
def test_accelerator_form_equals_the_cpu_form(spec, mode):
  """The form compiled for an accelerator (``platform="accelerator"``) gives the CPU form's numbers
  (the mixture's switch, FMix's threshold and the derangement's rounds included)."""
  images, labels = _batch()
  spec, _, pairing = spec.partition("|")
  method = msda_jax.from_string(spec)

  def run(platform):
    mix = lambda k, x, y, m: msda_jax.mix_batch_with_info(
      k, x, y, m, num_classes=4, mode=mode, prob=0.8, platform=platform, pairing=pairing or None
    )
    return jax.jit(mix, compiler_options=FAST)(jax.random.key(1), images, labels, method)

  cpu = run("cpu")
  accelerator = run("accelerator")
  for a, b in zip(jax.tree.leaves(cpu), jax.tree.leaves(accelerator), strict=True):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_the_program_keeps_only_the_form_of_its_platform():
  """Lowered for the CPU, the batch mask is made in a conditional; forced off the CPU, it is not."""
  images, labels = _batch()

  def conditionals(platform):
    mix = lambda k, x, y: msda_jax.mix_batch(k, x, y, msda_jax.Bernoulli(), num_classes=4, platform=platform)
    text = jax.jit(mix).lower(jax.random.key(0), images, labels).compile().as_text()
    return sum(" conditional(" in line for line in text.splitlines())

  assert conditionals("auto") == 1
  assert conditionals("accelerator") == 0


def test_changing_hyperparameters_never_retraces():
  """alpha, r, prob, label_smoothing and lam of a Mixer are traced: one trace for many values.

  Each change is made alone from the same Mixer and key, and changes the result (alpha and r the
  images and targets, prob the images, label_smoothing the targets only); an int 0 for
  label_smoothing is neither a new program nor a new result. A lam given where there was none is
  another program, in which a new lam again changes the result without a retrace.
  """
  images, labels = _batch()

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step(key, x, y, mixer):
    return mixer(key, x, y)

  base = msda_jax.Mixer(msda_jax.HMix(), num_classes=4)
  run = lambda mixer: [np.asarray(v) for v in step(jax.random.key(0), images, labels, mixer)]
  reference = run(base)
  changes = {
    "prob": {"prob": 0.5},
    "label_smoothing": {"label_smoothing": 0.1},
    "r": {"method": msda_jax.HMix(r=0.2)},
    "alpha": {"method": msda_jax.HMix(alpha=3.0)},
  }
  out = {name: run(base.replace(**change)) for name, change in changes.items()}
  for name, (x, y) in out.items():
    assert not (np.allclose(x, reference[0]) and np.allclose(y, reference[1])), f"{name} alone changed nothing"
  np.testing.assert_array_equal(out["label_smoothing"][0], reference[0])  # the targets only
  assert not np.allclose(out["r"][0], reference[0]) and not np.allclose(out["alpha"][1], reference[1])
  same = run(base.replace(label_smoothing=0))
  for a, b in zip(same, reference, strict=True):
    np.testing.assert_array_equal(a, b)
  with_lam = base.replace(lam=0.25)
  with pytest.raises(AssertionError):  # a lam given where there was none is another program
    step(jax.random.key(0), images, labels, with_lam)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def step_with_lam(key, x, y, mixer):
    return mixer(key, x, y)

  low = [np.asarray(v) for v in step_with_lam(jax.random.key(0), images, labels, with_lam)]
  high = [np.asarray(v) for v in step_with_lam(jax.random.key(0), images, labels, with_lam.replace(lam=0.75))]
  assert not np.allclose(low[0], high[0]) and not np.allclose(low[1], high[1])


def test_replace_checks_the_new_values():
  with pytest.raises(ValueError, match=r"^alpha must be > 0"):
    msda_jax.Mixup().replace(alpha=-1.0)
  with pytest.raises(ValueError, match=r"^prob must "):
    msda_jax.Mixer(msda_jax.Mixup()).replace(prob=2.0)
  assert dataclasses.replace(msda_jax.CutMix(), alpha=0.5).alpha == 0.5


def test_nominal_label_weight_is_lam():
  """``label_weight='nominal'`` (timm's ``correct_lam=False``): label rows weighted by lam, not the mask mean."""
  images, labels = _batch()
  out = msda_jax.mix_batch_with_info(
    jax.random.key(2),
    images,
    labels,
    msda_jax.CutMix(),
    num_classes=4,
    lam=0.7,
    label_weight="nominal",
  )
  realised = msda_jax.mix_batch_with_info(jax.random.key(2), images, labels, msda_jax.CutMix(), num_classes=4, lam=0.7)
  np.testing.assert_array_equal(np.asarray(out[0]), np.asarray(realised[0]))
  np.testing.assert_allclose(np.asarray(out[2].weight), 0.7, atol=1e-7)
  assert not np.allclose(np.asarray(realised[2].weight), 0.7)  # the clipped box of a 12 x 10 image
  with pytest.raises(ValueError, match=r"label_weight must be one of"):
    msda_jax.mix_batch(jax.random.key(2), images, labels, msda_jax.CutMix(), num_classes=4, label_weight="lam")


def test_an_example_paired_with_itself_is_not_applied():
  images, labels = _batch(batch=5)
  *_, info = msda_jax.mix_batch_with_info(jax.random.key(0), images, labels, msda_jax.Mixup(), num_classes=4)
  assert np.asarray(info.applied).tolist() == [True, True, False, True, True]


def test_derange_pairs_nobody_with_itself():
  images, labels = _batch(batch=8)
  mix = lambda k: msda_jax.mix_batch_with_info(k, images, labels, msda_jax.Mixup(), num_classes=4, pairing="derange")
  info = jax.jit(jax.vmap(mix), compiler_options=FAST)(jax.random.split(jax.random.key(0), 20))[2]
  assert (np.asarray(info.partner) != np.arange(8)).all() and np.asarray(info.applied).all()


def test_k_sample_mixing_by_name_and_through_the_mixer():
  images, labels = _batch(batch=6)
  method = msda_jax.from_string("mix_k_batch(k=3, alpha=0.7)")
  assert method == method and isinstance(method, msda_jax.KMix) and method.k == 3
  mixer = msda_jax.Mixer(method, num_classes=4, pairing="roll")
  x, y = jax.jit(lambda k, x, y, m: m(k, x, y))(jax.random.key(4), images, labels, mixer)
  ref = msda_jax.mix_k_batch(jax.random.key(4), images, labels, k=3, alpha=0.7, num_classes=4)
  np.testing.assert_allclose(np.asarray(x), np.asarray(ref[0]), atol=1e-6)
  np.testing.assert_allclose(np.asarray(y), np.asarray(ref[1]), atol=1e-6)
  # Built with its defaults, a KMix mixer pairs by "roll" (it used to build with "reverse" and raise
  # on its first call); a pairing with no k-source form is refused when the mixer is built.
  default = msda_jax.Mixer(method, num_classes=4)
  assert default.pairing == "roll"
  np.testing.assert_array_equal(np.asarray(default(jax.random.key(4), images, labels)[0]), np.asarray(ref[0]))
  with pytest.raises(ValueError, match=r"^pairing must be one of \('roll', 'permute'\) for k-sample mixing"):
    msda_jax.Mixer(method, num_classes=4, pairing="reverse")
  *_, info = msda_jax.mix_k_batch_with_info(jax.random.key(0), images, labels, k=3, num_classes=4, prob=0.0)
  assert not np.asarray(info.applied).any()
  np.testing.assert_array_equal(np.asarray(info.weight[:, 0]), 1.0)


def test_every_registered_method_is_reachable_by_name():
  for name, cls in msda_jax.METHODS.items():
    assert type(msda_jax.from_string(name)) is cls
  assert type(msda_jax.from_string("stochastic(q=0.3)")) is msda_jax.StochasticMixupCutMix


@pytest.mark.parametrize("spec", ["cutmix", "hmix", "stochastic(q=0.0)"])
def test_even_box_sides(spec):
  """``box_sides="even"``: the box inside the image has even sides, the floor's rounded down to even."""
  floor = msda_jax.from_string(spec).replace(placement="inside")
  even = floor.replace(box_sides="even")
  for seed in range(30):
    key = jax.random.key(seed)
    sides = []
    for method in (floor, even):
      box = np.asarray(method.sample(key, shape=(23, 17), lam=0.2 + 0.02 * seed).mask) == 0.0
      rows, cols = np.nonzero(box)
      sides.append((np.ptp(rows) + 1, np.ptp(cols) + 1) if rows.size else (0, 0))
    assert sides[1] == tuple(2 * (s // 2) for s in sides[0]), (seed, sides)
  with pytest.raises(ValueError, match=r"^box_sides must be one of"):
    floor.replace(box_sides="round")


def test_cutmix_minmax_draws_the_sides():
  """timm's ``cutmix_minmax``: sides uniform in [int(0.2 n), int(0.8 n)), inside, lam = the share left.

  seed 0, 600 draws on 10 x 20: every side length of the range appears (6 and 12 values).
  """
  method = msda_jax.CutMix(minmax=(0.2, 0.8))
  draws = jax.vmap(lambda k: method.sample(k, shape=(10, 20)))(jax.random.split(jax.random.key(0), 600))
  box = np.asarray(draws.mask) == 0.0
  heights, widths = box.any(axis=2).sum(axis=1), box.any(axis=1).sum(axis=1)
  assert set(heights.tolist()) == set(range(2, 8)) and set(widths.tolist()) == set(range(4, 16))
  np.testing.assert_array_equal(box.sum(axis=(1, 2)), heights * widths)  # one box, fully inside
  np.testing.assert_allclose(np.asarray(draws.lam), 1.0 - heights * widths / 200.0, atol=1e-7)
  np.testing.assert_array_equal(np.asarray(draws.weight), np.asarray(draws.lam))
  with pytest.raises(ValueError, match=r"lam cannot be given to CutMix with minmax"):
    method.sample(jax.random.key(0), shape=(10, 20), lam=0.5)
  with pytest.raises(ValueError, match=r"minmax must satisfy 0 <= low < high <= 1"):
    msda_jax.from_string("cutmix(minmax=(0.8, 0.2))")


def test_switch_prob_is_one_minus_q():
  assert float(msda_jax.from_string("stochastic(switch_prob=0.25)").q) == 0.75
  with pytest.raises(ValueError, match=r"give q or switch_prob"):
    msda_jax.from_string("stochastic(q=0.5, switch_prob=0.5)")
  with pytest.raises(ValueError, match=r"^switch_prob must "):
    msda_jax.from_string("stochastic(switch_prob=1.5)")
