r"""The deployment loop: intake -> train -> validate -> gate -> promote.

A new dataset arrives (``intake`` of a folder, or a folder dropped into a
watched inbox); it is validated, compared with the tasks the production
model knows and queued. ``run`` then takes each queued job through

  queued -> training -> trained -> gated -> promoted | rejected

and writes the job's state atomically after every stage, so a crash at any
point leaves production untouched and the next ``run`` resumes the job where
it stopped (training resumes from the candidate's own checkpoint).

Layout, inside the registry folder ``R`` (``cljax.deploy.registry``)::

  R/pipeline.json               the pipeline config (``init``)
  R/pipeline/jobs/j0001-<name>/ one job per dataset taken in
    job.json                    status, grouping decision, parent, gate ...
    intake.json                 the validation report (every bad file named)
    files.csv                   the validated files (path,label,split)
    manifest-<digest>.csv       the candidate's stream (all its tasks)
    work/                       the candidate's run folder (cljax.main's)
    gate.json                   the gate's report
  R/pipeline/cache/             prepared (TFDS) copies of the manifests
  R/pipeline/inbox.json         folders ``watch`` has taken in

Known tasks: what the *production* version was trained on, kept in its
registry ``meta.json`` (``lineage.tasks``: task name -> datasets;
``lineage.datasets``: name -> path, content hash, intake job). So a rollback
also rolls the known tasks back. The content hash is a SHA-256 over every
file's relative path, size and modification time (not the bytes: cheap on
large corpora; a file rewritten in place with the same size within the
same mtime tick would go unnoticed). Datasets are read where they lie; a
dataset changed or moved after intake fails the next candidate that needs
it, with its name.

Modality: a registry is audio or image, as its pipeline config's
``experiment.data.stream.name`` says (``audio_folder``:
``configs/pipeline_audio.py``; ``image_folders``:
``configs/pipeline_image.py``). A dataset of the other layout is rejected at
intake with the command that makes a registry for it (its files are counted,
not decoded); ``init --force`` refuses to switch a registry that holds
versions to the other modality, and ``Registry.register`` refuses to mix.

The continual step: a candidate's stream is the known tasks plus the new
one (an ``audio_folder`` stream over ``manifest-<digest>.csv`` with the
columns ``path,label,task,system,split``, or an ``image_folders`` stream
with ``layout="csv"`` over one with ``path,label,task,split,source`` and
``config.intake``'s ``image_size``/``resize``/``min_size``; the content
digest in the name keeps a prepared copy from being reused for other
content: the builder's cache is keyed by the manifest's path). Its
run folder starts with a copy of the production version's full state
(params, optimizer state, the strategy's state such as EWC's Fisher, replay
buffer, step) saved as a checkpoint whose progress says "N tasks done";
the ordinary training loop (``cljax.train``, unchanged) then resumes it,
trains only task N and evaluates every task. A dataset that *merges* into
a known task's group makes that group the last task (its data: the old
datasets plus the new one); the other tasks keep their order. The first
dataset, with no production model, trains from scratch. If production
moved between intake and training (a promotion, a rollback) the grouping
is decided again against the new production model; if it moves while a
candidate trains, the candidate is rejected (its parent is no longer
production).

Gate (``config.gate``): the new task's metric must reach ``new_task_max``
(at most it for a lower-is-better metric such as EER, the audio default; at
least it for AUC, the image default); with a parent, no other task may be
worse than the parent's number on it by more than ``max_degradation``.
Pass: the candidate is registered and promoted (the reason holds the
numbers). Fail: registered with status ``rejected`` and the failed rules in
its meta (``gate``) and the job.

Datasets: audio ``<ds>/{train,dev,test}/{bonafide,spoof}/*.wav|flac``
(``dev`` optional), every clip decoded by ``cljax.data.audio_io``; images
in seed 003's layout ``<ds>/{train,val,test}/{0_real,1_fake}/*.png|jpg``
(``val`` optional), every image decoded by ``cljax.data.image_io`` at
``config.intake.image_size`` (unreadable, truncated, too small files named
one by one in ``intake.json``).

Limits: versions made by the pipeline name their manifest and cache under
``R/pipeline`` by absolute path (serving rebuilds the stream from them):
keep that folder, and do not move ``R``. Every candidate prepares its own
copy of all its tasks' data (one decode of the history per candidate).
One ``run`` at a time (``R/pipeline/.run.lock``); SIGTERM/SIGINT during
training saves a checkpoint and stops, the next ``run`` resumes. A crash
during ``intake`` leaves that job in status ``intake``: take the dataset
in again.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime
import fcntl
import hashlib
import io
import json
import math
import os
import re
import shutil
import time
from typing import Any, Callable, Iterator, Mapping, Sequence

import ml_collections
import numpy as np

from cljax import config_schema
from cljax.deploy.registry import Registry
from cljax.io.results import ResultMatrix, atomic_write_text

CONFIG_FILE = "pipeline.json"
PIPELINE_DIR = "pipeline"
JOBS_DIR = "jobs"
CACHE_DIR = "cache"
INBOX_FILE = "inbox.json"
FORMAT = 1

# Job statuses, in order; "intake" only while a dataset is being taken in.
PENDING = ("queued", "training", "trained", "gated")
FINAL = ("promoted", "rejected")
STATUSES = ("intake",) + PENDING + FINAL

AUDIO_SPLITS = ("train", "dev", "test")
AUDIO_CLASSES = ("bonafide", "spoof")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")
IMAGE_SPLITS = ("train", "val", "test")
IMAGE_CLASSES = ("0_real", "1_fake")
MEASURES = ("cosine", "frechet")
# The stream a pipeline config's experiment names decides its registry's
# modality; the layouts detect_layout finds are named alike.
STREAM_MODALITY = {"audio_folder": "audio", "image_folders": "image"}
MODALITY_CONFIG = {"audio": "configs/pipeline_audio.py",
                   "image": "configs/pipeline_image.py"}
GROUPING_SPLITS = {"audio": ("train", "test", "dev"),
                   "image": ("train", "test", "val")}
# files.csv and the manifests name the classes as each stream reads them.
CLASS_LABELS = {"audio": AUDIO_CLASSES, "image": ("real", "fake")}
AUDIO_LAYOUT = "<dataset>/{train,dev,test}/{bonafide,spoof}/*.wav|flac " \
    "(dev optional)"
IMAGE_LAYOUT = "<dataset>/{train,val,test}/{0_real,1_fake}/*.png|jpg " \
    "(val optional)"
LAYOUTS = {"audio": AUDIO_LAYOUT, "image": IMAGE_LAYOUT}


class PipelineError(ValueError):
  """The pipeline cannot go on; the message names what and the fix."""


def modality_of(config: ml_collections.ConfigDict) -> str:
  """``"audio"`` or ``"image"``: what a pipeline config's registry trains
  (from ``config.experiment.data.stream.name``)."""
  name = config.experiment.data.stream.get("name")
  if name not in STREAM_MODALITY:
    raise PipelineError(
        f"config.experiment.data.stream.name={name!r}: the pipeline fills in "
        f"one of {sorted(STREAM_MODALITY)} (audio or image datasets); start "
        f"from {' or '.join(MODALITY_CONFIG.values())}.")
  return STREAM_MODALITY[name]


def mismatch_message(modality: str, layout: str) -> str:
  """Why a dataset of ``layout`` cannot enter a ``modality`` registry."""
  return (f"this registry trains {modality} models (its pipeline config's "
          "experiment.data.stream is "
          f"{[k for k, v in STREAM_MODALITY.items() if v == modality][0]!r})"
          f" and this is an {layout} dataset; a registry is audio or image, "
          f"not both. Take it into a registry of its own: python -m "
          f"cljax.pipeline init --registry=OTHER "
          f"--config={MODALITY_CONFIG[layout]}")


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec="seconds")


def _write_json(path: str, record: Any) -> None:
  atomic_write_text(path, json.dumps(record, indent=2, allow_nan=False,
                                     default=_json_default) + "\n")


def _json_default(value):
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  if isinstance(value, tuple):
    return list(value)
  raise TypeError(f"not JSON serialisable: {value!r}")


def _finite(value: float) -> float | None:
  value = float(value)
  return value if math.isfinite(value) else None


# ------------------------------------------------------------------ config


def pipeline_root(registry_root: str) -> str:
  return os.path.join(os.path.abspath(registry_root), PIPELINE_DIR)


def check_config(config: ml_collections.ConfigDict) -> None:
  """Checks the pipeline config; PipelineError naming the field."""
  from cljax import metrics  # pylint: disable=g-import-not-at-top
  from cljax.registry import ConfigError  # pylint: disable=g-import-not-at-top
  for block in ("experiment", "intake", "grouping", "gate"):
    if block not in config:
      raise PipelineError(f"the pipeline config has no '{block}' block; start "
                          "from configs/pipeline_audio.py or "
                          "configs/pipeline_image.py.")
  try:
    config_schema.validate(config.experiment)
  except ConfigError as error:
    raise PipelineError(f"config.experiment: {error}") from error
  gate, grouping, intake = config.gate, config.grouping, config.intake
  modality = modality_of(config)
  metric_names = tuple(config.experiment.eval.metrics)
  if gate.metric not in metric_names or gate.metric not in metrics.METRICS:
    raise PipelineError(f"config.gate.metric={gate.metric!r}: use one of "
                        f"config.experiment.eval.metrics {list(metric_names)}.")
  for field in ("new_task_max", "max_degradation"):
    value = gate[field]
    if not isinstance(value, (int, float)) or not math.isfinite(value) or (
        field == "max_degradation" and value < 0):
      raise PipelineError(f"config.gate.{field}={value!r}: a finite number "
                          "in the metric's units (fractions; >= 0 for "
                          "max_degradation).")
  if grouping.measure not in MEASURES:
    raise PipelineError(f"config.grouping.measure={grouping.measure!r}: use "
                        f"one of {list(MEASURES)}.")
  if not grouping.threshold >= 0:
    raise PipelineError(f"config.grouping.threshold={grouping.threshold!r}: "
                        "a distance >= 0 (0 never merges unless identical).")
  if int(grouping.max_per_class) < 2:
    raise PipelineError("config.grouping.max_per_class must be >= 2.")
  splits = GROUPING_SPLITS[modality]
  if grouping.split not in splits:
    raise PipelineError(f"config.grouping.split={grouping.split!r}: one of "
                        f"{list(splits)} (the {modality} layout's splits).")
  if modality == "image":
    from cljax.data import image_io  # pylint: disable=g-import-not-at-top
    for field in ("image_size", "resize", "min_size"):
      if field not in intake:
        raise PipelineError(f"config.intake has no {field!r}; an image "
                            "pipeline decodes every image at intake (start "
                            "from configs/pipeline_image.py).")
    try:
      image_io.check_image_options(intake.image_size, intake.resize,
                                   intake.min_size)
    except ValueError as error:
      raise PipelineError(str(error).replace("config.data.stream.",
                                             "config.intake.")) from error
  if intake.on_bad_file not in ("error", "skip"):
    raise PipelineError(f"config.intake.on_bad_file={intake.on_bad_file!r}: "
                        "'error' (reject the dataset) or 'skip' (leave the "
                        "bad files out, reported).")
  if int(intake.min_per_class) < 1:
    raise PipelineError("config.intake.min_per_class must be >= 1.")


def init(registry_root: str, config: ml_collections.ConfigDict, *,
         force: bool = False) -> str:
  """Writes ``R/pipeline.json``; refuses to replace a different one unless
  ``force`` (the candidates resume the production model's state, which
  needs the same model, optimizer and strategy)."""
  check_config(config)
  Registry(registry_root)  # Creates the registry folder.
  record = {"format": FORMAT,
            "config": json.loads(config.to_json_best_effort())}
  path = os.path.join(os.path.abspath(registry_root), CONFIG_FILE)
  modality = modality_of(config)
  registry = Registry(registry_root, create=False)
  for version in registry.versions():
    held = registry.meta(version).get("modality", "audio")
    if held != modality:
      raise PipelineError(
          f"{registry.root} holds {held} versions ({version}); this config "
          f"trains {modality} models and a registry is audio or image, not "
          "both (--force does not change that). Give another --registry.")
  if os.path.exists(path) and not force:
    with open(path, encoding="utf-8") as f:
      old = json.load(f)
    if old.get("config") != record["config"]:
      raise PipelineError(
          f"{path} holds another pipeline config. Pass --force to replace "
          "it (later candidates must still restore the production model: "
          "keep config.experiment's model, optimizer and strategy).")
  os.makedirs(os.path.join(pipeline_root(registry_root), JOBS_DIR),
              exist_ok=True)
  _write_json(path, record)
  return path


def load_config(registry_root: str) -> ml_collections.ConfigDict:
  path = os.path.join(os.path.abspath(registry_root), CONFIG_FILE)
  if not os.path.isfile(path):
    raise PipelineError(
        f"{path} does not exist: set the pipeline up first with python -m "
        f"cljax.pipeline init --registry={registry_root} "
        "--config=configs/pipeline_audio.py (or configs/pipeline_image.py "
        "for image datasets)")
  with open(path, encoding="utf-8") as f:
    record = json.load(f)
  return ml_collections.ConfigDict(record["config"])


def experiment_config(config: ml_collections.ConfigDict,
                      stream: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """``config.experiment`` on ``stream``, over the full base config."""
  experiment = json.loads(config.experiment.to_json_best_effort())
  experiment["data"]["stream"] = dict(stream)
  experiment["config_name"] = config.config_name
  return config_schema.from_saved(experiment)


def run_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a run folder (or registered version) was trained with."""
  return config_schema.load_saved(workdir)


