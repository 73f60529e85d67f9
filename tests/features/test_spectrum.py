"""Tests for the image front ends: FFT log-spectrum (seed 001) and RGB."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax import registry
from cljax.features.spectrum import (IMAGENET_MEAN, IMAGENET_STD,
                                     fft_spectrum, rgb_frontend,
                                     spectrum_frontend)


def _numpy_spectrum(images, crop, low=5.0, high=95.0, eps=1e-3, shift=True):
  """Seed 001's per-channel recipe in float64 NumPy, on a whole batch."""
  images = np.asarray(images)
  h, w = images.shape[1:3]
  top, left = (h - crop) // 2, (w - crop) // 2
  x = images[:, top:top + crop, left:left + crop, :].astype(np.float64)
  if images.dtype == np.uint8:
    x = x / 255.0
  out = np.empty_like(x)
  for b in range(x.shape[0]):
    for c in range(x.shape[-1]):
      f = np.fft.fft2(x[b, :, :, c])
      if shift:
        f = np.fft.fftshift(f)
      s = np.log(np.abs(f) + eps)
      lo, hi = np.percentile(s, low), np.percentile(s, high)
      s = (s - lo) / (hi - lo)
      out[b, :, :, c] = np.clip((s - 0.5) * 2, -1, 1)
  return out


def _images(shape=(2, 40, 48, 3), seed=0):
  """uint8 images: a smooth gradient (a real-looking 1/f-ish spectrum) plus
  noise, different per image and channel."""
  rng = np.random.default_rng(seed)
  b, h, w, c = shape
  yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w),
                       indexing="ij")
  base = 120 * (yy[None, :, :, None] * rng.uniform(0.5, 1.5, (b, 1, 1, c))
                + xx[None, :, :, None] * rng.uniform(0.5, 1.5, (b, 1, 1, c)))
  noisy = base + rng.normal(0, 20, shape)
  return np.clip(noisy, 0, 255).astype(np.uint8)


_jit_spectrum = jax.jit(fft_spectrum, static_argnames=(
    "crop", "low_pct", "high_pct", "eps", "shift"))


# Tolerance: max abs difference 1e-4 on the [-1, 1] output (float32 FFT vs
# NumPy float64; measured 7e-6 on 32x32 crops, 4e-5 on 224x224 crops).
# Bins landing exactly on a clip boundary agree too, because both clip.
@pytest.mark.parametrize("shift", [True, False])
def test_matches_numpy_reference_with_crop_smaller_than_image(shift):
  images = _images()
  got = np.asarray(_jit_spectrum(images, crop=32, shift=shift))
  want = _numpy_spectrum(images, crop=32, shift=shift)
  assert got.shape == (2, 32, 32, 3) and got.dtype == np.float32
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_seed_001_geometry_224_of_256():
  # Seed 001 crops rows/cols 16..239 of 256x256 images.
  images = _images((1, 256, 256, 3), seed=5)
  got = np.asarray(_jit_spectrum(images, crop=224))
  np.testing.assert_allclose(got, _numpy_spectrum(images, crop=224),
                             atol=1e-4, rtol=0)


def test_other_percentiles_and_eps():
  images = _images((1, 24, 24, 2), seed=3)
  got = np.asarray(_jit_spectrum(images, crop=16, low_pct=10.0,
                                 high_pct=80.0, eps=1e-2))
  want = _numpy_spectrum(images, crop=16, low=10.0, high=80.0, eps=1e-2)
  np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


def test_percentiles_map_to_plus_minus_one_and_tails_clip():
  out = np.asarray(_jit_spectrum(_images((1, 64, 64, 3), seed=1), crop=64))
  per_channel = out[0].reshape(-1, 3)
  assert per_channel.min() == -1.0 and per_channel.max() == 1.0
  # 4096 bins per channel: ~5% at or below p5, ~5% at or above p95.
  low_frac = np.mean(per_channel <= -1.0, axis=0)
  high_frac = np.mean(per_channel >= 1.0, axis=0)
  assert np.all((low_frac > 0.04) & (low_frac < 0.07)), low_frac
  assert np.all((high_frac > 0.04) & (high_frac < 0.07)), high_frac


def test_centred_spectrum_has_dc_in_the_middle():
  # A positive image's DC bin is its largest magnitude: +1 after clipping.
  images = _images((1, 16, 16, 1), seed=2)
  centred = np.asarray(_jit_spectrum(images, crop=16, shift=True))[0, ..., 0]
  corner = np.asarray(_jit_spectrum(images, crop=16, shift=False))[0, ..., 0]
  assert centred[8, 8] == 1.0 and corner[0, 0] == 1.0
  np.testing.assert_array_equal(np.fft.ifftshift(centred), corner)


