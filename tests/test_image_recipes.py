"""Image recipes: variant parsing, the configs, and an end-to-end image run
over folders in seed 003's layout, then one model scored on a folder."""

from __future__ import annotations

import json
import os

import numpy as np
from PIL import Image
import pytest
from sklearn import metrics as sk_metrics

from cljax import config_schema, presets
from cljax.data import streams
from cli_helpers import run_cli
from run_helpers import REPO, load_config

SIZE = 32


def test_parse_words_groups_defaults_and_errors():
  choices = {"method": ("icarl", "gdumb"), "backbone": ("x", "e")}
  assert presets.parse_words(None, choices, ("small",)) == (
      {"method": "icarl", "backbone": "x"}, set())
  assert presets.parse_words("e, gdumb,small", choices, ("small",)) == (
      {"method": "gdumb", "backbone": "e"}, {"small"})
  assert presets.parse_words("gdumb,gdumb", choices) == (
      {"method": "gdumb", "backbone": "x"}, set())
  with pytest.raises(ValueError, match=r"\['icarl'\].*method: icarl, gdumb"):
    presets.parse_words("gdumb,icarl", choices)
  with pytest.raises(ValueError, match=r"\['tiny'\].*modifiers small"):
    presets.parse_words("tiny", choices, ("small",))


@pytest.mark.parametrize("name,variant,stream,model,strategy", [
    ("fft_resnet_limited", None, "seed001_sequence", "resnet34", "icarl"),
    ("fft_resnet_limited", "small,gdumb", "image_benchmark", "resnet34",
     "gdumb"),
    ("fft_resnet_limited", "mir", "seed001_sequence", "resnet34", "mir"),
    ("cored_image", None, "image_folders", "xception", "cored"),
    ("cored_image", "efficientnet,tg,small", "image_benchmark",
     "efficientnet_b0", "tg"),
    ("kd_ewc_image", None, "cddb_easy", "resnet50", "kd"),
    ("kd_ewc_image", "ewc,long", "cddb_long", "resnet50", "ewc"),
    ("kd_ewc_image", "small,finetune", "image_benchmark", "resnet18",
     "finetune"),
])
def test_recipe_variants(name, variant, stream, model, strategy):
  config = load_config(name, variant)
  config_schema.validate(config)
  assert config.data.stream.name == stream and stream in streams.STREAMS
  assert config.model.name == model and config.strategy.name == strategy
  assert config.eval.metrics[0] == "auc"
  assert config.data.crop_seconds == config.data.eval_seconds == 1.0
  small = "small" in (variant or "")
  if config.frontend.get("crop"):
    assert config.frontend.crop == (56 if small else 224)
  if config.augment.name == "flip_crop":
    assert config.augment.crop == config.frontend.crop


def _write_dataset(root, name, seed, count=12):
  """A seed-003 dataset: smooth 'real' images, 'fake' ones with a period-2
  pattern (an up-sampler's fingerprint), PNG and JPG mixed."""
  rng = np.random.default_rng(seed)
  for split in ("train", "val", "test"):
    for label, folder in enumerate(("0_real", "1_fake")):
      os.makedirs(os.path.join(root, name, split, folder))
      for i in range(count):
        base = rng.integers(0, 256, (SIZE // 4, SIZE // 4, 3)).astype(
            np.uint8)
        image = np.asarray(Image.fromarray(base).resize(
            (SIZE, SIZE), Image.BICUBIC), np.int16)
        if label:
          image[::2, ::2] += 40
        extension = ".png" if i % 2 else ".JPG"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
            os.path.join(root, name, split, folder, f"{i}{extension}"))


CONFIG = """
import runpy
import ml_collections

def get_config(variant=None):
  config = runpy.run_path({recipe!r})["get_config"]("ewc")
  config.unlock()
  config.data.stream = ml_collections.ConfigDict(dict(
      name="image_folders", root={root!r}, tasks=("gan_a", "gan_b"),
      image_size={size}, data_dir={data_dir!r}))
  config.model = ml_collections.ConfigDict(dict(name="resnet18", width=8))
  config.frontend.crop = 28
  config.augment.crop = 28
  config.data.batch_size = 8
  config.data.worker_count = 0
  config.train.epochs_per_task = 0.0
  config.train.steps_per_task = 4
  config.lock()
  return config
"""


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
  """kd_ewc_image's EWC on two tiny CDDB-layout datasets (a config file
  that changes the recipe's stream and model, as a user's would)."""
  root = str(tmp_path_factory.mktemp("cddb"))
  for seed, name in enumerate(("gan_a", "gan_b")):
    _write_dataset(root, name, seed)
  workdir = str(tmp_path_factory.mktemp("run"))
  config_file = tmp_path_factory.mktemp("config") / "tiny_image.py"
  config_file.write_text(CONFIG.format(
      recipe=str(REPO / "configs" / "kd_ewc_image.py"), root=root, size=SIZE,
      data_dir=str(tmp_path_factory.mktemp("data"))))
  process = run_cli(
      "cljax.main", f"--config={config_file}", f"--workdir={workdir}",
      "--config.output.progress=none", "--config.output.plots=False")
  assert process.returncode == 0, process.stderr[-3000:]
  return root, workdir


