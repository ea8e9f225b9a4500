"""FMix's defining property: a Gaussian field whose spectrum falls as a power of the frequency.

``low_frequency_field`` scales a random complex spectrum by the amplitude ``1 / f^decay`` (its
docstring: spectrum ``~ 1 / f^decay``; the FMix paper's ``scale = 1 / max(freqs, 1 / max(h, w))
** decay_power``), so the *power* ``|F|^2`` of the field falls as ``f^(-2 decay)``: on a log-log
plot of power against frequency the slope is ``-2 decay``. The frequency grid is the FMix
reference's ``fftfreqnd``, written here from numpy's ``fftfreq`` alone.
"""

import itertools

import jax
import numpy as np
import pytest

from msda_jax.masks import _fmix

SHAPE = (64, 64)
FIELDS = 16  # fields per decay
BINS = 12  # log-spaced radial bins over [1/64, 1/2]
SLOPE_TOLERANCE = 0.2


def fmix_reference_freqs(shape):
  """The FMix reference's ``fftfreqnd`` (github.com/ecs-vlc/FMix, ``fmix.py``) for 1 to 3 axes.

  ``fy = fftfreq(h)[:, None]``, ``fx = fftfreq(w)[: w // 2 + 1]`` (the reference takes
  ``w // 2 + 2`` entries for odd ``w``; ``irfftn(..., s=shape)`` reads only the first ``w // 2 + 1``
  of them), ``freqs = sqrt(fx^2 + fy^2 + fz^2)``.
  """
  *lead, last = shape
  fx = np.fft.fftfreq(last)[: last // 2 + 1]
  squares = fx**2
  for axis, n in enumerate(lead):
    f = np.fft.fftfreq(n).reshape((n,) + (1,) * (len(lead) - axis))
    squares = squares + f**2
  return np.sqrt(squares)


def radial_log_power_slope(fields):
  """Least-squares slope of log(mean power) against log(mean |f|) over ``BINS`` radial bins.

  ``fields``: real ``[n, H, W]``. The power is ``|rfft2|^2`` averaged over the fields; the
  columns of frequency 0 and Nyquist along the last axis are left out (``irfftn`` keeps only the
  Hermitian part of a random spectrum there, which halves their power), and so is the DC term.
  """
  _, h, w = np.shape(fields)
  power = np.mean(np.abs(np.fft.rfft2(np.asarray(fields, np.float64))) ** 2, axis=0)
  freq = np.sqrt(np.fft.fftfreq(h)[:, None] ** 2 + np.fft.rfftfreq(w)[None, :] ** 2)
  interior = np.zeros(freq.shape, bool)
  interior[:, 1 : (w - 1) // 2 + 1] = True
  edges = np.geomspace(1.0 / max(h, w), 0.5, BINS + 1)
  log_f, log_power = [], []
  for low, high in itertools.pairwise(edges):
    chosen = interior & (freq >= low) & (freq < high)
    assert chosen.any(), f"radial bin [{low:.4f}, {high:.4f}) is empty"
    log_f.append(np.log(freq[chosen].mean()))
    log_power.append(np.log(power[chosen].mean()))
  return float(np.polyfit(log_f, log_power, 1)[0])


@pytest.mark.parametrize("shape", [(8, 6), (7, 5), (4, 9), (11,), (10,), (3, 4, 5), (2, 5, 6)])
def test_frequency_magnitude_is_the_fmix_reference_grid(shape):
  expected = fmix_reference_freqs(shape)
  got = _fmix.frequency_magnitude(shape)
  assert got.shape == expected.shape == (*shape[:-1], shape[-1] // 2 + 1)
  np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)


def test_field_power_falls_as_f_to_minus_twice_the_decay():
  """Seed 0 (16 fields of 64 x 64 per decay, decays 1 and 3, one compiled program): the slope of
  ``radial_log_power_slope`` is ``-2 decay`` within 0.2. Over seeds 0-19 the slopes spread by
  0.035 (standard deviation) around -2.00 and -5.96 (the log of a bin mean bends the line a
  little at the steep decay), so 0.2 is over 4 spreads from the worst. The criterion has power:
  white noise (numpy seed 0, same count and size) gives a slope within 0.2 of 0, 1.8 away from
  the nearest accepted value, and a field whose power (not amplitude) fell as ``f^-decay`` would
  be ``decay`` (>= 1) away."""
  fields_of = jax.jit(jax.vmap(_fmix.low_frequency_field, in_axes=(0, None, None)), static_argnums=2)
  keys = jax.random.split(jax.random.key(0), FIELDS)
  for decay in (1.0, 3.0):
    fields = np.asarray(fields_of(keys, decay, SHAPE))
    assert fields.shape == (FIELDS, *SHAPE) and np.isfinite(fields).all()
    slope = radial_log_power_slope(fields)
    assert abs(slope + 2.0 * decay) < SLOPE_TOLERANCE, f"decay {decay}: log-power slope {slope:.3f}, want {-2 * decay}"
  white = np.random.default_rng(0).normal(size=(FIELDS, *SHAPE))
  white_slope = radial_log_power_slope(white)
  assert abs(white_slope) < SLOPE_TOLERANCE, f"white noise: slope {white_slope:.3f}, expected about 0"
  assert min(abs(white_slope + 2.0 * d) for d in (1.0, 3.0)) > 1.5, "white noise must fail the criterion"