def restore_version(registry: Registry, version: str,
                    experiment: ml_collections.ConfigDict | None = None):
  """``(exp, state, progress)``: ``version``'s checkpoint restored into the
  experiment ``experiment`` builds (default: the version's own config)."""
  from cljax import train  # pylint: disable=g-import-not-at-top
  from cljax.io.checkpoints import Checkpointer  # pylint: disable=g-import-not-at-top
  folder = registry.path(version)
  if experiment is None:
    experiment = run_config(folder)
    experiment.init_from = ""
  exp = train.build_experiment(experiment)
  abstract = train.initial_state(exp)
  source = Checkpointer(folder)
  try:
    state, progress = source.restore(abstract)
  except Exception as error:  # pylint: disable=broad-except
    raise PipelineError(
        f"{version}'s checkpoint ({folder}) does not restore into the state "
        f"the pipeline config builds ({type(error).__name__}: "
        f"{str(error)[:300]}). The model, optimizer or strategy of "
        "config.experiment changed since it was trained (or, e.g. GDumb by "
        "group, the strategy's state depends on the number of tasks); keep "
        "them, or start a new registry.") from error
  finally:
    source.close()
  return exp, state, progress


# ---------------------------------------------------------------- datasets


def content_hash(folder: str) -> tuple[str, int]:
  """``("sha256:<hex>", number of files)`` over every file's relative path,
  size and mtime (hidden files left out)."""
  digest = hashlib.sha256()
  count = 0
  for root, dirs, files in os.walk(folder):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    for name in sorted(f for f in files if not f.startswith(".")):
      path = os.path.join(root, name)
      stat = os.stat(path)
      digest.update(f"{os.path.relpath(path, folder)}\0{stat.st_size}\0"
                    f"{stat.st_mtime_ns}\n".encode())
      count += 1
  return "sha256:" + digest.hexdigest(), count


