r"""Image front ends on device: the FFT log-spectrum (seed 001) and plain RGB.

Both take a batch of NHWC images ``[B, H, W, C]`` (uint8 as decoded, or
float already in [0, 1]), or the flattened ``[B, S*S*3]`` records of an
image stream (:func:`as_images`), and run inside the jitted step, so the host only
decodes and the accelerator does the crop and the FFT.

FFT spectrum (:func:`fft_spectrum`), per image and channel :math:`x`
(``[crop, crop]`` after a centre crop, uint8 scaled by 1/255):

.. math::
   S = \log\big(\lvert \mathrm{fftshift}(\mathrm{FFT2}(x)) \rvert
       + \varepsilon\big), \qquad \varepsilon = 10^{-3},

   \tilde S = \mathrm{clip}\Big(2\,\frac{S - p_{5}}{p_{95} - p_{5}} - 1,
       -1, 1\Big),

where :math:`p_q` is the :math:`q`-th percentile of that channel's
:math:`S` (linear interpolation, NumPy's default). So the 5th percentile maps
to -1, the 95th to +1, and the tails (the DC peak, the weakest bins) are
clipped.

This follows seed 001's data loaders (the public code of "Towards
generalizable DeepFake detection with continual learning on limited data"):
``im[16:240, 16:240] / 255``, then per channel ``np.log(np.abs(np.fft.fft2(
img)) + 1e-3)``, ``np.percentile`` 5 / 95, ``(x - min) / (max - min)``,
``(x - 0.5) * 2``, clipped to [-1, 1]. Differences, all deliberate:

* Centring: seed 001's ResNet loaders leave the spectrum *unshifted* (DC at
  the corner); its filtered variants and REFERENCE.md centre it. cljax
  centres by default (``shift=True``; ``shift=False`` gives the unshifted
  layout). The shift is a permutation of the bins, so the percentiles and
  the per-bin values are the same either way.
* A channel whose 5th and 95th percentiles coincide (e.g. a constant
  image: every bin but DC is :math:`\log\varepsilon`) divides by 0 in seed
  001 and yields NaN / inf; here the span is taken as 1 instead, so bins at
  the percentile map to -1 and the few above it towards +1.
* The crop is the centre ``crop x crop`` window of any image at least that
  large (seed 001 hard-codes 16:240 of 256x256 images, the same window).

RGB (:func:`rgb_frontend`): uint8 -> float32 in [0, 1] (``normalization=
"unit"``, the default) or ImageNet mean/std normalised (``"imagenet"``, for
torchvision-pretrained weights), after an optional centre crop.
"""

from __future__ import annotations

import math
from typing import Callable

import jax.numpy as jnp

__all__ = ["as_images", "fft_spectrum", "centre_crop", "to_unit_float", "spectrum_frontend",
           "rgb_frontend", "EPS", "IMAGENET_MEAN", "IMAGENET_STD"]

Frontend = Callable[[jnp.ndarray], jnp.ndarray]

# Seed 001's offset under the log: log(1e-3) ~ -6.9 floors the empty bins.
EPS = 1e-3
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALIZATIONS = ("unit", "imagenet")


def _check_images(images: jnp.ndarray, where: str) -> None:
  if images.ndim != 4:
    raise ValueError(
        f"{where} expects images [batch, height, width, channels], got shape "
        f"{images.shape}.")


