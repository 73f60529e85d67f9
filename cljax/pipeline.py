r"""The deployment loop on the command line (stages: cljax.deploy.pipeline).

  python -m cljax.pipeline init --registry=R --config=configs/pipeline_audio.py
  python -m cljax.pipeline init --registry=R --config=configs/pipeline_image.py
  python -m cljax.pipeline intake --registry=R --dataset=DIR
  python -m cljax.pipeline run    --registry=R
  python -m cljax.pipeline watch  --registry=R --inbox=DIR [--once]
  python -m cljax.pipeline status --registry=R [--json]
  python -m cljax.pipeline registry list --registry=R  # cljax.deploy.registry
  python -m cljax.pipeline export_benchmark --family=world --out=inbox/world

* ``init`` writes ``R/pipeline.json`` (``--force`` replaces another one).
  Its config decides the registry's modality: ``pipeline_audio.py`` makes an
  audio registry, ``pipeline_image.py`` an image one (a registry is one or
  the other; ``--force`` does not switch a registry that holds versions).
* ``intake`` validates a dataset (audio: ``DIR/{train,dev,test}/{bonafide,
  spoof}/*.wav|flac``; images: ``DIR/{train,val,test}/{0_real,1_fake}/
  *.png|jpg``; a dataset of the other modality is rejected), reports every
  bad file, decides new task or merge (the production model's embeddings)
  and queues it; a bad dataset is rejected here and nothing trains. Exit
  status 1 when rejected.
* ``run`` trains, evaluates, gates and promotes (or rejects) every queued
  job; after a crash it resumes where the job stopped. Exit status 1 when
  a job fails (its error is in ``status``; run again to resume).
* ``watch`` polls ``--inbox`` every ``--poll_seconds``: each new subfolder
  (once its content stops changing) is taken in, then the queue is run.
  ``--once``: one scan and one run, then exit.
* ``status``: production, the tasks it knows and every job.
* ``registry ...``: the registry's own command line (list, show, promote,
  rollback, history), with its flags.
* ``export_benchmark``: one family of an embedded benchmark written as a
  dataset folder (``--max_per_class`` files per class and split), to try
  the loop without a corpus: a speech family (``--family=espeak``) as an
  audio dataset, an image family (``--family=bicubic_x2``) as an image
  dataset in seed 003's layout (PNG).

Errors (``PipelineError``, ``RegistryError``, config errors) print one line
naming the fix and exit with status 2.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

COMMANDS = ("init", "intake", "run", "watch", "status", "registry",
            "export_benchmark")

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "init: the pipeline config (configs/pipeline_audio.py "
    "or configs/pipeline_image.py).",
    lock_config=False)
_REGISTRY = flags.DEFINE_string("registry", None, "The registry folder.")
_DATASET = flags.DEFINE_string("dataset", None, "intake: the dataset folder.")
_INBOX = flags.DEFINE_string("inbox", None, "watch: the folder to poll.")
_ONCE = flags.DEFINE_bool("once", False, "watch: one scan and one run.")
_POLL = flags.DEFINE_float("poll_seconds", 10.0, "watch: seconds between "
                           "scans.")
_FORCE = flags.DEFINE_bool("force", False, "init: replace another "
                           "pipeline.json.")
_JSON = flags.DEFINE_bool("json", False, "status: print JSON.")
_FAMILY = flags.DEFINE_string("family", None, "export_benchmark: a speech "
                              "benchmark family (e.g. world) or an image "
                              "benchmark family (e.g. bicubic_x2).")
_OUT = flags.DEFINE_string("out", None, "export_benchmark: the dataset "
                           "folder to write.")
_MAX_PER_CLASS = flags.DEFINE_integer("max_per_class", 0, "export_benchmark:"
                                      " files per class and split (0: all).")


def _forward_to_registry(argv: list[str]) -> None:
  """``registry ARGS`` runs ``python -m cljax.deploy.registry ARGS``."""
  args = [a for a in argv[1:] if a != "registry"]
  os.execv(sys.executable, [sys.executable, "-m", "cljax.deploy.registry",
                            *args])


def main(argv):
  args = argv[1:]
  if len(args) != 1 or args[0] not in COMMANDS:
    raise app.UsageError(f"give one command: {' | '.join(COMMANDS)} (got "
                         f"{args or 'none'}).")
  command = args[0]
  if not _REGISTRY.value and command != "export_benchmark":
    raise app.UsageError("--registry=DIR (the registry folder) is required.")
  # Late imports: --help and usage errors stay fast.
  from cljax.deploy import pipeline  # pylint: disable=g-import-not-at-top
  from cljax.deploy.registry import RegistryError  # pylint: disable=g-import-not-at-top
  from cljax.registry import ConfigError  # pylint: disable=g-import-not-at-top
  registry = _REGISTRY.value
  try:
    if command == "init":
      if _CONFIG.value is None:
        raise app.UsageError("init needs --config=configs/pipeline_audio.py"
                             "[:small] (or configs/pipeline_image.py"
                             "[:small] for image datasets).")
      config = _CONFIG.value
      if not config.get("config_name"):
        from cljax import run as run_lib  # pylint: disable=g-import-not-at-top
        config.config_name = run_lib.config_name(flags.FLAGS["config"]
                                                 .config_filename)
      path = pipeline.init(registry, config, force=_FORCE.value)
      print(f"Wrote {path}. Next: python -m cljax.pipeline intake "
            f"--registry={registry} --dataset=DIR (or watch --inbox=DIR).")
    elif command == "intake":
      if not _DATASET.value:
        raise app.UsageError("intake needs --dataset=DIR.")
      job = pipeline.intake(registry, _DATASET.value)
      if job["status"] == "rejected":
        sys.exit(1)
      print(f"Queued {job['id']}. Train it: python -m cljax.pipeline run "
            f"--registry={registry}")
    elif command == "run":
      jobs = pipeline.run(registry)
      if not jobs:
        print("Nothing queued.")
    elif command == "watch":
      if not _INBOX.value:
        raise app.UsageError("watch needs --inbox=DIR.")
      pipeline.watch(registry, _INBOX.value, once=_ONCE.value,
                     poll_seconds=_POLL.value)
    elif command == "export_benchmark":
      if not _FAMILY.value or not _OUT.value:
        raise app.UsageError("export_benchmark needs --family=NAME and "
                             "--out=DIR.")
      pipeline.export_benchmark(_FAMILY.value, _OUT.value,
                                max_per_class=_MAX_PER_CLASS.value)
    elif command == "status":
      record = pipeline.status(registry)
      print(json.dumps(record, indent=2) if _JSON.value
            else pipeline.format_status(record))
  except (pipeline.PipelineError, RegistryError, ConfigError) as error:
    print(f"cljax.pipeline {command}: {error}", file=sys.stderr)
    sys.exit(2)


def _entry() -> None:
  # Registry commands take that module's own flags (--reason, ...): hand the
  # whole command line over before absl parses it here.
  commands = [a for a in sys.argv[1:] if a in COMMANDS]
  if commands and commands[0] == "registry":
    _forward_to_registry(sys.argv)
  app.run(main)


if __name__ == "__main__":
  _entry()
