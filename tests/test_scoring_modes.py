"""Scoring in the loop: first-window vs full-utterance (sliding windows)."""

from __future__ import annotations

import numpy as np

from cljax import presets
from cljax import train


def _experiment(**data):
  config = presets.audio_experiment("small")
  config.strategy.name = "finetune"
  for key, value in data.items():
    config.data[key] = value
  exp = train.build_experiment(config)
  state = train.initial_state(exp)
  eval_step = train.make_eval_step(exp)
  return exp, state, eval_step


def test_full_mode_with_one_window_per_utterance_equals_window_mode():
  # Every utterance of the small stream is shorter than 2 s: one window.
  exp, state, eval_step = _experiment(eval_mode="window", eval_seconds=2.0)
  window = train.score_task(exp, eval_step, state, 1, "test")
  exp_full, _, _ = _experiment(eval_mode="full", eval_seconds=2.0)
  full = train.score_task(exp_full, eval_step, state, 1, "test")
  np.testing.assert_allclose(full["scores"], window["scores"], rtol=1e-6)
  np.testing.assert_array_equal(full["labels"], window["labels"])
  assert full["utt_ids"] == window["utt_ids"]


def test_full_mode_averages_the_scores_of_every_window():
  exp, state, eval_step = _experiment(eval_mode="full", eval_seconds=0.125,
                                      eval_hop_seconds=0.1)
  full = train.score_task(exp, eval_step, state, 0, "test")
  source = exp.stream.tasks[0].split("test")
  window, hop = exp.eval_length, 1600
  for index in (0, 3, len(source) - 1):
    audio = np.asarray(source[index]["audio"])
    # Windows every 0.1 s, plus one flush with the end: >= 4 per utterance.
    starts = list(range(0, len(audio) - window + 1, hop))
    if starts[-1] + window < len(audio):
      starts.append(len(audio) - window)
    assert len(starts) >= 4
    clips = np.stack([audio[s:s + window] for s in starts])
    scores = np.asarray(eval_step(state.variables, clips)["scores"])
    np.testing.assert_allclose(full["scores"][index], scores.mean(),
                               rtol=1e-5, atol=1e-6)
  assert len(full["scores"]) == len(source)
