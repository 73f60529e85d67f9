"""The ASVspoof recipe and the anti-spoofing backbones, end to end on CPU.

Each backbone trains through the real loop on a fixture ASVspoof 2019 LA
copy (``configs/hmconformer_asvspoof.py:<backbone>,small``) and in a
continual config (``configs/rwm_audio.py`` with the backbone on the
synthetic stream), with tiny model sizes so that compiling stays short.
"""

from __future__ import annotations

import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax import presets
from cljax import train
from cljax.features import make_frontend
from cljax.models import make_model
import corpus_fixtures

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_config(name, variant):
  spec = importlib.util.spec_from_file_location(
      name, os.path.join(ROOT, "configs", f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def _results(workdir):
  with open(os.path.join(workdir, "results", "results.json")) as f:
    return json.load(f)


@pytest.mark.parametrize("backbone", ["hmconformer", "lcnn", "aasist_l"])
def test_the_recipe_trains_and_scores_on_a_fixture_copy(tmp_path, backbone):
  la19 = corpus_fixtures.write_la19(str(tmp_path / "LA"))
  config = _load_config("hmconformer_asvspoof", f"{backbone},small")
  with config.unlocked():
    config.data.stream.la19_dir = la19
    config.data.stream.data_dir = str(tmp_path / "cache")
    config.output.plots = False
    config.output.progress = "none"
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  results = _results(workdir)
  assert results["task_names"] == ["LA19"]
  eer = results["metrics"]["eer"]["matrix"]
  # One task, tested on the dev split's 4 utterances (1 bona fide).
  assert len(eer) == 1 and 0.0 <= eer[0][0] <= 100.0
  with open(os.path.join(workdir, "train.jsonl")) as f:
    losses = [r["loss"] for r in map(json.loads, f) if "loss" in r]
  assert losses and all(np.isfinite(losses))


def test_recipe_variants_and_their_errors():
  config = _load_config("hmconformer_asvspoof", None)
  assert config.model.name == "hm_conformer"
  assert config.data.batch_size == 240 and config.data.crop_seconds == 4.0
  assert config.optimizer.learning_rate == 1e-6
  assert config.augment.name == "coloured_noise"
  assert tuple(config.data.codec_augment) == (
      "mp3", "m4a", "ogg", "aac", "wma", "wav")
  assert tuple(config.data.speed_perturb) == (0.9, 1.1)
  faithful = _load_config("hmconformer_asvspoof", "faithful,full")
  assert faithful.augment.at_test and faithful.model.faithful
  assert faithful.data.eval_mode == "full"
  assert _load_config("hmconformer_asvspoof", "aasist").data.batch_size == 24
  with pytest.raises(ValueError, match=r"conflicting.*\['aasist'\]"):
    _load_config("hmconformer_asvspoof", "lcnn,aasist")
  with pytest.raises(ValueError, match=r"\['tiny'\].*backbone: hmconformer, "
                     "aasist, aasist_l, lcnn.*small, full, faithful"):
    _load_config("hmconformer_asvspoof", "tiny")


@pytest.mark.parametrize("backbone,expected", [
    ("hmconformer", 2_733_184),    # the official model's count
    ("lcnn", 269_826),             # 269,729 + a second output column
    ("aasist", 297_866),
    ("aasist_l", 85_306),
])
def test_backbone_variants_wire_front_end_and_model(backbone, expected):
  config = presets.audio_experiment(backbone)
  frontend = make_frontend(config.frontend, 16000)
  model = make_model(config.model, 2)
  audio = jnp.zeros((1, 32000), jnp.float32)  # the benchmark's 2-s crops
  variables = jax.eval_shape(
      lambda x: model.init(jax.random.PRNGKey(0), frontend(x)), audio)
  count = sum(x.size for x in jax.tree_util.tree_leaves(variables["params"]))
  assert count == expected
  if backbone == "lcnn":
    assert jax.eval_shape(frontend, audio).shape == (1, 201, 60)


def test_rwm_runs_with_hm_conformer_in_a_continual_config(tmp_path):
  config = _load_config("rwm_audio", "small")
  with config.unlocked():
    presets.set_backbone(config, "hmconformer")
    config.model.update(dict(dim=32, num_heads=4, ffn_dim=64, head_dim=16,
                             num_blocks=4))
    config.data.stream.num_tasks = 2
    config.train.steps_per_task = 4
    config.output.plots = False
    config.output.progress = "none"
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  eer = np.asarray(_results(workdir)["metrics"]["eer"]["matrix"], float)
  assert eer.shape == (2, 2) and np.all(np.isfinite(eer))


@pytest.mark.parametrize("backbone", ["hmconformer", "lcnn"])
def test_silent_clips_get_finite_scores_and_stay_silent_under_noise(backbone):
  from cljax import step as step_lib  # pylint: disable=g-import-not-at-top
  from cljax.features import augment as augment_lib  # pylint: disable=g-import-not-at-top
  config = _load_config("hmconformer_asvspoof", f"{backbone},small")
  frontend = make_frontend(config.frontend, 16000)
  model = make_model(config.model, 2)
  audio = np.zeros((2, 8000), np.int16)
  audio[1, :400] = 1000  # a short click, zero elsewhere
  # Coloured noise scales with the clip's RMS: silence stays silence.
  noisy = augment_lib.add_coloured_noise(jax.random.PRNGKey(0), audio,
                                         sample_rate=16000)
  np.testing.assert_array_equal(np.asarray(noisy)[0], 0.0)
  variables = model.init(jax.random.PRNGKey(0), frontend(jnp.asarray(audio)))
  eval_step = step_lib.make_eval_step(model=model, frontend=frontend,
                                      mesh=step_lib.make_mesh())
  scores = np.asarray(eval_step(variables, jnp.asarray(audio))["scores"])
  assert scores.shape == (2,) and np.all(np.isfinite(scores))
