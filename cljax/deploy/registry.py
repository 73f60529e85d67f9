r"""A model registry on disk: versions of trained runs and a production pointer.

Layout of a registry folder ``ROOT``::

  ROOT/
    versions/v0001/               one registered run, never changed after
      checkpoints/latest/<step>/  a copy of the run's final orbax checkpoint
      config.json                 the run's resolved config
      results.json                the run's result matrix (cljax.io.results)
      meta.json                   id, created, parent, config name, modality
                                  (audio or image: one per registry),
                                  lineage, final metrics per task, status
    production                    JSON pointer: the version being served
    events.jsonl                  append-only history: register, promote,
                                  rollback (what ``rollback`` replays)
    .lock                         fcntl lock taken by every writer

A version folder is laid out like a run's workdir (``config.json`` +
``checkpoints/latest/<step>``), so ``cljax.score.load_scorer(path)`` and
``python -m cljax.score --workdir=ROOT/versions/v0001`` load it unchanged.

Why it survives crashes:

* ``register`` copies into ``versions/.tmp-<id>`` and renames the finished
  folder into place: a version folder is complete or absent.
* ``promote``/``rollback`` write the new pointer to a temporary file
  (fsynced), ``os.replace`` it over ``production`` (the commit point: a
  reader sees the old pointer or the new one, never a torn file), fsync the
  folder, then append the event to ``events.jsonl``. The pointer carries the
  event itself (with its sequence number), so a crash between the replace and
  the append is repaired by the next writer, which appends the missing event
  (``"recovered": true``); a crash before the replace leaves the old pointer
  and a stale temporary file that the next writer removes.
* Writers hold an exclusive ``fcntl.flock`` on ``.lock`` (between processes
  and between threads: each writer opens its own descriptor). Readers take no
  lock: ``os.replace`` makes the pointer read atomic.

Python API (what a pipeline calls)::

  from cljax.deploy.registry import Registry
  registry = Registry("registry/")
  version = registry.register("runs/X", parent="v0001",
                              lineage={"datasets": {"la": "sha256:..."}})
  registry.promote(version, reason="EER 3.1 % < 3.4 % on the gate set")
  registry.rollback(reason="complaints")     # back to the previous one
  registry.production()                      # 'v0001'

Command line::

  python -m cljax.deploy.registry --registry=DIR list
  python -m cljax.deploy.registry --registry=DIR show v0002
  python -m cljax.deploy.registry --registry=DIR register --workdir=runs/X \
      [--parent=v0001] [--lineage='{"datasets": {...}}'] [--threshold=0.0]
  python -m cljax.deploy.registry --registry=DIR promote v0002 --reason=...
  python -m cljax.deploy.registry --registry=DIR rollback [--reason=...]
  python -m cljax.deploy.registry --registry=DIR history

Errors (``RegistryError``, exit status 2 on the command line) name the
folder, version or flag and the fix.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import glob
import json
import math
import os
import shutil
import sys
import tempfile
from typing import Any, Iterator, Mapping

from cljax.io.results import ResultMatrix

VERSIONS = "versions"
POINTER = "production"
EVENTS = "events.jsonl"
LOCK = ".lock"
META = "meta.json"
MODALITIES = ("audio", "image")
# Front ends (cljax.features.FRONTENDS) that take the image records of issue
# 8; a run behind one of them is an image model.
IMAGE_FRONTENDS = ("rgb", "spectrum")
# meta.json statuses a pipeline may set with ``update_meta``; "production"
# and "retired" are derived from the pointer and the history instead.
STATUSES = ("registered", "candidate", "rejected", "archived")


class RegistryError(ValueError):
  """A registry operation cannot be done; the message says why and how."""


def _now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec="milliseconds")


def _fsync_dir(path: str) -> None:
  """Makes a rename in ``path`` durable (a no-op where unsupported)."""
  try:
    fd = os.open(path, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


def _write_json_atomic(path: str, record: Any) -> None:
  """Writes ``record`` to a temporary file, fsyncs, ``os.replace``s it."""
  directory = os.path.dirname(path)
  fd, tmp = tempfile.mkstemp(dir=directory,
                             prefix=f".{os.path.basename(path)}.",
                             suffix=".tmp")
  with os.fdopen(fd, "w", encoding="utf-8") as f:
    json.dump(record, f, indent=2)
    f.write("\n")
    f.flush()
    os.fsync(f.fileno())
  os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from a service user.
  # The commit point; a crash before it leaves the old file and a stale
  # temporary one (removed by the next writer).
  os.replace(tmp, path)
  _fsync_dir(directory)


def _append_event(path: str, event: Mapping[str, Any]) -> None:
  """Appends one JSON line, fsynced; repairs a torn last line first."""
  with open(path, "a+b") as f:
    f.seek(0, os.SEEK_END)
    if f.tell():
      f.seek(-1, os.SEEK_END)
      if f.read(1) != b"\n":  # A writer died mid-line: end that line.
        f.write(b"\n")
    f.write((json.dumps(event, sort_keys=True) + "\n").encode("utf-8"))
    f.flush()
    os.fsync(f.fileno())


def _json_number(value: float) -> float | None:
  value = float(value)
  return None if math.isnan(value) else value


def _modality(config: Mapping[str, Any]) -> str:
  """The run's input kind: ``config.modality`` or ``config.data.modality``
  when a config declares it; else ``image`` for a run whose front end reads
  images (``IMAGE_FRONTENDS``: every image model sits behind one), else
  audio."""
  modality = config.get("modality") or config.get("data", {}).get(
      "modality")
  if not modality:
    frontend = (config.get("frontend") or {}).get("name")
    modality = "image" if frontend in IMAGE_FRONTENDS else "audio"
  return str(modality)


class Registry:
  """A registry folder (see the module docstring); created if missing."""

  def __init__(self, root: str, *, create: bool = True):
    self.root = os.path.abspath(root)
    if not os.path.isdir(self.root):
      if not create:
        raise RegistryError(
            f"--registry={root}: no registry there. Create one by "
            "registering a run: python -m cljax.deploy.registry "
            f"--registry={root} register --workdir=RUN.")
      os.makedirs(self.root, exist_ok=True)
    os.makedirs(os.path.join(self.root, VERSIONS), exist_ok=True)

  # ------------------------------------------------------------- locations

  @property
  def pointer_path(self) -> str:
    return os.path.join(self.root, POINTER)

  @property
  def events_path(self) -> str:
    return os.path.join(self.root, EVENTS)

  def path(self, version: str) -> str:
    """The folder of ``version`` (RegistryError if it is not registered)."""
    folder = os.path.join(self.root, VERSIONS, str(version))
    if (not str(version) or os.sep in str(version) or
        str(version).startswith(".") or
        not os.path.isfile(os.path.join(folder, META))):
      known = ", ".join(self.versions()) or "none yet"
      raise RegistryError(
          f"{self.root}: no version {version!r} (registered: {known}). "
          "Register a run first: python -m cljax.deploy.registry "
          f"--registry={self.root} register --workdir=RUN.")
    return folder

  def versions(self) -> list[str]:
    """Registered version ids, oldest first."""
    folder = os.path.join(self.root, VERSIONS)
    return sorted(name for name in os.listdir(folder)
                  if not name.startswith(".")
                  and os.path.isfile(os.path.join(folder, name, META)))

  # --------------------------------------------------------------- reading

  def pointer(self) -> dict[str, Any] | None:
    """The production pointer record, or None before the first promote."""
    try:
      with open(self.pointer_path, encoding="utf-8") as f:
        text = f.read()
    except FileNotFoundError:
      return None
    try:
      record = json.loads(text)
      str(record["version"])
    except (ValueError, KeyError, TypeError) as error:
      # os.replace never leaves a torn pointer: this is an outside edit.
      raise RegistryError(
          f"{self.pointer_path} is not a registry pointer ({error}); it is "
          "only written by promote/rollback. Restore it with python -m "
          f"cljax.deploy.registry --registry={self.root} promote VERSION."
      ) from error
    return record

  def production(self) -> str | None:
    """The version being served, or None before the first promote."""
    record = self.pointer()
    return None if record is None else str(record["version"])

  def history(self) -> list[dict[str, Any]]:
    """The events, oldest first (a line torn by a crash is left out)."""
    events = []
    try:
      with open(self.events_path, encoding="utf-8") as f:
        for line in f:
          try:
            events.append(json.loads(line))
          except ValueError:
            continue
    except FileNotFoundError:
      pass
    pointer = self.pointer()
    if pointer is not None and pointer.get("seq", 0) > self._last_seq(events):
      # A writer died between the pointer switch and the event append; the
      # pointer holds the event (the next writer appends it for good).
      events.append(dict(pointer, recovered=True))
    return events

  @staticmethod
  def _last_seq(events: list[dict[str, Any]]) -> int:
    return max((int(e.get("seq", 0)) for e in events), default=0)

  @staticmethod
  def _production_stack(events: list[dict[str, Any]]) -> list[str]:
    """Versions promoted and not rolled back, oldest first."""
    stack: list[str] = []
    for event in events:
      if event.get("action") == "promote":
        stack.append(str(event["version"]))
      elif event.get("action") == "rollback" and stack:
        stack.pop()
    return stack

  def meta(self, version: str) -> dict[str, Any]:
    with open(os.path.join(self.path(version), META), encoding="utf-8") as f:
      return json.load(f)

  def _status(self, meta: Mapping[str, Any], production: str | None,
              ever_served: set[str]) -> str:
    if meta["id"] == production:
      return "production"
    if meta["id"] in ever_served and meta.get("status") == "registered":
      return "retired"
    return str(meta.get("status", "registered"))

  def list(self) -> list[dict[str, Any]]:
    """One summary per version, oldest first: id, created, parent, config
    name, live status (production / retired / meta status), headline
    metric (the first metric's final average)."""
    production = self.production()
    served = {str(e["version"]) for e in self.history()
              if e.get("action") in ("promote", "rollback")}
    rows = []
    for version in self.versions():
      meta = self.meta(version)
      headline = meta.get("headline") or {}
      rows.append({"id": version, "created": meta.get("created"),
                   "parent": meta.get("parent"),
                   "config_name": meta.get("config_name"),
                   "status": self._status(meta, production, served),
                   "headline": headline})
    return rows

  def show(self, version: str) -> dict[str, Any]:
    """Everything about ``version``: its meta.json, live status, folder and
    the events that name it."""
    meta = self.meta(version)
    events = self.history()
    served = {str(e["version"]) for e in events
              if e.get("action") in ("promote", "rollback")}
    return dict(meta, status=self._status(meta, self.production(), served),
                path=self.path(version),
                events=[e for e in events if e.get("version") == version
                        or e.get("previous") == version])

  # --------------------------------------------------------------- writing

  @contextlib.contextmanager
  def _locked(self) -> Iterator[None]:
    """Exclusive writer lock; repairs what a crashed writer left."""
    with open(os.path.join(self.root, LOCK), "a+") as lock:
      fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
      try:
        self._recover()
        yield
      finally:
        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

  def _recover(self) -> None:
    """Under the lock: appends an event a crash kept out of events.jsonl,
    removes temporary pointers and half-copied versions."""
    events = self.history()
    if events and events[-1].get("recovered"):
      event = dict(events[-1])
      _append_event(self.events_path, event)
    for stale in glob.glob(os.path.join(self.root, f".{POINTER}.*.tmp")):
      os.remove(stale)
    for stale in glob.glob(os.path.join(self.root, VERSIONS, ".tmp-*")):
      shutil.rmtree(stale, ignore_errors=True)

  def _next_id(self) -> str:
    numbers = [int(v[1:]) for v in self.versions()
               if v.startswith("v") and v[1:].isdigit()]
    return f"v{max(numbers, default=0) + 1:04d}"

  def register(self, workdir: str, parent: str | None = None,
               lineage: Mapping[str, Any] | None = None, *,
               threshold: float | None = None, note: str = "",
               allow_unfinished: bool = False) -> str:
    """Copies a finished run into a new version; returns its id.

    Args:
      workdir: a run folder written by ``python -m cljax.main`` (its
        ``config.json``, ``results/results.json`` and newest checkpoint
        under ``checkpoints/latest`` are copied).
      parent: the version this run was trained from (warm start), if any.
      lineage: data lineage the pipeline knows, merged into the derived one
        (stream config and task names), e.g. ``{"datasets": {"la":
        {"path": ..., "sha256": ...}}}``.
      threshold: the service's bona fide/spoof threshold in log-odds for this
        version (None: the service's ``--threshold``, default 0).
      note: free text kept in meta.json.
      allow_unfinished: register a run that did not train every task.

    Raises:
      RegistryError: missing files, an unfinished run, an unknown parent.
    """
    workdir = os.path.abspath(workdir)
    config_path = os.path.join(workdir, "config.json")
    if not os.path.isfile(config_path):
      raise RegistryError(f"--workdir={workdir}: no config.json; give a run "
                          "folder written by python -m cljax.main.")
    with open(config_path, encoding="utf-8") as f:
      config = json.load(f)
    try:
      results = ResultMatrix.load(workdir)
    except (FileNotFoundError, ValueError) as error:
      raise RegistryError(f"--workdir={workdir}: {error}") from error
    if not results.finished and not allow_unfinished:
      raise RegistryError(
          f"--workdir={workdir}: the run trained {results.tasks_done} of "
          f"{results.num_tasks} tasks. Resume it (python -m cljax.main "
          f"--workdir={workdir} --config=...) or register it anyway with "
          "allow_unfinished=True (--allow_unfinished).")
    latest = os.path.join(workdir, "checkpoints", "latest")
    steps = sorted(int(d) for d in (os.listdir(latest) if os.path.isdir(
        latest) else []) if d.isdigit() and os.path.isdir(
            os.path.join(latest, d, "state")))
    if not steps:
      raise RegistryError(
          f"--workdir={workdir}: no finished checkpoint under {latest}. Let "
          "the run save one (it does at every task end).")
    step = steps[-1]
    modality = _modality(config)
    if modality not in MODALITIES:
      raise RegistryError(f"{config_path}: modality {modality!r} is not one "
                          f"of {list(MODALITIES)}.")
    if threshold is not None and not math.isfinite(float(threshold)):
      raise RegistryError(f"threshold={threshold}: give a finite log-odds.")
    with self._locked():
      if parent is not None:
        self.path(parent)  # Raises for an unknown parent.
      # One modality per registry: the service serves whichever version is
      # production, and a rollback must land on a model for the same input.
      for other in self.versions():
        other_modality = self.meta(other).get("modality", "audio")
        if other_modality != modality:
          raise RegistryError(
              f"--workdir={workdir} is an {modality} run but {self.root} "
              f"holds {other_modality} versions ({other}); a registry is "
              f"{' or '.join(MODALITIES)}, not both. Register it in another "
              "registry folder.")
      version = self._next_id()
      final = os.path.join(self.root, VERSIONS, version)
      tmp = os.path.join(self.root, VERSIONS, f".tmp-{version}")
      try:
        shutil.copytree(os.path.join(latest, str(step)),
                        os.path.join(tmp, "checkpoints", "latest", str(step)))
        # Loading creates it otherwise; a version is not changed once made.
        os.makedirs(os.path.join(tmp, "checkpoints", "tasks"))
        shutil.copy2(config_path, os.path.join(tmp, "config.json"))
        with open(os.path.join(tmp, "results.json"), "w",
                  encoding="utf-8") as f:
          f.write(results.to_json())  # As validated by ResultMatrix.
        meta = self._meta(version, config, results, workdir, step, parent,
                          lineage, modality, threshold, note)
        with open(os.path.join(tmp, META), "w", encoding="utf-8") as f:
          json.dump(meta, f, indent=2)
        os.rename(tmp, final)  # The version appears complete or not at all.
      except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
      _fsync_dir(os.path.join(self.root, VERSIONS))
      _append_event(self.events_path, {
          "seq": self._last_seq(self.history()) + 1, "action": "register",
          "version": version, "time": _now(), "parent": parent,
          "workdir": workdir})
    return version

  @staticmethod
  def _meta(version, config, results: ResultMatrix, workdir, step, parent,
            lineage, modality, threshold, note) -> dict[str, Any]:
    done = results.tasks_done
    metrics: dict[str, dict[str, float | None]] = {}
    for metric in results.metric_names:
      final_row = results.matrix(metric)[done - 1] if done else []
      for name, value in zip(results.task_names, final_row):
        metrics.setdefault(name, {})[metric] = _json_number(value)
    averages = {metric: _json_number(sum(
        results.matrix(metric)[done - 1]) / results.num_tasks)
                for metric in results.metric_names} if done else {}
    derived = {"stream": config.get("data", {}).get("stream", {}),
               "task_names": list(results.task_names),
               "tasks_done": done, "init_from": config.get("init_from", "")}
    derived.update(dict(lineage or {}))
    first = results.metric_names[0] if results.metric_names else None
    return {
        "id": version, "created": _now(), "parent": parent,
        "config_name": config.get("config_name") or results.config_name,
        "method": results.method, "seed": results.seed,
        "modality": modality,
        "source": {"workdir": workdir, "checkpoint_step": step},
        "lineage": derived,
        "metrics": metrics,  # final row: task -> metric -> value
        "average_final": averages,
        "headline": ({"metric": first, "average_final": averages.get(first)}
                     if first else {}),
        "threshold": None if threshold is None else float(threshold),
        "note": note, "status": "registered"}

  def _switch(self, version: str, action: str, previous: str | None,
              reason: str) -> dict[str, Any]:
    """Under the lock: the pointer replace, then the event append."""
    event = {"seq": self._last_seq(self.history()) + 1, "action": action,
             "version": version, "previous": previous, "reason": reason,
             "time": _now()}
    _write_json_atomic(self.pointer_path, event)
    _append_event(self.events_path, event)
    return event

  def promote(self, version: str, reason: str = "") -> dict[str, Any]:
    """Makes ``version`` the production one; returns the event.

    Promoting the version already in production changes nothing (its
    current pointer is returned).
    """
    with self._locked():
      self.path(version)
      current = self.production()
      if current == version:
        return self.pointer()
      return self._switch(version, "promote", current, reason)

  def rollback(self, reason: str = "") -> dict[str, Any]:
    """Production goes back to the version before the current one (as the
    history of promotes and rollbacks says); returns the event."""
    with self._locked():
      stack = self._production_stack(self.history())
      if len(stack) < 2:
        raise RegistryError(
            f"{self.root}: nothing to roll back to (production history: "
            f"{stack or 'empty'}). Promote a version instead: python -m "
            f"cljax.deploy.registry --registry={self.root} promote VERSION.")
      return self._switch(stack[-2], "rollback", stack[-1], reason)

  def update_meta(self, version: str, *, status: str | None = None,
                  **fields: Any) -> dict[str, Any]:
    """Sets ``status`` (one of STATUSES) and/or extra fields (e.g. a gate's
    results) in ``version``'s meta.json, atomically; returns the meta."""
    if status is not None and status not in STATUSES:
      raise RegistryError(f"status={status!r}: use one of {list(STATUSES)}.")
    protected = {"id", "created", "source", "metrics", "modality"} & set(
        fields)
    if protected:
      raise RegistryError(f"meta fields {sorted(protected)} are fixed at "
                          "registration; register the run again instead.")
    with self._locked():
      meta = self.meta(version)
      meta.update(fields)
      if status is not None:
        meta["status"] = status
      _write_json_atomic(os.path.join(self.path(version), META), meta)
    return meta


# ------------------------------------------------------------- command line


def _print(record: Any) -> None:
  print(json.dumps(record, indent=2))


def main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags_ = flags.FLAGS
  args = argv[1:]
  commands = ("list", "show", "register", "promote", "rollback", "history")
  if not args or args[0] not in commands:
    raise _usage(f"give a command: {' | '.join(commands)}")
  command, rest = args[0], args[1:]
  if not flags_.registry:
    raise _usage("--registry=DIR (the registry folder) is required.")
  wants_version = command in ("show", "promote")
  if wants_version and len(rest) != 1:
    raise _usage(f"{command} takes one VERSION (e.g. v0002).")
  if not wants_version and rest:
    raise _usage(f"{command} takes no positional arguments, got {rest}.")
  try:
    registry = Registry(flags_.registry, create=command == "register")
    if command == "list":
      rows = registry.list()
      if flags_.json:
        _print(rows)
        return
      print(f"{'version':8s} {'status':10s} {'created':29s} {'parent':8s} "
            "config / headline")
      for row in rows:
        headline = row["headline"] or {}
        value = headline.get("average_final")
        shown = (f"{headline.get('metric')} {value:.4f}"
                 if value is not None else "-")
        print(f"{row['id']:8s} {row['status']:10s} {row['created']:29s} "
              f"{row['parent'] or '-':8s} {row['config_name']} / {shown}")
    elif command == "show":
      _print(registry.show(rest[0]))
    elif command == "history":
      _print(registry.history())
    elif command == "register":
      if not flags_.workdir:
        raise _usage("register needs --workdir=RUN (a finished run).")
      lineage = None
      if flags_.lineage:
        text = flags_.lineage
        if os.path.isfile(text):
          with open(text, encoding="utf-8") as f:
            text = f.read()
        try:
          lineage = json.loads(text)
        except ValueError as error:
          raise RegistryError(f"--lineage: not JSON or a JSON file ({error})"
                              ) from error
      version = registry.register(
          flags_.workdir, parent=flags_.parent, lineage=lineage,
          threshold=flags_.threshold, note=flags_.note,
          allow_unfinished=flags_.allow_unfinished)
      print(version)
    elif command == "promote":
      _print(registry.promote(rest[0], reason=flags_.reason))
    elif command == "rollback":
      _print(registry.rollback(reason=flags_.reason))
  except RegistryError as error:
    print(f"error: {error}", file=sys.stderr)
    sys.exit(2)


def _usage(message: str):
  from absl import app  # pylint: disable=g-import-not-at-top
  return app.UsageError(message)


def _define_flags() -> None:
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("registry", None, "The registry folder.")
  flags.DEFINE_string("workdir", None, "register: the run folder to copy.")
  flags.DEFINE_string("parent", None, "register: the parent version.")
  flags.DEFINE_string("lineage", None, "register: JSON (or a JSON file) "
                      "merged into the version's data lineage.")
  flags.DEFINE_float("threshold", None, "register: the service's decision "
                     "threshold in log-odds for this version.")
  flags.DEFINE_string("note", "", "register: free text for meta.json.")
  flags.DEFINE_bool("allow_unfinished", False, "register: accept a run "
                    "that did not train every task.")
  flags.DEFINE_string("reason", "", "promote/rollback: why (kept in the "
                      "history).")
  flags.DEFINE_bool("json", False, "list: print JSON.")


if __name__ == "__main__":
  from absl import app  # pylint: disable=g-import-not-at-top
  _define_flags()
  app.run(main)
