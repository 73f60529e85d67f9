"""grain input pipelines: shuffled fixed-length train batches, ordered eval.

Training reads ``train_dataset(...)``: a ``grain.MapDataset`` of exactly
``num_steps`` batches, where batch ``k`` is a pure function of ``(seed, k)``
(shuffle, crop and padding all derive from the seed and the element index),
so a run resumes bit-exactly from either an iterator state or a step number.
Evaluation reads ``eval_batches(...)``: every record exactly once, in order,
at a fixed shape with a validity mask, so the jitted eval step compiles once.
Full-utterance evaluation reads ``eval_windows(...)``: every sliding window of
every record, batched at a fixed shape with each window's ``utt_index``, and
``pool_window_scores`` averages the window scores per utterance.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import grain
import numpy as np

from cljax.data.stream import Concatenated, RandomAccessSource

PAD_MODES = ("wrap", "zero")


def _checked_audio(record: Mapping[str, Any], split: str) -> np.ndarray:
  """The record's audio as an array, or ValueError naming record and split."""
  audio = np.asarray(record["audio"])
  utt_id = record.get("utt_id", "<no utt_id>")
  if audio.ndim != 1 or audio.size == 0:
    raise ValueError(
        f"Record {utt_id!r} in split {split!r} has audio of shape "
        f"{audio.shape}; expected a non-empty 1-D waveform. Re-encode it as "
        "mono or drop it from the split's protocol.")
  if audio.dtype.kind == "f" and not np.all(np.isfinite(audio)):
    raise ValueError(
        f"Record {utt_id!r} in split {split!r} has non-finite (NaN/inf) "
        "samples. Fix or drop the file from the split's protocol.")
  if audio.dtype.kind not in "fiu":
    raise ValueError(
        f"Record {utt_id!r} in split {split!r} has audio of dtype "
        f"{audio.dtype}; expected int16 PCM or float samples.")
  return audio


def _check_pad_mode(pad_mode: str) -> None:
  if pad_mode not in PAD_MODES:
    raise ValueError(f"pad_mode={pad_mode!r} is unknown; use one of "
                     f"{PAD_MODES} (config.data.pad_mode).")


def fit_length(audio: np.ndarray, length: int, pad_mode: str = "wrap",
               offset: int = 0) -> np.ndarray:
  """``audio[offset:offset + length]``, padded up to ``length`` if short.

  ``pad_mode="wrap"`` repeats the utterance cyclically (as the HM-Conformer
  recipe does), so a short clip never shows the model a block of digital
  silence; ``"zero"`` appends zeros.
  """
  if len(audio) >= length:
    return audio[offset:offset + length]
  if pad_mode == "wrap":
    return np.resize(audio, length)
  return np.pad(audio, (0, length - len(audio)))


def _as_batch_dtype(audios: Sequence[np.ndarray]) -> np.ndarray:
  """Stacks clips: int16 stays int16, uint8 (images) stays uint8; anything
  else becomes float32.

  A batch mixing int16 with float clips is all converted to float32 with int16
  scaled by 1/32768, the scale the front end applies to int16 input. uint8
  images stay uint8 (a quarter of float32's bytes to move); the image front
  ends scale them by 1/255 on the device.
  """
  for dtype in (np.int16, np.uint8):
    if all(a.dtype == dtype for a in audios):
      return np.stack(audios)
  if any(a.dtype == np.uint8 for a in audios):
    raise ValueError("A batch mixes uint8 images with other inputs "
                     f"({sorted({str(a.dtype) for a in audios})}); every "
                     "task of an image stream must store uint8 images.")
  return np.stack([a.astype(np.float32) / 32768.0 if a.dtype == np.int16
                   else a.astype(np.float32) for a in audios])


# Decoded audio kept per process by default: the whole CPU benchmark (7
# tasks x ~660 clips x 2.5 s int16 = 46 MB) fits many times over.
DEFAULT_CACHE_BYTES = 1 << 30