def as_images(inputs: jnp.ndarray, channels: int = 3) -> jnp.ndarray:
  """``[B, S*S*C]`` flattened square images -> ``[B, S, S, C]``.

  Image streams store each record's ``S x S x C`` (HWC) image flattened
  under the loop's input field (cljax/data/stream.py), so the loader,
  replay buffers and strategies handle images like any other fixed-length
  input; the front end restores the shape. ``[B, H, W, C]`` passes through.
  """
  inputs = jnp.asarray(inputs)
  if inputs.ndim == 4:
    return inputs
  if inputs.ndim != 2:
    raise ValueError(
        f"Image front ends take [batch, height, width, channels] or "
        f"flattened [batch, size*size*{channels}] images; got shape "
        f"{inputs.shape}.")
  length = inputs.shape[1]
  side = math.isqrt(length // channels) if length % channels == 0 else 0
  if side == 0 or side * side * channels != length:
    raise ValueError(
        f"An input of {length} values is not a flattened square "
        f"{channels}-channel image (size*size*{channels}). Image streams "
        "store S*S*3 uint8 values per record and set sample_rate = S*S*3; "
        "check that config.data.crop_seconds = config.data.eval_seconds = "
        "1.0 and that the stream is an image stream.")
  return inputs.reshape(inputs.shape[0], side, side, channels)


def to_unit_float(images: jnp.ndarray) -> jnp.ndarray:
  """uint8 -> float32 in [0, 1]; float input is only cast to float32."""
  images = jnp.asarray(images)
  if images.dtype == jnp.uint8:
    return images.astype(jnp.float32) / 255.0
  return images.astype(jnp.float32)


def centre_crop(images: jnp.ndarray, crop: int) -> jnp.ndarray:
  """The centre ``crop x crop`` window of ``images [B, H, W, C]``.

  The window starts at ``(H - crop) // 2`` (and likewise in W), so 224 of
  256 is rows 16..239, as seed 001 crops. Shapes are static, so an image
  smaller than the crop fails at trace time with a ValueError.
  """
  _check_images(images, "centre_crop")
  height, width = images.shape[1:3]
  if crop > height or crop > width:
    raise ValueError(
        f"config.frontend.crop={crop} is larger than the images "
        f"({height}x{width}); set crop <= {min(height, width)} or feed larger "
        "images.")
  top, left = (height - crop) // 2, (width - crop) // 2
  return images[:, top:top + crop, left:left + crop, :]


def fft_spectrum(images: jnp.ndarray, crop: int | None = 224,
                 low_pct: float = 5.0, high_pct: float = 95.0,
                 eps: float = EPS, shift: bool = True) -> jnp.ndarray:
  """Percentile-normalised log-magnitude 2-D FFT per channel (seed 001).

  Args:
    images: ``[B, H, W, C]`` uint8 (scaled by 1/255) or float in [0, 1].
    crop: side of the centre crop; None keeps the whole image.
    low_pct, high_pct: percentiles mapped to -1 and +1 per image and channel.
    eps: offset inside the log (seed 001: 1e-3).
    shift: centre the spectrum (DC in the middle) with ``fftshift``.

  Returns:
    float32 ``[B, crop, crop, C]`` in [-1, 1].
  """
  _check_images(images, "fft_spectrum")
  if crop is not None:
    images = centre_crop(images, crop)
  x = to_unit_float(images)
  spectrum = jnp.fft.fft2(x, axes=(1, 2))
  if shift:
    spectrum = jnp.fft.fftshift(spectrum, axes=(1, 2))
  log_mag = jnp.log(jnp.abs(spectrum) + eps)
  low, high = jnp.percentile(log_mag, jnp.asarray([low_pct, high_pct]),
                             axis=(1, 2), keepdims=True)
  span = high - low
  # A flat channel (span 0) maps to -1 instead of seed 001's 0/0 = NaN.
  span = jnp.where(span > 0, span, 1.0)
  scaled = 2.0 * (log_mag - low) / span - 1.0
  return jnp.clip(scaled, -1.0, 1.0).astype(jnp.float32)


def _check_percentiles(low_pct: float, high_pct: float) -> None:
  if not 0.0 <= low_pct < high_pct <= 100.0:
    raise ValueError(
        f"config.frontend.low_pct={low_pct} and high_pct={high_pct} must "
        "satisfy 0 <= low_pct < high_pct <= 100.")


def _check_crop(crop: int | None) -> None:
  if crop is not None and (not isinstance(crop, int) or crop < 1):
    raise ValueError(f"config.frontend.crop={crop!r} must be a positive int "
                     "or None (no crop).")


def spectrum_frontend(sample_rate: int | None = None, crop: int | None = 224,
                      low_pct: float = 5.0, high_pct: float = 95.0,
                      eps: float = EPS, shift: bool = True) -> Frontend:
  """``images [B, H, W, C] -> FFT log-spectrum [B, crop, crop, C]``.

  ``sample_rate`` is accepted so that ``make_frontend`` can pass it as it
  does to the audio front ends; images have none, so it is ignored.
  """
  del sample_rate  # Same signature as the audio front ends.
  _check_crop(crop)
  _check_percentiles(low_pct, high_pct)
  if eps <= 0:
    raise ValueError(f"config.frontend.eps={eps} must be > 0 (log of 0).")

  def frontend(images: jnp.ndarray) -> jnp.ndarray:
    return fft_spectrum(as_images(images), crop=crop, low_pct=low_pct,
                        high_pct=high_pct, eps=eps, shift=shift)

  return frontend


def rgb_frontend(sample_rate: int | None = None, crop: int | None = None,
                 normalization: str = "unit") -> Frontend:
  """``images [B, H, W, C] -> float32 [B, crop, crop, C]`` (plain RGB).

  ``normalization="unit"``: uint8 / 255, values in [0, 1]. ``"imagenet"``:
  then ``(x - mean) / std`` with the ImageNet channel statistics (3
  channels). ``crop=None`` keeps the whole image. ``sample_rate`` is
  ignored (see :func:`spectrum_frontend`).
  """
  del sample_rate  # Same signature as the audio front ends.
  _check_crop(crop)
  if normalization not in NORMALIZATIONS:
    raise ValueError(f"config.frontend.normalization={normalization!r}: "
                     f"choose one of {list(NORMALIZATIONS)}.")

  def frontend(images: jnp.ndarray) -> jnp.ndarray:
    images = as_images(images)
    if crop is not None:
      images = centre_crop(images, crop)
    x = to_unit_float(images)
    if normalization == "imagenet":
      if x.shape[-1] != 3:
        raise ValueError(
            f"config.frontend.normalization='imagenet' needs 3 channels, got "
            f"{x.shape[-1]}; use normalization='unit'.")
      x = (x - jnp.asarray(IMAGENET_MEAN)) / jnp.asarray(IMAGENET_STD)
    return x

  return frontend
