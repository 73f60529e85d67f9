"""Any multi-task audio deepfake set, as folders or as a CSV manifest.

Folder layout (EVDA-style; ``dev`` optional)::

  <root>/<task>/train/bonafide/*.wav|flac
  <root>/<task>/train/spoof/*.wav|flac
  <root>/<task>/dev/{bonafide,spoof}/...
  <root>/<task>/test/{bonafide,spoof}/...

CSV manifest (``manifest=<file>.csv``; a header naming the five columns in
any order; relative paths are relative to the CSV's folder)::

  path,label,task,system,split
  vocoders/a/0001.flac,bonafide,vocoders,-,train
  vocoders/a/0002.flac,spoof,vocoders,hifigan,test

``label`` is ``bonafide`` (also ``bona-fide``, ``real``, ``0``) or ``spoof``
(also ``fake``, ``1``); ``split`` is ``train``, ``dev`` or ``test``.

TFDS splits ``train``/``dev``/``test`` hold every task; each record carries
``task`` and ``system`` (``-`` for bona fide; the folder layout stores an
empty system for spoofs), and ``utt_id`` is the path relative to the root.

Checked before decoding: unknown task/split/class folders, an empty class
folder, files that are not audio, a manifest row naming a missing file or an
unknown label/split, and a task split without both classes.
"""

from __future__ import annotations

import collections
import csv
import os

import tensorflow_datasets as tfds

from cljax.data.builders import _corpus

SPLITS = ("train", "dev", "test")
CLASS_DIRS = {"bonafide": 0, "spoof": 1}
LABELS = {"bonafide": 0, "bona-fide": 0, "real": 0, "0": 0,
          "spoof": 1, "fake": 1, "1": 1}
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")
MANIFEST_COLUMNS = ("path", "label", "task", "system", "split")
LAYOUT = """\
  <root>/<task>/{train,dev,test}/{bonafide,spoof}/*.wav|flac   (dev optional)
  or a CSV manifest with the header path,label,task,system,split"""


def list_folder(root: str, bad: _corpus.BadInput) -> list[tuple[str, _corpus.Entry]]:
  """``(split, entry)`` pairs of the folder layout, sorted by path."""
  tasks = [n for n in _corpus.visible_names(root)
           if os.path.isdir(os.path.join(root, n))]
  if not tasks:
    raise _corpus.CorpusError(
        f"{root} has no task folders. Expected layout:\n{LAYOUT}")
  pairs = []
  for task in tasks:
    task_dir = os.path.join(root, task)
    for split in _corpus.visible_names(task_dir):
      split_dir = os.path.join(task_dir, split)
      if split not in SPLITS or not os.path.isdir(split_dir):
        raise _corpus.CorpusError(
            f"{split_dir}: unexpected entry in task folder {task!r}; a task "
            f"folder holds only the split folders {list(SPLITS)}. Move it "
            f"out. Expected layout:\n{LAYOUT}")
      for class_name in _corpus.visible_names(split_dir):
        class_dir = os.path.join(split_dir, class_name)
        if class_name not in CLASS_DIRS or not os.path.isdir(class_dir):
          raise _corpus.CorpusError(
              f"{class_dir}: unexpected entry; a split folder holds only "
              f"the class folders {list(CLASS_DIRS)}. Rename or move it. "
              f"Expected layout:\n{LAYOUT}")
        files = _corpus.visible_names(class_dir)
        if not files:
          raise _corpus.CorpusError(
              f"{class_dir}: empty class folder. Put the {class_name} files "
              f"of task {task!r} ({split}) there or remove the folder.")
        for name in files:
          path = os.path.join(class_dir, name)
          relative = os.path.relpath(path, root)
          if not name.lower().endswith(AUDIO_EXTENSIONS):
            bad(split, _corpus.CorpusError(
                f"{path}: not an audio file (extensions "
                f"{list(AUDIO_EXTENSIONS)}). Remove it from the class folder"))
            continue
          label = CLASS_DIRS[class_name]
          pairs.append((split, _corpus.Entry(
              key=relative, path=path, label=label, where=path,
              fields={"task": task, "system": "-" if label == 0 else ""})))
  return pairs


