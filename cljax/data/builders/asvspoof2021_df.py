"""ASVspoof 2021 DF eval over a user's copy, with the keys' metadata.

Layout of the copy (``manual_dir``: the eval parts unpacked into one folder
and the keys package ``DF-keys-full.tar.gz`` unpacked beside them)::

  <manual_dir>/ASVspoof2021_DF_eval/flac/DF_E_2000011.flac ...
  <manual_dir>/keys/DF/CM/trial_metadata.txt

``trial_metadata.txt`` has 13 space-separated columns::

  LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -

speaker, trial id, codec (``nocodec``, ``low_mp3``, ...), source corpus
(``asvspoof``, ``vcc2018``, ``vcc2020``), attack (``-`` for bona fide), key
(``bonafide``/``spoof``), trim, subset (``progress``/``eval``/hidden), vocoder
type and four unused ``-``. The official pooled EER uses the ``eval`` subset
(533,928 trials); ``prepare(..., subsets=("eval",))`` builds only that.

One TFDS split, ``eval``. Records: ``audio`` int16 at 16 kHz, ``label``,
``utt_id``, ``speaker``, ``codec``, ``source``, ``attack``, ``subset``,
``vocoder``.
"""

from __future__ import annotations

import os

import tensorflow_datasets as tfds

from cljax.data.builders import _corpus

NUM_COLUMNS = 13
LAYOUT = """\
  <manual_dir>/ASVspoof2021_DF_eval/flac/*.flac
  <manual_dir>/keys/DF/CM/trial_metadata.txt
  (13 columns: SPEAKER TRIAL CODEC SOURCE ATTACK KEY TRIM SUBSET VOCODER - - - -)"""


def keys_path(manual_dir: str) -> str:
  return os.path.join(manual_dir, "keys", "DF", "CM", "trial_metadata.txt")


def parse_keys(path: str, flac_dir: str, bad: _corpus.BadInput,
               subsets: tuple[str, ...]) -> list[_corpus.Entry]:
  """Key lines -> entries, keeping the ``subsets`` (all if empty)."""
  entries = []
  for where, columns, text in _corpus.protocol_lines(path):
    try:
      if len(columns) != NUM_COLUMNS:
        raise _corpus.CorpusError(
            f"{where}: expected {NUM_COLUMNS} columns 'SPEAKER TRIAL CODEC "
            f"SOURCE ATTACK KEY TRIM SUBSET VOCODER - - - -', got "
            f"{len(columns)}: {text!r}. Use the official "
            "DF-keys-full trial_metadata.txt.")
      speaker, trial, codec, source, attack, key, _, subset, vocoder = (
          columns[:9])
      if subsets and subset not in subsets:
        continue
      label = _corpus.asvspoof_label(where, text, key, attack, "attack",
                                     "an attack id")
      audio_path = os.path.join(flac_dir, trial + ".flac")
      _corpus.require_file(
          where, trial, audio_path,
          "Unpack every ASVspoof2021_DF_eval part into the same folder "
          "(config.data.stream.manual_dir) or set "
          "config.data.stream.on_bad_file='skip'.")
    except _corpus.CorpusError as error:
      bad("eval", error)
      continue
    entries.append(_corpus.Entry(
        key=trial, path=audio_path, label=label, where=where,
        fields={"speaker": speaker, "codec": codec, "source": source,
                "attack": attack, "subset": subset, "vocoder": vocoder}))
  return entries


class Asvspoof2021Df(_corpus.CorpusBuilder):
  """ASVspoof 2021 DF eval from ``manual_dir``.

  Options:
    subsets: key subsets to keep (``("eval",)`` for the official pooled
      EER); empty keeps every line.
    keys_file: path of ``trial_metadata.txt`` if not at
      ``<manual_dir>/keys/DF/CM/trial_metadata.txt``.
  """

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.1.0": _corpus.BYTES_AUDIO_NOTE}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Download ASVspoof2021_DF_eval_part0{0..3}.tar.gz and DF-keys-full.tar.gz "
      "(https://www.asvspoof.org/index2021.html), unpack them into one folder "
      "and pass it as manual_dir. Layout:\n" + LAYOUT)
  TEXT_FIELDS = ("speaker", "codec", "source", "attack", "subset", "vocoder")

  def list_entries(self, manual_dir, bad):
    path = self.options.get("keys_file") or keys_path(manual_dir)
    if not os.path.isfile(path):
      raise _corpus.CorpusError(
          f"ASVspoof 2021 DF: keys file {path} not found (config.data.stream."
          f"manual_dir={manual_dir!r}). Expected layout:\n{LAYOUT}")
    flac_dir = os.path.join(manual_dir, "ASVspoof2021_DF_eval", "flac")
    if not os.path.isdir(flac_dir):
      raise _corpus.CorpusError(
          f"ASVspoof 2021 DF: audio folder {flac_dir} not found (config.data."
          f"stream.manual_dir={manual_dir!r}). Expected layout:\n{LAYOUT}")
    subsets = tuple(self.options.get("subsets", ()))
    entries = parse_keys(path, flac_dir, bad, subsets)
    if not entries and subsets:
      raise _corpus.CorpusError(
          f"ASVspoof 2021 DF: no line of {path} has a subset in {subsets}; "
          "check config.data.stream.df21_subsets (the key file's 8th column).")
    return {"eval": entries}