def _visible(folder: str) -> list[str]:
  return sorted(n for n in os.listdir(folder) if not n.startswith("."))


def detect_layout(folder: str) -> str | None:
  """``"audio"``, ``"image"`` or None from the class folder names."""
  names = set(_visible(folder))
  for layout, splits, classes in (("audio", AUDIO_SPLITS, AUDIO_CLASSES),
                                  ("image", IMAGE_SPLITS, IMAGE_CLASSES)):
    for split in splits:
      split_dir = os.path.join(folder, split)
      if split in names and os.path.isdir(split_dir) and (
          set(_visible(split_dir)) & set(classes)):
        return layout
  return None


@dataclasses.dataclass
class Validation:
  """What intake found: the report (JSON) and the usable files."""

  report: dict[str, Any]
  # (split, label, absolute path) of every usable file.
  files: list[tuple[str, int, str]]
  # Decoded clips of the grouping split, at most max_per_class per class.
  samples: list[dict[str, Any]]

  @property
  def ok(self) -> bool:
    return not self.report["errors"]


def validate_dataset(folder: str, config: ml_collections.ConfigDict
                     ) -> Validation:
  """Checks a dataset folder's layout, counts and every file.

  Audio: ``train`` and ``test`` (``dev`` optional) each with non-empty
  ``bonafide`` and ``spoof`` folders of at least ``intake.min_per_class``
  files, every file decoded by ``cljax.data.audio_io`` (unreadable,
  truncated, empty, multi-channel ... files are named one by one). Image:
  the same checks on ``{train,val,test}/{0_real,1_fake}`` (``val``
  optional), every file decoded by ``cljax.data.image_io`` at
  ``intake.image_size`` (unreadable, truncated, smaller than
  ``intake.min_size`` ... named one by one). A dataset whose layout is not
  the registry's modality is rejected; its files are counted by extension,
  not decoded (the config has no decoding settings for them).
  """
  from cljax.data import audio_io  # pylint: disable=g-import-not-at-top
  from cljax.data import image_io  # pylint: disable=g-import-not-at-top
  folder = os.path.abspath(folder)
  digest, num_files = content_hash(folder)
  layout = detect_layout(folder)
  report: dict[str, Any] = {
      "dataset": folder, "layout": layout, "hash": digest,
      "num_files": num_files, "counts": {}, "bad_files": [], "errors": [],
      "warnings": []}
  if layout is None:
    report["errors"].append(
        f"{folder}: neither layout found. Expected audio: {AUDIO_LAYOUT}; "
        f"or images: {IMAGE_LAYOUT}.")
    return Validation(report, [], [])
  modality = modality_of(config)
  decode = layout == modality
  if not decode:
    report["errors"].append(mismatch_message(modality, layout))
  intake, grouping = config.intake, config.grouping
  splits, classes, extensions = ((AUDIO_SPLITS, AUDIO_CLASSES,
                                  AUDIO_EXTENSIONS) if layout == "audio" else
                                 (IMAGE_SPLITS, IMAGE_CLASSES,
                                  image_io.IMAGE_EXTENSIONS))
  required = ("train", "test")
  for name in _visible(folder):
    if name not in splits:
      report["warnings"].append(
          f"{os.path.join(folder, name)}: not a split folder ({list(splits)}"
          "); ignored.")
  files, samples = [], []
  for split in splits:
    split_dir = os.path.join(folder, split)
    if not os.path.isdir(split_dir):
      if split in required:
        report["errors"].append(
            f"{split_dir}: missing; every dataset needs {list(required)} "
            f"splits. Expected: {LAYOUTS[layout]}.")
      continue
    for name in _visible(split_dir):
      if name not in classes:
        report["errors"].append(
            f"{os.path.join(split_dir, name)}: unexpected; a split folder "
            f"holds only {list(classes)}. Rename or move it.")
    counts = report["counts"].setdefault(split, {})
    for label, class_name in enumerate(classes):
      class_dir = os.path.join(split_dir, class_name)
      names = _visible(class_dir) if os.path.isdir(class_dir) else []
      good = 0
      for name in names:
        path = os.path.join(class_dir, name)
        problem, decoded = None, None
        if not name.lower().endswith(extensions):
          problem = f"not a{'n audio' if layout == 'audio' else 'n image'} " \
              f"file (extensions {list(extensions)})"
        elif not decode:
          pass  # Another modality's dataset: rejected above, counted only.
        elif layout == "audio":
          try:
            decoded = audio_io.decode_audio(
                path, sample_rate=int(intake.sample_rate),
                resample=intake.resample, channels=intake.channels).samples
          except audio_io.AudioFileError as error:
            problem = error.problem
        else:
          try:
            decoded = image_io.decode_image(
                path, int(intake.image_size), resize=intake.resize,
                min_size=int(intake.min_size)).reshape(-1)
          except image_io.ImageFileError as error:
            problem = error.problem
        if problem:
          report["bad_files"].append({"path": path, "problem": problem})
          continue
        if decoded is not None and split == grouping.split and sum(
            1 for s in samples if s["label"] == label) < int(
                grouping.max_per_class):
          samples.append({"audio": decoded, "label": label, "utt_id": path})
        good += 1
        files.append((split, label, path))
      counts[class_name] = good
      minimum = int(intake.min_per_class)
      if not os.path.isdir(class_dir):
        report["errors"].append(
            f"{class_dir}: missing; each split needs both classes "
            f"{list(classes)}.")
      elif good < minimum:
        report["errors"].append(
            f"{class_dir}: {good} usable file(s), fewer than "
            f"config.intake.min_per_class={minimum}.")
  if report["bad_files"] and intake.on_bad_file == "error":
    report["errors"].append(
        f"{len(report['bad_files'])} bad file(s) (listed under bad_files); "
        "fix or remove them, or set config.intake.on_bad_file='skip' to "
        "leave them out.")
  elif report["bad_files"]:
    report["warnings"].append(f"{len(report['bad_files'])} bad file(s) left "
                              "out (config.intake.on_bad_file='skip').")
  return Validation(report, files, samples)


