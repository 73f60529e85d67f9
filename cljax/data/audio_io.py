"""Reading one audio file of a user's corpus, checked, at the stream's rate.

Every corpus builder (``cljax.data.builders``) decodes its files through
``decode_audio`` so that a bad file fails the same way everywhere: with an
``AudioFileError`` naming the file, what is wrong with it and the fix, raised
while the corpus is prepared, i.e. before anything trains.

What is checked:

* the file opens and decodes (wav, flac and the other formats libsndfile
  reads, via ``soundfile``); a FLAC stream that loses sync and a WAV whose
  ``data`` chunk declares more frames than the file holds (a truncated copy,
  which libsndfile would otherwise read silently as a shorter clip) both
  count as corrupt;
* it holds at least one sample, all finite;
* mono, or several channels mixed down (``channels="mix"``) or refused
  (``channels="error"``, the default: a stereo file in a mono corpus is
  usually a mistake worth knowing about);
* its sample rate equals the stream's, or it is resampled with ``soxr``
  (``resample="warn"``, the default; the builders report how many files were
  resampled) or refused (``resample="refuse"``).

Samples come back as int16 PCM (``x * 32768`` rounded and clipped, so a
16-bit file round-trips exactly) or float32 in ``[-1, 1)``.

Example::

  audio = read_audio("LA_T_1138215.flac", sample_rate=16000)  # int16 [N]
"""

from __future__ import annotations

import dataclasses
import os
import struct
import warnings

import numpy as np
import soundfile

RESAMPLE_MODES = ("warn", "refuse")
CHANNEL_MODES = ("error", "mix")
DTYPES = ("int16", "float32")

_FIX = ("Re-encode it (e.g. `ffmpeg -i FILE -ac 1 -ar RATE -c:a flac "
        "FIXED.flac`), remove it from the corpus's protocol/folder, or set "
        "config.data.stream.on_bad_file='skip' to leave such files out "
        "(they are then reported).")


class AudioFileError(ValueError):
  """An audio file cannot be used; the message names it and the fix."""

  def __init__(self, path: str, problem: str, fix: str = _FIX):
    self.path = str(path)
    self.problem = problem
    self.fix = fix
    super().__init__(f"{path}: {problem}. {fix}")


class AudioResampledWarning(UserWarning):
  """A file was resampled to the stream's sample rate."""


@dataclasses.dataclass(frozen=True)
class DecodedAudio:
  """A decoded clip and what was done to it."""

  samples: np.ndarray       # [num_samples] int16 or float32
  source_rate: int          # the file's own sample rate
  source_channels: int      # channels before any mix-down


def check_option(value: str, choices: tuple[str, ...], field: str) -> str:
  """``value`` if it is one of ``choices``; else ValueError naming ``field``."""
  if value not in choices:
    raise ValueError(f"config.data.stream.{field}={value!r} is unknown; use "
                     f"one of {list(choices)}.")
  return value


def _wav_declared_frames(path: str) -> int | None:
  """Frames a RIFF/WAVE header's ``data`` chunk declares, or None.

  None when the file is not a plain RIFF/WAVE file or the size field holds a
  streaming placeholder (0 or 0xFFFFFFFF), where no claim can be checked.
  """
  with open(path, "rb") as f:
    header = f.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
      return None
    block_align = None
    while True:
      chunk = f.read(8)
      if len(chunk) < 8:
        return None
      chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
      if chunk_id == b"fmt ":
        fmt = f.read(size)
        if len(fmt) < 14:
          return None
        block_align = struct.unpack("<H", fmt[12:14])[0]
        if size % 2:
          f.seek(1, os.SEEK_CUR)
      elif chunk_id == b"data":
        if not block_align or size in (0, 0xFFFFFFFF):
          return None
        return size // block_align
      else:
        f.seek(size + size % 2, os.SEEK_CUR)


