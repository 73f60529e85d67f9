"""Tests for cljax.deploy.registry: versions, the production pointer, crashes.

Runs are faked (config.json, results.json, a checkpoint folder of bytes): the
registry only copies and reads files, so no model is trained here.
"""

from __future__ import annotations

import filecmp
import json
import os
import subprocess
import sys
import threading

import pytest

from cljax.deploy import registry as registry_lib
from cljax.deploy.registry import Registry, RegistryError
from cljax.io.results import ResultMatrix

from cli_helpers import REPO, cli_env

TASKS = ["A01", "A02"]
# Final row (after the last task) of each fake run: EER and accuracy.
FINAL = {"eer": [0.125, 0.25], "accuracy": [0.875, 0.75]}


def fake_run(folder, *, seed=0, finished=True, checkpoint=True):
  """A run folder as cljax.main leaves it, with hand-set numbers."""
  os.makedirs(folder)
  config = {"config_name": "finetune_audio-small", "seed": seed,
            "init_from": "",
            "data": {"stream": {"name": "synthetic_audio", "num_tasks": 2}}}
  with open(os.path.join(folder, "config.json"), "w") as f:
    json.dump(config, f)
  results = ResultMatrix(TASKS, method="finetune",
                         config_name="finetune_audio-small", seed=seed)
  results.add_row([{"eer": 0.1, "accuracy": 0.9},
                   {"eer": 0.5, "accuracy": 0.5}])
  if finished:
    results.add_row([{"eer": e, "accuracy": a}
                     for e, a in zip(FINAL["eer"], FINAL["accuracy"])])
  os.makedirs(os.path.join(folder, "results"))
  with open(os.path.join(folder, "results", "results.json"), "w") as f:
    f.write(results.to_json())
  if checkpoint:
    for step in (8, 16):  # The newest (16) is the one to copy.
      state = os.path.join(folder, "checkpoints", "latest", str(step),
                           "state")
      os.makedirs(state)
      with open(os.path.join(state, "data"), "wb") as f:
        f.write(bytes([step, seed]) * 100)
  return str(folder)


@pytest.fixture
def registry(tmp_path):
  return Registry(str(tmp_path / "registry"))


@pytest.fixture
def three(registry, tmp_path):
  """A registry with v0001..v0003 registered, none promoted."""
  for seed in range(3):
    registry.register(fake_run(tmp_path / f"run{seed}", seed=seed),
                      parent=f"v{seed:04d}" if seed else None)
  return registry


def test_register_copies_the_run_and_records_its_meta(registry, tmp_path):
  run = fake_run(tmp_path / "run")
  version = registry.register(run, lineage={"datasets": {"la": "sha256:ab"}},
                              threshold=-1.5)
  assert version == "v0001" and registry.versions() == ["v0001"]
  folder = registry.path(version)
  # The newest checkpoint, byte for byte, under the layout of a workdir.
  assert filecmp.cmp(os.path.join(run, "checkpoints/latest/16/state/data"),
                     os.path.join(folder, "checkpoints/latest/16/state/data"),
                     shallow=False)
  assert not os.path.exists(os.path.join(folder, "checkpoints/latest/8"))
  assert filecmp.cmp(os.path.join(run, "config.json"),
                     os.path.join(folder, "config.json"), shallow=False)
  assert ResultMatrix.load(os.path.join(folder, "results.json")).tasks_done == 2
  meta = registry.meta(version)
  assert meta["id"] == "v0001" and meta["parent"] is None
  assert meta["config_name"] == "finetune_audio-small"
  assert meta["modality"] == "audio" and meta["status"] == "registered"
  assert meta["source"] == {"workdir": os.path.abspath(run),
                            "checkpoint_step": 16}
  assert meta["metrics"] == {"A01": {"eer": 0.125, "accuracy": 0.875},
                             "A02": {"eer": 0.25, "accuracy": 0.75}}
  assert meta["average_final"] == {"eer": 0.1875, "accuracy": 0.8125}
  assert meta["lineage"]["task_names"] == TASKS
  assert meta["lineage"]["stream"]["name"] == "synthetic_audio"
  assert meta["lineage"]["datasets"] == {"la": "sha256:ab"}
  assert meta["threshold"] == -1.5
  assert registry.production() is None
  assert [e["action"] for e in registry.history()] == ["register"]