def format_report(report: Mapping[str, Any]) -> str:
  """The intake report as lines a person reads."""
  lines = [f"dataset {report['dataset']} ({report.get('layout') or '?'} "
           f"layout, {report.get('num_files', 0)} files, "
           f"{report.get('hash', '')[:19]}...)"]
  for split, counts in report.get("counts", {}).items():
    lines.append(f"  {split}: " + ", ".join(f"{c} {n}" for c, n in
                                            counts.items()))
  for bad in report.get("bad_files", []):
    lines.append(f"  BAD FILE {bad['path']}: {bad['problem']}")
  for warning in report.get("warnings", []):
    lines.append(f"  warning: {warning}")
  for error in report.get("errors", []):
    lines.append(f"  ERROR: {error}")
  return "\n".join(lines)


# -------------------------------------------------------------------- jobs


def jobs_root(registry_root: str) -> str:
  return os.path.join(pipeline_root(registry_root), JOBS_DIR)


def job_dir(registry_root: str, job_id: str) -> str:
  return os.path.join(jobs_root(registry_root), job_id)


def read_job(registry_root: str, job_id: str) -> dict[str, Any]:
  with open(os.path.join(job_dir(registry_root, job_id), "job.json"),
            encoding="utf-8") as f:
    return json.load(f)


def write_job(registry_root: str, job: dict[str, Any]) -> None:
  """The commit point of every stage: job.json replaced atomically."""
  if job["status"] not in STATUSES:
    raise ValueError(f"unknown job status {job['status']!r}")
  job["updated"] = _now()
  _write_json(os.path.join(job_dir(registry_root, job["id"]), "job.json"),
              job)


def list_jobs(registry_root: str) -> list[dict[str, Any]]:
  """Every job, oldest first."""
  root = jobs_root(registry_root)
  if not os.path.isdir(root):
    return []
  jobs = []
  for name in sorted(_visible(root)):
    if os.path.isfile(os.path.join(root, name, "job.json")):
      jobs.append(read_job(registry_root, name))
  return jobs


