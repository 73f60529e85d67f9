"""Offline codec and speed augmentation of training data, cached on disk.

The HM-Conformer recipe (talkingnow/HM-Conformer, ``data_prepare.py``)
passes every training utterance through ffmpeg to a lossy (or lossless)
format and back — ``ffmpeg -i x.flac x.mp3; ffmpeg -i x.mp3 x_from_mp3.flac``
for mp3, m4a, ogg, aac, wma and wav with ffmpeg's default bitrates — and
then makes slow (x0.9) and fast (x1.1) copies of every version with
``scipy.signal.resample(wav, round(len(wav) / factor))`` (tempo *and* pitch
change, like Kaldi-style speed perturbation): 7 x 3 = 21 versions per
utterance.

Here:

* ``codec_round_trip(audio, sample_rate, codec)`` encodes and decodes one
  waveform through an ``ffmpeg`` subprocess (the Debian/Ubuntu package
  ``ffmpeg``, which brings libmp3lame, libvorbis, libopus and the native
  aac/wmav2 encoders). ffmpeg is used rather than a Python codec package
  because it is what the recipe uses (same encoders, same defaults) and
  no maintained pip package covers mp3, aac, vorbis, opus and wma at once.
  The decoded signal is aligned and trimmed or zero-padded to the input
  length: the containers chosen (mp3 with LAME gapless header, mp4 for
  aac, ogg for vorbis/opus) let ffmpeg drop the encoder delay, and the
  shift that remains (wma: 512 samples early at 16 kHz) is measured once
  per codec with a noise probe (``codec_delay``) and undone, so every copy
  lines up with the original sample for sample. In the recipe "aac" (raw
  ADTS) and "m4a" differ only by that delay; here, aligned, they are the
  same bits, and "wav" is an exact copy of int16 input (as flac -> wav ->
  flac is in the recipe): ``RECIPE_CODECS`` keeps the recipe's list for
  faithfulness, ``("mp3", "aac", "ogg", "opus", "wma")`` avoids the
  duplicates.
* ``speed_perturb(audio, factor)`` is the recipe's FFT resampling.
* ``CodecAugmentedSource(source, sample_rate, codecs, speed_factors,
  cache_dir)`` is a random-access source with every record of ``source``
  in ``(1 + len(codecs)) * (1 + len(speed_factors))`` versions (the
  original first). The versions are computed once (with a progress bar and
  a thread pool of ffmpeg processes), written atomically under
  ``cache_dir/<key>`` where ``key`` hashes the codecs, speed factors,
  sample rate, ffmpeg version and a fingerprint of the source, and read back
  memory-mapped — so the wrapper is cheap to pickle into grain workers.

Example::

  train = CodecAugmentedSource(task.split("train"), 16000,
                               codecs=("mp3", "aac", "opus"),
                               speed_factors=(0.9, 1.1),
                               cache_dir="~/.cache/cljax/codec")
  len(train) == 12 * len(task.split("train"))
"""

from __future__ import annotations

import concurrent.futures
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from typing import Any, Mapping, Sequence

import numpy as np
import scipy.signal

from cljax.data.stream import RandomAccessSource

# codec name -> (ffmpeg encoder args, container format, file suffix).
# "aac" is written in an mp4 container rather than raw ADTS: ADTS carries no
# encoder-delay field, so the decoded audio would start 1024 samples late.
CODECS: Mapping[str, tuple[tuple[str, ...], str, str]] = {
    "mp3": (("-c:a", "libmp3lame"), "mp3", ".mp3"),
    "aac": (("-c:a", "aac"), "mp4", ".m4a"),
    "m4a": (("-c:a", "aac"), "mp4", ".m4a"),
    "ogg": (("-c:a", "libvorbis"), "ogg", ".ogg"),
    "opus": (("-c:a", "libopus"), "ogg", ".opus"),
    "wma": (("-c:a", "wmav2"), "asf", ".wma"),
    "wav": (("-c:a", "pcm_s16le"), "wav", ".wav"),
}

