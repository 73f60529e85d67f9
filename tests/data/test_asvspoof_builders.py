"""ASVspoof 2019 LA / 2021 DF / In-the-Wild builders and their streams."""

from __future__ import annotations

import collections
import json
import os

import numpy as np
import pytest

from corpus_fixtures import (DF21_ROWS, ITW_ROWS, LA19_LINES, clip, df21_line,
                             protocol_line, write_audio, write_df21,
                             write_itw, write_la19)
from cljax.data import audio_io, corpus_streams, loader
from cljax.data.builders import _corpus
from cljax.data.builders.asvspoof2019_la import Asvspoof2019La
from cljax.data.builders.asvspoof2021_df import Asvspoof2021Df
from cljax.data.builders.in_the_wild import InTheWild


def _all(records):
  return {r["utt_id"]: r for r in (records[i] for i in range(len(records)))}


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
  root = tmp_path_factory.mktemp("corpora")
  return {"la19": write_la19(str(root / "LA")),
          "df21": write_df21(str(root / "DF")),
          "itw": write_itw(str(root / "itw")),
          "data_dir": str(root / "cache")}


def test_la19_builder_round_trips_protocol_and_audio(corpora):
  builder = _corpus.prepare(Asvspoof2019La, corpora["la19"],
                            data_dir=corpora["data_dir"])
  for split, lines in LA19_LINES.items():
    records = _all(_corpus.Records(builder, split))
    assert sorted(records) == sorted(line[1] for line in lines)
    for speaker, utt_id, system, key in lines:
      record = records[utt_id]
      assert record["label"] == (0 if key == "bonafide" else 1)
      assert record["system"] == system and record["speaker"] == speaker
      np.testing.assert_array_equal(record["audio"], clip(utt_id))
      assert record["audio"].dtype == np.int16
  assert builder.info.metadata["skipped"] == {}
  # A second prepare reuses the cache: same folder, nothing rebuilt.
  again = _corpus.prepare(Asvspoof2019La, corpora["la19"],
                          data_dir=corpora["data_dir"])
  assert again.data_dir == builder.data_dir


def test_la19_attack_stream_shares_bona_fide_and_runs_eval_batches(corpora):
  stream = corpus_streams.asvspoof2019_la_attacks(
      corpora["la19"], tasks=(("A01", "A02"), "A03"),
      data_dir=corpora["data_dir"])
  assert stream.task_names == ["A01+A02", "A03"]
  first, second = stream.tasks
  assert sorted(_all(first.split("train"))) == [
      "LA_T_1000001", "LA_T_1000002", "LA_T_1000003", "LA_T_1000004"]
  assert sorted(_all(second.split("train"))) == [
      "LA_T_1000001", "LA_T_1000002", "LA_T_1000005"]
  assert sorted(_all(second.split("test"))) == ["LA_D_2000001",
                                                "LA_D_2000004"]
  assert first.metadata["counts"]["test"] == {"bonafide": 1, "spoof": 2}
  batches = list(loader.eval_batches(first.split("test"), batch_size=2,
                                     window_length=400))
  assert [int(b["mask"].sum()) for b in batches] == [2, 1]
  labels = {u: l for b in batches for u, l in zip(b["utt_id"], b["label"])}
  assert labels == {"LA_D_2000001": 0, "LA_D_2000002": 1, "LA_D_2000003": 1,
                    "": 0}
  audio = {u: a for b in batches for u, a in zip(b["utt_id"], b["audio"])}
  np.testing.assert_array_equal(audio["LA_D_2000002"],
                                clip("LA_D_2000002")[:400])


