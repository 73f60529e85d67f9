"""RAWM's optional distillation regulariser (``kd_weight > 0``)."""

from __future__ import annotations

import json
import os

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import softmax

from cli_helpers import run_cli
from cljax import presets
from cljax import registry
from cljax import train

# The module (``cljax.strategies.rawm`` the attribute is the factory).
rawm_lib = importlib.import_module("cljax.strategies.rawm")


def test_distillation_loss_equals_the_kl_formula():
  rng = np.random.default_rng(0)
  student, teacher = rng.normal(size=(2, 5, 3)) * 3
  temperature = 2.0
  p = softmax(teacher / temperature, -1)
  q = softmax(student / temperature, -1)
  expected = temperature ** 2 * np.mean(np.sum(p * np.log(p / q), -1))
  got = rawm_lib.distillation_loss(jnp.asarray(student), jnp.asarray(teacher),
                                   temperature)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  assert float(rawm_lib.distillation_loss(jnp.asarray(teacher),
                                          jnp.asarray(teacher), 2.0)) == 0.0


def _experiment(**strategy):
  config = presets.audio_experiment("small")
  config.strategy.name = "rawm"
  with config.unlocked():
    for key, value in strategy.items():
      config.strategy[key] = value
  return train.build_experiment(config)


def test_teacher_is_off_in_the_first_task_and_the_model_after_it():
  exp = _experiment(kd_weight=1.0)
  state = train.initial_state(exp)
  assert float(state.strategy_state["active"]) == 0.0
  state = state.replace(params=jax.tree.map(lambda x: x + 0.5, state.params))
  state = exp.strategy.end_task(state, train.task_context(exp, 0))
  assert float(state.strategy_state["active"]) == 1.0
  for teacher, model in zip(
      jax.tree.leaves(state.strategy_state["teacher"]["params"]),
      jax.tree.leaves(state.params)):
    np.testing.assert_array_equal(teacher, model)


def test_bad_distillation_fields_name_the_field():
  with pytest.raises(registry.ConfigError, match="kd_temperature"):
    _experiment(kd_weight=1.0, kd_temperature=0.0)


def test_rawm_with_distillation_runs_and_logs_the_term(tmp_path):
  workdir = str(tmp_path / "rawm-kd")
  process = run_cli("cljax.main", "--config=configs/rawm_audio.py:small",
                    f"--workdir={workdir}", "--config.strategy.kd_weight=1.0")
  assert process.returncode == 0, process.stderr[-2000:]
  with open(os.path.join(workdir, "train.jsonl")) as f:
    records = [json.loads(line) for line in f]
  kd = [r["kd"] for r in records if "kd" in r]
  assert kd and all(np.isfinite(kd))
  # Once the first task's model is the teacher, the student moves away.
  assert max(kd) > 0
