"""Image deepfake sets over a user's copy: dataset folders or a CSV manifest.

One build per dataset folder (``manual_dir = <root>/<dataset>``), so streams
that share a dataset (CDDB EASY and LONG, CoReD's ``-s A_B`` and ``-s A``)
share its build. Layouts (``layout`` option):

* ``"cddb"`` — seed 003 and CDDB (github Coral79/CDDB)::

    <dataset>/{train,val,test}/{0_real,1_fake}/**       (val, test optional)
    <dataset>/{train,val,test}/<object>/{0_real,1_fake}/**

  the second form is CDDB's per-object folders (its ``multiclass`` sets:
  cyclegan, glow, stargan_gf, stylegan); ``**`` means images may sit in
  nested folders below a class folder.
* ``"cored"`` — CoReD (seed 002)::

    <dataset>/{train,val}/{real,fake}/**

* ``"auto"`` — either class-folder pair in any of train/val/test, detected
  per split folder.
* ``"csv"`` — a manifest (``manifest=<file>.csv``) with the header
  ``path,label,task,split`` (any order) and optionally ``source``; ``label``
  is ``real``/``fake``/``0``/``1`` (any case), ``split`` ``train``/``val``/
  ``test``, ``path`` relative to the CSV's folder (or absolute). One build
  holds every task of the manifest.

Plain files next to the split folders (READMEs, file lists) are ignored; any
other folder there is an error (a typo such as ``Train`` or ``valid`` would
otherwise drop a split silently).

Records: ``image`` — the RGB image resized on the host to ``image_size``
(``image_io.decode_image``), flattened ``[S*S*3]`` uint8 and stored as raw
bytes (``Records`` hands it to the loop as ``audio``, the image-record
contract of issue 8) —, ``label`` (0 real, 1 fake), ``utt_id`` (the path
relative to the dataset folder, or as the CSV writes it), ``task`` (the
dataset folder's name, or the CSV's task), ``source`` (the dataset folder,
or the CSV's ``source``, default its task) and ``category`` (CDDB's object
folder, else empty).

Checked while listing (before decoding): unexpected folders, a missing or
empty class folder, files that are not images (by extension, any case), a
manifest row with an unknown label/split or naming a missing file, and a
split (per task, for a manifest) without both classes. While decoding:
unreadable, truncated and (``min_size``) too small images. Per-file problems
obey ``on_bad_file``; images whose shorter side is below ``image_size``
(up-sampled) are counted and reported.
"""

from __future__ import annotations

import collections
import csv
import os
from typing import Any, Mapping, Sequence

import numpy as np
import tensorflow_datasets as tfds

from cljax.data import image_io
from cljax.data.builders import _corpus

LAYOUTS = ("auto", "cddb", "cored", "csv")
SPLITS = ("train", "val", "test")
FOLDER_SPLITS = {"cddb": SPLITS, "cored": ("train", "val"), "auto": SPLITS}
FOLDER_CLASSES = {"cddb": ("0_real", "1_fake"), "cored": ("real", "fake")}
CLASS_NAMES = image_io.CLASS_NAMES  # ("real", "fake")
LABELS = {"real": 0, "0": 0, "fake": 1, "1": 1}
MANIFEST_COLUMNS = ("path", "label", "task", "split")
MANIFEST_OPTIONAL = ("source",)
DEFAULTS = {"layout": "auto", "manifest": "", "image_size": 256,
            "resize": "crop", "min_size": 0}
LAYOUT = """\
  <root>/<dataset>/{train,val,test}/{0_real,1_fake}/**   (seed 003 / CDDB)
  <root>/<dataset>/{train,val,test}/<object>/{0_real,1_fake}/**   (CDDB)
  <root>/<dataset>/{train,val}/{real,fake}/**             (CoReD)
  or a CSV manifest with the header path,label,task,split[,source]"""


def _not_an_image(path: str) -> _corpus.CorpusError:
  return _corpus.CorpusError(
      f"{path}: not an image file (extensions "
      f"{list(image_io.IMAGE_EXTENSIONS)}, any case). Remove it from the "
      "class folder.")


