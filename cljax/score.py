r"""Scores a corpus, or a folder of audio or images, with a saved model.

Scores are GENUINE LOG-ODDS, ``log p(bonafide | x) - log sum_spoof p(spoof |
x)`` from the model's logits (``cljax.step.genuine_log_odds``): HIGHER = MORE
GENUINE, the convention of the ASVspoof scoring tools.

Commands::

  # A corpus through its builder, over your copy (newest checkpoint of the
  # run; --task=T for the end of task T, --step=S for global step S):
  python -m cljax.score --workdir=runs/X --corpus=asvspoof2019_la \
      --manual_dir=/data/LA [--split=eval|dev|train] \
      [--asv_scores=/data/LA/ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.eval.gi.trl.scores.txt]
  python -m cljax.score --workdir=runs/X --corpus=asvspoof2021_df \
      --manual_dir=/data/DF21 [--split=eval]     # key subsets: eval, progress,
                                                 # comma lists, or all
  python -m cljax.score --workdir=runs/X --corpus=in_the_wild \
      --manual_dir=/data/release_in_the_wild

  # Any folder of wav/flac files, any length, no protocol:
  python -m cljax.score --workdir=runs/X --folder=/data/clips \
      [--hop_seconds=0.5] [--pool=mean|min|max] [--channels=mix]

  # An image run (spectrum/rgb front end): every image of a folder,
  # labelled by 0_real/ + 1_fake/ (or real/ + fake/) if present:
  python -m cljax.score --workdir=runs/X --folder=/data/NeuralTextures/test

Common flags: ``--out=DIR`` (default ``<workdir>/scores/<checkpoint>``),
``--config=FILE`` (build the model from another config instead of the run's
``config.json``; its model must match the checkpoint), ``--resample``,
``--channels``, ``--on_bad_file`` and ``--data_dir`` (default: the run's
``config.data.stream`` fields, else ``warn``/``error``/``error``/the cache).

What is written to ``--out``:

* corpus ``C``, split ``S``: ``C_S.txt``, the CM score file in the format
  the corpus's official tools read: ASVspoof 2019 LA ``UTT_ID SYSTEM KEY
  SCORE`` (``LA_E_2834763 A11 spoof -3.210000``; SYSTEM ``-`` for bona
  fide; ``cljax.metrics.tdcf.read_cm_scores`` and the 2019 package's
  ``evaluate_tDCF_asvspoof19.py`` read it), ASVspoof 2021 DF and
  In-the-Wild ``UTT_ID SCORE`` plus ``C_S_keyed.txt`` with ``UTT_ID SCORE
  KEY`` lines to recompute the EER; and ``C_S.json`` with the EER (and,
  with ``--asv_scores`` on 2019 LA, min t-DCF). The EER is computed from
  the scores as written (6 decimals), so the file reproduces it exactly.
* image folder ``F`` (image runs): ``folder_<name>.txt`` with ``PATH SCORE
  [real|fake]`` lines and ``folder_<name>.json`` with AUC, accuracy and EER
  when class folders label the images (``score_image_folder``); images are
  decoded and resized as the run's stream stored them.
* folder ``F``: ``folder_<name of F>.txt`` with ``RELATIVE/PATH SCORE`` lines
  (the score after the last space) and ``folder_<name>.json``. With
  top-level ``bonafide/`` and ``spoof/`` (or ``real/`` and ``fake/``)
  subfolders, the files under them are labelled by them and the EER is
  computed too.

How utterances become scores: corpus trials as the run evaluated
(``config.data.eval_mode``, overridable with ``--eval_mode``): ``window``
scores the first ``eval_seconds`` (padded per ``config.data.pad_mode`` if
shorter); ``full`` slides ``eval_seconds`` windows with hop
``--hop_seconds`` (default ``config.data.eval_hop_seconds``, 0 = a window)
and pools them. A folder is always scored whole: windows of the run's
``eval_seconds`` every ``--hop_seconds`` (default half a window), the last
one flush with the end, a clip shorter than a window padded to one window
(``config.data.pad_mode``). ``--pool=mean`` (default) averages the window
log-odds — what the loop's ``full`` mode reports, so the numbers compare
with the run's; ``min`` flags a clip by its most spoof-like window (for
clips that may be only partly spoofed); ``max`` by its most genuine one.

Files are decoded as the corpus builders do (``cljax.data.audio_io``): at
the run's sample rate (other rates resampled with soxr, or refused with
``--resample=refuse``), mono (several channels refused, or averaged with
``--channels=mix``); a corrupt, truncated or empty file stops with its name.

Errors (exit status 2, the message names the flag or file and the fix): a
folder with no audio file, a workdir without checkpoints, a checkpoint whose
parameters do not match the model the config builds (``--config`` of another
architecture), a bad audio file, a bad corpus copy or protocol line, a bad
ASV score file. Flag misuse (``--asv_scores`` on another corpus, ``--task``
with ``--step``...) is a usage error (status 1).

Limits: the model is rebuilt the way ``cljax.evaluate`` does it, through
``train.build_experiment``, which also builds the run's own stream (its
sample rate, classes and strategy come from it), so that stream's data must
be reachable (prepared corpora are reused from the cache). Meant for one
process: under a multi-process launch every process would write the files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from typing import Any, Mapping, Sequence

from absl import app, flags
import jax
import ml_collections
import numpy as np

from cljax import distributed
from cljax import evaluate
from cljax import metrics as metrics_lib
from cljax import step as step_lib
from cljax import train
from cljax.data import audio_io
from cljax.data import loader
from cljax.metrics import tdcf as tdcf_lib
from cljax.registry import ConfigError

# Shared with cljax.evaluate (defined there, read through FLAGS): --workdir,
# --task, --step, --split, --out, --config, --folder.
FLAGS = flags.FLAGS
CORPORA = ("asvspoof2019_la", "asvspoof2021_df", "in_the_wild")
POOLS = ("mean", "min", "max")
_CORPUS = flags.DEFINE_enum("corpus", None, list(CORPORA),
                            "Score this corpus (with --manual_dir).")
_MANUAL_DIR = flags.DEFINE_string("manual_dir", None,
                                  "Your copy of --corpus (its layout: the "
                                  "corpus builder's docstring).")
_ASV_SCORES = flags.DEFINE_string(
    "asv_scores", None, "ASVspoof 2019 LA only: the organisers' ASV score "
    "file of the split, to compute min t-DCF.")
_HOP_SECONDS = flags.DEFINE_float(
    "hop_seconds", None, "Seconds between window starts (folder: default "
    "half a window; corpus in full mode: config.data.eval_hop_seconds).")
_POOL = flags.DEFINE_enum("pool", "mean", list(POOLS),
                          "How window scores become an utterance's score.")
_EVAL_MODE = flags.DEFINE_enum(
    "eval_mode", None, ["window", "full"], "Corpus: first window or whole "
    "utterance (default: the run's config.data.eval_mode).")
_RESAMPLE = flags.DEFINE_enum("resample", None, list(audio_io.RESAMPLE_MODES),
                              "Files at another sample rate (default: the "
                              "run's config.data.stream.resample, else warn).")
_CHANNELS = flags.DEFINE_enum("channels", None, list(audio_io.CHANNEL_MODES),
                              "Multi-channel files (default: the run's "
                              "config.data.stream.channels, else error).")
_ON_BAD_FILE = flags.DEFINE_enum(
    "on_bad_file", None, ["error", "skip"], "Corpus: a bad file stops "
    "(error) or is left out and reported (skip); default: the run's "
    "config.data.stream.on_bad_file, else error.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Cache of the prepared "
                                "corpora (default: the run's "
                                "config.data.stream.data_dir, else "
                                "$CLJAX_DATA_DIR or ~/.cache/cljax/data).")

SCORE_CONVENTION = ("genuine log-odds log p(bonafide|x) - log p(spoof|x); "
                    "higher = more genuine")
AUDIO_EXTENSIONS = (".wav", ".flac")
# Top-level subfolders that label a folder's files (0 = bona fide).
CLASS_FOLDERS = {"bonafide": 0, "bona-fide": 0, "real": 0, "spoof": 1,
                 "fake": 1}
KEYS = ("bonafide", "spoof")


class ScoreError(ValueError):
  """A scoring request that cannot be served; the message says why and how."""


@dataclasses.dataclass
class Scorer:
  """A restored model, ready to score: built once, used for every source."""

  exp: train.Experiment
  state: Any
  eval_step: Any
  label: str           # task<T> / step<S>: which checkpoint

  @property
  def sample_rate(self) -> int:
    return int(self.exp.stream.sample_rate)

  @property
  def window_length(self) -> int:
    return int(self.exp.eval_length)


def load_scorer(workdir: str, config: ml_collections.ConfigDict | None = None,
                *, task: int | None = None, step: int | None = None
                ) -> Scorer:
  """Builds the run's model (``config``: default the run's own) and restores
  its checkpoint (end of ``task``, global ``step`` or the newest)."""
  config = (config or evaluate.load_run_config(workdir)
            ).copy_and_resolve_references()
  evaluate.require_checkpoints(workdir)  # Before the (slow) build.
  # Only the model is needed: no warm start to re-read, and no epoch count
  # (which would build the codec-augmented copies) for the schedule length.
  config.init_from = ""
  if not config.train.steps_per_task:
    config.train.steps_per_task = 1
  exp = train.build_experiment(config)
  state, label = evaluate.restore_checkpoint(exp, workdir, task=task,
                                             step=step)
  return Scorer(exp=exp, state=state, eval_step=train.make_eval_step(exp),
                label=label)


class _Tap:
  """``source`` that remembers each record's id, label and ``fields`` as the
  loader reads it (every record exactly once), without keeping the audio."""

  def __init__(self, source, fields: Sequence[str] = ()):
    self._source = source
    self._fields = ("utt_id", "label") + tuple(fields)
    self.seen: dict[int, dict[str, Any]] = {}

  def __len__(self) -> int:
    return len(self._source)

  def __getitem__(self, index: int) -> Mapping[str, Any]:
    record = self._source[index]
    self.seen[int(index)] = {name: record.get(name, "")
                             for name in self._fields}
    return record


def _progress_bar(total: int, description: str, mode: str):
  """A tqdm bar on a terminal (``config.output.progress``), else None."""
  if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
    from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top
    return tqdm(total=total, desc=description, unit="utt",
                dynamic_ncols=True)
  return None


def pool_scores(values: np.ndarray, utt_index: np.ndarray, mask: np.ndarray,
                count: int, pool: str) -> np.ndarray:
  """Per-utterance ``mean``/``min``/``max`` of window scores (``eval_windows``
  outputs, concatenated)."""
  if pool not in POOLS:
    raise ValueError(f"--pool={pool!r}: use one of {list(POOLS)}.")
  # Also checks that every utterance has a window.
  mean = loader.pool_window_scores(values, utt_index, mask, count)
  if pool == "mean":
    return mean
  index = np.asarray(utt_index)[mask].astype(np.int64)
  valid = np.asarray(values, np.float64)[mask]
  out = np.full(count, np.inf if pool == "min" else -np.inf)
  (np.minimum if pool == "min" else np.maximum).at(out, index, valid)
  return out


def score_source(scorer: Scorer, source, *, windows: bool,
                 hop_length: int | None = None, pool: str = "mean",
                 fields: Sequence[str] = (), description: str = "scoring"
                 ) -> dict[str, Any]:
  """Scores every record of ``source`` once, in order.

  Args:
    scorer: from ``load_scorer``.
    source: random access ``{"audio", "label", "utt_id", ...}`` records.
    windows: False: the first window of each record (the loop's ``window``
      mode); True: every window (``loader.eval_windows``), pooled.
    hop_length: samples between windows (None: a window).
    pool: ``mean``, ``min`` or ``max`` of the window scores.
    fields: more record fields to return (e.g. ``system``).
    description: the progress bar's and error messages' name.

  Returns:
    ``{"scores": float64 [N], "predictions": int [N] (the class the model
    picks; a majority vote of the windows), "labels": int [N], "utt_ids":
    [N], <fields>}`` in source order.
  """
  exp, state = scorer.exp, scorer.state
  data = exp.config.data
  tap = _Tap(source, fields)
  if windows:
    batches = loader.eval_windows(
        tap, batch_size=data.eval_batch_size,
        window_length=scorer.window_length, hop_length=hop_length,
        pad_mode=data.pad_mode, split=description)
  else:
    batches = loader.eval_batches(
        tap, batch_size=data.eval_batch_size,
        window_length=scorer.window_length, pad_mode=data.pad_mode,
        split=description)
  extras = ((state.strategy_state, state.buffer)
            if exp.strategy.eval_logits is not None else ())
  bar = _progress_bar(len(source), description, exp.config.output.progress)
  outputs, masks, utt_index = [], [], []
  try:
    for batch in batches:
      # Each process feeds its rows; the step returns every row's scores.
      audio = step_lib.put_batch(distributed.local_rows(
          {"audio": batch["audio"]}, exp.mesh), exp.mesh)["audio"]
      # Fetched once, below.
      outputs.append(scorer.eval_step(state.variables, audio, extras))
      masks.append(batch["mask"])
      if windows:
        utt_index.append(batch["utt_index"])
      if bar is not None:
        bar.update(len(tap.seen) - bar.n)
  finally:
    if bar is not None:
      bar.close()
  count = len(source)
  mask = np.concatenate(masks)
  outputs = jax.device_get(outputs)
  scores = np.concatenate([o["scores"] for o in outputs]).astype(np.float64)
  predictions = np.concatenate([o["predictions"] for o in outputs])
  if windows:
    index = np.concatenate(utt_index)
    scores = pool_scores(scores, index, mask, count, pool)
    predictions = loader.pool_window_scores(predictions, index, mask, count,
                                            reduce="vote")
  else:
    scores, predictions = scores[mask], predictions[mask]
  records = [tap.seen[i] for i in range(count)]
  result = {"scores": scores, "predictions": np.asarray(predictions),
            "labels": np.asarray([int(r["label"]) for r in records]),
            "utt_ids": [str(r["utt_id"]) for r in records]}
  for name in fields:
    result[name] = [str(r[name]) for r in records]
  return result


def _stream_option(config, flag_value, field: str, default: str) -> str:
  if flag_value is not None:
    return flag_value
  stream = config.data.stream
  return str(stream[field]) if field in stream else default


def _as_written(scores: np.ndarray) -> np.ndarray:
  """The scores as the score files hold them (6 decimals)."""
  return np.asarray([float(f"{s:.6f}") for s in scores], np.float64)


def corpus_records(corpus: str, manual_dir: str, split: str | None, *,
                   sample_rate: int, resample: str, channels: str,
                   on_bad_file: str, data_dir: str):
  """``(records, split_label, fields)`` of a corpus split over the user's
  copy, prepared (once, cached) by the corpus's builder."""
  # pylint: disable=g-import-not-at-top
  from cljax.data.builders import _corpus
  from cljax.data.builders import asvspoof2019_la as la
  from cljax.data.builders import asvspoof2021_df as df
  from cljax.data.builders import in_the_wild as itw
  # pylint: enable=g-import-not-at-top
  layout = {"asvspoof2019_la": la.LAYOUT, "asvspoof2021_df": df.LAYOUT,
            "in_the_wild": itw.LAYOUT}[corpus]
  if not manual_dir or not os.path.isdir(manual_dir):
    raise ScoreError(
        f"--manual_dir={manual_dir!r} is not a folder: pass your copy of "
        f"{corpus}. Expected layout:\n{layout}")
  options = dict(data_dir=data_dir, sample_rate=sample_rate,
                 resample=resample, channels=channels,
                 on_bad_file=on_bad_file)
  manual_dir = os.path.abspath(manual_dir)
  if corpus == "asvspoof2019_la":
    split = split or "eval"
    if split not in la.SPLITS:
      raise ScoreError(f"--split={split!r}: ASVspoof 2019 LA has the splits "
                       f"{list(la.SPLITS)}.")
    builder = _corpus.prepare(la.Asvspoof2019La, manual_dir, splits=(split,),
                              **options)
    return _corpus.Records(builder, split), split, ("system",)
  if corpus == "asvspoof2021_df":
    split = split or "eval"
    subsets = () if split == "all" else tuple(
        s.strip() for s in split.split(",") if s.strip())
    if not subsets and split != "all":
      raise ScoreError(f"--split={split!r}: give key subsets of ASVspoof 2021 "
                       "DF (eval, progress, hidden_track, comma-separated) "
                       "or all.")
    builder = _corpus.prepare(df.Asvspoof2021Df, manual_dir, subsets=subsets,
                              **options)
    return (_corpus.Records(builder, "eval"), "+".join(subsets) or "all",
            ())
  if split not in (None, "test"):
    raise ScoreError(f"--split={split!r}: In-the-Wild has one split, test "
                     "(drop --split).")
  builder = _corpus.prepare(itw.InTheWild, manual_dir, **options)
  return _corpus.Records(builder, "test"), "test", ()