def test_register_refuses_what_cannot_be_served(registry, tmp_path):
  with pytest.raises(RegistryError, match=r"trained 1 of 2 tasks"):
    registry.register(fake_run(tmp_path / "half", finished=False))
  assert registry.register(fake_run(tmp_path / "half2", finished=False),
                           allow_unfinished=True) == "v0001"
  with pytest.raises(RegistryError, match="no finished checkpoint"):
    registry.register(fake_run(tmp_path / "nockpt", checkpoint=False))
  with pytest.raises(RegistryError, match="no config.json"):
    registry.register(str(tmp_path))
  with pytest.raises(RegistryError, match=r"no version 'v0042'"):
    registry.register(fake_run(tmp_path / "orphan"), parent="v0042")
  # Nothing half-made was left behind by the refusals.
  assert registry.versions() == ["v0001"]
  assert not [n for n in os.listdir(os.path.join(registry.root, "versions"))
              if n.startswith(".")]


def test_promote_rollback_list_show(three):
  registry = three
  with pytest.raises(RegistryError, match="nothing to roll back"):
    registry.rollback()
  registry.promote("v0001", reason="first")
  registry.promote("v0003")
  registry.promote("v0002", reason="better EER")
  # Promoting the production version again changes nothing.
  events = len(registry.history())
  assert registry.promote("v0002")["version"] == "v0002"
  assert len(registry.history()) == events
  assert registry.production() == "v0002"
  assert {r["id"]: r["status"] for r in registry.list()} == {
      "v0001": "retired", "v0002": "production", "v0003": "retired"}
  event = registry.rollback(reason="complaints")
  assert (event["version"], event["previous"]) == ("v0003", "v0002")
  assert registry.production() == "v0003"
  assert registry.rollback()["version"] == "v0001"
  with pytest.raises(RegistryError, match=r"history: \['v0001'\]"):
    registry.rollback()
  shown = registry.show("v0002")
  assert shown["status"] == "retired" and shown["parent"] == "v0001"
  assert [e["action"] for e in shown["events"]] == ["register", "promote",
                                                    "rollback"]
  assert [e["seq"] for e in registry.history()] == list(range(1, 9))
  with pytest.raises(RegistryError, match="no version 'v9'"):
    registry.promote("v9")
  registry.update_meta("v0003", status="rejected", gate={"eer": 0.4})
  assert registry.show("v0003")["status"] == "rejected"
  assert registry.meta("v0003")["gate"] == {"eer": 0.4}
  with pytest.raises(RegistryError, match="fixed at registration"):
    registry.update_meta("v0003", metrics={})


def _temp_pointers(registry):
  return [n for n in os.listdir(registry.root) if n.startswith(".production")]


def test_crash_before_the_pointer_replace_keeps_the_old_version(
    three, monkeypatch):
  registry = three
  registry.promote("v0001")
  real_replace = os.replace

  def crash(src, dst):
    if os.path.basename(dst) == "production":
      raise OSError("injected crash between the temp write and the replace")
    real_replace(src, dst)

  monkeypatch.setattr(os, "replace", crash)
  with pytest.raises(OSError, match="injected"):
    registry.promote("v0002")
  monkeypatch.setattr(os, "replace", real_replace)
  # The pointer still names the old version; the registry reads fine.
  assert registry.production() == "v0001"
  assert Registry(registry.root).production() == "v0001"
  assert {r["id"]: r["status"] for r in registry.list()}["v0001"] == (
      "production")
  assert registry.history()[-1]["action"] == "promote"
  assert registry.history()[-1]["version"] == "v0001"
  # The next writer removes the stale temporary file and promotes.
  registry.promote("v0002")
  assert registry.production() == "v0002"
  assert _temp_pointers(registry) == []
  assert registry.rollback()["version"] == "v0001"


