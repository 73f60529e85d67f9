"""A procedural audio deepfake stream for tests, smoke runs and fallbacks.

``synthetic_audio_stream`` returns a ``Stream`` whose records are synthesised
lazily and deterministically from ``(seed, task, split, index)``: nothing is
stored, any record can be read in any order, and two processes (e.g. grain
workers) agree on every sample.

Genuine (label 0) audio is a crude source-filter "speech" signal: a sawtooth
glottal source with a wandering f0 (100-250 Hz), passed through formant
resonators (two random vowels, blended differently in each syllable), shaped
by a 3-6 Hz syllable envelope with pauses, plus fricative bursts, aspiration
and coloured background noise. Fake (label 1)
audio is the *same* process plus one task-specific generator artefact:

========  ==============  ==================================================
cycle     artefact        what a log-mel front end sees
========  ==============  ==================================================
task 0    ``band_noise``  a stationary noise floor in a narrow band
task 1    ``tones``       steady tones (upsampling "checkerboard" partials)
task 2    ``clicks``      sparse broadband clicks (frame-boundary glitches)
task 3    ``band_gap``    a band notched out down to the background noise
========  ==============  ==================================================

Tasks beyond the fourth reuse the kinds with their frequencies moved down
13 % per cycle, so every task's fakes differ (though a later cycle's band may
partly overlap an earlier task's, which then transfers a little). The
artefact strength is drawn per utterance over a 20-30 dB range reaching down
to barely detectable, so a detector trained on a task reaches a low but
non-zero EER, while a detector trained on one task's cue misses the others'
fakes: fine-tuning through the stream forgets.

Level, DC, length and peak carry no label information: both classes share the
length distribution, are made zero-mean and normalised to the same random
RMS level after the artefact is added, and clicks are capped below the
speech peak.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Mapping

import numpy as np
import scipy.signal

from cljax.data.stream import Stream, Task

CLASS_NAMES = ("bonafide", "spoof")
ARTEFACT_KINDS = ("band_noise", "tones", "clicks", "band_gap")

# Per-utterance artefact level range in dB at the default difficulty 0.5
# (see ``_artefact_level_db``). Tuned so that the default CNN1D on log-mel,
# trained 200 steps on one task's 128 training utterances, reaches a test EER
# of about 5-15 % on that task and about 50 % on the other three.
_LEVEL_RANGE_DB = {
    # Noise / tone power and click amplitude relative to the speech RMS.
    "band_noise": (-26.0, -2.0),
    "tones": (-32.0, -8.0),
    "clicks": (-10.0, 10.0),
    # Depth of the notch.
    "band_gap": (10.0, 40.0),
}


@dataclasses.dataclass(frozen=True)
class Artefact:
  """One task's generator artefact (picklable, so grain workers can use it)."""

  kind: str
  # band_noise / band_gap: (low, high) Hz; tones: the tone frequencies in Hz;
  # clicks: empty.
  frequencies: tuple[float, ...]
  # clicks only: mean clicks per second.
  rate: float = 0.0

  def describe(self) -> dict[str, Any]:
    out: dict[str, Any] = {"artefact": self.kind}
    if self.kind in ("band_noise", "band_gap"):
      out["band_hz"] = tuple(self.frequencies)
    elif self.kind == "tones":
      out["tone_hz"] = tuple(self.frequencies)
    else:
      out["clicks_per_second"] = self.rate
    return out


def task_artefact(task: int, sample_rate: int) -> Artefact:
  """The artefact of task ``task``: kind cycles, frequencies move per cycle."""
  kind = ARTEFACT_KINDS[task % len(ARTEFACT_KINDS)]
  cycle = task // len(ARTEFACT_KINDS)
  nyquist = sample_rate / 2
  # Later cycles move every frequency down 13 % per cycle (wrapping after
  # five cycles) so that each task's artefact sits in its own mel bands.
  scale = 1.0 - 0.13 * (cycle % 5)
  if kind == "band_noise":
    low, high = 0.60 * nyquist * scale, 0.725 * nyquist * scale
    return Artefact(kind, (low, high))
  if kind == "tones":
    return Artefact(kind, (0.80 * nyquist * scale, 0.90 * nyquist * scale))
  if kind == "clicks":
    return Artefact(kind, (), rate=30.0 + 15.0 * cycle)
  low, high = 0.325 * nyquist * scale, 0.425 * nyquist * scale
  return Artefact(kind, (low, high))


