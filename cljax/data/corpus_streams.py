"""Streams over a user's own corpora (registered in ``cljax.data.streams``).

Each factory prepares the TFDS builders it needs (once; cached under
``data_dir``) when the stream is built — before anything compiles — so a
bad file, protocol line or folder fails the run at once with a message that
names it (see ``cljax.data.builders._corpus``).

* ``asvspoof2019_la_attacks`` — attack-incremental over ASVspoof 2019 LA:
  each task is a group of spoofing systems, bona fide shared.
* ``corpus_incremental`` — LA19 -> DF21 -> In-the-Wild, a corpus per task.
* ``audio_folder`` — any list of tasks laid out as folders or a CSV.
* ``evda_features`` — the EVDA benchmark's 8 tasks of pooled SSL features.

Records are ``{"audio", "label", "utt_id", <metadata fields>}``; class 0 is
bona fide.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from cljax.data.stream import Stream, Task

CLASS_NAMES = ("bonafide", "spoof")
LA19_TRAIN_SYSTEMS = tuple(f"A{i:02d}" for i in range(1, 7))
LA19_EVAL_SYSTEMS = tuple(f"A{i:02d}" for i in range(7, 20))
CORPORA = ("asvspoof2019_la", "asvspoof2021_df", "in_the_wild")


def _audio_options(sample_rate, resample, channels, on_bad_file, data_dir):
  return dict(sample_rate=int(sample_rate), resample=resample,
              channels=channels, on_bad_file=on_bad_file, data_dir=data_dir)


def _counts(records) -> dict[str, int]:
  labels = records.field_values("label")
  return {name: int(sum(1 for label in labels if label == i))
          for i, name in enumerate(CLASS_NAMES)}


def _require_both_classes(records, task: str, split: str, field: str) -> None:
  counts = _counts(records)
  for name, count in counts.items():
    if count == 0:
      raise ValueError(
          f"Task {task!r} split {split!r} has no {name} records ({counts}); "
          f"check config.data.stream.{field} and the corpus.")


def _system_groups(tasks: Sequence[Any]) -> list[tuple[str, ...]]:
  """``tasks`` as tuples of system ids; "A01,A02" strings are accepted."""
  if not tasks:
    raise ValueError("config.data.stream.tasks is empty: list groups of "
                     "system ids, e.g. (('A01', 'A02'), ('A03', 'A04')).")
  groups = []
  for task in tasks:
    group = tuple(s.strip() for s in task.split(",")) if isinstance(
        task, str) else tuple(str(s) for s in task)
    if not group or not all(group):
      raise ValueError(f"config.data.stream.tasks has an empty group in "
                       f"{tuple(tasks)}; each task lists one or more ids.")
    for system in group:
      if system not in LA19_TRAIN_SYSTEMS + LA19_EVAL_SYSTEMS:
        raise ValueError(
            f"config.data.stream.tasks: names system {system!r}; ASVspoof "
            "2019 LA systems are A01-A06 (train/dev) and A07-A19 (eval).")
    in_train = {s in LA19_TRAIN_SYSTEMS for s in group}
    if len(in_train) != 1:
      raise ValueError(
          f"config.data.stream.tasks: group {group} mixes train/dev systems "
          "(A01-A06) with eval systems (A07-A19); keep them in separate "
          "tasks, since their data comes from different protocol splits.")
    groups.append(group)
  seen = [s for group in groups for s in group]
  if len(seen) != len(set(seen)):
    raise ValueError(f"config.data.stream.tasks lists a system twice: "
                     f"{groups}.")
  return groups


def asvspoof2019_la_attacks(
    manual_dir: str = "",
    tasks: Sequence[Any] = (("A01", "A02"), ("A03", "A04"), ("A05", "A06")),
    data_dir: str = "", sample_rate: int = 16000, resample: str = "warn",
    channels: str = "error", on_bad_file: str = "error",
    test_fraction: float = 0.3, seed: int = 0) -> Stream:
  """Attack-incremental ASVspoof 2019 LA: one task per group of systems.

  Splits follow the protocol. A task of train/dev systems (A01-A06) trains on
  the protocol's ``train`` lines of its systems plus every bona fide train
  line, and tests on the same selection of ``dev``. A task of eval systems
  (A07-A19) draws on ``eval`` only, which is split once, per class, into
  train/test by ``seed`` (``test_fraction`` held out), so all eval tasks
  share one bona fide partition. The eval part of the copy is only read when
  a task names an eval system.

  Args:
    manual_dir: the LA folder (see ``builders.asvspoof2019_la``).
    tasks: groups of system ids, e.g. ``(("A01", "A02"), ("A03",))``.
    data_dir: cache root (default ``$CLJAX_DATA_DIR`` or
      ``~/.cache/cljax/data``).
    sample_rate, resample, channels, on_bad_file: see
      ``builders._corpus.prepare``.
    test_fraction, seed: the split of ``eval`` for eval-system tasks.

  Returns:
    A ``Stream`` whose tasks have ``train`` and ``test`` splits.
  """
  from cljax.data.builders import _corpus  # pylint: disable=g-import-not-at-top
  from cljax.data.builders import asvspoof2019_la as la  # pylint: disable=g-import-not-at-top
  groups = _system_groups(tasks)
  manual_dir = _corpus.require_dir(manual_dir, "manual_dir", la.LAYOUT)
  needs_eval = any(group[0] in LA19_EVAL_SYSTEMS for group in groups)
  needs_train = any(group[0] in LA19_TRAIN_SYSTEMS for group in groups)
  splits = (("train", "dev") if needs_train else ()) + (
      ("eval",) if needs_eval else ())
  builder = _corpus.prepare(
      la.Asvspoof2019La, manual_dir, splits=splits,
      **_audio_options(sample_rate, resample, channels, on_bad_file,
                       data_dir))
  sources = {split: _corpus.Records(builder, split) for split in splits}
  if needs_eval:
    eval_train, eval_test = _corpus.seeded_split(
        sources["eval"], test_fraction, seed)
  out = []
  for group in groups:
    name = "+".join(group)
    if group[0] in LA19_TRAIN_SYSTEMS:
      parts = {"train": (sources["train"], None),
               "test": (sources["dev"], None)}
    else:
      parts = {"train": (sources["eval"], eval_train),
               "test": (sources["eval"], eval_test)}
    task_splits = {}
    for split, (records, positions) in parts.items():
      view = records if positions is None else records.subset(positions)
      systems = view.field_values("system")
      keep = [i for i, system in enumerate(systems)
              if system == "-" or system in group]
      task_splits[split] = view.subset(keep)
      _require_both_classes(task_splits[split], name, split, "tasks")
    out.append(Task(name=name, splits=task_splits, metadata={
        "corpus": "asvspoof2019_la", "systems": list(group),
        "counts": {s: _counts(r) for s, r in task_splits.items()},
        "cache": builder.data_dir}))
  return Stream(name="asvspoof2019_la_attacks", tasks=tuple(out),
                class_names=CLASS_NAMES, sample_rate=int(sample_rate))


def _unsplit_task(name, records, test_fraction, split_by, seed, metadata):
  train, test = _corpus_seeded_split(records, test_fraction, seed, split_by)
  splits = {"train": records.subset(train), "test": records.subset(test)}
  for split, view in splits.items():
    _require_both_classes(view, name, split, "test_fraction")
  metadata = dict(metadata, split=f"{split_by} {1 - test_fraction:g}/"
                  f"{test_fraction:g} by seed {seed}",
                  counts={s: _counts(r) for s, r in splits.items()})
  return Task(name=name, splits=splits, metadata=metadata)


def _corpus_seeded_split(records, test_fraction, seed, split_by):
  from cljax.data.builders import _corpus  # pylint: disable=g-import-not-at-top
  return _corpus.seeded_split(records, test_fraction, seed, by=split_by)


def corpus_incremental(
    la19_dir: str = "", df21_dir: str = "", itw_dir: str = "",
    corpora: Sequence[str] = CORPORA, data_dir: str = "",
    sample_rate: int = 16000, resample: str = "warn",
    channels: str = "error", on_bad_file: str = "error",
    la19_test_split: str = "eval", df21_subsets: Sequence[str] = ("eval",),
    test_fraction: float = 0.3, split_by: str = "random",
    seed: int = 0) -> Stream:
  """Corpus-incremental: LA19 -> DF21 -> In-the-Wild, one corpus per task.

  LA19 trains on its protocol ``train`` split and tests on
  ``la19_test_split`` (``eval``, or ``dev``). DF21 (eval only) and
  In-the-Wild have no training partition: each is split into train/test by
  ``seed``, holding out ``test_fraction`` per class (``split_by="random"``)
  or of the speakers (``split_by="speaker"``: speaker-disjoint train and
  test).

  Args:
    la19_dir, df21_dir, itw_dir: the copies (see the builders' layouts);
      only those of the listed ``corpora`` are needed.
    corpora: the order of tasks, a subset/permutation of
      ``("asvspoof2019_la", "asvspoof2021_df", "in_the_wild")``.
    data_dir, sample_rate, resample, channels, on_bad_file: see
      ``builders._corpus.prepare``.
    la19_test_split: ``"eval"`` or ``"dev"``.
    df21_subsets: key subsets of DF21 to build (``("eval",)``: the official
      pooled-EER set; ``()``: all trials).
    test_fraction, split_by, seed: how DF21 and In-the-Wild are split.

  Returns:
    A ``Stream`` of ``len(corpora)`` tasks with ``train`` and ``test``.
  """
  from cljax.data.builders import _corpus  # pylint: disable=g-import-not-at-top
  from cljax.data.builders import asvspoof2019_la as la  # pylint: disable=g-import-not-at-top
  from cljax.data.builders import asvspoof2021_df as df  # pylint: disable=g-import-not-at-top
  from cljax.data.builders import in_the_wild as itw  # pylint: disable=g-import-not-at-top
  corpora = tuple(corpora)
  for corpus in corpora:
    if corpus not in CORPORA:
      raise ValueError(f"config.data.stream.corpora names {corpus!r}; choose "
                       f"from {list(CORPORA)}.")
  if not corpora or len(set(corpora)) != len(corpora):
    raise ValueError(f"config.data.stream.corpora={corpora} must list "
                     "distinct corpora.")
  if la19_test_split not in ("eval", "dev"):
    raise ValueError(f"config.data.stream.la19_test_split={la19_test_split!r}"
                     ": use 'eval' or 'dev'.")
  if split_by not in ("random", "speaker"):
    raise ValueError(f"config.data.stream.split_by={split_by!r}: use "
                     "'random' or 'speaker'.")
  options = _audio_options(sample_rate, resample, channels, on_bad_file,
                           data_dir)
  tasks = []
  for corpus in corpora:
    if corpus == "asvspoof2019_la":
      root = _corpus.require_dir(la19_dir, "la19_dir", la.LAYOUT)
      builder = _corpus.prepare(la.Asvspoof2019La, root,
                                splits=("train", la19_test_split), **options)
      splits = {"train": _corpus.Records(builder, "train"),
                "test": _corpus.Records(builder, la19_test_split)}
      tasks.append(Task(name="LA19", splits=splits, metadata={
          "corpus": corpus, "split": f"train / {la19_test_split}",
          "counts": {s: _counts(r) for s, r in splits.items()},
          "cache": builder.data_dir}))
    elif corpus == "asvspoof2021_df":
      root = _corpus.require_dir(df21_dir, "df21_dir", df.LAYOUT)
      builder = _corpus.prepare(df.Asvspoof2021Df, root,
                                subsets=tuple(df21_subsets), **options)
      tasks.append(_unsplit_task(
          "DF21", _corpus.Records(builder, "eval"), test_fraction, split_by,
          seed, {"corpus": corpus, "subsets": list(df21_subsets),
                 "cache": builder.data_dir}))
    else:
      root = _corpus.require_dir(itw_dir, "itw_dir", itw.LAYOUT)
      builder = _corpus.prepare(itw.InTheWild, root, **options)
      tasks.append(_unsplit_task(
          "ITW", _corpus.Records(builder, "test"), test_fraction, split_by,
          seed, {"corpus": corpus, "cache": builder.data_dir}))
  return Stream(name="corpus_incremental", tasks=tuple(tasks),
                class_names=CLASS_NAMES, sample_rate=int(sample_rate))


def audio_folder(manual_dir: str = "", manifest: str = "",
                 tasks: Sequence[str] = (), data_dir: str = "",
                 sample_rate: int = 16000, resample: str = "warn",
                 channels: str = "error",
                 on_bad_file: str = "error") -> Stream:
  """Any multi-task set: folders ``<task>/{train,dev,test}/{bonafide,spoof}``
  under ``manual_dir``, or a CSV ``manifest`` (``path,label,task,system,
  split``).

  Args:
    manual_dir: the root of the folder layout (unused with a manifest).
    manifest: a CSV manifest's path; relative audio paths in it are relative
      to its folder.
    tasks: task names in stream order; empty: every task, sorted by name.
    data_dir, sample_rate, resample, channels, on_bad_file: see
      ``builders._corpus.prepare``.

  Returns:
    A ``Stream``; each task has ``train`` and ``test`` splits and ``dev``
    (also readable as ``val``) where the layout has one.
  """
  import os  # pylint: disable=g-import-not-at-top
  from cljax.data.builders import _corpus  # pylint: disable=g-import-not-at-top
  from cljax.data.builders import audio_folder as folder  # pylint: disable=g-import-not-at-top
  if manifest:
    manifest = os.path.abspath(os.path.expanduser(manifest))
    if not os.path.isfile(manifest):
      raise ValueError(f"config.data.stream.manifest={manifest!r} is not a "
                       f"file. Expected:\n{folder.LAYOUT}")
    root = os.path.dirname(manifest)
  else:
    root = _corpus.require_dir(manual_dir, "manual_dir", folder.LAYOUT)
  builder = _corpus.prepare(
      folder.AudioFolder, root, manifest=manifest,
      **_audio_options(sample_rate, resample, channels, on_bad_file,
                       data_dir))
  split_names = [s for s in folder.SPLITS if s in builder.info.splits]
  records = {s: _corpus.Records(builder, s) for s in split_names}
  task_column = {s: r.field_values("task") for s, r in records.items()}
  found = sorted({t for column in task_column.values() for t in column})
  names = list(tasks) or found
  out = []
  for name in names:
    if name not in found:
      raise ValueError(f"config.data.stream.tasks names {name!r}; the corpus "
                       f"has the tasks {found}.")
    splits = {}
    for split, column in task_column.items():
      positions = [i for i, task in enumerate(column) if task == name]
      if positions:
        splits[split] = records[split].subset(positions)
    for required in ("train", "test"):
      if required not in splits:
        raise ValueError(
            f"Task {name!r} has no {required!r} split in {manifest or root};"
            f" every task needs train and test. Expected:\n{folder.LAYOUT}")
    if "dev" in splits:
      splits["val"] = splits["dev"]
    out.append(Task(name=name, splits=splits, metadata={
        "corpus": "audio_folder",
        "counts": {s: _counts(r) for s, r in splits.items()},
        "cache": builder.data_dir}))
  return Stream(name="audio_folder", tasks=tuple(out),
                class_names=CLASS_NAMES, sample_rate=int(sample_rate))


def evda_features(manual_dir: str = "", data_dir: str = "",
                  num_tasks: int = 8, feature_dim: int = 1024,
                  feature: str = "", file_lists: str = "",
                  max_train_per_class: int = 1000,
                  max_test_per_class: int = 250,
                  on_bad_file: str = "error") -> Stream:
  """EVDA's 8 tasks of mean-pooled SSL features (a user's copy).

  Each record's ``audio`` is the pooled ``[feature_dim]`` float32 vector;
  the stream's ``sample_rate`` is ``feature_dim``, so
  ``config.data.crop_seconds = eval_seconds = 1.0`` makes every "crop" the
  whole vector (use the ``identity`` front end and the ``mlp`` model).
  As EVDA (``num_instance_each_class`` 1000 / ``_test`` 250), each task keeps
  at most ``max_train_per_class`` / ``max_test_per_class`` records per class
  — here the first by path, EVDA takes the first ``os.listdir`` returns —
  0 keeps all.

  Args:
    manual_dir: the features' root (see ``builders.evda_features``).
    data_dir: cache root.
    num_tasks: 8 in EVDA.
    feature_dim: 1024 for XLS-R features.
    feature: picks ``train_<feature>`` when several feature sets exist.
    file_lists: folder of EVDA's ``data_{train,test}_path.txt``.
    max_train_per_class, max_test_per_class: per-class caps (0: none).
    on_bad_file: ``"error"`` or ``"skip"``.

  Returns:
    A ``Stream`` of ``num_tasks`` tasks named ``"T1"``.. with ``train`` and
    ``test`` splits.
  """
  from cljax.data.builders import _corpus  # pylint: disable=g-import-not-at-top
  from cljax.data.builders import evda_features as evda  # pylint: disable=g-import-not-at-top
  root = _corpus.require_dir(manual_dir, "manual_dir", evda.LAYOUT)
  for field, value in (("num_tasks", num_tasks), ("feature_dim", feature_dim)):
    if not isinstance(value, int) or value < 1:
      raise ValueError(f"config.data.stream.{field}={value!r} must be a "
                       "positive integer.")
  builder = _corpus.prepare(
      evda.EvdaFeatures, root, data_dir=data_dir, sample_rate=feature_dim,
      on_bad_file=on_bad_file, num_tasks=num_tasks, feature_dim=feature_dim,
      feature=feature, file_lists=file_lists)
  caps = {"train": max_train_per_class, "test": max_test_per_class}
  records = {s: _corpus.Records(builder, s) for s in evda.SPLITS}
  columns = {s: (r.field_values("task"), r.field_values("label"),
                 r.field_values("utt_id")) for s, r in records.items()}
  out = []
  for task in range(1, num_tasks + 1):
    splits = {}
    for split, (tasks, labels, utt_ids) in columns.items():
      keep = []
      for label in (0, 1):
        members = sorted((i for i, (t, l) in enumerate(zip(tasks, labels))
                          if t == str(task) and l == label),
                         key=lambda i: utt_ids[i])
        if caps[split] and len(members) > caps[split]:
          members = members[:caps[split]]
        elif caps[split] and len(members) < caps[split]:
          logging.info("EVDA task %d %s: %d %s records (EVDA uses %d).", task,
                       split, len(members), CLASS_NAMES[label], caps[split])
        keep.extend(members)
      splits[split] = records[split].subset(sorted(keep))
      _require_both_classes(splits[split], f"T{task}", split, "manual_dir")
    out.append(Task(name=f"T{task}", splits=splits, metadata={
        "corpus": "evda_features", "task_folder": str(task),
        "counts": {s: _counts(r) for s, r in splits.items()},
        "cache": builder.data_dir}))
  return Stream(name="evda_features", tasks=tuple(out),
                class_names=CLASS_NAMES, sample_rate=int(feature_dim))