def test_crash_after_the_replace_is_recovered_from_the_pointer(
    three, monkeypatch):
  registry = three
  registry.promote("v0001")

  def crash(path, event):
    raise OSError("injected crash between the replace and the event append")

  monkeypatch.setattr(registry_lib, "_append_event", crash)
  with pytest.raises(OSError, match="injected"):
    registry.promote("v0002")
  monkeypatch.undo()
  # The replace was the commit point: production is v0002, and the history
  # already shows the promotion (from the pointer) before any repair.
  assert registry.production() == "v0002"
  assert registry.history()[-1]["recovered"] is True
  with open(registry.events_path) as f:
    assert '"v0002"' not in f.read().splitlines()[-1]
  # The next writer appends the missing event; rollback sees it.
  assert registry.rollback()["version"] == "v0001"
  actions = [(e["action"], e["version"]) for e in registry.history()]
  assert actions[-3:] == [("promote", "v0001"), ("promote", "v0002"),
                          ("rollback", "v0001")]
  assert [e["seq"] for e in registry.history()] == list(range(1, 7))


_CRASHING_PROMOTE = """
import os, sys
from cljax.deploy import registry as registry_lib
where = sys.argv[2]
if where == "before_replace":
  real = os.replace
  def replace(src, dst):
    if os.path.basename(dst) == "production":
      os._exit(9)  # Dies like a SIGKILL: no cleanup, no finally.
    real(src, dst)
  os.replace = replace
else:
  registry_lib._append_event = lambda path, event: os._exit(9)
registry_lib.Registry(sys.argv[1]).promote("v0002")
"""


@pytest.mark.parametrize("where,expected", [("before_replace", "v0001"),
                                            ("after_replace", "v0002")])
def test_a_killed_promote_leaves_a_readable_consistent_registry(
    three, where, expected):
  registry = three
  registry.promote("v0001")
  process = subprocess.run(
      [sys.executable, "-c", _CRASHING_PROMOTE, registry.root, where],
      cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=60)
  assert process.returncode == 9, process.stderr
  assert registry.production() == expected
  if where == "before_replace":
    assert len(_temp_pointers(registry)) == 1  # Left by the dead writer.
  registry.promote("v0003")
  assert _temp_pointers(registry) == []
  assert registry.rollback()["version"] == expected
  stack = [e["version"] for e in registry.history()
           if e["action"] == "promote"]
  assert stack == ["v0001"] + (["v0002"] if expected == "v0002" else []) + [
      "v0003"]


def test_readers_never_see_a_torn_pointer_and_writers_serialise(three):
  registry = three
  registry.promote("v0001")
  seen, stop = [], threading.Event()

  def read():
    reader = Registry(registry.root)
    while not stop.is_set():
      try:
        seen.append(reader.production())
      except Exception as error:  # pylint: disable=broad-except
        seen.append(error)  # A torn or missing pointer: fails below.

  def write(versions):
    writer = Registry(registry.root)
    for _ in range(25):
      for version in versions:
        writer.promote(version)

  reader = threading.Thread(target=read)
  reader.start()
  writers = [threading.Thread(target=write, args=(v,))
             for v in (("v0002", "v0001"), ("v0003", "v0001"))]
  for thread in writers:
    thread.start()
  for thread in writers:
    thread.join()
  stop.set()
  reader.join()
  assert len(seen) > 10
  assert {str(v) for v in seen} <= {"v0001", "v0002", "v0003"}
  history = registry.history()
  # Under the lock every event got its own sequence number, in order.
  assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
  promotes = [e for e in history if e["action"] == "promote"]
  for before, after in zip(promotes, promotes[1:]):
    assert after["previous"] == before["version"]


def test_command_line(tmp_path):
  run = fake_run(tmp_path / "run")
  root = str(tmp_path / "reg")

  def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "cljax.deploy.registry", f"--registry={root}",
         *args], cwd=REPO, env=cli_env(), capture_output=True, text=True,
        timeout=60)

  assert cli("register", f"--workdir={run}").stdout.strip() == "v0001"
  assert cli("register", f"--workdir={run}", "--parent=v0001",
             '--lineage={"datasets": {"x": 1}}').stdout.strip() == "v0002"
  promoted = cli("promote", "v0002", "--reason=gate passed")
  assert promoted.returncode == 0
  assert json.loads(promoted.stdout)["reason"] == "gate passed"
  listing = cli("list", "--json")
  assert [(r["id"], r["status"]) for r in json.loads(listing.stdout)] == [
      ("v0001", "registered"), ("v0002", "production")]
  assert json.loads(cli("show", "v0002").stdout)["lineage"]["datasets"] == {
      "x": 1}
  failed = cli("rollback")
  assert failed.returncode == 2
  assert "nothing to roll back" in failed.stderr
