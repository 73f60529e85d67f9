"""End-to-end tests of the deployment loop (cljax.deploy.pipeline).

One registry goes through the whole loop, in the order of the tests below
(the module fixture sets it up; each test states what it expects of the
registry before and after): tiny audio datasets written here, where
bona fide is low tones and each spoof family a different sound (high hiss,
mid beeps), so the small pipeline config (a CNN over log-mel, EWC, 12 steps
a task) separates them in seconds.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import types

import numpy as np
import pytest
import soundfile

from cljax import run as run_lib
from cljax import step as step_lib
from cljax.deploy import pipeline
from cljax.deploy.registry import Registry
from cljax.io.results import ResultMatrix
from cli_helpers import run_cli

RATE = 16000
CONFIG = "configs/pipeline_audio.py:small"
STEPS = 12            # experiment.train.steps_per_task of the small variant
CHECKPOINT_EVERY = 4  # experiment.train.checkpoint_every
N_TRAIN, N_TEST = 12, 12  # clips per class of each test dataset


def _tone(rng, n):
  t = np.arange(n) / RATE
  return 0.2 * sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
                   for f in rng.uniform(150, 600, 2))


def _hiss(rng, n):  # White noise differenced twice: mostly above 4 kHz.
  w = rng.standard_normal(n + 2)
  return 0.08 * (w[2:] - 2 * w[1:-1] + w[:-2])


def _beep(rng, n):  # Mid beeps, with a little of the hiss every fake has.
  return 0.3 * np.sin(2 * np.pi * rng.uniform(2500, 3500) * np.arange(n)
                      / RATE) + 0.25 * _hiss(rng, n)


SOUNDS = {"tone": _tone, "hiss": _hiss, "beep": _beep}


def write_dataset(root, *, bonafide="tone", spoof="hiss", seed=0,
                  fmt="wav", n_train=N_TRAIN, n_test=N_TEST) -> str:
  """``root/{train,test}/{bonafide,spoof}/*.<fmt>``, half-second clips."""
  rng = np.random.default_rng(seed)
  for split, count in (("train", n_train), ("test", n_test)):
    for class_name, sound in (("bonafide", bonafide), ("spoof", spoof)):
      folder = os.path.join(root, split, class_name)
      os.makedirs(folder, exist_ok=True)
      for i in range(count):
        soundfile.write(os.path.join(folder, f"{class_name}_{i:03d}.{fmt}"),
                        SOUNDS[sound](rng, RATE // 2).astype(np.float32),
                        RATE, subtype="PCM_16")
  return str(root)


def wav_bytes(sound: str, seed: int = 99) -> bytes:
  buffer = io.BytesIO()
  samples = SOUNDS[sound](np.random.default_rng(seed), RATE)
  soundfile.write(buffer, samples.astype(np.float32), RATE, format="WAV",
                  subtype="PCM_16")
  return buffer.getvalue()


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
  """init (command line) -> dataset 'alpha' by intake + run (v0001, from
  scratch) -> dataset 'beta' dropped into an inbox, watch --once (v0002,
  a continual step from v0001)."""
  root = tmp_path_factory.mktemp("pipeline")
  registry = str(root / "registry")
  process = run_cli("cljax.pipeline", "init", f"--registry={registry}",
                    f"--config={CONFIG}")
  assert "Wrote" in process.stdout
  logs = []
  alpha = write_dataset(root / "data" / "alpha", spoof="hiss", seed=0)
  first = pipeline.intake(registry, alpha, log=logs.append)
  ran = pipeline.run(registry, log=logs.append)
  inbox = root / "inbox"
  write_dataset(inbox / "beta", spoof="beep", seed=1, fmt="flac")
  pipeline.watch(registry, str(inbox), once=True, log=logs.append)
  return types.SimpleNamespace(root=root, registry=registry, logs=logs,
                               alpha=alpha, first=first, ran=ran)


def _job(registry, name):
  jobs = [j for j in pipeline.list_jobs(registry)
          if os.path.basename(j["dataset"]) == name]
  assert jobs, f"no job for {name}"
  return jobs[-1]


def test_datasets_are_trained_gated_promoted_and_served(loop):
  registry = Registry(loop.registry)
  assert loop.first["status"] == "queued"
  assert loop.first["grouping"]["decision"] == "new"  # No model yet.
  assert [j["status"] for j in loop.ran] == ["promoted"]
  alpha, beta = _job(loop.registry, "alpha"), _job(loop.registry, "beta")
  assert (alpha["version"], beta["version"]) == ("v0001", "v0002")
  assert registry.production() == "v0002"
  assert alpha["parent"] is None and beta["parent"] == "v0001"
  # beta was compared with alpha by the production model and kept apart.
  grouping = beta["grouping"]
  assert grouping["production"] == "v0001" and grouping["decision"] == "new"
  assert grouping["distances"]["alpha"] > grouping["threshold"]

  meta1, meta2 = registry.meta("v0001"), registry.meta("v0002")
  assert meta2["parent"] == "v0001"
  assert meta2["lineage"]["tasks"] == [
      {"name": "alpha", "datasets": ["alpha"]},
      {"name": "beta", "datasets": ["beta"]}]
  assert meta2["lineage"]["datasets"]["alpha"]["hash"] == (
      pipeline.content_hash(loop.alpha)[0])
  # The gate's numbers are the candidate's and the parent's, and its
  # decision follows from them and the small config's thresholds.
  rules = {r["task"]: r for r in meta2["gate"]["rules"]}
  limits = run_lib.load_config(CONFIG).gate
  assert rules["beta"]["value"] == meta2["metrics"]["beta"]["eer"] <= (
      limits.new_task_max)
  assert rules["alpha"]["production"] == meta1["metrics"]["alpha"]["eer"]
  assert rules["alpha"]["degradation"] == pytest.approx(
      meta2["metrics"]["alpha"]["eer"] - meta1["metrics"]["alpha"]["eer"])
  assert meta2["gate"]["passed"] and "beta eer" in registry.history()[-1][
      "reason"]

  # A continual step: v0002 went on from v0001's full state for one task.
  steps = {v: int(os.listdir(os.path.join(registry.path(v), "checkpoints",
                                          "latest"))[0])
           for v in ("v0001", "v0002")}
  assert steps == {"v0001": STEPS, "v0002": 2 * STEPS}
  with open(os.path.join(beta["workdir"], "train.jsonl")) as f:
    logged = [json.loads(line)["step"] for line in f]
  assert min(logged) > STEPS and max(logged) == 2 * STEPS
  results = ResultMatrix.load(beta["workdir"])
  assert results.task_names == ["alpha", "beta"]
  first_row = results.matrix("eer")[0]  # v0001's row, beta not yet seen.
  assert first_row[0] == meta1["metrics"]["alpha"]["eer"]
  assert math.isnan(first_row[1])
  # EWC's state came along: separate-mode Fisher only grows (F1 + F2).
  from cljax.strategies.ewc import find_ewc_state  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  fishers = [jax.tree.leaves(find_ewc_state(
      pipeline.restore_version(registry, v)[1].opt_state).fisher)
             for v in ("v0001", "v0002")]
  assert sum(float(np.sum(f)) for f in fishers[0]) > 0
  for before, after in zip(*fishers):
    assert np.all(np.asarray(after) >= np.asarray(before) - 1e-7)

  # The service answers with the new version.
  pytest.importorskip("fastapi")
  pytest.importorskip("multipart")
  httpx = pytest.importorskip("httpx")
  from cljax.deploy import serve  # pylint: disable=g-import-not-at-top
  settings = serve.Settings(registry=loop.registry, poll_seconds=0.1)
  with serve.RunningService(settings) as service, httpx.Client(
      base_url=service.url, timeout=120) as client:
    answers = {sound: client.post("/score", files={
        "file": (f"{sound}.wav", wav_bytes(sound))}) for sound in
               ("tone", "hiss", "beep")}
    for answer in answers.values():
      assert answer.status_code == 200, answer.text
      assert answer.json()["version"] == "v0002"
    scores = {s: a.json()["score"] for s, a in answers.items()}
    assert scores["tone"] > max(scores["hiss"], scores["beep"])
    assert client.get("/version").json()["version"] == "v0002"


def test_bad_datasets_are_rejected_at_intake(loop, tmp_path):
  registry = Registry(loop.registry)
  production, versions = registry.production(), registry.versions()
  no_spoof = write_dataset(tmp_path / "no_spoof", seed=3)
  shutil.rmtree(os.path.join(no_spoof, "test", "spoof"))
  broken = write_dataset(tmp_path / "broken", seed=4)
  garbage = os.path.join(broken, "train", "bonafide", "bonafide_003.wav")
  with open(garbage, "wb") as f:
    f.write(b"not audio " * 30)
  truncated = os.path.join(broken, "test", "spoof", "spoof_001.wav")
  with open(truncated, "rb") as f:
    data = f.read()
  with open(truncated, "wb") as f:
    f.write(data[:len(data) // 2])
  from PIL import Image  # pylint: disable=g-import-not-at-top
  images = tmp_path / "images"
  for split in ("train", "val", "test"):
    for class_name in ("0_real", "1_fake"):
      for i in range(2):
        (images / split / class_name).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4), (i * 50, 0, 0)).save(
            images / split / class_name / f"{i}.png")

  jobs = {name: pipeline.intake(loop.registry, path, log=lambda _: None)
          for name, path in (("no_spoof", no_spoof), ("broken", broken),
                             ("images", str(images)),
                             ("duplicate", loop.alpha))}
  assert {j["status"] for j in jobs.values()} == {"rejected"}
  assert any(os.path.join(no_spoof, "test", "spoof") + ": missing" in reason
             for reason in jobs["no_spoof"]["reasons"])
  with open(os.path.join(pipeline.job_dir(loop.registry,
                                          jobs["broken"]["id"]),
                         "intake.json")) as f:
    report = json.load(f)
  assert {b["path"]: b["problem"].split(" ")[0] for b in
          report["bad_files"]} == {garbage: "unreadable",
                                   truncated: "truncated:"}
  assert report["counts"]["train"] == {"bonafide": N_TRAIN - 1,
                                       "spoof": N_TRAIN}
  assert jobs["broken"]["reasons"][0].startswith("2 bad file(s)")
  assert report["layout"] == "audio"
  assert jobs["images"]["layout"] == "image"
  assert jobs["images"]["counts"]["val"] == {"0_real": 2, "1_fake": 2}
  # An image dataset in this audio registry: refused (a registry is audio
  # or image), with the command that makes an image registry.
  assert jobs["images"]["reasons"] == [pipeline.mismatch_message("audio",
                                                                 "image")]
  assert "duplicate" in jobs["duplicate"]["reasons"][0]
  # A watched inbox takes a folder once it stopped changing, and once.
  inbox = tmp_path / "inbox"
  shutil.copytree(no_spoof, inbox / "late")
  quiet = dict(settle=True, log=lambda _: None)
  assert pipeline.scan_inbox(loop.registry, str(inbox), **quiet) == []
  (late,) = pipeline.scan_inbox(loop.registry, str(inbox), **quiet)
  assert late["status"] == "rejected" and late["dataset"] == str(
      inbox / "late")
  assert pipeline.scan_inbox(loop.registry, str(inbox), **quiet) == []
  # Nothing trained, nothing registered, production as it was.
  assert pipeline.run(loop.registry, log=lambda _: None) == []
  assert registry.production() == production
  assert registry.versions() == versions
  for job in jobs.values():
    assert not os.path.exists(os.path.join(
        pipeline.job_dir(loop.registry, job["id"]), "work"))


def test_a_candidate_failing_the_gate_is_rejected(loop, tmp_path):
  registry = Registry(loop.registry)
  production = registry.production()
  # Labels swapped: tones are the fakes, hiss the genuine clips. No model
  # can keep alpha (hiss = fake) and learn this: one rule must fail.
  swapped = write_dataset(tmp_path / "swapped", bonafide="hiss",
                          spoof="tone", seed=7)
  assert pipeline.intake(loop.registry, swapped,
                         log=lambda _: None)["status"] == "queued"
  (job,) = pipeline.run(loop.registry, log=lambda _: None)
  assert job["status"] == "rejected" and job["stage"] == "gate"
  assert registry.production() == production
  meta = registry.meta(job["version"])
  assert meta["status"] == "rejected" and meta["parent"] == production
  assert [r["id"] for r in registry.list()
          if r["status"] == "rejected"] == [job["version"]]
  gate = meta["gate"]
  limits = run_lib.load_config(CONFIG).gate
  assert not gate["passed"] and job["reasons"] == gate["failed"]
  assert gate["failed"]
  parent = registry.meta(production)["metrics"]
  for rule in gate["rules"]:  # Each verdict follows from its numbers.
    if rule["rule"] == "new_task":
      assert rule["value"] == meta["metrics"][job["new_task"]]["eer"]
      assert rule["passed"] == (rule["value"] <= limits.new_task_max)
    else:
      change = (meta["metrics"][rule["task"]]["eer"]
                - parent[rule["task"]]["eer"])
      assert rule["degradation"] == pytest.approx(change)
      assert rule["passed"] == (change <= limits.max_degradation)
    if not rule["passed"]:
      name = ("new task" if rule["rule"] == "new_task" else "known task")
      assert any(f"{name} {rule['task']!r}" in text
                 for text in gate["failed"])


def test_crashes_leave_production_alone_and_the_job_resumes(loop, tmp_path,
                                                           monkeypatch):
  registry = Registry(loop.registry)
  production, versions = registry.production(), registry.versions()
  # The same generator as alpha, other clips: it joins alpha's group.
  again = write_dataset(tmp_path / "alpha_again", spoof="hiss", seed=5)
  job = pipeline.intake(loop.registry, again, log=lambda _: None)
  grouping = job["grouping"]
  assert grouping["decision"] == "merge" and grouping["group"] == "alpha"
  assert grouping["distances"]["alpha"] <= grouping["threshold"]
  assert grouping["distances"]["alpha"] < grouping["distances"]["beta"]

  real_step = step_lib.make_train_step
  calls = []

  def crashing_step(*args, **kwargs):
    step = real_step(*args, **kwargs)

    def counted(*step_args):
      calls.append(1)
      if len(calls) == CHECKPOINT_EVERY + 2:
        raise RuntimeError("injected crash")
      return step(*step_args)
    return counted

  monkeypatch.setattr(step_lib, "make_train_step", crashing_step)
  with pytest.raises(RuntimeError, match="injected crash"):
    pipeline.run(loop.registry, log=lambda _: None)
  job = pipeline.read_job(loop.registry, job["id"])
  assert job["status"] == "training" and "injected crash" in job["error"]
  assert registry.production() == production
  assert registry.versions() == versions
  start = int(os.listdir(os.path.join(registry.path(production),
                                      "checkpoints", "latest"))[0])
  saved = sorted(int(s) for s in os.listdir(
      os.path.join(job["workdir"], "checkpoints", "latest")))
  assert start + CHECKPOINT_EVERY in saved

  # Resumed from the mid-task checkpoint; then a crash between stages.
  calls.clear()

  def counted_step(*args, **kwargs):
    step = real_step(*args, **kwargs)
    return lambda *step_args: calls.append(1) or step(*step_args)

  monkeypatch.setattr(step_lib, "make_train_step", counted_step)

  def crash(*args, **kwargs):
    raise RuntimeError("injected crash before promotion")

  monkeypatch.setattr(pipeline, "finish_candidate", crash)
  with pytest.raises(RuntimeError, match="before promotion"):
    pipeline.run(loop.registry, log=lambda _: None)
  assert len(calls) == STEPS - CHECKPOINT_EVERY
  job = pipeline.read_job(loop.registry, job["id"])
  assert job["status"] == "gated" and job["gate"]["passed"], job["gate"]
  assert registry.production() == production
  assert registry.versions() == versions

  monkeypatch.undo()
  calls.clear()
  (job,) = pipeline.run(loop.registry, log=lambda _: None)
  assert job["status"] == "promoted" and not calls  # No retraining.
  assert registry.production() == job["version"]
  assert registry.versions() == versions + [job["version"]]
  meta = registry.meta(job["version"])
  # The merged group is retrained last, with both datasets' data.
  assert meta["lineage"]["tasks"] == [
      {"name": "beta", "datasets": ["beta"]},
      {"name": "alpha", "datasets": ["alpha", job["name"]]}]
  assert meta["lineage"]["pipeline"]["decision"] == "merge"
  with open(job["manifest"]) as f:
    rows = f.read().splitlines()[1:]
  tasks = [row.split(",")[2] for row in rows]
  files = 2 * (N_TRAIN + N_TEST)  # per dataset
  assert (tasks.count("alpha"), tasks.count("beta")) == (2 * files, files)
  assert pipeline.status(loop.registry)["production"] == job["version"]


def test_status_on_the_command_line(loop):
  process = run_cli("cljax.pipeline", "status", f"--registry={loop.registry}",
                    "--json")
  record = json.loads(process.stdout)
  assert record["production"] == Registry(loop.registry).production()
  assert [j["status"] for j in record["jobs"]][:2] == ["promoted",
                                                       "promoted"]


def test_two_families_of_the_speech_benchmark_go_through_the_loop(tmp_path):
  """The embedded benchmark's espeak and lpc families as two datasets
  (16 clips per class and split). Skipped where the benchmark is not built
  (building it takes minutes). The gate is wide open: 12 steps on 32 clips
  make no detector; this checks the loop on real speech files."""
  from cljax.data import speech_stream  # pylint: disable=g-import-not-at-top
  families = ("espeak", "lpc")
  if not speech_stream.is_built(speech_stream.make_builder(families)):
    pytest.skip("the speech benchmark is not built here (python -m "
                "cljax.data.build builds it)")
  inbox = tmp_path / "inbox"
  for family in families:
    pipeline.export_benchmark(family, str(inbox / family), max_per_class=16,
                              log=lambda _: None)
    for split in ("train", "dev", "test"):
      for class_name in ("bonafide", "spoof"):
        assert len(os.listdir(inbox / family / split / class_name)) == 16
  config = run_lib.load_config(CONFIG)
  with config.unlocked():
    config.gate.new_task_max = config.gate.max_degradation = 1.0
    config.grouping.threshold = 0.0  # Two families: two tasks.
  registry = str(tmp_path / "registry")
  pipeline.init(registry, config)
  pipeline.watch(registry, str(inbox), once=True, log=lambda _: None)
  record = pipeline.status(registry)
  assert [j["status"] for j in record["jobs"]] == ["promoted", "promoted"]
  assert record["production"] == "v0002"
  assert [t["name"] for t in record["tasks"]] == list(families)
  for task in record["tasks"]:
    assert 0.0 <= task["metrics"]["eer"] <= 1.0
  # Taken in before espeak trained, lpc was compared again with v0001.
  lpc = pipeline.read_job(registry, record["jobs"][1]["id"])
  assert lpc["grouping"]["regrouped"] and lpc["parent"] == "v0001"
  assert set(lpc["grouping"]["distances"]) == {"espeak"}