def test_la19_eval_system_tasks_split_eval_by_seed(corpora):
  stream = corpus_streams.asvspoof2019_la_attacks(
      corpora["la19"], tasks=(("A07",), ("A08",)), test_fraction=0.5,
      seed=3, data_dir=corpora["data_dir"])
  a07, a08 = stream.tasks
  bona = lambda s: sorted(u for u, r in _all(s).items() if r["label"] == 0)
  # Bona fide is shared: the same partition in both tasks, 2 + 2.
  assert bona(a07.split("train")) == bona(a08.split("train"))
  assert bona(a07.split("test")) == bona(a08.split("test"))
  assert len(bona(a07.split("test"))) == 2
  systems = {r["system"] for r in _all(a07.split("train")).values()}
  assert systems == {"-", "A07"}
  train_ids = set(_all(a07.split("train")))
  assert not train_ids & set(_all(a07.split("test")))
  again = corpus_streams.asvspoof2019_la_attacks(
      corpora["la19"], tasks=(("A07",), ("A08",)), test_fraction=0.5,
      seed=3, data_dir=corpora["data_dir"])
  assert set(_all(again.tasks[0].split("train"))) == train_ids


@pytest.mark.parametrize("tasks, match", [
    ((("A01", "A42"),), r"system 'A42'"),
    ((("A01", "A07"),), r"mixes train/dev systems"),
    (((),), r"has an empty group"),
])
def test_la19_bad_task_groups_name_the_field(corpora, tasks, match):
  with pytest.raises(ValueError, match=r"config\.data\.stream\.tasks.*"
                     + match):
    corpus_streams.asvspoof2019_la_attacks(corpora["la19"], tasks=tasks)


def test_missing_manual_dir_names_the_field_and_layout():
  with pytest.raises(ValueError, match=r"(?s)config\.data\.stream\.manual_dir "
                     r"is not set.*ASVspoof2019_LA_cm_protocols"):
    corpus_streams.asvspoof2019_la_attacks("")


def _bad_la19(tmp_path, extra=None, lines=None):
  lines = lines or {"train": LA19_LINES["train"], "dev": LA19_LINES["dev"]}
  return write_la19(str(tmp_path / "LA"), lines=lines, extra_lines=extra)


@pytest.mark.parametrize("raw, match", [
    (protocol_line("LA_0079", "LA_T_9999999", "A01", "spoof"),
     r"train\.trn\.txt:7 names 'LA_T_9999999' but .*LA_T_9999999\.flac does "
     r"not exist"),
    (protocol_line("LA_0079", "LA_T_1000001", "A01", "genuine"),
     r"train\.trn\.txt:7: unknown key 'genuine'"),
    (protocol_line("LA_0079", "LA_T_1000001", "A31", "spoof"),
     r"train\.trn\.txt:7: unknown system id 'A31'"),
    ("LA_0079 LA_T_1000001 A01 spoof\n",
     r"train\.trn\.txt:7: expected 5 columns"),
    (protocol_line("LA_0079", "LA_T_1000001", "A01", "bonafide"),
     r"train\.trn\.txt:7: key 'bonafide' with system 'A01': bona fide lines "
     r"have system '-'"),
    (protocol_line("LA_0079", "LA_T_1000001", "-", "spoof"),
     r"train\.trn\.txt:7: key 'spoof' with system '-'"),
])
def test_la19_bad_protocol_lines_name_file_and_line(tmp_path, raw, match):
  root = _bad_la19(tmp_path, extra={"train": [raw]})
  with pytest.raises(_corpus.CorpusError, match=match):
    _corpus.prepare(Asvspoof2019La, root, data_dir=str(tmp_path / "c"),
                    splits=("train", "dev"))


