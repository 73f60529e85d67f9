"""Log-mel spectrogram computed on device in JAX, matching librosa.

The front end runs inside the jitted train/eval step, so raw waveforms are all
that crosses the host-device boundary. Its output equals
``np.log(librosa.feature.melspectrogram(..., center=True,
pad_mode="constant", power=2.0) + log_offset).T`` up to float32 rounding; the
mel filterbank and the window are librosa's own, computed once on the host.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import librosa
import numpy as np
import scipy.signal


@functools.lru_cache(maxsize=32)
def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float,
                   fmax: float | None) -> np.ndarray:
  """librosa's Slaney-normalised mel filterbank, ``[n_fft // 2 + 1, n_mels]``.

  Transposed with respect to ``librosa.filters.mel`` so that
  ``power @ filterbank`` maps ``[..., n_freq]`` to ``[..., n_mels]``.
  """
  filters = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels,
                                fmin=fmin, fmax=fmax)
  return np.ascontiguousarray(filters.T.astype(np.float32))


@functools.lru_cache(maxsize=32)
def stft_window(win_length: int, n_fft: int) -> np.ndarray:
  """Periodic Hann window of ``win_length`` zero-padded to ``n_fft``, centred.

  Exactly what ``librosa.stft`` does: ``get_window('hann', win_length,
  fftbins=True)`` followed by ``librosa.util.pad_center(..., size=n_fft)``.
  """
  if not 0 < win_length <= n_fft:
    raise ValueError(
        f"log_mel: win_length={win_length} must be in [1, n_fft={n_fft}]; set "
        "config.frontend.win_length <= config.frontend.n_fft.")
  window = scipy.signal.get_window("hann", win_length, fftbins=True)
  left = (n_fft - win_length) // 2
  return np.pad(window, (left, n_fft - win_length - left)).astype(np.float32)


def num_frames(num_samples: int, hop_length: int) -> int:
  """Frames a centred STFT yields: ``1 + num_samples // hop_length``."""
  return 1 + num_samples // hop_length


def log_mel(waveform: jnp.ndarray, *, sample_rate: int = 16000,
            n_fft: int = 512, win_length: int = 400, hop_length: int = 160,
            n_mels: int = 64, fmin: float = 20.0, fmax: float | None = None,
            log_offset: float = 1e-6) -> jnp.ndarray:
  r"""Log-mel power spectrogram of a batch of waveforms.

  With frames :math:`x_t[n] = \tilde x[t h + n]` of the zero-padded signal
  :math:`\tilde x` (``n_fft // 2`` zeros each side, as ``center=True``),
  window :math:`w` and mel filters :math:`M`:

  .. math::
     X_t[k] = \sum_n w[n] x_t[n] e^{-2\pi i k n / N}, \qquad
     Y_t[m] = \log\Big(\sum_k M[m, k] |X_t[k]|^2 + \epsilon\Big).

  Args:
    waveform: ``[B, L]`` float audio (any scale; int16 callers divide by
      32768 first, which ``make_frontend`` does).
    sample_rate: Hz.
    n_fft: FFT size :math:`N`.
    win_length: Hann window length, ``<= n_fft``.
    hop_length: frame shift :math:`h` in samples.
    n_mels: number of mel bands.
    fmin: lowest mel band edge in Hz.
    fmax: highest band edge in Hz; None means ``sample_rate / 2``.
    log_offset: :math:`\epsilon`, keeps silent bands finite.

  Returns:
    ``[B, 1 + L // hop_length, n_mels]`` float32.
  """
  waveform = jnp.asarray(waveform)
  if waveform.ndim != 2:
    raise ValueError(
        f"log_mel: expected waveform [batch, samples], got shape "
        f"{waveform.shape}. Batch 1-D audio with x[None].")
  waveform = waveform.astype(jnp.float32)
  length = waveform.shape[1]
  padded = jnp.pad(waveform, ((0, 0), (n_fft // 2, n_fft // 2)))
  frames = num_frames(length, hop_length)
  # A static index table turns framing into one gather; it is a host constant
  # so jit folds it in and no convolution is needed.
  index = (hop_length * np.arange(frames)[:, None]
           + np.arange(n_fft)[None, :])
  framed = padded[:, index]                       # [B, T, n_fft]
  window = jnp.asarray(stft_window(win_length, n_fft))
  spectrum = jnp.fft.rfft(framed * window, n=n_fft, axis=-1)
  power = jnp.real(spectrum) ** 2 + jnp.imag(spectrum) ** 2
  filters = jnp.asarray(mel_filterbank(sample_rate, n_fft, n_mels,
                                       float(fmin),
                                       None if fmax is None else float(fmax)))
  mel_power = jnp.einsum("btf,fm->btm", power, filters,
                         precision="highest")
  return jnp.log(mel_power + log_offset)
