"""Bad input never hangs and never gives silent garbage: each case either raises before any work
(concrete values) or has its documented result inside ``jit`` (traced values), and
``check=True`` raises on the traced ones at run time.

Cases that hung before the loops were bounded run in a subprocess with a timeout.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import msda_jax

ROOT = Path(__file__).resolve().parents[1]
X = jnp.linspace(0.0, 1.0, 4 * 8 * 8 * 3, dtype=jnp.float32).reshape(4, 8, 8, 3)
Y = jnp.array([0, 1, 2, 3])
ONE_HOT = jax.nn.one_hot(Y, 4)

# Every traced hyper-parameter that must be > 0 or lie in [0, 1], with a bad value each; all in
# per-example mode, and the batch mode's two paths (a mask, a partner transform) for three
# families (each compilation costs seconds).
BATCH_MODE_TOO = ("mixup", "hmix", "resizemix")
BAD_TRACED = [("mixup", "alpha", bad) for bad in (-1.0, 0.0, float("nan"), float("inf"))] + [
  ("cutmix", "alpha", float("inf")),
  ("stochastic_mixup_cutmix", "mixup_alpha", float("nan")),
  ("stochastic_mixup_cutmix", "cutmix_alpha", -2.0),
  ("stochastic_mixup_cutmix", "q", 1.5),
  ("hmix", "alpha", float("-inf")),
  ("hmix(r_alpha=0.5)", "r_alpha", float("nan")),
  ("hmix", "r", -0.25),
  ("gmix", "alpha", 0.0),
  ("bernoulli", "alpha", float("inf")),
  ("fmix", "alpha", float("nan")),
  ("fmix", "decay", -3.0),
  ("resizemix", "scale_min", 0.9),  # > scale_max
  ("resizemix", "scale_max", float("nan")),
  ("smoothmix", "sigma_min", 0.9),  # > sigma_max
  ("smoothmix", "sigma_max", float("nan")),
  ("gridmix", "aspect", -1.0),
  ("gridmix", "alpha", float("nan")),
  ("specmix", "max_width", 1.5),
  ("ricap", "beta", float("nan")),
  ("k_cutmix", "alpha", -1.0),
]

# Runs in a fresh interpreter: a case that hangs is killed by the timeout instead of the suite.
HANG_SCRIPT = textwrap.dedent(
  """
  import dataclasses, json, sys
  import jax, jax.numpy as jnp, numpy as np
  import msda_jax
  from msda_jax import _gamma

  cases, BATCH_MODE_TOO = json.loads(sys.argv[1])
  x = jnp.linspace(0.0, 1.0, 4 * 8 * 8 * 3, dtype=jnp.float32).reshape(4, 8, 8, 3)
  y = jnp.array([0, 1, 2, 3])
  out = []
  # One compilation per method and mode: the method is the jitted argument, its leaves traced.
  steps = {}
  for spec, field, bad in cases:
    method = msda_jax.from_string(spec)
    fields = dataclasses.fields(method)
    names = [f.name for f in fields if not f.metadata.get("static") and getattr(method, f.name) is not None]
    leaves, treedef = jax.tree_util.tree_flatten(method)
    assert len(leaves) == len(names)
    leaves = [jnp.float32(bad) if name == field else leaf for name, leaf in zip(names, leaves)]
    changed = jax.tree_util.tree_unflatten(treedef, leaves)  # unflattening skips the checks
    for mode in ("batch", "example") if spec in BATCH_MODE_TOO else ("example",):
      if (spec, mode) not in steps:
        steps[spec, mode] = jax.jit(
          lambda m, mode=mode: msda_jax.mix_batch_with_info(
            jax.random.key(1), x, y, m, num_classes=4, mode=mode)
        )
      xm, ym, info = steps[spec, mode](changed)
      out.append({
        "case": [spec, field, bad, mode],
        "same_images": bool((xm == x).all()),
        "targets": np.asarray(ym).tolist(),
        "applied": bool(info.applied.any()),
        "finite": bool(jnp.isfinite(xm).all() and jnp.isfinite(ym).all()),
      })

  # A draw with every proposal rejected is d = a - 1/3 (log v = 0), finite.
  never = lambda key, rounds, d, c, proposals: jnp.full(d.shape, jnp.nan)
  _gamma._propose = never
  log_g = jax.jit(lambda a: _gamma.log_gamma(jax.random.key(0), a, (3,)))(2.0)
  out.append({"case": "never accepted", "is_d": bool(np.allclose(np.asarray(log_g), np.log(2.0 - 1.0 / 3.0)))})
  print(json.dumps(out))
  """
)


LOG_GAMMA_SCRIPT = textwrap.dedent(
  """
  import json
  import jax, jax.numpy as jnp, numpy as np
  from msda_jax import _gamma

  key = jax.random.key(3)
  draw = jax.jit(lambda a: _gamma.log_gamma(key, a, (6,)))
  log_g = np.asarray(draw(jnp.array([2.0, -1.0, 0.0, jnp.nan, jnp.inf, 0.3], jnp.float32)))
  # The valid entries are the draws the sampler makes for them with valid neighbours.
  alone = np.asarray(draw(jnp.array([2.0, 2.0, 2.0, 2.0, 2.0, 0.3], jnp.float32)))
  # Concentrations down to float32's smallest normal number draw lam in {0, 1}; subnormal ones
  # are flushed to 0 by XLA, so they are invalid (NaN) like 0.
  tiny = np.asarray(_gamma.beta(key, 1.2e-38, 1.2e-38, (64,)))
  print(json.dumps({
    "invalid_nan": bool(np.isnan(log_g[1:5]).all()),
    "valid_finite": bool(np.isfinite(log_g[[0, 5]]).all()),
    "valid_unchanged": bool((log_g[[0, 5]] == alone[[0, 5]]).all()),
    "tiny_in_01": bool(np.isfinite(tiny).all() and set(np.unique(tiny).tolist()) <= {0.0, 1.0}),
    "subnormal_nan": bool(np.isnan(np.asarray(_gamma.beta(key, 1e-39, 1e-39, (4,)))).all()),
  }))
  """
)


def _run_script(script, *args, timeout):
  env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1"
  done = subprocess.run(
    [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
  )
  assert done.returncode == 0, done.stderr[-3000:]
  return json.loads(done.stdout.strip().splitlines()[-1])


def test_traced_invalid_hyperparameters_never_hang_and_leave_the_batch_unmixed():
  # Typical 45 s on 2 cores; the timeout guards against a hang, not slowness.
  results = _run_script(HANG_SCRIPT, json.dumps([BAD_TRACED, BATCH_MODE_TOO]), timeout=600)
  runs = sum(2 if spec in BATCH_MODE_TOO else 1 for spec, _, _ in BAD_TRACED)
  assert len(results) == runs + 1
  for result in results[:-1]:
    assert result["same_images"] and result["finite"] and not result["applied"], result["case"]
    np.testing.assert_array_equal(np.asarray(result["targets"]), np.asarray(ONE_HOT), err_msg=str(result["case"]))
  assert results[-1]["is_d"]  # every proposal rejected: log G = log d, finite


def test_log_gamma_of_invalid_shapes_is_nan_and_valid_draws_are_unchanged():
  results = _run_script(LOG_GAMMA_SCRIPT, timeout=300)  # typical 10 s
  assert results["invalid_nan"] and results["valid_finite"] and results["valid_unchanged"]
  assert results["tiny_in_01"] and results["subnormal_nan"]
  with pytest.raises(ValueError, match=r"alpha must be > 0 and finite \(at least 1.18e-38"):
    msda_jax.Mixup(alpha=1e-39)


@pytest.mark.parametrize(
  ("spec", "error", "pattern"),
  [
    ("mixup(alpha=1e39)", ValueError, r"alpha must be a finite float32 number; got 1e\+39"),
    ("mixup(alpha=-1)", ValueError, r"alpha must be > 0"),
    ("mixup(alpha='-1')", ValueError, r"alpha must be a number; got the string '-1'"),
    ("mixup(alpha='0')", ValueError, r"alpha must be a number; got the string '0'"),
    ("mixup(alpha=[1, 2])", ValueError, r"alpha must be a scalar"),
    ("mixup(alpha=True)", ValueError, r"alpha must be a number; got the bool"),
    ("hmix(r='0.5')", ValueError, r"r must be a number"),
    ("mixup(alpha=1, alpha=2)", ValueError, r"argument 'alpha' is given more than once"),
    ("mixup(alpha=" + "+".join(["1"] * 3000) + ")", ValueError, r"method spec must be at most 1000 characters"),
    ("mixup(alpha=" + "+".join(["1"] * 400) + ")", ValueError, r"arguments must be literals; got '1\+1\+1"),
    ("gmix(symmetric='no')", ValueError, r"symmetric must be True or False"),
  ],
)
def test_from_string_rejects_bad_values_at_construction(spec, error, pattern):
  with pytest.raises(error, match=pattern):
    msda_jax.from_string(spec)


@pytest.mark.parametrize(
  ("build", "error", "pattern"),
  [
    (lambda: msda_jax.Mixup(alpha=float("inf")), ValueError, r"^alpha must be > 0 and finite; got inf"),
    (lambda: msda_jax.CutMix(alpha=float("nan")), ValueError, r"^alpha must be > 0 and finite; got nan"),
    (lambda: msda_jax.HMix(r_alpha=float("inf")), ValueError, r"^r_alpha must be > 0 and finite"),
    (lambda: msda_jax.Mixup(alpha=[1, 2]), ValueError, r"^alpha must be a scalar; got \[1, 2\]"),
    (lambda: msda_jax.Mixup(alpha=np.ones(3)), ValueError, r"^alpha must be a scalar"),
    (lambda: msda_jax.ResizeMix(scale_min=0.9), ValueError, r"^scale_min must be <= scale_max"),
    (lambda: msda_jax.Mixer("mixup"), TypeError, r"method must be a MixMethod.*from_string\('mixup'\)"),
    (lambda: msda_jax.Mixer(msda_jax.Mixup(), prob="1"), TypeError, r"^prob must be a number"),
    (lambda: msda_jax.Mixer(msda_jax.Mixup(), label_smoothing=float("nan")), ValueError, r"^label_smoothing must"),
    (lambda: msda_jax.Mixer(msda_jax.Mixup(), check="yes"), TypeError, r"^check must be True or False"),
    (lambda: msda_jax.Mixer(msda_jax.Mixup(), groups=0), ValueError, r"^groups must be a positive int"),
  ],
)
def test_construction_rejects_bad_values(build, error, pattern):
  with pytest.raises(error, match=pattern):
    build()


def test_unflattening_runs_no_validation():
  mixer = msda_jax.Mixer(msda_jax.HMix(), num_classes=10)
  zeros = jax.tree.map(jnp.zeros_like, mixer)
  assert float(zeros.method.alpha) == 0.0 and zeros.num_classes == 10
  assert jax.tree_util.tree_structure(zeros) == jax.tree_util.tree_structure(mixer)
  grads = jax.grad(lambda m: m.method.alpha * m.method.r, allow_int=True)(mixer)
  assert float(grads.method.alpha) == pytest.approx(0.5)
  # A concrete invalid method rebuilt this way is caught when it is used.
  with pytest.raises(ValueError, match=r"^alpha must be > 0"):
    zeros(jax.random.key(0), X, Y)


@pytest.mark.parametrize(
  ("kwargs", "error", "pattern"),
  [
    (
      {"return_info": True},
      TypeError,
      r"^return_info is gone: mix_batch returns \(images, targets\); mix_batch_with_info",
    ),
    ({"unbounded": 1}, TypeError, r"^unbounded must be True or False"),
    ({"check": "false"}, TypeError, r"^check must be True or False"),
    ({"prob": "0.5"}, TypeError, r"^prob must be a number"),
    ({"label_smoothing": [0.1, 0.2]}, ValueError, r"^label_smoothing must have shape"),
    ({"lam": "0.5"}, TypeError, r"^lam must be a number"),
    ({"lam": float("nan"), "unbounded": True}, ValueError, r"^lam must be finite"),
  ],
)
def test_mix_batch_rejects_bad_options(kwargs, error, pattern):
  with pytest.raises(error, match=pattern):
    msda_jax.mix_batch(jax.random.key(0), X, Y, msda_jax.Mixup(), num_classes=4, **kwargs)


@pytest.mark.parametrize(
  ("labels", "pattern"),
  [
    (ONE_HOT.at[1].set(jnp.nan), r"^probability labels must lie in \[0, 1\].*nan"),
    (ONE_HOT.at[1].set(jnp.array([1.5, -0.5, 0.0, 0.0])), r"^probability labels must lie in \[0, 1\]"),
    (ONE_HOT.at[2].set(0.2), r"^probability labels must sum to 1.*0\.8"),
    (ONE_HOT * 0.9, r"^probability labels must sum to 1"),
  ],
)
def test_concrete_probability_labels_are_checked(labels, pattern):
  with pytest.raises(ValueError, match=pattern):
    msda_jax.mix_batch(jax.random.key(0), X, labels, msda_jax.Mixup(), num_classes=4)


def test_probability_rows_within_tolerance_pass():
  # bfloat16 rows of a softmax sum to 1 only to bfloat16 precision: accepted.
  rows = jax.nn.softmax(jnp.arange(40.0).reshape(4, 10) / 7).astype(jnp.bfloat16)
  assert abs(float(rows.astype(jnp.float32).sum(-1)[0]) - 1.0) > 1e-4
  _, targets = msda_jax.mix_batch(jax.random.key(0), X, rows, msda_jax.Mixup())
  np.testing.assert_allclose(np.asarray(targets).sum(-1), 1.0, atol=0.05)


def test_zero_size_spatial_axis_raises():
  with pytest.raises(ValueError, match=r"^images must have non-empty spatial axes; got shape \(8, 0, 16, 3\)"):
    msda_jax.mix_batch(jax.random.key(0), jnp.zeros((8, 0, 16, 3)), jnp.arange(8), msda_jax.Mixup(), num_classes=8)


def _jitted(**options):
  def run(images, labels, method, prob, label_smoothing):
    return msda_jax.mix_batch_with_info(
      jax.random.key(2),
      images,
      labels,
      method,
      num_classes=4,
      prob=prob,
      label_smoothing=label_smoothing,
      **options,
    )

  return jax.jit(run)


def test_traced_integer_labels_out_of_range_give_nan_rows():
  labels = jnp.array([0, 7, -1, 3])
  _, targets, info = _jitted(mode="example")(X, labels, msda_jax.Mixup(), 0.0, 0.1)
  assert not info.applied.any()
  assert np.isnan(np.asarray(targets)[1:3]).all()
  np.testing.assert_allclose(np.asarray(targets)[[0, 3]].sum(-1), 1.0, rtol=1e-6)


@pytest.mark.parametrize(("eps", "expected"), [(1.5, 1.0), (-0.5, 0.0), (float("nan"), 0.0)])
def test_traced_label_smoothing_is_clipped(eps, expected):
  _, targets, _ = _jitted()(X, Y, msda_jax.Mixup(), 0.0, eps)
  smoothed = ONE_HOT * (1.0 - expected) + expected / 4
  np.testing.assert_allclose(np.asarray(targets), np.asarray(smoothed), rtol=1e-6)


@pytest.mark.parametrize(("prob", "mixed"), [(1.5, True), (-0.5, False), (float("nan"), False)])
@pytest.mark.parametrize("mode", ["batch", "example"])
def test_traced_prob_is_clipped(prob, mixed, mode):
  _, _, info = _jitted(mode=mode)(X, Y, msda_jax.Mixup(), prob, 0.0)
  assert bool(info.applied.all()) == mixed and bool(info.applied.any()) == mixed


@pytest.mark.parametrize("mode", ["batch", "example"])
def test_traced_lam_outside_the_unit_interval_is_clipped_and_nan_not_mixed(mode):
  run = jax.jit(
    lambda lam: msda_jax.mix_batch_with_info(
      jax.random.key(0), X, Y, msda_jax.Mixup(), num_classes=4, mode=mode, lam=lam
    )
  )
  _, targets, info = run(jnp.float32(-0.5))
  assert info.applied.all()
  np.testing.assert_allclose(np.asarray(info.weight), 0.0)
  xm, targets, info = run(jnp.float32(jnp.nan))
  assert not info.applied.any() and bool((xm == X).all())
  np.testing.assert_array_equal(np.asarray(targets), np.asarray(ONE_HOT))


def test_kmix_traced_invalid_alpha_or_weights_leave_examples_unmixed():
  run = jax.jit(
    lambda alpha: msda_jax.mix_k_batch(jax.random.key(0), X, Y, k=3, alpha=alpha, num_classes=4, mode="example")
  )
  for bad in (jnp.nan, -1.0, jnp.inf):
    xm, ym = run(jnp.float32(bad))
    assert bool((xm == X).all())
    np.testing.assert_array_equal(np.asarray(ym), np.asarray(ONE_HOT))
  weights = jnp.array([[0.5, 0.5, 0.0], [0.5, 0.6, 0.0], [jnp.nan, 0.5, 0.5], [-0.5, 1.0, 0.5]])
  _, ym = jax.jit(
    lambda w: msda_jax.mix_k_batch(jax.random.key(0), X, Y, k=3, weights=w, num_classes=4, mode="example")
  )(weights)
  np.testing.assert_array_equal(np.asarray(ym)[1:], np.asarray(ONE_HOT)[1:])
  assert float(ym[0, 0]) == pytest.approx(0.5)


def test_audio_labels_with_as_many_frames_as_classes_need_dense_labels():
  audio = jnp.ones((2, 5, 1))
  ids = jnp.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])
  with pytest.raises(ValueError, match=r"ambiguous.*dense_labels=True"):
    msda_jax.mix_batch(jax.random.key(0), audio, ids, msda_jax.Mixup(), num_classes=5, spatial_ndim=1)
  _, dense = msda_jax.mix_batch(
    jax.random.key(0), audio, ids, msda_jax.Mixup(), num_classes=5, spatial_ndim=1, dense_labels=True
  )
  assert dense.shape == (2, 5, 5)
  rows = jnp.eye(5, dtype=jnp.int32)[:2]
  _, per_example = msda_jax.mix_batch(
    jax.random.key(0), audio, rows, msda_jax.Mixup(), num_classes=5, spatial_ndim=1, dense_labels=False
  )
  assert per_example.shape == (2, 5)
  # With T != K the shapes tell: no option needed.
  _, dense = msda_jax.mix_batch(jax.random.key(0), audio, ids, msda_jax.Mixup(), num_classes=6, spatial_ndim=1)
  assert dense.shape == (2, 5, 6)


@pytest.mark.parametrize(
  ("change", "pattern"),
  [
    ({"alpha": -1.0}, r"alpha must be > 0 and finite; got -1\.0"),
    ({"prob": 2.0}, r"prob must lie in \[0\.0, 1\.0\]; got 2\.0"),
    ({"label_smoothing": jnp.nan}, r"label_smoothing must lie in \[0\.0, 1\.0\]; got nan"),
    ({"labels": jnp.array([0, 1, 9, 3])}, r"labels must lie in \[0, num_classes=4\); got 9\.0"),
  ],
)
def test_check_raises_at_run_time_on_traced_values(change, pattern):
  def step(alpha, prob, label_smoothing, labels):
    mixer = msda_jax.Mixer(msda_jax.Mixup(alpha=alpha), num_classes=4, prob=prob, label_smoothing=label_smoothing)
    mixer = msda_jax.Mixer(mixer.method, num_classes=4, prob=prob, label_smoothing=label_smoothing, check=True)
    return mixer(jax.random.key(0), X, labels)

  values = {"alpha": 1.0, "prob": 1.0, "label_smoothing": 0.0, "labels": Y, **change}
  run = jax.jit(step)
  with pytest.raises(jax.errors.JaxRuntimeError, match=pattern):  # it wraps the ValueError
    jax.block_until_ready(run(**values))


def test_check_passes_valid_values_and_changes_nothing():
  rows = jax.nn.one_hot(Y, 4)

  def step(alpha, labels, check):
    return msda_jax.mix_batch(
      jax.random.key(5), X, labels, msda_jax.Mixup(alpha=alpha), num_classes=4, mode="example", check=check
    )

  checked = jax.jit(lambda a, y: step(a, y, True))(jnp.float32(0.4), rows)
  plain = jax.jit(lambda a, y: step(a, y, False))(jnp.float32(0.4), rows)
  for a, b in zip(checked, plain, strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  with pytest.raises(jax.errors.JaxRuntimeError, match=r"probability labels must sum to 1"):
    jax.block_until_ready(jax.jit(lambda a, y: step(a, y, True))(jnp.float32(0.4), rows * 0.5))