def _artefact_level_db(kind: str, difficulty: float, u: float) -> float:
  """Per-utterance level: uniform in the kind's range, lowered by difficulty.

  The ranges hold at the default ``difficulty=0.5``; each step of 0.1 moves
  the range by 2 dB (down = harder). For ``band_gap`` the level is the depth
  of the notch, so harder means shallower too.
  """
  low, high = _LEVEL_RANGE_DB[kind]
  return low + (high - low) * u - 20.0 * (difficulty - 0.5)


_CONTROL_HOP = 16  # samples per control-rate step (1 ms at 16 kHz)


def _rms(x: np.ndarray) -> float:
  return float(np.sqrt(np.dot(x, x) / len(x))) + 1e-12


def _resonator_sos(freq: np.ndarray, bandwidth: np.ndarray,
                   sample_rate: int) -> np.ndarray:
  r"""Klatt two-pole resonators with unit DC gain as second-order sections.

  :math:`H(z) = \frac{1 - B - C}{1 - B z^{-1} - C z^{-2}}` with
  :math:`C = -r^2`, :math:`B = 2 r \cos(2\pi f / f_s)`,
  :math:`r = e^{-\pi b / f_s}`.
  """
  r = np.exp(-np.pi * bandwidth / sample_rate)
  b_coef = 2 * r * np.cos(2 * np.pi * freq / sample_rate)
  c_coef = -r * r
  sos = np.zeros((len(freq), 6), np.float32)
  sos[:, 0] = 1 - b_coef - c_coef
  sos[:, 3] = 1.0
  sos[:, 4] = -b_coef
  sos[:, 5] = -c_coef
  return sos