# The HM-Conformer recipe's formats (data_prepare.py), in its order.
RECIPE_CODECS = ("mp3", "m4a", "ogg", "aac", "wma", "wav")

_MISSING_FFMPEG = (
    "ffmpeg was not found on PATH; codec augmentation "
    "(config.data.codec_augment) runs it. Install the Debian/Ubuntu package "
    "`ffmpeg` (apt-get install ffmpeg; launch/setup.sh does) or set "
    "config.data.codec_augment = ().")


def ffmpeg_path() -> str:
  """The ffmpeg executable, or RuntimeError naming the apt package."""
  path = shutil.which("ffmpeg")
  if path is None:
    raise RuntimeError(_MISSING_FFMPEG)
  return path


@functools.lru_cache(maxsize=1)
def ffmpeg_version() -> str:
  """First line of ``ffmpeg -version`` (part of the cache key)."""
  out = subprocess.run([ffmpeg_path(), "-version"], capture_output=True,
                       text=True, check=True).stdout
  return out.splitlines()[0] if out else "unknown"


def _check_codec(codec: str) -> None:
  if codec not in CODECS:
    raise ValueError(f"Unknown codec {codec!r} in config.data.codec_augment; "
                     f"choose from {', '.join(sorted(CODECS))}.")


def codec_round_trip(audio: np.ndarray, sample_rate: int, codec: str,
                     bitrate: str | None = None,
                     align: bool = True) -> np.ndarray:
  """``audio`` encoded with ``codec`` by ffmpeg and decoded back.

  Args:
    audio: 1-D int16 PCM or float samples in [-1, 1].
    sample_rate: Hz (16000 for the ASVspoof corpora; every codec here
      supports it).
    codec: a key of ``CODECS``.
    bitrate: e.g. ``"32k"``; None keeps ffmpeg's default for the encoder,
      as the HM-Conformer recipe does.
    align: undo the delay the codec round trip leaves (``codec_delay``), so
      the copy lines up sample for sample with the original.

  Returns:
    The decoded waveform, same length and dtype as ``audio`` (int16 stays
    int16; float comes back float32).

  Raises:
    RuntimeError: ffmpeg is missing or fails (its message is included).
  """
  _check_codec(codec)
  audio = np.asarray(audio)
  if audio.ndim != 1 or audio.size == 0:
    raise ValueError(f"codec_round_trip needs a non-empty 1-D waveform, got "
                     f"shape {audio.shape}.")
  is_int16 = audio.dtype == np.int16
  raw_format = "s16le" if is_int16 else "f32le"
  pcm = audio if is_int16 else audio.astype("<f4")
  args, container, suffix = CODECS[codec]
  ffmpeg = ffmpeg_path()
  with tempfile.TemporaryDirectory(prefix="cljax_codec_") as tmp:
    encoded = os.path.join(tmp, "encoded" + suffix)
    encode = [ffmpeg, "-nostdin", "-v", "error", "-y", "-f", raw_format,
              "-ar", str(sample_rate), "-ac", "1", "-i", "pipe:0", *args]
    if bitrate:
      encode += ["-b:a", bitrate]
    encode += ["-f", container, encoded]
    _run(encode, pcm.astype(pcm.dtype.newbyteorder("<")).tobytes(), codec,
         "encode")
    decode = [ffmpeg, "-nostdin", "-v", "error", "-i", encoded, "-f",
              raw_format, "-ac", "1", "-ar", str(sample_rate), "pipe:1"]
    out = _run(decode, None, codec, "decode")
  decoded = np.frombuffer(out, np.dtype("<i2") if is_int16 else np.dtype("<f4"))
  decoded = decoded.astype(np.int16 if is_int16 else np.float32)
  if align:
    lag = codec_delay(sample_rate, codec, bitrate)
    if lag > 0:
      decoded = decoded[lag:]
    elif lag < 0:
      decoded = np.concatenate([np.zeros(-lag, decoded.dtype), decoded])
  if decoded.size >= audio.size:
    return decoded[:audio.size].copy()
  return np.pad(decoded, (0, audio.size - decoded.size))


