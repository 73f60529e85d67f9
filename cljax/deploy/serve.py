r"""HTTP scoring service: the registry's production model behind FastAPI.

Start it (one process, one worker: the hot reload lives in the process)::

  python -m cljax.serve --registry=registry/ [--host=127.0.0.1] [--port=8000]

Endpoints:

* ``POST /score``: multipart upload of one file in the field ``file``: an
  audio clip for an audio registry, an image for an image registry (the
  production version's ``modality``).

  Audio (``curl -F file=@clip.wav http://127.0.0.1:8000/score``): the clip,
  of any length up to ``--max_seconds``, is decoded at the model's sample rate
  (other rates resampled, several channels averaged), cut into windows of
  the run's ``config.data.eval_seconds`` every half window (the last flush
  with the end; a shorter clip is padded to one window per
  ``config.data.pad_mode``) and the windows' genuine log-odds are averaged,
  as ``python -m cljax.score --folder`` does. Returns JSON ``{score, label,
  threshold, version, windows, seconds, sample_rate, resampled_from,
  channels, modality, score_convention}``; ``label`` is ``bonafide`` when
  ``score >= threshold`` (``--threshold``, else the version's registered
  threshold, else 0 log-odds: the model's own decision), else ``spoof``.

  Images (``curl -F file=@image.png http://127.0.0.1:8000/score``): any
  file Pillow reads (png, jpeg, webp, bmp, tiff, gif's first frame; any
  mode, alpha dropped), decoded by ``cljax.data.image_io`` as the run's
  stream decoded its training images (its image size, and
  ``config.data.stream.resize``: shorter side to the size and the centre
  square, or stretched) and scored once. Returns JSON ``{score, label, threshold,
  version, width, height, mode, image_size, resize, modality,
  score_convention}``: ``score`` the genuine log-odds ``log p(real|x) -
  log p(fake|x)``, ``label`` ``real`` when ``score >= threshold``, else
  ``fake``; ``width``/``height``/``mode`` describe the upload.
* ``GET /health``: 200 ``{"status": "ok", "version"}`` once a model is
  loaded; 503 while the registry has no production version.
* ``GET /version``: the served version's registry record (config name,
  parent, lineage, metrics) and when it was loaded.
* ``GET /metrics``: Prometheus text format (version 0.0.4): request and
  error counters by status, the latency summary of successful scoring
  (p50, p90, p99 over the last 4096 requests), reloads, reload failures and
  the served version as ``cljax_serve_model_info{version=...} 1``.
  Prometheus text rather than JSON because that is what monitoring stacks
  scrape without glue (Prometheus, Grafana Agent, Datadog, OpenTelemetry
  collectors all read it), and it is still one ``curl`` away for a person.

Bad requests get a 4xx and a JSON ``{"error": ..., "status": ...}`` body
that says what was wrong and what to send; the service keeps serving:

* 400: not multipart/form-data, no ``file`` field, an empty file;
* 413: a body over ``--max_bytes`` (default 20 MiB), refused from its
  ``Content-Length`` before any of it is read, or, for a chunked upload, as
  soon as the bytes received pass the limit;
* 422: bytes that do not decode as audio (libsndfile's formats: wav, flac,
  ogg, ...), a corrupt or truncated file, non-finite samples, a clip longer
  than ``--max_seconds`` (default 600 s; checked from the header, before
  decoding); for an image registry, bytes that are not an image, a
  truncated or corrupt image, one with too many pixels to decode safely
  (Pillow's decompression-bomb limit) — the message names the problem;
* 503: no production version yet (promote one).

Hot reload: a watcher thread reads the registry's ``production`` pointer
every ``--poll_seconds``. When it names another version (or the same one
promoted again), the new model is built, restored and compiled *before* it
is swapped in by one reference assignment; each request takes the model
reference once when it starts, so a request in flight finishes on the model
it started with and none fails during a promotion. A model that fails to
load is logged and counted (``cljax_serve_reload_failures_total``, and
``last_reload_error`` in ``/health``); the old one keeps serving, and the
load is retried after 10 s (doubling up to 5 minutes), or at once when the
pointer moves.

Modalities: the version's ``meta.json`` ``modality`` picks the model class
from ``MODEL_KINDS``: ``AudioModel`` or ``ImageModel`` (each with
``score_file(path, settings) -> dict``). A registry holds one modality
(``cljax.deploy.registry`` refuses to mix), so a promotion or rollback
never changes what the service accepts.

Limits: the model is rebuilt through ``cljax.score.load_scorer`` (i.e.
``train.build_experiment``), which also builds the run's stream, so the
stream's prepared data must be reachable from the serving machine (the
synthetic and embedded streams always are). Scoring runs in FastAPI's
thread pool; JAX releases the GIL while the compiled step runs.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import os
import shutil
import socket
import tempfile
import threading
import time
from typing import Any, Callable

from fastapi import Request
import numpy as np

from cljax.deploy.registry import Registry, RegistryError

_LOG = logging.getLogger("cljax.serve")
SCORE_CONVENTION = ("genuine log-odds log p(bonafide|x) - log p(spoof|x); "
                    "higher = more genuine")
IMAGE_SCORE_CONVENTION = ("genuine log-odds log p(real|x) - log p(fake|x); "
                          "higher = more genuine")
# Multipart framing (boundaries, part headers) on top of the file itself.
_MULTIPART_SLACK = 64 * 1024
_LATENCY_WINDOW = 4096
_QUANTILES = (0.5, 0.9, 0.99)


@dataclasses.dataclass
class Settings:
  """What ``python -m cljax.serve`` sets from its flags."""

  registry: str
  max_bytes: int = 20 * 1024 * 1024
  max_seconds: float = 600.0
  poll_seconds: float = 1.0
  threshold: float | None = None  # None: the version's, else 0.
  channels: str = "mix"           # cljax.data.audio_io.CHANNEL_MODES
  resample: str = "warn"          # "refuse": 422 for another sample rate


class BadUpload(Exception):
  """An upload the service refuses: HTTP ``status`` and a message saying
  what was wrong and what to send instead."""

  def __init__(self, status: int, message: str):
    super().__init__(message)
    self.status = status
    self.message = message


class ServiceError(RuntimeError):
  """The service cannot load a model; the message names the fix."""


# ------------------------------------------------------------------ models


class _RestoredModel:
  """A registry version's run, restored as a ``cljax.score.Scorer``; the
  audio and image models add how an upload becomes records."""

  def __init__(self, registry: Registry, version: str):
    # pylint: disable=g-import-not-at-top  (JAX only where a model loads)
    from cljax import evaluate
    from cljax import score as score_lib
    # pylint: enable=g-import-not-at-top
    self._score_lib = score_lib
    self.version = version
    self.folder = registry.path(version)
    self.meta = registry.meta(version)
    self.config = evaluate.load_run_config(self.folder)
    self.config.output.progress = "none"  # No progress bar per request.
    self.scorer = score_lib.load_scorer(self.folder, self.config)


class AudioModel(_RestoredModel):
  """A registry version of an audio detector, restored and compiled."""

  modality = "audio"

  def __init__(self, registry: Registry, version: str):
    super().__init__(registry, version)
    self.sample_rate = self.scorer.sample_rate
    self.window = self.scorer.window_length
    self.hop = max(1, self.window // 2)
    self.loaded_at = time.time()
    # Compile now (the batch shape is fixed), not on the first request.
    self._score_samples(np.zeros(self.window, np.int16))

  def _score_samples(self, samples: np.ndarray) -> float:
    scored = self._score_lib.score_source(
        self.scorer, [{"audio": samples, "label": -1, "utt_id": "upload"}],
        windows=True, hop_length=self.hop, pool="mean",
        description="upload")
    return float(scored["scores"][0])

  def score_file(self, path: str, settings: Settings) -> dict[str, Any]:
    """Scores the audio file at ``path``; BadUpload for an unusable one."""
    # pylint: disable-next=g-import-not-at-top
    from cljax.data import audio_io, loader
    import soundfile  # pylint: disable=g-import-not-at-top
    try:
      info = soundfile.info(path)
    except (soundfile.SoundFileError, RuntimeError, EOFError) as error:
      raise BadUpload(422, (
          "the upload is not audio libsndfile can read "
          f"({str(error).split(': ')[-1]}). Send a wav, flac or ogg file: "
          "curl -F file=@clip.wav URL/score")) from error
    if info.samplerate > 0 and info.frames / info.samplerate > (
        settings.max_seconds):
      raise BadUpload(422, (
          f"the clip is {info.frames / info.samplerate:.1f} s long; this "
          f"service scores clips up to {settings.max_seconds:g} s "
          "(--max_seconds). Cut it (ffmpeg -i CLIP -t SECONDS OUT.wav) and "
          "send the parts."))
    try:
      decoded = audio_io.decode_audio(
          path, sample_rate=self.sample_rate, resample=settings.resample,
          channels=settings.channels, dtype="int16")
    except audio_io.AudioFileError as error:
      raise BadUpload(422, f"the uploaded audio is unusable: {error.problem}"
                      ) from error
    samples = decoded.samples
    score = self._score_samples(samples)
    threshold = settings.threshold
    if threshold is None:
      threshold = self.meta.get("threshold")
    threshold = 0.0 if threshold is None else float(threshold)
    return {
        "score": score,
        "label": "bonafide" if score >= threshold else "spoof",
        "threshold": threshold, "version": self.version,
        "windows": int(len(loader.window_starts(len(samples), self.window,
                                                self.hop))),
        "seconds": len(samples) / self.sample_rate,
        "sample_rate": self.sample_rate,
        "resampled_from": (decoded.source_rate
                           if decoded.source_rate != self.sample_rate
                           else None),
        "channels": decoded.source_channels, "modality": self.modality,
        "score_convention": SCORE_CONVENTION}

  def describe(self) -> dict[str, Any]:
    keys = ("id", "created", "parent", "config_name", "method", "seed",
            "modality", "lineage", "metrics", "average_final", "threshold")
    return {"version": self.version, "loaded_at": self.loaded_at,
            "sample_rate": self.sample_rate,
            "window_seconds": self.window / self.sample_rate,
            "hop_seconds": self.hop / self.sample_rate,
            "meta": {k: self.meta.get(k) for k in keys}}


class ImageModel(_RestoredModel):
  """A registry version of an image detector, restored and compiled.

  An upload is decoded by ``cljax.data.image_io`` as the run's stream
  decoded its training images (at the stream's image size S, from its
  sample rate S*S*3, and ``config.data.stream.resize``, default ``crop``:
  any mode to RGB, EXIF orientation applied, shorter side to S and the
  centre square, or stretched), flattened to the
  ``[S*S*3]`` uint8 record and scored once by the model's eval step: the
  score is the genuine log-odds ``log p(real|x) - log p(fake|x)``.
  """

  modality = "image"

  def __init__(self, registry: Registry, version: str):
    # pylint: disable-next=g-import-not-at-top
    from cljax.data import image_io
    super().__init__(registry, version)
    config = self.config
    # An image stream's sample rate is S*S*3 (one image a "second"): the
    # side the run's images were stored at, whichever stream made them.
    rate = self.scorer.sample_rate
    self.image_size = math.isqrt(rate // 3)
    self.resize = str(config.data.stream.get("resize", "crop"))
    image_io.check_image_options(self.image_size, self.resize, 0)
    length = self.image_size ** 2 * 3
    if length != rate or self.scorer.window_length != length:
      raise ServiceError(
          f"{self.folder}: the model reads records of "
          f"{self.scorer.window_length} values from a stream at sample rate "
          f"{rate}, not one whole S x S RGB image (S*S*3 values); an image "
          "run has config.data.crop_seconds = eval_seconds = 1.0 (the "
          "image-record contract).")
    self.loaded_at = time.time()
    # Compile now (the batch shape is fixed), not on the first request.
    self._score_pixels(np.zeros(length, np.uint8))

  def _score_pixels(self, pixels: np.ndarray) -> float:
    scored = self._score_lib.score_source(
        self.scorer, [{"audio": pixels, "label": -1, "utt_id": "upload"}],
        windows=False, description="upload")
    return float(scored["scores"][0])

  def score_file(self, path: str, settings: Settings) -> dict[str, Any]:
    """Scores the image file at ``path``; BadUpload for an unusable one."""
    from cljax.data import image_io  # pylint: disable=g-import-not-at-top
    try:
      decoded = image_io.read_image(path, self.image_size,
                                    resize=self.resize)
    except image_io.ImageFileError as error:
      # The server's temporary file name means nothing to the client.
      problem = error.problem.replace(f"'{path}'", "the upload").replace(
          path, "the upload")
      raise BadUpload(422, (
          f"the uploaded image is unusable: {problem}. Send a whole "
          "image file Pillow reads (png, jpeg, webp, bmp, tiff, gif): curl "
          "-F file=@image.png URL/score")) from error
    score = self._score_pixels(decoded.pixels.reshape(-1))
    threshold = settings.threshold
    if threshold is None:
      threshold = self.meta.get("threshold")
    threshold = 0.0 if threshold is None else float(threshold)
    width, height = decoded.source_size
    return {
        "score": score,
        "label": "real" if score >= threshold else "fake",
        "threshold": threshold, "version": self.version,
        "width": width, "height": height, "mode": decoded.source_mode,
        "image_size": self.image_size, "resize": self.resize,
        "modality": self.modality,
        "score_convention": IMAGE_SCORE_CONVENTION}

  def describe(self) -> dict[str, Any]:
    keys = ("id", "created", "parent", "config_name", "method", "seed",
            "modality", "lineage", "metrics", "average_final", "threshold")
    return {"version": self.version, "loaded_at": self.loaded_at,
            "image_size": self.image_size, "resize": self.resize,
            "meta": {k: self.meta.get(k) for k in keys}}


# A model kind is a class taking (registry, version) with .version,
# .modality, .meta, .score_file(path, settings) and .describe().
MODEL_KINDS: dict[str, Callable[[Registry, str], Any]] = {
    "audio": AudioModel, "image": ImageModel}
# What each kind's error messages tell a client to send.
EXAMPLE_UPLOAD = {"audio": "an audio file: curl -F file=@clip.wav URL/score",
                  "image": "an image file: curl -F file=@image.png "
                           "URL/score"}


def load_model(registry: Registry, version: str):
  """Builds, restores and compiles ``version`` for its modality."""
  modality = registry.meta(version).get("modality", "audio")
  kind = MODEL_KINDS.get(modality)
  if kind is None:
    raise ServiceError(
        f"{registry.path(version)}: modality {modality!r} has no scorer in "
        f"cljax.deploy.serve.MODEL_KINDS (have {sorted(MODEL_KINDS)}); add "
        "one, or promote a version of one of those modalities.")
  return kind(registry, version)


class ModelHolder:
  """The served model and its hot reload from the registry pointer.

  A version that fails to load is retried after ``retry_seconds`` (doubling
  up to 5 minutes) while the pointer still names it, and at once when the
  pointer moves; the old model serves meanwhile.
  """

  def __init__(self, registry: Registry, poll_seconds: float = 1.0,
               loader: Callable[[Registry, str], Any] = load_model,
               retry_seconds: float = 10.0):
    self.registry = registry
    self.poll_seconds = poll_seconds
    self._loader = loader
    self._model = None
    self._seen_seq = None    # The pointer event last acted on.
    self._failed_seq = None  # The pointer event whose load failed ...
    self._retry_at = 0.0     # ... and when to try it again.
    self._retry_seconds = self._first_retry = retry_seconds
    self._swap_lock = threading.Lock()
    self._stop = threading.Event()
    self._thread = None
    self.reloads = 0
    self.reload_failures = 0
    self.last_error: str | None = None

  @property
  def current(self):
    """The model to use for one request (read once per request)."""
    return self._model

  def check(self) -> bool:
    """Loads the pointer's version if it changed; True when swapped.

    Raises what the load raises (the caller keeps the old model)."""
    pointer = self.registry.pointer()
    if pointer is None or pointer.get("seq") == self._seen_seq:
      return False
    seq = pointer.get("seq")
    if seq == self._failed_seq and time.monotonic() < self._retry_at:
      return False
    version = str(pointer["version"])
    current = self._model
    if current is not None and current.version == version:
      self._seen_seq = seq
      return False
    _LOG.info("production is now %s (%s): loading", version,
              pointer.get("action"))
    started = time.perf_counter()
    try:
      # Built and compiled before the swap, outside the lock: requests keep
      # being served by the old model meanwhile.
      model = self._loader(self.registry, version)
    except Exception:
      if seq != self._failed_seq:
        self._retry_seconds = self._first_retry
      self._failed_seq = seq
      self._retry_at = time.monotonic() + self._retry_seconds
      self._retry_seconds = min(2 * self._retry_seconds, 300.0)
      raise
    with self._swap_lock:
      self._model = model
      self._seen_seq = seq
      self._failed_seq = None
      self.last_error = None
      if current is not None:
        self.reloads += 1
    _LOG.info("serving %s (loaded in %.1f s)", version,
              time.perf_counter() - started)
    return True

  def _watch(self) -> None:
    while not self._stop.wait(self.poll_seconds):
      try:
        self.check()
      except Exception as error:  # pylint: disable=broad-except
        self.reload_failures += 1
        self.last_error = f"{type(error).__name__}: {error}"
        _LOG.error("reload failed, still serving %s (retry in %.0f s or "
                   "when production moves): %s",
                   getattr(self._model, "version", None),
                   max(0.0, self._retry_at - time.monotonic()),
                   self.last_error)

  def start(self) -> None:
    self._thread = threading.Thread(target=self._watch, daemon=True,
                                    name="cljax-serve-reload")
    self._thread.start()

  def stop(self) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join(timeout=60)


# ------------------------------------------------------------------ metrics


class Stats:
  """Request counters and a sliding window of scoring latencies."""

  def __init__(self):
    self._lock = threading.Lock()
    self.by_status: collections.Counter = collections.Counter()
    self.latencies: collections.deque = collections.deque(
        maxlen=_LATENCY_WINDOW)
    self.latency_sum = 0.0
    self.latency_count = 0
    self.started = time.time()

  def record(self, status: int, seconds: float) -> None:
    with self._lock:
      self.by_status[int(status)] += 1
      if status == 200:
        self.latencies.append(seconds)
        self.latency_sum += seconds
        self.latency_count += 1

  def snapshot(self) -> dict[str, Any]:
    with self._lock:
      latencies = np.asarray(self.latencies, np.float64)
      by_status = dict(self.by_status)
      total, count = self.latency_sum, self.latency_count
    quantiles = {q: (float(np.quantile(latencies, q)) if latencies.size
                     else math.nan) for q in _QUANTILES}
    return {"by_status": by_status, "quantiles": quantiles,
            "latency_sum": total, "latency_count": count,
            "requests": sum(by_status.values()),
            "errors": sum(n for s, n in by_status.items() if s >= 400)}


def _escape(value: Any) -> str:
  return (str(value).replace("\\", "\\\\").replace("\n", "\\n")
          .replace('"', '\\"'))


def prometheus_text(stats: Stats, holder: ModelHolder) -> str:
  """The /metrics page (Prometheus text exposition format 0.0.4)."""
  snap = stats.snapshot()
  lines = ["# HELP cljax_serve_requests_total POST /score requests by "
           "HTTP status.", "# TYPE cljax_serve_requests_total counter"]
  for status in sorted(snap["by_status"]):
    lines.append(f'cljax_serve_requests_total{{status="{status}"}} '
                 f'{snap["by_status"][status]}')
  lines += ["# HELP cljax_serve_errors_total POST /score answered 4xx/5xx.",
            "# TYPE cljax_serve_errors_total counter",
            f"cljax_serve_errors_total {snap['errors']}",
            "# HELP cljax_serve_score_latency_seconds Successful POST /score"
            f" latency (quantiles over the last {_LATENCY_WINDOW}).",
            "# TYPE cljax_serve_score_latency_seconds summary"]
  for q, value in snap["quantiles"].items():
    lines.append(f'cljax_serve_score_latency_seconds{{quantile="{q}"}} '
                 f"{value:.6f}" if not math.isnan(value) else
                 f'cljax_serve_score_latency_seconds{{quantile="{q}"}} NaN')
  lines += [f"cljax_serve_score_latency_seconds_sum {snap['latency_sum']:.6f}",
            f"cljax_serve_score_latency_seconds_count "
            f"{snap['latency_count']}",
            "# HELP cljax_serve_reloads_total Models swapped in after a "
            "promotion or rollback.", "# TYPE cljax_serve_reloads_total counter",
            f"cljax_serve_reloads_total {holder.reloads}",
            "# HELP cljax_serve_reload_failures_total Versions that failed "
            "to load (the old model kept serving).",
            "# TYPE cljax_serve_reload_failures_total counter",
            f"cljax_serve_reload_failures_total {holder.reload_failures}",
            "# HELP cljax_serve_uptime_seconds Seconds since the service "
            "started.", "# TYPE cljax_serve_uptime_seconds gauge",
            f"cljax_serve_uptime_seconds {time.time() - stats.started:.3f}",
            "# HELP cljax_serve_model_info The version being served.",
            "# TYPE cljax_serve_model_info gauge"]
  model = holder.current
  if model is not None:
    lines.append(
        f'cljax_serve_model_info{{version="{_escape(model.version)}",'
        f'modality="{_escape(model.modality)}",config_name='
        f'"{_escape(model.meta.get("config_name"))}"}} 1')
  return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- app


async def _send_json(send, status: int, body: dict[str, Any]) -> None:
  payload = json.dumps(body).encode("utf-8")
  await send({"type": "http.response.start", "status": status,
              "headers": [(b"content-type", b"application/json"),
                          (b"content-length", str(len(payload)).encode()),
                          (b"connection", b"close")]})
  await send({"type": "http.response.body", "body": payload})


class _TooLarge(Exception):
  pass


class ScoreGuard:
  """ASGI middleware around POST /score: refuses a body over the byte limit
  before reading it (or as soon as a chunked one passes it), and records
  every /score answer's status and latency in ``stats``."""

  def __init__(self, app, settings: Settings, stats: Stats):
    self.app = app
    self.limit = int(settings.max_bytes) + _MULTIPART_SLACK
    self.max_bytes = int(settings.max_bytes)
    self.stats = stats

  def _too_large(self) -> dict[str, Any]:
    return {"status": 413, "error": (
        f"the upload is larger than this service's limit of "
        f"{self.max_bytes} bytes (--max_bytes). Send a shorter or compressed"
        " clip (e.g. flac: ffmpeg -i CLIP -ac 1 OUT.flac) or a smaller "
        "image (e.g. convert IMAGE -resize 1024x1024 OUT.jpg).")}

  async def __call__(self, scope, receive, send):
    if scope["type"] != "http" or scope["path"] != "/score":
      await self.app(scope, receive, send)
      return
    started = time.perf_counter()
    status = [500]
    overflow = [False]

    async def send_status(message):
      if overflow[0]:
        return  # The app's answer to a cut-off body is replaced below.
      if message["type"] == "http.response.start":
        status[0] = message["status"]
      await send(message)

    try:
      headers = dict(scope.get("headers") or [])
      declared = headers.get(b"content-length")
      if declared is not None and declared.isdigit() and (
          int(declared) > self.limit):
        status[0] = 413  # Refused unread: no upload bytes are taken in.
        await _send_json(send, 413, self._too_large())
        return
      received = [0]

      async def limited_receive():
        message = await receive()
        if message["type"] == "http.request":
          received[0] += len(message.get("body", b""))
          if received[0] > self.limit:
            overflow[0] = True
            raise _TooLarge()
        return message

      try:
        await self.app(scope, limited_receive, send_status)
      except _TooLarge:
        pass
      if overflow[0]:
        status[0] = 413
        await _send_json(send, 413, self._too_large())
    finally:
      self.stats.record(status[0], time.perf_counter() - started)


