r"""On-device augmentation of waveforms and images inside the jitted step.

``config.augment`` picks one (``name``) with its fields:

* ``none`` — the default.
* ``coloured_noise`` — HM-Conformer's online augmentation (its
  ``DA_wav_aug_list = ['ACN']``): torch_audiomentations' ``AddColoredNoise``
  with the seed's parameters, SNR uniform in [10, 40] dB, spectral decay
  uniform in [-2, 2], applied to every clip (``p = 1``).
* ``flip_crop`` — images: a random left-right flip (``flip_p``) and an
  optional random ``crop x crop`` window, the seeds' ``RandomHorizontalFlip``
  and ``RandomCrop`` (:func:`flip_crop_images`); off at test.

The noise, as ``torch_audiomentations/augmentations/colored_noise.py``
makes it: one second of white Gaussian noise :math:`n` (``sample_rate``
samples), its real FFT scaled by

.. math:: m_k = 1 / \ell_k^{\,d}, \qquad
   \ell = \mathrm{linspace}\big(1, \sqrt{sr/2}, \lfloor sr/2 \rfloor + 1\big),

(:math:`d` = 0 white, 1 pink, 2 brown, -1 blue, -2 violet: the power falls
as :math:`1/f^d`), inverse FFT, RMS-normalised, tiled to the clip length;
then added at the drawn SNR: :math:`x + \mathrm{rms}(x)\,10^{-\mathrm{snr}/20}
\,\tilde n`. Each example draws its own SNR, decay and noise.

The official code never switches its augmentation module to eval mode, so
the noise stays on when it scores test files; ``at_test=True`` reproduces
that quirk (a fixed key, so scoring stays deterministic), off by default.

Example::

  augment = make_augment({"name": "coloured_noise"}, sample_rate=16000)
  noisy = augment.train(jax.random.PRNGKey(0), audio)   # [B, L] float32
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp

from cljax import registry
from cljax.features import spectrum
from cljax.features import to_float

AugmentFn = Callable[[jax.Array, jax.Array], jax.Array]


class Augment(NamedTuple):
  """``train(key, audio) -> audio`` for training; ``test`` the same or None.

  ``test`` is set only to reproduce a recipe's test-time augmentation.
  """
  train: AugmentFn | None = None
  test: AugmentFn | None = None


def coloured_noise_unit(key: jax.Array, f_decay: jax.Array,
                        num_samples: int, sample_rate: int) -> jax.Array:
  """One example's unit-RMS coloured noise ``[num_samples]``, float32."""
  white = jax.random.normal(key, (sample_rate,), jnp.float32)
  spectrum = jnp.fft.rfft(white)
  ramp = jnp.linspace(1.0, (sample_rate / 2) ** 0.5, spectrum.shape[0])
  noise = jnp.fft.irfft(spectrum / ramp ** f_decay, n=sample_rate)
  noise = noise / jnp.sqrt(jnp.mean(jnp.square(noise)))
  repeats = -(-num_samples // sample_rate)
  return jnp.tile(noise, repeats)[:num_samples]


def add_coloured_noise(key: jax.Array, audio: jax.Array, *, sample_rate: int,
                       min_snr_db: float = 10.0, max_snr_db: float = 40.0,
                       min_f_decay: float = -2.0, max_f_decay: float = 2.0,
                       p: float = 1.0) -> jax.Array:
  """Adds coloured noise at a random SNR to each clip of ``audio [B, L]``.

  Returns float32 audio (int16 input is scaled to [-1, 1) first). Each
  example is augmented with probability ``p``.
  """
  audio = to_float(audio)
  if audio.ndim != 2:
    raise ValueError(f"add_coloured_noise expects audio [batch, samples], "
                     f"got shape {audio.shape}.")
  batch, num_samples = audio.shape
  snr_key, decay_key, noise_key, apply_key = jax.random.split(key, 4)
  snr_db = jax.random.uniform(snr_key, (batch,), minval=min_snr_db,
                              maxval=max_snr_db)
  f_decay = jax.random.uniform(decay_key, (batch,), minval=min_f_decay,
                               maxval=max_f_decay)
  noise = jax.vmap(lambda k, d: coloured_noise_unit(
      k, d, num_samples, sample_rate))(jax.random.split(noise_key, batch),
                                       f_decay)
  signal_rms = jnp.sqrt(jnp.mean(jnp.square(audio), axis=1))
  noise_rms = signal_rms / 10.0 ** (snr_db / 20.0)
  noisy = audio + noise_rms[:, None] * noise
  if p >= 1.0:
    return noisy
  applied = jax.random.uniform(apply_key, (batch,)) < p
  return jnp.where(applied[:, None], noisy, audio)


def _none(sample_rate: int) -> Augment:
  del sample_rate
  return Augment()


def _coloured_noise(sample_rate: int, min_snr_db: float = 10.0,
                    max_snr_db: float = 40.0, min_f_decay: float = -2.0,
                    max_f_decay: float = 2.0, p: float = 1.0,
                    at_test: bool = False) -> Augment:
  """HM-Conformer's coloured noise; ``at_test`` keeps it on when scoring."""
  if not min_snr_db <= max_snr_db:
    raise registry.ConfigError(
        f"config.augment.min_snr_db={min_snr_db} must be <= max_snr_db="
        f"{max_snr_db}.")
  if not min_f_decay <= max_f_decay:
    raise registry.ConfigError(
        f"config.augment.min_f_decay={min_f_decay} must be <= max_f_decay="
        f"{max_f_decay}.")
  if not 0.0 <= p <= 1.0:
    raise registry.ConfigError(f"config.augment.p={p} must lie in [0, 1].")

  def augment(key, audio):
    return add_coloured_noise(
        key, audio, sample_rate=sample_rate, min_snr_db=min_snr_db,
        max_snr_db=max_snr_db, min_f_decay=min_f_decay,
        max_f_decay=max_f_decay, p=p)

  return Augment(train=augment, test=augment if at_test else None)


def flip_crop_images(key: jax.Array, inputs: jax.Array, *,
                     crop: int | None = None,
                     flip_p: float = 0.5) -> jax.Array:
  """Random horizontal flip and random ``crop x crop`` window per image.

  Args:
    key: PRNG key.
    inputs: ``[B, H, W, C]`` images or an image stream's flattened
      ``[B, S*S*C]`` records (``spectrum.as_images``).
    crop: side of the random window (None: no crop).
    flip_p: probability of mirroring an image left-right.

  Returns:
    ``[B, crop, crop, C]`` (``[B, H, W, C]`` without crop), the input dtype.
  """
  images = spectrum.as_images(inputs)
  batch, height, width, _ = images.shape
  flip_key, top_key, left_key = jax.random.split(key, 3)
  flip = jax.random.bernoulli(flip_key, flip_p, (batch,))
  images = jnp.where(flip[:, None, None, None], images[:, :, ::-1, :], images)
  if crop is None:
    return images
  if crop > min(height, width):
    raise ValueError(f"config.augment.crop={crop} is larger than the images "
                     f"({height}x{width}).")
  tops = jax.random.randint(top_key, (batch,), 0, height - crop + 1)
  lefts = jax.random.randint(left_key, (batch,), 0, width - crop + 1)

  def window(image, top, left):
    return jax.lax.dynamic_slice(image, (top, left, 0),
                                 (crop, crop, image.shape[-1]))

  return jax.vmap(window)(images, tops, lefts)


def _flip_crop(sample_rate: int, crop: int | None = None,
               flip_p: float = 0.5) -> Augment:
  """Images: random flip (+ random crop) in training; nothing at test.

  With ``crop`` set, give the front end the same ``crop``: its centre
  window is then the test-time counterpart of the random training window
  (the seeds' ``RandomCrop`` / ``CenterCrop`` pair).
  """
  del sample_rate  # Images have none; same signature as the others.
  if crop is not None and (not isinstance(crop, int) or crop < 1):
    raise registry.ConfigError(
        f"config.augment.crop={crop!r} must be a positive int or None.")
  if not 0.0 <= flip_p <= 1.0:
    raise registry.ConfigError(
        f"config.augment.flip_p={flip_p} must lie in [0, 1].")

  def augment(key, inputs):
    return flip_crop_images(key, inputs, crop=crop, flip_p=flip_p)

  return Augment(train=augment)


AUGMENTS: Mapping[str, Callable[..., Augment]] = {
    "none": _none,
    "coloured_noise": _coloured_noise,
    # Images (flattened image-stream records or NHWC batches).
    "flip_crop": _flip_crop,
}


def make_augment(block: Mapping[str, Any], sample_rate: int) -> Augment:
  """Builds ``config.augment`` (fields checked against the factory)."""
  return registry.build(AUGMENTS, block, "augment", sample_rate=sample_rate)