def test_la19_empty_split_and_corrupt_file(tmp_path):
  root = _bad_la19(tmp_path, lines={"train": LA19_LINES["train"],
                                    "dev": []})
  with pytest.raises(_corpus.CorpusError, match=r"split 'dev' has no records"):
    _corpus.prepare(Asvspoof2019La, root, data_dir=str(tmp_path / "c"),
                    splits=("train", "dev"))
  root = _bad_la19(tmp_path / "b")
  bad = os.path.join(root, "ASVspoof2019_LA_train", "flac",
                     "LA_T_1000003.flac")
  with open(bad, "r+b") as f:
    f.truncate(os.path.getsize(bad) // 2)
  with pytest.raises(audio_io.AudioFileError,
                     match=r"LA_T_1000003\.flac: unreadable.*"
                     r"train\.trn\.txt:3.*on_bad_file='skip'"):
    _corpus.prepare(Asvspoof2019La, root, data_dir=str(tmp_path / "c"),
                    splits=("train", "dev"))


def test_la19_skip_mode_reports_what_it_skipped(tmp_path, capsys):
  root = _bad_la19(tmp_path, extra={"train": [
      protocol_line("LA_0079", "LA_T_9999999", "A01", "spoof")]})
  bad = os.path.join(root, "ASVspoof2019_LA_dev", "flac", "LA_D_2000002.flac")
  with open(bad, "wb") as f:
    f.write(b"garbage")
  builder = _corpus.prepare(Asvspoof2019La, root, on_bad_file="skip",
                            data_dir=str(tmp_path / "c"),
                            splits=("train", "dev"))
  out = capsys.readouterr().out
  assert "SKIPPED 1 bad file(s) in split 'train'" in out and \
      "LA_T_9999999" in out
  assert "SKIPPED 1 bad file(s) in split 'dev'" in out and \
      "LA_D_2000002.flac" in out
  assert len(_corpus.Records(builder, "train")) == 6
  assert len(_corpus.Records(builder, "dev")) == 3
  with open(os.path.join(builder.data_dir, "metadata.json")) as f:
    stored = json.load(f)["skipped"]
  assert stored["train"]["count"] == 1 and stored["dev"]["count"] == 1
  # Loading the cached build reports again.
  _corpus.prepare(Asvspoof2019La, root, on_bad_file="skip",
                  data_dir=str(tmp_path / "c"), splits=("train", "dev"))
  assert "SKIPPED 1" in capsys.readouterr().out


def test_la19_other_sample_rate_refused_or_resampled(tmp_path, capsys):
  root = _bad_la19(tmp_path)
  path = os.path.join(root, "ASVspoof2019_LA_train", "flac",
                      "LA_T_1000004.flac")
  write_audio(path, "LA_T_1000004", rate=8000)
  with pytest.raises(audio_io.AudioFileError,
                     match=r"LA_T_1000004\.flac: sample rate 8000 Hz"):
    _corpus.prepare(Asvspoof2019La, root, resample="refuse",
                    data_dir=str(tmp_path / "c"), splits=("train", "dev"))
  builder = _corpus.prepare(Asvspoof2019La, root,
                            data_dir=str(tmp_path / "c"),
                            splits=("train", "dev"))
  assert "resampled 1 file(s) to 16000 Hz" in capsys.readouterr().out
  record = _all(_corpus.Records(builder, "train"))["LA_T_1000004"]
  assert len(record["audio"]) == 2 * len(clip("LA_T_1000004"))


def test_df21_builder_keeps_the_eval_subset_with_key_fields(corpora):
  builder = _corpus.prepare(Asvspoof2021Df, corpora["df21"],
                            subsets=("eval",), data_dir=corpora["data_dir"])
  records = _all(_corpus.Records(builder, "eval"))
  expected = [r for r in DF21_ROWS if r[6] == "eval"]
  assert sorted(records) == sorted(r[1] for r in expected)
  for speaker, trial, codec, source, attack, key, subset in expected:
    record = records[trial]
    assert (record["speaker"], record["codec"], record["source"],
            record["attack"], record["subset"], record["label"]) == (
                speaker, codec, source, attack, subset, int(key == "spoof"))
    assert record["vocoder"] == "traditional_vocoder"
    np.testing.assert_array_equal(record["audio"], clip(trial))
  everything = _corpus.prepare(Asvspoof2021Df, corpora["df21"],
                               data_dir=corpora["data_dir"])
  assert len(_corpus.Records(everything, "eval")) == len(DF21_ROWS)


def test_df21_and_itw_bad_lines(tmp_path):
  root = write_df21(str(tmp_path / "DF"))
  with open(os.path.join(root, "keys/DF/CM/trial_metadata.txt"), "a") as f:
    f.write("LA_0023 DF_E_2999999 nocodec asvspoof - bonafide notrim eval\n")
  with pytest.raises(_corpus.CorpusError,
                     match=r"trial_metadata\.txt:11: expected 13 columns"):
    _corpus.prepare(Asvspoof2021Df, root, data_dir=str(tmp_path / "c"))
  with open(os.path.join(root, "keys/DF/CM/trial_metadata.txt")) as f:
    good = f.read().splitlines()[:10]
  with open(os.path.join(root, "keys/DF/CM/trial_metadata.txt"), "w") as f:
    f.write("\n".join(good) + "\n" + df21_line(
        "LA_0023", "DF_E_2000011", "nocodec", "asvspoof", "A14", "bonafide",
        "eval"))
  with pytest.raises(_corpus.CorpusError,
                     match=r"trial_metadata\.txt:11: key 'bonafide' with "
                     r"attack 'A14': bona fide lines have attack '-'"):
    _corpus.prepare(Asvspoof2021Df, root, data_dir=str(tmp_path / "c2"))
  itw = write_itw(str(tmp_path / "itw"))
  with open(os.path.join(itw, "meta.csv"), "a") as f:
    f.write("0.wav,Alec Guinness,fake\n")
  with pytest.raises(_corpus.CorpusError,
                     match=r"meta\.csv:10: unknown label 'fake'"):
    _corpus.prepare(InTheWild, itw, data_dir=str(tmp_path / "c"))


def test_itw_builder(corpora):
  builder = _corpus.prepare(InTheWild, corpora["itw"],
                            data_dir=corpora["data_dir"])
  records = _all(_corpus.Records(builder, "test"))
  assert {u: (r["speaker"], r["label"]) for u, r in records.items()} == {
      name: (speaker, int(label == "spoof"))
      for name, speaker, label in ITW_ROWS}
  np.testing.assert_array_equal(records["3.wav"]["audio"], clip("3.wav"))


@pytest.mark.parametrize("split_by", ["random", "speaker"])
def test_corpus_incremental_stream(corpora, split_by):
  stream = corpus_streams.corpus_incremental(
      la19_dir=corpora["la19"], df21_dir=corpora["df21"],
      itw_dir=corpora["itw"], data_dir=corpora["data_dir"],
      test_fraction=0.5, split_by=split_by, seed=1)
  assert stream.task_names == ["LA19", "DF21", "ITW"]
  la19, df21, itw = stream.tasks
  assert sorted(_all(la19.split("train"))) == sorted(
      line[1] for line in LA19_LINES["train"])
  assert len(la19.split("test")) == len(LA19_LINES["eval"])
  # DF21 holds only the eval subset, split into disjoint halves.
  train, test = _all(df21.split("train")), _all(df21.split("test"))
  assert not set(train) & set(test)
  assert sorted(set(train) | set(test)) == sorted(
      r[1] for r in DF21_ROWS if r[6] == "eval")
  if split_by == "random":
    for part in (train, test):
      assert collections.Counter(r["label"] for r in part.values()) == {0: 2,
                                                                          1: 2}
  itw_train, itw_test = _all(itw.split("train")), _all(itw.split("test"))
  assert len(itw_train) + len(itw_test) == len(ITW_ROWS)
  if split_by == "speaker":
    speakers = lambda part: {r["speaker"] for r in part.values()}
    assert not speakers(itw_train) & speakers(itw_test)
  for task in stream.tasks:
    batches = list(loader.eval_batches(task.split("test"), batch_size=4,
                                       window_length=1000))
    assert sum(int(b["mask"].sum()) for b in batches) == len(
        task.split("test"))


def test_corpus_incremental_names_missing_dir_field(corpora):
  with pytest.raises(ValueError, match=r"(?s)config\.data\.stream\.df21_dir "
                     r"is not set.*trial_metadata"):
    corpus_streams.corpus_incremental(la19_dir=corpora["la19"],
                                      data_dir=corpora["data_dir"])
