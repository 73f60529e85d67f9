"""The EVDA precomputed-feature builder, its stream and configs/evda_features."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cli_helpers import run_cli
from cljax.data import audio_io, corpus_streams, loader
from cljax.data.builders import _corpus
from cljax.data.builders.evda_features import EvdaFeatures

DIM = 1024


def features(name: str, frames: int = 3) -> np.ndarray:
  """A deterministic ``frames x DIM`` float32 array for ``name``."""
  rng = np.random.default_rng(abs(hash(name)) % 2**32)
  return rng.standard_normal((frames, DIM)).astype(np.float32)


def write_evda(root, num_tasks=2, train=3, test=2, feature="fadcl_wav2vec"):
  """``<root>/{train,test}_<feature>/<task>/<real|fake>/*.npy``; returns
  ``{relative path: (array, label, task)}``."""
  written = {}
  for split, per_class in (("train", train), ("test", test)):
    for task in range(1, num_tasks + 1):
      for class_name, label in (("real", 0), ("fake", 1)):
        folder = os.path.join(root, f"{split}_{feature}", str(task),
                              class_name)
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
          relative = f"{split}_{feature}/{task}/{class_name}/{i:03d}.npy"
          array = features(relative, frames=2 + i)
          np.save(os.path.join(root, relative), array)
          written[relative] = (array, label, task)
  # EVDA's pre-training bucket "0" is not a task.
  os.makedirs(os.path.join(root, f"train_{feature}", "0", "real"))
  return written


def _all(records):
  return {r["utt_id"]: r for r in (records[i] for i in range(len(records)))}


def test_folders_are_mean_pooled_per_task(tmp_path):
  written = write_evda(str(tmp_path / "f"))
  stream = corpus_streams.evda_features(
      str(tmp_path / "f"), num_tasks=2, max_train_per_class=2,
      max_test_per_class=0, data_dir=str(tmp_path / "c"))
  assert stream.task_names == ["T1", "T2"] and stream.sample_rate == DIM
  for task_id, task in enumerate(stream.tasks, 1):
    train, test = _all(task.split("train")), _all(task.split("test"))
    # Train capped at the first 2 per class by path; test keeps all 2.
    assert sorted(train) == sorted(
        f"train_fadcl_wav2vec/{task_id}/{c}/{i:03d}.npy"
        for c in ("real", "fake") for i in range(2))
    assert len(test) == 4
    for utt_id, record in {**train, **test}.items():
      array, label, task_folder = written[utt_id]
      assert record["label"] == label and record["task"] == str(task_folder)
      assert record["audio"].dtype == np.float32
      np.testing.assert_allclose(record["audio"], array.mean(axis=0),
                                 rtol=1e-6, atol=1e-6)
  batches = list(loader.eval_batches(stream.tasks[1].split("test"),
                                     batch_size=3, window_length=DIM))
  assert [b["audio"].shape for b in batches] == [(3, DIM), (3, DIM)]
  assert batches[1]["mask"].tolist() == [True, False, False]


def test_file_lists_with_foreign_absolute_paths(tmp_path):
  root = str(tmp_path / "f")
  written = write_evda(root)
  os.makedirs(os.path.join(root, "data_cache"))
  for split in ("train", "test"):
    with open(os.path.join(root, "data_cache", f"data_{split}_path.txt"),
              "w") as f:
      f.write("file class_index timestamp")  # EVDA writes no newline here.
      for relative, (_, label, task) in sorted(written.items()):
        if relative.startswith(split):
          f.write(f"\n/data1/someone/features_backup/{relative} {label} "
                  f"{task}")
  builder = _corpus.prepare(EvdaFeatures, root, sample_rate=DIM,
                            data_dir=str(tmp_path / "c"), num_tasks=2)
  records = _all(_corpus.Records(builder, "train"))
  assert sorted(records) == sorted(r for r in written if r.startswith("train"))
  with open(os.path.join(root, "data_cache", "data_test_path.txt"), "a") as f:
    f.write("\n/x/test_fadcl_wav2vec/1/real/zzz.npy 2 1")
  with pytest.raises(_corpus.CorpusError,
                     match=r"data_test_path\.txt:10: unknown class index '2'"):
    _corpus.prepare(EvdaFeatures, root, sample_rate=DIM,
                    data_dir=str(tmp_path / "c2"), num_tasks=2)


def test_bad_feature_files(tmp_path, capsys):
  root = str(tmp_path / "f")
  write_evda(root)
  bad = os.path.join(root, "train_fadcl_wav2vec", "2", "fake", "001.npy")
  np.save(bad, np.zeros((4, 768), np.float32))
  with pytest.raises(audio_io.AudioFileError,
                     match=r"2/fake/001\.npy: features of shape \(4, 768\), "
                     r"expected \(T, 1024\).*feature_dim"):
    corpus_streams.evda_features(root, num_tasks=2,
                                 data_dir=str(tmp_path / "c"))
  with open(bad, "wb") as f:
    f.write(b"\x93NUMPY truncated")
  stream = corpus_streams.evda_features(root, num_tasks=2,
                                        on_bad_file="skip",
                                        data_dir=str(tmp_path / "c"))
  out = capsys.readouterr().out
  assert "SKIPPED 1 bad file(s) in split 'train'" in out and "001.npy" in out
  assert stream.tasks[1].metadata["counts"]["train"] == {"bonafide": 3,
                                                         "spoof": 2}
  os.remove(bad)
  for name in os.listdir(os.path.dirname(bad)):
    os.remove(os.path.join(os.path.dirname(bad), name))
  with pytest.raises(_corpus.CorpusError,
                     match=r"train_fadcl_wav2vec/2/fake: missing or empty"):
    corpus_streams.evda_features(root, num_tasks=2,
                                 data_dir=str(tmp_path / "c"))
  with pytest.raises(_corpus.CorpusError,
                     match=r"task folders \['1', '2'\], expected "
                     r"\['1', '2', '3'\]"):
    corpus_streams.evda_features(root, num_tasks=3,
                                 data_dir=str(tmp_path / "c"))


def test_config_needs_manual_dir(tmp_path):
  process = run_cli("cljax.main", "--config=configs/evda_features.py:small",
                    f"--workdir={tmp_path / 'run'}", check=False)
  assert process.returncode != 0
  assert "config.data.stream.manual_dir is not set" in (process.stdout +
                                                        process.stderr)


def test_config_small_runs_end_to_end(tmp_path):
  root = str(tmp_path / "f")
  write_evda(root, train=4, test=3)
  workdir = tmp_path / "run"
  process = run_cli("cljax.main", "--config=configs/evda_features.py:small",
                    f"--config.data.stream.manual_dir={root}",
                    f"--config.data.stream.data_dir={tmp_path / 'c'}",
                    f"--workdir={workdir}")
  assert "SYNTHETIC" not in process.stdout + process.stderr
  found = [os.path.join(d, n) for d, _, names in os.walk(workdir)
           for n in names if n.endswith(".json")]
  assert found, os.listdir(workdir)