def create_app(settings: Settings, holder: ModelHolder,
               stats: Stats | None = None):
  """The ASGI app: FastAPI routes wrapped in ``ScoreGuard``."""
  # pylint: disable=g-import-not-at-top
  import fastapi
  from fastapi import responses
  from starlette.concurrency import run_in_threadpool
  from starlette.datastructures import UploadFile
  from starlette.exceptions import HTTPException
  from starlette.formparsers import MultiPartException
  from starlette.requests import ClientDisconnect
  import cljax
  # pylint: enable=g-import-not-at-top
  stats = stats or Stats()
  app = fastapi.FastAPI(title="cljax scoring service",
                        version=cljax.__version__,
                        description="Scores uploaded audio or images "
                        "with the registry's production model.")
  app.state.holder = holder
  app.state.stats = stats

  def error(status: int, message: str):
    return responses.JSONResponse({"status": status, "error": message},
                                  status_code=status)

  def no_model():
    detail = f" (last load error: {holder.last_error})" if (
        holder.last_error) else ""
    return error(503, "no production model yet: promote one with python -m "
                 f"cljax.deploy.registry --registry={settings.registry} "
                 f"promote VERSION{detail}")

  @app.get("/health")
  def health():
    model = holder.current
    if model is None:
      return no_model()
    try:
      production = holder.registry.production()
    except RegistryError as exc:
      production = f"unreadable: {exc}"
    # Still 200 while a newer version fails to load: the old one serves.
    return {"status": "ok", "version": model.version,
            "modality": model.modality, "production": production,
            "last_reload_error": holder.last_error}

  @app.get("/version")
  def version():
    model = holder.current
    if model is None:
      return no_model()
    return dict(model.describe(), reloads=holder.reloads,
                reload_failures=holder.reload_failures,
                last_reload_error=holder.last_error)

  @app.get("/metrics", response_class=responses.PlainTextResponse)
  def metrics():
    return responses.PlainTextResponse(
        prometheus_text(stats, holder),
        media_type="text/plain; version=0.0.4")

  @app.post("/score")
  async def score(request: Request):
    model = holder.current  # Once: a promotion mid-request changes nothing.
    if model is None:
      return no_model()
    example = "curl -F file=@" + ("image.png" if getattr(
        model, "modality", "audio") == "image" else "clip.wav") + " URL/score"
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
      return error(400, (
          f"expected a multipart/form-data upload, got Content-Type "
          f"{content_type or 'none'!r}. Send the file in a field named "
          f"'file': {example}"))
    try:
      form = await request.form(max_files=1, max_fields=16)
    except (MultiPartException, ClientDisconnect, HTTPException,
            ValueError) as exc:
      return error(400, f"unreadable multipart body "
                   f"({getattr(exc, 'detail', exc)}). Send the file "
                   f"in a field named 'file': {example}")
    try:
      upload = form.get("file")
      if not isinstance(upload, UploadFile):
        return error(400, "no file in the field 'file' (fields sent: "
                     f"{sorted(form.keys())}). Send {example}")
      try:
        result = await run_in_threadpool(_score_upload, model, upload.file,
                                         settings)
      except BadUpload as bad:
        return error(bad.status, bad.message)
      return result
    finally:
      await form.close()

  return ScoreGuard(app, settings, stats)


