"""Tests for the offline codec / speed augmentation (needs ffmpeg)."""

from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pytest

from cljax.data import codec_augment

SR = 16000
needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None,
    reason="ffmpeg is not installed: apt-get install ffmpeg "
    "(launch/setup.sh installs it).")
LOSSY = ("mp3", "aac", "m4a", "ogg", "opus", "wma")


def _tone(freq=440.0, seconds=1.0, noise=0.05, seed=0):
  """int16 tone at 0.5 full scale plus white noise (-20 dB)."""
  t = np.arange(int(seconds * SR)) / SR
  rng = np.random.default_rng(seed)
  wave = 0.5 * np.sin(2 * np.pi * freq * t) + noise * rng.standard_normal(
      t.size)
  return np.round(wave * 32767).astype(np.int16)


def _dominant_hz(wave):
  spectrum = np.abs(np.fft.rfft(wave.astype(np.float64)))
  return np.argmax(spectrum) * SR / len(wave)


def _snr_db(reference, test):
  reference = reference.astype(np.float64)
  error = test.astype(np.float64) - reference
  return 10 * np.log10(np.sum(reference ** 2) / np.sum(error ** 2))


@needs_ffmpeg
@pytest.mark.parametrize("codec", LOSSY)
def test_lossy_round_trip_keeps_length_and_pitch_but_changes_signal(codec):
  tone = _tone()
  out = codec_augment.codec_round_trip(tone, SR, codec)
  assert out.dtype == np.int16 and out.shape == tone.shape
  assert abs(_dominant_hz(out) - 440.0) <= 1.0
  snr = _snr_db(tone, out)
  # Lossy: the copy differs (finite SNR below 40 dB) yet stays aligned with
  # the original (a copy off by even one sample of a 440 Hz tone at 0.5 FS
  # would have SNR ~ 0 dB; measured: wma 14.7, mp3 18.8, ogg 22.9,
  # aac/m4a 27.3, opus 32.4 dB at ffmpeg's default bitrates).
  assert 8.0 < snr < 40.0, snr


@needs_ffmpeg
def test_wav_round_trip_is_lossless_and_float_stays_float():
  tone = _tone(seconds=0.3)
  np.testing.assert_array_equal(
      codec_augment.codec_round_trip(tone, SR, "wav"), tone)
  floats = tone.astype(np.float32) / 32768.0
  out = codec_augment.codec_round_trip(floats, SR, "mp3")
  assert out.dtype == np.float32 and out.shape == floats.shape
  assert 8.0 < _snr_db(floats, out) < 40.0


@needs_ffmpeg
def test_codec_delay_is_measured_and_undone():
  # wmav2 at 16 kHz decodes 512 samples early; aligned, it matches.
  assert codec_augment.codec_delay(SR, "wma") == -512
  assert codec_augment.codec_delay(SR, "mp3") == 0
  tone = _tone(seconds=0.5)
  raw = codec_augment.codec_round_trip(tone, SR, "wma", align=False)
  aligned = codec_augment.codec_round_trip(tone, SR, "wma")
  assert _snr_db(tone, aligned) > _snr_db(tone, raw) + 6.0


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_scales_duration_and_pitch(factor):
  tone = _tone(freq=1000.0, noise=0.0)
  out = codec_augment.speed_perturb(tone, factor)
  assert out.dtype == np.int16
  assert len(out) == round(len(tone) / factor)   # 17778 or 14545 samples
  # Played at the same rate, a 1 kHz tone becomes factor * 1 kHz.
  assert abs(_dominant_hz(out) - 1000.0 * factor) <= 2.0
  with pytest.raises(ValueError, match="speed_perturb"):
    codec_augment.speed_perturb(tone, 0.0)


def _small_source():
  return [{"audio": _tone(freq=300.0 + 100 * i, seconds=0.25, seed=i),
           "label": i % 2, "utt_id": f"utt{i}"} for i in range(3)]


@needs_ffmpeg
def test_augmented_source_layout_and_cache(tmp_path, monkeypatch):
  source = _small_source()
  augmented = codec_augment.CodecAugmentedSource(
      source, SR, codecs=("mp3", "opus"), speed_factors=(0.9,),
      cache_dir=str(tmp_path), progress=False, num_workers=2)
  assert len(augmented) == 3 * 3 * 2
  ids = [augmented[i]["utt_id"] for i in range(len(augmented))]
  assert ids[:6] == ["utt0", "utt0_sp0.9", "utt0_from_mp3",
                     "utt0_from_mp3_sp0.9", "utt0_from_opus",
                     "utt0_from_opus_sp0.9"]
  assert ids[6] == "utt1"
  assert [augmented[i]["label"] for i in range(0, 18, 6)] == [0, 1, 0]
  np.testing.assert_array_equal(augmented[6]["audio"], source[1]["audio"])
  assert len(augmented[7]["audio"]) == round(4000 / 0.9)
  mp3 = augmented[8]["audio"]
  assert mp3.dtype == np.int16 and len(mp3) == 4000
  assert not np.array_equal(mp3, source[1]["audio"])
  assert os.path.exists(os.path.join(augmented.cache_path, "meta.json"))

  # A second instance reads the cache: no ffmpeg call at all.
  def _no_codec(*args, **kwargs):
    raise AssertionError("the cache should have been used")

  monkeypatch.setattr(codec_augment, "codec_round_trip", _no_codec)
  again = codec_augment.CodecAugmentedSource(
      source, SR, codecs=("mp3", "opus"), speed_factors=(0.9,),
      cache_dir=str(tmp_path), progress=False)
  assert again.cache_path == augmented.cache_path
  np.testing.assert_array_equal(again[8]["audio"], mp3)
  # Picklable for grain workers; the copy reads the same cache.
  copy = pickle.loads(pickle.dumps(again))
  np.testing.assert_array_equal(copy[8]["audio"], mp3)
  # Other settings or another source -> another cache entry.
  other = codec_augment.CodecAugmentedSource(
      source, SR, codecs=("mp3",), speed_factors=(0.9,),
      cache_dir=str(tmp_path), progress=False)
  changed = _small_source()
  changed[2] = {**changed[2], "label": 1}
  moved = codec_augment.CodecAugmentedSource(
      changed, SR, codecs=("mp3", "opus"), speed_factors=(0.9,),
      cache_dir=str(tmp_path), progress=False)
  assert len({augmented.cache_path, other.cache_path, moved.cache_path}) == 3


def test_speed_only_needs_no_ffmpeg(tmp_path, monkeypatch):
  monkeypatch.setattr(codec_augment.shutil, "which", lambda name: None)
  augmented = codec_augment.CodecAugmentedSource(
      _small_source(), SR, codecs=(), speed_factors=(0.9, 1.1),
      cache_dir=str(tmp_path), progress=False)
  assert len(augmented) == 9
  assert [len(augmented[i]["audio"]) for i in range(3)] == [4000, 4444, 3636]


def test_missing_ffmpeg_names_the_package(monkeypatch):
  monkeypatch.setattr(codec_augment.shutil, "which", lambda name: None)
  with pytest.raises(RuntimeError, match="apt-get install ffmpeg"):
    codec_augment.codec_round_trip(_tone(seconds=0.1), SR, "mp3")


def test_unknown_codec_names_the_field(tmp_path):
  with pytest.raises(ValueError, match="config.data.codec_augment"):
    codec_augment.CodecAugmentedSource(
        _small_source(), SR, codecs=("flac2",), speed_factors=(),
        cache_dir=str(tmp_path))
