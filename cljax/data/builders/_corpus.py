"""Machinery shared by the builders over a user's own corpus copy.

A corpus builder lists its records (protocol lines, folders, CSV rows) as
``Entry``s, every check that needs no decoding done while listing; the base
class then decodes each file (``CorpusBuilder.decode``: through
``cljax.data.audio_io`` for audio, ``cljax.data.image_io`` for the image
builders) while TFDS writes array_record shards. Everything happens in
``prepare`` — called when a stream is built, i.e. before the first compile —
so a bad corpus fails before training starts.

Bad input (``on_bad_file``):

* ``"error"`` (default): the first problem raises ``CorpusError`` (or
  ``AudioFileError`` / ``ImageFileError``) naming the file or the protocol
  line and the fix.
* ``"skip"``: per-record problems (a missing, corrupt, truncated or
  wrong-rate file; a protocol line with an unknown label or system) leave the
  record out; the count and the first names are printed after preparing and
  stored in the builder's metadata (``metadata.json`` under
  ``skipped``), and printed again whenever the cached build is loaded.
  Structural problems (no protocol file, an empty split or class) still
  raise: nothing is silently dropped.

The cache lives under ``data_dir`` (argument, else the default folder of
``cljax.data.paths``), one folder per builder, config (sample rate — or, for
images, the image size —, options and a fingerprint of the copy's path) and
version.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import logging
import os
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.proto import tf_example_pb2

from cljax.data import audio_io
from cljax.data import paths

ON_BAD_FILE = ("error", "skip")
CLASS_NAMES = ("bonafide", "spoof")
# How many skipped/resampled names a report prints and stores.
REPORT_FIRST = 10


class CorpusError(ValueError):
  """A corpus copy is unusable as laid out; the message names where and why."""


def visible_names(folder: str) -> list[str]:
  """The folder's entries, sorted, without hidden ones (``.DS_Store``...)."""
  return sorted(n for n in os.listdir(folder) if not n.startswith("."))


def protocol_lines(path: str) -> Iterator[tuple[str, list[str], str]]:
  """``(where, columns, line)`` of each non-empty line; ``where`` = file:line."""
  with open(path) as f:
    for number, line in enumerate(f, 1):
      if line.strip():
        yield f"{path}:{number}", line.split(), line.strip()


def require_file(where: str, name: str, audio_path: str, fix: str) -> None:
  """CorpusError unless the file a protocol line names exists."""
  if not os.path.isfile(audio_path):
    raise CorpusError(f"{where} names {name!r} but {audio_path} does not "
                      f"exist. {fix}")


ASVSPOOF_KEYS = {"bonafide": 0, "spoof": 1}


def asvspoof_label(where: str, text: str, key: str, attack: str,
                   attack_name: str, attack_ids: str) -> int:
  """The label (0 bona fide, 1 spoof) of an ASVspoof protocol or key line.

  CorpusError, naming the line, unless ``key`` is ``bonafide`` or ``spoof``
  and the line's ``attack`` column (``attack_name``: "system" in 2019 LA,
  "attack" in 2021 DF) is ``-`` exactly when the key is ``bonafide``.
  """
  if key not in ASVSPOOF_KEYS:
    raise CorpusError(f"{where}: unknown key {key!r} (expected 'bonafide' "
                      f"or 'spoof'): {text!r}. Fix the line.")
  if (attack == "-") != (key == "bonafide"):
    raise CorpusError(
        f"{where}: key {key!r} with {attack_name} {attack!r}: bona fide lines "
        f"have {attack_name} '-' and spoofed ones {attack_ids}. Fix the line.")
  return ASVSPOOF_KEYS[key]


def require_dir(path: str, field: str, layout: str) -> str:
  """``path`` as an absolute folder, or CorpusError naming ``field``."""
  if not path:
    raise CorpusError(
        f"config.data.stream.{field} is not set: pass the folder of your copy "
        f"(--config.data.stream.{field}=/path/to/it). Expected layout:\n"
        f"{layout}")
  path = os.path.abspath(os.path.expanduser(str(path)))
  if not os.path.isdir(path):
    raise CorpusError(
        f"config.data.stream.{field}={path!r} is not a folder. Expected "
        f"layout:\n{layout}")
  return path


