#!/usr/bin/env bash
# Sets up cljax in ./.venv; idempotent (re-running does only what changed).
#
#   bash launch/setup.sh
#
# - creates .venv with python3.11 (or python3 >= 3.10),
# - installs requirements.txt (again only when it changed),
# - on a machine with an NVIDIA GPU (nvidia-smi works), adds the CUDA build
#   of jax at the pinned version (CLJAX_CUDA=12|13 picks the CUDA major;
#   CLJAX_CPU_ONLY=1 skips it),
# - installs cljax itself in editable mode (import cljax from anywhere).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VENV="$ROOT/.venv"

say() { printf '[setup] %s\n' "$*"; }

pick_python() {
  for candidate in python3.11 python3.12 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c \
        'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
      echo "$candidate"; return 0
    fi
  done
  echo "cljax needs Python >= 3.10 (3.11 recommended); install python3.11 and python3.11-venv." >&2
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  PYTHON=$(pick_python)
  say "creating $VENV with $($PYTHON --version)"
  if ! "$PYTHON" -m venv "$VENV"; then
    echo "Could not create a venv: on Debian run 'apt-get install python3-venv' (or python3.11-venv)." >&2
    exit 1
  fi
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi

stamp="$VENV/.cljax-requirements.sha256"
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing requirements.txt (a few minutes the first time)"
  "$VENV/bin/python" -m pip install --quiet -r requirements.txt
  "$VENV/bin/python" -m pip install --quiet --no-deps --no-build-isolation -e . \
    2>/dev/null || "$VENV/bin/python" -m pip install --quiet --no-deps -e .
  if [ "${CLJAX_CPU_ONLY:-0}" != "1" ] && command -v nvidia-smi >/dev/null 2>&1 \
      && nvidia-smi >/dev/null 2>&1; then
    jax_version=$(grep -E '^jax==' requirements.txt | cut -d= -f3)
    cuda="${CLJAX_CUDA:-12}"
    say "NVIDIA GPU found: installing jax[cuda${cuda}]==${jax_version}"
    "$VENV/bin/python" -m pip install --quiet "jax[cuda${cuda}]==${jax_version}"
  fi
  echo "$want" > "$stamp"
else
  say "requirements up to date"
fi
"$VENV/bin/python" -c 'import jax; print("[setup] jax", jax.__version__, "devices:", jax.devices())'

# --- The embedded speech benchmark (cljax/data/builders/speech_benchmark.py)
# Debian packages: genuine speech (Asterisk prompts, CC-BY-SA-3.0) and the
# fake generators. Without them cljax falls back to the synthetic stream.
# ffmpeg: the optional codec augmentation (config.data.codec_augment).
SPEECH_APT="asterisk-core-sounds-en-g722 asterisk-core-sounds-en codec2 festival festvox-kallpc16k festvox-us-slt-hts flite espeak-ng ffmpeg"
missing_apt=()
for package in $SPEECH_APT; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
    || missing_apt+=("$package")
done
if [ ${#missing_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing_apt[*]} (for the speech benchmark)"
    export DEBIAN_FRONTEND=noninteractive
    # First without 'apt-get update' (fast when the lists are fresh).
    if ! apt-get install -y -qq --no-install-recommends "${missing_apt[@]}" \
        >/dev/null 2>&1; then
      { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
          "${missing_apt[@]}"; } >/dev/null 2>&1 \
        || say "WARNING: apt-get could not install ${missing_apt[*]}; the speech benchmark will fall back to the synthetic stream"
    fi
  else
    say "WARNING: the speech benchmark needs (as root): apt-get install --no-install-recommends ${missing_apt[*]}"
    say "WARNING: without them the audio configs run on the SYNTHETIC stream"
  fi
fi
# Python packages of the build (also pinned in requirements.txt).
if ! "$VENV/bin/python" -c 'import G722, pyworld' >/dev/null 2>&1; then
  say "installing g722 and pyworld"
  "$VENV/bin/python" -m pip install --quiet "g722==1.2.8" "pyworld==0.3.5" \
    || say "WARNING: could not install g722/pyworld; the speech benchmark will fall back to the synthetic stream"
fi
# Build once per builder VERSION (cached in $CLJAX_DATA_DIR or ~/.cache/cljax/data).
if ! "$VENV/bin/python" -m cljax.data.build --check >/dev/null 2>&1; then
  "$VENV/bin/python" -m cljax.data.build \
    || say "WARNING: the speech benchmark was not built; the audio configs will use the synthetic stream"
fi

# --- The embedded image benchmark (cljax/data/builders/image_benchmark.py)
# Genuine photos from two Debian wallpaper packages, fetched and unpacked
# without installing (apt-get download + dpkg-deb -x, no root needed) into
# <data dir>/image_photos; each file is checked by SHA-256 at build time.
# Without them the image recipes' small variants fall back (loudly) to the 3
# photos bundled with scikit-learn/matplotlib.
IMAGE_PHOTOS=$("$VENV/bin/python" -c 'from cljax.data.builders._image_sources import photos_dir; print(photos_dir())')
if command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
  for package in lomiri-wallpapers-16.04 mate-backgrounds; do
    [ -d "$IMAGE_PHOTOS/$package/usr" ] && continue
    say "fetching $package (photos of the image benchmark) into $IMAGE_PHOTOS"
    tmp=$(mktemp -d)
    if (cd "$tmp" && apt-get download -q "$package" >/dev/null 2>&1) \
        && mkdir -p "$IMAGE_PHOTOS" \
        && dpkg-deb -x "$tmp"/"$package"_*.deb "$IMAGE_PHOTOS/$package.partial"; then
      mv "$IMAGE_PHOTOS/$package.partial" "$IMAGE_PHOTOS/$package"
    else
      rm -rf "$IMAGE_PHOTOS/$package.partial"
      say "WARNING: could not fetch $package; the image benchmark will fall back to the 3 bundled photos"
    fi
    rm -rf "$tmp"
  done
else
  say "WARNING: apt-get/dpkg-deb not found: the image benchmark's photos (lomiri-wallpapers-16.04, mate-backgrounds) cannot be fetched; it will fall back to the 3 bundled photos"
fi
if ! "$VENV/bin/python" -m cljax.data.image_stream --check >/dev/null 2>&1; then
  "$VENV/bin/python" -m cljax.data.image_stream \
    || say "WARNING: the image benchmark was not built; the image recipes' small variants will build it on first use or fall back"
fi