def test_image_stream_runs_end_to_end(image_run):
  _, workdir = image_run
  with open(os.path.join(workdir, "results", "results.json")) as f:
    results = json.load(f)
  assert results["task_names"] == ["gan_a", "gan_b"]
  assert list(results["metrics"])[0] == "auc"
  config = json.load(open(os.path.join(workdir, "config.json")))
  assert config["strategy"]["name"] == "ewc"


def test_a_folder_scores_as_the_loop_scored_its_split(image_run):
  """cljax.score on <root>/gan_b/test: the same images, decoding and model
  as the loop's last evaluation, so the same AUC; and sklearn's AUC of
  the written scores."""
  root, workdir = image_run
  out = os.path.join(workdir, "folder_scores")
  process = run_cli("cljax.evaluate", f"--workdir={workdir}",
                    f"--folder={os.path.join(root, 'gan_b', 'test')}",
                    f"--out={out}")
  assert process.returncode == 0, process.stderr[-3000:]
  record = json.load(open(os.path.join(out, "folder_test.json")))
  assert record["images"] == 24 and record["real"] == record["fake"] == 12
  lines = open(record["score_file"]).read().split("\n")
  rows = [line.split() for line in lines if line]
  labels = np.asarray([row[2] == "fake" for row in rows], int)
  scores = np.asarray([float(row[1]) for row in rows])
  # Scores are genuine log-odds: real (class 0) is the positive class.
  np.testing.assert_allclose(record["auc"],
                             sk_metrics.roc_auc_score(1 - labels, scores),
                             atol=1e-9)
  exp_results = json.load(open(os.path.join(workdir, "results",
                                            "results.json")))
  loop_auc = exp_results["metrics"]["auc"]["matrix"][-1][1]
  np.testing.assert_allclose(record["auc"], loop_auc, atol=1e-6)


def test_an_audio_corpus_flag_on_an_image_run_is_refused(image_run):
  _, workdir = image_run
  process = run_cli("cljax.score", f"--workdir={workdir}",
                    "--corpus=in_the_wild", "--manual_dir=/nonexistent",
                    check=False)
  assert process.returncode == 2
  assert "image run" in process.stderr


def test_small_variants_train_on_every_family_in_the_builders_order():
  from cljax.data.builders import _image_generators
  assert presets.IMAGE_FAMILIES == _image_generators.DEFAULT_FAMILIES
  config = load_config("fft_resnet_limited", "small")
  assert tuple(config.data.stream.families) == presets.IMAGE_FAMILIES


@pytest.mark.parametrize("method", ["rwm", "rawm", "owm", "ewc"])
def test_modality_free_strategies_run_on_an_image_stream(image_run, method,
                                                         tmp_path):
  """The audio configs' strategy blocks, unchanged, on the image folders."""
  import ml_collections

  from cljax import train
  root, _ = image_run
  config = load_config("kd_ewc_image", "small,finetune")
  config.unlock()
  config.strategy = load_config(f"{method}_audio", "small").strategy
  config.data.stream = ml_collections.ConfigDict(dict(
      name="image_folders", root=root, tasks=("gan_a", "gan_b"),
      image_size=SIZE, data_dir=str(tmp_path / "data")))
  config.model.width = 4
  config.frontend.crop = config.augment.crop = 28
  config.data.batch_size = 8
  config.train.epochs_per_task = 0.0
  config.train.steps_per_task = 2
  config.eval.baseline = False
  config.output.plots = False
  config.output.progress = "none"
  results = train.train_and_evaluate(config, str(tmp_path / "run"))
  auc = results.matrix("auc")
  assert auc.shape == (2, 2) and np.all(np.isfinite(auc))