@dataclasses.dataclass(frozen=True)
class Entry:
  """One record to build: ``path`` decoded to ``audio``, plus text fields."""

  key: str                  # unique within the split; becomes ``utt_id``
  path: str
  label: int                # 0 = bona fide, 1 = spoof
  fields: Mapping[str, str] = dataclasses.field(default_factory=dict)
  where: str = ""           # protocol line / CSV row, for error messages


class BadInput:
  """Raises on a bad record, or (``on_bad_file="skip"``) records it."""

  def __init__(self, on_bad_file: str):
    audio_io.check_option(on_bad_file, ON_BAD_FILE, "on_bad_file")
    self.mode = on_bad_file
    self.skipped: dict[str, list[str]] = {}

  def __call__(self, split: str, error: ValueError) -> None:
    if self.mode == "error":
      raise error
    if hasattr(error, "path") and hasattr(error, "problem"):
      # An AudioFileError / ImageFileError: the file and what is wrong.
      note = f"{error.path}: {error.problem}"
    else:  # The message's first sentence names the line and the problem.
      note = str(error).split(". ")[0]
    self.skipped.setdefault(split, []).append(note)


@dataclasses.dataclass
class CorpusConfig(tfds.core.BuilderConfig):
  """What decides a build's content; its ``name`` is a digest of all this."""

  sample_rate: int = 16000
  resample: str = "warn"
  channels: str = "error"
  on_bad_file: str = "error"
  # Builder-specific options as sorted (key, value) pairs.
  options: tuple[tuple[str, Any], ...] = ()


def _fingerprint(*parts: Any) -> str:
  return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str)
                        .encode()).hexdigest()[:10]


# Release note of the version (1.1.0 of every corpus builder) that first
# stores ``audio`` as raw bytes; an older cache holds int64 protobuf lists,
# which the raw-bytes feature cannot read, hence the version bump.
BYTES_AUDIO_NOTE = (
    "Audio stored as raw bytes (tfds Encoding.BYTES) instead of an int64 "
    "protobuf list: ~4x faster to read. Same samples; only the encoding "
    "changed.")


class CorpusBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the corpus builders: decode, check, write, report.

  Subclasses set ``VERSION``, ``MANUAL_DOWNLOAD_INSTRUCTIONS`` (the layout),
  ``TEXT_FIELDS`` (metadata kept as ``tfds.features.Text``) and implement
  ``list_entries(manual_dir, bad) -> {split: [Entry]}``. A change of the
  stored features (e.g. the ``audio`` encoding) needs a new ``VERSION`` in
  every subclass: TFDS reads a cache with the features declared in code.

  The audio defaults below are what the audio builders store; a builder of
  another modality overrides them (``builders.image_folder``: ``image``
  uint8, classes real/fake, ``decode`` through ``image_io``).
  """

  TEXT_FIELDS: tuple[str, ...] = ()
  # The stored model input: its feature name and dtype (1-D, raw bytes).
  # ``Records`` hands it to the loop as ``"audio"`` whatever it is called.
  INPUT_FEATURE = "audio"
  DTYPE = np.int16
  CLASS_NAMES: tuple[str, str] = CLASS_NAMES
  # Per-file errors ``decode`` raises that ``on_bad_file="skip"`` may skip.
  FILE_ERRORS: tuple[type[Exception], ...] = (audio_io.AudioFileError,)
  # The stream field naming the copy, for error messages.
  DIR_FIELD = "manual_dir"
  # Files decoded at once (threads; >1 only where the decoder releases the
  # GIL, as Pillow does). Results are written in entry order either way.
  DECODE_THREADS = 1
  # Nothing is downloaded, so there are no URL checksums to look up; TFDS's
  # lookup would otherwise import ``importlib_resources`` (not installed).
  _checksums_path = None

  @property
  def options(self) -> dict[str, Any]:
    return dict(self.builder_config.options)

  @classmethod
  def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
    """The builder-specific options, checked and completed (``prepare``
    calls it before the cache key is made); ValueError naming a bad one."""
    return options

  @classmethod
  def config_prefix(cls, sample_rate: int, options: Mapping[str, Any]) -> str:
    """The readable start of a build's config (cache folder) name."""
    del options  # What distinguishes audio builds is the rate.
    return f"sr{sample_rate}"

  def resampled_note(self, count: int, first: Sequence[str]) -> str:
    """The report line for the files ``decode`` had to resample."""
    return (f"{self.name}: resampled {count} file(s) to "
            f"{self.builder_config.sample_rate} Hz (resample='warn'); first: "
            + ", ".join(first))

  def _info(self) -> tfds.core.DatasetInfo:
    features = {
        # Raw bytes: the default encoding stores every sample as a protobuf
        # int64 (varint), whose parse dominated reading a record.
        self.INPUT_FEATURE: tfds.features.Tensor(
            shape=(None,), dtype=self.DTYPE,
            encoding=tfds.features.Encoding.BYTES),
        "label": tfds.features.ClassLabel(names=list(self.CLASS_NAMES)),
        "utt_id": tfds.features.Text(),
    }
    features.update({name: tfds.features.Text() for name in self.TEXT_FIELDS})
    return tfds.core.DatasetInfo(
        builder=self, features=tfds.features.FeaturesDict(features),
        metadata=tfds.core.MetadataDict())

  def list_entries(self, manual_dir: str,
                   bad: BadInput) -> dict[str, list[Entry]]:
    raise NotImplementedError

  def decode(self, entry: Entry) -> np.ndarray:
    """The 1-D array stored under ``INPUT_FEATURE``; raises one of
    ``FILE_ERRORS`` (here AudioFileError) if the file is bad."""
    config = self.builder_config
    decoded = audio_io.decode_audio(
        entry.path, sample_rate=config.sample_rate, resample=config.resample,
        channels=config.channels, dtype="int16")
    if decoded.source_rate != config.sample_rate:
      self._resampled.append(entry.path)
    return decoded.samples

  def _split_generators(self, dl_manager):
    self._bad = BadInput(self.builder_config.on_bad_file)
    self._resampled: list[str] = []
    entries = self.list_entries(str(dl_manager.manual_dir), self._bad)
    for split, split_entries in entries.items():
      check_entries(split_entries, split, self.name, self._bad,
                    class_names=self.CLASS_NAMES, dir_field=self.DIR_FIELD)
    self._generated = {split: 0 for split in entries}
    return {split: self._generate_examples(split, split_entries)
            for split, split_entries in entries.items()}

  def _try_decode(self, entry: Entry) -> np.ndarray | Exception:
    try:
      return self.decode(entry)
    except self.FILE_ERRORS as error:
      return error

  def _decoded(self, entries: Sequence[Entry]
               ) -> Iterator[tuple[Entry, np.ndarray | Exception]]:
    """``(entry, array or the file's error)`` in entry order."""
    if self.DECODE_THREADS <= 1:
      for entry in entries:
        yield entry, self._try_decode(entry)
      return
    # Bounded look-ahead: at most a few chunks of decoded arrays in memory
    # however slowly TFDS consumes them.
    chunk = 8 * self.DECODE_THREADS
    with concurrent.futures.ThreadPoolExecutor(self.DECODE_THREADS) as pool:
      for start in range(0, len(entries), chunk):
        part = entries[start:start + chunk]
        yield from zip(part, pool.map(self._try_decode, part))

  def _generate_examples(self, split: str, entries: Sequence[Entry]
                         ) -> Iterator[tuple[str, dict[str, Any]]]:
    for entry, audio in self._decoded(entries):
      if isinstance(audio, Exception):
        error = audio
        # Name the protocol line too, where the entry came from one.
        where = (f" ({entry.where})" if entry.where and entry.where != entry.path
                 else "")
        self._bad(split, type(error)(error.path, error.problem + where,
                                     error.fix))
        continue
      example = {self.INPUT_FEATURE: audio, "label": entry.label,
                 "utt_id": entry.key}
      example.update({name: entry.fields.get(name, "")
                      for name in self.TEXT_FIELDS})
      self._generated[split] += 1
      yield entry.key, example
    # The last split to finish leaves the complete report in the metadata,
    # which TFDS writes to metadata.json after generating.
    self.info.metadata["skipped"] = {
        s: {"count": len(names), "first": names[:REPORT_FIRST]}
        for s, names in self._bad.skipped.items()}
    self.info.metadata["resampled"] = {
        "count": len(self._resampled),
        "first": self._resampled[:REPORT_FIRST]}
    if not self._generated[split]:
      raise CorpusError(
          f"{self.name}: every file of split {split!r} was skipped "
          f"({len(self._bad.skipped.get(split, []))} bad files, first: "
          f"{self._bad.skipped.get(split, [])[:3]}); nothing left to build. "
          f"Fix the files or the path (config.data.stream.{self.DIR_FIELD}).")


