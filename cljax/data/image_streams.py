"""Image streams over a user's own copies (registered in cljax.data.streams).

* ``image_folders`` — any list of dataset folders (or CSV tasks), each task
  one dataset or the union of several (CoReD's ``-s A_B``).
* ``cddb_easy`` / ``cddb_long`` — the CDDB sequences seed 003 runs.
* ``seed001_sequence`` — seed 001's GAN-S, VFHQ, ForenSynths, DeepFake,
  with NeuralTextures as an unseen test set.

Each dataset folder is built once (``builders.image_folder``; cached under
``data_dir`` per folder, image size and options) when the stream is made —
before anything compiles — so a bad image or folder fails the run at once
with a message naming it. Records follow the image-record contract (issue
8)::

  {"audio": uint8 [S*S*3] (RGB, HWC, row-major), "label": 0 real / 1 fake,
   "utt_id": path relative to the root (or as the CSV writes it),
   "task", "source", "category": str}

and every stream has ``class_names=("real", "fake")`` and ``sample_rate =
S*S*3`` ("one second is one image"), so configs set
``config.data.crop_seconds = config.data.eval_seconds = 1.0``.

Split names the loop uses: ``train`` and ``test`` (``config.data.eval_split``
defaults to ``"test"``), plus ``val`` where the copy has one. Which folder
becomes ``test`` (``eval_split_from``):

* seed 003 / CDDB (``layout="cddb"``): ``test/`` by default; ``val/`` stays
  ``val``. CDDB's own scripts (and S-Prompts) train on ``train/`` and test
  on ``val/``: ``eval_split_from="val"`` reproduces that.
* CoReD (``layout="cored"``) has no test folder: its ``val/`` is the test
  split (and is also exposed as ``val``), as CoReD itself evaluates on it.
* ``layout="auto"``: ``eval_split_from`` where that folder exists, else
  ``val/`` (a CoReD-style copy). ``metadata["test_from"]`` says which.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np

from cljax.data.stream import Stream, Task

CLASS_NAMES = ("real", "fake")
EVAL_SPLITS = ("test", "val")
# Verified against github Coral79/CDDB: the task_name lists of its README
# (LUCIR/iCaRL commands) and DyTox/configs/data/ganfake_{easy,long,hard}_order
# .yaml, and LUCIR/eval_bwt.py's LONG command.
CDDB_EASY = ("gaugan", "biggan", "cyclegan", "imle", "deepfake", "crn",
             "wild")
CDDB_LONG = CDDB_EASY + ("glow", "stargan_gf", "stylegan", "whichfaceisreal",
                         "san")
CDDB_HARD = ("gaugan", "biggan", "wild", "whichfaceisreal", "san")
# Seed 001's README: --training_set GAN-S VFHQ ForenSynths DeepFake
# --test_set GAN-S VFHQ-F ForenSynths DeepFake NeuralTextures.
SEED001_TRAIN = ("GAN-S", "VFHQ", "ForenSynths", "DeepFake")
SEED001_TEST = ("GAN-S", "VFHQ-F", "ForenSynths", "DeepFake")
SEED001_UNSEEN = ("NeuralTextures",)


class SourceRecords:
  """Splits of one or more sources as one random-access source.

  ``parts`` are ``(prefix, records)`` pairs (``records``: a
  ``builders._corpus.Records`` or a view of one); ``self[i]`` is the i-th
  record of their concatenation with ``prefix`` put before its ``utt_id``.
  Supports ``field_values`` and ``subset`` like ``Records`` (the pipeline
  and the replay code select by label); picklable for grain workers.
  """

  def __init__(self, parts: Sequence[tuple[str, Any]],
               indices: Sequence[int] | None = None):
    self._parts = tuple((str(prefix), records) for prefix, records in parts)
    self._starts = np.cumsum([0] + [len(r) for _, r in self._parts])
    self._indices = (None if indices is None
                     else np.asarray(indices, np.int64))

  def __len__(self) -> int:
    return (int(self._starts[-1]) if self._indices is None
            else len(self._indices))

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = int(index)
    if index < 0:
      index += len(self)
    if not 0 <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} records")
    if self._indices is not None:
      index = int(self._indices[index])
    part = int(np.searchsorted(self._starts, index, side="right")) - 1
    prefix, records = self._parts[part]
    record = dict(records[index - int(self._starts[part])])
    record["utt_id"] = prefix + record["utt_id"]
    return record

  def field_values(self, name: str) -> list[Any]:
    """``[self[i][name] for i in range(len(self))]``, from the parts'
    cached columns (no image is decoded twice)."""
    column = []
    for prefix, records in self._parts:
      values = (records.field_values(name) if hasattr(records, "field_values")
                else [records[i][name] for i in range(len(records))])
      if name == "utt_id":
        values = [prefix + v for v in values]
      column.extend(values)
    if self._indices is None:
      return column
    return [column[i] for i in self._indices]

  def subset(self, indices: Sequence[int]) -> SourceRecords:
    """The records at ``indices`` (positions in this view)."""
    indices = np.asarray(list(indices), np.int64)
    return SourceRecords(self._parts, indices if self._indices is None
                         else self._indices[indices])

  def __repr__(self) -> str:
    return (f"SourceRecords({[p for p, _ in self._parts]}, len={len(self)})")


def _counts(records) -> dict[str, int]:
  labels = records.field_values("label")
  return {name: int(sum(1 for label in labels if label == i))
          for i, name in enumerate(CLASS_NAMES)}


class _Corpus:
  """The sources (dataset folders or CSV tasks) of one root, built lazily.

  ``splits(source)`` gives ``{"train", "val", "test"}`` views (those that
  exist) with ``test`` resolved from ``eval_split_from`` and the layout.
  """

  def __init__(self, root: str, layout: str, manifest: str, *,
               image_size: int, resize: str, min_size: int, on_bad_file: str,
               data_dir: str, eval_split_from: str):
    from cljax.data import audio_io, image_io  # pylint: disable=g-import-not-at-top
    from cljax.data.builders import _corpus  # pylint: disable=g-import-not-at-top
    from cljax.data.builders import image_folder as folder  # pylint: disable=g-import-not-at-top
    self._corpus, self._folder = _corpus, folder
    if layout not in folder.LAYOUTS:
      raise ValueError(f"config.data.stream.layout={layout!r} is unknown; "
                       f"use one of {list(folder.LAYOUTS)}.")
    if eval_split_from not in EVAL_SPLITS:
      raise ValueError(
          f"config.data.stream.eval_split_from={eval_split_from!r}: use "
          f"{' or '.join(repr(s) for s in EVAL_SPLITS)} (the folder that "
          "becomes the stream's test split).")
    image_io.check_image_options(image_size, resize, min_size)
    audio_io.check_option(on_bad_file, _corpus.ON_BAD_FILE, "on_bad_file")
    if manifest and layout not in ("csv", "auto"):
      raise ValueError(
          f"config.data.stream.manifest={manifest!r} is set but layout="
          f"{layout!r}: a manifest needs layout='csv' (or 'auto').")
    self.layout = "csv" if manifest else layout
    if self.layout == "csv" and not manifest:
      raise ValueError("config.data.stream.layout='csv' needs "
                       "config.data.stream.manifest=<file>.csv.")
    self.eval_split_from = eval_split_from
    self._options = dict(image_size=int(image_size), resize=resize,
                         min_size=int(min_size))
    self._prepare_args = dict(data_dir=data_dir, on_bad_file=on_bad_file)
    self._views: dict[str, dict[str, Any]] = {}
    self.caches: dict[str, str] = {}
    self.test_from: dict[str, str] = {}
    if self.layout == "csv":
      manifest = os.path.abspath(os.path.expanduser(str(manifest)))
      if not os.path.isfile(manifest):
        raise _corpus.CorpusError(
            f"config.data.stream.manifest={manifest!r} is not a file. "
            f"Expected:\n{folder.LAYOUT}")
      self.root = os.path.dirname(manifest)
      self._read_manifest(manifest)
    else:
      self.root = _corpus.require_dir(root, "root", folder.LAYOUT)
      self.sources = [n for n in _corpus.visible_names(self.root)
                      if os.path.isdir(os.path.join(self.root, n))]
      if not self.sources:
        raise _corpus.CorpusError(
            f"config.data.stream.root={self.root!r} has no dataset folders. "
            f"Expected layout:\n{folder.LAYOUT}")

  def _read_manifest(self, manifest: str) -> None:
    builder = self._corpus.prepare(
        self._folder.ImageFolder, self.root, layout="csv", manifest=manifest,
        **self._options, **self._prepare_args)
    columns = {}
    for split in self._folder.SPLITS:
      if split in builder.info.splits:
        records = self._corpus.Records(builder, split)
        columns[split] = (records, records.field_values("task"))
    self.sources = sorted({t for _, tasks in columns.values() for t in tasks})
    for source in self.sources:
      views = {}
      for split, (records, tasks) in columns.items():
        keep = [i for i, task in enumerate(tasks) if task == source]
        if keep:
          views[split] = SourceRecords([("", records.subset(keep))])
      self._views[source] = self._resolve_test(source, views)
      self.caches[source] = str(builder.data_dir)

  def _resolve_test(self, source: str, views: dict[str, Any]
                    ) -> dict[str, Any]:
    if self.layout == "cored":
      test_from = "val"
    elif self.layout == "auto" and "test" not in views:
      test_from = "val"
    else:
      test_from = self.eval_split_from
    if test_from in views:
      views["test"] = views[test_from]
      self.test_from[source] = test_from
    return views

  def splits(self, source: str) -> dict[str, Any]:
    if source not in self._views:
      builder = self._corpus.prepare(
          self._folder.ImageFolder, os.path.join(self.root, source),
          layout=self.layout, **self._options, **self._prepare_args)
      views = {split: SourceRecords([(f"{source}/",
                                      self._corpus.Records(builder, split))])
               for split in self._folder.SPLITS
               if split in builder.info.splits}
      self._views[source] = self._resolve_test(source, views)
      self.caches[source] = str(builder.data_dir)
    return self._views[source]

  def parse(self, spec: Any, field: str) -> tuple[str, tuple[str, ...]]:
    """``(task name, source names)`` of one entry of a task list.

    A string names one source, or several joined by "_" (CoReD's ``-s
    A_B``) when no source has the whole name; a tuple/list names its
    sources as given (never split).
    """
    where = ("the CSV's tasks" if self.layout == "csv" else
             f"the folders of {self.root}")
    if isinstance(spec, str):
      if spec in self.sources:
        return spec, (spec,)
      options = _partitions(spec.split("_"), set(self.sources))
      if len(options) == 1:
        return spec, options[0]
      if not options:
        raise ValueError(
            f"config.data.stream.{field} names {spec!r}: no dataset of that "
            f"name, nor a '_'-joined list of them, in {where}: "
            f"{self.sources}.")
      raise ValueError(
          f"config.data.stream.{field}: {spec!r} splits into datasets in "
          f"several ways ({[list(o) for o in options]}); give the task as a "
          "tuple of names instead.")
    sources = tuple(str(s) for s in spec)
    if not sources:
      raise ValueError(f"config.data.stream.{field} has an empty task.")
    for source in sources:
      if source not in self.sources:
        raise ValueError(
            f"config.data.stream.{field} names {source!r}; {where} are "
            f"{self.sources}.")
    return "_".join(sources), sources


def _partitions(tokens: Sequence[str], names: set[str]
                ) -> list[tuple[str, ...]]:
  """Every way to cut ``tokens`` into consecutive '_'-joined runs that are
  all in ``names``."""
  if not tokens:
    return [()]
  out = []
  for end in range(1, len(tokens) + 1):
    head = "_".join(tokens[:end])
    if head in names:
      out.extend((head,) + rest for rest in _partitions(tokens[end:], names))
  return out


def _task_list(tasks: Any) -> list[Any]:
  """A task list; a string is read as comma-separated entries ("A,B_C")."""
  if isinstance(tasks, str):
    return [t.strip() for t in tasks.split(",") if t.strip()]
  return list(tasks)


def _union(corpus: _Corpus, sources: Sequence[str], split: str,
           required: bool, role: str) -> SourceRecords | None:
  views = [corpus.splits(s).get(split) for s in sources]
  if all(v is not None for v in views):
    # Each view already prefixes its utt_ids with its source.
    return SourceRecords([("", v) for v in views])
  if not required:
    return None
  missing = [s for s, v in zip(sources, views) if v is None]
  if corpus.layout == "csv":
    place = f"the manifest's rows of task(s) {missing}"
  else:
    place = ", ".join(os.path.join(corpus.root, s) for s in missing)
  hint = ""
  if split == "test":
    hint = (f" The test split comes from the {corpus.eval_split_from}/ "
            "folder (config.data.stream.eval_split_from; 'val' takes val/).")
  raise ValueError(f"{place}: no {split!r} split, which {role} needs."
                   + hint)


def _image_stream(stream_name: str, *, root: str, tasks: Sequence[Any],
                  test_tasks: Sequence[Any], unseen_tasks: Sequence[Any],
                  layout: str, manifest: str, image_size: int, resize: str,
                  min_size: int, on_bad_file: str, data_dir: str,
                  eval_split_from: str,
                  names: Sequence[str] = (),
                  unseen_names: Sequence[str] = (),
                  fields: tuple[str, str, str] = ("tasks", "test_tasks",
                                                  "unseen_tasks")) -> Stream:
  """The streams' common body; ``names``/``unseen_names`` (optional) name
  the tasks instead of their folders (a benchmark's names over renamed
  folders); ``fields`` are the config fields errors name."""
  tasks, test_tasks, unseen_tasks = (
      _task_list(tasks), _task_list(test_tasks), _task_list(unseen_tasks))
  corpus = _Corpus(root, layout, manifest, image_size=image_size,
                   resize=resize, min_size=min_size, on_bad_file=on_bad_file,
                   data_dir=data_dir, eval_split_from=eval_split_from)
  specs = [corpus.parse(t, fields[0]) for t in tasks] or [
      (s, (s,)) for s in corpus.sources]
  if names:
    specs = [(name, sources) for name, (_, sources) in zip(names, specs)]
  if test_tasks and len(test_tasks) != len(specs):
    raise ValueError(
        f"config.data.stream.{fields[1]} lists {len(test_tasks)} entries for "
        f"{len(specs)} tasks; give one test dataset per task (or none to "
        "test each task on its own).")
  tests = ([corpus.parse(t, fields[1])[1] for t in test_tasks]
           or [sources for _, sources in specs])
  unseen = [corpus.parse(t, fields[2]) for t in unseen_tasks]
  if unseen_names:
    unseen = [(name, sources)
              for name, (_, sources) in zip(unseen_names, unseen)]
  all_names = [name for name, _ in specs] + [name for name, _ in unseen]
  if len(set(all_names)) != len(all_names):
    raise ValueError(
        f"config.data.stream: a task is listed twice ({all_names}); every "
        "task and unseen task needs its own name.")
  trained = {s for _, sources in specs for s in sources}
  for name, sources in unseen:
    if trained & set(sources):
      raise ValueError(
          f"config.data.stream.{fields[2]}: {name!r} uses "
          f"{sorted(trained & set(sources))}, which the stream trains on; an "
          "unseen task must be new data.")
  out = []
  for (name, sources), test_sources in zip(specs, tests):
    splits = {"train": _union(corpus, sources, "train", True,
                              f"training task {name!r}"),
              "test": _union(corpus, test_sources, "test", True,
                             f"task {name!r}")}
    val = _union(corpus, sources, "val", False, "")
    if val is not None:
      splits["val"] = val
    out.append(Task(name=name, splits=splits, metadata=_metadata(
        stream_name, corpus, sources, test_sources, splits)))
  unseen_out = []
  for name, sources in unseen:
    splits = {"test": _union(corpus, sources, "test", True,
                             f"unseen task {name!r}")}
    unseen_out.append(Task(name=name, splits=splits, metadata=dict(
        _metadata(stream_name, corpus, (), sources, splits), unseen=True)))
  return Stream(name=stream_name, tasks=tuple(out), class_names=CLASS_NAMES,
                sample_rate=int(image_size) ** 2 * 3,
                unseen_tasks=tuple(unseen_out))


def _metadata(stream_name, corpus, sources, test_sources, splits):
  return {"corpus": stream_name, "layout": corpus.layout,
          "sources": list(sources), "test_sources": list(test_sources),
          "test_from": {s: corpus.test_from[s] for s in test_sources},
          "counts": {s: _counts(r) for s, r in splits.items()},
          "cache": sorted({corpus.caches[s] for s in
                           tuple(sources) + tuple(test_sources)})}


def image_folders(root: str = "", tasks: Sequence[Any] = (),
                  layout: str = "auto", manifest: str = "",
                  image_size: int = 256, resize: str = "crop",
                  min_size: int = 0, on_bad_file: str = "error",
                  data_dir: str = "", eval_split_from: str = "test",
                  test_tasks: Sequence[Any] = (),
                  unseen_tasks: Sequence[Any] = ()) -> Stream:
  """A stream of image datasets: one task per entry of ``tasks``.

  Args:
    root: the folder holding one folder per dataset (see
      ``builders.image_folder`` for the layouts); unused with a manifest.
    tasks: stream order. Each entry is a dataset folder name, several
      joined by "_" (CoReD's ``-s A_B``: the union of their records, which
      keep their ``<dataset>/...`` utt_ids), or a tuple of names (never
      split; for names that contain "_" ambiguously). A whole name that is
      a folder wins (CDDB's ``stargan_gf``). A string is read as a
      comma-separated list. Empty: every dataset, sorted.
    layout: ``"auto"`` (default), ``"cddb"`` (seed 003), ``"cored"`` or
      ``"csv"``.
    manifest: a CSV manifest (``path,label,task,split[,source]``); its tasks
      are the "datasets" and its paths relative to its folder.
    image_size: pixels per side stored and fed to the model (S).
    resize: ``"crop"`` (shorter side to S, centre crop) or ``"stretch"``.
    min_size: refuse images whose shorter side is below this (0: any; set
      it to the crop your config needs to refuse up-sampled images).
    on_bad_file: ``"error"`` or ``"skip"`` (bad images left out, reported).
    data_dir: cache root (default ``$CLJAX_DATA_DIR`` or
      ``~/.cache/cljax/data``).
    eval_split_from: ``"test"`` or ``"val"``: the folder whose images form
      the ``test`` split (CoReD: always ``val``; see the module docstring).
    test_tasks: optional, one per task: test task i on these datasets
      instead of its own (seed 001 trains on VFHQ and tests on VFHQ-F).
    unseen_tasks: datasets only ever tested (``Stream.unseen_tasks``),
      each with a ``test`` split; none may be trained on.

  Returns:
    A ``Stream`` with ``class_names=("real", "fake")``, ``sample_rate =
    image_size**2 * 3``; tasks with ``train``, ``test`` and (where every
    source has one) ``val``.
  """
  return _image_stream(
      "image_folders", root=root, tasks=tuple(tasks),
      test_tasks=tuple(test_tasks), unseen_tasks=tuple(unseen_tasks),
      layout=layout, manifest=manifest, image_size=image_size, resize=resize,
      min_size=min_size, on_bad_file=on_bad_file, data_dir=data_dir,
      eval_split_from=eval_split_from)


def _folder_names(defaults: Sequence[str], folders: Any,
                  field: str) -> list[str]:
  """``defaults`` with the user's folder names: a mapping ``{name: folder}``
  or a sequence as long as ``defaults`` (empty: the defaults)."""
  if not folders:
    return list(defaults)
  if isinstance(folders, Mapping) or hasattr(folders, "items"):
    renames = dict(folders.items())
    unknown = sorted(set(renames) - set(defaults))
    if unknown:
      raise ValueError(f"config.data.stream.{field} renames {unknown}, which "
                       f"are not in the sequence {list(defaults)}.")
    return [str(renames.get(name, name)) for name in defaults]
  if isinstance(folders, str) or len(folders) != len(defaults):
    raise ValueError(
        f"config.data.stream.{field} must be a mapping {{name: folder}} or "
        f"list {len(defaults)} folder names in the order {list(defaults)}; "
        f"got {folders!r}.")
  return [str(f) for f in folders]


def _named_sequence(stream_name, names, root, folders, field, layout,
                    image_size, resize, min_size, on_bad_file, data_dir,
                    eval_split_from):
  paths = _folder_names(names, folders, field)
  # The benchmark's task names stay even where the folders were renamed.
  return _image_stream(
      stream_name, root=root, tasks=[(p,) for p in paths], test_tasks=(),
      unseen_tasks=(), layout=layout, manifest="", image_size=image_size,
      resize=resize, min_size=min_size, on_bad_file=on_bad_file,
      data_dir=data_dir, eval_split_from=eval_split_from, names=names,
      fields=(field, field, field))


def cddb_easy(root: str = "", folders: Any = (), layout: str = "cddb",
              image_size: int = 256, resize: str = "crop", min_size: int = 0,
              on_bad_file: str = "error", data_dir: str = "",
              eval_split_from: str = "test") -> Stream:
  """CDDB EASY (7 tasks): gaugan, biggan, cyclegan, imle, deepfake, crn, wild.

  The order of CDDB's README and ``ganfake_easy_order.yaml`` (github
  Coral79/CDDB), which seed 003 runs. ``root`` is the folder holding the
  CDDB dataset folders (``<root>/gaugan/train/0_real/...``; cyclegan's
  per-object folders ``cyclegan/train/horse/0_real/...`` are read as
  ``category``). ``folders`` renames folders (``{"wild": "WildDeepfake"}``
  or 7 names in order); the task names stay CDDB's. Other arguments: see
  ``image_folders``; CDDB's own scripts test on ``val/``
  (``eval_split_from="val"``), seed 003 on ``test/`` (the default).
  """
  return _named_sequence("cddb_easy", CDDB_EASY, root, folders, "folders",
                         layout, image_size, resize, min_size, on_bad_file,
                         data_dir, eval_split_from)


def cddb_long(root: str = "", folders: Any = (), layout: str = "cddb",
              image_size: int = 256, resize: str = "crop", min_size: int = 0,
              on_bad_file: str = "error", data_dir: str = "",
              eval_split_from: str = "test") -> Stream:
  """CDDB LONG (12 tasks): EASY's 7, then glow, stargan_gf, stylegan,
  whichfaceisreal, san.

  The order of CDDB's ``ganfake_long_order.yaml`` and ``LUCIR/eval_bwt.py``
  (github Coral79/CDDB). glow, stargan_gf and stylegan (like cyclegan) hold
  per-object folders. Arguments: as ``cddb_easy`` (``folders``: a mapping
  or 12 names).
  """
  return _named_sequence("cddb_long", CDDB_LONG, root, folders, "folders",
                         layout, image_size, resize, min_size, on_bad_file,
                         data_dir, eval_split_from)


def seed001_sequence(root: str = "", train_folders: Any = (),
                     test_folders: Any = (), unseen_folders: Any = (),
                     layout: str = "auto", image_size: int = 256,
                     resize: str = "crop", min_size: int = 0,
                     on_bad_file: str = "error", data_dir: str = "",
                     eval_split_from: str = "test") -> Stream:
  """Seed 001's sequence: GAN-S, VFHQ, ForenSynths, DeepFake; NeuralTextures
  unseen.

  As its README's commands: ``--training_set GAN-S VFHQ ForenSynths
  DeepFake --test_set GAN-S VFHQ-F ForenSynths DeepFake NeuralTextures``:
  task i trains on ``train_folders[i]``'s train split and is tested on
  ``test_folders[i]`` (VFHQ is tested on VFHQ-F); NeuralTextures is in
  ``Stream.unseen_tasks``, scored after every task and never trained on.
  The seed ships its data as one archive whose layout its README does not
  state: lay each dataset out as ``image_folders`` reads (``layout="auto"``
  accepts the seed 003 and CoReD forms).

  Args:
    root: the folder holding the dataset folders.
    train_folders, test_folders: folder names, a mapping ``{default name:
      folder}`` or a list of 4 (empty: ``SEED001_TRAIN``, ``SEED001_TEST``).
    unseen_folders: a mapping renames NeuralTextures' folder; a list
      replaces the unseen sets (any number, named by their folders); empty:
      ``SEED001_UNSEEN``.
    Others: see ``image_folders``.
  """
  train = _folder_names(SEED001_TRAIN, train_folders, "train_folders")
  test = _folder_names(SEED001_TEST, test_folders, "test_folders")
  if unseen_folders and not hasattr(unseen_folders, "items"):
    # A list replaces the unseen sets (any number), named by their folders.
    unseen = _task_list(unseen_folders)
    unseen_names = unseen
  else:
    unseen = _folder_names(SEED001_UNSEEN, unseen_folders, "unseen_folders")
    unseen_names = SEED001_UNSEEN
  return _image_stream(
      "seed001_sequence", root=root, tasks=[(p,) for p in train],
      test_tasks=[(p,) for p in test], unseen_tasks=[(p,) for p in unseen],
      layout=layout, manifest="", image_size=image_size, resize=resize,
      min_size=min_size, on_bad_file=on_bad_file, data_dir=data_dir,
      eval_split_from=eval_split_from, names=SEED001_TRAIN,
      unseen_names=unseen_names,
      fields=("train_folders", "test_folders", "unseen_folders"))
