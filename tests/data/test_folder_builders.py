"""The generic multi-task builder (folders or CSV manifest) and its stream."""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest

from corpus_fixtures import clip, write_audio
from cljax.data import corpus_streams, loader
from cljax.data.builders import _corpus
from cljax.data.builders.audio_folder import AudioFolder

# task -> split -> class -> file names
LAYOUT = {
    "gan": {"train": {"bonafide": ["b0.wav", "b1.wav"],
                      "spoof": ["s0.flac", "s1.flac", "s2.flac"]},
            "dev": {"bonafide": ["b2.wav"], "spoof": ["s3.wav"]},
            "test": {"bonafide": ["b3.wav"], "spoof": ["s4.wav"]}},
    "tts": {"train": {"bonafide": ["b0.wav"], "spoof": ["s0.wav"]},
            "test": {"bonafide": ["b1.flac"], "spoof": ["s1.flac"]}},
}


def write_folders(root, layout=LAYOUT) -> str:
  for task, splits in layout.items():
    for split, classes in splits.items():
      for class_name, names in classes.items():
        os.makedirs(os.path.join(root, task, split, class_name),
                    exist_ok=True)
        for name in names:
          relative = f"{task}/{split}/{class_name}/{name}"
          write_audio(os.path.join(root, relative), relative)
  return str(root)


def write_manifest(root, rows) -> str:
  """rows: (path, label, task, system, split); audio written for each."""
  os.makedirs(root, exist_ok=True)
  path = os.path.join(root, "manifest.csv")
  with open(path, "w") as f:
    f.write("path,label,task,system,split\n")
    for row in rows:
      write_audio(os.path.join(root, row[0]), row[0])
      f.write(",".join(row) + "\n")
  return path


MANIFEST_ROWS = [
    ("a/1.flac", "bonafide", "vocoders", "-", "train"),
    ("a/2.flac", "spoof", "vocoders", "hifigan", "train"),
    ("a/3.flac", "bona-fide", "vocoders", "-", "test"),
    ("a/4.flac", "spoof", "vocoders", "melgan", "test"),
    ("b/1.wav", "real", "tts", "-", "train"),
    ("b/2.wav", "fake", "tts", "vits", "train"),
    ("b/3.wav", "0", "tts", "-", "test"),
    ("b/4.wav", "1", "tts", "vits", "test"),
]


def _all(records):
  return {r["utt_id"]: r for r in (records[i] for i in range(len(records)))}


def test_folder_stream_tasks_splits_labels_audio(tmp_path):
  root = write_folders(tmp_path / "set")
  stream = corpus_streams.audio_folder(manual_dir=root,
                                       data_dir=str(tmp_path / "c"))
  assert stream.task_names == ["gan", "tts"]
  gan, tts = stream.tasks
  assert sorted(gan.splits) == ["dev", "test", "train", "val"]
  assert sorted(tts.splits) == ["test", "train"]
  for task in stream.tasks:
    for split, classes in LAYOUT[task.name].items():
      records = _all(task.split(split))
      expected = {f"{task.name}/{split}/{c}/{n}": int(c == "spoof")
                  for c, names in classes.items() for n in names}
      assert {u: r["label"] for u, r in records.items()} == expected
      for utt_id, record in records.items():
        assert record["task"] == task.name
        np.testing.assert_array_equal(record["audio"], clip(utt_id))
  assert gan.metadata["counts"]["train"] == {"bonafide": 2, "spoof": 3}
  # The corpus builders store audio as raw bytes (fast to read), in the
  # version folder that introduced it (an older cache is not read).
  [features] = glob.glob(str(tmp_path / "c" / "audio_folder" / "*" /
                             str(AudioFolder.VERSION) / "features.json"))
  with open(features) as f:
    audio = json.load(f)["featuresDict"]["features"]["audio"]["tensor"]
  assert audio["encoding"] == "bytes" and audio["dtype"] == "int16"
  ordered = corpus_streams.audio_folder(
      manual_dir=root, tasks=("tts", "gan"), data_dir=str(tmp_path / "c"))
  assert ordered.task_names == ["tts", "gan"]
  batches = list(loader.eval_batches(ordered.tasks[0].split("test"),
                                     batch_size=4, window_length=300))
  assert len(batches) == 1 and batches[0]["mask"].tolist() == [
      True, True, False, False]
  assert sorted(batches[0]["label"][:2].tolist()) == [0, 1]