@contextlib.contextmanager
def _lock(path: str, *, blocking: bool = True) -> Iterator[bool]:
  """An fcntl lock on ``path``; yields False if not blocking and held."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "a+") as f:
    try:
      fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if blocking else
                                               fcntl.LOCK_NB))
    except BlockingIOError:
      yield False
      return
    try:
      yield True
    finally:
      fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _safe_name(text: str) -> str:
  name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._-")
  return name or "dataset"


def production_tasks(registry: Registry, version: str | None
                     ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
  """``(tasks, datasets)`` a version was trained on (its lineage)."""
  if version is None:
    return [], {}
  lineage = registry.meta(version).get("lineage", {})
  if "tasks" not in lineage or "datasets" not in lineage:
    raise PipelineError(
        f"production version {version} was not made by the pipeline (its "
        "meta.json has no lineage.tasks): the pipeline cannot tell which "
        "tasks it knows. Promote a pipeline-made version, or start the "
        "pipeline in a new registry folder.")
  return list(lineage["tasks"]), dict(lineage["datasets"])


# ------------------------------------------------------------------ intake


def intake(registry_root: str, dataset: str, *,
           log: Callable[[str], None] = print) -> dict[str, Any]:
  """Validates ``dataset``, compares it with the known tasks, queues it.

  Returns the job (status ``queued``, or ``rejected`` with ``reasons``).
  Nothing is trained here.
  """
  config = load_config(registry_root)
  registry = Registry(registry_root)
  dataset = os.path.abspath(dataset)
  modality = modality_of(config)
  if not os.path.isdir(dataset):
    raise PipelineError(f"--dataset={dataset}: not a folder. Expected: "
                        f"{LAYOUTS[modality]}")
  # Before a job is made: a mixed registry is refused, not recorded.
  production = registry.production()
  if production is not None:
    held = registry.meta(production).get("modality", "audio")
    if held != modality:
      raise PipelineError(
          f"production {production} of {registry.root} is an {held} model "
          f"but {CONFIG_FILE} trains {modality} models; a registry is audio "
          "or image, not both. Restore the pipeline config it was made with "
          "(python -m cljax.pipeline init --force --config="
          f"{MODALITY_CONFIG[held]}) or use another registry.")
  with _lock(os.path.join(pipeline_root(registry_root), ".jobs.lock")):
    numbers = [int(j["id"][1:5]) for j in list_jobs(registry_root)]
    job_id = f"j{max(numbers, default=0) + 1:04d}-" + _safe_name(
        os.path.basename(dataset))[:40]
    os.makedirs(job_dir(registry_root, job_id))
    job = {"id": job_id, "dataset": dataset, "status": "intake",
           "created": _now()}
    write_job(registry_root, job)
  folder = job_dir(registry_root, job_id)
  validation = validate_dataset(dataset, config)
  report = validation.report
  _write_json(os.path.join(folder, "intake.json"), report)
  log(format_report(report))
  job.update(layout=report["layout"], hash=report["hash"],
             counts=report["counts"],
             bad_files=len(report["bad_files"]))
  reasons = list(report["errors"])
  production = registry.production()
  known_tasks, known_datasets = production_tasks(registry, production)
  if not reasons:
    for name, record in known_datasets.items():
      if record.get("hash") == report["hash"]:
        reasons.append(f"duplicate: the same files as known dataset {name!r}"
                       f" ({record.get('path')}), already in production "
                       f"{production}.")
    for other in list_jobs(registry_root):
      if other["id"] != job_id and other["status"] in PENDING and (
          other.get("hash") == report["hash"]):
        reasons.append(f"duplicate: the same files are already queued as "
                       f"job {other['id']} ({other['status']}).")
  if reasons:
    job.update(status="rejected", stage="intake", reasons=reasons)
    write_job(registry_root, job)
    log(f"{job_id}: REJECTED at intake: " + " | ".join(reasons))
    return job
  taken = ({t["name"] for t in known_tasks} | set(known_datasets) |
           {j.get("name") for j in list_jobs(registry_root)
            if j["status"] in PENDING + ("promoted",)})
  name = base = _safe_name(os.path.basename(dataset))
  suffix = 2
  while name in taken:
    name, suffix = f"{base}-{suffix}", suffix + 1
  _write_files(os.path.join(folder, "files.csv"), validation.files,
               modality)
  job.update(name=name, files=len(validation.files),
             grouping=decide_grouping(registry, config, production,
                                      validation.samples, log=log))
  job["status"] = "queued"
  write_job(registry_root, job)
  grouping = job["grouping"]
  log(f"{job_id}: queued as {name!r}: {grouping['decision']}"
      + (f" -> group {grouping['group']!r}" if grouping.get("group") else "")
      + f" ({grouping['why']})")
  return job


def _write_files(path: str, files: Sequence[tuple[str, int, str]],
                 modality: str = "audio") -> None:
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(["path", "label", "split"])
  for split, label, file_path in files:
    writer.writerow([file_path, CLASS_LABELS[modality][label], split])
  atomic_write_text(path, out.getvalue())


def _read_files(path: str) -> list[tuple[str, int, str]]:
  """``(split, label, path)`` rows of a job's files.csv (either modality's
  class names: bonafide/spoof or real/fake)."""
  index = {name: label for names in CLASS_LABELS.values()
           for label, name in enumerate(names)}
  with open(path, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  return [(r["split"], index[r["label"]], r["path"]) for r in rows]


def _capped(source, cap: int):
  """The first ``cap`` records of each class of ``source`` (a view)."""
  if hasattr(source, "field_values"):
    labels = source.field_values("label")
  else:
    labels = [int(source[i]["label"]) for i in range(len(source))]
  keep, seen = [], {}
  for index, label in enumerate(labels):
    if seen.get(int(label), 0) < cap:
      seen[int(label)] = seen.get(int(label), 0) + 1
      keep.append(index)
  if hasattr(source, "subset"):
    return source.subset(keep)
  return [source[i] for i in keep]


def decide_grouping(registry: Registry, config: ml_collections.ConfigDict,
                    production: str | None, samples: list[dict[str, Any]],
                    *, log: Callable[[str], None] = print) -> dict[str, Any]:
  """New task or merge: the new dataset's ``grouping.split`` and each known
  task's, embedded by the production model, compared by
  ``config.grouping.measure``; the nearest task at distance <=
  ``threshold`` takes the dataset into its group."""
  grouping = config.grouping
  decision = {"production": production, "measure": grouping.measure,
              "threshold": float(grouping.threshold), "split": grouping.split,
              "distances": {}}
  if production is None:
    return dict(decision, decision="new", group=None,
                why="no production model yet: the first task")
  from cljax import grouping as grouping_lib  # pylint: disable=g-import-not-at-top
  tasks, _ = production_tasks(registry, production)
  names = [t["name"] for t in tasks]
  exp, state, _ = restore_version(registry, production)
  by_name = {task.name: task for task in exp.stream.tasks}
  missing = [n for n in names if n not in by_name]
  if missing:
    raise PipelineError(f"production {production}'s stream lacks the tasks "
                        f"{missing} its lineage names; re-register it.")
  split = grouping.split
  cap = int(grouping.max_per_class)
  sources = []
  for name in names:
    task = by_name[name]
    if split not in task.splits:
      raise PipelineError(f"known task {name!r} has no {split!r} split; set "
                          "config.grouping.split to one every task has.")
    sources.append(_capped(task.split(split), cap))
  if not samples:
    raise PipelineError(f"the new dataset has no usable {split!r} files to "
                        "compare (config.grouping.split).")
  embeddings, labels = grouping_lib.task_embeddings(
      exp, state.variables, sources + [samples], split)
  if grouping.measure == "cosine":
    distance, _ = grouping_lib.cosine_distances(embeddings, labels)
  else:
    distance, _ = grouping_lib.frechet_distances(embeddings, labels)
  row = distance[-1, :-1]
  decision["distances"] = {n: float(d) for n, d in zip(names, row)}
  nearest = int(np.argmin(row))
  if row[nearest] <= grouping.threshold:
    return dict(decision, decision="merge", group=names[nearest],
                why=f"{grouping.measure} distance {row[nearest]:.4f} to "
                f"{names[nearest]!r} <= threshold {grouping.threshold:g}")
  log(f"grouping distances ({grouping.measure}): " + ", ".join(
      f"{n} {d:.4f}" for n, d in zip(names, row)))
  return dict(decision, decision="new", group=None,
              why=f"nearest task {names[nearest]!r} at {grouping.measure} "
              f"distance {row[nearest]:.4f} > threshold "
              f"{grouping.threshold:g}")


# --------------------------------------------------------------------- run


def run(registry_root: str, *, log: Callable[[str], None] = print,
        max_jobs: int | None = None) -> list[dict[str, Any]]:
  """Processes the queue in order, each job to promoted or rejected.

  A job that raises keeps its last committed status (and ``error``); the
  exception propagates and the next ``run`` resumes it. Returns the jobs
  processed. Raises PipelineError if another ``run`` holds the queue.
  """
  with _lock(os.path.join(pipeline_root(registry_root), ".run.lock"),
             blocking=False) as held:
    if not held:
      raise PipelineError(
          f"another pipeline run is processing {registry_root} (it holds "
          f"{pipeline_root(registry_root)}/.run.lock); wait for it.")
    done = []
    for job in list_jobs(registry_root):
      if job["status"] not in PENDING:
        continue
      if max_jobs is not None and len(done) >= max_jobs:
        break
      done.append(process_job(registry_root, job["id"], log=log))
    return done


def process_job(registry_root: str, job_id: str, *,
                log: Callable[[str], None] = print) -> dict[str, Any]:
  """Takes one job through the stages from its committed status."""
  config = load_config(registry_root)
  registry = Registry(registry_root)
  job = read_job(registry_root, job_id)
  stages = {"queued": prepare_candidate, "training": train_candidate,
            "trained": gate_candidate, "gated": finish_candidate}
  while job["status"] in stages:
    status = job["status"]
    log(f"{job_id}: {status} -> next stage")
    try:
      job = stages[status](registry_root, registry, config, job, log=log)
    except BaseException as error:
      job = read_job(registry_root, job_id)  # The last committed state.
      job["error"] = f"{type(error).__name__} in stage {status}: {error}"[:2000]
      write_job(registry_root, job)
      raise
    job.pop("error", None)
    write_job(registry_root, job)
  return job


def _stream_block(config, folder: str, manifest: str) -> dict[str, Any]:
  intake = config.intake
  data_dir = os.path.join(os.path.dirname(os.path.dirname(folder)),
                          CACHE_DIR)
  if modality_of(config) == "image":
    return {"name": "image_folders", "layout": "csv", "manifest": manifest,
            "data_dir": data_dir, "image_size": int(intake.image_size),
            "resize": intake.resize, "min_size": int(intake.min_size)}
  return {"name": "audio_folder", "manifest": manifest,
          "data_dir": data_dir,
          "sample_rate": int(intake.sample_rate), "resample": intake.resample,
          "channels": intake.channels}


def _dataset_record(job: Mapping[str, Any]) -> dict[str, Any]:
  return {"path": job["dataset"], "hash": job["hash"], "job": job["id"],
          "files": job.get("files")}


def prepare_candidate(registry_root: str, registry: Registry, config,
                      job: dict[str, Any], *, log=print) -> dict[str, Any]:
  """queued -> training: the candidate's tasks, manifest, run folder and
  (with a production model) its starting checkpoint."""
  from cljax import run as run_lib  # pylint: disable=g-import-not-at-top
  folder = job_dir(registry_root, job["id"])
  parent = registry.production()
  if job["grouping"].get("production") != parent:
    # Production moved since intake: compare with what it knows now.
    samples = _grouping_samples(folder, config)
    job["grouping"] = decide_grouping(registry, config, parent, samples,
                                      log=log)
    job["grouping"]["regrouped"] = True
  tasks, datasets = production_tasks(registry, parent)
  datasets = dict(datasets)
  datasets[job["name"]] = _dataset_record(job)
  grouping = job["grouping"]
  if grouping["decision"] == "merge":
    group = grouping["group"]
    merged = [t for t in tasks if t["name"] == group]
    if not merged:
      raise PipelineError(f"{job['id']}: group {group!r} is not a task of "
                          f"production {parent}.")
    tasks = [t for t in tasks if t["name"] != group] + [{
        "name": group, "datasets": merged[0]["datasets"] + [job["name"]]}]
    new_task = group
  else:
    tasks = tasks + [{"name": job["name"], "datasets": [job["name"]]}]
    new_task = job["name"]
  done = len(tasks) - 1
  for task in tasks:
    for name in task["datasets"]:
      record = datasets[name]
      if name != job["name"] and content_hash(record["path"])[0] != (
          record["hash"]):
        raise PipelineError(
            f"known dataset {name!r} at {record['path']} changed (or moved) "
            "since it was taken in; the candidate would train on other data "
            "than its parent. Restore it, or start a new registry.")
  current = content_hash(job["dataset"])[0]
  if current != job["hash"]:
    raise PipelineError(
        f"{job['dataset']} changed since intake (hash {current[:19]}... vs "
        f"{job['hash'][:19]}...); take it in again.")
  image = modality_of(config) == "image"
  rows = []
  for task in tasks:
    for name in task["datasets"]:
      files_csv = os.path.join(job_dir(registry_root, datasets[name]["job"]),
                               "files.csv")
      for split, label, path in _read_files(files_csv):
        if image:  # image_folders' manifest; source: the dataset.
          rows.append([path, CLASS_LABELS["image"][label], task["name"],
                       split, name])
        else:
          rows.append([path, AUDIO_CLASSES[label], task["name"],
                       "-" if label == 0 else name, split])
  out = io.StringIO()
  writer = csv.writer(out, lineterminator="\n")
  writer.writerow(["path", "label", "task", "split", "source"] if image else
                  ["path", "label", "task", "system", "split"])
  writer.writerows(rows)
  workdir = os.path.join(folder, "work")
  if os.path.exists(workdir):  # A preparation that crashed: start over.
    shutil.rmtree(workdir)
  text = out.getvalue()
  manifest = os.path.join(folder, "manifest-" + hashlib.sha256(
      text.encode()).hexdigest()[:12] + ".csv")
  atomic_write_text(manifest, text)
  stream = dict(_stream_block(config, folder, manifest),
                tasks=[t["name"] for t in tasks])
  experiment = experiment_config(config, stream)
  run_lib.prepare_workdir(experiment, workdir, force=False)
  if parent is not None:
    _seed_checkpoint(registry, parent, experiment, workdir, done,
                     fresh=[new_task])
  job.update(status="training", parent=parent, tasks=tasks,
             datasets={n: datasets[n] for t in tasks for n in t["datasets"]},
             tasks_done=done, new_task=new_task, workdir=workdir,
             manifest=manifest,
             started=_now())
  log(f"{job['id']}: training {new_task!r} as task {done + 1} of "
      f"{len(tasks)} " + (f"from production {parent}" if parent else
                          "from scratch (no production model yet)"))
  return job


def _grouping_samples(folder: str, config) -> list[dict[str, Any]]:
  # pylint: disable-next=g-import-not-at-top
  from cljax.data import audio_io, image_io
  samples, cap = [], int(config.grouping.max_per_class)
  intake = config.intake
  image = modality_of(config) == "image"
  for split, label, path in _read_files(os.path.join(folder, "files.csv")):
    if split == config.grouping.split and sum(
        s["label"] == label for s in samples) < cap:
      if image:
        decoded = image_io.decode_image(
            path, int(intake.image_size), resize=intake.resize,
            min_size=int(intake.min_size)).reshape(-1)
      else:
        decoded = audio_io.decode_audio(
            path, sample_rate=int(intake.sample_rate),
            resample=intake.resample, channels=intake.channels).samples
      samples.append({"audio": decoded, "label": label, "utt_id": path})
  return samples


def _seed_checkpoint(registry: Registry, parent: str,
                     experiment: ml_collections.ConfigDict, workdir: str,
                     done: int, fresh: Sequence[str]) -> None:
  """The parent's full state saved in ``workdir`` as "``done`` tasks done".

  The result matrix carries the parent's rows of the tasks done (by task
  name; NaN for the tasks whose data is new), so the candidate's
  ``results.json`` reads as the history it continues.
  """
  from cljax import metrics  # pylint: disable=g-import-not-at-top
  from cljax.io.checkpoints import Checkpointer  # pylint: disable=g-import-not-at-top
  exp, state, progress = restore_version(registry, parent, experiment)
  parent_results = ResultMatrix.from_json(progress["results"])
  names = exp.stream.task_names
  results = ResultMatrix(
      task_names=names, method=experiment.strategy.name,
      config_name=experiment.config_name, seed=experiment.seed,
      memory_bytes=parent_results.memory_bytes,
      metrics={m: metrics.METRICS[m].higher_is_better
               for m in experiment.eval.metrics})
  for name in names[:done]:
    row_index = parent_results.task_names.index(name)
    row = []
    for column in names:
      values = {}
      for metric in experiment.eval.metrics:
        value = math.nan
        if (column in parent_results.task_names and column not in fresh
            and metric in parent_results.metrics):
          value = parent_results.matrix(metric)[
              row_index, parent_results.task_names.index(column)]
        values[metric] = value
      row.append(values)
    results.add_row(row)
  target = Checkpointer(workdir, keep_latest=experiment.train
                        .checkpoints_to_keep)
  try:
    target.save(state, {"step": int(progress["step"]), "task": done,
                        "task_step": 0, "iterator": None,
                        "results": results.to_json()})
    target.wait()
  finally:
    target.close()


def train_candidate(registry_root: str, registry: Registry, config,
                    job: dict[str, Any], *, log=print) -> dict[str, Any]:
  """training -> trained: the training loop resumes the candidate's run
  folder (its starting checkpoint, or wherever a crash left it)."""
  del registry, config
  from cljax import run as run_lib  # pylint: disable=g-import-not-at-top
  from cljax import train  # pylint: disable=g-import-not-at-top
  run_lib.quiet_library_logs()
  workdir = job["workdir"]
  experiment = run_config(workdir)
  results = train.train_and_evaluate(experiment, workdir)
  log(run_lib.matrix_table(results, results.metric_names[0]))
  final = {}
  for metric in results.metric_names:
    row = results.matrix(metric)[-1]
    for name, value in zip(results.task_names, row):
      final.setdefault(name, {})[metric] = _finite(value)
  job.update(status="trained", results=final, trained=_now())
  del registry_root
  return job


def gate_decision(config, job: Mapping[str, Any],
                  parent_metrics: Mapping[str, Mapping[str, Any]] | None
                  ) -> dict[str, Any]:
  """The gate's rules on a trained job's numbers (see the module doc)."""
  from cljax import metrics  # pylint: disable=g-import-not-at-top
  gate = config.gate
  metric = gate.metric
  higher = metrics.METRICS[metric].higher_is_better
  results = job["results"]
  new_task = job["new_task"]
  rules, failed = [], []

  def shown(value):
    return "n/a" if value is None else f"{100 * value:.2f} %"

  value = results[new_task][metric]
  passed = value is not None and (value >= gate.new_task_max if higher
                                  else value <= gate.new_task_max)
  rules.append({"rule": "new_task", "task": new_task, "metric": metric,
                "value": value, "threshold": float(gate.new_task_max),
                "passed": bool(passed)})
  if not passed:
    failed.append(
        f"new task {new_task!r}: {metric} {shown(value)} "
        f"{'<' if higher else '>'} required "
        f"{shown(float(gate.new_task_max))} (config.gate.new_task_max)")
  for name, values in results.items():
    if name == new_task or parent_metrics is None:
      continue
    before = (parent_metrics.get(name) or {}).get(metric)
    after = values[metric]
    if before is None:
      continue
    degradation = None if after is None else (
        before - after if higher else after - before)
    passed = degradation is not None and degradation <= gate.max_degradation
    rules.append({"rule": "no_degradation", "task": name, "metric": metric,
                  "production": before, "candidate": after,
                  "degradation": degradation,
                  "threshold": float(gate.max_degradation),
                  "passed": bool(passed)})
    if not passed:
      failed.append(
          f"known task {name!r}: {metric} {shown(before)} -> {shown(after)}, "
          f"{'n/a' if degradation is None else f'{100 * degradation:.2f}'} "
          f"points worse > allowed {100 * gate.max_degradation:.2f} "
          "(config.gate.max_degradation)")
  summary = "; ".join(
      f"{r['task']} {metric} {shown(r.get('value', r.get('candidate')))}"
      for r in rules)
  return {"passed": not failed, "metric": metric, "rules": rules,
          "failed": failed, "summary": summary,
          "parent": job.get("parent"), "time": _now()}


def gate_candidate(registry_root: str, registry: Registry, config,
                   job: dict[str, Any], *, log=print) -> dict[str, Any]:
  """trained -> gated: the gate's decision, written to gate.json."""
  parent_metrics = (registry.meta(job["parent"])["metrics"]
                    if job.get("parent") else None)
  report = gate_decision(config, job, parent_metrics)
  _write_json(os.path.join(job_dir(registry_root, job["id"]), "gate.json"),
              report)
  log(f"{job['id']}: gate {'PASSED' if report['passed'] else 'FAILED'}: "
      + (" | ".join(report["failed"]) or report["summary"]))
  job.update(status="gated", gate=report)
  return job


