"""The deployment loop and the scoring service on image datasets.

One image registry (configs/pipeline_image.py:small: the FFT spectrum of
32-px RGB images, a two-stage ResNet at width 8, EWC, 24 steps a task) goes
through the loop in the order of the tests below. The datasets are written
here with Pillow in seed 003's layout: genuine images are smooth random
pictures; each fake family leaves its own spectral fingerprint (white
noise: energy at every high frequency; nearest-neighbour up-sampling of a
noisy half-size picture: energy in the middle frequencies, none at
Nyquist), so the spectrum separates them within a few steps.
"""

from __future__ import annotations

import io
import json
import math
import os
import types

import numpy as np
from PIL import Image
import pytest

from cljax import run as run_lib
from cljax.deploy import pipeline
from cljax.deploy.registry import Registry, RegistryError
from cljax.io.results import ResultMatrix

CONFIG = "configs/pipeline_image.py:small"
SIZE = 32   # config.intake.image_size of the small variant
STEPS = 24  # experiment.train.steps_per_task
N_TRAIN, N_VAL, N_TEST = 16, 2, 12  # images per class of each dataset


def _smooth(rng) -> np.ndarray:
  """A genuine picture: a random 4x4 colour grid up-sampled bicubically
  (smooth), with a little pixel noise."""
  grid = Image.fromarray(rng.integers(40, 216, (4, 4, 3), dtype=np.uint8))
  image = np.asarray(grid.resize((SIZE, SIZE), Image.Resampling.BICUBIC),
                     np.float64)
  return image + rng.normal(0, 2, image.shape)


def _noise(rng):  # White noise: energy in every high frequency.
  return _smooth(rng) + rng.normal(0, 16, (SIZE, SIZE, 3))