def check_entries(entries: Sequence[Entry], split: str, corpus: str,
                  bad: BadInput | None = None, *,
                  class_names: Sequence[str] = CLASS_NAMES,
                  dir_field: str = "manual_dir") -> None:
  """An empty split, a split missing a class, or duplicate keys: error."""
  if not entries:
    skipped = bad.skipped.get(split, []) if bad else []
    raise CorpusError(
        f"{corpus}: split {split!r} has no records"
        + (f" after skipping {len(skipped)} bad ones (first: {skipped[:3]})"
           if skipped else "")
        + ". Check the protocol/folder of that split and "
        f"config.data.stream.{dir_field}.")
  labels = {entry.label for entry in entries}
  for label, name in enumerate(class_names):
    if label not in labels:
      raise CorpusError(
          f"{corpus}: split {split!r} has no {name} records ({len(entries)} "
          f"records, all {class_names[1 - label]}). A detector needs both "
          "classes in every split: check the protocol/folder of that split.")
  seen: dict[str, str] = {}
  for entry in entries:
    if entry.key in seen:
      raise CorpusError(
          f"{corpus}: split {split!r} names utterance {entry.key!r} twice "
          f"({seen[entry.key]} and {entry.where}). Remove the duplicate.")
    seen[entry.key] = entry.where


def report(builder: CorpusBuilder) -> str:
  """A printable account of what the build skipped and resampled ("" if
  nothing)."""
  metadata = builder.info.metadata or {}
  lines = []
  for split, info in sorted(dict(metadata.get("skipped", {})).items()):
    lines.append(
        f"{builder.name} [{builder.builder_config.name}]: SKIPPED "
        f"{info['count']} bad file(s) in split {split!r} "
        f"(on_bad_file='skip'); first: " + "; ".join(info["first"]))
  resampled = dict(metadata.get("resampled", {}))
  if resampled.get("count"):
    lines.append(builder.resampled_note(resampled["count"],
                                        resampled["first"]))
  return "\n".join(lines)


