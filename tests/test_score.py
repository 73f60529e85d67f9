"""``python -m cljax.score``: score files for corpora and folders, EER and
min t-DCF recomputed independently, and the bad requests."""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest
import soundfile
from sklearn import metrics as sk_metrics

from cljax import evaluate
from cljax import metrics
from cljax import score
from cljax.data import audio_io
from cljax.metrics import tdcf
from cljax.registry import ConfigError

import corpus_fixtures as fixtures
from cli_helpers import run_cli

RATE = fixtures.RATE
WINDOW = 8000       # configs/finetune_audio.py:small: eval_seconds 0.5 at 16 kHz


@pytest.fixture(scope="module")
def workdir(small_finetune_run):
  return small_finetune_run[0]


@pytest.fixture(scope="module")
def scorer(workdir):
  return score.load_scorer(workdir)


@pytest.fixture(scope="module")
def la19(tmp_path_factory):
  return fixtures.write_la19(str(tmp_path_factory.mktemp("la19")))


def _sklearn_eer(scores, labels):
  """EER from sklearn's ROC (bona fide positive), closest fnr/fpr point."""
  fpr, tpr, _ = sk_metrics.roc_curve(labels == 0, scores,
                                     drop_intermediate=False)
  k = np.argmin(np.abs((1 - tpr) - fpr))
  return ((1 - tpr[k]) + fpr[k]) / 2


def _window_scores(scorer, windows):
  """Scores of [n, WINDOW] int16 windows straight through the eval step."""
  out = scorer.eval_step(scorer.state.variables, np.stack(windows))
  return np.asarray(out["scores"], np.float64)


def test_la19_score_file_and_eer_and_min_tdcf(workdir, la19, tmp_path):
  # A made-up ASV score file in the organisers' format.
  rng = np.random.default_rng(0)
  asv = tmp_path / "asv.txt"
  asv.write_text("".join(
      [f"bonafide target {s:.5f}\n" for s in rng.normal(3, 1, 20)] +
      [f"bonafide nontarget {s:.5f}\n" for s in rng.normal(-2, 1, 40)] +
      [f"A07 spoof {s:.5f}\n" for s in rng.normal(1, 2, 30)]))
  out = tmp_path / "out"
  process = run_cli("cljax.score", f"--workdir={workdir}",
                    "--corpus=asvspoof2019_la", f"--manual_dir={la19}",
                    f"--data_dir={tmp_path / 'cache'}", f"--out={out}",
                    f"--asv_scores={asv}")
  # The format line by line: UTT_ID SYSTEM KEY SCORE, every eval trial once,
  # system and key as the protocol says, scores with 6 decimals.
  protocol = {utt: (system, key)
              for _, utt, system, key in fixtures.LA19_LINES["eval"]}
  lines = (out / "asvspoof2019_la_eval.txt").read_text().splitlines()
  assert len(lines) == len(protocol) == 12
  scores, labels = [], []
  for line in lines:
    utt, system, key, value = line.split(" ")
    assert protocol.pop(utt) == (system, key)
    assert re.fullmatch(r"-?\d+\.\d{6}", value), line
    scores.append(float(value))
    labels.append(0 if key == "bonafide" else 1)
  assert not protocol
  scores, labels = np.array(scores), np.array(labels)
  assert np.unique(scores).size > 3  # A real model's scores, not constant.
  # EER saved and printed == the EER recomputed from the file.
  record = json.loads((out / "asvspoof2019_la_eval.json").read_text())
  eer = metrics.equal_error_rate(scores, labels)
  assert record["eer"] == eer
  assert f"EER       = {100 * eer:.4f} %" in process.stdout
  # sklearn's ROC: within one trial's step of the smaller class (4 bona fide).
  assert abs(record["eer"] - _sklearn_eer(scores, labels)) <= 1 / 4
  # min t-DCF from the file and the ASV file, through the 2019 readers.
  bona, spoof = tdcf.read_cm_scores(str(out / "asvspoof2019_la_eval.txt"))
  asv_sets = tdcf.read_asv_scores(str(asv))
  expected = tdcf.min_tdcf(bona, spoof, *asv_sets)
  assert record["min_tdcf"] == pytest.approx(expected.min_tdcf, abs=1e-12)
  assert f"min t-DCF = {expected.min_tdcf:.6f}" in process.stdout
  assert record["checkpoint"] == "step24"  # The newest: 2 tasks x 12 steps.
  assert "higher = more genuine" in process.stdout


def test_la19_scores_match_the_first_window_through_the_eval_step(
    scorer, la19, tmp_path):
  # eval_mode "window": each trial's score is the model's log-odds on its
  # first 0.5 s, wrap-padded (the fixture's clips are 800-1599 samples).
  record = score.score_corpus(scorer, "asvspoof2019_la", la19, out=str(
      tmp_path), asv_scores=None, data_dir=str(tmp_path / "cache"))
  assert record["eval_mode"] == "window"
  lines = (tmp_path / "asvspoof2019_la_eval.txt").read_text().splitlines()
  utts = [line.split()[0] for line in lines]
  flac = os.path.join(la19, "ASVspoof2019_LA_eval", "flac")
  windows = [np.resize(soundfile.read(os.path.join(flac, u + ".flac"),
                                      dtype="int16")[0], WINDOW)
             for u in utts]
  np.testing.assert_allclose([float(line.split()[3]) for line in lines],
                             _window_scores(scorer, windows), atol=2e-6)