def _blocky(rng):
  """Nearest-neighbour 2x up-sampling of a noisy half-size picture: energy
  in the middle frequencies, none at Nyquist (the duplicated pixels)."""
  half = _smooth(rng)[::2, ::2] + rng.normal(0, 16, (SIZE // 2, SIZE // 2, 3))
  return np.repeat(np.repeat(half, 2, axis=0), 2, axis=1)


PICTURES = {"smooth": _smooth, "noise": _noise, "blocky": _blocky}


def picture(kind: str, seed: int) -> np.ndarray:
  return np.clip(np.round(PICTURES[kind](np.random.default_rng(seed))), 0,
                 255).astype(np.uint8)


def png_bytes(pixels: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(pixels).save(buffer, format="PNG")
  return buffer.getvalue()


def write_dataset(root, *, fake: str, seed: int) -> str:
  """``root/{train,val,test}/{0_real,1_fake}/*.png``."""
  number = seed * 10_000
  for split, count in (("train", N_TRAIN), ("val", N_VAL), ("test", N_TEST)):
    for class_name, kind in (("0_real", "smooth"), ("1_fake", fake)):
      folder = os.path.join(root, split, class_name)
      os.makedirs(folder, exist_ok=True)
      for i in range(count):
        number += 1
        Image.fromarray(picture(kind, number)).save(
            os.path.join(folder, f"{i:03d}.png"))
  return str(root)


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
  """init -> 'noise' and 'blocky' taken in -> run: noise trained from
  scratch (v0001), then blocky compared with v0001 and trained from it
  (v0002, a continual step)."""
  root = tmp_path_factory.mktemp("pipeline_image")
  registry = str(root / "registry")
  pipeline.init(registry, run_lib.load_config(CONFIG))
  logs = []
  noise = write_dataset(root / "data" / "noise", fake="noise", seed=1)
  blocky = write_dataset(root / "data" / "blocky", fake="blocky", seed=2)
  first = pipeline.intake(registry, noise, log=logs.append)
  # Taken in before v0001 exists: compared again with it when it trains.
  second = pipeline.intake(registry, blocky, log=logs.append)
  ran = pipeline.run(registry, log=logs.append)
  return types.SimpleNamespace(root=root, registry=registry, logs=logs,
                               noise=noise, blocky=blocky,
                               jobs=[first, second], ran=ran)


def test_two_image_datasets_are_trained_gated_and_promoted(loop):
  registry = Registry(loop.registry)
  first, second = loop.jobs
  assert [j["status"] for j in (first, second)] == ["queued", "queued"]
  assert first["layout"] == "image" and first["counts"] == {
      split: {"0_real": n, "1_fake": n}
      for split, n in (("train", N_TRAIN), ("val", N_VAL), ("test", N_TEST))}
  assert first["grouping"]["decision"] == "new"  # No model yet.
  assert [(j["status"], j["version"]) for j in loop.ran] == [
      ("promoted", "v0001"), ("promoted", "v0002")]
  assert registry.production() == "v0002"
  noise, blocky = loop.ran
  assert noise["parent"] is None and blocky["parent"] == "v0001"
  # blocky was embedded by v0001 (its images decoded again from files.csv)
  # and kept apart from noise.
  assert second["grouping"]["production"] is None
  grouping = blocky["grouping"]
  assert grouping["regrouped"] and grouping["production"] == "v0001"
  assert grouping["decision"] == "new"
  assert grouping["distances"]["noise"] > grouping["threshold"]

  meta1, meta2 = registry.meta("v0001"), registry.meta("v0002")
  assert meta1["modality"] == meta2["modality"] == "image"
  assert meta2["parent"] == "v0001"
  assert meta2["lineage"]["tasks"] == [
      {"name": "noise", "datasets": ["noise"]},
      {"name": "blocky", "datasets": ["blocky"]}]
  for name, path in (("noise", loop.noise), ("blocky", loop.blocky)):
    record = meta2["lineage"]["datasets"][name]
    assert record["hash"] == pipeline.content_hash(path)[0]
    assert record["path"] == path and record["files"] == 2 * (
        N_TRAIN + N_VAL + N_TEST)
  status = pipeline.status(loop.registry)
  assert (status["modality"], status["gate_metric"]) == ("image", "auc")
  assert status["tasks"] == [
      dict(task, metrics=meta2["metrics"][task["name"]])
      for task in meta2["lineage"]["tasks"]]
  auc = 100 * meta2["metrics"]["noise"]["auc"]
  assert f"task noise: datasets noise; AUC {auc:.2f} %" in (
      pipeline.format_status(status))
  # The candidate's stream: both datasets through image_folders' CSV.
  stream = meta2["lineage"]["stream"]
  assert (stream["name"], stream["layout"], stream["image_size"]) == (
      "image_folders", "csv", SIZE)
  with open(blocky["manifest"]) as f:
    header, *rows = f.read().splitlines()
  assert header == "path,label,task,split,source"
  per_dataset = 2 * (N_TRAIN + N_VAL + N_TEST)
  assert [r.split(",")[2] for r in rows] == (["noise"] * per_dataset
                                             + ["blocky"] * per_dataset)
  assert {tuple(r.split(",")[1::3]) for r in rows} == {
      ("real", "noise"), ("fake", "noise"), ("real", "blocky"),
      ("fake", "blocky")}

  # The gate's numbers are the candidate's and the parent's (AUC: higher is
  # better, so degradation = production - candidate).
  limits = run_lib.load_config(CONFIG).gate
  assert limits.metric == "auc"
  rules = {r["task"]: r for r in meta2["gate"]["rules"]}
  assert rules["blocky"]["value"] == meta2["metrics"]["blocky"]["auc"]
  assert rules["blocky"]["value"] >= limits.new_task_max
  assert rules["noise"]["production"] == meta1["metrics"]["noise"]["auc"]
  assert rules["noise"]["degradation"] == pytest.approx(
      meta1["metrics"]["noise"]["auc"] - meta2["metrics"]["noise"]["auc"])
  assert rules["noise"]["passed"] == (
      rules["noise"]["degradation"] <= limits.max_degradation)
  assert meta2["gate"]["passed"]
  # Both fakes are told from the genuine pictures (the tasks are easy).
  for task in ("noise", "blocky"):
    assert meta2["metrics"][task]["auc"] >= 0.9, meta2["metrics"]

  # A continual step: v0002 went on from v0001's full state for one task.
  steps = {v: int(os.listdir(os.path.join(registry.path(v), "checkpoints",
                                          "latest"))[0])
           for v in ("v0001", "v0002")}
  assert steps == {"v0001": STEPS, "v0002": 2 * STEPS}
  results = ResultMatrix.load(blocky["workdir"])
  assert results.task_names == ["noise", "blocky"]
  first_row = results.matrix("auc")[0]  # v0001's row, blocky not yet seen.
  assert first_row[0] == meta1["metrics"]["noise"]["auc"]
  assert math.isnan(first_row[1])


def test_bad_image_datasets_are_rejected_at_intake(loop, tmp_path):
  registry = Registry(loop.registry)
  production, versions = registry.production(), registry.versions()
  broken = write_dataset(tmp_path / "broken", fake="noise", seed=3)
  truncated = os.path.join(broken, "train", "1_fake", "002.png")
  with open(truncated, "rb") as f:
    data = f.read()
  with open(truncated, "wb") as f:
    f.write(data[:len(data) // 2])
  garbage = os.path.join(broken, "test", "0_real", "005.png")
  with open(garbage, "wb") as f:
    f.write(b"not an image " * 20)
  text = os.path.join(broken, "val", "0_real", "notes.txt")
  with open(text, "w") as f:
    f.write("x")
  job = pipeline.intake(loop.registry, broken, log=lambda _: None)
  assert job["status"] == "rejected" and job["stage"] == "intake"
  with open(os.path.join(pipeline.job_dir(loop.registry, job["id"]),
                         "intake.json")) as f:
    report = json.load(f)
  problems = {b["path"]: b["problem"] for b in report["bad_files"]}
  assert set(problems) == {truncated, garbage, text}
  assert problems[truncated].startswith("truncated image")
  assert problems[garbage].startswith("unreadable, corrupt or not an image")
  assert problems[text].startswith("not an image file")
  assert report["counts"]["train"] == {"0_real": N_TRAIN,
                                       "1_fake": N_TRAIN - 1}
  assert job["reasons"] == [
      "3 bad file(s) (listed under bad_files); fix or remove them, or set "
      "config.intake.on_bad_file='skip' to leave them out."]
  assert truncated in pipeline.format_report(report)
  # on_bad_file='skip': the same dataset passes without the bad files;
  # min_size above the images' 32 px: every image is named as too small.
  config = run_lib.load_config(CONFIG)
  with config.unlocked():
    config.intake.on_bad_file = "skip"
  skipped = pipeline.validate_dataset(broken, config)
  assert skipped.ok and len(skipped.report["bad_files"]) == 3
  assert len(skipped.files) == 2 * (N_TRAIN + N_VAL + N_TEST) - 2
  assert truncated not in {path for _, _, path in skipped.files}
  assert skipped.report["warnings"] == [
      "3 bad file(s) left out (config.intake.on_bad_file='skip')."]
  # The grouping split's images, decoded as the stream stores them.
  assert len(skipped.samples) == 2 * N_TEST - 1
  first = skipped.samples[0]
  assert first["audio"].dtype == np.uint8 and first["audio"].shape == (
      SIZE * SIZE * 3,)
  np.testing.assert_array_equal(first["audio"], np.asarray(
      Image.open(first["utt_id"]).convert("RGB")).reshape(-1))
  with config.unlocked():
    config.intake.min_size = SIZE + 8
  small = pipeline.validate_dataset(broken, config).report["bad_files"]
  assert len(small) == 2 * (N_TRAIN + N_VAL + N_TEST) + 1
  assert sum(f"smaller than min_size={SIZE + 8}" in b["problem"]
             for b in small) == 2 * (N_TRAIN + N_VAL + N_TEST) - 2
  with config.unlocked():
    config.intake.image_size = 0
  with pytest.raises(pipeline.PipelineError,
                     match=r"config\.intake\.image_size=0"):
    pipeline.check_config(config)

  # An audio dataset in this image registry: refused, with the way out.
  audio = tmp_path / "audio"
  for split in ("train", "test"):
    for class_name in ("bonafide", "spoof"):
      (audio / split / class_name).mkdir(parents=True)
      for i in range(2):
        (audio / split / class_name / f"{i}.wav").write_bytes(b"RIFF")
  job = pipeline.intake(loop.registry, str(audio), log=lambda _: None)
  assert job["status"] == "rejected" and job["layout"] == "audio"
  assert job["reasons"] == [pipeline.mismatch_message("image", "audio")]
  assert "--config=configs/pipeline_audio.py" in job["reasons"][0]
  assert job["counts"]["test"] == {"bonafide": 2, "spoof": 2}

  # Nothing trained, production as it was; the registry stays image-only.
  assert pipeline.run(loop.registry, log=lambda _: None) == []
  assert registry.production() == production
  assert registry.versions() == versions
  with pytest.raises(pipeline.PipelineError, match="holds image versions"):
    pipeline.init(loop.registry, run_lib.load_config(
        "configs/pipeline_audio.py:small"), force=True)
  audio_run = tmp_path / "audio_run"  # register() refuses to mix as well.
  os.makedirs(audio_run / "checkpoints" / "latest" / "1" / "state")
  (audio_run / "config.json").write_text(json.dumps(
      {"frontend": {"name": "logmel"}, "data": {"stream": {}}}))
  production_results = ResultMatrix.load(registry.path(production))
  (audio_run / "results").mkdir()
  (audio_run / "results" / "results.json").write_text(
      production_results.to_json())
  with pytest.raises(RegistryError, match="holds image versions"):
    registry.register(str(audio_run))


def test_the_service_scores_an_uploaded_image(loop):
  pytest.importorskip("fastapi")
  pytest.importorskip("multipart")
  httpx = pytest.importorskip("httpx")
  from cljax.deploy import serve  # pylint: disable=g-import-not-at-top
  settings = serve.Settings(registry=loop.registry, poll_seconds=0.1)
  pixels = {kind: picture(kind, 777) for kind in PICTURES}
  with serve.RunningService(settings) as service, httpx.Client(
      base_url=service.url, timeout=120) as client:
    answers = {kind: client.post("/score", files={
        "file": (f"{kind}.png", png_bytes(p))}) for kind, p in pixels.items()}
    for answer in answers.values():
      assert answer.status_code == 200, answer.text
    body = answers["smooth"].json()
    assert body["version"] == "v0002" and body["modality"] == "image"
    assert (body["image_size"], body["width"], body["height"]) == (
        SIZE, SIZE, SIZE)
    assert body["label"] == ("real" if body["score"] >= 0 else "fake")
    # The score is the model's genuine log-odds of the decoded image.
    model = service.holder.current
    scorer = model.scorer
    for kind, image in pixels.items():
      expected = float(np.asarray(scorer.eval_step(
          scorer.state.variables, image.reshape(1, -1))["scores"])[0])
      assert answers[kind].json()["score"] == pytest.approx(expected,
                                                            abs=1e-4)
    scores = {k: a.json()["score"] for k, a in answers.items()}
    assert scores["smooth"] > max(scores["noise"], scores["blocky"])
    # A larger JPEG is decoded and centre-cropped like the training data.
    big = Image.fromarray(pixels["smooth"]).resize((48, 64))
    buffer = io.BytesIO()
    big.save(buffer, format="JPEG", quality=95)
    answer = client.post("/score", files={"file": ("b.jpg",
                                                   buffer.getvalue())})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["width"], answer.json()["height"]) == (48, 64)

    # Corrupt uploads: a 4xx naming the problem; the service stays up.
    whole = png_bytes(pixels["smooth"])
    bad = {"truncated": (whole[:len(whole) // 2], 422, "truncated image"),
           "not an image": (b"GIF89a but not really " * 8, 422,
                            "not an image"),
           "empty": (b"", 400, "empty")}
    for name, (data, status, message) in bad.items():
      answer = client.post("/score", files={"file": ("x.png", data)})
      assert answer.status_code == status, (name, answer.text)
      assert message in answer.json()["error"], (name, answer.text)
      assert "image" in answer.json()["error"], (name, answer.text)
      assert "cljax-upload" not in answer.json()["error"]  # No server path.
      assert client.get("/health").json()["status"] == "ok"
    version = client.get("/version").json()
    assert version["version"] == "v0002"
    assert version["image_size"] == SIZE
    assert version["meta"]["modality"] == "image"


def test_a_family_of_the_image_benchmark_exported_as_a_dataset(tmp_path):
  """The way to try the image loop without a corpus: one generator family
  of the embedded image benchmark written in seed 003's layout. Skipped
  where the benchmark is not built (python -m cljax.data.image_stream)."""
  from cljax.data import image_stream  # pylint: disable=g-import-not-at-top
  if not image_stream.is_built(image_stream.make_builder()):
    pytest.skip("the image benchmark is not built here")
  out = pipeline.export_benchmark("bicubic_x2", str(tmp_path / "bicubic"),
                                  max_per_class=3, log=lambda _: None)
  config = run_lib.load_config(CONFIG)
  with config.unlocked():
    config.intake.image_size = 64  # The benchmark's crops: no resize.
  validation = pipeline.validate_dataset(out, config)
  assert validation.ok, validation.report
  assert validation.report["counts"] == {
      split: {"0_real": 3, "1_fake": 3} for split in ("train", "val", "test")}
  # Each PNG holds the benchmark's record exactly (lossless).
  stream = image_stream.image_benchmark_stream(families=("bicubic_x2",))
  test = stream.tasks[0].split("test")
  fakes = [i for i in range(len(test)) if test[i]["label"] == 1][:3]
  names = sorted(os.listdir(os.path.join(out, "test", "1_fake")))
  expected = sorted(pipeline._safe_name(test[i]["utt_id"]) + ".png"  # pylint: disable=protected-access
                    for i in fakes)
  assert names == expected
  for i in fakes:
    path = os.path.join(out, "test", "1_fake", pipeline._safe_name(  # pylint: disable=protected-access
        test[i]["utt_id"]) + ".png")
    np.testing.assert_array_equal(
        np.asarray(Image.open(path)).reshape(-1), test[i]["audio"])