class MemoryCached:
  """``source`` with decoded records kept in memory, up to ``max_bytes``.

  Reading a 2.5-s clip from the benchmark's ``array_record`` files costs
  ~0.1 ms here (zstd decompression, ~75 %, plus the protobuf parse; the
  int64-list encoding of builder <= 1.2.0 took ~0.5 ms), a few times less
  than the CPU model's train step per example; from memory a record costs
  ~6 us (benchmarks/input_pipeline.py: first epoch vs steady state). The
  first epoch reads through; later epochs hit the cache. Records are
  cached until their audio totals ``max_bytes``; after that, uncached
  records are read through each time. Worker processes each hold their
  own cache (the cache is not pickled).
  """

  def __init__(self, source: RandomAccessSource, max_bytes: int):
    self._source = source
    self._max_bytes = int(max_bytes)
    self._cache: dict[int, Mapping[str, Any]] = {}
    self._bytes = 0

  def __len__(self) -> int:
    return len(self._source)

  def __getstate__(self) -> dict[str, Any]:
    state = dict(self.__dict__)
    state["_cache"], state["_bytes"] = {}, 0
    return state

  def __getitem__(self, index: int) -> Mapping[str, Any]:
    index = int(index)
    record = self._cache.get(index)
    if record is None:
      record = self._source[index]
      size = np.asarray(record["audio"]).nbytes
      if self._bytes + size <= self._max_bytes:
        self._cache[index] = record
        self._bytes += size
    return record


class _EpochShuffled:
  """``source`` repeated for ``num_epochs``, each epoch in its own order.

  Record ``k`` is ``source[perm_e[k % n]]`` with ``e = k // n`` and
  ``perm_e`` a permutation drawn from ``(seed, e)``. The permutation is made
  once per epoch with numpy; grain's ``shuffle`` computes an index shuffle
  per element instead, which cost ~36 us per record here — more than the
  train step's share on a 2-core CPU.
  """

  def __init__(self, source: RandomAccessSource, seed: int, num_epochs: int):
    self._source = source
    self._size = len(source)
    self._seed = seed
    self._num_epochs = num_epochs
    self._epoch, self._permutation = -1, None

  def __len__(self) -> int:
    return self._size * self._num_epochs

  def permutation(self, epoch: int) -> np.ndarray:
    if epoch != self._epoch:
      self._permutation = np.random.default_rng(
          (self._seed, epoch)).permutation(self._size)
      self._epoch = epoch
    return self._permutation

  def __getitem__(self, index: int) -> Mapping[str, Any]:
    epoch, position = divmod(int(index), self._size)
    return self._source[int(self.permutation(epoch)[position])]