@pytest.mark.parametrize("corpus, write, rows", [
    ("asvspoof2021_df", fixtures.write_df21,
     [(r[1], r[5]) for r in fixtures.DF21_ROWS if r[6] == "eval"]),
    ("in_the_wild", fixtures.write_itw,
     [(r[0], "spoof" if r[2] == "spoof" else "bonafide")
      for r in fixtures.ITW_ROWS]),
])
def test_df21_and_in_the_wild_two_column_files(scorer, tmp_path, corpus,
                                                write, rows):
  root = write(str(tmp_path / "copy"))
  out = tmp_path / "out"
  split = "eval" if corpus == "asvspoof2021_df" else "test"
  record = score.score_corpus(scorer, corpus, root, out=str(out),
                              asv_scores=None,
                              data_dir=str(tmp_path / "cache"))
  plain = (out / f"{corpus}_{split}.txt").read_text().splitlines()
  keyed = (out / f"{corpus}_{split}_keyed.txt").read_text().splitlines()
  assert len(plain) == len(keyed) == len(rows)  # DF21: the eval subset only.
  expected = dict(rows)
  scores, labels = [], []
  for line, keyed_line in zip(plain, keyed):
    utt, value = line.split(" ")
    assert keyed_line == f"{utt} {value} {expected.pop(utt)}"
    scores.append(float(value))
    labels.append(0 if keyed_line.endswith("bonafide") else 1)
  assert not expected
  assert record["eer"] == metrics.equal_error_rate(np.array(scores),
                                                   np.array(labels))


def _write(path, samples, rate=RATE):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  soundfile.write(path, samples, rate, subtype="PCM_16")


@pytest.fixture()
def folder(tmp_path):
  """Clips of several lengths under bonafide/ and spoof/, one at 22.05 kHz,
  one stereo, plus files that are not audio."""
  root = tmp_path / "clips"
  lengths = {"bonafide/short.wav": 3000, "bonafide/exact.flac": WINDOW,
             "bonafide/long.wav": 17000, "spoof/mid.wav": 12000,
             "spoof/deep/tiny.flac": 500}
  clips = {}
  for name, length in lengths.items():
    clips[name] = fixtures.clip(name, length)
    _write(str(root / name), clips[name])
  clips["spoof/stereo.wav"] = fixtures.clip("stereo", 9000)
  _write(str(root / "spoof/stereo.wav"),
         np.stack([clips["spoof/stereo.wav"]] * 2, axis=1))
  _write(str(root / "spoof/rate22k.wav"), fixtures.clip("22k", 11025),
         rate=22050)
  (root / "notes.txt").write_text("not audio")
  (root / "spoof" / ".hidden.wav").write_text("hidden")
  return root, clips


def test_folder_windows_pooling_and_eer(scorer, folder, tmp_path):
  root, clips = folder
  out = tmp_path / "out"
  record = score.score_folder(scorer, str(root), out=str(out),
                              channels="mix")
  lines = (out / "folder_clips.txt").read_text().splitlines()
  written = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
             for line in lines}
  assert sorted(written) == sorted(list(clips) + ["spoof/rate22k.wav"])
  assert record["hop_samples"] == WINDOW // 2 and record["resampled"] == 1

  def starts(length):  # Hand-made: hop W/2, the last window flush.
    return {3000: [0], 500: [0], WINDOW: [0], 9000: [0, 1000],
            12000: [0, 4000], 17000: [0, 4000, 8000, 9000]}[length]

  for name, audio in clips.items():
    windows = [np.resize(audio, WINDOW) if len(audio) < WINDOW
               else audio[s:s + WINDOW] for s in starts(len(audio))]
    # Shorter than a window: one window, wrap-padded; else the mean. The
    # stereo file (the clip on both channels), mixed down, scores as the clip.
    assert written[name] == pytest.approx(
        _window_scores(scorer, windows).mean(), abs=2e-6), name
  labels = np.array([0 if p.startswith("bonafide") else 1
                     for p in sorted(written)])
  scores = np.array([written[p] for p in sorted(written)])
  assert record["eer"] == metrics.equal_error_rate(scores, labels)
  assert (record["bonafide"], record["spoof"]) == (3, 4)


def test_folder_pool_min_max_bracket_the_mean(scorer, folder, tmp_path):
  root, _ = folder
  values = {}
  for pool in ("mean", "min", "max"):
    score.score_folder(scorer, str(root), out=str(tmp_path / pool),
                       pool=pool, channels="mix")
    values[pool] = dict(line.rsplit(" ", 1) for line in (
        tmp_path / pool / "folder_clips.txt").read_text().splitlines())
  for name in values["mean"]:
    low, mean, high = (float(values[p][name]) for p in ("min", "mean", "max"))
    assert low <= mean + 1e-6 and mean <= high + 1e-6
    if name == "bonafide/long.wav":  # 4 windows: not all equal.
      assert low < high