def test_manifest_stream(tmp_path):
  manifest = write_manifest(str(tmp_path / "m"), MANIFEST_ROWS)
  stream = corpus_streams.audio_folder(manifest=manifest,
                                       data_dir=str(tmp_path / "c"))
  assert stream.task_names == ["tts", "vocoders"]
  records = _all(stream.tasks[1].split("test"))
  assert {u: (r["label"], r["system"]) for u, r in records.items()} == {
      "a/3.flac": (0, "-"), "a/4.flac": (1, "melgan")}
  np.testing.assert_array_equal(records["a/4.flac"]["audio"],
                                clip("a/4.flac"))


@pytest.mark.parametrize("mutate, match", [
    (lambda r: os.makedirs(os.path.join(r, "gan", "test", "real")),
     r"gan/test/real: unexpected entry.*\['bonafide', 'spoof'\]"),
    (lambda r: [os.remove(os.path.join(r, "tts", "train", "spoof", "s0.wav"))],
     r"tts/train/spoof: empty class folder"),
    (lambda r: os.makedirs(os.path.join(r, "tts", "valid")),
     r"tts/valid: unexpected entry in task folder 'tts'"),
])
def test_folder_layout_errors_name_the_folder(tmp_path, mutate, match):
  root = write_folders(tmp_path / "set")
  mutate(root)
  with pytest.raises(_corpus.CorpusError, match=match):
    _corpus.prepare(AudioFolder, root, manifest="",
                    data_dir=str(tmp_path / "c"))


def test_non_audio_file_errors_or_is_skipped_and_reported(tmp_path, capsys):
  root = write_folders(tmp_path / "set")
  notes = os.path.join(root, "gan", "train", "spoof", "notes.txt")
  with open(notes, "w") as f:
    f.write("hello")
  with pytest.raises(_corpus.CorpusError, match=r"notes\.txt: not an audio"):
    _corpus.prepare(AudioFolder, root, manifest="",
                    data_dir=str(tmp_path / "c"))
  stream = corpus_streams.audio_folder(manual_dir=root, on_bad_file="skip",
                                       data_dir=str(tmp_path / "c"))
  assert "SKIPPED 1 bad file(s) in split 'train'" in capsys.readouterr().out
  assert len(stream.tasks[0].split("train")) == 5


@pytest.mark.parametrize("row, match", [
    (("a/9.flac", "spoof", "vocoders", "x", "train"),
     r"manifest\.csv:10 names 'a/9\.flac' but .* does not exist"),
    (("a/1.flac", "maybe", "vocoders", "x", "train"),
     r"manifest\.csv:10: unknown label 'maybe'"),
    (("a/1.flac", "spoof", "vocoders", "x", "validation"),
     r"manifest\.csv:10: unknown split 'validation'"),
])
def test_manifest_bad_rows_name_the_line(tmp_path, row, match):
  manifest = write_manifest(str(tmp_path / "m"), MANIFEST_ROWS)
  with open(manifest, "a") as f:
    f.write(",".join(row) + "\n")
  with pytest.raises(_corpus.CorpusError, match=match):
    corpus_streams.audio_folder(manifest=manifest,
                                data_dir=str(tmp_path / "c"))


def test_stream_level_errors_name_the_field(tmp_path):
  manifest = write_manifest(str(tmp_path / "m"), [
      r for r in MANIFEST_ROWS if not (r[2] == "tts" and r[4] == "test")])
  with pytest.raises(ValueError, match=r"Task 'tts' has no 'test' split"):
    corpus_streams.audio_folder(manifest=manifest,
                                data_dir=str(tmp_path / "c"))
  root = write_folders(tmp_path / "set")
  with pytest.raises(ValueError, match=r"config\.data\.stream\.tasks names "
                     r"'vc'; the corpus has the tasks \['gan', 'tts'\]"):
    corpus_streams.audio_folder(manual_dir=root, tasks=("vc",),
                                data_dir=str(tmp_path / "c"))
  only_spoof = write_manifest(str(tmp_path / "s"), [
      ("x/1.wav", "spoof", "t", "-", "train"),
      ("x/2.wav", "spoof", "t", "-", "test")])
  with pytest.raises(_corpus.CorpusError, match=r"has no bonafide records"):
    corpus_streams.audio_folder(manifest=only_spoof,
                                data_dir=str(tmp_path / "c"))


def test_builds_go_under_the_data_folder(tmp_path, monkeypatch):
  root = write_folders(tmp_path / "set")
  monkeypatch.setenv("CLJAX_DATA_DIR", str(tmp_path / "env"))
  builder = _corpus.prepare(AudioFolder, root, manifest="")
  assert str(builder.data_dir).startswith(str(tmp_path / "env" /
                                              "audio_folder"))