def list_dataset(dataset_dir: str, layout: str, bad: _corpus.BadInput
                 ) -> dict[str, list[_corpus.Entry]]:
  """``{split: [Entry]}`` of one dataset folder (``layout`` not ``csv``)."""
  source = os.path.basename(os.path.normpath(dataset_dir))
  allowed = FOLDER_SPLITS[layout]
  splits = []
  for name in _corpus.visible_names(dataset_dir):
    path = os.path.join(dataset_dir, name)
    if not os.path.isdir(path):
      continue  # A README or file list beside the splits.
    if name not in allowed:
      extra = (" (layout 'cored' reads train/ and val/ only; 'auto' or "
               "'cddb' also read test/)" if layout == "cored" else "")
      raise _corpus.CorpusError(
          f"{path}: unexpected folder in dataset {source!r}; layout "
          f"{layout!r} has the split folders {list(allowed)}{extra}. Rename "
          f"it or move it out. Expected layout:\n{LAYOUT}")
    splits.append(name)
  if not splits:
    raise _corpus.CorpusError(
        f"{dataset_dir}: no split folder ({'/'.join(allowed)}) in dataset "
        f"{source!r}. Expected layout:\n{LAYOUT}")
  entries: dict[str, list[_corpus.Entry]] = {}
  for split in sorted(splits, key=SPLITS.index):
    split_dir = os.path.join(dataset_dir, split)
    pair = (FOLDER_CLASSES.get(layout)
            or image_io.detect_class_folders(split_dir)
            or image_io.CLASS_FOLDER_SETS[0])
    entries[split] = []
    for relative, label, category in image_io.list_class_folders(
        split_dir, pair, LAYOUT):
      path = os.path.join(split_dir, relative)
      if not image_io.is_image_name(relative):
        bad(split, _not_an_image(path))
        continue
      entries[split].append(_corpus.Entry(
          key=f"{split}/{relative}", path=path, label=label, where=path,
          fields={"task": source, "source": source, "category": category}))
  return entries


def list_manifest(path: str, bad: _corpus.BadInput
                  ) -> list[tuple[str, _corpus.Entry]]:
  """``(split, entry)`` pairs of a CSV manifest, in file order."""
  root = os.path.dirname(os.path.abspath(path))
  pairs = []
  # utf-8-sig: spreadsheet exports often start with a byte-order mark.
  with open(path, newline="", encoding="utf-8-sig") as f:
    reader = csv.reader(f)
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in MANIFEST_COLUMNS if c not in header]
    unknown = [c for c in header if c not in MANIFEST_COLUMNS +
               MANIFEST_OPTIONAL]
    if missing or unknown or len(set(header)) != len(header):
      raise _corpus.CorpusError(
          f"{path}:1: expected a header with the columns "
          f"{','.join(MANIFEST_COLUMNS)} (and optionally source), got "
          f"{','.join(header)!r}" + (f"; missing {missing}" if missing else "")
          + (f"; unknown {unknown}" if unknown else "") + ". Fix the header.")
    column = {name: header.index(name) for name in header}
    for number, row in enumerate(reader, 2):
      if not row or not "".join(row).strip():
        continue
      where = f"{path}:{number}"
      split = (row[column["split"]].strip() if len(row) == len(header)
               else "?")
      try:
        if len(row) != len(header):
          raise _corpus.CorpusError(
              f"{where}: expected {len(header)} fields, got {row!r}. Fix the "
              "row (quote values that contain commas).")
        value = {name: row[i].strip() for name, i in column.items()}
        if value["label"].lower() not in LABELS:
          raise _corpus.CorpusError(
              f"{where}: unknown label {value['label']!r} (expected real, "
              "fake, 0 or 1). Fix the row.")
        if value["split"] not in SPLITS:
          raise _corpus.CorpusError(
              f"{where}: unknown split {value['split']!r} (expected one of "
              f"{list(SPLITS)}). Fix the row.")
        if not value["task"]:
          raise _corpus.CorpusError(f"{where}: empty task. Fix the row.")
        image_path = os.path.join(root, value["path"])
        if not value["path"] or not os.path.isfile(image_path):
          raise _corpus.CorpusError(
              f"{where} names {value['path']!r} but {image_path} does not "
              "exist. Fix the path (relative to the manifest's folder) or "
              "remove the row.")
        if not image_io.is_image_name(value["path"]):
          raise _corpus.CorpusError(
              f"{where} names {value['path']!r}, not an image file "
              f"(extensions {list(image_io.IMAGE_EXTENSIONS)}). Fix the row.")
      except _corpus.CorpusError as error:
        bad(split, error)
        continue
      pairs.append((value["split"], _corpus.Entry(
          key=value["path"].replace(os.sep, "/"), path=image_path,
          label=LABELS[value["label"].lower()], where=where,
          fields={"task": value["task"],
                  "source": value.get("source") or value["task"],
                  "category": ""})))
  return pairs


