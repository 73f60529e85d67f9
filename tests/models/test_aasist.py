"""Tests for the AASIST / AASIST-L port."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.models import AASIST, AASISTL, make_model
from cljax.models.aasist import sinc_filters
from overfit_helpers import overfit_losses

SHORT = 2400  # >= 129 + 3**7 samples: one temporal node survives.


def _count(tree):
  return sum(x.size for x in jax.tree_util.tree_leaves(tree))


@pytest.mark.parametrize("name,expected", [("aasist", 297_866),
                                           ("aasist_l", 85_306)])
def test_parameter_counts_match_the_official_models(name, expected):
  model = make_model({"name": name}, num_classes=2)
  variables = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                             jnp.zeros((1, 64600)))
  assert _count(variables["params"]) == expected
  # The sinc filters are fixed, not parameters.
  assert "conv_time" not in variables["params"]


def test_graph_node_counts_for_the_official_input_length():
  seen = []

  def forward(audio):
    model = AASIST()
    variables = model.init(jax.random.PRNGKey(0), audio)
    (logits, embedding), state = model.apply(variables, audio,
                                             mutable=["intermediates"])
    seen.append(state["intermediates"]["nodes"][0])
    return logits, embedding

  logits, embedding = jax.eval_shape(forward, jnp.zeros((2, 64600, 1)))
  assert seen[0] == (23, 29)
  assert logits.shape == (2, 2) and embedding.shape == (2, 160)


def test_sinc_filters_are_band_pass():
  bank = sinc_filters(70, 128)[:, 0, :]               # [129, 70]
  assert bank.shape == (129, 70)
  np.testing.assert_allclose(bank, bank[::-1], atol=1e-7)  # Symmetric.
  response = np.abs(np.fft.rfft(bank, 4096, axis=0))  # [2049, 70]
  peak_hz = np.argmax(response, axis=0) * 8000 / 2048
  assert np.all(np.diff(peak_hz) >= 0)                # Ordered low -> high.
  assert response[0, 10] < 0.05 * response[:, 10].max()  # No DC.


def test_overfits_a_tiny_batch():
  model = AASISTL(use_dropout=False)
  audio = jax.random.normal(jax.random.PRNGKey(0), (4, SHORT))
  # Give the classes different spectra so the task is learnable.
  audio = audio.at[1::2].set(jnp.cumsum(audio[1::2], axis=1) * 0.05)
  labels = jnp.array([0, 1, 0, 1])
  variables = jax.jit(model.init)(jax.random.PRNGKey(1), audio)
  losses = overfit_losses(model, variables, audio, labels,
                          learning_rate=3e-3, steps=40)
  assert losses[-1] < 0.02, losses[-5:]


def test_bfloat16_forward_agrees_with_float32():
  audio = jax.random.normal(jax.random.PRNGKey(0), (2, SHORT))
  variables = jax.jit(AASISTL().init)(jax.random.PRNGKey(1), audio)
  logits32, emb32 = jax.jit(AASISTL().apply)(variables, audio)
  logits16, emb16 = jax.jit(AASISTL(dtype=jnp.bfloat16).apply)(variables,
                                                               audio)
  # bf16 (2^-8 relative) through the sinc conv, 6 blocks and 6 graph
  # layers: agreement to 10 % of the embedding's scale.
  scale = float(np.max(np.abs(np.asarray(emb32))))
  np.testing.assert_allclose(emb16, emb32, atol=0.1 * scale)
  np.testing.assert_allclose(logits16, logits32, atol=0.1 * scale)


def test_bad_inputs_raise_clear_errors():
  with pytest.raises(ValueError, match="raw waveform"):
    AASIST().init(jax.random.PRNGKey(0), jnp.zeros((1, 401, 120)))
  with pytest.raises(ValueError, match="at least 2316 samples"):
    AASIST().init(jax.random.PRNGKey(0), jnp.zeros((1, 1000)))
