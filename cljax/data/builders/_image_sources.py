"""Genuine photographs of the embedded image benchmark, listed by name and hash.

Three sources, all offline once fetched:

* Debian's ``lomiri-wallpapers-16.04`` (20.04.0-2): the 13 photographs of
  ``/usr/share/backgrounds/*_by_*.jpg`` (two of the 15 are left out, chosen
  by looking: ``umang_by_Abhishek_Mudgal.jpg`` is a rendered colour
  gradient and ``analogpattern_by_Peter_Nerlich.jpg`` a processed texture,
  not photographs). Licences per file in the package's copyright file:
  CC-BY-4.0 or CC-BY-SA-4.0, one CC0-1.0.
* Debian's ``mate-backgrounds`` (1.26.0-1): the 12 photographs of
  ``/usr/share/backgrounds/mate/nature/``, GPL-2+ (the ``abstract`` and
  ``desktop`` folders hold renders and are not used).
* The photos bundled with Python packages cljax already installs:
  scikit-learn's ``china.jpg`` and ``flower.jpg`` (CC-BY-2.0) and
  matplotlib's ``grace_hopper.jpg``.

The Debian packages are not installed: ``apt-get download`` fetches the
``.deb`` and ``dpkg-deb -x`` unpacks it under ``<data_dir>/image_photos/
<package>/`` (``fetch_packages``; ``launch/setup.sh`` does the same). Every
file is checked against its SHA-256 before it is used, so a changed package
cannot silently change the benchmark.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

from cljax.data import paths

PHOTOS_SUBDIR = "image_photos"
DEBIAN_PACKAGES = ("lomiri-wallpapers-16.04", "mate-backgrounds")
BUNDLED_PACKAGES = ("scikit-learn", "matplotlib")


@dataclasses.dataclass(frozen=True)
class Photo:
  """One genuine photograph: where it comes from and its SHA-256."""

  package: str
  path: str  # Inside the package's tree (Debian) or its Python package.
  sha256: str

  @property
  def name(self) -> str:
    """A short unique id: ``<package>/<file stem>``."""
    return f"{self.package}/{os.path.splitext(os.path.basename(self.path))[0]}"


_LOMIRI = "usr/share/backgrounds/"
_MATE = "usr/share/backgrounds/mate/nature/"
PHOTOS: tuple[Photo, ...] = tuple(Photo(*row) for row in (
    ("lomiri-wallpapers-16.04", _LOMIRI + "Bridge_by_Sander_Klootwijk.jpg",
     "bd86b081f9975e2b83527f71e49b9271a8ab40885428395969d9f7d834d7f050"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "Dragonfly_by_Bolly.jpg",
     "af5af17841009732def24b09bb1e669a1b09d2b4bdeee7812c371101c30d2bb3"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "Picture_0B_by_freespace.jpg",
     "c8c0ab18e48d9e0419fe42881112137f3afafc27dfddc29ec3a6d54c56d225ad"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "Picture_1A_by_freespace.jpg",
     "89e86af38d04daaef975665dc2127e9fa76f0fd68f4eea105a2d0ae3390b010b"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "Wine_by_Jakkub_Mede.jpg",
     "d2e96e6d4da40dd804b3d0ce295e94de04a2d7d9b6785d42cd9d92ba58bced74"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "aitzgorri_by_Aitzol_Berasategi.jpg",
     "66268e7b48f8854d36a28765fac6e23ec1aee251daa6da1f64715f201020ad36"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "free_by_Peter_Nerlich.jpg",
     "85a5453c2fed514c75973016f3d862aca62eb7ca087618822469274ac1092373"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "friends_by_Aitzol_Berasategi.jpg",
     "cc40e313c74e421edffe3403def413c16878ce14661cce7ec5915baeab35538d"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "greentock_by_Peter_Nerlich.jpg",
     "e7b20e2db9dcd6e2b278ca55873c2110b35d89cd38b04d0b18728726888e6889"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "life_by_Aitzol_Berasategi.jpg",
     "4c119350ead80201fe256850c3d316309ddfb4bdf10b235ce982dcde0c667c05"),
    ("lomiri-wallpapers-16.04",
     _LOMIRI + "picosdeeuropa_by_Aitzol_Berasategi.jpg",
     "414d0072b2f6f2c555deafeaef6e45c4fed6fa9ad26eba6560ca8803959cf97a"),
    ("lomiri-wallpapers-16.04",
     _LOMIRI + "seeding_by_Clements_Engelhardt.jpg",
     "a5634d1ab5e41a3568e92d4a894a500c92b891f9ff734e50bd224d6e185a605f"),
    ("lomiri-wallpapers-16.04", _LOMIRI + "sunset_by_Aitzol_Berasategi.jpg",
     "474dab6a4b9f94dc76c29dfe30e9f5db4af0fd2e33fe5d695f8152b371efca18"),
    ("mate-backgrounds", _MATE + "Aqua.jpg",
     "5c30118205982da441bf7e6a1ada636a8a0be879408140b3148280c665ed6bce"),
    ("mate-backgrounds", _MATE + "Blinds.jpg",
     "f7aac0dcc2e06d0491643e84df3da1d9db7c4610f58806a880d56e074799f600"),
    ("mate-backgrounds", _MATE + "Dune.jpg",
     "8a67c2cb0be8c46b70c237311a4fa4d2b4ac7d39568135384787801fa5cc9a91"),
    ("mate-backgrounds", _MATE + "FreshFlower.jpg",
     "972b0a0c4e5e3fa93f4f244fc84bc64b121a5eac3aaa5856f1308c1f38a02f8e"),
    ("mate-backgrounds", _MATE + "Garden.jpg",
     "d3095ee09d425ef23d27155412136cf14fc3c9af76ca58b452f55e23da324e78"),
    ("mate-backgrounds", _MATE + "GreenMeadow.jpg",
     "8fa0de0aa4089f7319c9fb7a6d006d4cab6023e8c8853731557cff53567b4832"),
    ("mate-backgrounds", _MATE + "LadyBird.jpg",
     "e35a9a4126ef969c90b29c038058c5a575a20eadd84106a37bf1fa9931e7b61d"),
    ("mate-backgrounds", _MATE + "RainDrops.jpg",
     "3e4ea9671c28c90a86cf67b3db9daf18c4741587c596333a7529ca589aaa0c16"),
    ("mate-backgrounds", _MATE + "Storm.jpg",
     "77ca53077831d3237f73393a91fc879158abc046d852941c26e90de336356957"),
    ("mate-backgrounds", _MATE + "TwoWings.jpg",
     "665e5abf8a5399070a91a9a8e455fe071e5b61697ff78fdeda4e9843ef545aeb"),
    ("mate-backgrounds", _MATE + "Wood.jpg",
     "19c78500ac00a622e19907ab9cc7d06d46fe08c4a6142759a84195696150ec07"),
    ("mate-backgrounds", _MATE + "YellowFlower.jpg",
     "254da96256acb7add685679775a04d1e4a5bc8cd13e5a5a3d61351ce198a5306"),
    ("scikit-learn", "datasets/images/china.jpg",
     "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29"),
    ("scikit-learn", "datasets/images/flower.jpg",
     "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638"),
    ("matplotlib", "sample_data/grace_hopper.jpg",
     "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130"),
))


class PhotoError(FileNotFoundError):
  """A listed photo is missing or differs from its recorded hash."""


def photos_dir(data_dir: str | None = None) -> str:
  """Where the Debian packages are unpacked: ``<data_dir>/image_photos``."""
  return os.path.join(paths.data_dir(data_dir or ""), PHOTOS_SUBDIR)


def _bundled_root(package: str) -> str:
  if package == "scikit-learn":
    import sklearn  # pylint: disable=g-import-not-at-top
    return os.path.dirname(sklearn.__file__)
  import matplotlib  # pylint: disable=g-import-not-at-top
  return matplotlib.get_data_path()


def photo_path(photo: Photo, root: str) -> str:
  """The file of ``photo``: under ``root/<package>/`` for Debian packages."""
  if photo.package in BUNDLED_PACKAGES:
    return os.path.join(_bundled_root(photo.package), photo.path)
  return os.path.join(root, photo.package, photo.path)


@functools.lru_cache(maxsize=None)
def _sha256(path: str, mtime: float, size: int) -> str:
  del mtime, size  # Cache keys only: a rewritten file is hashed again.
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def check_photo(photo: Photo, root: str) -> str:
  """The verified path of ``photo``, or PhotoError naming the file and fix."""
  path = photo_path(photo, root)
  if not os.path.isfile(path):
    hint = ("reinstall it (pip install -r requirements.txt)"
            if photo.package in BUNDLED_PACKAGES else
            f"fetch it with cljax.data.builders._image_sources.fetch_packages"
            f"() or launch/setup.sh (apt-get download {photo.package})")
    raise PhotoError(f"Image benchmark photo {path} ({photo.package}) not "
                     f"found: {hint}.")
  stat = os.stat(path)
  got = _sha256(path, stat.st_mtime, stat.st_size)
  if got != photo.sha256:
    raise PhotoError(
        f"Image benchmark photo {path} ({photo.package}) has SHA-256 {got}, "
        f"expected {photo.sha256}: the package version differs from the one "
        "the benchmark lists (lomiri-wallpapers-16.04 20.04.0-2, "
        "mate-backgrounds 1.26.0-1, requirements.txt's scikit-learn and "
        "matplotlib). Delete the folder and fetch again, or update "
        "_image_sources.PHOTOS and bump ImageBenchmark.VERSION.")
  return path


def missing_photos(photos=PHOTOS, root: str | None = None) -> list[str]:
  """One message per listed photo that is missing or changed."""
  root = root or photos_dir()
  missing = []
  for photo in photos:
    try:
      check_photo(photo, root)
    except PhotoError as e:
      missing.append(str(e))
  return missing


def fetch_packages(root: str | None = None,
                   packages=DEBIAN_PACKAGES, quiet: bool = False) -> bool:
  """``apt-get download`` + ``dpkg-deb -x`` each package into ``root/<pkg>``.

  Needs neither root nor an install. Returns False (with a message on
  stderr) when ``apt-get``/``dpkg-deb`` are missing or a step fails; a
  package already unpacked is skipped.
  """
  root = root or photos_dir()
  if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
    if not quiet:
      print("[cljax] apt-get/dpkg-deb not found: cannot fetch "
            f"{', '.join(packages)} for the image benchmark.", file=sys.stderr)
    return False
  os.makedirs(root, exist_ok=True)
  ok = True
  for package in packages:
    target = os.path.join(root, package)
    if os.path.isdir(os.path.join(target, "usr")):
      continue
    with tempfile.TemporaryDirectory() as tmp:
      try:
        # A bounded wait: on a machine without network apt-get can hang on
        # its mirrors, and the caller then falls back.
        subprocess.run(["apt-get", "download", "-q", package], cwd=tmp,
                       check=True, capture_output=True, timeout=180)
        debs = [n for n in os.listdir(tmp) if n.endswith(".deb")]
        if len(debs) != 1:
          raise RuntimeError(f"expected one .deb, got {debs}")
        partial = target + ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(["dpkg-deb", "-x", os.path.join(tmp, debs[0]),
                        partial], check=True, capture_output=True,
                       timeout=600)
        os.replace(partial, target)  # Complete folders only.
      except (subprocess.SubprocessError, OSError, RuntimeError) as e:
        detail = getattr(e, "stderr", b"") or b""
        if not quiet:
          print(f"[cljax] could not fetch {package} for the image benchmark "
                f"({e}; {detail.decode(errors='replace').strip()[-300:]}).",
                file=sys.stderr)
        ok = False
  return ok


def load_photo(path: str, short_side: int) -> np.ndarray:
  """The photo as uint8 RGB ``[H, W, 3]``, its shorter side ``short_side``.

  JPEG draft mode decodes at the smallest DCT scale (1/2, 1/4, 1/8) still
  at least that large, then a Lanczos (antialiased) resize finishes: a
  5312x2988 photo decodes in ~30 ms instead of ~300 ms.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as image:
    width, height = image.size
    scale = short_side / min(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image.draft("RGB", size)
    image = image.convert("RGB")
    if image.size != size:
      image = image.resize(size, Image.LANCZOS)
    return np.asarray(image, np.uint8)
