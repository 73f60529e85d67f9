"""In-the-Wild (Müller et al., 2022) over a user's copy.

Layout (``manual_dir``, as ``release_in_the_wild.zip`` unpacks)::

  <manual_dir>/meta.csv
  <manual_dir>/0.wav  1.wav  ...   (16 kHz)

``meta.csv`` has a header and the columns ``file,speaker,label`` with label
``spoof`` or ``bona-fide``::

  file,speaker,label
  0.wav,Alec Guinness,spoof

One TFDS split, ``test`` (the corpus has no partition; streams split it by a
seed). Records: ``audio`` int16, ``label``, ``utt_id`` (the file name),
``speaker``.
"""

from __future__ import annotations

import csv
import os

import tensorflow_datasets as tfds

from cljax.data.builders import _corpus

LABELS = {"bona-fide": 0, "spoof": 1}
COLUMNS = ("file", "speaker", "label")
LAYOUT = """\
  <manual_dir>/meta.csv   (header 'file,speaker,label'; label spoof or bona-fide)
  <manual_dir>/<file>     (the wav files meta.csv names)"""


def parse_meta(path: str, root: str,
               bad: _corpus.BadInput) -> list[_corpus.Entry]:
  """``meta.csv`` rows -> entries."""
  entries = []
  with open(path, newline="") as f:
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None or [h.strip() for h in header] != list(COLUMNS):
      raise _corpus.CorpusError(
          f"{path}:1: expected the header {','.join(COLUMNS)!r}, got "
          f"{header!r}. Use the corpus's own meta.csv.")
    for number, row in enumerate(reader, 2):
      if not row or not "".join(row).strip():
        continue
      where = f"{path}:{number}"
      try:
        if len(row) != 3:
          raise _corpus.CorpusError(
              f"{where}: expected 3 fields file,speaker,label, got {row!r}. "
              "Fix the row (quote names that contain commas).")
        name, speaker, label = (value.strip() for value in row)
        if label not in LABELS:
          raise _corpus.CorpusError(
              f"{where}: unknown label {label!r} (expected 'spoof' or "
              "'bona-fide'). Fix the row.")
        audio_path = os.path.join(root, name)
        _corpus.require_file(
            where, name, audio_path,
            "Complete the copy (config.data.stream.manual_dir) or remove "
            "the row.")
      except _corpus.CorpusError as error:
        bad("test", error)
        continue
      entries.append(_corpus.Entry(
          key=name, path=audio_path, label=LABELS[label], where=where,
          fields={"speaker": speaker}))
  return entries


class InTheWild(_corpus.CorpusBuilder):
  """In-the-Wild from ``manual_dir`` (``meta.csv`` + wav files)."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.1.0": _corpus.BYTES_AUDIO_NOTE}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Download release_in_the_wild.zip (https://deepfake-total.com/"
      "in_the_wild), unzip it and pass the folder holding meta.csv as "
      "manual_dir. Layout:\n" + LAYOUT)
  TEXT_FIELDS = ("speaker",)

  def list_entries(self, manual_dir, bad):
    path = os.path.join(manual_dir, "meta.csv")
    if not os.path.isfile(path):
      raise _corpus.CorpusError(
          f"In-the-Wild: {path} not found (config.data.stream.manual_dir="
          f"{manual_dir!r}). Expected layout:\n{LAYOUT}")
    return {"test": parse_meta(path, manual_dir, bad)}
