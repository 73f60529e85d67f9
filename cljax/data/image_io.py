"""Reading one image of a user's corpus, checked, as a square RGB array.

Every image builder (``cljax.data.builders.image_folder``) and the folder
reader for scoring (``folder_records``) decode through ``decode_image`` so
that a bad file fails the same way everywhere: with an ``ImageFileError``
naming the file, what is wrong with it and the fix, raised while the corpus
is prepared, i.e. before anything trains.

What ``decode_image`` does, in order:

1. opens the file with Pillow and forces a full decode (``img.load()`` with
   ``ImageFile.LOAD_TRUNCATED_IMAGES`` off): a missing file, a file that is
   not an image and a truncated one are errors, never a grey bottom half;
2. applies the EXIF orientation (``ImageOps.exif_transpose``), so a phone
   photo stored sideways is seen upright, as any viewer shows it;
3. rejects it if its shorter side is below ``min_size`` (an image smaller
   than the crop the model needs would only be seen up-sampled);
4. converts any mode to 8-bit RGB: grey (``L``, ``1``) becomes three equal
   channels; 16/32-bit grey (``I;16``, ``I``) is scaled ``x / 257`` (65535
   -> 255; Pillow's own conversion clips at 255, which turns a 16-bit image
   white); palette and ``CMYK``/``YCbCr`` images as Pillow converts them;
   ``F`` clipped to 0-255 as Pillow does. **Alpha is dropped, not composited**:
   the stored RGB values are what a generator wrote and what the seeds'
   loaders see (they all call ``Image.open(p).convert("RGB")``, which drops
   alpha too); compositing on black would change every semi-transparent
   pixel, i.e. the very statistics a detector learns. Multi-frame files
   (GIF, animated WebP, multi-page TIFF) give their first frame;
5. resizes to ``size x size`` with Pillow's antialiased BICUBIC filter:
   ``resize="crop"`` (default) scales the shorter side to ``size`` and cuts
   the centre square, exactly like torchvision's ``Resize(size)`` +
   ``CenterCrop(size)`` on a PIL image (the longer side becomes
   ``int(size * long / short)``, the crop offset ``round((long' - size) /
   2)``); an image whose shorter side already equals ``size`` is only
   cropped, its pixels untouched. ``resize="stretch"`` resizes both sides to
   ``size`` (the aspect ratio changes; nothing is cut off).

Result: ``np.uint8 [size, size, 3]`` (HWC, RGB). Records store it flattened
row-major (``pixels.reshape(-1)``; the image-record contract of issue 8).

``folder_records`` reads a folder of images for scoring one model on it (seed
001's ``--runtest``, seed 002's ``--test``).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageFile, ImageOps

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif",
                    ".tiff", ".gif")
RESIZE_MODES = ("crop", "stretch")
# Class folders, genuine first: seed 003 / CDDB name them 0_real and 1_fake,
# CoReD real and fake.
CLASS_FOLDER_SETS = (("0_real", "1_fake"), ("real", "fake"))
CLASS_NAMES = ("real", "fake")

_FIX = ("Re-save it (e.g. `convert FILE FIXED.png` or re-export it), remove "
        "it from the corpus folder/manifest, or set config.data.stream."
        "on_bad_file='skip' to leave such files out (they are then "
        "reported).")


class ImageFileError(ValueError):
  """An image file cannot be used; the message names it and the fix."""

  def __init__(self, path: str, problem: str, fix: str = _FIX):
    self.path = str(path)
    self.problem = problem
    self.fix = fix
    super().__init__(f"{path}: {problem}. {fix}")


@dataclasses.dataclass(frozen=True)
class DecodedImage:
  """A decoded, resized image and what it was before."""

  pixels: np.ndarray               # [size, size, 3] uint8 RGB
  source_size: tuple[int, int]     # (width, height) after EXIF rotation
  source_mode: str                 # Pillow mode of the file ("RGB", "L"...)


def is_image_name(name: str) -> bool:
  """Whether ``name`` ends in one of ``IMAGE_EXTENSIONS`` (any case)."""
  return name.lower().endswith(IMAGE_EXTENSIONS)


def check_image_options(size: Any, resize: str, min_size: Any) -> None:
  """ValueError naming the ``config.data.stream`` field that is invalid."""
  if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or (
      size < 1):
    raise ValueError(f"config.data.stream.image_size={size!r} must be a "
                     "positive integer (pixels per side, e.g. 256).")
  if resize not in RESIZE_MODES:
    raise ValueError(f"config.data.stream.resize={resize!r} is unknown; use "
                     f"one of {list(RESIZE_MODES)}.")
  if isinstance(min_size, bool) or not isinstance(
      min_size, (int, np.integer)) or min_size < 0:
    raise ValueError(f"config.data.stream.min_size={min_size!r} must be an "
                     "integer >= 0 (0 accepts any size).")


def _to_rgb(image: Image.Image) -> Image.Image:
  """Any Pillow mode as 8-bit RGB (see the module docstring, step 4)."""
  mode = image.mode
  if mode == "RGB":
    return image
  if mode.startswith("I"):  # I;16, I;16B, I;16L, I;16N, I (16/32-bit grey)
    values = np.asarray(image).astype(np.float64)
    grey = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(grey[..., None], 3, axis=2), "RGB")
  if mode == "P" and "transparency" in image.info:
    # Pillow wants palette transparency resolved through RGBA first; the
    # alpha is then dropped like any other.
    image = image.convert("RGBA")
  if mode in ("LA", "La", "PA"):
    image = image.convert("RGBA") if mode == "PA" else image.convert("L")
  return image.convert("RGB")


def _resize(image: Image.Image, size: int, resize: str) -> Image.Image:
  width, height = image.size
  if resize == "stretch":
    if (width, height) == (size, size):
      return image
    return image.resize((size, size), Image.Resampling.BICUBIC)
  # torchvision's Resize(int) on a PIL image: shorter side -> size, longer
  # side int(size * long / short) (truncated), then CenterCrop's offsets.
  if width <= height:
    new_size = (size, int(size * height / width))
  else:
    new_size = (int(size * width / height), size)
  if new_size != (width, height):
    image = image.resize(new_size, Image.Resampling.BICUBIC)
  width, height = image.size
  left = int(round((width - size) / 2.0))
  top = int(round((height - size) / 2.0))
  if (width, height) == (size, size):
    return image
  return image.crop((left, top, left + size, top + size))


def read_image(path: str, size: int, *, resize: str = "crop",
               min_size: int = 0) -> DecodedImage:
  """Decodes ``path`` to ``[size, size, 3]`` uint8 RGB; see the module doc.

  Args:
    path: an image file Pillow reads (jpeg, png, bmp, webp, tiff, gif...).
    size: pixels per side of the result.
    resize: ``"crop"`` (shorter side to ``size``, centre square) or
      ``"stretch"`` (both sides to ``size``).
    min_size: smallest accepted shorter side in pixels (0: any).

  Returns:
    ``DecodedImage`` (pixels, the source's size and mode).

  Raises:
    ImageFileError: missing, not an image, corrupt or truncated, too large
      to decode safely, of a mode with no RGB conversion, or smaller than
      ``min_size``; the message names the file and the fix.
  """
  check_image_options(size, resize, min_size)
  path = str(path)
  if not os.path.isfile(path):
    raise ImageFileError(path, "file not found",
                         "Check the corpus path (config.data.stream.root or "
                         "the manifest) and that the copy is complete.")
  previous = ImageFile.LOAD_TRUNCATED_IMAGES
  # Another library (or a user script) may have turned this on globally; a
  # truncated file must fail here, not train as a half-grey image.
  ImageFile.LOAD_TRUNCATED_IMAGES = False
  try:
    with warnings.catch_warnings():
      # Pillow warns (and raises above twice the limit) on decompression-
      # bomb sizes: the error below says what to do.
      warnings.simplefilter("error", Image.DecompressionBombWarning)
      with Image.open(path) as opened:
        opened.load()
        mode = opened.mode
        image = ImageOps.exif_transpose(opened)
        image.load()
  except (Image.DecompressionBombError,
          Image.DecompressionBombWarning) as error:
    raise ImageFileError(
        path, f"too many pixels to decode safely ({error})",
        "Down-scale it first (e.g. `convert FILE -resize 4096x4096 "
        "FIXED.png`) or remove it from the corpus.") from error
  except MemoryError:
    raise
  except Exception as error:  # pylint: disable=broad-except
    # Whatever Pillow raises on a malformed file (OSError, SyntaxError,
    # struct.error from a corrupt EXIF block...) is a problem of that file.
    text = f"{type(error).__name__}: {error}"
    if "truncated" in text.lower() or "image file is" in text.lower():
      problem = f"truncated image ({text})"
    else:
      problem = f"unreadable, corrupt or not an image ({text})"
    raise ImageFileError(path, problem) from error
  finally:
    ImageFile.LOAD_TRUNCATED_IMAGES = previous
  width, height = image.size
  if width < 1 or height < 1:
    raise ImageFileError(path, f"empty image ({width}x{height} pixels)")
  if min(width, height) < min_size:
    raise ImageFileError(
        path, f"{width}x{height} pixels, smaller than min_size={min_size} "
        "(its shorter side must be at least that)",
        "Remove it, lower config.data.stream.min_size (it would then be "
        "up-sampled), or set config.data.stream.on_bad_file='skip' to leave "
        "such images out (they are then reported).")
  try:
    rgb = _to_rgb(image)
  except (ValueError, OSError) as error:
    raise ImageFileError(
        path, f"mode {mode!r} has no RGB conversion ({error})",
        "Re-save it as an RGB or greyscale PNG/JPEG, or remove it.") from error
  pixels = np.asarray(_resize(rgb, size, resize), dtype=np.uint8)
  return DecodedImage(pixels=np.ascontiguousarray(pixels),
                      source_size=(int(width), int(height)), source_mode=mode)


def decode_image(path: str, size: int, *, resize: str = "crop",
                 min_size: int = 0) -> np.ndarray:
  """``read_image(...).pixels``: ``np.uint8 [size, size, 3]`` RGB.

  Args, Raises: as ``read_image``.
  """
  return read_image(path, size, resize=resize, min_size=min_size).pixels


# -- Folders of images --------------------------------------------------------


def _walk_files(folder: str) -> list[str]:
  """Every visible file under ``folder``, as sorted '/'-joined relative
  paths (hidden files and folders, e.g. ``.DS_Store``, left out)."""
  found = []
  for root, dirs, files in os.walk(folder):
    dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    for name in files:
      if not name.startswith("."):
        found.append(os.path.relpath(os.path.join(root, name), folder)
                     .replace(os.sep, "/"))
  return sorted(found)


def _visible(folder: str) -> list[str]:
  return sorted(n for n in os.listdir(folder) if not n.startswith("."))


def detect_class_folders(folder: str) -> tuple[str, str] | None:
  """The class-folder pair ``folder`` uses, directly or one level down.

  ``("0_real", "1_fake")`` or ``("real", "fake")`` when a name of that pair
  sits in ``folder`` or in one of its sub-folders (CDDB's per-object
  folders: ``<split>/<object>/0_real``); None when neither does.
  """
  names = _visible(folder)
  candidates = [names] + [
      _visible(os.path.join(folder, n)) for n in names
      if os.path.isdir(os.path.join(folder, n))]
  for pair in CLASS_FOLDER_SETS:
    if any(name in pair for level in candidates for name in level):
      return pair
  return None


def list_class_folders(split_dir: str, class_dirs: tuple[str, str],
                       layout_hint: str = ""
                       ) -> list[tuple[str, int, str]]:
  """The files of a split folder laid out in class folders.

  ``split_dir`` holds either the two ``class_dirs`` (e.g. ``0_real`` and
  ``1_fake``) or only category folders that each hold them (CDDB's
  per-object folders, ``<split>/<object>/0_real``). Files may sit in nested
  folders below a class folder. Every visible file is returned, images or
  not (the caller reports the others).

  Args:
    split_dir: the folder.
    class_dirs: ``(genuine, fake)`` folder names.
    layout_hint: appended to structural errors (the expected layout).

  Returns:
    ``[(relative_path, label, category)]`` sorted by path; the path is
    relative to ``split_dir`` ('/'-joined), the label 0 (genuine) or 1, the
    category the per-object folder's name or "".

  Raises:
    CorpusError: a missing or empty class folder, an entry next to the
      class folders, a category folder without them; the message names the
      folder and the fix.
  """
  from cljax.data.builders._corpus import CorpusError  # pylint: disable=g-import-not-at-top
  hint = f" Expected layout:\n{layout_hint}" if layout_hint else ""
  names = _visible(split_dir)
  other_pairs = [p for p in CLASS_FOLDER_SETS if p != class_dirs]

  def misnamed(folder: str, found: Sequence[str]) -> str:
    for pair in other_pairs:
      if any(n in pair for n in found):
        return (f" {folder} uses the class folders {list(pair)}; this layout "
                f"expects {list(class_dirs)}: rename them or pick the layout "
                "that uses them (config.data.stream.layout='auto' accepts "
                "both).")
    return ""

  def one_level(folder: str, category: str) -> list[tuple[str, int, str]]:
    entries = _visible(folder)
    present = [n for n in entries if n in class_dirs]
    if not present:
      raise CorpusError(
          f"{folder}: no {class_dirs[0]}/ or {class_dirs[1]}/ folder (it "
          f"holds {entries[:5]}). Put the genuine images in "
          f"{os.path.join(folder, class_dirs[0])} and the fakes in "
          f"{os.path.join(folder, class_dirs[1])}."
          + misnamed(folder, entries) + hint)
    for name in entries:
      if name not in class_dirs:
        raise CorpusError(
            f"{os.path.join(folder, name)}: unexpected entry next to the "
            f"class folders {list(class_dirs)}. Move it out (or into one of "
            "them)." + hint)
    out = []
    for label, class_name in enumerate(class_dirs):
      class_dir = os.path.join(folder, class_name)
      if class_name not in entries:
        raise CorpusError(
            f"{folder}: missing class folder {class_name}/ (found "
            f"{present}). Add {class_dir} with the "
            f"{CLASS_NAMES[label]} images; a detector needs both classes in "
            "every split." + hint)
      if not os.path.isdir(class_dir):
        raise CorpusError(f"{class_dir}: is a file, expected a folder of "
                          f"{CLASS_NAMES[label]} images." + hint)
      files = _walk_files(class_dir)
      if not files:
        raise CorpusError(
            f"{class_dir}: empty class folder. Put the {CLASS_NAMES[label]} "
            "images there or remove the split." + hint)
      prefix = os.path.relpath(class_dir, split_dir).replace(os.sep, "/")
      out.extend((f"{prefix}/{name}", label, category) for name in files)
    return out

  if not names:
    raise CorpusError(f"{split_dir}: empty folder; expected the class "
                      f"folders {list(class_dirs)}." + hint)
  if any(n in class_dirs for n in names):
    return sorted(one_level(split_dir, ""))
  wrong_pair = misnamed(split_dir, names)
  if wrong_pair:
    raise CorpusError(f"{split_dir}: no {class_dirs[0]}/ or {class_dirs[1]}/ "
                      "folder." + wrong_pair + hint)
  out = []
  for name in names:
    category_dir = os.path.join(split_dir, name)
    if not os.path.isdir(category_dir):
      raise CorpusError(
          f"{category_dir}: unexpected file; {split_dir} holds the class "
          f"folders {list(class_dirs)} (or per-object folders that hold "
          "them). Move it out." + hint)
    out.extend(one_level(category_dir, name))
  return sorted(out)


class FolderRecords:
  """Images of one folder as contract records (``folder_records``)."""

  def __init__(self, folder: str, paths: Sequence[str], labels: Sequence[int],
               pixels: np.ndarray, layout: str, skipped: Sequence[str],
               upscaled: Sequence[str]):
    self.folder = folder
    self.paths = list(paths)
    self.labels = list(labels)
    self._pixels = pixels
    self.layout = layout
    self.skipped = list(skipped)
    self.upscaled = list(upscaled)

  @property
  def labelled(self) -> bool:
    return bool(self.labels) and self.labels[0] >= 0

  def __len__(self) -> int:
    return len(self.paths)

  def __getitem__(self, index: int) -> dict[str, Any]:
    index = int(index)
    if not -len(self) <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} images")
    return {"audio": self._pixels[index], "label": int(self.labels[index]),
            "utt_id": self.paths[index]}

  def field_values(self, name: str) -> list[Any]:
    if name == "label":
      return list(self.labels)
    if name == "utt_id":
      return list(self.paths)
    return [self[i][name] for i in range(len(self))]

  def __repr__(self) -> str:
    return (f"FolderRecords({self.folder!r}, {len(self)} images, "
            f"layout={self.layout!r}, {len(self.skipped)} skipped)")


def folder_records(folder: str, image_size: int, resize: str = "crop",
                   on_bad_file: str = "error", *,
                   min_size: int = 0) -> FolderRecords:
  """Every image of ``folder`` as records, to score one model on it.

  Labelled when ``folder`` has class folders — ``0_real/`` + ``1_fake/`` or
  ``real/`` + ``fake/`` (as a split folder of the corpus layouts, CDDB's
  per-object folders ``<object>/0_real`` included; files may be nested below
  a class folder) — then ``label`` is 0 (real) or 1 (fake); otherwise every
  image under ``folder`` (recursively; other files ignored) with label -1
  (unlabelled: scores only, no AUC/accuracy).

  Every image is decoded once, here, so a bad one fails (or is skipped and
  listed in ``.skipped``) before any scoring; the decoded pixels stay in
  memory (``N * image_size**2 * 3`` bytes: 10,000 images at 256 take
  1.9 GB — build a larger set as a corpus with the ``image_folders`` stream).

  Args:
    folder: the folder.
    image_size: pixels per side (the run's ``image_size``).
    resize: ``"crop"`` or ``"stretch"`` (see ``decode_image``).
    on_bad_file: ``"error"``: the first bad image raises; ``"skip"``: bad
      images (and non-image files inside class folders) are left out and
      listed in ``.skipped``.
    min_size: smallest accepted shorter side (0: any).

  Returns:
    ``FolderRecords``: ``records[i] = {"audio": uint8 [S*S*3], "label",
    "utt_id": path relative to folder}``, sorted by path; ``.labelled``,
    ``.layout``, ``.skipped`` and ``.upscaled`` (images whose shorter side
    was below ``image_size``).

  Raises:
    ValueError / CorpusError / ImageFileError: not a folder, no images, a
      broken class layout (one class folder missing or empty), or a bad
      image with ``on_bad_file="error"``.
  """
  check_image_options(image_size, resize, min_size)
  if on_bad_file not in ("error", "skip"):
    raise ValueError(f"on_bad_file={on_bad_file!r} is unknown; use 'error' "
                     "or 'skip'.")
  folder = os.path.abspath(os.path.expanduser(str(folder)))
  if not os.path.isdir(folder):
    raise ValueError(f"{folder!r} is not a folder of images.")
  class_dirs = detect_class_folders(folder)
  skipped: list[str] = []
  if class_dirs is None:
    listed = [(p, -1) for p in _walk_files(folder) if is_image_name(p)]
    layout = "unlabelled"
    if not listed:
      raise ValueError(
          f"{folder}: no image files found (extensions "
          f"{list(IMAGE_EXTENSIONS)}, any case, in it and its sub-folders). "
          "Point at the folder that holds the images.")
  else:
    names = _visible(folder)
    splits = sorted(set(names) & {"train", "val", "test"})
    if splits and not set(names) & set(class_dirs):
      raise ValueError(
          f"{folder}: holds the split folders {splits} of a dataset; point "
          f"at one of them (e.g. {os.path.join(folder, splits[-1])}) so that "
          "training images are not scored with the test images.")
    layout = "/".join(class_dirs)
    listed = []
    for path, label, _ in list_class_folders(folder, class_dirs):
      if is_image_name(path):
        listed.append((path, label))
      elif on_bad_file == "skip":
        skipped.append(f"{os.path.join(folder, path)}: not an image file")
      else:
        raise ImageFileError(
            os.path.join(folder, path),
            f"not an image file (extensions {list(IMAGE_EXTENSIONS)})",
            "Remove it from the class folder, or pass on_bad_file='skip'.")
  pixels = np.empty((len(listed), image_size * image_size * 3), np.uint8)
  kept_paths, kept_labels, upscaled = [], [], []
  for path, label in listed:
    full = os.path.join(folder, path)
    try:
      decoded = read_image(full, image_size, resize=resize, min_size=min_size)
    except ImageFileError as error:
      if on_bad_file == "error":
        raise
      skipped.append(f"{error.path}: {error.problem}")
      continue
    if min(decoded.source_size) < image_size:
      upscaled.append(path)
    pixels[len(kept_paths)] = decoded.pixels.reshape(-1)
    kept_paths.append(path)
    kept_labels.append(label)
  if not kept_paths:
    raise ValueError(f"{folder}: every image was skipped ({len(skipped)}; "
                     f"first: {skipped[:3]}). Nothing to score.")
  if class_dirs is not None and len(set(kept_labels)) < 2:
    missing = CLASS_NAMES[1 - kept_labels[0]]
    raise ValueError(f"{folder}: after skipping {len(skipped)} bad images no "
                     f"{missing} image is left (first skipped: "
                     f"{skipped[:3]}). Fix the files.")
  return FolderRecords(folder, kept_paths, kept_labels,
                       pixels[:len(kept_paths)], layout, skipped, upscaled)
