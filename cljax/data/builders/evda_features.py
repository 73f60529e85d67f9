"""EVDA's precomputed features (Zhang, Yi & Tao 2024) over a user's copy.

The EVDA benchmark (github.com/Cecile-hi/Evolving-FAD-CL-Benchmark) trains
on self-supervised (wav2vec 2.0 XLS-R) features it extracts once: one
``.npy`` array of ``T x 1024`` frame features per utterance, which its
loader (``load_dataset.py``) mean-pools over time to a 1024-d vector.
Its ``parse_data_path.py`` reads the folders::

  <root>/train_<feature>/<task>/<real|fake>/<utt>.npy   (e.g. train_fadcl_wav2vec)
  <root>/test_<feature>/<task>/<real|fake>/<utt>.npy

with numeric task folders ``1`` .. ``8`` (a folder ``0``, pre-training data,
is skipped) and writes file lists ``data_cache/data_{train,test}_path.txt``::

  file class_index timestamp
  /abs/path/train_fadcl_wav2vec/3/fake/x.npy 1 3

(a header line, then path, class index — ``real`` 0, ``fake`` 1 — and the
1-based task). This builder reads either: the file lists when
``<root>/data_cache/data_train_path.txt`` exists (or ``file_lists`` names
their folder; paths that do not exist as written are looked up under
``root`` by their last four components, since the lists hold the authors'
absolute paths), else the folders.

TFDS splits ``train`` and ``test``; records ``audio`` = the pooled float32
``[feature_dim]`` vector, ``label``, ``utt_id`` (path relative to
``root``), ``task`` (the folder name, e.g. ``"3"``).
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from cljax.data import audio_io
from cljax.data.builders import _corpus

CLASS_DIRS = {"real": 0, "fake": 1}
SPLITS = ("train", "test")
LIST_HEADER = ("file", "class_index", "timestamp")
LAYOUT = """\
  <root>/train_<feature>/<task 1..8>/{real,fake}/*.npy   (T x 1024 float arrays)
  <root>/test_<feature>/<task 1..8>/{real,fake}/*.npy
  optional file lists <root>/data_cache/data_{train,test}_path.txt
  ('file class_index timestamp' header, then 'PATH 0|1 TASK' lines)"""


def _resolve(path: str, root: str) -> str | None:
  """``path`` if it exists, else the file with its last 4 parts in ``root``."""
  if os.path.isabs(path) and os.path.isfile(path):
    return path
  candidate = os.path.join(root, path)
  if os.path.isfile(candidate):
    return candidate
  parts = path.replace("\\", "/").rstrip("/").split("/")
  for depth in (4, 3):
    candidate = os.path.join(root, *parts[-depth:])
    if len(parts) >= depth and os.path.isfile(candidate):
      return candidate
  return None


def parse_file_list(path: str, root: str, split: str, num_tasks: int,
                    bad: _corpus.BadInput) -> list[_corpus.Entry]:
  """An EVDA ``data_<split>_path.txt`` -> entries."""
  entries = []
  with open(path) as f:
    header = f.readline().split()
    if tuple(header) != LIST_HEADER:
      raise _corpus.CorpusError(
          f"{path}:1: expected the header 'file class_index timestamp', got "
          f"{' '.join(header)!r}. Use the file list EVDA's parse_data_path.py "
          "writes.")
    for number, line in enumerate(f, 2):
      if not line.strip():
        continue
      where = f"{path}:{number}"
      columns = line.split()
      try:
        if len(columns) != 3:
          raise _corpus.CorpusError(
              f"{where}: expected 'FILE CLASS_INDEX TIMESTAMP', got "
              f"{line.strip()!r}. Fix the line.")
        name, class_index, task = columns
        if class_index not in ("0", "1"):
          raise _corpus.CorpusError(
              f"{where}: unknown class index {class_index!r} (0 = real, "
              "1 = fake). Fix the line.")
        if not task.isdigit() or not 1 <= int(task) <= num_tasks:
          raise _corpus.CorpusError(
              f"{where}: task (timestamp) {task!r} is not in 1..{num_tasks} "
              "(config.data.stream.num_tasks). Fix the line or the setting.")
        feature_path = _resolve(name, root)
        if feature_path is None:
          raise _corpus.CorpusError(
              f"{where} names {name!r}, which exists neither as written nor "
              f"under {root} (by its last four path parts). Check "
              "config.data.stream.manual_dir.")
      except _corpus.CorpusError as error:
        bad(split, error)
        continue
      entries.append(_corpus.Entry(
          key=os.path.relpath(feature_path, root), path=feature_path,
          label=int(class_index), where=where, fields={"task": task}))
  return entries


def find_split_dirs(root: str, feature: str = "") -> dict[str, str]:
  """``{"train": <root>/train_<feature>, "test": ...}``; errors if ambiguous."""
  found = {}
  for split in SPLITS:
    names = sorted(n for n in os.listdir(root)
                   if os.path.isdir(os.path.join(root, n))
                   and (n == f"{split}_{feature}" if feature
                        else n.startswith(f"{split}_")))
    if len(names) != 1:
      raise _corpus.CorpusError(
          f"{root}: expected one '{split}_{feature or '*'}' folder, found "
          f"{names or 'none'}. "
          + ("Set config.data.stream.feature to the part after "
             f"'{split}_' to choose. " if len(names) > 1 else "")
          + f"Expected layout:\n{LAYOUT}")
    found[split] = os.path.join(root, names[0])
  return found


def list_folders(split_dir: str, root: str, split: str, num_tasks: int,
                 bad: _corpus.BadInput) -> list[_corpus.Entry]:
  """Entries of ``<split_dir>/<task>/<real|fake>/*.npy`` for tasks 1..N."""
  tasks = sorted((n for n in os.listdir(split_dir)
                  if os.path.isdir(os.path.join(split_dir, n))
                  and n.isdigit() and n != "0"), key=int)
  expected = [str(t) for t in range(1, num_tasks + 1)]
  if tasks[:num_tasks] != expected:
    raise _corpus.CorpusError(
        f"{split_dir}: task folders {tasks}, expected {expected} "
        "(config.data.stream.num_tasks). Expected layout:\n" + LAYOUT)
  entries = []
  for task in expected:
    for class_name, label in CLASS_DIRS.items():
      class_dir = os.path.join(split_dir, task, class_name)
      files = (_corpus.visible_names(class_dir)
               if os.path.isdir(class_dir) else [])
      if not files:
        raise _corpus.CorpusError(
            f"{class_dir}: missing or empty class folder (task {task}, "
            f"{split}). Expected layout:\n{LAYOUT}")
      for name in files:
        path = os.path.join(class_dir, name)
        if not name.endswith(".npy"):
          bad(split, _corpus.CorpusError(
              f"{path}: not a .npy feature file. Remove it"))
          continue
        entries.append(_corpus.Entry(
            key=os.path.relpath(path, root), path=path, label=label,
            where=path, fields={"task": task}))
  return entries


def load_pooled(path: str, feature_dim: int) -> np.ndarray:
  """Mean over time of a ``T x feature_dim`` array (as EVDA's loader)."""
  try:
    array = np.load(path, allow_pickle=False)
  except (OSError, ValueError, EOFError) as error:
    raise audio_io.AudioFileError(
        path, f"unreadable or truncated .npy ({error})",
        "Re-extract its features or remove it (or set config.data.stream."
        "on_bad_file='skip').") from error
  array = np.asarray(array)
  if array.ndim == 2 and array.shape[0] > 0 and array.shape[1] == feature_dim:
    pooled = array.astype(np.float64).mean(axis=0)
  elif array.ndim == 1 and array.shape[0] == feature_dim:
    pooled = array.astype(np.float64)
  else:
    raise audio_io.AudioFileError(
        path, f"features of shape {array.shape}, expected (T, {feature_dim}) "
        f"with T >= 1 or ({feature_dim},)",
        "Set config.data.stream.feature_dim to the features' width or "
        "re-extract the file.")
  if not np.all(np.isfinite(pooled)):
    raise audio_io.AudioFileError(path, "non-finite (NaN/inf) features",
                                  "Re-extract the file or remove it.")
  return pooled.astype(np.float32)


class EvdaFeatures(_corpus.CorpusBuilder):
  """EVDA's pooled SSL features from ``manual_dir``.

  Options:
    num_tasks: task folders 1..N (8 in EVDA).
    feature_dim: feature width (1024 for XLS-R / wav2vec 2.0 large).
    feature: the ``<feature>`` of ``train_<feature>`` when several exist.
    file_lists: folder of ``data_{train,test}_path.txt``; default
      ``<root>/data_cache`` if present, else the folders are scanned.
  """

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.1.0": _corpus.BYTES_AUDIO_NOTE}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Extract (or download) EVDA's features and pass their root as "
      "manual_dir. Layout:\n" + LAYOUT)
  TEXT_FIELDS = ("task",)
  DTYPE = np.float32

  def decode(self, entry):
    return load_pooled(entry.path, int(self.options.get("feature_dim", 1024)))

  def list_entries(self, manual_dir, bad):
    num_tasks = int(self.options.get("num_tasks", 8))
    lists = self.options.get("file_lists", "") or os.path.join(
        manual_dir, "data_cache")
    entries = {}
    if os.path.isfile(os.path.join(lists, "data_train_path.txt")):
      for split in SPLITS:
        path = os.path.join(lists, f"data_{split}_path.txt")
        if not os.path.isfile(path):
          raise _corpus.CorpusError(
              f"{path} not found next to data_train_path.txt (config.data."
              "stream.file_lists). EVDA writes both lists.")
        entries[split] = parse_file_list(path, manual_dir, split, num_tasks,
                                         bad)
    elif self.options.get("file_lists"):
      raise _corpus.CorpusError(
          f"config.data.stream.file_lists={lists!r} holds no "
          "data_train_path.txt.")
    else:
      split_dirs = find_split_dirs(manual_dir, self.options.get("feature", ""))
      for split, split_dir in split_dirs.items():
        entries[split] = list_folders(split_dir, manual_dir, split, num_tasks,
                                      bad)
    for split, split_entries in entries.items():
      for task in range(1, num_tasks + 1):
        _corpus.check_entries(
            [e for e in split_entries if e.fields["task"] == str(task)],
            split, f"EVDA features task {task}", bad)
    return entries
