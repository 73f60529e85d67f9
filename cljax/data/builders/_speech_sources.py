"""Genuine speech of the embedded benchmark: Asterisk's English prompts.

Debian's ``asterisk-core-sounds-en-g722`` holds one female studio voice
reading the English Asterisk IVR prompts as raw G.722 (16 kHz, 64 kbit/s);
``asterisk-core-sounds-en`` holds their transcripts in
``core-sounds-en.txt.gz`` as ``key: text`` lines (``key`` is the file path
under ``sounds/en`` without the extension). Licence: CC-BY-SA-3.0 (Digium /
Allison Smith).

Prompts whose text is bracketed (``[ascending tones]``, ``<beep
ascending>``, ``(1 second of silence)``) are not speech and are dropped:
551 prompts remain, about 24 minutes.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import re

import numpy as np

SOUNDS_DIR = "/usr/share/asterisk/sounds/en"
TRANSCRIPTS = "/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
SAMPLE_RATE = 16000


@dataclasses.dataclass(frozen=True)
class Prompt:
  """One genuine utterance: ``key`` (e.g. ``"dictate/paused"``), its text and file."""

  key: str
  text: str
  path: str


def read_transcripts(path: str = TRANSCRIPTS) -> dict[str, str]:
  """``{key: text}`` from a ``key: text`` file (gzip if it ends in .gz)."""
  opener = gzip.open if path.endswith(".gz") else open
  transcripts = {}
  with opener(path, "rt", encoding="utf-8", errors="replace") as f:
    for line in f:
      line = line.strip()
      if not line or line.startswith(";") or ":" not in line:
        continue
      key, text = line.split(":", 1)
      transcripts[key.strip()] = text.strip()
  return transcripts


def _is_speech(text: str) -> bool:
  # Bracketed descriptions ("[ascending tones]", "<beep ascending>",
  # "(1 second of silence)") are tones, beeps and silences, not speech.
  return (bool(text) and text[0] not in "[<(" and
          re.search("[A-Za-z]", text) is not None)


def list_prompts(sounds_dir: str = SOUNDS_DIR,
                 transcripts: str = TRANSCRIPTS) -> list[Prompt]:
  """Every speech prompt with both a ``.g722`` file and a transcript, by key.

  Raises:
    FileNotFoundError: naming the missing folder or file and the Debian
      package that provides it.
  """
  if not os.path.isdir(sounds_dir):
    raise FileNotFoundError(
        f"{sounds_dir} not found: install asterisk-core-sounds-en-g722 "
        "(apt-get install asterisk-core-sounds-en-g722) or run "
        "launch/setup.sh as root.")
  if not os.path.isfile(transcripts):
    raise FileNotFoundError(
        f"{transcripts} not found: install asterisk-core-sounds-en.")
  texts = read_transcripts(transcripts)
  prompts = []
  for key, text in sorted(texts.items()):
    path = os.path.join(sounds_dir, key + ".g722")
    if _is_speech(text) and os.path.isfile(path):
      prompts.append(Prompt(key, text, path))
  return prompts


def decode_g722(path: str) -> np.ndarray:
  """A raw G.722 file (64 kbit/s) as float32 samples at 16 kHz in [-1, 1)."""
  import G722  # pylint: disable=g-import-not-at-top
  with open(path, "rb") as f:
    data = f.read()
  # One codec instance per file: G.722 is adaptive, its state must start fresh.
  codec = G722.G722(SAMPLE_RATE, 64000)
  return np.asarray(codec.decode(data), np.int16).astype(np.float32) / 32768.0


def tts_text(text: str) -> str:
  """Prompt text as a TTS engine should read it (keys spelled out)."""
  text = text.replace("#", " pound ").replace("*", " star ")
  text = re.sub(r"\[.*?\]", " ", text)  # "dot [.]": the symbol is not read.
  # Leading ellipses ("... letters of your party's name") make festival's
  # tokenizer produce an empty first utterance, and text2wave then fails.
  text = re.sub(r"^[\s.,;:!?-]+", "", text)
  text = re.sub(r"\s+", " ", text)
  return text.strip()