def test_folder_without_class_folders_has_no_eer(scorer, tmp_path):
  _write(str(tmp_path / "in" / "a.wav"), fixtures.clip("a", 4000))
  _write(str(tmp_path / "in" / "bonafide" / "b.wav"), fixtures.clip("b", 4000))
  record = score.score_folder(scorer, str(tmp_path / "in"),
                              out=str(tmp_path / "out"))
  assert "eer" not in record and record["files"] == 2


def test_bad_audio_in_a_folder(scorer, folder, tmp_path):
  root, _ = folder
  # The run's config names no channel mode: a stereo file is refused, by name.
  with pytest.raises(audio_io.AudioFileError,
                     match=r"stereo.wav: 2 channels, expected mono"):
    score.score_folder(scorer, str(root), out=str(tmp_path / "a"))
  with pytest.raises(audio_io.AudioFileError,
                     match=r"rate22k.wav: sample rate 22050 Hz"):
    score.score_folder(scorer, str(root), out=str(tmp_path / "b"),
                       channels="mix", resample="refuse")
  good = fixtures.clip("x", 4000)
  _write(str(tmp_path / "bad" / "ok.wav"), good)
  truncated = tmp_path / "bad" / "cut.wav"
  _write(str(truncated), good)
  truncated.write_bytes(truncated.read_bytes()[:2000])
  with pytest.raises(audio_io.AudioFileError, match=r"cut.wav: truncated"):
    score.score_folder(scorer, str(tmp_path / "bad"), out=str(tmp_path / "c"))


def test_empty_folder_is_a_clear_error(workdir, tmp_path):
  (tmp_path / "empty" / "sub").mkdir(parents=True)
  (tmp_path / "empty" / "readme.txt").write_text("no audio here")
  with pytest.raises(score.ScoreError, match="no audio files found"):
    score.list_folder(str(tmp_path / "empty"))
  # The CLI says so before building the model, exit status 2.
  process = run_cli("cljax.score", f"--workdir={workdir}",
                    f"--folder={tmp_path / 'empty'}", check=False)
  assert process.returncode == 2
  assert f"--folder={tmp_path / 'empty'}: no audio files found" in (
      process.stderr)
  with pytest.raises(score.ScoreError, match="is not a folder"):
    score.list_folder(str(tmp_path / "missing"))


def test_workdir_without_checkpoints(workdir, tmp_path):
  bare = tmp_path / "bare"
  bare.mkdir()
  shutil.copy(os.path.join(workdir, "config.json"), bare / "config.json")
  with pytest.raises(FileNotFoundError,
                     match=r"--workdir=.*bare: no checkpoint under"):
    score.load_scorer(str(bare))
  assert not (bare / "checkpoints").exists()  # Nothing created on the way.


@pytest.mark.parametrize("model", [
    {"name": "mlp"},                                    # another architecture
    {"name": "cnn1d", "channels": (8, 8, 8), "embed_dim": 32},  # other sizes
])
def test_checkpoint_of_another_model_is_a_clear_error(workdir, model):
  import ml_collections  # pylint: disable=g-import-not-at-top
  config = evaluate.load_run_config(workdir)
  config.model = ml_collections.ConfigDict(model)
  with pytest.raises(ConfigError,
                     match=rf"its params do not match the model the config "
                     rf"builds \(config.model.name='{model['name']}'\)"):
    score.load_scorer(workdir, config)


def test_asv_scores_only_on_la19(workdir, scorer, tmp_path):
  with pytest.raises(score.ScoreError, match="--asv_scores is for ASVspoof "
                     "2019 LA"):
    score.score_corpus(scorer, "in_the_wild", str(tmp_path), out=str(
        tmp_path), asv_scores="asv.txt")
  process = run_cli("cljax.score", f"--workdir={workdir}",
                    "--corpus=in_the_wild", f"--manual_dir={tmp_path}",
                    "--asv_scores=asv.txt", check=False)
  assert process.returncode != 0
  assert "--asv_scores computes min t-DCF, defined on ASVspoof 2019 LA" in (
      process.stderr)


def test_bad_asv_file_and_manual_dir(scorer, la19, tmp_path):
  asv = tmp_path / "asv.txt"
  asv.write_text("bonafide target 1.0\nbonafide nontarget -1.0\n")
  with pytest.raises(score.ScoreError, match=r"--asv_scores=.*asv.txt: .*no "
                     "'spoof' trial"):
    score.score_corpus(scorer, "asvspoof2019_la", la19, out=str(tmp_path),
                       asv_scores=str(asv), data_dir=str(tmp_path / "cache"))
  with pytest.raises(score.ScoreError, match=r"--manual_dir=.* is not a "
                     "folder"):
    score.score_corpus(scorer, "asvspoof2019_la", str(tmp_path / "nope"),
                       out=str(tmp_path), asv_scores=None)