def list_folder(folder: str) -> tuple[list[str], list[int]]:
  """Relative paths of the audio files under ``folder`` (sorted) and their
  labels: 0/1 under top-level bona fide/spoof folders when the folder has
  both kinds, else -1 (unlabelled)."""
  if not os.path.isdir(folder):
    raise ScoreError(f"--folder={folder!r} is not a folder.")
  paths = []
  for root, dirs, files in os.walk(folder):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    for name in sorted(files):
      if not name.startswith(".") and name.lower().endswith(AUDIO_EXTENSIONS):
        paths.append(os.path.relpath(os.path.join(root, name), folder))
  if not paths:
    raise ScoreError(
        f"--folder={folder}: no audio files found (looked for "
        f"{'/'.join(AUDIO_EXTENSIONS)} files in it and its subfolders). "
        "Point --folder at the folder holding the clips, or convert them "
        "(`ffmpeg -i CLIP.mp3 CLIP.flac`).")
  paths.sort()
  tops = [p.split(os.sep)[0].lower() if os.sep in p else "" for p in paths]
  labels = [CLASS_FOLDERS.get(top, -1) for top in tops]
  if set(labels) - {-1} != {0, 1}:
    labels = [-1] * len(paths)
  return paths, labels


class FolderSource:
  """The files of a folder as records, decoded on access like the corpus
  builders do (``audio_io.decode_audio``); counts the resampled files."""

  def __init__(self, folder: str, paths: Sequence[str], labels: Sequence[int],
               *, sample_rate: int, resample: str, channels: str):
    self.folder, self.paths, self.labels = folder, list(paths), list(labels)
    self.sample_rate, self.resample, self.channels = (sample_rate, resample,
                                                      channels)
    self.resampled: list[str] = []

  def __len__(self) -> int:
    return len(self.paths)

  def __getitem__(self, index: int) -> dict[str, Any]:
    path = self.paths[int(index)]
    decoded = audio_io.decode_audio(
        os.path.join(self.folder, path), sample_rate=self.sample_rate,
        resample=self.resample, channels=self.channels, dtype="int16")
    if decoded.source_rate != self.sample_rate:
      self.resampled.append(path)
    return {"audio": decoded.samples, "label": self.labels[int(index)],
            "utt_id": path}