def list_manifest(path: str, bad: _corpus.BadInput
                  ) -> list[tuple[str, _corpus.Entry]]:
  """``(split, entry)`` pairs of a CSV manifest, in file order."""
  root = os.path.dirname(os.path.abspath(path))
  pairs = []
  with open(path, newline="") as f:
    reader = csv.reader(f)
    header = [h.strip() for h in next(reader, [])]
    if sorted(header) != sorted(MANIFEST_COLUMNS):
      raise _corpus.CorpusError(
          f"{path}:1: expected a header with the columns "
          f"{','.join(MANIFEST_COLUMNS)}, got {','.join(header)!r}.")
    column = {name: header.index(name) for name in MANIFEST_COLUMNS}
    for number, row in enumerate(reader, 2):
      if not row or not "".join(row).strip():
        continue
      where = f"{path}:{number}"
      try:
        if len(row) != len(header):
          raise _corpus.CorpusError(
              f"{where}: expected {len(header)} fields, got {row!r}. Fix the "
              "row (quote values that contain commas).")
        value = {name: row[i].strip() for name, i in column.items()}
        if value["label"].lower() not in LABELS:
          raise _corpus.CorpusError(
              f"{where}: unknown label {value['label']!r} (expected "
              "bonafide or spoof). Fix the row.")
        if value["split"] not in SPLITS:
          raise _corpus.CorpusError(
              f"{where}: unknown split {value['split']!r} (expected one of "
              f"{list(SPLITS)}). Fix the row.")
        if not value["task"]:
          raise _corpus.CorpusError(f"{where}: empty task. Fix the row.")
        audio_path = os.path.join(root, value["path"])
        if not os.path.isfile(audio_path):
          raise _corpus.CorpusError(
              f"{where} names {value['path']!r} but {audio_path} does not "
              "exist. Fix the path (relative to the manifest's folder) or "
              "remove the row.")
      except _corpus.CorpusError as error:
        bad(row[column["split"]].strip() if len(row) == len(header)
            else "?", error)
        continue
      label = LABELS[value["label"].lower()]
      pairs.append((value["split"], _corpus.Entry(
          key=value["path"], path=audio_path, label=label, where=where,
          fields={"task": value["task"], "system": value["system"]})))
  return pairs


class AudioFolder(_corpus.CorpusBuilder):
  """A multi-task set from folders (``manual_dir``) or a CSV manifest.

  Options:
    manifest: a CSV manifest's path; empty reads the folder layout of
      ``manual_dir``.
  """

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.1.0": _corpus.BYTES_AUDIO_NOTE}
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Lay the corpus out as:\n" + LAYOUT
  TEXT_FIELDS = ("task", "system")

  def list_entries(self, manual_dir, bad):
    manifest = self.options.get("manifest", "")
    if manifest:
      if not os.path.isfile(manifest):
        raise _corpus.CorpusError(
            f"config.data.stream.manifest={manifest!r} is not a file. "
            f"Expected:\n{LAYOUT}")
      pairs = list_manifest(manifest, bad)
      source = manifest
    else:
      pairs = list_folder(manual_dir, bad)
      source = manual_dir
    by_split = collections.defaultdict(list)
    by_task_split = collections.defaultdict(list)
    for split, entry in pairs:
      by_split[split].append(entry)
      by_task_split[(entry.fields["task"], split)].append(entry)
    if not by_split:
      raise _corpus.CorpusError(f"{source}: no records. Expected:\n{LAYOUT}")
    for (task, split), entries in sorted(by_task_split.items()):
      _corpus.check_entries(entries, split, f"{source} task {task!r}", bad)
    return dict(by_split)
