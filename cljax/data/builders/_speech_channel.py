r"""The shared channel: every take, genuine or fake, is processed alike.

A detector should find the *generator's* traces, not a difference in how
the files were produced (level, DC, band limits, digital silence, length,
leading silence, clipping). Every take goes through ``process``:

1. resample to 16 kHz (polyphase, ``scipy.signal.resample_poly``);
2. high-pass, 4th-order Butterworth at 70 Hz, zero phase (removes DC and
   rumble that differ between a studio take and a TTS engine), then the
   elliptic band-pass of step 11, so that the dynamics below act on what
   the clip will hold;
3. trim leading/trailing silence (20-ms frames more than 40 dB below the
   loudest frame);
4. gate (``gate``): frames more than 40 dB below the loudest are muted and
   the muted stretches are cut out — a studio take's pauses hold room
   noise, a TTS engine's are digital silence, TTS takes pause longer and
   decay slowly at their end, and re-synthesised takes have weaker frames
   between words (builder 1.3.0's noise floor and trailing-silence cues,
   42-44 % EER on four TTS families; 1.4.0 kept pauses of up to 100 ms,
   and how many frames fell under the gate still told LPC and festival
   takes from genuine at 43.5-45 %);
5. compress and level (``compress``): each frame's level ``L`` dB re the
   take's RMS becomes ``max(L / 2, -12)`` — engines have a wider dynamic
   range than a studio take, which showed in a crop's quietest frames;
6. RMS-normalise to -20 dBFS;
7. time-stretch (phase vocoder, ``librosa.effects.time_stretch``) to
   ``target_length * tempo`` where ``target_length`` is the *genuine* take's
   length after steps 1-6 and ``tempo ~ U[0.9, 1.1]`` is drawn for every
   take of every class, so genuine takes are stretched too and duration and
   phase-vocoder traces carry no label;
8. speed change by ``U[0.9, 1.1]`` (resampling: pitch and tempo together);
9. a soft limiter ``y = c \tanh(x / c)`` at a random ceiling -16..-9 dBFS,
   then the leveller of step 5 again — the nonlinearities, placed *before*
   the final filters so that their harmonics are band-limited like
   everything else; the limiter squashes a peaky take's loud frames more,
   which moved its quietest frames against its RMS (with the pauses cut
   out, flite slt's 10th-percentile frame was 1 dB below genuine's and
   gradient boosting gave 44 %), so the frame levels are evened out after
   it;
10. random placement in a fixed-length clip (``clip_length`` samples): a
    random window of a longer take, or a shorter take at a random offset,
    so that length and leading/trailing silence say nothing; then a
    brown-ish "room tone" 30-42 dB below the speech RMS over the whole
    clip, so that no pause is digital silence;
11. steep elliptic band-pass 100 Hz - 6.5 kHz (order 6 per edge, 0.1 dB
    ripple, 70 dB stop band, zero phase);
12. one G.722 (64 kbit/s) encode/decode pass;
13. the elliptic band-pass again (G.722 adds signal-dependent quantisation
    noise below 100 Hz and above 6.5 kHz; with only a low-pass here its
    share below 60 Hz, paired with the level above 7 kHz, told espeak-ng
    from genuine at 33 % EER);
14. RMS-normalise to -20 dBFS again: what the filters removed would
    otherwise show in the level of the speech against the noise floor;
15. a full-band white noise floor at -60..-44 dBFS, added *after* the
    filters: TTS engines produce exact digital silence, genuine recordings
    never do, so without it "exact zeros" or "nothing above 7 kHz" would
    give the answer;
16. random gain -6..+6 dB;
17. TPDF dither and rounding to int16.

Everything random comes from the ``rng`` the caller seeds per (family,
prompt), so the build is deterministic.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.signal

SR = 16000
BAND = (100.0, 6500.0)
GATE_DB = 40.0
MAX_PAUSE = 0  # Muted stretches are cut out whole.
COMPRESSION_RATIO = 2.0
LEVEL_FLOOR_DB = -12.0


@functools.lru_cache(maxsize=None)
def _filters() -> dict[str, np.ndarray]:
  return {
      "highpass": scipy.signal.butter(4, 70.0, "highpass", fs=SR,
                                      output="sos"),
      "bandpass": scipy.signal.ellip(6, 0.1, 70.0, BAND, "bandpass", fs=SR,
                                     output="sos"),
      "lowpass": scipy.signal.ellip(6, 0.1, 70.0, BAND[1], "lowpass", fs=SR,
                                    output="sos"),
  }


def resample(x: np.ndarray, sr: int, target_sr: int = SR) -> np.ndarray:
  """Polyphase resampling from ``sr`` to ``target_sr``."""
  if sr == target_sr:
    return np.asarray(x, np.float64)
  g = np.gcd(int(sr), int(target_sr))
  return scipy.signal.resample_poly(np.asarray(x, np.float64),
                                    target_sr // g, sr // g)


def highpass(x: np.ndarray) -> np.ndarray:
  return scipy.signal.sosfiltfilt(_filters()["highpass"], x)


def bandpass(x: np.ndarray) -> np.ndarray:
  return scipy.signal.sosfiltfilt(_filters()["bandpass"], x)


def lowpass(x: np.ndarray) -> np.ndarray:
  return scipy.signal.sosfiltfilt(_filters()["lowpass"], x)


def trim(x: np.ndarray, top_db: float = 40.0, frame: int = 320) -> np.ndarray:
  """``x`` without leading/trailing frames ``top_db`` below the loudest."""
  n = len(x) // frame
  if n == 0:
    return x
  energy = np.mean(x[:n * frame].reshape(n, frame) ** 2, axis=1)
  loud = np.flatnonzero(energy > energy.max() * 10 ** (-top_db / 10))
  return x[loud[0] * frame:(loud[-1] + 1) * frame]


def rms_normalise(x: np.ndarray, dbfs: float = -20.0) -> np.ndarray:
  """``x`` scaled to an RMS of ``dbfs`` dB re full scale (1.0)."""
  rms = np.sqrt(np.mean(x ** 2))
  if rms == 0:
    return x
  return x * (10 ** (dbfs / 20) / rms)


def stretch_to(x: np.ndarray, length: int) -> np.ndarray:
  """``x`` time-stretched (pitch kept) to exactly ``length`` samples."""
  import librosa  # pylint: disable=g-import-not-at-top
  rate = len(x) / max(length, 1)
  y = librosa.effects.time_stretch(np.asarray(x, np.float32), rate=rate,
                                   n_fft=512, hop_length=128)
  return librosa.util.fix_length(y, size=length).astype(np.float64)


def change_speed(x: np.ndarray, factor: float) -> np.ndarray:
  """Plays ``x`` ``factor`` times faster (pitch moves with it)."""
  return scipy.signal.resample(x, max(1, int(round(len(x) / factor))))


def _frame_power(x: np.ndarray, frame: int, hop: int) -> np.ndarray | None:
  """Mean power of each ``frame``-sample frame at ``hop``; None under two."""
  n = 1 + max(0, len(x) - frame) // hop
  if n < 2:
    return None
  frames = np.lib.stride_tricks.sliding_window_view(x, frame)[::hop][:n]
  return np.mean(frames ** 2, axis=1)


def _per_sample(values: np.ndarray, length: int, frame: int, hop: int
                ) -> np.ndarray:
  """Per-frame ``values`` interpolated between frame centres to each sample."""
  centres = np.arange(len(values)) * hop + frame // 2
  return np.interp(np.arange(length), centres, values)


def gate(x: np.ndarray, top_db: float = GATE_DB,
         max_pause: int = MAX_PAUSE, frame: int = 320,
         hop: int = 160) -> np.ndarray:
  """``x`` with its pauses muted and shortened to at most ``max_pause``.

  A noise gate relative to the loudest frame: frames (20 ms, 10-ms hop)
  more than ``top_db`` below it get gain 0, the others gain 1, interpolated
  between frame centres (10-ms ramps, no clicks). Then every run of muted
  samples longer than ``max_pause`` loses its middle; with the default
  ``max_pause=0`` every muted run is cut out and the ramps meet.

  Why: a studio take's pauses hold its room's noise, a TTS engine's are
  digital silence, and a TTS take decays slowly at its end and pauses longer
  and more often (at every comma); the noise floor and the silence fraction
  of a crop told the TTS families from genuine speech (out-of-fold EER
  41-44 %). Capping pauses at 100 ms (builder 1.4.0) was not enough: how
  many pauses a take had still showed in a crop's silence fraction, trailing
  silence and quietest frames (gradient boosting 43.5-45 % on LPC and
  festival). With the pauses cut out, a clip's silence comes from its
  random placement, the same for every class, and from the gain ramps each
  cut leaves (a few tens of ms, ``test_gate_cuts_out_quiet_frames``).
  """
  energy = _frame_power(x, frame, hop)
  if energy is None or energy.max() <= 0:
    return x
  keep = (energy > energy.max() * 10 ** (-top_db / 10)).astype(np.float64)
  gain = _per_sample(keep, len(x), frame, hop)
  muted = gain == 0.0
  # Runs of muted samples: starts where muted begins, ends where it stops.
  edges = np.diff(np.concatenate([[0], muted.astype(np.int8), [0]]))
  starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
  drop = np.zeros(len(x), bool)
  for start, end in zip(starts, ends):
    if end - start > max_pause:  # Keep max_pause / 2 at either end.
      drop[start + max_pause // 2:end - (max_pause - max_pause // 2)] = True
  return (x * gain)[~drop]


def compress(x: np.ndarray, ratio: float = COMPRESSION_RATIO,
             floor_db: float = LEVEL_FLOOR_DB, frame: int = 320,
             hop: int = 160, max_gain_db: float = 30.0) -> np.ndarray:
  """A broadcast-style compressor and leveller of the frame levels.

  Each 20-ms frame's level ``L`` (dB re the take's RMS, interpolated
  between frame centres) is mapped to ``max(L / ratio, floor_db)``: loud
  frames down, quiet frames up, and no sounding frame below ``floor_db``
  (muted pauses stay muted: at most ``max_gain_db`` of boost, times zero).
  Engines differ from a studio take in dynamic range (weaker consonants,
  deeper dips); levelled alike, the quietest frames of a crop (its "noise
  floor" against its level) no longer gave the label.
  """
  power = _frame_power(x, frame, hop)
  rms = np.sqrt(np.mean(x ** 2))
  if power is None or rms == 0:
    return x
  level_db = 10 * np.log10(power / rms ** 2 + 1e-12)
  gain_db = np.minimum(np.maximum(level_db / ratio, floor_db) - level_db,
                       max_gain_db)
  return x * 10 ** (_per_sample(gain_db, len(x), frame, hop) / 20)


def limiter(x: np.ndarray, ceiling: float) -> np.ndarray:
  return ceiling * np.tanh(x / ceiling)


def place(x: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
  """A random ``length``-sample window of ``x``, or ``x`` at a random offset."""
  if len(x) >= length:
    start = int(rng.integers(0, len(x) - length + 1))
    return x[start:start + length]
  out = np.zeros(length)
  start = int(rng.integers(0, length - len(x) + 1))
  out[start:start + len(x)] = x
  return out


def room_tone(length: int, rms: float, rng: np.random.Generator
              ) -> np.ndarray:
  """Brown-ish noise (white through a one-pole low-pass) of RMS ``rms``."""
  noise = scipy.signal.lfilter([1.0], [1.0, -0.95],
                               rng.standard_normal(length))
  return noise * (rms / (np.sqrt(np.mean(noise ** 2)) + 1e-12))


def g722_pass(x: np.ndarray) -> np.ndarray:
  """One G.722 64 kbit/s encode/decode (fresh codec state each way)."""
  import G722  # pylint: disable=g-import-not-at-top
  pcm = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)
  bits = G722.G722(SR, 64000).encode(pcm)
  y = np.asarray(G722.G722(SR, 64000).decode(bits), np.int16)
  y = y.astype(np.float64) / 32768.0
  return np.pad(y, (0, max(0, len(x) - len(y))))[:len(x)]


def to_int16(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """TPDF-dithered rounding to int16."""
  dither = rng.uniform(-0.5, 0.5, len(x)) + rng.uniform(-0.5, 0.5, len(x))
  return np.clip(np.round(x * 32768 + dither), -32768, 32767).astype(np.int16)


def prepare(audio: np.ndarray, sr: int) -> np.ndarray:
  """Steps 1-6: 16 kHz, band-limited, trimmed, gated, levelled, -20 dBFS."""
  return rms_normalise(compress(gate(trim(bandpass(highpass(
      resample(audio, sr)))))))


def process(audio: np.ndarray, sr: int, *, target_length: int,
            clip_length: int, rng: np.random.Generator) -> np.ndarray:
  """The whole channel (steps 1-17) for one take.

  Args:
    audio: the take, float in [-1, 1].
    sr: its sample rate.
    target_length: the genuine take's length after ``prepare`` (samples at
      16 kHz); every take of the prompt is stretched to it (times its tempo
      jitter).
    clip_length: samples of the stored clip.
    rng: per-take generator (seeded from the family and prompt).

  Returns:
    ``clip_length`` int16 samples at 16 kHz.
  """
  x = prepare(audio, sr)
  x = stretch_to(x, int(round(target_length * rng.uniform(0.9, 1.1))))
  x = change_speed(x, rng.uniform(0.9, 1.1))
  x = rms_normalise(x, -20.0)
  # A ceiling 4-10 dB above the RMS evens out the engines' peakiness (crest
  # factor alone gave 42 % EER on flite slt with a 8-12 dB ceiling).
  x = limiter(x, 10 ** (rng.uniform(-16.0, -9.0) / 20))
  x = compress(x)
  x = place(x, clip_length, rng)
  x = x + room_tone(len(x), 10 ** (rng.uniform(-62.0, -50.0) / 20), rng)
  x = bandpass(g722_pass(bandpass(x)))
  # Level again after the filters: what they removed (an engine's energy
  # below 100 Hz or above 6.5 kHz) would otherwise show in the level of the
  # noise floor against the speech.
  x = rms_normalise(x, -20.0)
  x = x + rng.standard_normal(len(x)) * 10 ** (rng.uniform(-60.0, -44.0) / 20)
  x = x * 10 ** (rng.uniform(-6.0, 6.0) / 20)
  return to_int16(x, rng)
