r"""Starts the HTTP scoring service on a model registry (one command).

  python -m cljax.serve --registry=registry/ [--host=127.0.0.1] [--port=8000]
      [--max_bytes=20971520] [--max_seconds=600] [--threshold=0.0]
      [--poll_seconds=1] [--on_multichannel=mix|error] \
      [--on_other_rate=resample|refuse]

Serves the registry's production version (audio or image: the registry's
modality) and reloads when another one is promoted. Endpoints, errors and
curl examples (``curl -F file=@clip.wav URL/score``, ``curl -F
file=@image.png URL/score``): ``cljax.deploy.serve``. The audio flags
(``--max_seconds``, ``--on_multichannel``, ``--on_other_rate``) do not apply
to images.
"""

from __future__ import annotations

import logging
import sys

from absl import app, flags

from cljax.deploy import serve as serve_lib

_REGISTRY = flags.DEFINE_string("registry", None, "The model registry folder "
                                "(python -m cljax.deploy.registry).")
_HOST = flags.DEFINE_string("host", "127.0.0.1", "Address to listen on "
                            "(0.0.0.0: every interface).")
_PORT = flags.DEFINE_integer("port", 8000, "Port to listen on.")
_MAX_BYTES = flags.DEFINE_integer("max_bytes", 20 * 1024 * 1024,
                                  "Largest upload accepted, in bytes.")
_MAX_SECONDS = flags.DEFINE_float("max_seconds", 600.0,
                                  "Longest clip accepted, in seconds.")
_THRESHOLD = flags.DEFINE_float(
    "threshold", None, "bonafide (audio) or real (images) when score >= this "
    "(log-odds); default: "
    "the version's registered threshold, else 0.")
_POLL = flags.DEFINE_float("poll_seconds", 1.0, "How often the production "
                           "pointer is checked for a promotion.")
# Not --channels/--resample: cljax.score (loaded with the model) owns those.
_MULTICHANNEL = flags.DEFINE_enum("on_multichannel", "mix", ["mix", "error"],
                                  "Multi-channel uploads: average the "
                                  "channels, or refuse them (422).")
_OTHER_RATE = flags.DEFINE_enum("on_other_rate", "resample",
                                ["resample", "refuse"],
                                "Uploads at another sample rate than the "
                                "model's: resample, or refuse them (422).")
_LOG_LEVEL = flags.DEFINE_enum("log_level", "info",
                               ["debug", "info", "warning", "error"],
                               "uvicorn's and the service's log level.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not _REGISTRY.value:
    raise app.UsageError("--registry=DIR (the model registry) is required.")
  if _MAX_BYTES.value < 1 or _MAX_SECONDS.value <= 0:
    raise app.UsageError("--max_bytes and --max_seconds must be > 0.")
  logging.getLogger("cljax.serve").setLevel(_LOG_LEVEL.value.upper())
  logging.basicConfig(level=_LOG_LEVEL.value.upper())
  # orbax logs every restore step at INFO through absl.
  logging.getLogger("absl").setLevel(logging.WARNING)
  settings = serve_lib.Settings(
      registry=_REGISTRY.value, max_bytes=_MAX_BYTES.value,
      max_seconds=_MAX_SECONDS.value, poll_seconds=_POLL.value,
      threshold=_THRESHOLD.value, channels=_MULTICHANNEL.value,
      resample="warn" if _OTHER_RATE.value == "resample" else "refuse")
  try:
    serve_lib.serve(settings, host=_HOST.value, port=_PORT.value,
                    log_level=_LOG_LEVEL.value)
  except serve_lib.ServiceError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
