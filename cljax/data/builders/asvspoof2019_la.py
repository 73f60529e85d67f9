"""ASVspoof 2019 LA over a user's copy: train/dev/eval with protocol fields.

Layout of the copy (``manual_dir``, as the official LA.zip unpacks)::

  <manual_dir>/ASVspoof2019_LA_train/flac/LA_T_1138215.flac ...
  <manual_dir>/ASVspoof2019_LA_dev/flac/LA_D_1047731.flac ...
  <manual_dir>/ASVspoof2019_LA_eval/flac/LA_E_2834763.flac ...
  <manual_dir>/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.train.trn.txt
                                           ASVspoof2019.LA.cm.dev.trl.txt
                                           ASVspoof2019.LA.cm.eval.trl.txt

Each protocol line has 5 space-separated columns::

  LA_0079 LA_T_1138215 - - bonafide
  LA_0079 LA_T_1271820 - A01 spoof

speaker, utterance id, an unused ``-``, the spoofing system (``-`` for bona
fide, ``A01``-``A19``) and the key. Records: ``audio`` int16 at 16 kHz,
``label`` (0 bonafide, 1 spoof), ``utt_id``, ``speaker``, ``system``.

Checked while listing (before decoding): the column count, the key, the
system id, that bona fide lines name no system and spoof lines one, that
each named flac exists, duplicate ids, and an empty split or class.
"""

from __future__ import annotations

import os

import tensorflow_datasets as tfds

from cljax.data.builders import _corpus

SPLITS = ("train", "dev", "eval")
PROTOCOLS = {
    "train": "ASVspoof2019.LA.cm.train.trn.txt",
    "dev": "ASVspoof2019.LA.cm.dev.trl.txt",
    "eval": "ASVspoof2019.LA.cm.eval.trl.txt",
}
SYSTEMS = tuple(f"A{i:02d}" for i in range(1, 20))

LAYOUT = """\
  <manual_dir>/ASVspoof2019_LA_{train,dev,eval}/flac/*.flac
  <manual_dir>/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{train.trn,dev.trl,eval.trl}.txt
  (protocol lines: SPEAKER UTT_ID - SYSTEM KEY, e.g. 'LA_0079 LA_T_1271820 - A01 spoof')"""


def protocol_path(manual_dir: str, split: str) -> str:
  return os.path.join(manual_dir, "ASVspoof2019_LA_cm_protocols",
                      PROTOCOLS[split])


def parse_protocol(path: str, flac_dir: str, bad: _corpus.BadInput,
                   split: str) -> list[_corpus.Entry]:
  """Protocol lines -> entries; a bad line raises or (skip mode) is noted."""
  entries = []
  for where, columns, text in _corpus.protocol_lines(path):
    try:
      if len(columns) != 5:
        raise _corpus.CorpusError(
            f"{where}: expected 5 columns 'SPEAKER UTT_ID - SYSTEM KEY', got "
            f"{len(columns)}: {text!r}. Fix the line or use the "
            "official protocol file.")
      speaker, utt_id, _, system, key = columns
      if system != "-" and system not in SYSTEMS:
        raise _corpus.CorpusError(
            f"{where}: unknown system id {system!r} (expected '-' or "
            f"A01-A19): {text!r}. Fix the line.")
      label = _corpus.asvspoof_label(where, text, key, system, "system",
                                     "a system id (A01-A19)")
      audio_path = os.path.join(flac_dir, utt_id + ".flac")
      _corpus.require_file(
          where, utt_id, audio_path,
          "Complete the copy (config.data.stream.manual_dir) or remove "
          "the line.")
    except _corpus.CorpusError as error:
      bad(split, error)
      continue
    entries.append(_corpus.Entry(
        key=utt_id, path=audio_path, label=label, where=where,
        fields={"speaker": speaker, "system": system}))
  return entries


class Asvspoof2019La(_corpus.CorpusBuilder):
  """ASVspoof 2019 LA (CM protocols) from ``manual_dir``.

  Options (``_corpus.prepare(Asvspoof2019La, manual_dir, splits=...)``):
    splits: which of train/dev/eval to build (default all three), e.g.
      ``("train", "dev")`` for a copy without the eval part.
  """

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.1.0": _corpus.BYTES_AUDIO_NOTE}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Download LA.zip from https://datashare.ed.ac.uk/handle/10283/3336, "
      "unzip it and pass the LA folder as manual_dir. Layout:\n" + LAYOUT)
  TEXT_FIELDS = ("speaker", "system")

  def list_entries(self, manual_dir, bad):
    splits = tuple(self.options.get("splits", SPLITS))
    for split in splits:
      if split not in SPLITS:
        raise _corpus.CorpusError(
            f"config.data.stream.splits names {split!r}; ASVspoof 2019 LA has "
            f"{list(SPLITS)}.")
    entries = {}
    for split in splits:
      path = protocol_path(manual_dir, split)
      if not os.path.isfile(path):
        raise _corpus.CorpusError(
            f"ASVspoof 2019 LA: protocol {path} not found (config.data."
            f"stream.manual_dir={manual_dir!r}). Expected layout:\n{LAYOUT}")
      flac_dir = os.path.join(manual_dir, f"ASVspoof2019_LA_{split}", "flac")
      if not os.path.isdir(flac_dir):
        raise _corpus.CorpusError(
            f"ASVspoof 2019 LA: audio folder {flac_dir} not found (config."
            f"data.stream.manual_dir={manual_dir!r}). Expected layout:\n"
            f"{LAYOUT}")
      entries[split] = parse_protocol(path, flac_dir, bad, split)
    return entries
