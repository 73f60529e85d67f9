"""Tests for cljax.data.audio_io: decoding, bad files, rates and channels."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from cljax.data import audio_io


def _tone(n: int, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return rng.integers(-20000, 20000, n).astype(np.int16)


@pytest.mark.parametrize("fmt", ["flac", "wav"])
def test_int16_round_trip_is_exact(tmp_path, fmt):
  samples = _tone(4000)
  path = str(tmp_path / f"a.{fmt}")
  soundfile.write(path, samples, 16000, subtype="PCM_16")
  out = audio_io.read_audio(path, sample_rate=16000)
  assert out.dtype == np.int16
  np.testing.assert_array_equal(out, samples)
  as_float = audio_io.read_audio(path, sample_rate=16000, dtype="float32")
  np.testing.assert_allclose(as_float, samples / 32768.0, atol=1e-7)


def test_resample_warns_and_yields_the_right_length(tmp_path):
  path = str(tmp_path / "a.wav")
  t = np.arange(8000) / 8000
  soundfile.write(path, 0.5 * np.sin(2 * np.pi * 440 * t), 8000)
  with pytest.warns(audio_io.AudioResampledWarning, match=r"a\.wav.*8000"):
    out = audio_io.read_audio(path, sample_rate=16000)
  assert out.shape == (16000,)  # 1 s at 16 kHz
  # The resampled tone keeps its frequency: the spectrum peaks at 440 Hz.
  spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
  assert abs(np.argmax(spectrum) * 16000 / len(out) - 440) <= 1


def test_resample_refuse_names_the_file_and_fix(tmp_path):
  path = str(tmp_path / "slow.flac")
  soundfile.write(path, _tone(800), 8000)
  with pytest.raises(audio_io.AudioFileError,
                     match=r"slow\.flac: sample rate 8000 Hz.*resample='warn'"):
    audio_io.read_audio(path, sample_rate=16000, resample="refuse")


def test_truncated_flac_is_an_error(tmp_path):
  path = tmp_path / "cut.flac"
  soundfile.write(str(path), _tone(16000), 16000)
  data = path.read_bytes()
  path.write_bytes(data[:len(data) // 2])
  with pytest.raises(audio_io.AudioFileError, match=r"cut\.flac: unreadable"):
    audio_io.read_audio(str(path), sample_rate=16000)


def test_truncated_wav_is_an_error_not_a_short_clip(tmp_path):
  # libsndfile alone reads this as a shorter clip without complaint.
  path = tmp_path / "cut.wav"
  soundfile.write(str(path), _tone(16000), 16000, subtype="PCM_16")
  data = path.read_bytes()
  path.write_bytes(data[:44 + 2 * 5000])
  assert soundfile.info(str(path)).frames == 5000
  with pytest.raises(audio_io.AudioFileError,
                     match=r"cut\.wav: truncated: the WAV header declares "
                     r"16000 frames but the file holds 5000"):
    audio_io.read_audio(str(path), sample_rate=16000)


def test_garbage_and_missing_and_empty_files(tmp_path):
  garbage = tmp_path / "junk.flac"
  garbage.write_bytes(b"not audio at all" * 10)
  with pytest.raises(audio_io.AudioFileError, match=r"junk\.flac: unreadable"):
    audio_io.read_audio(str(garbage), sample_rate=16000)
  with pytest.raises(audio_io.AudioFileError, match=r"nope\.wav: file not "
                     r"found.*manual_dir"):
    audio_io.read_audio(str(tmp_path / "nope.wav"), sample_rate=16000)
  empty = str(tmp_path / "empty.wav")
  soundfile.write(empty, np.zeros(0, np.int16), 16000)
  with pytest.raises(audio_io.AudioFileError, match=r"empty\.wav: no audio"):
    audio_io.read_audio(empty, sample_rate=16000)


def test_stereo_errors_or_mixes_down(tmp_path):
  path = str(tmp_path / "st.wav")
  left, right = _tone(1000, 1), _tone(1000, 2)
  soundfile.write(path, np.stack([left, right], 1), 16000, subtype="PCM_16")
  with pytest.raises(audio_io.AudioFileError,
                     match=r"st\.wav: 2 channels.*channels='mix'"):
    audio_io.read_audio(path, sample_rate=16000)
  mixed = audio_io.read_audio(path, sample_rate=16000, channels="mix")
  expected = (left.astype(np.float64) + right) / 2
  np.testing.assert_allclose(mixed, expected, atol=0.51)


def test_unknown_option_names_the_field(tmp_path):
  with pytest.raises(ValueError, match=r"config\.data\.stream\.resample="):
    audio_io.read_audio(str(tmp_path / "x.wav"), sample_rate=16000,
                        resample="maybe")