def test_uint8_and_unit_float_inputs_agree():
  images = _images((1, 20, 20, 3), seed=4)
  a = _jit_spectrum(images, crop=20)
  b = _jit_spectrum(images.astype(np.float32) / 255.0, crop=20)
  np.testing.assert_allclose(a, b, atol=1e-5)


def test_constant_image_gives_no_nan():
  out = np.asarray(fft_spectrum(np.full((1, 8, 8, 1), 77, np.uint8),
                                crop=8))
  assert np.all(np.isfinite(out))
  assert out[0, 4, 4, 0] == 1.0  # DC
  assert np.sum(out == -1.0) == 63  # every other bin sits at the percentile


def test_image_smaller_than_crop_raises_naming_the_crop():
  with pytest.raises(ValueError, match=r"config\.frontend\.crop=224.*20x30"):
    fft_spectrum(np.zeros((1, 20, 30, 3), np.uint8), crop=224)
  frontend = spectrum_frontend(crop=64)
  with pytest.raises(ValueError, match=r"crop=64"):
    jax.jit(frontend)(jnp.zeros((1, 63, 100, 3), jnp.uint8))


def test_frontend_factory_signature_and_validation():
  # make_frontend passes sample_rate as a fixed argument; it is ignored.
  frontends = {"spectrum": spectrum_frontend, "rgb": rgb_frontend}
  frontend = registry.build(frontends, {"name": "spectrum", "crop": 16},
                            "frontend", sample_rate=16000)
  images = _images((2, 20, 20, 3))
  np.testing.assert_allclose(jax.jit(frontend)(images),
                             _numpy_spectrum(images, crop=16), atol=1e-4)
  with pytest.raises(registry.ConfigError, match="config.frontend.n_fft"):
    registry.build(frontends, {"name": "spectrum", "n_fft": 3}, "frontend",
                   sample_rate=None)
  with pytest.raises(ValueError, match="low_pct=95.0"):
    spectrum_frontend(low_pct=95.0, high_pct=5.0)
  with pytest.raises(ValueError, match="crop=0"):
    spectrum_frontend(crop=0)
  with pytest.raises(ValueError, match="batch, height, width, channels"):
    fft_spectrum(np.zeros((20, 20, 3), np.uint8), crop=8)


def test_rgb_frontend_unit_and_imagenet():
  images = np.array([[[[0, 255, 51]]]], np.uint8).repeat(6, 1).repeat(6, 2)
  unit = rgb_frontend(crop=4)(images)
  assert unit.shape == (1, 4, 4, 3) and unit.dtype == jnp.float32
  np.testing.assert_allclose(unit[0, 0, 0], [0.0, 1.0, 0.2], atol=1e-6)
  imagenet = rgb_frontend(normalization="imagenet")(images)
  want = (np.array([0.0, 1.0, 0.2]) - IMAGENET_MEAN) / IMAGENET_STD
  np.testing.assert_allclose(imagenet[0, 5, 5], want, atol=1e-5)
  # The crop is the centre window.
  ramp = np.arange(36, dtype=np.uint8).reshape(1, 6, 6, 1)
  np.testing.assert_allclose(
      np.asarray(rgb_frontend(crop=2)(ramp))[0, ..., 0] * 255,
      [[14, 15], [20, 21]], atol=1e-4)
  with pytest.raises(ValueError, match="normalization='lab'"):
    rgb_frontend(normalization="lab")


def test_flattened_image_stream_records_are_reshaped():
  """Image streams store S*S*3 values per record; both front ends restore
  the HWC layout (row-major), so flat and NHWC inputs give equal outputs."""
  rng = np.random.default_rng(3)
  images = rng.integers(0, 256, (2, 12, 12, 3), dtype=np.uint8)
  flat = images.reshape(2, -1)
  np.testing.assert_array_equal(
      np.asarray(spectrum_frontend(crop=8)(flat)),
      np.asarray(spectrum_frontend(crop=8)(images)))
  np.testing.assert_allclose(np.asarray(rgb_frontend()(flat))[1, 4, 7],
                             images[1, 4, 7] / 255.0, atol=1e-7)
  for bad in (np.zeros((2, 12 * 12 * 3 + 3), np.uint8),   # not a square
              np.zeros((2, 10), np.uint8)):                # not 3 channels
    with pytest.raises(ValueError, match="crop_seconds"):
      rgb_frontend()(bad)