def _eer_line(eer: float) -> str:
  return f"  EER       = {100 * eer:.4f} %"


def score_corpus(scorer: Scorer, corpus: str, manual_dir: str, *,
                 split: str | None = None, out: str, asv_scores: str | None,
                 eval_mode: str | None = None, hop_seconds: float | None = None,
                 pool: str = "mean", resample: str | None = None,
                 channels: str | None = None, on_bad_file: str | None = None,
                 data_dir: str | None = None) -> dict[str, Any]:
  """Scores a corpus split; writes its score files and metrics to ``out``.

  Returns the metrics record (also ``<out>/<corpus>_<split>.json``).
  """
  if corpus not in CORPORA:
    raise ScoreError(f"--corpus={corpus!r}: choose one of {list(CORPORA)}.")
  if asv_scores and corpus != "asvspoof2019_la":
    raise ScoreError(
        f"--asv_scores is for ASVspoof 2019 LA (min t-DCF), not "
        f"--corpus={corpus}: drop it (only the EER is defined there).")
  config = scorer.exp.config
  records, split_label, fields = corpus_records(
      corpus, manual_dir, split, sample_rate=scorer.sample_rate,
      resample=_stream_option(config, resample, "resample", "warn"),
      channels=_stream_option(config, channels, "channels", "error"),
      on_bad_file=_stream_option(config, on_bad_file, "on_bad_file", "error"),
      data_dir=_stream_option(config, data_dir, "data_dir", ""))
  mode = eval_mode or config.data.eval_mode
  hop = None
  if mode == "full":
    hop_s = (hop_seconds if hop_seconds is not None
             else config.data.eval_hop_seconds) or config.data.eval_seconds
    hop = max(1, int(round(hop_s * scorer.sample_rate)))
  name = f"{corpus}_{split_label}"
  scored = score_source(scorer, records, windows=mode == "full",
                        hop_length=hop, pool=pool, fields=fields,
                        description=name)
  scores, labels = _as_written(scored["scores"]), scored["labels"]
  os.makedirs(out, exist_ok=True)
  score_file = os.path.join(out, f"{name}.txt")
  with open(score_file, "w") as f:
    for i, utt_id in enumerate(scored["utt_ids"]):
      if corpus == "asvspoof2019_la":
        f.write(f"{utt_id} {scored['system'][i]} {KEYS[labels[i]]} "
                f"{scores[i]:.6f}\n")
      else:
        f.write(f"{utt_id} {scores[i]:.6f}\n")
  files = [score_file]
  if corpus != "asvspoof2019_la":
    keyed = os.path.join(out, f"{name}_keyed.txt")
    with open(keyed, "w") as f:
      for utt_id, score, label in zip(scored["utt_ids"], scores, labels):
        f.write(f"{utt_id} {score:.6f} {KEYS[label]}\n")
    files.append(keyed)
  eer = metrics_lib.equal_error_rate(scores, labels)
  record = {"checkpoint": scorer.label, "corpus": corpus,
            "split": split_label, "trials": int(len(labels)),
            "bonafide": int(np.sum(labels == 0)),
            "spoof": int(np.sum(labels != 0)),
            "eval_mode": mode, "hop_samples": hop,
            "pool": pool if mode == "full" else None,
            "score": SCORE_CONVENTION, "score_files": files, "eer": eer}
  lines = [f"{scorer.label} on {corpus} {split_label}: {record['trials']} "
           f"trials ({record['bonafide']} bona fide, {record['spoof']} "
           "spoof)", _eer_line(eer)]
  if asv_scores:
    try:
      asv = tdcf_lib.read_asv_scores(asv_scores)
      result = tdcf_lib.min_tdcf(scores[labels == 0], scores[labels != 0],
                                 asv.target, asv.nontarget, asv.spoof)
    except (ValueError, FileNotFoundError) as error:
      raise ScoreError(f"--asv_scores={asv_scores}: {error}") from error
    record["min_tdcf"] = result.min_tdcf
    record["tdcf"] = result._asdict()
    lines.append(f"  min t-DCF = {result.min_tdcf:.6f}  (ASV EER "
                 f"{100 * result.eer_asv:.4f} %, ASVspoof 2019 cost model)")
  lines.append(f"score files: {', '.join(files)} (score = "
               f"{SCORE_CONVENTION})")
  return _report(out, name, record, lines)