def _mix64(value: int) -> int:
  """splitmix64's finaliser: a cheap, well-mixed 64-bit hash of an int."""
  value = (value + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
  value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
  value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
  return value ^ (value >> 31)


class _CroppedBatches:
  """Batch ``b`` of the training stream, assembled in one call.

  Batch ``b`` holds records ``b*B .. b*B+B-1`` of the epoch-shuffled stream,
  each cropped at an offset hashed from (seed, position): deterministic,
  different every epoch, and a few integer operations. Building whole
  batches here rather than mapping grain transforms per record keeps the
  host's work per batch to list lookups and one copy — per-record grain
  calls and a ``np.random.Generator`` per crop cost more than the train
  step's share of a 2-core CPU.
  """

  def __init__(self, records: _EpochShuffled, *, batch_size: int,
               crop_length: int, num_steps: int, pad_mode: str, split: str,
               seed: int, rows: tuple[int, int] | None = None):
    self._records = records
    self._batch_size = batch_size
    # This process's share [start, stop) of every batch (multi-process).
    self._rows = rows or (0, batch_size)
    self._crop_length = crop_length
    self._num_steps = num_steps
    self._pad_mode = pad_mode
    self._split = split
    self._seed_key = _mix64(seed)

  def __len__(self) -> int:
    return self._num_steps

  def __getitem__(self, batch_index: int) -> dict[str, np.ndarray]:
    first = int(batch_index) * self._batch_size
    clips, labels = [], []
    for position in range(first + self._rows[0], first + self._rows[1]):
      record = self._records[position]
      audio = _checked_audio(record, self._split)
      slack = len(audio) - self._crop_length
      offset = (_mix64(self._seed_key ^ position) % (slack + 1)
                if slack > 0 else 0)
      clips.append(fit_length(audio, self._crop_length, self._pad_mode,
                              offset))
      labels.append(int(record["label"]))
    return {"audio": _as_batch_dtype(clips),
            "label": np.asarray(labels, np.int32)}


def total_length(sources: Sequence[RandomAccessSource]) -> int:
  return sum(len(source) for source in sources)


def num_steps_for(sources: Sequence[RandomAccessSource], batch_size: int,
                  epochs: float) -> int:
  """Optimizer steps for ``epochs`` passes: ``epochs * (N // batch_size)``.

  ``N`` is the summed length of ``sources``; the ``drop_remainder`` batching
  of ``train_dataset`` makes ``N // batch_size`` full batches one epoch.
  """
  total = total_length(sources)
  if batch_size < 1:
    raise ValueError(f"config.data.batch_size={batch_size} must be >= 1.")
  if total < batch_size:
    raise ValueError(
        f"The training data has {total} records, fewer than "
        f"config.data.batch_size={batch_size}: lower config.data.batch_size "
        "to at most the smallest task's train split.")
  if epochs <= 0:
    raise ValueError(f"epochs={epochs} must be > 0.")
  return max(1, int(epochs * (total // batch_size)))


def train_dataset(sources: Sequence[RandomAccessSource], *, batch_size: int,
                  crop_length: int, num_steps: int, seed: int,
                  pad_mode: str = "wrap", split: str = "train",
                  cache_bytes: int = DEFAULT_CACHE_BYTES,
                  rows: slice | None = None) -> grain.MapDataset:
  """``num_steps`` shuffled batches of random fixed-length crops.

  The sources are concatenated (the ``joint`` strategy passes every task so
  far), shuffled with ``seed`` and reshuffled every epoch, each record
  randomly cropped (or padded) to ``crop_length``, and batched with
  ``drop_remainder``; batches may straddle an epoch boundary.

  Args:
    sources: random-access sources of ``{"audio", "label", "utt_id"}``.
    batch_size: records per batch.
    crop_length: samples per clip.
    num_steps: ``len`` of the result; see ``num_steps_for``.
    seed: shuffle and crop seed.
    pad_mode: ``"wrap"`` or ``"zero"`` padding of clips shorter than
      ``crop_length``.
    split: split name for error messages.
    cache_bytes: keep decoded records in memory, up to this many bytes of
      audio per process (0 disables); see ``MemoryCached``.
    rows: only these rows of every batch (``distributed.process_slice``:
      a process's share of the global batch in a multi-process run); they
      are the same records and crops as in the whole batch. None: all.

  Returns:
    A ``grain.MapDataset`` with ``ds[k] = {"audio": [batch_size,
    crop_length] int16 (if the sources are int16; else float32), "label":
    int32 [batch_size]}`` (``rows`` rows instead of ``batch_size`` if given).
  """
  _check_pad_mode(pad_mode)
  if not sources:
    raise ValueError("train_dataset needs at least one source.")
  if crop_length < 1:
    raise ValueError(f"crop_length={crop_length} must be >= 1 "
                     "(config.data.crop_seconds).")
  if num_steps < 1:
    raise ValueError(f"num_steps={num_steps} must be >= 1.")
  total = total_length(sources)
  if total < batch_size:
    raise ValueError(
        f"The {split!r} data has {total} records, fewer than "
        f"config.data.batch_size={batch_size}: lower the batch size.")
  source = sources[0] if len(sources) == 1 else Concatenated(sources)
  num_epochs = -(-num_steps * batch_size // total)  # Ceiling division.
  if cache_bytes and num_epochs > 1:
    source = MemoryCached(source, cache_bytes)
  row_range = None
  if rows is not None:
    row_range = rows.indices(batch_size)[:2]
    if rows.step not in (None, 1) or not 0 <= row_range[0] < row_range[1]:
      raise ValueError(f"rows={rows} must be a non-empty contiguous slice of "
                       f"the batch of {batch_size}.")
  return grain.MapDataset.source(_CroppedBatches(
      _EpochShuffled(source, seed, num_epochs), batch_size=batch_size,
      crop_length=crop_length, num_steps=num_steps, pad_mode=pad_mode,
      split=split, seed=seed, rows=row_range))


def _mark_absl_flags_parsed() -> None:
  # grain's multiprocess prefetch reads absl flags; outside absl.app.run
  # (tests, notebooks) they are unparsed and reading them raises. Marking
  # them parsed keeps every default; app.run still parses argv as usual.
  from absl import flags  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def train_iterator(ds: grain.MapDataset, *, worker_count: int = 0,
                   start_step: int = 0, read_threads: int = 0,
                   prefetch_batches: int = 4) -> grain.DatasetIterator:
  """A checkpointable iterator over ``ds`` (from ``train_dataset``).

  ``get_state()`` is a JSON-serialisable dict and ``set_state(state)`` on a
  fresh iterator built with the same arguments resumes at exactly the next
  batch. Alternatively ``start_step=k`` starts at batch ``k``; with
  ``worker_count=0`` the state then counts from batch 0 as usual, while with
  worker processes it counts from ``k`` (restore it into an iterator built
  with the same ``start_step``).

  Args:
    ds: the training ``MapDataset``.
    worker_count: 0 reads in this process; > 0 adds ``mp_prefetch`` with
      that many worker processes.
    start_step: index of the first batch to yield.
    read_threads: prefetch threads in each process. 0 (default) builds each
      batch in the calling thread when it is asked for: with the step
      dispatched asynchronously, that already overlaps the device's work,
      and on a 2-core CPU extra threads only contend with XLA for the cores
      (loop overhead 6.5 % with 2 threads vs 3.7 % with 0, measured).
    prefetch_batches: batches read ahead per process.

  Returns:
    A ``grain.DatasetIterator``.
  """
  if not 0 <= start_step <= len(ds):
    raise ValueError(f"start_step={start_step} is outside [0, {len(ds)}] "
                     "(the dataset's num_steps).")
  if worker_count < 0:
    raise ValueError(f"config.data.worker_count={worker_count} must be >= 0.")
  read_options = grain.ReadOptions(num_threads=read_threads,
                                   prefetch_buffer_size=prefetch_batches)
  if worker_count == 0:
    iterator = iter(ds.to_iter_dataset(read_options))
    if start_step:
      grain.experimental.set_next_index(iterator, start_step)
    return iterator
  _mark_absl_flags_parsed()
  # Interleaved worker iterators cannot seek, so skip by slicing instead.
  dataset = ds[start_step:] if start_step else ds
  options = grain.MultiprocessingOptions(
      num_workers=worker_count, per_worker_buffer_size=prefetch_batches)
  return iter(dataset.to_iter_dataset(read_options).mp_prefetch(options))


def eval_batches(source: RandomAccessSource, *, batch_size: int,
                 window_length: int, pad_mode: str = "wrap",
                 split: str = "test") -> Iterator[dict[str, Any]]:
  """Every record of ``source`` once, in order, in fixed-shape batches.

  Each record contributes its first ``window_length`` samples (padded per
  ``pad_mode`` if shorter). The last batch is filled up to ``batch_size``
  with zero audio, label 0, ``mask=False`` and ``utt_id=""``.

  Yields:
    ``{"audio": [batch_size, window_length] int16 (int16 sources) or
    float32, "label": int32 [batch_size], "mask": bool [batch_size],
    "utt_id": list[str]}``.
  """
  _check_pad_mode(pad_mode)
  if batch_size < 1 or window_length < 1:
    raise ValueError(f"batch_size={batch_size} and window_length="
                     f"{window_length} must be >= 1 (config.eval).")
  size = len(source)
  for begin in range(0, size, batch_size):
    records = [source[i] for i in range(begin, min(begin + batch_size, size))]
    clips = [fit_length(_checked_audio(r, split), window_length, pad_mode)
             for r in records]
    valid = len(clips)
    audio = _as_batch_dtype(clips)
    if valid < batch_size:
      audio = np.concatenate(
          [audio, np.zeros((batch_size - valid, window_length), audio.dtype)])
    label = np.zeros(batch_size, np.int32)
    label[:valid] = [int(r["label"]) for r in records]
    mask = np.arange(batch_size) < valid
    utt_ids = [str(r["utt_id"]) for r in records] + [""] * (batch_size - valid)
    yield {"audio": audio, "label": label, "mask": mask, "utt_id": utt_ids}


def window_starts(num_samples: int, window_length: int,
                  hop_length: int) -> np.ndarray:
  """Start offsets of the sliding windows covering a whole utterance.

  Windows start every ``hop_length`` samples; when the utterance does not
  end on a window boundary, one more window is added *flush with its end*
  (start ``num_samples - window_length``), so every window is real audio
  and every sample is covered: ``1 + ceil((L - W) / hop)`` windows for
  ``L > W`` (a 2.5-window utterance with ``hop = W`` gives 3), and a single
  (padded) window for ``L <= W``.
  """
  if num_samples <= window_length:
    return np.zeros(1, np.int64)
  starts = np.arange(0, num_samples - window_length + 1, hop_length)
  if starts[-1] + window_length < num_samples:
    starts = np.append(starts, num_samples - window_length)
  return starts.astype(np.int64)


def eval_windows(source: RandomAccessSource, *, batch_size: int,
                 window_length: int, hop_length: int | None = None,
                 pad_mode: str = "wrap", split: str = "test"
                 ) -> Iterator[dict[str, Any]]:
  """Full-utterance evaluation: every window of every record, in order.

  Each record is cut into the sliding windows of ``window_starts`` (records
  shorter than ``window_length`` give one window padded per ``pad_mode``);
  the windows of all records, in record order, are packed into fixed-shape
  batches, so the jitted eval step compiles once. The last batch is filled
  with zero audio, ``utt_index=-1`` and ``mask=False``. Pool the window
  scores per utterance with ``pool_window_scores``.

  Args:
    source: random-access source of ``{"audio", "label", "utt_id"}``.
    batch_size: windows per batch.
    window_length: samples per window (``config.data.eval_seconds``).
    hop_length: samples between window starts; None means
      ``window_length`` (non-overlapping windows).
    pad_mode: ``"wrap"`` or ``"zero"`` for records shorter than a window.
    split: split name for error messages.

  Yields:
    ``{"audio": [batch_size, window_length] int16 (int16 sources) or
    float32, "label": int32 [batch_size] (the record's label),
    "utt_index": int32 [batch_size] (index into ``source``; -1 on padding),
    "mask": bool [batch_size], "utt_id": list[str]}``.
  """
  _check_pad_mode(pad_mode)
  hop_length = window_length if hop_length is None else hop_length
  if batch_size < 1 or window_length < 1 or hop_length < 1:
    raise ValueError(
        f"batch_size={batch_size}, window_length={window_length} and "
        f"hop_length={hop_length} must be >= 1 (config.data.eval_batch_size,"
        " config.data.eval_seconds, config.data.eval_hop_seconds).")
  pending: list[tuple[np.ndarray, int, int, str]] = []

  def emit(items):
    valid = len(items)
    audio = _as_batch_dtype([clip for clip, _, _, _ in items])
    if valid < batch_size:
      audio = np.concatenate(
          [audio, np.zeros((batch_size - valid, window_length), audio.dtype)])
    label = np.zeros(batch_size, np.int32)
    label[:valid] = [lab for _, lab, _, _ in items]
    utt_index = np.full(batch_size, -1, np.int32)
    utt_index[:valid] = [index for _, _, index, _ in items]
    return {"audio": audio, "label": label, "utt_index": utt_index,
            "mask": np.arange(batch_size) < valid,
            "utt_id": [u for _, _, _, u in items]
                      + [""] * (batch_size - valid)}

  for index in range(len(source)):
    record = source[index]
    audio = _checked_audio(record, split)
    label, utt_id = int(record["label"]), str(record["utt_id"])
    for start in window_starts(len(audio), window_length, hop_length):
      pending.append((fit_length(audio, window_length, pad_mode, int(start)),
                      label, index, utt_id))
      if len(pending) == batch_size:
        yield emit(pending)
        pending = []
  if pending:
    yield emit(pending)


def pool_window_scores(values: np.ndarray, utt_index: np.ndarray,
                       mask: np.ndarray, num_utterances: int,
                       reduce: str = "mean") -> np.ndarray:
  """Per-utterance pooling of per-window outputs from ``eval_windows``.

  Args:
    values: ``[N]`` window scores (``reduce="mean"``) or integer class
      predictions (``reduce="vote"``), the batches concatenated.
    utt_index: ``[N]`` the batches' ``utt_index``, concatenated.
    mask: ``[N]`` the batches' ``mask``, concatenated.
    num_utterances: ``len(source)``.
    reduce: ``"mean"``: the mean window score of each utterance;
      ``"vote"``: the most frequent prediction (ties -> the smaller class).

  Returns:
    ``[num_utterances]``: float64 means or int32 votes, in source order.

  Raises:
    ValueError: an utterance has no valid window (the arrays do not come
      from one full pass of ``eval_windows``).
  """
  values, utt_index = np.asarray(values), np.asarray(utt_index)
  mask = np.asarray(mask, bool)
  if not values.shape == utt_index.shape == mask.shape:
    raise ValueError(f"values {values.shape}, utt_index {utt_index.shape} and"
                     f" mask {mask.shape} must have the same shape.")
  values, utt_index = values[mask], utt_index[mask].astype(np.int64)
  counts = np.bincount(utt_index, minlength=num_utterances)
  if len(counts) != num_utterances or np.any(counts == 0):
    missing = np.flatnonzero(counts[:num_utterances] == 0)[:5].tolist()
    raise ValueError(
        f"pool_window_scores: utterances {missing} have no window or an "
        f"utt_index exceeds num_utterances={num_utterances}; pass the "
        "outputs of one complete eval_windows pass.")
  if reduce == "mean":
    return np.bincount(utt_index, weights=values.astype(np.float64),
                       minlength=num_utterances) / counts
  if reduce == "vote":
    classes = values.astype(np.int64)
    table = np.zeros((num_utterances, int(classes.max()) + 1), np.int64)
    np.add.at(table, (utt_index, classes), 1)
    return table.argmax(1).astype(np.int32)
  raise ValueError(f"reduce={reduce!r}: use 'mean' or 'vote'.")