def prepare(builder_cls: type[CorpusBuilder], manual_dir: str, *,
            data_dir: str = "", sample_rate: int = 16000,
            resample: str = "warn", channels: str = "error",
            on_bad_file: str = "error",
            **options: Any) -> CorpusBuilder:
  """Builds (once; later calls reuse the cache) and returns the builder.

  Args:
    builder_cls: a ``CorpusBuilder`` subclass.
    manual_dir: the user's copy of the corpus.
    data_dir: cache root (``cljax.data.paths.data_dir``).
    sample_rate: the stream's rate; files at another rate per ``resample``.
      (Audio only, like ``resample`` and ``channels``.)
    resample: ``"warn"`` or ``"refuse"`` (see ``audio_io.decode_audio``).
    channels: ``"error"`` or ``"mix"``.
    on_bad_file: ``"error"`` or ``"skip"``.
    **options: builder-specific options (checked and completed by
      ``builder_cls.check_options``; the image builder's ``image_size``,
      ``resize``, ``min_size``, ``layout``...); part of the cache key.

  Returns:
    The prepared builder; read it with ``source(builder, split)``.
  """
  audio_io.check_option(resample, audio_io.RESAMPLE_MODES, "resample")
  audio_io.check_option(channels, audio_io.CHANNEL_MODES, "channels")
  audio_io.check_option(on_bad_file, ON_BAD_FILE, "on_bad_file")
  options = builder_cls.check_options(dict(options))
  option_items = tuple(sorted(
      (k, tuple(v) if isinstance(v, list) else v) for k, v in options.items()))
  manual_dir = os.path.abspath(manual_dir)
  name = "{}_{}".format(builder_cls.config_prefix(sample_rate, options),
                        _fingerprint(
      manual_dir, resample, channels, on_bad_file, option_items,
      builder_cls.VERSION))
  config = CorpusConfig(name=name, sample_rate=int(sample_rate),
                        resample=resample, channels=channels,
                        on_bad_file=on_bad_file, options=option_items,
                        description=f"{builder_cls.__name__} over "
                        f"{manual_dir}")
  # TFDS logs the custom config at WARNING; it is the normal case here.
  absl_logger = logging.getLogger("absl")
  level = absl_logger.level
  absl_logger.setLevel(logging.ERROR)
  try:
    builder = builder_cls(data_dir=paths.data_dir(data_dir), config=config,
                          file_format="array_record")
  finally:
    absl_logger.setLevel(level)
  if not builder.is_prepared():
    print(f"Preparing {builder.name} from {manual_dir} into "
          f"{builder.data_dir} (once; later runs reuse it).", flush=True)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  text = report(builder)
  if text:
    print(text, flush=True)
    logging.warning("%s", text)
  return builder


class ExampleSource:
  """A split of a prepared array_record builder, read by a fast path.

  ``source[i]`` equals ``builder.as_data_source(split=split)[i]`` (same
  values and types: int labels, bytes text, a read-only numpy audio view),
  but the ``tf.train.Example`` is read straight from its protobuf: TFDS's
  generic numpy decoder walks every feature in Python, ~34 us of the ~106 us
  a 2.5-s clip takes to read (the rest is array_record's zstd), which made
  it a third of the loader's first epoch (benchmarks/input_pipeline.py).
  Only the features these builders write are handled — ``ClassLabel``,
  ``Text`` and 1-D ``Tensor``s stored as raw bytes (``Encoding.BYTES``) —
  anything else raises ``TypeError`` (read such a build with
  ``as_data_source``). Picklable, so grain worker processes can read it.
  """

  def __init__(self, builder: tfds.core.DatasetBuilder, split: str):
    plan = []
    for name, feature in builder.info.features.items():
      # ClassLabel and Text subclass Tensor: test them first.
      if isinstance(feature, tfds.features.ClassLabel):
        plan.append((name, int))
      elif isinstance(feature, tfds.features.Text):
        plan.append((name, bytes))
      elif (isinstance(feature, tfds.features.Tensor)
            and len(feature.shape) == 1
            and feature.to_json_content().encoding == "bytes"):
        plan.append((name, np.dtype(feature.np_dtype)))
      else:
        raise TypeError(
            f"ExampleSource reads ClassLabel, Text and raw-bytes 1-D Tensor "
            f"features; {builder.name}'s {name!r} is {feature!r}. Read it "
            "with builder.as_data_source(split=...) instead.")
    self._plan = tuple(plan)
    self._source = builder.as_data_source(
        split=split, deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES)

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> dict[str, Any]:
    values = tf_example_pb2.Example.FromString(
        self._source[int(index)]).features.feature
    record = {}
    for name, kind in self._plan:
      if kind is int:
        record[name] = int(values[name].int64_list.value[0])
      elif kind is bytes:
        record[name] = values[name].bytes_list.value[0]
      else:
        record[name] = np.frombuffer(values[name].bytes_list.value[0], kind)
    return record


