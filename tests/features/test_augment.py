"""Coloured noise against a numpy transcription of torch_audiomentations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.features import augment as augment_lib
from cljax.registry import ConfigError

SR = 16000


def _reference_unit_noise(white, f_decay, num_samples, sample_rate):
  """torch_audiomentations ``_gen_noise`` with a given white-noise draw."""
  spec = np.fft.rfft(white.astype(np.float64))
  mask = 1 / np.linspace(1, (sample_rate / 2) ** 0.5, spec.shape[0]) ** f_decay
  noise = np.fft.irfft(spec * mask, n=sample_rate)
  noise /= np.sqrt(np.mean(noise ** 2))
  noise = np.concatenate([noise] * int(np.ceil(num_samples / sample_rate)))
  return noise[:num_samples]


@pytest.mark.parametrize("f_decay", [-2.0, 0.0, 1.0, 2.0])
def test_unit_noise_matches_the_reference(f_decay):
  key = jax.random.PRNGKey(3)
  white = np.asarray(jax.random.normal(key, (SR,), jnp.float32))
  got = np.asarray(augment_lib.coloured_noise_unit(key, f_decay, 40000, SR))
  want = _reference_unit_noise(white, f_decay, 40000, SR)
  np.testing.assert_allclose(got, want, atol=2e-4)
  # Tiled: the second second repeats the first.
  np.testing.assert_array_equal(got[SR:2 * SR], got[:SR])


def test_spectral_slope_follows_the_decay():
  # Power ~ 1/f^d: brown noise has far more power below 500 Hz than above
  # 4 kHz; violet the reverse.
  def band_ratio(d):
    noise = np.asarray(augment_lib.coloured_noise_unit(
        jax.random.PRNGKey(0), d, SR, SR))
    power = np.abs(np.fft.rfft(noise)) ** 2
    return power[10:500].mean() / power[4000:8000].mean()
  assert band_ratio(2.0) > 100 * band_ratio(0.0) > 100 * band_ratio(-2.0)
  assert 0.5 < band_ratio(0.0) < 2.0


def test_snr_lies_in_the_drawn_range():
  rng = np.random.default_rng(0)
  audio = (0.2 * rng.standard_normal((64, 8000))).astype(np.float32)
  noisy = np.asarray(augment_lib.add_coloured_noise(
      jax.random.PRNGKey(1), audio, sample_rate=SR))
  noise = noisy - audio
  snr = 10 * np.log10(np.mean(audio ** 2, 1) / np.mean(noise ** 2, 1))
  # The noise is unit-RMS over whole seconds, so over half a second its RMS
  # is close to, not exactly, 1: allow half a dB.
  assert snr.min() > 10 - 0.5 and snr.max() < 40 + 0.5
  assert snr.max() - snr.min() > 15  # Drawn per example, not shared.


def test_p_zero_leaves_audio_alone_and_int16_is_scaled():
  audio = np.full((2, 1600), 16384, np.int16)
  same = augment_lib.add_coloured_noise(jax.random.PRNGKey(0), audio,
                                        sample_rate=SR, p=0.0)
  np.testing.assert_array_equal(np.asarray(same), 0.5)


def test_make_augment_and_config_errors():
  assert augment_lib.make_augment({"name": "none"}, SR) == augment_lib.Augment()
  built = augment_lib.make_augment({"name": "coloured_noise"}, SR)
  assert built.train is not None and built.test is None
  faithful = augment_lib.make_augment(
      {"name": "coloured_noise", "at_test": True}, SR)
  assert faithful.test is faithful.train
  with pytest.raises(ConfigError, match="config.augment.min_snr_db=50"):
    augment_lib.make_augment({"name": "coloured_noise", "min_snr_db": 50.0},
                             SR)
  with pytest.raises(ConfigError, match="config.augment.name='reverb'"):
    augment_lib.make_augment({"name": "reverb"}, SR)


def test_flip_crop_mirrors_and_takes_a_window_of_each_image():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (6, 9, 9, 3), dtype=np.uint8)
  flat = images.reshape(6, -1)
  key = jax.random.PRNGKey(1)
  # p = 1: every image mirrored left-right, nothing else.
  mirrored = augment_lib.flip_crop_images(key, flat, flip_p=1.0)
  np.testing.assert_array_equal(np.asarray(mirrored), images[:, :, ::-1])
  unflipped = augment_lib.flip_crop_images(key, images, flip_p=0.0, crop=4)
  assert unflipped.shape == (6, 4, 4, 3) and unflipped.dtype == jnp.uint8
  # Each output is some 4x4 window of its own image.
  for out, image in zip(np.asarray(unflipped), images):
    windows = [(t, l) for t in range(6) for l in range(6)
               if np.array_equal(image[t:t + 4, l:l + 4], out)]
    assert windows, "crop is not a window of its image"
  # Windows differ across the batch (random offsets, not one shared one).
  offsets = {tuple(np.asarray(o).ravel()[:3]) for o in np.asarray(unflipped)}
  assert len(offsets) > 1
  # With p = 0.5 some images flip and some do not, deterministic in the key.
  half = np.asarray(augment_lib.flip_crop_images(key, images))
  flipped = [np.array_equal(h, i[:, ::-1]) for h, i in zip(half, images)]
  kept = [np.array_equal(h, i) for h, i in zip(half, images)]
  assert all(f or k for f, k in zip(flipped, kept))
  np.testing.assert_array_equal(
      half, np.asarray(augment_lib.flip_crop_images(key, images)))


def test_flip_crop_config():
  augment = augment_lib.make_augment({"name": "flip_crop", "crop": 4}, 243)
  assert augment.test is None
  out = jax.jit(augment.train)(jax.random.PRNGKey(0),
                               jnp.zeros((2, 243), jnp.uint8))
  assert out.shape == (2, 4, 4, 3)
  with pytest.raises(ConfigError, match="config.augment.flip_p"):
    augment_lib.make_augment({"name": "flip_crop", "flip_p": 2.0}, 243)
  with pytest.raises(ConfigError, match="config.augment.crop"):
    augment_lib.make_augment({"name": "flip_crop", "crop": 0}, 243)
  with pytest.raises(ValueError, match="larger than the images"):
    augment_lib.flip_crop_images(jax.random.PRNGKey(0),
                                 jnp.zeros((1, 243), jnp.uint8), crop=10)
