"""Tests for the JAX LFCC front end against a numpy transcription.

The reference below is a line-by-line numpy/scipy transcription of the
official HM-Conformer / NII LFCC (``_processing.LFCC.forward``), written
independently of cljax/features/lfcc.py: float64 throughout, the STFT framed
with the window *centred* in an ``n_fft`` frame (as torch.stft does), the
filterbank built with explicit loops over bins, scipy's DCT.

Tolerance (float32 JAX vs float64 reference, log10 domain): every
coefficient, delta and delta-delta within atol 5e-4 + rtol 1e-5, checked on
frames whose filterbank energies are all above 1e-6 (the log floor is
1.19e-7; nearer to it both sides are float32 noise under the log). Measured
worst case on these inputs (noise, speech-like, chirp; 1 s, 0.77 s, 4 s):
1.1e-4 on all frames, 7e-5 on the checked ones; static coefficients 3e-5.
jit vs eager: within the same atol (measured 1.1e-4: XLA fuses differently).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
import scipy.fft

from cljax import registry
from cljax.features import FRONTENDS, make_frontend
from cljax.features.lfcc import delta, lfcc, linear_filterbank

SR = 16000
EPS = np.finfo(np.float32).eps
ATOL, RTOL = 5e-4, 1e-5


def _reference_lfcc(x, n_fft=512, win=320, hop=160, n_filters=40,
                    with_energy=True, with_deltas=True, emphasis=0.97,
                    max_freq=1.0):
  """Official LFCC for one 1-D float waveform, float64 numpy/scipy."""
  x = np.asarray(x, np.float64)
  y = x.copy()
  y[1:] = x[1:] - emphasis * x[:-1]
  # torch.stft(center=True, pad_mode="constant", window=hamming_window(win))
  window = np.hamming(win + 1)[:-1]                 # periodic Hamming
  lpad = (n_fft - win) // 2
  full_window = np.zeros(n_fft)
  full_window[lpad:lpad + win] = window
  padded = np.concatenate([np.zeros(n_fft // 2), y, np.zeros(n_fft // 2)])
  num_frames = 1 + (len(padded) - n_fft) // hop
  power = np.empty((num_frames, n_fft // 2 + 1))
  for t in range(num_frames):
    frame = padded[t * hop:t * hop + n_fft] * full_window
    power[t] = np.abs(np.fft.rfft(frame)) ** 2
  # NII's band limit: keep bins [0, int(max_freq * 257)) and relabel them
  # f = sr/2 * linspace(0, max_freq, kept).
  kept = int(max_freq * (n_fft // 2 + 1))
  power = power[:, :kept]
  # trimf filters over f = sr/2 * linspace(0, 1, 257), edges linspace(0,
  # sr/2, n_filters + 2) (full band).
  f = SR / 2 * np.linspace(0, max_freq, kept)
  edges = np.linspace(0, f.max(), n_filters + 2)
  bank = np.zeros((f.size, n_filters))
  for m in range(n_filters):
    a, b, c = edges[m:m + 3]
    for k, fk in enumerate(f):
      if a < fk < b:
        bank[k, m] = (fk - a) / (b - a)
      elif b < fk < c:
        bank[k, m] = (c - fk) / (c - b)
      elif fk == b:
        bank[k, m] = 1.0
  fb = power @ bank
  coefs = scipy.fft.dct(np.log10(fb + EPS), type=2, norm="ortho", axis=-1)
  if with_energy:
    coefs[:, 0] = np.log10(power.sum(-1) / n_fft + EPS)
  if not with_deltas:
    return coefs, fb

  def _delta(v):
    p = np.concatenate([v[:1], v, v[-1:]])
    return p[2:] - p[:-2]

  d = _delta(coefs)
  return np.concatenate([coefs, d, _delta(d)], -1), fb


def _signals(length, batch=3, seed=0):
  """White noise, a 'speech-like' harmonic signal with formant-ish AM and
  pauses, and a chirp."""
  rng = np.random.default_rng(seed)
  t = np.arange(length) / SR
  noise = 0.1 * rng.standard_normal(length)
  f0 = 120 + 30 * np.sin(2 * np.pi * 3 * t)
  phase = 2 * np.pi * np.cumsum(f0) / SR
  voiced = sum(np.sin(h * phase) / h for h in range(1, 30))
  envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 2
  speech = 0.3 * voiced * envelope + 1e-3 * rng.standard_normal(length)
  chirp = 0.3 * np.sin(2 * np.pi * (100 + 3000 * t) * t)
  signals = [noise, speech, chirp][:batch]
  return np.stack(signals).astype(np.float32)


def _assert_close(got, want, fb):
  """Compare where every filterbank energy of the frame is above 1e-6."""
  significant = fb.min(-1) > 1e-6
  assert significant.mean() > 0.5  # The check must cover most frames.
  got, want = got[significant], want[significant]
  err = np.abs(got - want)
  assert np.all(err <= ATOL + RTOL * np.abs(want)), err.max()


@pytest.mark.parametrize("length", [SR, 12345])
def test_matches_numpy_reference(length):
  waves = _signals(length)
  ours = np.asarray(lfcc(waves))
  for wave, got in zip(waves, ours):
    want, fb = _reference_lfcc(wave)
    assert got.shape == want.shape == (1 + length // 160, 120)
    _assert_close(got, want, fb)


@pytest.mark.parametrize("kwargs", [
    {"n_filters": 20, "with_energy": False},
    {"with_deltas": False},
    {"n_fft": 400, "win": 400, "hop": 200},
    # The LFCC-LCNN baseline's front end (NII, 0-4 kHz).
    {"n_fft": 1024, "n_filters": 20, "max_freq": 0.5},
])
def test_matches_reference_other_settings(kwargs):
  waves = _signals(8000, batch=2, seed=1)
  ours_kwargs = {k: v for k, v in kwargs.items() if k not in ("win", "hop")}
  if "win" in kwargs:
    ours_kwargs.update(win_length=kwargs["win"], hop_length=kwargs["hop"])
  ours = np.asarray(lfcc(waves, **ours_kwargs))
  for wave, got in zip(waves, ours):
    want, fb = _reference_lfcc(wave, **kwargs)
    assert got.shape == want.shape
    _assert_close(got, want, fb)


def test_four_seconds_is_401_by_120_and_jit_equals_eager():
  waves = np.concatenate([_signals(4 * SR), _signals(4 * SR, seed=5)[:1]])
  eager = np.asarray(lfcc(waves))
  jitted = np.asarray(jax.jit(lfcc)(waves))
  assert eager.shape == (4, 401, 120)
  np.testing.assert_allclose(jitted, eager, rtol=RTOL, atol=ATOL)


def test_energy_replaces_c0_and_silence_is_the_floor():
  out = np.asarray(lfcc(np.zeros((1, 1600), np.float32), with_deltas=False))
  # Silence: every log filterbank value is log10(eps); c0 = log10(eps)
  # (energy) and, the row being constant, the DCT puts nothing elsewhere.
  np.testing.assert_allclose(out[..., 0], np.log10(EPS), rtol=1e-6)
  np.testing.assert_allclose(out[..., 1:], 0, atol=1e-5)
  without = np.asarray(lfcc(np.zeros((1, 1600), np.float32), with_deltas=False,
                            with_energy=False))
  # DCT-II ortho of a constant c over N=40: c * sqrt(40) in coefficient 0.
  np.testing.assert_allclose(without[..., 0], np.log10(EPS) * np.sqrt(40),
                             rtol=1e-5)


def test_delta_convention_on_a_hand_made_sequence():
  x = np.array([1.0, 4.0, 9.0, 16.0, 25.0], np.float32)[None, :, None]
  d = np.asarray(delta(x))[0, :, 0]
  # Edges replicated: [1, 1, 4, 9, 16, 25, 25]; d[t] = x[t+1] - x[t-1].
  np.testing.assert_array_equal(d, [3.0, 8.0, 12.0, 16.0, 9.0])
  dd = np.asarray(delta(delta(x)))[0, :, 0]
  np.testing.assert_array_equal(dd, [5.0, 9.0, 8.0, -3.0, -7.0])


def test_filterbank_edges_and_peaks():
  bank = linear_filterbank(SR, 512, 40)
  assert bank.shape == (257, 40)
  # Filters overlap by half: inside the band they sum to 1, and the DC and
  # Nyquist bins (the outer edges) get weight 0.
  np.testing.assert_allclose(bank[8:249].sum(1), 1.0, atol=1e-5)
  assert bank[0].sum() == 0 and bank[-1].sum() == 0
  # Filter m peaks near bin (m + 1) * 8000 / 41 / 31.25.
  peaks = bank.argmax(0)
  np.testing.assert_array_equal(
      peaks, np.round((np.arange(40) + 1) * 8000 / 41 / 31.25).astype(int))


def test_make_frontend_lfcc_int16_and_fields():
  frontend = jax.jit(make_frontend({"name": "lfcc"}, SR))
  pcm = (_signals(SR) * 20000).astype(np.int16)
  from_int = np.asarray(frontend(pcm))
  from_float = np.asarray(frontend(pcm.astype(np.float32) / 32768.0))
  np.testing.assert_allclose(from_int, from_float, rtol=RTOL, atol=ATOL)
  assert from_int.shape == (3, 101, 120)
  small = make_frontend({"name": "lfcc", "n_filters": 20, "num_coef": 10,
                         "with_deltas": False}, SR)
  assert small(pcm).shape == (3, 101, 10)
  assert "lfcc" in FRONTENDS
  with pytest.raises(registry.ConfigError, match="config.frontend.n_filter"):
    make_frontend({"name": "lfcc", "n_filter": 40}, SR)
  with pytest.raises(registry.ConfigError, match="config.frontend"):
    make_frontend({"name": "lfcc", "win_length": 1024}, SR)
  with pytest.raises(registry.ConfigError, match="config.frontend"):
    make_frontend({"name": "lfcc", "num_coef": 41}, SR)


def test_band_limits_out_of_range_name_the_fields():
  with pytest.raises(ValueError, match="config.frontend.min_freq / max_freq"):
    lfcc(np.zeros((1, 1600), np.float32), max_freq=1.5)
  with pytest.raises(ValueError, match="0 <= min_freq < max_freq"):
    lfcc(np.zeros((1, 1600), np.float32), min_freq=0.5, max_freq=0.5)
