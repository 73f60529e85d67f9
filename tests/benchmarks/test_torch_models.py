"""Tests for benchmarks/torch_models.py, the PyTorch side of jax_vs_torch.py.

Skipped without PyTorch (``pip install -r benchmarks/requirements-torch.txt``).
They check what makes the benchmark a fair comparison: the ports have
exactly cljax's trainable-parameter counts, the PyTorch front ends compute
cljax's features, the PyTorch loss is cljax's loss, and a PyTorch train step
learns.

Front-end tolerance: atol 5e-5 + rtol 1e-5 between the float32 torch.stft
LFCC/log-mel and cljax's float32 JAX ones on a random 1-s clip at about
-20 dBFS (measured worst case 3e-6; values reach 4.2).
"""

from __future__ import annotations

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cljax.features import make_frontend  # noqa: E402
from cljax.models import CNN1D, HMConformer  # noqa: E402
from cljax.models import heads  # noqa: E402

_PATH = (pathlib.Path(__file__).resolve().parents[2] / "benchmarks"
         / "torch_models.py")
_SPEC = importlib.util.spec_from_file_location("torch_models", _PATH)
tm = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(tm)

SR = 16000
ATOL, RTOL = 5e-5, 1e-5


def _clip(seconds: float, batch: int = 2, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  audio = rng.normal(0, 3000, (batch, int(seconds * SR)))
  return np.clip(audio, -32768, 32767).astype(np.int16)


def test_hm_conformer_port_has_the_official_parameter_count():
  features = jnp.zeros((1, 51, 120))  # counts do not depend on frames
  # eval_shape: the shapes without running the (slow, un-jitted) init.
  variables = jax.eval_shape(HMConformer().init, jax.random.PRNGKey(0),
                             features)
  port = tm.HMConformer()
  assert tm.count_jax_params(variables["params"]) == 2_733_184
  assert tm.count_torch_params(port) == 2_733_184
  # Per part, as tests/models/test_hm_conformer.py splits the official count.
  assert tm.count_torch_params(port.encoder) == 2_574_592
  assert tm.count_torch_params(port.mca) == 116_352
  assert (tm.count_torch_params(port.heads)
          + tm.count_torch_params(port.oc)) == 42_240


def test_cnn1d_port_has_cljax_parameter_count():
  # The default variant's CNN1D over 64 log-mel bands: 78,594 parameters.
  variables = jax.eval_shape(CNN1D().init, jax.random.PRNGKey(0),
                             jnp.zeros((1, 21, 64)))
  assert tm.count_jax_params(variables["params"]) == 78_594
  assert tm.count_torch_params(tm.CNN1D(in_channels=64)) == 78_594
  # A different shape must give a different count on both sides alike.
  narrow = jax.eval_shape(CNN1D(channels=(16, 16), embed_dim=8).init,
                          jax.random.PRNGKey(0), jnp.zeros((1, 21, 64)))
  assert tm.count_jax_params(narrow["params"]) == tm.count_torch_params(
      tm.CNN1D(in_channels=64, channels=(16, 16), embed_dim=8))


def test_torch_lfcc_matches_cljax_lfcc():
  audio = _clip(1.0)
  expected = np.asarray(make_frontend({"name": "lfcc"}, SR)(audio))
  got = tm.LFCC(SR)(torch.from_numpy(audio)).numpy()
  assert got.shape == expected.shape == (2, 101, 120)
  np.testing.assert_allclose(got, expected, atol=ATOL, rtol=RTOL)


def test_torch_logmel_matches_cljax_logmel():
  audio = _clip(1.0, seed=1)
  expected = np.asarray(
      make_frontend({"name": "logmel", "n_mels": 64}, SR)(audio))
  got = tm.LogMel(SR, n_mels=64)(torch.from_numpy(audio)).numpy()
  assert got.shape == expected.shape == (2, 101, 64)
  np.testing.assert_allclose(got, expected, atol=ATOL, rtol=RTOL)


def test_torch_hm_conformer_loss_matches_cljax():
  rng = np.random.default_rng(2)
  cos = rng.uniform(-1, 1, (6, 5)).astype(np.float32)
  labels = np.array([0, 1, 1, 0, 1, 0], np.int32)
  expected = float(heads.hm_conformer_loss(jnp.asarray(cos),
                                           jnp.asarray(labels)))
  got = float(tm.hm_conformer_loss(torch.from_numpy(cos),
                                   torch.from_numpy(labels).long()))
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  # And the 2-column logits' genuine log-odds is alpha (cos - 0.55).
  logits = tm.oc_logits(torch.tensor([0.55, 0.9]))
  np.testing.assert_allclose((logits[:, 0] - logits[:, 1]).numpy(),
                             [0.0, 7.0], atol=1e-5)


def _train(model, frontend, loss_fn, audio, labels, steps):
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
  x, y = torch.from_numpy(audio), torch.from_numpy(labels).long()
  model.train()
  losses = []
  for _ in range(steps):
    loss = loss_fn(model(frontend(x)), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
  return losses


def test_torch_hm_conformer_train_step_reduces_the_loss():
  torch.manual_seed(0)
  # Dropout off so the loss of a fixed batch is a fair progress measure;
  # BatchNorm stays on batch statistics (train mode).
  model = tm.HMConformer(dropout_rate=0.0, emb_dropout=0.0, mca_dropout=0.0)
  losses = _train(model, tm.LFCC(SR),
                  lambda out, y: tm.hm_conformer_loss(out[2], y),
                  _clip(0.25, batch=4), np.array([0, 1, 0, 1]), steps=6)
  assert all(np.isfinite(losses))
  assert losses[-1] < 0.5 * losses[0], losses


def test_torch_cnn1d_train_step_reduces_the_loss():
  torch.manual_seed(0)
  model = tm.CNN1D(in_channels=64)
  losses = _train(model, tm.LogMel(SR, n_mels=64),
                  lambda out, y: torch.nn.functional.cross_entropy(out[0], y),
                  _clip(0.5, batch=4, seed=3), np.array([0, 1, 0, 1]),
                  steps=15)
  assert losses[-1] < 0.5 * losses[0], losses