def _registered(registry: Registry, workdir: str) -> str | None:
  """The version already registered from ``workdir`` (a crash between
  register and the job's commit), if any."""
  for version in registry.versions():
    if registry.meta(version).get("source", {}).get("workdir") == (
        os.path.abspath(workdir)):
      return version
  return None


def finish_candidate(registry_root: str, registry: Registry, config,
                     job: dict[str, Any], *, log=print) -> dict[str, Any]:
  """gated -> promoted | rejected: register the candidate; promote it if
  it passed and production is still its parent."""
  del config
  report = dict(job["gate"])
  lineage = {"tasks": job["tasks"], "datasets": job["datasets"],
             "pipeline": {"job": job["id"], "dataset": job["name"],
                          "decision": job["grouping"]["decision"],
                          "new_task": job["new_task"]}}
  version = _registered(registry, job["workdir"]) or registry.register(
      job["workdir"], parent=job.get("parent"), lineage=lineage,
      note=f"pipeline job {job['id']}")
  job["version"] = version
  production = registry.production()
  if report["passed"] and production != job.get("parent"):
    report["passed"] = False
    report["failed"] = [f"production moved from {job.get('parent')} to "
                        f"{production} while this candidate trained; take "
                        "the dataset in again to train from the new one"]
  if report["passed"]:
    registry.update_meta(version, gate=report)
    registry.promote(version, reason=(
        f"pipeline {job['id']}: gate passed: {report['summary']}"))
    job.update(status="promoted", finished=_now())
    log(f"{job['id']}: PROMOTED {version} ({report['summary']})")
  else:
    registry.update_meta(version, status="rejected", gate=report)
    job.update(status="rejected", stage="gate", reasons=report["failed"],
               finished=_now())
    log(f"{job['id']}: REJECTED {version}; production stays "
        f"{production}: " + " | ".join(report["failed"]))
  return job


