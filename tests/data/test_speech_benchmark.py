"""Tests of the speech benchmark builder, its stream, cache and fallback.

The builder runs on a fixture: a folder of eight G.722 takes of procedural
"speech" with a transcript file (plus a bracketed tone entry, which must be
dropped), built with two cheap families. Tests needing a missing package
skip with its name.
"""

from __future__ import annotations

import os
import pickle
import shutil
import types

import numpy as np
import pytest
import tensorflow_datasets as tfds

from cljax.data import speech_stream
from cljax.data.builders import _corpus
from cljax.data.builders import _speech_generators
from cljax.data.builders import _speech_sources
from cljax.data.builders import speech_benchmark

FAMILIES = ("lpc", "espeak")
TEXTS = ["Please enter your password.", "Thank you for calling.",
         "Goodbye.", "The number you dialed is busy.", "Press one for sales.",
         "All circuits are busy now.", "Your call is important to us.",
         "Please hold."]


def _skip_if_missing(families=FAMILIES):
  missing = _speech_generators.missing_requirements(families)
  if importlib_missing("G722"):
    missing.append("G722 (pip install g722==1.2.8)")
  if missing:
    pytest.skip("missing: " + "; ".join(missing))


def importlib_missing(name: str) -> bool:
  import importlib.util  # pylint: disable=g-import-not-at-top
  return importlib.util.find_spec(name) is None


@pytest.fixture(scope="module")
def fixture_corpus(tmp_path_factory):
  """(sounds_dir, transcripts): 8 G.722 takes + one non-speech entry."""
  _skip_if_missing()
  import G722  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("asterisk")
  sounds = root / "sounds"
  (sounds / "sub").mkdir(parents=True)
  rng = np.random.default_rng(0)
  lines = ["; fixture transcripts", "beep: [this is a simple beep tone]"]
  for i, text in enumerate(TEXTS):
    key = f"sub/p{i}" if i % 2 else f"p{i}"
    seconds = 0.8 + 0.2 * i
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 180 + 30 * np.sin(2 * np.pi * 2 * t)
    voiced = np.sign(np.sin(2 * np.pi * np.cumsum(f0) / 16000))
    audio = 0.2 * voiced * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
    audio += 0.01 * rng.standard_normal(len(t))
    pcm = np.round(audio * 32767).astype(np.int16)
    (sounds / f"{key}.g722").write_bytes(G722.G722(16000, 64000).encode(pcm))
    lines.append(f"{key}: {text}")
  (sounds / "beep.g722").write_bytes(
      G722.G722(16000, 64000).encode(np.zeros(1600, np.int16)))
  transcripts = root / "core-sounds-en.txt"
  transcripts.write_text("\n".join(lines) + "\n")
  return str(sounds), str(transcripts)


def _fixture_builder(corpus, data_dir, name="fixture"):
  sounds, transcripts = corpus
  config = speech_benchmark.SpeechBenchmarkConfig(
      name=name, families=FAMILIES, sounds_dir=sounds,
      transcripts=transcripts, seed=0)
  return speech_benchmark.SpeechBenchmark(
      data_dir=str(data_dir), config=config, file_format="array_record",
      num_workers=1)


@pytest.fixture(scope="module")
def built(fixture_corpus, tmp_path_factory):
  builder = _fixture_builder(fixture_corpus, tmp_path_factory.mktemp("data"))
  builder.download_and_prepare()
  return builder


def _split_prompts(builder, split):
  source = builder.as_data_source(split=split)
  return sorted(source[i]["prompt"].decode() for i in range(len(source)))


def test_split_prompts_partitions_deterministically():
  keys = [f"k{i}" for i in range(100)]
  parts = speech_benchmark.split_prompts(keys, seed=0)
  assert [len(parts[p]) for p in ("train", "val", "test")] == [60, 10, 30]
  assert sorted(sum(parts.values(), [])) == sorted(keys)
  assert parts == speech_benchmark.split_prompts(list(reversed(keys)), 0)
  assert parts != speech_benchmark.split_prompts(keys, seed=1)


def test_list_prompts_drops_non_speech_and_reads_subfolders(fixture_corpus):
  prompts = _speech_sources.list_prompts(*fixture_corpus)
  assert len(prompts) == len(TEXTS)
  assert "beep" not in {p.key for p in prompts}
  assert {p.key for p in prompts} >= {"p0", "sub/p1"}


def test_fixture_build_splits_labels_and_clips(built):
  parts = ("train", "val", "test")
  genuine = {p: _split_prompts(built, f"genuine_{p}") for p in parts}
  # No prompt in two splits; every prompt in one.
  assert sum(len(v) for v in genuine.values()) == len(TEXTS)
  assert len(set(sum(genuine.values(), []))) == len(TEXTS)
  for family in FAMILIES:
    for part in parts:
      # The same prompts (test prompts included) for every family.
      assert _split_prompts(built, f"{family}_{part}") == genuine[part]
  source = built.as_data_source(split="lpc_train")
  record = source[0]
  assert record["label"] == 1 and record["audio"].dtype == np.int16
  assert record["audio"].shape == (40000,)  # 2.5-s clips at 16 kHz.
  # Stored as raw bytes (2 per sample, plus a few short text fields); the
  # int64 protobuf list of builder <= 1.2.0 took ~230 kB per clip.
  assert 80000 < len(source.data_source[0]) < 81000
  assert (built.info.features["audio"].to_json_content().encoding
          == "bytes")
  assert built.as_data_source(split="genuine_train")[0]["label"] == 0


