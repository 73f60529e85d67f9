"""Config validation: bad values and unknown fields fail with the field named."""

from __future__ import annotations

import ml_collections
import pytest

from cljax import config_schema, presets
from cljax.registry import ConfigError, build
from cljax.strategies import available, make_strategy


def _config(**overrides):
  config = presets.audio_experiment("small")
  for path, value in overrides.items():
    target = config
    *parents, leaf = path.split(".")
    for part in parents:
      target = target[part]
    target[leaf] = value
  return config


def test_presets_validate():
  for variant in presets.VARIANTS:
    config_schema.validate(presets.audio_experiment(variant))


@pytest.mark.parametrize("path,value,expected", [
    ("data.batch_size", 0, "config.data.batch_size=0"),
    ("optimizer.learning_rate", -1.0, "config.optimizer.learning_rate"),
    ("optimizer.learning_rate", float("nan"), "a number > 0"),
    ("optimizer.name", "adamm", "one of ['adam', 'adamw', 'sgd', 'momentum']"),
    ("optimizer.schedule", "linear", "config.optimizer.schedule"),
    ("data.pad_mode", "reflect", "['wrap', 'zero']"),
    ("data.eval_mode", "pooled", "config.data.eval_mode='pooled'"),
    ("data.codec_augment", ("mp3", "flac2"), "config.data.codec_augment='flac2'"),
    ("data.speed_perturb", (0.9, 1.0), "speed factors > 0 and != 1"),
    ("data.cache_mb", -1, "config.data.cache_mb"),
    ("data.crop_seconds", 0.0, "config.data.crop_seconds"),
    ("eval.metrics", ("eer", "f1"), "config.eval.metrics='f1'"),
    ("train.log_every", 0, "config.train.log_every"),
    ("output.progress", "fancy", "config.output.progress"),
])
def test_bad_values_name_the_field(path, value, expected):
  with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace(
      "]", r"\]").replace("(", r"\(").replace(")", r"\)")):
    config_schema.validate(_config(**{path: value}))


def test_wrong_type_is_refused_by_the_config():
  with pytest.raises(TypeError, match="batch_size"):
    _config(**{"data.batch_size": 2.5})


def test_batch_must_split_over_devices():
  config = _config(**{"data.batch_size": 6, "data.eval_batch_size": 6})
  config_schema.validate(config, num_devices=3)
  with pytest.raises(ConfigError, match="multiple of the 4 devices"):
    config_schema.validate(config, num_devices=4)


def test_epochs_or_steps_required():
  with pytest.raises(ConfigError, match="train.epochs_per_task"):
    config_schema.validate(_config(**{"train.steps_per_task": 0,
                                      "train.epochs_per_task": 0.0}))


def test_locked_config_rejects_unknown_field():
  config = presets.audio_experiment("small")
  config.lock()
  with pytest.raises(AttributeError, match="learning_rate"):
    config.optimizer.learnin_rate = 1.0


def test_component_fields_checked_against_signature():
  def factory(width: int = 3, depth: int = 2):
    return width * depth

  assert build({"toy": factory}, {"name": "toy", "width": 5}, "model") == 10
  with pytest.raises(ConfigError, match=r"config.model.wdth: unknown field.*"
                     r"Valid fields: depth, width"):
    build({"toy": factory}, {"name": "toy", "wdth": 5}, "model")
  with pytest.raises(ConfigError, match=r"config.model.name='toy2' is unknown"
                     r".*Choose one of: toy"):
    build({"toy": factory}, {"name": "toy2"}, "model")


def test_strategy_lookup_errors():
  assert {"finetune", "joint"} <= set(available())
  with pytest.raises(ConfigError, match="config.strategy.name='rwmm' is "
                     "unknown. Choose one of: .*finetune.*joint"):
    make_strategy(ml_collections.ConfigDict({"name": "rwmm"}), None)
  with pytest.raises(ConfigError, match="config.strategy.alpha: unknown field"):
    make_strategy(ml_collections.ConfigDict({"name": "joint", "alpha": 1.0}),
                  None)
