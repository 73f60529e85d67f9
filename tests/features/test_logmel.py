"""Tests for the JAX log-mel front end against librosa, and make_frontend."""

from __future__ import annotations

import jax
import librosa
import numpy as np
import pytest

from cljax import registry
from cljax.features import FRONTENDS, log_mel, make_frontend

SR = 16000


def _librosa_log_mel(y, sr=SR, n_fft=512, win_length=400, hop_length=160,
                     n_mels=64, fmin=20.0, fmax=None, log_offset=1e-6):
  mel = librosa.feature.melspectrogram(
      y=y, sr=sr, n_fft=n_fft, hop_length=hop_length, win_length=win_length,
      window="hann", center=True, pad_mode="constant", power=2.0,
      n_mels=n_mels, fmin=fmin, fmax=fmax)
  return np.log(mel + log_offset).T, mel.T


def _signals(length):
  rng = np.random.default_rng(0)
  t = np.arange(length) / SR
  noise = 0.1 * rng.standard_normal(length)
  tonal = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(
      2 * np.pi * 3150 * t + 1.0)
  chirp = 0.3 * np.sin(2 * np.pi * (100 + 3000 * t) * t)
  return np.stack([noise, tonal, chirp]).astype(np.float32)


# Tolerance: max |log difference| < 1e-3 wherever the mel power exceeds
# 1e-8 times the utterance's maximum (below that, both are float32 rounding
# noise under the log).
@pytest.mark.parametrize("length", [16000, 12345])
@pytest.mark.parametrize("kwargs", [
    {},
    {"n_mels": 40, "fmin": 0.0, "fmax": 7600.0},
    {"n_fft": 400, "win_length": 400, "hop_length": 200, "n_mels": 80},
])
def test_matches_librosa(length, kwargs):
  waves = _signals(length)
  ours = np.asarray(log_mel(waves, sample_rate=SR, **kwargs))
  for wave, got in zip(waves, ours):
    want, power = _librosa_log_mel(wave, **kwargs)
    assert got.shape == want.shape
    significant = power > 1e-8 * power.max()
    assert np.max(np.abs(got - want)[significant]) < 1e-3


def test_one_second_is_101_frames():
  out = log_mel(np.zeros((2, SR), np.float32))
  assert out.shape == (2, 101, 64)
  # Silence maps to log(log_offset), not -inf.
  np.testing.assert_allclose(np.asarray(out), np.log(1e-6), rtol=1e-6)


def test_jit_equals_eager():
  waves = _signals(SR)
  eager = np.asarray(log_mel(waves))
  jitted = np.asarray(jax.jit(log_mel)(waves))
  np.testing.assert_allclose(jitted, eager, atol=1e-5)


def test_rejects_unbatched_input():
  with pytest.raises(ValueError, match="batch"):
    log_mel(np.zeros(SR, np.float32))


def test_make_frontend_int16_equals_scaled_float():
  frontend = jax.jit(make_frontend({"name": "logmel"}, SR))
  pcm = (_signals(SR) * 20000).astype(np.int16)
  from_int = np.asarray(frontend(pcm))
  from_float = np.asarray(frontend(pcm.astype(np.float32) / 32768.0))
  np.testing.assert_allclose(from_int, from_float, atol=1e-6)
  assert from_int.shape == (3, 101, 64)


def test_make_frontend_passes_fields():
  frontend = make_frontend({"name": "logmel", "n_mels": 32, "hop_length": 320},
                           SR)
  assert frontend(np.zeros((1, SR), np.int16)).shape == (1, 51, 32)


def test_raw_frontend():
  frontend = make_frontend({"name": "raw"}, SR)
  pcm = np.array([[0, 16384, -32768]], np.int16)
  out = np.asarray(frontend(pcm))
  assert out.shape == (1, 3, 1) and out.dtype == np.float32
  np.testing.assert_allclose(out[0, :, 0], [0.0, 0.5, -1.0])
  floats = np.array([[0.25, -0.5]], np.float32)
  np.testing.assert_allclose(np.asarray(frontend(floats))[..., 0], floats)


def test_config_errors_name_the_field():
  assert set(FRONTENDS) == {"identity", "lfcc", "logmel", "raw", "rgb",
                            "spectrum"}
  with pytest.raises(registry.ConfigError, match="config.frontend.n_mel"):
    make_frontend({"name": "logmel", "n_mel": 40}, SR)
  with pytest.raises(registry.ConfigError, match="config.frontend"):
    make_frontend({"name": "logmel", "win_length": 1024}, SR)
  with pytest.raises(registry.ConfigError, match="sample_rate"):
    make_frontend({"name": "logmel", "sample_rate": 8000}, SR)