def decode_audio(path: str, *, sample_rate: int, resample: str = "warn",
                 channels: str = "error",
                 dtype: str = "int16") -> DecodedAudio:
  """Decodes ``path`` to mono ``dtype`` samples at ``sample_rate``.

  Unlike ``read_audio`` this does not warn about resampling; the caller
  (a corpus builder) counts the resampled files and reports them once.

  Args:
    path: an audio file libsndfile reads (wav, flac, ogg, ...).
    sample_rate: the stream's rate in Hz.
    resample: ``"warn"``: resample a file at another rate with soxr (high
      quality); ``"refuse"``: raise ``AudioFileError`` instead.
    channels: ``"error"``: raise on a multi-channel file; ``"mix"``: average
      the channels.
    dtype: ``"int16"`` or ``"float32"``.

  Returns:
    ``DecodedAudio`` with ``samples`` of shape ``[num_samples]``.

  Raises:
    AudioFileError: missing, unreadable, corrupt, truncated, empty,
      non-finite, multi-channel (per ``channels``) or at another rate (per
      ``resample``); the message names the file and the fix.
  """
  check_option(resample, RESAMPLE_MODES, "resample")
  check_option(channels, CHANNEL_MODES, "channels")
  check_option(dtype, DTYPES, "dtype")
  path = str(path)
  if not os.path.isfile(path):
    raise AudioFileError(path, "file not found",
                         "Check the corpus path (config.data.stream."
                         "manual_dir) and that the copy is complete.")
  try:
    info = soundfile.info(path)
    data, file_rate = soundfile.read(path, dtype="float32", always_2d=True)
  except (soundfile.SoundFileError, RuntimeError, EOFError) as error:
    raise AudioFileError(path, f"unreadable or corrupt audio ({error})"
                         ) from error
  # libsndfile reads a truncated WAV as a shorter clip without complaint;
  # the header still says how long it should be.
  declared = _wav_declared_frames(path)
  if declared is not None and declared > len(data):
    raise AudioFileError(
        path, f"truncated: the WAV header declares {declared} frames but the "
        f"file holds {len(data)}")
  if info.frames > 0 and len(data) < info.frames:
    raise AudioFileError(path, f"truncated: {len(data)} of {info.frames} "
                         "frames decode")
  if data.size == 0:
    raise AudioFileError(path, "no audio samples (empty file)")
  if not np.all(np.isfinite(data)):
    raise AudioFileError(path, "non-finite (NaN/inf) samples")
  num_channels = data.shape[1]
  if num_channels > 1:
    if channels == "error":
      raise AudioFileError(
          path, f"{num_channels} channels, expected mono",
          "Mix it down (`ffmpeg -i FILE -ac 1 FIXED.flac`) or set "
          "config.data.stream.channels='mix' to average the channels.")
    data = data.mean(axis=1, keepdims=True)
  mono = data[:, 0]
  if file_rate != sample_rate:
    if resample == "refuse":
      raise AudioFileError(
          path, f"sample rate {file_rate} Hz, the stream's is {sample_rate} "
          "Hz", f"Resample the corpus to {sample_rate} Hz (`ffmpeg -i FILE "
          f"-ar {sample_rate} FIXED.flac`) or set config.data.stream."
          "resample='warn' to resample while building.")
    import soxr  # pylint: disable=g-import-not-at-top  (librosa's resampler)
    mono = soxr.resample(mono, file_rate, sample_rate, quality="HQ")
    mono = np.asarray(mono, np.float32)
    if mono.size == 0:
      raise AudioFileError(path, f"too short to resample from {file_rate} Hz")
  if dtype == "int16":
    samples = np.clip(np.round(mono.astype(np.float64) * 32768.0),
                      -32768, 32767).astype(np.int16)
  else:
    samples = np.ascontiguousarray(mono, np.float32)
  return DecodedAudio(samples=samples, source_rate=int(file_rate),
                      source_channels=int(num_channels))


def read_audio(path: str, *, sample_rate: int, resample: str = "warn",
               channels: str = "error", dtype: str = "int16") -> np.ndarray:
  """``decode_audio(...).samples``, warning when the file was resampled.

  Args and Raises: as ``decode_audio``.

  Returns:
    ``[num_samples]`` int16 (default) or float32 samples at ``sample_rate``.
  """
  decoded = decode_audio(path, sample_rate=sample_rate, resample=resample,
                         channels=channels, dtype=dtype)
  if decoded.source_rate != sample_rate:
    warnings.warn(AudioResampledWarning(
        f"{path}: resampled from {decoded.source_rate} Hz to {sample_rate} "
        "Hz (config.data.stream.resample='refuse' makes this an error)."),
        stacklevel=2)
  return decoded.samples