class SyntheticSource:
  """One split of one synthetic task: a deterministic random-access source.

  ``source[i]`` is ``{"audio": int16 (num_samples,), "label": i % 2,
  "utt_id": f"{task}-{split}-{i:05d}"}``; classes alternate, so every split
  is balanced.
  """

  def __init__(self, *, task: int, split: str, per_class: int, seconds: float,
               sample_rate: int, artefact: Artefact, difficulty: float,
               seed: int):
    self.task = task
    self.split = split
    self.per_class = per_class
    self.seconds = seconds
    self.sample_rate = sample_rate
    self.artefact = artefact
    self.difficulty = difficulty
    self.seed = seed
    self._split_key = zlib.crc32(split.encode())
    # Records are a pure function of the index, and a split is a few MB of
    # int16: keep each one after it is first made, so later epochs (and the
    # evaluations after every task) cost nothing to generate.
    self._cache: dict[int, dict[str, Any]] = {}
    nyquist = sample_rate / 2
    self._band_sos = None
    if artefact.kind == "band_noise":
      self._band_sos = scipy.signal.butter(
          4, [f / nyquist for f in artefact.frequencies], btype="bandpass",
          output="sos").astype(np.float32)
    elif artefact.kind == "band_gap":
      self._band_sos = scipy.signal.butter(
          3, [f / nyquist for f in artefact.frequencies], btype="bandstop",
          output="sos").astype(np.float32)

  def __len__(self) -> int:
    return 2 * self.per_class

  def __repr__(self) -> str:
    return (f"SyntheticSource(task={self.task}, split={self.split!r}, "
            f"len={len(self)}, artefact={self.artefact.kind})")

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = int(index)
    if not -len(self) <= index < len(self):
      raise IndexError(f"index {index} out of range for {self!r}")
    index %= len(self)
    if index not in self._cache:
      self._cache[index] = self._make_record(index)
    return self._cache[index]

  def _make_record(self, index: int) -> dict[str, Any]:
    label = index % 2
    rng = np.random.default_rng(
        (self.seed, self.task, self._split_key, index))
    audio = self._synthesise(rng, fake=bool(label))
    audio.setflags(write=False)  # Cached and shared: nobody may edit it.
    return {"audio": audio, "label": label,
            "utt_id": f"{self.task}-{self.split}-{index:05d}"}

  def _synthesise(self, rng: np.random.Generator, fake: bool) -> np.ndarray:
    sr = self.sample_rate
    n = int(round(self.seconds * sr * rng.uniform(0.8, 1.2)))
    # Slow controls (f0, envelopes) are computed once per millisecond-ish
    # block and held: one record must cost well under a millisecond.
    hop = _CONTROL_HOP
    m = -(-n // hop)
    t_control = np.arange(m) * (hop / sr)
    duration = n / sr

    # Glottal source: sawtooth at a wandering, slowly declining f0.
    f0_base = rng.uniform(100.0, 250.0)
    rates = rng.uniform([0.5, 2.0], [2.0, 5.0])
    phases = rng.uniform(0, 2 * np.pi, size=2)
    f0 = f0_base * (
        1 + 0.10 * np.sin(2 * np.pi * rates[0] * t_control + phases[0])
        + 0.04 * np.sin(2 * np.pi * rates[1] * t_control + phases[1])
        - 0.08 * t_control / duration)
    step = f0 / sr
    start = rng.uniform() + np.concatenate([[0.0], np.cumsum(step * hop)[:-1]])
    cycles = (start[:, None] + step[:, None] * np.arange(hop)).ravel()[:n]
    source = (2.0 * (cycles - np.floor(cycles)) - 1.0).astype(np.float32)

    # Syllables at 3-6 Hz: a voiced nucleus, sometimes a fricative onset,
    # sometimes a pause; each syllable blends two vowel filters its own way.
    position = t_control * rng.uniform(3.0, 6.0) + rng.uniform()
    syllable = position.astype(np.int64)
    fraction = position - syllable
    count = int(syllable[-1]) + 1
    voiced_amp = rng.uniform(0.3, 1.0, count)
    voiced_amp[rng.uniform(size=count) < 0.15] = 0.0
    fric_amp = rng.uniform(0.05, 0.4, count)
    fric_amp[rng.uniform(size=count) < 0.5] = 0.0
    vowel_mix = rng.uniform(size=count)
    controls = np.stack([
        voiced_amp[syllable] * np.sin(np.pi * fraction) ** 2,
        fric_amp[syllable] * np.clip(1 - fraction / 0.3, 0, 1) ** 2,
        vowel_mix[syllable]]).astype(np.float32)
    voiced_env, fric_env, mix = np.repeat(controls, hop, axis=1)[:, :n]

    # One white-noise buffer serves every noise below at different circular
    # shifts (mutually uncorrelated): drawing noise dominates the cost.
    noise = (rng.random(n, dtype=np.float32) - 0.5) * np.float32(12 ** 0.5)
    excitation = voiced_env * (source + 0.05 * noise)

    # Vocal tract: two random vowels (four formants each), mixed per syllable.
    formants = rng.uniform([250, 800, 2200, 3300], [850, 2300, 3100, 4300],
                           size=(2, 4))
    bandwidths = rng.uniform([50, 70, 110, 150], [100, 140, 200, 300],
                             size=(2, 4))
    vowel_a = scipy.signal.sosfilt(
        _resonator_sos(formants[0], bandwidths[0], sr), excitation)
    vowel_b = scipy.signal.sosfilt(
        _resonator_sos(formants[1], bandwidths[1], sr), excitation)
    voiced = mix * vowel_a + (1 - mix) * vowel_b
    voiced_rms = _rms(voiced)

    # Fricatives: differenced (high-tilted) noise, tilt random per utterance.
    shifted = np.roll(noise, n // 3)
    fricative = shifted - rng.uniform(0.3, 1.0) * np.roll(shifted, 1)
    speech = voiced + fric_env * fricative * (voiced_rms / _rms(fricative))
    speech_rms = _rms(speech)

    if fake:
      speech = self._add_artefact(rng, speech, speech_rms, noise)

    # Background: two-tap low-passed noise 15-40 dB below the speech.
    shifted = np.roll(noise, 2 * n // 3)
    background = shifted + rng.uniform(0.0, 1.0) * np.roll(shifted, 1)
    background *= (speech_rms / _rms(background)
                   * 10 ** (-rng.uniform(15.0, 40.0) / 20))
    mixture = speech + background

    # Same level distribution for both classes: -32 to -22 dBFS RMS.
    mixture -= np.mean(mixture)
    mixture *= 10 ** (rng.uniform(-32.0, -22.0) / 20) / _rms(mixture)
    return np.clip(np.round(mixture * 32768.0), -32768, 32767).astype(np.int16)

  def _add_artefact(self, rng: np.random.Generator, speech: np.ndarray,
                    speech_rms: float, noise: np.ndarray) -> np.ndarray:
    artefact = self.artefact
    level_db = _artefact_level_db(artefact.kind, self.difficulty,
                                  rng.uniform())
    n = len(speech)
    if artefact.kind == "band_gap":
      # Notch the band: mix in the band-stopped signal, depth = level_db.
      keep = 10 ** (-max(level_db, 0.0) / 20)
      stopped = scipy.signal.sosfilt(self._band_sos, speech)
      return keep * speech + (1 - keep) * stopped
    gain = speech_rms * 10 ** (level_db / 20)
    if artefact.kind == "band_noise":
      # A shift no other use of the buffer takes (0, n/3, 2n/3).
      band = scipy.signal.sosfilt(self._band_sos, np.roll(noise, n // 6))
      return speech + band * (gain / _rms(band))
    if artefact.kind == "tones":
      t = np.arange(n, dtype=np.float32) / np.float32(self.sample_rate)
      tones = sum(np.sin(np.float32(2 * np.pi * f) * t
                         + np.float32(rng.uniform(0, 2 * np.pi)))
                  for f in artefact.frequencies)
      return speech + tones * (gain / _rms(tones))
    # Clicks: Poisson-timed two-sample doublets (+a, -a), i.e. broadband
    # but high-tilted glitches. Capped at half the speech peak, so the
    # waveform peak does not give fakes away.
    count = rng.poisson(artefact.rate * n / self.sample_rate)
    amplitude = min(gain, 0.5 * float(np.max(np.abs(speech))))
    where = rng.integers(0, n - 1, size=count)
    sign = amplitude * rng.choice([-1.0, 1.0], size=count)
    out = speech.copy()
    out[where] += sign
    out[where + 1] -= sign
    return out


def synthetic_audio_stream(num_tasks: int = 4, train_per_class: int = 64,
                           test_per_class: int = 32, val_per_class: int = 16,
                           seconds: float = 1.0, sample_rate: int = 16000,
                           difficulty: float = 0.5, seed: int = 0) -> Stream:
  """A stream of ``num_tasks`` synthetic deepfake detection tasks.

  Args:
    num_tasks: tasks in the stream; artefact kinds cycle every four tasks
      with moved frequencies.
    train_per_class: records per class in each task's ``train`` split.
    test_per_class: records per class in ``test``.
    val_per_class: records per class in ``val``; 0 omits the split.
    seconds: mean utterance length; each is 0.8-1.2 times this.
    sample_rate: Hz.
    difficulty: in [0, 1]; moves every artefact's level range down by
      2 dB per 0.1 above the default 0.5 (up below it), so EERs rise with
      it.
    seed: selects the whole stream; records depend on (seed, task, split,
      index) only.

  Returns:
    ``Stream(name="synthetic", synthetic=True, class_names=("bonafide",
    "spoof"))`` whose tasks are named ``f"synth{t}-{artefact}"`` and carry
    ``metadata={"artefact": ..., <its band/tones/rate>}``.
  """
  if num_tasks < 1:
    raise ValueError(f"config.data.stream.num_tasks={num_tasks}: need at least 1.")
  for field, value in (("train_per_class", train_per_class),
                       ("test_per_class", test_per_class)):
    if value < 1:
      raise ValueError(f"config.data.stream.{field}={value}: need at least 1.")
  if val_per_class < 0:
    raise ValueError(f"config.data.stream.val_per_class={val_per_class}: must be "
                     ">= 0 (0 omits the val split).")
  if not 0.0 <= difficulty <= 1.0:
    raise ValueError(f"config.data.stream.difficulty={difficulty}: must be in "
                     "[0, 1].")
  if seconds < 0.05:
    raise ValueError(f"config.data.stream.seconds={seconds}: synthetic utterances "
                     "need at least 0.05 s.")
  if sample_rate < 16000:
    raise ValueError(
        f"config.data.stream.sample_rate={sample_rate}: the synthetic speech has "
        "formants up to 4.3 kHz and artefacts up to 0.9 x Nyquist; use a "
        "sample rate of at least 16000.")
  tasks = []
  for task in range(num_tasks):
    artefact = task_artefact(task, sample_rate)
    sizes = {"train": train_per_class, "val": val_per_class,
             "test": test_per_class}
    splits: dict[str, SyntheticSource] = {}
    for split, per_class in sizes.items():
      if per_class == 0:
        continue
      splits[split] = SyntheticSource(
          task=task, split=split, per_class=per_class, seconds=seconds,
          sample_rate=sample_rate, artefact=artefact, difficulty=difficulty,
          seed=seed)
    metadata: Mapping[str, Any] = {**artefact.describe(), "task_index": task,
                                   "difficulty": difficulty}
    tasks.append(Task(name=f"synth{task}-{artefact.kind}", splits=splits,
                      metadata=metadata))
  return Stream(name="synthetic", tasks=tuple(tasks), class_names=CLASS_NAMES,
                sample_rate=sample_rate, synthetic=True)