class ImageFolder(_corpus.CorpusBuilder):
  """One image dataset folder (``manual_dir``), or every task of a CSV.

  Options (``_corpus.prepare(ImageFolder, manual_dir, **options)``):
    layout: ``"auto"`` (default), ``"cddb"``, ``"cored"`` or ``"csv"``.
    manifest: the CSV's path (``layout="csv"``; ``manual_dir`` is then its
      folder).
    image_size: pixels per side stored (default 256).
    resize: ``"crop"`` (default) or ``"stretch"`` (``image_io``).
    min_size: smallest accepted shorter side (default 0: any).
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "First release: RGB uint8 [S*S*3] as raw bytes."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = "Lay the images out as:\n" + LAYOUT
  INPUT_FEATURE = "image"
  DTYPE = np.uint8
  CLASS_NAMES = CLASS_NAMES
  TEXT_FIELDS = ("task", "source", "category")
  FILE_ERRORS = (image_io.ImageFileError,)
  DIR_FIELD = "root"
  # Pillow releases the GIL while it decodes and resizes.
  DECODE_THREADS = max(1, min(4, os.cpu_count() or 1))

  @classmethod
  def check_options(cls, options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
      raise ValueError(f"ImageFolder: unknown options {unknown}; it takes "
                       f"{sorted(DEFAULTS)}.")
    options = {**DEFAULTS, **options}
    image_io.check_image_options(options["image_size"], options["resize"],
                                 options["min_size"])
    options["image_size"] = int(options["image_size"])
    options["min_size"] = int(options["min_size"])
    if options["layout"] not in LAYOUTS:
      raise ValueError(f"config.data.stream.layout={options['layout']!r} is "
                       f"unknown; use one of {list(LAYOUTS)}.")
    manifest = str(options["manifest"] or "")
    if (options["layout"] == "csv") != bool(manifest):
      raise ValueError(
          "config.data.stream.manifest must name the CSV exactly when "
          f"layout='csv' (layout={options['layout']!r}, "
          f"manifest={manifest!r}).")
    options["manifest"] = (os.path.abspath(os.path.expanduser(manifest))
                           if manifest else "")
    return options

  @classmethod
  def config_prefix(cls, sample_rate: int, options: Mapping[str, Any]) -> str:
    del sample_rate  # Audio only.
    return f"img{options['image_size']}{options['resize']}"

  def resampled_note(self, count: int, first: Sequence[str]) -> str:
    options = self.options
    return (f"{self.name}: up-sampled {count} image(s) whose shorter side is "
            f"below image_size={options['image_size']} (set "
            "config.data.stream.min_size to refuse them); first: "
            + ", ".join(first))

  def decode(self, entry: _corpus.Entry) -> np.ndarray:
    options = self.options
    decoded = image_io.read_image(
        entry.path, options["image_size"], resize=options["resize"],
        min_size=options["min_size"])
    if min(decoded.source_size) < options["image_size"]:
      self._resampled.append(entry.key)  # list.append: thread-safe
    return decoded.pixels.reshape(-1)

  def list_entries(self, manual_dir, bad):
    options = self.options
    if options["layout"] != "csv":
      return list_dataset(manual_dir, options["layout"], bad)
    manifest = options["manifest"]
    if not os.path.isfile(manifest):
      raise _corpus.CorpusError(
          f"config.data.stream.manifest={manifest!r} is not a file. "
          f"Expected:\n{LAYOUT}")
    by_split = collections.defaultdict(list)
    by_task_split = collections.defaultdict(list)
    for split, entry in list_manifest(manifest, bad):
      by_split[split].append(entry)
      by_task_split[(entry.fields["task"], split)].append(entry)
    if not by_split:
      raise _corpus.CorpusError(f"{manifest}: no records. Expected:\n{LAYOUT}")
    for (task, split), entries in sorted(by_task_split.items()):
      _corpus.check_entries(entries, split, f"{manifest} task {task!r}", bad,
                            class_names=CLASS_NAMES, dir_field="manifest")
    return dict(by_split)