# ------------------------------------------------------------------- watch


def scan_inbox(registry_root: str, inbox: str, *, settle: bool,
               log: Callable[[str], None] = print) -> list[dict[str, Any]]:
  """Takes in every new (or changed) subfolder of ``inbox``.

  With ``settle`` a folder is taken only once its content hash is the same
  on two scans (a copy still in progress is left for the next one).
  """
  inbox = os.path.abspath(inbox)
  if not os.path.isdir(inbox):
    raise PipelineError(f"--inbox={inbox}: not a folder; create it "
                        "(mkdir -p) and drop dataset folders into it.")
  state_path = os.path.join(pipeline_root(registry_root), INBOX_FILE)
  state = {"taken": {}, "seen": {}}
  if os.path.exists(state_path):
    with open(state_path, encoding="utf-8") as f:
      state = json.load(f)
  jobs = []
  for name in _visible(inbox):
    path = os.path.join(inbox, name)
    if not os.path.isdir(path):
      continue
    digest, _ = content_hash(path)
    if state["taken"].get(path) == digest:
      continue
    if settle and state["seen"].get(path) != digest:
      state["seen"][path] = digest  # Taken next scan if unchanged.
      continue
    job = intake(registry_root, path, log=log)
    state["taken"][path] = digest
    state["seen"].pop(path, None)
    _write_json(state_path, state)
    jobs.append(job)
  _write_json(state_path, state)
  return jobs


