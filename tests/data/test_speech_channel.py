"""Tests of the speech benchmark's shared channel pieces."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from cljax.data.builders import _speech_channel as channel

SR = 16000
needs_g722 = pytest.mark.skipif(importlib.util.find_spec("G722") is None,
                                reason="G722 missing (pip install g722==1.2.8)")


def _sine(freq: float, seconds: float = 1.0, amplitude: float = 0.5):
  t = np.arange(int(seconds * SR)) / SR
  return amplitude * np.sin(2 * np.pi * freq * t)


def _pause(samples: int) -> np.ndarray:
  """Room noise 50 dB below ``_sine``'s 0.5 amplitude: what the gate mutes."""
  return 0.5 * 10 ** (-50 / 20) * np.random.default_rng(0).standard_normal(
      samples)


def _gain_db(before: np.ndarray, after: np.ndarray) -> float:
  # Middle half only: the zero-phase filters' edge transients are excluded.
  n = len(before)
  sl = slice(n // 4, 3 * n // 4)
  return 10 * np.log10(np.mean(after[sl] ** 2) / np.mean(before[sl] ** 2))


def test_rms_normalise_hits_the_target_level():
  x = np.random.default_rng(0).standard_normal(8000) * 0.37
  y = channel.rms_normalise(x, -20.0)
  assert np.sqrt(np.mean(y ** 2)) == pytest.approx(0.1, rel=1e-9)
  # Digital silence stays silence (no division by zero).
  assert np.all(channel.rms_normalise(np.zeros(10)) == 0)


@pytest.mark.parametrize("freq,low,high", [
    (1000.0, -0.3, 0.3),     # pass band: within the 0.1-dB ripple (x2, filtfilt)
    (3000.0, -0.3, 0.3),
    (40.0, -300.0, -60.0),   # below 100 Hz: stop band (70 dB per pass)
    (7500.0, -300.0, -60.0),  # above 6.5 kHz
])
def test_bandpass_passes_the_band_and_attenuates_outside(freq, low, high):
  x = _sine(freq)
  assert low <= _gain_db(x, channel.bandpass(x)) <= high


def test_lowpass_removes_what_lies_above_the_band():
  x = _sine(7200.0)
  assert _gain_db(x, channel.lowpass(x)) < -60.0
  y = _sine(2000.0)
  assert abs(_gain_db(y, channel.lowpass(y))) < 0.3


def test_trim_removes_leading_and_trailing_silence():
  burst = _sine(500.0, 0.5)
  x = np.concatenate([np.zeros(SR), burst, np.zeros(SR // 2)])
  y = channel.trim(x)
  # Whole 20-ms frames: at most one frame of silence kept on either side.
  assert len(burst) <= len(y) <= len(burst) + 2 * 320
  assert np.abs(y[:320]).max() > 0.1


@pytest.mark.parametrize("target", [12000, 16000, 24000])
def test_stretch_to_matches_the_duration_and_keeps_the_pitch(target):
  x = _sine(440.0, 1.0)
  y = channel.stretch_to(x, target)
  assert len(y) == target
  spectrum = np.abs(np.fft.rfft(y[len(y) // 4:3 * len(y) // 4]))
  peak_hz = np.argmax(spectrum) * SR / (len(y) // 2)
  assert abs(peak_hz - 440.0) < 10.0


def test_change_speed_changes_length_and_pitch():
  y = channel.change_speed(_sine(400.0, 1.0), 1.1)
  assert len(y) == round(SR / 1.1)
  spectrum = np.abs(np.fft.rfft(y))
  assert abs(np.argmax(spectrum) * SR / len(y) - 440.0) < 5.0


def test_place_pads_short_takes_at_a_random_offset_and_cuts_long_ones():
  rng = np.random.default_rng(0)
  short = np.ones(100)
  starts = {int(np.flatnonzero(channel.place(short, 1000, rng))[0])
            for _ in range(20)}
  assert len(starts) > 5 and max(starts) <= 900
  long = np.arange(5000.0)
  y = channel.place(long, 1000, rng)
  assert len(y) == 1000 and np.all(np.diff(y) == 1)


def test_gate_cuts_out_quiet_frames():
  loud = _sine(500.0, 0.3, 0.5)
  hiss = _pause(SR // 2)
  short = 0.5 * 10 ** (-50 / 20) * np.ones(800)  # 50 ms
  x = np.concatenate([loud, hiss, loud, short, loud])
  y = channel.gate(x)
  assert channel.MAX_PAUSE == 0
  # Both pauses are cut out: no two consecutive samples are zero (lone
  # zeros are the tone's zero crossings), and the take is shorter by the
  # pauses, less their ramps (at most a frame a side).
  assert not np.any((y[1:] == 0.0) & (y[:-1] == 0.0))
  removed = len(x) - len(y)
  assert len(hiss) + len(short) - 4 * 320 <= removed <= len(hiss) + len(
      short)
  # The tones are untouched outside the ramps, the last one included.
  np.testing.assert_array_equal(y[:len(loud) - 320], loud[:-320])
  np.testing.assert_array_equal(y[-(len(loud) - 320):], loud[320:])
  # A take without pauses passes unchanged.
  np.testing.assert_array_equal(channel.gate(loud), loud)


def test_gate_with_max_pause_keeps_that_much_of_each_long_pause():
  loud = _sine(500.0, 0.3, 0.5)
  x = np.concatenate([loud, _pause(SR // 2), loud])
  y = channel.gate(x, max_pause=1600)
  edges = np.diff(np.concatenate([[0], (y == 0).astype(np.int8), [0]]))
  runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
  assert sorted(r for r in runs if r > 1) == [1600]


def test_compress_halves_levels_in_db_and_lifts_quiet_frames():
  a, b, c = 0.5, 0.5 * 10 ** (-10 / 20), 0.5 * 10 ** (-40 / 20)
  x = np.concatenate([_sine(500.0, 0.5, a), _sine(500.0, 0.5, b),
                      _sine(500.0, 0.5, c)])
  rms = np.sqrt(np.mean(x ** 2))
  y = channel.compress(x)
  for i, amplitude in enumerate((a, b, c)):
    # A segment's level L (dB re the take's RMS) becomes max(L / 2, -12).
    level = 20 * np.log10(amplitude / np.sqrt(2) / rms)
    expected = max(level / channel.COMPRESSION_RATIO, channel.LEVEL_FLOOR_DB)
    middle = y[i * SR // 2 + 2000:(i + 1) * SR // 2 - 2000]
    got = 10 * np.log10(np.mean(middle ** 2) / rms ** 2)
    assert got == pytest.approx(expected, abs=0.05), (i, level)
  # Silence stays silence.
  assert np.all(channel.compress(np.zeros(SR)) == 0)


def test_limiter_bounds_the_peak_and_keeps_small_samples():
  x = np.array([-4.0, -0.01, 0.0, 0.01, 4.0])
  y = channel.limiter(x, 0.3)
  assert np.all(np.abs(y) < 0.3)
  assert y[3] == pytest.approx(0.01, rel=1e-3)


@needs_g722
def test_g722_pass_keeps_a_tone():
  x = _sine(1000.0, 0.5, 0.3)
  y = channel.g722_pass(x)
  assert len(y) == len(x)
  # A band-limited tone survives G.722 at its level (delay aside).
  assert abs(_gain_db(x, y)) < 1.0


@needs_g722
def test_process_gives_fixed_length_int16_with_no_digital_silence():
  speech = np.concatenate([np.zeros(4000), _sine(300.0, 0.6, 0.2),
                           np.zeros(4000)])
  kwargs = dict(target_length=9000, clip_length=40000)
  a = channel.process(speech, SR, rng=np.random.default_rng(3), **kwargs)
  b = channel.process(speech, SR, rng=np.random.default_rng(3), **kwargs)
  c = channel.process(speech, SR, rng=np.random.default_rng(4), **kwargs)
  assert a.dtype == np.int16 and a.shape == (40000,)
  np.testing.assert_array_equal(a, b)  # Deterministic given the rng.
  assert not np.array_equal(a, c)
  # The noise floor leaves (almost) no exact zeros even around a short take.
  assert np.mean(a == 0) < 0.05
  # Above the band only the white floor: -60..-44 dBFS full band, so
  # -69..-53 dBFS above 7 kHz (1/8 of the band), +-6 dB of random gain.
  power = np.abs(np.fft.rfft(a / 32768.0)) ** 2
  freqs = np.fft.rfftfreq(len(a), 1 / SR)
  level_db = 10 * np.log10(2 * power[freqs > 7000].sum() / len(a) ** 2)
  assert -76.0 < level_db < -46.0