@functools.lru_cache(maxsize=64)
def codec_delay(sample_rate: int, codec: str, bitrate: str | None = None
                ) -> int:
  """Samples by which ``codec``'s decoded output lags its input (may be < 0).

  ffmpeg drops the encoder delay for mp3 (LAME header), mp4 and ogg, but
  not for every format (wmav2 at 16 kHz comes back 512 samples *early*).
  Measured once per setting by cross-correlating a 1-s noise probe.
  """
  rng = np.random.default_rng(0)
  probe = np.clip(rng.standard_normal(sample_rate) * 4000, -32768,
                  32767).astype(np.int16)
  decoded = codec_round_trip(probe, sample_rate, codec, bitrate,
                             align=False).astype(np.float64)
  decoded = np.pad(decoded, (0, 4096))  # Room for positive lags.
  reference = probe.astype(np.float64)
  max_lag = min(4096, sample_rate // 4)
  # Correlate the middle half of the probe against shifted decodes.
  lo, hi = sample_rate // 4, 3 * sample_rate // 4
  scores = [np.dot(reference[lo:hi], decoded[lo + lag:hi + lag])
            for lag in range(-max_lag, max_lag + 1)]
  return int(np.argmax(scores)) - max_lag


def _run(command: list[str], stdin: bytes | None, codec: str,
         stage: str) -> bytes:
  result = subprocess.run(command, input=stdin, capture_output=True,
                          check=False)
  if result.returncode != 0:
    raise RuntimeError(
        f"ffmpeg failed to {stage} codec {codec!r} (exit "
        f"{result.returncode}): {result.stderr.decode(errors='replace')[-500:]}"
        f"\nCommand: {' '.join(command)}. If the encoder is missing, install "
        "the full Debian/Ubuntu `ffmpeg` package or drop the codec from "
        "config.data.codec_augment.")
  return result.stdout


def speed_perturb(audio: np.ndarray, factor: float) -> np.ndarray:
  """Speed (tempo and pitch) change by ``factor``: ``len / factor`` samples.

  The HM-Conformer recipe's ``scipy.signal.resample(wav, round(len(wav) /
  factor))``: FFT resampling of the whole utterance, so ``factor=0.9`` is
  slower and longer. int16 input is clipped back into int16.
  """
  if factor <= 0:
    raise ValueError(f"speed factor {factor} must be > 0 "
                     "(config.data.speed_perturb).")
  audio = np.asarray(audio)
  length = max(1, int(round(len(audio) / factor)))
  out = scipy.signal.resample(audio.astype(np.float64), length)
  if audio.dtype == np.int16:
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)
  return out.astype(np.float32)


def source_fingerprint(source: RandomAccessSource, samples: int = 16) -> str:
  """A hash of ``len(source)`` and up to ``samples`` evenly spaced records.

  Identifies a source for the cache key without reading all of it; pass
  ``source_key`` to ``CodecAugmentedSource`` when two sources could agree
  on those records yet differ elsewhere.
  """
  digest = hashlib.sha1(str(len(source)).encode())
  for index in np.unique(np.linspace(0, len(source) - 1, samples).astype(int)):
    record = source[int(index)]
    audio = np.ascontiguousarray(np.asarray(record["audio"]))
    digest.update(str(record.get("utt_id", index)).encode())
    digest.update(str(int(record["label"])).encode())
    digest.update(audio.dtype.str.encode())
    digest.update(audio.tobytes())
  return digest.hexdigest()


