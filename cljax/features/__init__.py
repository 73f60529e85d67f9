"""Front ends: turn a batch of waveforms into model inputs on device.

``make_frontend(config.frontend, sample_rate)`` returns a pure function
``audio [B, L] (int16 or float32) -> features`` that the jitted steps call, so
feature extraction runs on the accelerator next to the model.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax.numpy as jnp

from cljax import registry
from cljax.features import lfcc as lfcc_lib
from cljax.features import spectrum as spectrum_lib
from cljax.features.logmel import log_mel, mel_filterbank, num_frames, stft_window

__all__ = ["FRONTENDS", "make_frontend", "log_mel", "mel_filterbank",
           "num_frames", "stft_window", "to_float"]

Frontend = Callable[[jnp.ndarray], jnp.ndarray]


def to_float(audio: jnp.ndarray) -> jnp.ndarray:
  """int16 PCM -> float32 in [-1, 1); float input is only cast to float32."""
  audio = jnp.asarray(audio)
  if audio.dtype == jnp.int16:
    return audio.astype(jnp.float32) / 32768.0
  return audio.astype(jnp.float32)


def logmel_frontend(sample_rate: int, n_fft: int = 512, win_length: int = 400,
                    hop_length: int = 160, n_mels: int = 64,
                    fmin: float = 20.0, fmax: float | None = None,
                    log_offset: float = 1e-6) -> Frontend:
  """``audio [B, L] -> log-mel [B, 1 + L // hop_length, n_mels]``."""
  nyquist = sample_rate / 2
  if fmax is not None and not fmin < fmax <= nyquist:
    raise ValueError(f"fmax={fmax} must lie in (fmin={fmin}, {nyquist}] for "
                     f"sample_rate={sample_rate}.")
  if not 0 <= fmin < nyquist:
    raise ValueError(f"fmin={fmin} must lie in [0, {nyquist}).")
  # Build the host constants now so a bad setting fails before compiling.
  stft_window(win_length, n_fft)
  mel_filterbank(sample_rate, n_fft, n_mels, float(fmin),
                 None if fmax is None else float(fmax))

  def frontend(audio: jnp.ndarray) -> jnp.ndarray:
    return log_mel(to_float(audio), sample_rate=sample_rate, n_fft=n_fft,
                   win_length=win_length, hop_length=hop_length,
                   n_mels=n_mels, fmin=fmin, fmax=fmax, log_offset=log_offset)

  return frontend


def lfcc_frontend(sample_rate: int, n_fft: int = 512, win_length: int = 320,
                  hop_length: int = 160, n_filters: int = 40,
                  num_coef: int | None = None, pre_emphasis: float = 0.97,
                  with_energy: bool = True, with_deltas: bool = True,
                  min_freq: float = 0.0, max_freq: float = 1.0
                  ) -> Frontend:
  """``audio [B, L] -> LFCC [B, 1 + L // hop_length, 3 * n_filters]``.

  Defaults are the HM-Conformer official values (cljax/features/lfcc.py):
  4 s at 16 kHz gives ``[B, 401, 120]``. The LFCC-LCNN baseline's front
  end: ``n_fft=1024, n_filters=20, max_freq=0.5`` (60 features, 0-4 kHz).
  """
  # Build the host constants now so a bad setting fails before compiling.
  lfcc_lib.hamming_window(win_length, n_fft)
  lfcc_lib.linear_filterbank(sample_rate, n_fft, n_filters, min_freq,
                             max_freq)
  if num_coef is not None and not 0 < num_coef <= n_filters:
    raise ValueError(f"num_coef={num_coef} must lie in [1, n_filters="
                     f"{n_filters}].")
  if hop_length < 1:
    raise ValueError(f"hop_length={hop_length} must be >= 1.")

  def frontend(audio: jnp.ndarray) -> jnp.ndarray:
    return lfcc_lib.lfcc(
        to_float(audio), sample_rate=sample_rate, n_fft=n_fft,
        win_length=win_length, hop_length=hop_length, n_filters=n_filters,
        num_coef=num_coef, pre_emphasis=pre_emphasis,
        with_energy=with_energy, with_deltas=with_deltas,
        min_freq=min_freq, max_freq=max_freq)

  return frontend


def raw_frontend(sample_rate: int) -> Frontend:
  """``audio [B, L] -> float waveform [B, L, 1]`` for waveform models."""
  del sample_rate  # Same signature as the other front ends.

  def frontend(audio: jnp.ndarray) -> jnp.ndarray:
    return to_float(audio)[..., None]

  return frontend


def identity_frontend(sample_rate: int) -> Frontend:
  """``features [B, D] -> float32 [B, D]``: for precomputed feature vectors.

  Streams of precomputed embeddings (EVDA's self-supervised features, the
  digits stream) store a vector per record under ``audio``; the model reads
  it as it is.
  """
  del sample_rate  # Same signature as the other front ends.

  def frontend(features: jnp.ndarray) -> jnp.ndarray:
    return jnp.asarray(features).astype(jnp.float32)

  return frontend


FRONTENDS: Mapping[str, Callable[..., Frontend]] = {
    "identity": identity_frontend,
    "lfcc": lfcc_frontend,
    "logmel": logmel_frontend,
    "raw": raw_frontend,
    # Images (cljax.features.spectrum): seed 001's log-|FFT| input, RGB.
    "rgb": spectrum_lib.rgb_frontend,
    "spectrum": spectrum_lib.spectrum_frontend,
}


def make_frontend(block: Mapping[str, Any], sample_rate: int) -> Frontend:
  """Builds the front end named by ``block`` (``config.frontend``).

  Args:
    block: ``{"name": "logmel" | "raw" | ..., <that front end's fields>}``.
    sample_rate: from the stream; the config may not set it.

  Returns:
    A jittable function of a ``[B, L]`` int16 or float32 audio batch.
  """
  return registry.build(FRONTENDS, block, "frontend", sample_rate=sample_rate)