def test_example_source_reads_what_tfds_reads(built):
  # The stream's fast reader must return exactly TFDS's records.
  for split in ("genuine_train", "espeak_test"):
    reference = built.as_data_source(split=split)
    fast = _corpus.ExampleSource(built, split)
    assert len(fast) == len(reference) > 0
    for index in range(len(reference)):
      want, got = reference[index], fast[index]
      assert sorted(got) == sorted(want) == [
          "audio", "family", "label", "prompt", "utt_id"]
      assert got["audio"].dtype == want["audio"].dtype == np.int16
      np.testing.assert_array_equal(got["audio"], want["audio"])
      for name in ("family", "label", "prompt", "utt_id"):
        assert type(got[name]) is type(want[name])
        assert got[name] == want[name]
  again = pickle.loads(pickle.dumps(fast))  # grain workers unpickle it.
  np.testing.assert_array_equal(again[1]["audio"], reference[1]["audio"])


def test_example_source_refuses_features_it_cannot_read():
  # A protobuf-list Tensor (the encoding of builder <= 1.2.0) is not raw
  # bytes: reading it as such would give garbage, so it must raise.
  old = types.SimpleNamespace(name="old", info=types.SimpleNamespace(
      features=tfds.features.FeaturesDict({
          "audio": tfds.features.Tensor(shape=(None,), dtype=np.int16)})))
  with pytest.raises(TypeError, match="'audio'.*as_data_source"):
    _corpus.ExampleSource(old, "train")


def test_build_is_deterministic(built, fixture_corpus, tmp_path):
  again = _fixture_builder(fixture_corpus, tmp_path)
  again.download_and_prepare()
  for split in ("genuine_test", "espeak_test"):
    a = {r["utt_id"]: r["audio"] for r in built.as_data_source(split=split)}
    b = {r["utt_id"]: r["audio"] for r in again.as_data_source(split=split)}
    assert a.keys() == b.keys()
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])


def test_stream_shares_genuine_audio_across_tasks(built, fixture_corpus,
                                                  monkeypatch):
  monkeypatch.setattr(speech_stream, "make_builder",
                      lambda *a, **k: built)
  stream = speech_stream.speech_benchmark_stream(families=FAMILIES,
                                                 fallback=False)
  assert not stream.synthetic and stream.task_names == list(FAMILIES)
  tests = [task.split("test") for task in stream.tasks]
  genuine = [{r["utt_id"] for r in (s[i] for i in range(len(s)))
              if r["label"] == 0} for s in tests]
  assert genuine[0] == genuine[1] and genuine[0]
  record = tests[1][len(tests[1]) - 1]
  assert record["label"] == 1 and record["utt_id"].startswith("espeak/")
  assert isinstance(record["utt_id"], str)


def test_new_version_rebuilds_into_its_own_folder(built, fixture_corpus,
                                                  monkeypatch):
  old_dir = str(built.data_dir)
  assert speech_stream.is_built(built)
  monkeypatch.setattr(speech_benchmark.SpeechBenchmark, "VERSION",
                      speech_benchmark.tfds.core.Version("99.0.0"))
  newer = _fixture_builder(fixture_corpus, os.path.dirname(os.path.dirname(
      os.path.dirname(old_dir))))
  assert str(newer.data_dir) != old_dir and "99.0.0" in str(newer.data_dir)
  assert not speech_stream.is_built(newer)  # The old cache is not reused...
  newer.download_and_prepare()               # ...a new one is built.
  assert speech_stream.is_built(newer) and os.path.isdir(old_dir)
  shutil.rmtree(str(newer.data_dir))


def test_builder_goes_under_the_configured_data_dir(tmp_path):
  builder = speech_stream.make_builder(data_dir=str(tmp_path / "cfg"))
  assert str(builder.data_dir).startswith(str(tmp_path / "cfg"))


def test_fallback_is_synthetic_and_loud(monkeypatch, tmp_path, capsys):
  monkeypatch.setattr(speech_stream, "missing_packages",
                      lambda *a, **k: ["espeak-ng (apt-get install espeak-ng)"])
  stream = speech_stream.speech_benchmark_stream(data_dir=str(tmp_path))
  assert stream.synthetic and len(stream.tasks) == 7
  err = capsys.readouterr().err
  assert "FALLING BACK TO THE SYNTHETIC STREAM" in err and "espeak-ng" in err
  with pytest.raises(RuntimeError, match="espeak-ng"):
    speech_stream.speech_benchmark_stream(data_dir=str(tmp_path),
                                          fallback=False)


def test_missing_requirements_names_the_package(monkeypatch):
  monkeypatch.setattr(_speech_generators.shutil, "which", lambda name: None)
  missing = _speech_generators.missing_requirements(("espeak", "flite_slt"))
  assert missing == ["espeak-ng (apt-get install espeak-ng)",
                     "flite (apt-get install flite)"]
  with pytest.raises(ValueError, match="families"):
    _speech_generators.missing_requirements(("griffin_lim",))


def test_gpu_variant_crops_4_s_from_its_own_longer_clips(tmp_path):
  from cljax import presets  # pylint: disable=g-import-not-at-top
  config = presets.audio_experiment("gpu")
  stream = config.data.stream
  # The 4-s training crops, from clips long enough to move in.
  assert config.data.crop_seconds == 4.0
  assert stream.clip_seconds > config.data.crop_seconds
  builder = speech_stream.make_builder(stream.families, str(tmp_path),
                                       stream.seed, stream.clip_seconds)
  assert builder.builder_config.name != "default"  # Not the 2.5-s cache.
  assert builder.builder_config.clip_seconds == 4.5