class Records:
  """A split of a prepared builder as cljax records, optionally a subset.

  ``records[i]`` is ``{"audio", "label", "utt_id", <text fields>}`` with the
  text fields decoded to ``str`` (TFDS returns bytes); the stored model input
  (``INPUT_FEATURE``, e.g. an image builder's ``image``) is handed over as
  ``"audio"``, the field the loop moves. Picklable, so grain worker
  processes can read it.
  """

  def __init__(self, builder: tfds.core.DatasetBuilder, split: str,
               indices: Sequence[int] | None = None):
    self._source = ExampleSource(builder, split)
    self._input = getattr(builder, "INPUT_FEATURE", "audio")
    self.split = split
    self.builder_dir = str(builder.data_dir)
    self._indices = (None if indices is None
                     else np.asarray(indices, np.int64))

  def __len__(self) -> int:
    return len(self._source) if self._indices is None else len(self._indices)

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = int(index)
    if self._indices is not None:
      index = int(self._indices[index])
    record = dict(self._source[index])
    for name, value in record.items():
      if isinstance(value, bytes):
        record[name] = value.decode("utf-8")
    record["label"] = int(record["label"])
    if self._input != "audio":
      record["audio"] = record.pop(self._input)
    return record

  def subset(self, indices: Iterable[int]) -> Records:
    """The records at ``indices`` (positions in this view)."""
    indices = np.asarray(list(indices), np.int64)
    view = object.__new__(Records)
    view.__dict__.update(self.__dict__)
    view._indices = (indices if self._indices is None
                     else self._indices[indices])
    return view

  def field_values(self, name: str) -> list[Any]:
    """``[self[i][name] for i in range(len(self))]``, cached on disk.

    Streams select records by metadata (system, task, label); reading every
    record decodes its audio too, so the full split's column is cached in
    the builder's folder as JSON the first time.
    """
    path = os.path.join(self.builder_dir, f"cljax_column_{self.split}_"
                        f"{name}.json")
    if os.path.exists(path):
      with open(path) as f:
        column = json.load(f)
    else:
      full = Records.__new__(Records)
      full.__dict__.update(self.__dict__)
      full._indices = None
      column = [full[i][name] for i in range(len(full))]
      tmp = f"{path}.tmp{os.getpid()}"
      try:
        with open(tmp, "w") as f:
          json.dump(column, f)
        os.replace(tmp, path)
      except OSError:  # A read-only shared cache: recompute next time.
        pass
    if self._indices is None:
      return column
    return [column[i] for i in self._indices]


def seeded_split(records: Records, test_fraction: float, seed: int,
                 by: str = "random",
                 field: str = "speaker") -> tuple[list[int], list[int]]:
  """Train/test positions for a split that has no predefined partition.

  Deterministic in ``seed`` and independent of storage order (records are
  ordered by ``utt_id`` first). ``by="random"`` holds out ``test_fraction``
  of each class; ``by="speaker"`` holds out a ``test_fraction`` of the
  values of ``field`` (speaker-disjoint train and test).

  Returns:
    ``(train_positions, test_positions)``, each sorted.
  """
  if not 0 < test_fraction < 1:
    raise ValueError(f"config.data.stream.test_fraction={test_fraction} must "
                     "lie strictly between 0 and 1.")
  utt_ids = records.field_values("utt_id")
  labels = records.field_values("label")
  order = sorted(range(len(utt_ids)), key=lambda i: utt_ids[i])
  rng = np.random.default_rng(seed)
  test: list[int] = []
  if by == "random":
    for label in sorted(set(labels)):
      members = [i for i in order if labels[i] == label]
      count = int(round(test_fraction * len(members)))
      count = min(max(count, 1), len(members) - 1) if len(members) > 1 else 0
      test.extend(np.asarray(members)[rng.permutation(len(members))[:count]]
                  .tolist())
  elif by == "speaker":
    groups = records.field_values(field)
    values = sorted(set(groups))
    if len(values) < 2:
      raise ValueError(f"Cannot split speaker-disjoint: {records.split!r} has "
                       f"{len(values)} distinct {field!r}; use "
                       "config.data.stream.split_by='random'.")
    count = min(max(int(round(test_fraction * len(values))), 1),
                len(values) - 1)
    held = {values[i] for i in rng.permutation(len(values))[:count]}
    test = [i for i in order if groups[i] in held]
  else:
    raise ValueError(f"config.data.stream.split_by={by!r} is unknown; use "
                     "'random' or 'speaker'.")
  test_set = set(test)
  train = sorted(i for i in range(len(utt_ids)) if i not in test_set)
  return train, sorted(test_set)
