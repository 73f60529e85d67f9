"""Image corpora from a user's folders: decoding, builders, streams, errors.

Every fixture image is written here with Pillow; its pixels are a function of
its path (``pixels``), so a test can check that what comes back is the
file's own image.
"""

from __future__ import annotations

import glob
import json
import os
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from cljax.data import image_io, image_streams, loader, streams
from cljax.data.builders import _corpus
from cljax.data.builders.image_folder import ImageFolder

S = 8  # image_size of every stream built here: records are [192] uint8.


def pixels(name: str, width: int = 10, height: int = 12) -> np.ndarray:
  """Deterministic RGB uint8 [height, width, 3] for ``name``."""
  rng = np.random.default_rng(zlib.crc32(name.encode()))
  return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_image(path: str, name: str, size=(10, 12), mode: str = "RGB"):
  """Writes ``pixels(name)`` (converted to ``mode``) to ``path``; the format
  follows the extension, lossless except for JPEG."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  image = Image.fromarray(pixels(name, *size)).convert(mode)
  kind = {".jpg": "JPEG", ".jpeg": "JPEG"}.get(
      os.path.splitext(path)[1].lower())
  image.save(path, format=kind) if kind else image.save(
      path, format=Image.registered_extensions()[
          os.path.splitext(path)[1].lower()])
  return image


def lossless(name: str) -> bool:
  """Whether ``write_image`` stored ``pixels(name)`` exactly (not JPEG,
  lossy WebP or a 256-colour GIF)."""
  return name.lower().endswith((".png", ".bmp", ".tif", ".tiff"))


# dataset -> split -> class folder -> relative file names (nested, mixed-case
# extensions, per-object folders for cyclegan as CDDB lays them out).
CDDB = {
    "gaugan": {s: {"0_real": ["r0.png", "deep/r1.JPG"],
                   "1_fake": ["f0.Png", "f1.jpeg", "deep/er/f2.bmp"]}
               for s in ("train", "val", "test")},
    "cyclegan": {s: {"horse/0_real": ["h.png"], "horse/1_fake": ["h.PNG"],
                     "zebra/0_real": ["z.webp"], "zebra/1_fake": ["z.tif"]}
                 for s in ("train", "test")},
}
CORED = {
    "DeepFake": {s: {"real": ["a.png", "b.png"], "fake": ["c.png"]}
                 for s in ("train", "val")},
    "Face2Face": {s: {"real": ["a.png"], "fake": ["b.png", "c.gif"]}
                  for s in ("train", "val")},
}


def write_tree(root, tree) -> str:
  for dataset, splits in tree.items():
    for split, classes in splits.items():
      for folder, names in classes.items():
        for name in names:
          relative = f"{dataset}/{split}/{folder}/{name}"
          write_image(os.path.join(root, relative), relative)
  return str(root)


def expected_labels(tree, dataset, split) -> dict[str, int]:
  return {f"{dataset}/{split}/{folder}/{name}":
          int(folder.split("/")[-1] in ("1_fake", "fake"))
          for folder, names in tree[dataset][split].items() for name in names}


def by_utt(source) -> dict[str, dict]:
  return {r["utt_id"]: r for r in (source[i] for i in range(len(source)))}


# -- decode_image -------------------------------------------------------------


def test_modes_become_rgb_as_documented(tmp_path):
  grey = np.arange(36, dtype=np.uint8).reshape(6, 6) * 7
  Image.fromarray(grey, "L").save(tmp_path / "grey.png")
  np.testing.assert_array_equal(
      image_io.decode_image(tmp_path / "grey.png", 6),
      np.repeat(grey[..., None], 3, axis=2))
  # RGBA: alpha is dropped, the stored RGB kept (fully transparent pixel
  # included), as Image.convert("RGB") does in the seeds' loaders.
  rgba = np.zeros((6, 6, 4), np.uint8)
  rgba[..., :3] = pixels("rgba", 6, 6)
  rgba[..., 3] = 255
  rgba[0, 0] = (10, 200, 30, 0)
  rgba[1, 2] = (90, 60, 250, 128)
  Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
  decoded = image_io.decode_image(tmp_path / "alpha.png", 6)
  assert decoded[0, 0].tolist() == [10, 200, 30]
  assert decoded[1, 2].tolist() == [90, 60, 250]
  np.testing.assert_array_equal(decoded, rgba[..., :3])
  # Palette (with and without transparency), CMYK, 1-bit: Pillow's own
  # conversion of the same image.
  palette = Image.fromarray(pixels("p", 6, 6)).quantize(16)
  palette.save(tmp_path / "p.png")
  palette.save(tmp_path / "pt.png", transparency=3)
  for name in ("p.png", "pt.png"):
    np.testing.assert_array_equal(
        image_io.decode_image(tmp_path / name, 6),
        np.asarray(palette.convert("RGB")))
  cmyk = Image.fromarray(pixels("c", 6, 6)).convert("CMYK")
  cmyk.save(tmp_path / "cmyk.tiff")
  np.testing.assert_array_equal(
      image_io.decode_image(tmp_path / "cmyk.tiff", 6),
      np.asarray(cmyk.convert("RGB")))
  bits = (np.arange(36).reshape(6, 6) % 3 == 0)
  Image.fromarray(bits).save(tmp_path / "bits.png")
  np.testing.assert_array_equal(image_io.decode_image(tmp_path / "bits.png", 6),
                                np.repeat(bits[..., None] * 255, 3, 2))
  # 16-bit grey: x / 257 rounded (Pillow's own conversion would clip at 255).
  deep = (np.arange(36, dtype=np.uint16).reshape(6, 6) * 1871)
  Image.fromarray(deep).save(tmp_path / "deep.png")
  assert Image.open(tmp_path / "deep.png").mode == "I;16"
  decoded = image_io.decode_image(tmp_path / "deep.png", 6)
  np.testing.assert_array_equal(
      decoded[..., 1], np.round(deep / 257.0).astype(np.uint8))
  assert decoded[5, 5].tolist() == [255, 255, 255]  # 65485 / 257 = 254.8


def test_crop_and_stretch_equal_pillow_resize_then_crop(tmp_path):
  for width, height in ((23, 14), (13, 21), (8, 15)):
    array = pixels(f"{width}x{height}", width, height)
    path = tmp_path / f"{width}x{height}.png"
    Image.fromarray(array).save(path)
    short, long = min(width, height), max(width, height)
    new_long = int(S * long / short)  # torchvision Resize(S) arithmetic
    size = (S, new_long) if width <= height else (new_long, S)
    resized = np.asarray(Image.fromarray(array).resize(
        size, Image.Resampling.BICUBIC))
    top = int(round((resized.shape[0] - S) / 2))
    left = int(round((resized.shape[1] - S) / 2))
    np.testing.assert_array_equal(
        image_io.decode_image(path, S),
        resized[top:top + S, left:left + S])
    np.testing.assert_array_equal(
        image_io.decode_image(path, S, resize="stretch"),
        np.asarray(Image.fromarray(array).resize(
            (S, S), Image.Resampling.BICUBIC)))
  # Shorter side already S: cropped only, pixels untouched (15 -> rows 4:12).
  np.testing.assert_array_equal(image_io.decode_image(tmp_path / "8x15.png", S),
                                pixels("8x15", 8, 15)[4:12])
  # Down-scaling is antialiased: a 1-pixel checkerboard averages to grey
  # instead of aliasing to black or white.
  board = ((np.indices((64, 64)).sum(0) % 2) * 255).astype(np.uint8)
  Image.fromarray(board).save(tmp_path / "board.png")
  assert np.abs(image_io.decode_image(tmp_path / "board.png", S).astype(int)
                - 128).max() < 8


def test_exif_orientation_is_applied(tmp_path):
  array = pixels("exif", 3, 3)
  exif = Image.Exif()
  exif[0x0112] = 6  # "rotate 90 clockwise to display"
  Image.fromarray(array).save(tmp_path / "o.png", exif=exif)
  np.testing.assert_array_equal(image_io.decode_image(tmp_path / "o.png", 3),
                                np.rot90(array, k=-1))


def test_bad_images_raise_naming_the_file(tmp_path, monkeypatch):
  write_image(str(tmp_path / "good.png"), "good")
  write_image(str(tmp_path / "good.jpg"), "good")
  (tmp_path / "text.png").write_text("not an image")
  data = (tmp_path / "good.png").read_bytes()
  (tmp_path / "cut.png").write_bytes(data[:len(data) // 2])
  data = (tmp_path / "good.jpg").read_bytes()
  (tmp_path / "cut.jpg").write_bytes(data[:len(data) // 2])
  # Even with truncated loading switched on globally (as CDDB's code does).
  monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
  cases = [("text.png", r"unreadable, corrupt or not an image"),
           ("cut.png", r"truncated|corrupt"), ("cut.jpg", r"truncated"),
           ("missing.png", r"file not found")]
  for name, problem in cases:
    path = str(tmp_path / name)
    with pytest.raises(image_io.ImageFileError, match=problem) as error:
      image_io.decode_image(path, S)
    assert str(error.value).startswith(path) and error.value.path == path
    assert "on_bad_file='skip'" in str(error.value) or name == "missing.png"
  assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # restored
  with pytest.raises(image_io.ImageFileError,
                     match=r"good\.png: 10x12 pixels, smaller than "
                     r"min_size=11.*lower config\.data\.stream\.min_size"):
    image_io.decode_image(tmp_path / "good.png", S, min_size=11)
  assert image_io.decode_image(tmp_path / "good.png", S,
                               min_size=10).shape == (S, S, 3)
  with pytest.raises(ValueError, match=r"config\.data\.stream\.resize="):
    image_io.decode_image(tmp_path / "good.png", S, resize="pad")


# -- Builders and streams -----------------------------------------------------


def test_cddb_layout_stream(tmp_path):
  root = write_tree(tmp_path / "cddb", CDDB)
  stream = image_streams.image_folders(
      root, tasks=("gaugan", "cyclegan"), layout="cddb", image_size=S,
      data_dir=str(tmp_path / "c"))
  assert stream.task_names == ["gaugan", "cyclegan"]
  assert stream.class_names == ("real", "fake") and stream.unseen_tasks == ()
  assert stream.sample_rate == S * S * 3
  gaugan, cyclegan = stream.tasks
  assert sorted(gaugan.splits) == ["test", "train", "val"]
  assert sorted(cyclegan.splits) == ["test", "train"]  # no val/ folder
  assert gaugan.metadata["counts"]["train"] == {"real": 2, "fake": 3}
  assert gaugan.metadata["test_from"] == {"gaugan": "test"}
  for task in stream.tasks:
    for split in ("train", "val", "test"):
      if split not in CDDB[task.name]:
        continue
      records = by_utt(task.split(split))
      assert {u: r["label"] for u, r in records.items()} == expected_labels(
          CDDB, task.name, split)
      for utt_id, record in records.items():
        assert record["audio"].dtype == np.uint8
        assert record["audio"].shape == (S * S * 3,)
        assert record["source"] == record["task"] == task.name
        file = os.path.join(root, utt_id)
        np.testing.assert_array_equal(record["audio"].reshape(S, S, 3),
                                      image_io.decode_image(file, S))
        if lossless(utt_id):  # 10x12 -> 8x9 -> rows 0:8 (offset round(.5))
          reference = Image.fromarray(pixels(utt_id)).resize(
              (8, 9), Image.Resampling.BICUBIC)
          np.testing.assert_array_equal(record["audio"].reshape(S, S, 3),
                                        np.asarray(reference)[0:8])
  categories = {r["category"] for r in by_utt(cyclegan.split("train")).values()}
  assert categories == {"horse", "zebra"}
  # The image is stored as raw uint8 bytes under "image", classes real/fake.
  features = glob.glob(str(tmp_path / "c" / "image_folder" / "img8crop_*" /
                           "1.0.0" / "features.json"))
  assert len(features) == 2  # one build per dataset folder
  with open(features[0]) as f:
    stored = json.load(f)["featuresDict"]["features"]
  assert stored["image"]["tensor"]["encoding"] == "bytes"
  assert stored["image"]["tensor"]["dtype"] == "uint8"
  assert stored["label"]["classLabel"]["numClasses"] == "2"
  # Batches of whole images, in order: the loader's view of the contract.
  [batch] = list(loader.eval_batches(cyclegan.split("test"), batch_size=4,
                                     window_length=stream.sample_rate))
  assert batch["audio"].shape == (4, S * S * 3)
  np.testing.assert_array_equal(batch["audio"][0],
                                cyclegan.split("test")[0]["audio"])
  # CDDB's own protocol tests on val/; the split map follows.
  stream = image_streams.image_folders(
      root, tasks=("gaugan",), layout="cddb", image_size=S,
      eval_split_from="val", data_dir=str(tmp_path / "c"))
  assert all(u.startswith("gaugan/val/")
             for u in by_utt(stream.tasks[0].split("test")))


def test_cored_multi_source_tasks_and_auto_layout(tmp_path):
  root = write_tree(tmp_path / "cored", CORED)
  cache = str(tmp_path / "c")
  stream = image_streams.image_folders(
      root, tasks=("DeepFake", "Face2Face_DeepFake", ("Face2Face",)),
      layout="cored", image_size=S, data_dir=cache)
  assert stream.task_names == ["DeepFake", "Face2Face_DeepFake", "Face2Face"]
  union = stream.tasks[1]
  assert union.metadata["sources"] == ["Face2Face", "DeepFake"]
  for split, folder in (("train", "train"), ("test", "val"), ("val", "val")):
    expected = {**expected_labels(CORED, "Face2Face", folder),
                **expected_labels(CORED, "DeepFake", folder)}
    assert {u: r["label"] for u, r in by_utt(union.split(split)).items()
            } == expected
  assert union.metadata["test_from"] == {"Face2Face": "val",
                                         "DeepFake": "val"}
  assert union.metadata["counts"]["train"] == {"real": 3, "fake": 3}
  # Each dataset is built once and shared by the tasks that use it.
  assert len(glob.glob(os.path.join(cache, "image_folder", "*"))) == 2
  # field_values / subset, as the pipeline and replay use them.
  source = union.split("train")
  labels = source.field_values("label")
  fakes = source.subset([i for i, label in enumerate(labels) if label == 1])
  assert len(fakes) == 3 and fakes.field_values("label") == [1, 1, 1]
  assert fakes.field_values("utt_id") == [fakes[i]["utt_id"]
                                          for i in range(3)]
  # "auto" reads the same copy (val -> test, since there is no test/).
  auto = image_streams.image_folders(root, tasks=("DeepFake",),
                                     image_size=S, data_dir=cache)
  assert set(by_utt(auto.tasks[0].split("test"))) == set(
      expected_labels(CORED, "DeepFake", "val"))
  with pytest.raises(ValueError, match=r"names 'Face2Face_FaceSwap': no "
                     r"dataset of that name"):
    image_streams.image_folders(root, tasks=("Face2Face_FaceSwap",),
                                image_size=S, data_dir=cache)


def test_csv_manifest(tmp_path):
  folder = tmp_path / "m"
  rows = [("gan/a.png", "REAL", "gan", "train", "celeba"),
          ("gan/b.png", "Fake", "gan", "train", "stylegan"),
          ("gan/c.png", "0", "gan", "test", "celeba"),
          ("gan/d.png", "1", "gan", "test", "stylegan"),
          ("ff/a.png", "real", "ff", "train", ""),
          ("ff/b.png", "fake", "ff", "train", ""),
          ("ff/c.png", "real", "ff", "test", ""),
          ("ff/d.png", "fake", "ff", "test", "")]
  for row in rows:
    write_image(str(folder / row[0]), row[0])
  manifest = folder / "manifest.csv"
  manifest.write_text("split,path,label,task,source\n" + "".join(
      f"{r[3]},{r[0]},{r[1]},{r[2]},{r[4]}\n" for r in rows))
  stream = image_streams.image_folders(
      manifest=str(manifest), layout="csv", tasks=("gan", "ff"),
      image_size=S, eval_split_from="test", data_dir=str(tmp_path / "c"),
      unseen_tasks=())
  gan = stream.tasks[0]
  records = by_utt(gan.split("test"))
  assert {u: (r["label"], r["source"]) for u, r in records.items()} == {
      "gan/c.png": (0, "celeba"), "gan/d.png": (1, "stylegan")}
  np.testing.assert_array_equal(records["gan/d.png"]["audio"].reshape(S, S, 3),
                                image_io.decode_image(folder / "gan/d.png", S))
  # No source column value: the task.
  assert by_utt(stream.tasks[1].split("train"))["ff/a.png"]["source"] == "ff"
  assert stream.tasks[1].metadata["counts"]["test"] == {"real": 1, "fake": 1}


def test_csv_task_without_test_split_is_refused(tmp_path):
  folder = tmp_path / "m"
  rows = [("a.png", "real", "t", "train"), ("b.png", "fake", "t", "train"),
          ("c.png", "real", "t", "val"), ("d.png", "fake", "t", "val")]
  for row in rows:
    write_image(str(folder / row[0]), row[0])
  manifest = folder / "m.csv"
  manifest.write_text("path,label,task,split\n" + "".join(
      ",".join(r) + "\n" for r in rows))
  cache = str(tmp_path / "c")
  with pytest.raises(ValueError, match=r"task\(s\) \['t'\]: no 'test' split"
                     r".*eval_split_from"):
    image_streams.image_folders(manifest=str(manifest), image_size=S,
                                data_dir=cache)
  stream = image_streams.image_folders(manifest=str(manifest), image_size=S,
                                       eval_split_from="val", data_dir=cache)
  assert set(by_utt(stream.tasks[0].split("test"))) == {"c.png", "d.png"}


def test_named_sequences(tmp_path):
  assert image_streams.CDDB_EASY == ("gaugan", "biggan", "cyclegan", "imle",
                                     "deepfake", "crn", "wild")
  assert image_streams.CDDB_LONG == image_streams.CDDB_EASY + (
      "glow", "stargan_gf", "stylegan", "whichfaceisreal", "san")
  for name in ("image_folders", "cddb_easy", "cddb_long", "seed001_sequence"):
    assert streams.STREAMS[name] is getattr(image_streams, name)
  root = write_tree(tmp_path / "cddb", {"gaugan": CDDB["gaugan"]})
  cache = str(tmp_path / "c")
  # Every task read from one folder: the names stay CDDB's.
  long = streams.make_stream({
      "name": "cddb_long", "root": root, "image_size": S, "data_dir": cache,
      "folders": {n: "gaugan" for n in image_streams.CDDB_LONG}})
  assert long.task_names == list(image_streams.CDDB_LONG)
  assert long.sample_rate == S * S * 3
  with pytest.raises(ValueError, match=r"config\.data\.stream\.folders "
                     r"names 'biggan'; the folders of "):
    image_streams.cddb_easy(root, image_size=S, data_dir=cache)
  # Seed 001: VFHQ trains on VFHQ/ and tests on VFHQ-F/; NeuralTextures is
  # test-only, in Stream.unseen_tasks.
  tree = {name: {s: {"0_real": ["r.png"], "1_fake": ["f.png"]}
                 for s in splits}
          for name, splits in (("GAN-S", ("train", "test")),
                               ("VFHQ", ("train",)), ("VFHQ-F", ("test",)),
                               ("DeepFake", ("train", "test")),
                               ("NeuralTextures", ("test",)))}
  root = write_tree(tmp_path / "s1", tree)
  stream = image_streams.seed001_sequence(
      root, train_folders={"ForenSynths": "GAN-S"},
      test_folders={"ForenSynths": "GAN-S"}, image_size=S, data_dir=cache)
  assert stream.task_names == ["GAN-S", "VFHQ", "ForenSynths", "DeepFake"]
  vfhq = stream.tasks[1]
  assert set(by_utt(vfhq.split("train"))) == {"VFHQ/train/0_real/r.png",
                                              "VFHQ/train/1_fake/f.png"}
  assert set(by_utt(vfhq.split("test"))) == {"VFHQ-F/test/0_real/r.png",
                                             "VFHQ-F/test/1_fake/f.png"}
  [unseen] = stream.unseen_tasks
  assert unseen.name == "NeuralTextures" and sorted(unseen.splits) == ["test"]
  assert len(unseen.split("test")) == 2


# -- Bad input -----------------------------------------------------------------


def _rm(path):
  for file in glob.glob(os.path.join(path, "**", "*.*"), recursive=True):
    os.remove(file)


@pytest.mark.parametrize("mutate, layout, match", [
    (lambda r: os.rename(f"{r}/gaugan/train/1_fake", f"{r}/../moved"),
     "cddb", r"gaugan/train: missing class folder 1_fake/"),
    (lambda r: _rm(f"{r}/gaugan/val/0_real"), "cddb",
     r"gaugan/val/0_real: empty class folder"),
    (lambda r: os.makedirs(f"{r}/gaugan/valid"), "cddb",
     r"gaugan/valid: unexpected folder in dataset 'gaugan'"),
    (lambda r: os.makedirs(f"{r}/gaugan/test/notes"), "cddb",
     r"gaugan/test/notes: unexpected entry next to the class folders"),
    (lambda r: [os.rename(f"{r}/gaugan/train/{a}", f"{r}/gaugan/train/{b}")
                for a, b in (("0_real", "real"), ("1_fake", "fake"))],
     "cddb", r"uses the class folders \['real', 'fake'\]; this layout "
     r"expects \['0_real', '1_fake'\]"),
    (lambda r: open(f"{r}/gaugan/train/1_fake/notes.txt", "w").close(),
     "cddb", r"1_fake/notes\.txt: not an image file"),
])
def test_folder_errors_name_the_path(tmp_path, mutate, layout, match):
  root = write_tree(tmp_path / "cddb", {"gaugan": CDDB["gaugan"]})
  mutate(root)
  with pytest.raises(_corpus.CorpusError, match=match):
    image_streams.image_folders(root, tasks=("gaugan",), layout=layout,
                                image_size=S, data_dir=str(tmp_path / "c"))


@pytest.mark.parametrize("row, match", [
    ("x/a.png,maybe,t,train", r"manifest\.csv:6: unknown label 'maybe'"),
    ("x/nope.png,fake,t,train",
     r"manifest\.csv:6 names 'x/nope\.png' but .*nope\.png does not exist"),
    ("x/a.png,fake,t,valid", r"manifest\.csv:6: unknown split 'valid'"),
])
def test_manifest_errors_name_the_line(tmp_path, row, match):
  folder = tmp_path / "m"
  lines = ["x/a.png,real,t,train", "x/b.png,fake,t,train",
           "x/c.png,real,t,test", "x/d.png,fake,t,test", row]
  for line in lines[:4]:
    write_image(str(folder / line.split(",")[0]), line)
  (folder / "manifest.csv").write_text("path,label,task,split\n" +
                                       "\n".join(lines) + "\n")
  with pytest.raises(_corpus.CorpusError, match=match):
    image_streams.image_folders(manifest=str(folder / "manifest.csv"),
                                image_size=S, data_dir=str(tmp_path / "c"))


def test_bad_images_error_or_are_skipped_and_reported(tmp_path, capsys):
  root = write_tree(tmp_path / "cddb", {"gaugan": CDDB["gaugan"]})
  fake = f"{root}/gaugan/train/1_fake"
  write_image(f"{fake}/tiny.png", "tiny", size=(5, 4))
  cache = str(tmp_path / "c")
  with pytest.raises(image_io.ImageFileError,
                     match=r"1_fake/tiny\.png: 5x4 pixels, smaller than "
                     r"min_size=8"):
    _corpus.prepare(ImageFolder, f"{root}/gaugan", image_size=S, min_size=S,
                    data_dir=cache, on_bad_file="error")
  data = open(f"{fake}/f0.Png", "rb").read()
  with open(f"{fake}/cut.png", "wb") as f:
    f.write(data[:len(data) // 2])
  with pytest.raises(image_io.ImageFileError,
                     match=r"gaugan/train/1_fake/cut\.png: (truncated|unread)"):
    image_streams.image_folders(root, tasks=("gaugan",), image_size=S,
                                data_dir=cache)
  stream = image_streams.image_folders(
      root, tasks=("gaugan",), image_size=S, min_size=S, on_bad_file="skip",
      data_dir=cache)
  out = capsys.readouterr().out
  assert "SKIPPED 2 bad file(s) in split 'train'" in out
  assert "cut.png" in out and "tiny.png: 5x4 pixels" in out
  assert set(by_utt(stream.tasks[0].split("train"))) == set(
      expected_labels(CDDB, "gaugan", "train"))
  # Without min_size the tiny image is kept, up-sampled and reported.
  stream = image_streams.image_folders(root, tasks=("gaugan",), image_size=S,
                                       on_bad_file="skip", data_dir=cache)
  out = capsys.readouterr().out
  assert "SKIPPED 1 bad file(s)" in out
  assert "up-sampled 1 image(s)" in out and "train/1_fake/tiny.png" in out
  assert "gaugan/train/1_fake/tiny.png" in by_utt(stream.tasks[0].split(
      "train"))


# -- One folder, for scoring ---------------------------------------------------


def test_folder_records(tmp_path):
  root = write_tree(tmp_path / "cddb", CDDB)
  records = image_io.folder_records(f"{root}/cyclegan/test", S)
  assert records.labelled and records.layout == "0_real/1_fake"
  assert {r["utt_id"]: r["label"] for r in records} == {
      "horse/0_real/h.png": 0, "horse/1_fake/h.PNG": 1,
      "zebra/0_real/z.webp": 0, "zebra/1_fake/z.tif": 1}
  first = records[0]
  assert first["audio"].shape == (S * S * 3,)
  assert first["audio"].dtype == np.uint8
  np.testing.assert_array_equal(
      first["audio"].reshape(S, S, 3),
      image_io.decode_image(f"{root}/cyclegan/test/{first['utt_id']}", S))
  cored = write_tree(tmp_path / "cored", CORED)
  assert [r["label"] for r in image_io.folder_records(
      f"{cored}/DeepFake/val", S)] == [1, 0, 0]  # fake/c, real/a, real/b
  with pytest.raises(ValueError, match=r"gaugan: holds the split folders "
                     r"\['test', 'train', 'val'\] of a dataset; point at one"):
    image_io.folder_records(f"{root}/gaugan", S)
  unlabelled = image_io.folder_records(f"{root}/gaugan/test/1_fake", S)
  assert not unlabelled.labelled
  assert [r["utt_id"] for r in unlabelled] == ["deep/er/f2.bmp", "f0.Png",
                                               "f1.jpeg"]
  assert {r["label"] for r in unlabelled} == {-1}
  open(f"{root}/gaugan/test/1_fake/cut.png", "wb").write(b"\x89PNG\r\n")
  with pytest.raises(image_io.ImageFileError, match=r"1_fake/cut\.png"):
    image_io.folder_records(f"{root}/gaugan/test", S)
  skipping = image_io.folder_records(f"{root}/gaugan/test", S,
                                     on_bad_file="skip")
  assert len(skipping) == 5 and len(skipping.skipped) == 1
  os.rename(f"{root}/gaugan/test/0_real", f"{root}/gaugan/real0")
  with pytest.raises(_corpus.CorpusError,
                     match=r"gaugan/test: missing class folder 0_real/"):
    image_io.folder_records(f"{root}/gaugan/test", S)