def score_folder(scorer: Scorer, folder: str, *, out: str,
                 hop_seconds: float | None = None, pool: str = "mean",
                 resample: str | None = None, channels: str | None = None
                 ) -> dict[str, Any]:
  """Scores every audio file under ``folder`` whole (sliding windows,
  pooled); writes ``folder_<name>.txt``/``.json`` to ``out``."""
  paths, labels = list_folder(folder)
  config = scorer.exp.config
  source = FolderSource(
      folder, paths, labels, sample_rate=scorer.sample_rate,
      resample=_stream_option(config, resample, "resample", "warn"),
      channels=_stream_option(config, channels, "channels", "error"))
  if hop_seconds is not None and hop_seconds <= 0:
    raise ScoreError(f"--hop_seconds={hop_seconds} must be > 0.")
  hop = (max(1, int(round(hop_seconds * scorer.sample_rate)))
         if hop_seconds is not None else max(1, scorer.window_length // 2))
  base = os.path.basename(os.path.normpath(os.path.abspath(folder)))
  name = f"folder_{base}"
  started = time.time()
  scored = score_source(scorer, source, windows=True, hop_length=hop,
                        pool=pool, description=name)
  scores = _as_written(scored["scores"])
  os.makedirs(out, exist_ok=True)
  score_file = os.path.join(out, f"{name}.txt")
  with open(score_file, "w") as f:
    for path, score in zip(paths, scores):
      f.write(f"{path} {score:.6f}\n")
  labels = np.asarray(labels)
  labelled = labels >= 0
  record = {"checkpoint": scorer.label, "folder": os.path.abspath(folder),
            "files": len(paths), "window_samples": scorer.window_length,
            "hop_samples": hop, "sample_rate": scorer.sample_rate,
            "pool": pool, "resampled": len(source.resampled),
            "score": SCORE_CONVENTION, "score_file": score_file}
  lines = [f"{scorer.label} on {folder}: {len(paths)} files, windows of "
           f"{scorer.window_length} samples every {hop}, {pool} pooled, in "
           f"{time.time() - started:.1f} s"]
  if source.resampled:
    lines.append(f"  resampled {len(source.resampled)} file(s) to "
                 f"{scorer.sample_rate} Hz; first: "
                 + ", ".join(source.resampled[:5]))
  if labelled.any():
    eer = metrics_lib.equal_error_rate(scores[labelled], labels[labelled])
    record.update(eer=eer, bonafide=int(np.sum(labels == 0)),
                  spoof=int(np.sum(labels == 1)),
                  unlabelled=int(np.sum(~labelled)))
    lines.append(f"  labelled by folder: {record['bonafide']} bona fide, "
                 f"{record['spoof']} spoof, {record['unlabelled']} outside "
                 "the class folders (not in the EER)")
    lines.append(_eer_line(eer))
  else:
    lines.append("  no bonafide/ + spoof/ (or real/ + fake/) subfolders: no "
                 "labels, no EER")
  lines.append(f"score file: {score_file} (RELATIVE/PATH SCORE; score = "
               f"{SCORE_CONVENTION})")
  return _report(out, name, record, lines)


# Front ends that read images: a run with one of them scores image folders.
IMAGE_FRONTENDS = ("spectrum", "rgb")
IMAGE_METRICS = ("auc", "accuracy", "eer")


def is_image_run(config: ml_collections.ConfigDict) -> bool:
  return str(config.frontend.name) in IMAGE_FRONTENDS


def score_image_folder(scorer: Scorer, folder: str, *, out: str,
                       on_bad_file: str | None = None,
                       resize: str | None = None) -> dict[str, Any]:
  """Scores every image under ``folder`` (seed 001's ``--runtest``, seed
  002's ``--test``); writes ``folder_<name>.txt``/``.json`` to ``out``.

  Images are decoded and resized as the run's stream stored them (its
  ``image_size`` from the sample rate S*S*3, its ``resize``). With class
  folders (``0_real``/``1_fake`` or ``real``/``fake``, nested allowed) the
  JSON holds AUC, accuracy and EER (real = genuine = class 0).
  """
  # pylint: disable-next=g-import-not-at-top
  from cljax.data import image_io
  config = scorer.exp.config
  side = math.isqrt(scorer.sample_rate // 3)
  if side * side * 3 != scorer.sample_rate:
    raise ScoreError(
        f"The run's stream is not an image stream (sample rate "
        f"{scorer.sample_rate} is not S*S*3), so --folder cannot be scored "
        "as images.")
  started = time.time()
  records = image_io.folder_records(
      folder, side, resize=_stream_option(config, resize, "resize", "crop"),
      on_bad_file=_stream_option(config, on_bad_file, "on_bad_file",
                                 "error"))
  base = os.path.basename(os.path.normpath(os.path.abspath(folder)))
  name = f"folder_{base}"
  scored = score_source(scorer, records, windows=False, description=name)
  scores = _as_written(scored["scores"])
  labels = np.asarray(scored["labels"])
  os.makedirs(out, exist_ok=True)
  score_file = os.path.join(out, f"{name}.txt")
  class_names = list(scorer.exp.stream.class_names)
  with open(score_file, "w") as f:
    for path, score, label in zip(scored["utt_ids"], scores, labels):
      f.write(f"{path} {score:.6f}"
              + (f" {class_names[label]}" if label >= 0 else "") + "\n")
  record = {"checkpoint": scorer.label, "folder": os.path.abspath(folder),
            "images": len(records), "image_size": side,
            "layout": records.layout, "skipped": records.skipped,
            "upscaled": len(records.upscaled),
            "score": SCORE_CONVENTION, "score_file": score_file}
  lines = [f"{scorer.label} on {folder}: {len(records)} images at "
           f"{side}x{side} in {time.time() - started:.1f} s"]
  if records.skipped:
    lines.append(f"  SKIPPED {len(records.skipped)} bad file(s) "
                 "(--on_bad_file=skip); first: "
                 + "; ".join(records.skipped[:5]))
  if records.upscaled:
    lines.append(f"  {len(records.upscaled)} image(s) smaller than "
                 f"{side} px were up-scaled; first: "
                 + ", ".join(records.upscaled[:5]))
  if records.labelled:
    values = metrics_lib.compute_metrics(
        list(IMAGE_METRICS), scores=scores, labels=labels,
        predictions=scored["predictions"])
    record.update(values, real=int(np.sum(labels == 0)),
                  fake=int(np.sum(labels == 1)))
    lines.append(f"  labelled by folder ({records.layout}): {record['real']} "
                 f"real, {record['fake']} fake")
    lines.append("  " + "  ".join(
        f"{metric} = {metrics_lib.format_value(metric, values[metric])}"
        for metric in IMAGE_METRICS) + " (%)")
  else:
    lines.append("  no 0_real/1_fake (or real/fake) class folders: scores "
                 "only, no AUC")
  lines.append(f"score file: {score_file} (PATH SCORE [LABEL]; score = "
               f"{SCORE_CONVENTION})")
  return _report(out, name, record, lines)


def _report(out: str, name: str, record: dict[str, Any],
            lines: list[str]) -> dict[str, Any]:
  """Writes ``<out>/<name>.json``, prints ``lines`` and its path; returns
  ``record``."""
  metrics_file = os.path.join(out, f"{name}.json")
  with open(metrics_file, "w") as f:
    json.dump(record, f, indent=2)
  lines.append(f"metrics: {metrics_file}")
  print("\n".join(lines), flush=True)
  return record


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  workdir = FLAGS.workdir
  if not workdir:
    raise app.UsageError("--workdir (the run folder to load) is required.")
  if FLAGS.task is not None and FLAGS.step is not None:
    raise app.UsageError("Give --task or --step, not both.")
  if bool(_CORPUS.value) == bool(FLAGS.folder):
    raise app.UsageError("Give either --corpus=NAME --manual_dir=DIR or "
                         "--folder=DIR.")
  if _CORPUS.value and not _MANUAL_DIR.value:
    raise app.UsageError(f"--corpus={_CORPUS.value} needs --manual_dir=DIR "
                         "(your copy of the corpus).")
  if _ASV_SCORES.value and _CORPUS.value != "asvspoof2019_la":
    raise app.UsageError(
        "--asv_scores computes min t-DCF, defined on ASVspoof 2019 LA only: "
        "use it with --corpus=asvspoof2019_la, or drop it.")
  if FLAGS.folder and FLAGS.split:
    raise app.UsageError("--split is for --corpus; a folder has no splits.")
  # pylint: disable-next=g-import-not-at-top
  from cljax.data.builders._corpus import CorpusError
  # pylint: disable-next=g-import-not-at-top
  from cljax.data.image_io import ImageFileError
  try:
    images = is_image_run(FLAGS.config or evaluate.load_run_config(workdir))
    if images and _CORPUS.value:
      raise ScoreError(f"--corpus={_CORPUS.value} is an audio corpus and "
                       f"{workdir} is an image run: score an image folder "
                       "with --folder=DIR.")
    if FLAGS.folder and not images:
      list_folder(FLAGS.folder)  # Fails before the model is built.
    scorer = load_scorer(workdir, FLAGS.config, task=FLAGS.task,
                         step=FLAGS.step)
    out = FLAGS.out or os.path.join(workdir, "scores", scorer.label)
    common = dict(out=out, hop_seconds=_HOP_SECONDS.value,
                  pool=_POOL.value, resample=_RESAMPLE.value,
                  channels=_CHANNELS.value)
    if images:
      score_image_folder(scorer, FLAGS.folder, out=out,
                         on_bad_file=_ON_BAD_FILE.value)
    elif FLAGS.folder:
      score_folder(scorer, FLAGS.folder, **common)
    else:
      score_corpus(scorer, _CORPUS.value, _MANUAL_DIR.value,
                   split=FLAGS.split, asv_scores=_ASV_SCORES.value,
                   eval_mode=_EVAL_MODE.value, on_bad_file=_ON_BAD_FILE.value,
                   data_dir=_DATA_DIR.value, **common)
  except (ConfigError, FileNotFoundError, ScoreError, CorpusError,
          audio_io.AudioFileError, ImageFileError) as error:
    # Each names the flag, file or protocol line and the fix.
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