def _score_upload(model, fileobj, settings: Settings) -> dict[str, Any]:
  """Copies the spooled upload to a named file (the decoder wants a path),
  checking its size, and scores it."""
  fileobj.seek(0, os.SEEK_END)
  size = fileobj.tell()
  fileobj.seek(0)
  if size == 0:
    raise BadUpload(400, "the uploaded file is empty (0 bytes). Send "
                    + EXAMPLE_UPLOAD.get(getattr(model, "modality", "audio"),
                                         EXAMPLE_UPLOAD["audio"]))
  if size > settings.max_bytes:
    raise BadUpload(413, f"the file is {size} bytes; this service's limit "
                    f"is {settings.max_bytes} bytes (--max_bytes).")
  with tempfile.NamedTemporaryFile(prefix="cljax-upload-") as tmp:
    shutil.copyfileobj(fileobj, tmp)
    tmp.flush()
    return model.score_file(tmp.name, settings)


# ------------------------------------------------------------------ running


class RunningService:
  """A service on a background thread (tests, benchmarks): ``url``,
  ``holder``, ``stats``; ``stop()`` shuts it down."""

  def __init__(self, settings: Settings, host: str = "127.0.0.1",
               port: int = 0, log_level: str = "warning"):
    import uvicorn  # pylint: disable=g-import-not-at-top
    self.settings = settings
    self.holder = ModelHolder(Registry(settings.registry, create=False),
                              settings.poll_seconds)
    self.holder.check()  # The production model (if any) before serving.
    self.stats = Stats()
    app = create_app(settings, self.holder, self.stats)
    # Bound here, port 0 = a free one chosen by the OS (no race).
    self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    self._socket.bind((host, port))
    self.url = f"http://{host}:{self._socket.getsockname()[1]}"
    self.server = uvicorn.Server(uvicorn.Config(
        app, log_level=log_level, access_log=False, lifespan="off"))
    self._thread = threading.Thread(
        target=self.server.run, kwargs={"sockets": [self._socket]},
        daemon=True, name="cljax-serve-http")
    self._thread.start()
    deadline = time.time() + 30
    while not self.server.started:
      if time.time() > deadline or not self._thread.is_alive():
        raise ServiceError(f"the HTTP server on {self.url} did not start.")
      time.sleep(0.02)
    self.holder.start()

  def stop(self) -> None:
    self.server.should_exit = True
    self._thread.join(timeout=30)
    self.holder.stop()
    self._socket.close()

  def __enter__(self) -> RunningService:
    return self

  def __exit__(self, *exc) -> None:
    self.stop()


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000,
          log_level: str = "info") -> None:
  """Runs the service in the foreground until SIGINT/SIGTERM."""
  import uvicorn  # pylint: disable=g-import-not-at-top
  try:
    registry = Registry(settings.registry, create=False)
  except RegistryError as error:
    raise ServiceError(str(error)) from error
  holder = ModelHolder(registry, settings.poll_seconds)
  try:
    loaded = holder.check()
  except Exception as error:  # pylint: disable=broad-except
    raise ServiceError(
        f"{registry.root}: the production version {registry.production()} "
        f"does not load ({type(error).__name__}: {error}). Roll back "
        f"(python -m cljax.deploy.registry --registry={registry.root} "
        "rollback) or promote another version.") from error
  if loaded:
    _LOG.info("serving %s", holder.current.version)
  else:
    _LOG.warning("%s has no production version yet: /score answers 503 "
                 "until one is promoted.", registry.root)
  holder.start()
  try:
    uvicorn.run(create_app(settings, holder), host=host, port=port,
                log_level=log_level, workers=1)
  finally:
    holder.stop()