def _as_dtype(audio: np.ndarray, dtype: np.dtype) -> np.ndarray:
  """int16 <-> float at the front end's scale (1/32768), clipped."""
  if audio.dtype == dtype:
    return audio
  if dtype == np.int16:
    return np.clip(np.round(audio * 32768.0), -32768, 32767).astype(np.int16)
  return audio.astype(np.float32) / (32768.0 if audio.dtype == np.int16
                                     else 1.0)


def _versions(codecs: Sequence[str], speed_factors: Sequence[float]
              ) -> list[tuple[str | None, float]]:
  """``(codec or None, speed)`` per version: the original first."""
  return [(codec, speed) for codec in (None, *codecs)
          for speed in (1.0, *speed_factors)]


def _version_suffix(codec: str | None, speed: float) -> str:
  suffix = f"_from_{codec}" if codec else ""
  return suffix + (f"_sp{speed:g}" if speed != 1.0 else "")


class CodecAugmentedSource:
  """``source`` plus its codec round trips and speed-perturbed copies.

  Record ``i * V + v`` is version ``v`` of ``source[i]``, ``V = (1 +
  len(codecs)) * (1 + len(speed_factors))``, version 0 the original; the
  ``utt_id`` gets ``_from_<codec>`` / ``_sp<factor>`` appended and the
  label is kept. Built on first use (or by ``build()``) into
  ``cache_dir/<key>``; later instances with the same settings and source
  read the cache without calling ffmpeg.
  """

  def __init__(self, source: RandomAccessSource, sample_rate: int, *,
               codecs: Sequence[str] = RECIPE_CODECS,
               speed_factors: Sequence[float] = (0.9, 1.1),
               cache_dir: str, source_key: str | None = None,
               bitrate: str | None = None, num_workers: int | None = None,
               progress: bool = True):
    for codec in codecs:
      _check_codec(codec)
    for factor in speed_factors:
      if factor <= 0 or factor == 1.0:
        raise ValueError(f"speed factor {factor} in config.data.speed_perturb"
                         " must be > 0 and != 1 (the original is kept).")
    self._source = source
    self._sample_rate = int(sample_rate)
    self._codecs = tuple(codecs)
    self._speeds = tuple(float(f) for f in speed_factors)
    self._bitrate = bitrate
    self._num_workers = num_workers or min(8, os.cpu_count() or 1)
    self._progress = progress
    self._per_record = len(_versions(self._codecs, self._speeds))
    identity = {
        "codecs": self._codecs, "speeds": self._speeds,
        "sample_rate": self._sample_rate, "bitrate": bitrate,
        "ffmpeg": ffmpeg_version() if self._codecs else None,
        "source": source_key or source_fingerprint(source), "format": 1}
    key = hashlib.sha1(json.dumps(identity, sort_keys=True).encode())
    self.cache_path = os.path.join(os.path.expanduser(cache_dir),
                                   key.hexdigest()[:16])
    self._identity = identity
    self._arrays: dict[str, Any] | None = None
    self._size = len(source) * self._per_record

  def __len__(self) -> int:
    return self._size

  def __getstate__(self) -> dict[str, Any]:
    # Pickled copies (grain workers) read the cache and never the source,
    # so the cache is built here, once, in the parent, if it is not yet.
    state = dict(self.__dict__)
    state["_arrays"] = None  # Memory maps are reopened in each worker.
    state["_source"] = None  # Everything needed is in the cache.
    if not os.path.exists(os.path.join(self.cache_path, "meta.json")):
      self.build()
    return state

  def _load(self) -> dict[str, Any]:
    if self._arrays is None:
      if not os.path.exists(os.path.join(self.cache_path, "meta.json")):
        self.build()
      with open(os.path.join(self.cache_path, "utt_ids.json")) as f:
        utt_ids = json.load(f)
      with open(os.path.join(self.cache_path, "meta.json")) as f:
        dtype = np.dtype(json.load(f)["dtype"])
      self._arrays = {
          "audio": np.memmap(os.path.join(self.cache_path, "audio.bin"),
                             dtype=dtype, mode="r"),
          "offsets": np.load(os.path.join(self.cache_path, "offsets.npy")),
          "labels": np.load(os.path.join(self.cache_path, "labels.npy")),
          "utt_ids": utt_ids}
    return self._arrays

  def __getitem__(self, index: int) -> Mapping[str, Any]:
    index = int(index)
    if not 0 <= index < self._size:
      raise IndexError(f"index {index} out of range [0, {self._size}).")
    arrays = self._load()
    start, end = arrays["offsets"][index], arrays["offsets"][index + 1]
    return {"audio": np.asarray(arrays["audio"][start:end]),
            "label": int(arrays["labels"][index]),
            "utt_id": arrays["utt_ids"][index]}

  def _augment(self, index: int) -> list[tuple[np.ndarray, int, str]]:
    record = self._source[index]
    audio = np.asarray(record["audio"])
    if audio.dtype != np.int16:
      audio = audio.astype(np.float32)
    label = int(record["label"])
    utt_id = str(record.get("utt_id", index))
    coded = {None: audio}
    for codec in self._codecs:
      coded[codec] = codec_round_trip(audio, self._sample_rate, codec,
                                      self._bitrate)
    out = []
    for codec, speed in _versions(self._codecs, self._speeds):
      version = coded[codec] if speed == 1.0 else speed_perturb(coded[codec],
                                                               speed)
      out.append((version, label, utt_id + _version_suffix(codec, speed)))
    return out

  def build(self) -> str:
    """Computes every version (if not cached) and returns the cache path."""
    if os.path.exists(os.path.join(self.cache_path, "meta.json")):
      return self.cache_path
    if self._source is None:
      raise RuntimeError(f"Codec augmentation cache {self.cache_path} is "
                         "missing and this copy has no source to rebuild it.")
    if self._codecs:
      ffmpeg_path()
    parent = os.path.dirname(self.cache_path)
    os.makedirs(parent, exist_ok=True)
    count = len(self._source)
    first = np.asarray(self._source[0]["audio"])
    dtype = np.dtype(np.int16 if first.dtype == np.int16 else np.float32)
    lengths: list[int] = []
    labels: list[int] = []
    utt_ids: list[str] = []
    bar = None
    if self._progress:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      bar = tqdm(total=count, unit="utt",
                 desc=f"codec augmentation x{self._per_record}")
    tmp = tempfile.mkdtemp(prefix=".tmp_", dir=parent)
    # Versions are streamed to one raw file (a full corpus x 21 does not fit
    # in memory); ffmpeg runs in subprocesses, so threads give real
    # parallelism, and map() keeps the source order.
    with open(os.path.join(tmp, "audio.bin"), "wb") as audio_file, \
        concurrent.futures.ThreadPoolExecutor(self._num_workers) as pool:
      for versions in pool.map(self._augment, range(count)):
        for audio, label, utt_id in versions:
          audio_file.write(_as_dtype(audio, dtype).astype(
              dtype.newbyteorder("<")).tobytes())
          lengths.append(len(audio))
          labels.append(label)
          utt_ids.append(utt_id)
        if bar is not None:
          bar.update(1)
    if bar is not None:
      bar.close()
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    np.save(os.path.join(tmp, "offsets.npy"), offsets)
    np.save(os.path.join(tmp, "labels.npy"), np.asarray(labels, np.int32))
    with open(os.path.join(tmp, "utt_ids.json"), "w") as f:
      json.dump(utt_ids, f)
    with open(os.path.join(tmp, "meta.json"), "w") as f:
      json.dump({**self._identity, "records": len(labels),
                 "dtype": dtype.str}, f)
    try:
      os.rename(tmp, self.cache_path)  # Atomic: a cache is whole or absent.
    except OSError:
      # Another process finished the same cache first; theirs is identical.
      shutil.rmtree(tmp, ignore_errors=True)
    return self.cache_path
