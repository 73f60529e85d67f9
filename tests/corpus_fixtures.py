"""Tiny corpora in the real on-disk formats, written by the tests themselves.

Every clip is short int16 noise whose content is a function of its id, so a
test can check that the audio read back is the file's own.
"""

from __future__ import annotations

import os
import zlib

import numpy as np
import soundfile

RATE = 16000


def clip(utt_id: str, length: int | None = None) -> np.ndarray:
  """Deterministic int16 samples for ``utt_id`` (length 800-1599 default)."""
  rng = np.random.default_rng(zlib.crc32(utt_id.encode()))
  n = length or int(800 + zlib.crc32(utt_id.encode()) % 800)
  return rng.integers(-12000, 12000, n).astype(np.int16)


def write_audio(path: str, utt_id: str, rate: int = RATE) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  soundfile.write(path, clip(utt_id), rate, subtype="PCM_16")


# split -> [(speaker, utt_id, system, key)]
LA19_LINES = {
    "train": [("LA_0079", "LA_T_1000001", "-", "bonafide"),
              ("LA_0080", "LA_T_1000002", "-", "bonafide"),
              ("LA_0079", "LA_T_1000003", "A01", "spoof"),
              ("LA_0080", "LA_T_1000004", "A02", "spoof"),
              ("LA_0079", "LA_T_1000005", "A03", "spoof"),
              ("LA_0080", "LA_T_1000006", "A04", "spoof")],
    "dev": [("LA_0069", "LA_D_2000001", "-", "bonafide"),
            ("LA_0069", "LA_D_2000002", "A01", "spoof"),
            ("LA_0070", "LA_D_2000003", "A02", "spoof"),
            ("LA_0070", "LA_D_2000004", "A03", "spoof")],
    "eval": [("LA_0039", f"LA_E_300000{i}", "-", "bonafide")
             for i in range(4)] +
            [("LA_0040", f"LA_E_310000{i}", "A07", "spoof") for i in range(4)]
            + [("LA_0041", f"LA_E_320000{i}", "A08", "spoof")
               for i in range(4)],
}
LA19_PROTOCOLS = {"train": "ASVspoof2019.LA.cm.train.trn.txt",
                  "dev": "ASVspoof2019.LA.cm.dev.trl.txt",
                  "eval": "ASVspoof2019.LA.cm.eval.trl.txt"}


def protocol_line(speaker, utt_id, system, key) -> str:
  return f"{speaker} {utt_id} - {system} {key}\n"


def write_la19(root: str, lines=None, extra_lines=None) -> str:
  """An ASVspoof 2019 LA copy; ``extra_lines[split]`` appended raw."""
  lines = lines or LA19_LINES
  protocols = os.path.join(root, "ASVspoof2019_LA_cm_protocols")
  os.makedirs(protocols, exist_ok=True)
  for split, rows in lines.items():
    flac_dir = os.path.join(root, f"ASVspoof2019_LA_{split}", "flac")
    os.makedirs(flac_dir, exist_ok=True)
    with open(os.path.join(protocols, LA19_PROTOCOLS[split]), "w") as f:
      for row in rows:
        write_audio(os.path.join(flac_dir, row[1] + ".flac"), row[1])
        f.write(protocol_line(*row))
      for raw in (extra_lines or {}).get(split, []):
        f.write(raw)
  return root


# (speaker, trial, codec, source, attack, key, subset)
DF21_ROWS = (
    [(f"LA_002{3 + i % 2}", f"DF_E_200000{i}", "nocodec", "asvspoof", "-",
      "bonafide", "eval") for i in range(4)] +
    [(f"LA_002{3 + i % 2}", f"DF_E_210000{i}", "low_mp3", "vcc2018", "A14", "spoof",
      "eval") for i in range(4)] +
    [("LA_0025", "DF_E_2200000", "high_m4a", "vcc2020", "A15", "spoof",
      "progress"),
     ("LA_0025", "DF_E_2200001", "nocodec", "asvspoof", "-", "bonafide",
      "progress")])


def df21_line(speaker, trial, codec, source, attack, key, subset) -> str:
  return (f"{speaker} {trial} {codec} {source} {attack} {key} notrim {subset} "
          "traditional_vocoder - - - -\n")


def write_df21(root: str, rows=DF21_ROWS) -> str:
  flac_dir = os.path.join(root, "ASVspoof2021_DF_eval", "flac")
  keys = os.path.join(root, "keys", "DF", "CM")
  os.makedirs(keys, exist_ok=True)
  with open(os.path.join(keys, "trial_metadata.txt"), "w") as f:
    for row in rows:
      write_audio(os.path.join(flac_dir, row[1] + ".flac"), row[1])
      f.write(df21_line(*row))
  return root


# (file, speaker, label)
ITW_ROWS = ([(f"{i}.wav", "Alec Guinness" if i % 2 else "Ada Lovelace",
              "spoof" if i < 4 else "bona-fide") for i in range(8)])


def write_itw(root: str, rows=ITW_ROWS) -> str:
  os.makedirs(root, exist_ok=True)
  with open(os.path.join(root, "meta.csv"), "w") as f:
    f.write("file,speaker,label\n")
    for name, speaker, label in rows:
      write_audio(os.path.join(root, name), name)
      f.write(f"{name},{speaker},{label}\n")
  return root