def watch(registry_root: str, inbox: str, *, once: bool = False,
          poll_seconds: float = 10.0,
          log: Callable[[str], None] = print) -> None:
  """Polls ``inbox``: each new subfolder is taken in, then the queue is
  run. ``once``: one scan (no settling wait) and one run."""
  from cljax.train import Interrupted  # pylint: disable=g-import-not-at-top
  load_config(registry_root)  # Not set up: say so before polling.
  while True:
    try:
      scan_inbox(registry_root, inbox, settle=not once, log=log)
      if any(j["status"] in PENDING for j in list_jobs(registry_root)):
        run(registry_root, log=log)
    except Interrupted:
      raise  # SIGTERM/SIGINT: the training saved its state; stop.
    except Exception as error:  # pylint: disable=broad-except
      if once:
        raise
      # A watcher outlives one bad job: the job keeps its error (status)
      # and is retried at the next scan.
      log(f"watch: {type(error).__name__}: {error}; retrying in "
          f"{poll_seconds:g} s")
    if once:
      return
    time.sleep(poll_seconds)


# ------------------------------------------------------------------ export


def export_benchmark(family: str, out: str, *, max_per_class: int = 0,
                     data_dir: str = "",
                     log: Callable[[str], None] = print) -> str:
  """Writes one family of an embedded benchmark as a dataset folder, the way
  to try the loop without a corpus of one's own.

  A family of the speech benchmark (e.g. ``espeak``) becomes an audio
  dataset, ``out/{train,dev,test}/{bonafide,spoof}/<utt>.wav`` (16 kHz);
  a family of the image benchmark (e.g. ``bicubic_x2``;
  ``cljax.data.image_stream``) an image dataset in seed 003's layout,
  ``out/{train,val,test}/{0_real,1_fake}/<id>.png`` (its 64-px crops,
  lossless).

  ``max_per_class``: at most that many files per class and split (the
  first ones; 0 keeps all). The genuine clips/crops are the benchmark's,
  shared by every family. Raises PipelineError if the benchmark cannot be
  read here (the image benchmark is built on first use).
  """
  from cljax.data.builders import _image_generators  # pylint: disable=g-import-not-at-top
  image = family in _image_generators.GENERATORS
  try:
    if image:
      from cljax.data import image_stream  # pylint: disable=g-import-not-at-top
      stream = image_stream.image_benchmark_stream(
          families=(family,), data_dir=data_dir or None, fallback=False)
    else:
      from cljax.data import speech_stream  # pylint: disable=g-import-not-at-top
      stream = speech_stream.speech_benchmark_stream(
          families=(family,), data_dir=data_dir or None, fallback=False)
  except (ValueError, RuntimeError) as error:
    raise PipelineError(
        f"--family={family}: {error}" + ("" if image else
        f" (image benchmark families: {list(_image_generators.GENERATORS)})")
        ) from error
  out = os.path.abspath(out)
  if os.path.exists(out) and _visible(out):
    raise PipelineError(f"--out={out} exists and is not empty; give a new "
                        "folder (e.g. inbox/<family>).")
  task = stream.tasks[0]
  tmp = out.rstrip(os.sep) + ".partial"
  shutil.rmtree(tmp, ignore_errors=True)
  counts = {}
  for split, folder_name in (("train", "train"),
                             ("val", "val" if image else "dev"),
                             ("test", "test")):
    if split not in task.splits:
      continue
    source = task.split(split)
    if max_per_class:
      source = _capped(source, int(max_per_class))
    for index in range(len(source)):
      record = source[index]
      class_name = (IMAGE_CLASSES if image else AUDIO_CLASSES)[
          int(record["label"])]
      folder = os.path.join(tmp, folder_name, class_name)
      os.makedirs(folder, exist_ok=True)
      name = _safe_name(str(record["utt_id"]))
      if image:
        _write_png(os.path.join(folder, name + ".png"), record["audio"])
      else:
        import soundfile  # pylint: disable=g-import-not-at-top
        soundfile.write(os.path.join(folder, name + ".wav"),
                        np.asarray(record["audio"]), stream.sample_rate,
                        subtype="PCM_16")
      key = f"{folder_name}/{class_name}"
      counts[key] = counts.get(key, 0) + 1
  # Whole or absent: a watcher never takes in a half-written export.
  os.makedirs(os.path.dirname(out), exist_ok=True)
  if os.path.exists(out):
    os.rmdir(out)
  os.rename(tmp, out)
  log(f"Wrote {family} to {out}: " + ", ".join(
      f"{k} {v}" for k, v in sorted(counts.items())))
  return out


def _write_png(path: str, record_pixels: np.ndarray) -> None:
  """An image record (``[S*S*3]`` uint8, the image-record contract) as PNG."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  pixels = np.asarray(record_pixels, np.uint8)
  side = math.isqrt(pixels.size // 3)
  Image.fromarray(pixels.reshape(side, side, 3)).save(path)


# ------------------------------------------------------------------ status


def status(registry_root: str) -> dict[str, Any]:
  """Production, the tasks it knows and every job's state."""
  config = load_config(registry_root)  # Not set up: the error says init.
  registry = Registry(registry_root, create=False)
  production = registry.production()
  tasks, datasets = production_tasks(registry, production)
  metrics = registry.meta(production)["metrics"] if production else {}
  jobs = []
  for job in list_jobs(registry_root):
    jobs.append({k: job.get(k) for k in (
        "id", "name", "dataset", "status", "version", "parent", "new_task",
        "reasons", "error")} | {
            "decision": (job.get("grouping") or {}).get("decision"),
            "group": (job.get("grouping") or {}).get("group"),
            "distances": (job.get("grouping") or {}).get("distances")})
  return {"registry": registry.root, "production": production,
          "modality": modality_of(config), "gate_metric": config.gate.metric,
          "tasks": [dict(t, metrics=metrics.get(t["name"], {}))
                    for t in tasks],
          "datasets": datasets, "jobs": jobs}


def format_status(record: Mapping[str, Any]) -> str:
  lines = [f"registry:   {record['registry']}",
           f"production: {record['production'] or '(none yet)'}"]
  # The gate's metric (EER for audio, AUC for images).
  metric = record.get("gate_metric") or "eer"
  for task in record["tasks"]:
    value = task["metrics"].get(metric)
    lines.append(f"  task {task['name']}: datasets "
                 f"{', '.join(task['datasets'])}"
                 + (f"; {metric.upper()} {100 * value:.2f} %"
                    if value is not None else ""))
  lines.append(f"{'job':28s} {'status':9s} {'version':8s} decision / why")
  for job in record["jobs"]:
    why = job.get("error") or "; ".join(job.get("reasons") or []) or (
        f"{job.get('decision') or ''} {job.get('group') or ''}".strip())
    if job.get("distances") and not job.get("error"):
      nearest = min(job["distances"], key=job["distances"].get)
      why += f" (nearest {nearest} {job['distances'][nearest]:.4f})"
    lines.append(f"{job['id']:28s} {job['status']:9s} "
                 f"{job.get('version') or '-':8s} {why}")
  return "\n".join(lines)
