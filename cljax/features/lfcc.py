r"""LFCC computed on device in JAX, as the HM-Conformer official code does.

The HM-Conformer seed (talkingnow/HM-Conformer,
``exp_lib/egg_exp/framework/model/acoustic_feature/_processing.py``) uses a
copy of the NII LFCC (nii-yamagishilab/project-NN-pytorch-scripts,
``sandbox/util_frontend.py``) with ``n_fft=512, win_length=320, hop=160,
filter_num=40, with_energy, with_emphasis, with_delta`` all on. For a
waveform :math:`x` (float, any scale) this module computes, per utterance:

1. pre-emphasis :math:`\tilde x[0] = x[0]`,
   :math:`\tilde x[n] = x[n] - 0.97\,x[n-1]`;
2. ``torch.stft(center=True, pad_mode="constant")``: ``n_fft // 2`` zeros on
   each side, frames every ``hop_length`` samples, a *periodic* Hamming
   window of ``win_length`` samples centred in the ``n_fft`` frame;
   :math:`P_t[k] = |X_t[k]|^2` over the ``n_fft // 2 + 1`` bins;
3. ``n_filters`` triangular filters on a *linear* frequency axis with edges
   ``linspace(0, sr / 2, n_filters + 2)`` (MATLAB ``trimf``, peak 1);
   :math:`F_t[m] = \log_{10}(\sum_k H[k, m] P_t[k] + \epsilon)` with
   :math:`\epsilon` = float32 machine epsilon (1.1920929e-07);
4. orthonormal DCT-II of :math:`F_t` (``scipy.fft.dct(norm="ortho")``),
   keeping the first ``num_coef`` (all 40 by default);
5. ``with_energy``: coefficient 0 replaced by the frame energy
   :math:`\log_{10}(\sum_k P_t[k] / n_{fft} + \epsilon)`;
6. ``with_deltas``: :math:`d[t] = c[t+1] - c[t-1]` with the first and last
   frames replicated (no division by 2), :math:`dd` the same applied to
   :math:`d`; output ``concat([c, d, dd], -1)``.

A 4-s clip at 16 kHz (64000 samples) gives ``[B, 401, 120]``. No mean or
variance normalisation is applied (the official code has none).

Because only the squared magnitude is used, the STFT is computed on the
``win_length`` windowed samples zero-padded to ``n_fft`` at the end instead
of centred: a shift inside the FFT frame changes only the phase, so the power
is identical while the framing gathers 320 rather than 512 samples per frame.

Example::

  frontend = jax.jit(lfcc_frontend(16000))
  features = frontend(audio_int16)        # [B, 401, 120] for 64000 samples
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
import scipy.fft
import scipy.signal

# torch.finfo(torch.float32).eps, the floor the official code adds before
# log10 (REFERENCE.md rounds it to 1.19e-7).
FLOAT32_EPS = float(np.finfo(np.float32).eps)


@functools.lru_cache(maxsize=32)
def linear_filterbank(sample_rate: int, n_fft: int, n_filters: int,
                      min_freq: float = 0.0, max_freq: float = 1.0
                      ) -> np.ndarray:
  """Linear triangular filterbank ``[num_bins, n_filters]``, float32.

  Reproduces the official construction in float32: bin frequencies
  ``f = sr / 2 * linspace(min_freq, max_freq, num_bins)``, band edges
  ``linspace(min(f), max(f), n_filters + 2)``, and filter ``m`` is MATLAB's
  ``trimf(f, [e_m, e_{m+1}, e_{m+2}])``: ``(f - a) / (b - a)`` on ``(a, b)``,
  ``(c - f) / (c - b)`` on ``(b, c)``, exactly 1 at ``f == b``, 0 elsewhere.
  ``num_bins`` is ``n_fft // 2 + 1`` for the full band; a band limited by
  ``min_freq``/``max_freq`` (fractions of Nyquist) keeps the bins
  :func:`band_bins` gives, as the NII code does (the LFCC-LCNN baseline
  uses ``max_freq=0.5``: 0-4 kHz at 16 kHz).
  """
  if n_filters < 1:
    raise ValueError(f"lfcc: n_filters={n_filters} must be >= 1 "
                     "(config.frontend.n_filters).")
  low, high = band_bins(n_fft, min_freq, max_freq)
  freqs = (np.float32(sample_rate / 2)
           * np.linspace(min_freq, max_freq, high - low, dtype=np.float32))
  edges = np.linspace(freqs.min(), freqs.max(), n_filters + 2,
                      dtype=np.float32)
  bank = np.zeros((freqs.size, n_filters), np.float32)
  for m in range(n_filters):
    a, b, c = edges[m], edges[m + 1], edges[m + 2]
    rising = (a < freqs) & (freqs < b)
    bank[rising, m] = (freqs[rising] - a) / (b - a)
    falling = (b < freqs) & (freqs < c)
    bank[falling, m] = (c - freqs[falling]) / (c - b)
    bank[freqs == b, m] = 1.0
  return bank


def band_bins(n_fft: int, min_freq: float = 0.0,
              max_freq: float = 1.0) -> tuple[int, int]:
  """The FFT bins ``[low, high)`` of a band given as fractions of Nyquist.

  As the NII LFCC: ``int(fraction * (n_fft // 2 + 1))`` at both ends.
  """
  if not 0 <= min_freq < max_freq <= 1:
    raise ValueError(
        f"lfcc: min_freq={min_freq}, max_freq={max_freq} must satisfy "
        "0 <= min_freq < max_freq <= 1 (fractions of the Nyquist frequency; "
        "config.frontend.min_freq / max_freq).")
  num_bins = n_fft // 2 + 1
  return int(min_freq * num_bins), int(max_freq * num_bins)


@functools.lru_cache(maxsize=32)
def dct_matrix(n_filters: int, num_coef: int) -> np.ndarray:
  """DCT matrix ``D [N, k]``, ``x @ D = dct(x, norm="ortho")[:k]``.

  ``N = n_filters``, ``k = num_coef``.

  Orthonormal DCT-II: ``D[n, k] = s_k cos(pi k (2n + 1) / (2N))`` with
  ``s_0 = sqrt(1/N)``, ``s_k = sqrt(2/N)``; the official ``LinearDCT``
  layer holds the same matrix.
  """
  full = scipy.fft.dct(np.eye(n_filters), type=2, norm="ortho", axis=-1)
  return np.ascontiguousarray(full[:, :num_coef].astype(np.float32))


@functools.lru_cache(maxsize=32)
def hamming_window(win_length: int, n_fft: int) -> np.ndarray:
  """Periodic Hamming window (``torch.hamming_window(win_length)``), float32.

  ``0.54 - 0.46 cos(2 pi n / win_length)``, i.e. ``np.hamming(win_length +
  1)[:-1]``.
  """
  if not 0 < win_length <= n_fft:
    raise ValueError(
        f"lfcc: win_length={win_length} must be in [1, n_fft={n_fft}]; set "
        "config.frontend.win_length <= config.frontend.n_fft.")
  return scipy.signal.get_window("hamming", win_length,
                                 fftbins=True).astype(np.float32)


def delta(x: jnp.ndarray) -> jnp.ndarray:
  """``d[t] = x[t+1] - x[t-1]`` over axis 1, edges replicated, no division.

  The official ``delta``: replicate-pad one frame each side, then difference;
  so ``d[0] = x[1] - x[0]`` and ``d[T-1] = x[T-1] - x[T-2]``.
  """
  padded = jnp.concatenate([x[:, :1], x, x[:, -1:]], axis=1)
  return padded[:, 2:] - padded[:, :-2]


def lfcc(waveform: jnp.ndarray, *, sample_rate: int = 16000,
         n_fft: int = 512, win_length: int = 320, hop_length: int = 160,
         n_filters: int = 40, num_coef: int | None = None,
         pre_emphasis: float = 0.97, with_energy: bool = True,
         with_deltas: bool = True, min_freq: float = 0.0,
         max_freq: float = 1.0,
         log_floor: float = FLOAT32_EPS) -> jnp.ndarray:
  """LFCC (+ deltas) of a batch of waveforms; see the module docstring.

  Args:
    waveform: ``[B, L]`` float audio (int16 callers divide by 32768 first,
      which ``make_frontend`` does; the official code reads float in [-1, 1)).
    sample_rate: Hz; the filters span 0 .. ``sample_rate / 2``.
    n_fft: FFT size.
    win_length: periodic Hamming window length, ``<= n_fft``.
    hop_length: frame shift in samples.
    n_filters: linear triangular filters (= DCT size).
    num_coef: cepstral coefficients kept; None keeps ``n_filters`` (what the
      official code does: its ``coef`` argument never reaches the LFCC).
    pre_emphasis: coefficient of ``x[n] - a x[n-1]``; 0 disables it.
    with_energy: replace coefficient 0 by the log10 frame energy.
    with_deltas: append deltas and delta-deltas.
    min_freq, max_freq: the band kept, as fractions of Nyquist (NII's
      ``min_freq``/``max_freq``; the energy is that band's too).
    log_floor: added before log10.

  Returns:
    ``[B, 1 + L // hop_length, num_coef * (3 if with_deltas else 1)]``
    float32.
  """
  waveform = jnp.asarray(waveform)
  if waveform.ndim != 2:
    raise ValueError(
        f"lfcc: expected waveform [batch, samples], got shape "
        f"{waveform.shape}. Batch 1-D audio with x[None].")
  num_coef = n_filters if num_coef is None else num_coef
  if not 0 < num_coef <= n_filters:
    raise ValueError(f"lfcc: num_coef={num_coef} must be in [1, n_filters="
                     f"{n_filters}] (config.frontend.num_coef).")
  waveform = waveform.astype(jnp.float32)
  if pre_emphasis:
    waveform = jnp.concatenate(
        [waveform[:, :1], waveform[:, 1:] - pre_emphasis * waveform[:, :-1]],
        axis=1)
  length = waveform.shape[1]
  frames = 1 + length // hop_length
  padded = jnp.pad(waveform, ((0, 0), (n_fft // 2, n_fft // 2)))
  # Only the window's support is gathered (see the module docstring): the
  # window sits at offset (n_fft - win_length) // 2 of each n_fft frame.
  left = (n_fft - win_length) // 2
  index = (left + hop_length * np.arange(frames)[:, None]
           + np.arange(win_length)[None, :])
  framed = padded[:, index] * jnp.asarray(hamming_window(win_length, n_fft))
  spectrum = jnp.fft.rfft(framed, n=n_fft, axis=-1)
  power = jnp.real(spectrum) ** 2 + jnp.imag(spectrum) ** 2  # [B, T, F]
  low, high = band_bins(n_fft, min_freq, max_freq)
  if (low, high) != (0, n_fft // 2 + 1):
    power = power[..., low:high]
  bank = jnp.asarray(linear_filterbank(sample_rate, n_fft, n_filters,
                                       min_freq, max_freq))
  log_fb = jnp.log10(
      jnp.einsum("btf,fm->btm", power, bank, precision="highest")
      + log_floor)
  coefs = jnp.einsum("btm,mk->btk", log_fb,
                     jnp.asarray(dct_matrix(n_filters, num_coef)),
                     precision="highest")
  if with_energy:
    energy = jnp.log10(jnp.sum(power, axis=-1) / n_fft + log_floor)
    coefs = coefs.at[:, :, 0].set(energy)
  if not with_deltas:
    return coefs
  first = delta(coefs)
  return jnp.concatenate([coefs, first, delta(first)], axis=-1)
