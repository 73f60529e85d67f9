"""Tests for cljax.deploy.serve: the real service on localhost, real HTTP.

Two tiny runs (configs/finetune_audio.py:small, seeds 0 and 1) are trained,
registered and served; a promotion happens under 8 concurrent clients.
"""

from __future__ import annotations

import concurrent.futures
import io
import math
import re
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
httpx = pytest.importorskip("httpx")
soundfile = pytest.importorskip("soundfile")

# pylint: disable=g-import-not-at-top,wrong-import-position
from cljax.deploy import serve as serve_lib
from cljax.deploy.registry import Registry
from run_helpers import run_small_config
# pylint: enable=g-import-not-at-top,wrong-import-position

RATE = 16000  # The synthetic stream's sample rate.
MAX_BYTES = 512 * 1024
MAX_SECONDS = 5.0


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
  """Two finished small runs: the suite's shared seed-0 run and a seed-1
  run trained here, side by side with it when it is not made yet."""
  workdir = str(tmp_path_factory.mktemp("serve_runs") / "seed1")
  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    seed1 = pool.submit(run_small_config, "finetune_audio", workdir,
                        "--config.seed=1", "--config.eval.baseline=False",
                        "--config.train.steps_per_task=4")
    seed0, _ = request.getfixturevalue("small_finetune_run")
    return [seed0, seed1.result()]


def wav_bytes(seconds: float, *, seed: int = 0, rate: int = RATE) -> bytes:
  return _wav(_samples(seconds, seed, rate), rate)


def _samples(seconds: float, seed: int = 0, rate: int = RATE) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return (rng.standard_normal(int(seconds * rate)) * 3000).astype(np.int16)


def _wav(samples: np.ndarray, rate: int = RATE) -> bytes:
  buffer = io.BytesIO()
  soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
  return buffer.getvalue()


def _chunked_multipart(size: int):
  """A valid multipart body of a ``size``-byte file, sent in chunks."""
  yield (b'--b\r\nContent-Disposition: form-data; name="file"; '
         b'filename="h.wav"\r\nContent-Type: audio/wav\r\n\r\n')
  for _ in range(size // 65536):
    yield b"\1" * 65536
  yield b"\r\n--b--\r\n"


def reference_score(model, samples: np.ndarray) -> float:
  """The clip's score computed here: windows cut by hand (every half window,
  the last flush with the end), the model's eval step on all of them in one
  batch, the mean of their log-odds."""
  window, hop = model.window, model.window // 2
  starts = list(range(0, len(samples) - window + 1, hop))
  if starts[-1] + window < len(samples):
    starts.append(len(samples) - window)
  batch = np.stack([samples[s:s + window] for s in starts])
  scorer = model.scorer
  scores = np.asarray(scorer.eval_step(scorer.state.variables,
                                       batch)["scores"])
  return float(np.mean(scores))


def wait_for(predicate, timeout: float, what: str):
  deadline = time.time() + timeout
  while time.time() < deadline:
    value = predicate()
    if value:
      return value
    time.sleep(0.05)
  raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def metric(text: str, name: str) -> float:
  match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
  assert match, f"{name} not in /metrics:\n{text}"
  return float(match.group(1))


def test_serves_reloads_under_load_and_refuses_bad_uploads(runs, tmp_path):
  registry = Registry(str(tmp_path / "registry"))
  v1 = registry.register(runs[0])
  v2 = registry.register(runs[1], parent=v1)
  settings = serve_lib.Settings(registry=registry.root, max_bytes=MAX_BYTES,
                                max_seconds=MAX_SECONDS, poll_seconds=0.1)
  samples = _samples(2.0)
  clip = _wav(samples)
  statuses = []  # Every /score answer the test receives, for /metrics.

  def post(client, **kwargs):
    response = client.post("/score", **kwargs)
    statuses.append(response.status_code)
    return response

  with serve_lib.RunningService(settings) as service, httpx.Client(
      base_url=service.url, timeout=120) as client:
    # Nothing promoted yet: up, but 503 with the command to fix it.
    health = client.get("/health")
    assert health.status_code == 503 and "promote" in health.json()["error"]
    assert post(client, files={"file": ("a.wav", clip)}).status_code == 503

    registry.promote(v1, reason="first")
    wait_for(lambda: client.get("/health").status_code == 200, 120,
             "the first model to load")
    first = post(client, files={"file": ("a.wav", clip)})
    assert first.status_code == 200, first.text
    body = first.json()
    # 2 s = 32000 samples, windows of 8000 every 4000: starts 0..24000.
    assert body["version"] == v1 and body["windows"] == 7
    assert body["seconds"] == 2.0 and body["sample_rate"] == RATE
    assert body["threshold"] == 0.0
    assert body["label"] == ("bonafide" if body["score"] >= 0 else "spoof")
    model_1 = service.holder.current
    score_1 = reference_score(model_1, samples)
    assert abs(body["score"] - score_1) < 1e-4

    # A promotion while 8 clients keep scoring: none fails, each switches
    # once from v1 to v2, and requests keep being served during the load.
    answers = [[] for _ in range(8)]
    failures = []
    stop = threading.Event()

    def client_loop(index):
      with httpx.Client(base_url=service.url, timeout=120) as own:
        while not stop.is_set():
          started = time.time()
          try:
            response = post(own, files={"file": ("a.wav", clip)})
          except httpx.HTTPError as error:
            failures.append(repr(error))
            continue
          if response.status_code != 200:
            failures.append(response.text)
            continue
          answers[index].append((started, response.json()["version"],
                                 response.json()["score"]))
          time.sleep(0.02)

    threads = [threading.Thread(target=client_loop, args=(i,))
               for i in range(8)]
    for thread in threads:
      thread.start()
    try:
      wait_for(lambda: all(len(a) >= 2 for a in answers), 60,
               "every client to be answered")
      promoted_at = time.time()
      registry.promote(v2, reason="seed 1")
      wait_for(lambda: all(sum(v == v2 for _, v, _ in a) >= 3
                           for a in answers), 120, "every client to see v2")
    finally:
      stop.set()
      for thread in threads:
        thread.join()
    assert failures == []
    model_2 = service.holder.current
    assert model_2.version == v2
    score_2 = reference_score(model_2, samples)
    assert abs(score_2 - score_1) > 1e-3  # Another seed, another model.
    served_during_load = 0
    for answer in answers:
      versions = [v for _, v, _ in answer]
      switch = versions.index(v2)
      assert set(versions[:switch]) == {v1} and set(versions[switch:]) == {v2}
      for started, version, score in answer:
        expected = score_1 if version == v1 else score_2
        assert abs(score - expected) < 1e-4
        served_during_load += version == v1 and started > promoted_at
    assert served_during_load > 0

    # Bad uploads: a 4xx with a message saying what to send; still up.
    header = wav_bytes(1.0)
    bad = {
        "empty": (dict(files={"file": ("e.wav", b"")}), 400, "empty"),
        "not audio": (dict(files={"file": ("x.wav", b"not audio " * 50)}),
                      422, "not audio"),
        "truncated": (dict(files={"file": ("t.wav", header[:2000])}), 422,
                      "truncated"),
        "too long": (dict(files={"file": ("l.wav", wav_bytes(6.0))}), 422,
                     f"up to {MAX_SECONDS:g} s"),
        "over the byte limit": (
            dict(files={"file": ("h.wav", b"\0" * (MAX_BYTES + 10))}), 413,
            "limit"),
        "huge": (dict(files={"file": ("h.wav", b"\0" * (4 * MAX_BYTES))}),
                 413, "limit"),
        "huge chunked": (dict(  # No Content-Length: counted as it comes.
            content=_chunked_multipart(64 * 65536),
            headers={"content-type": "multipart/form-data; boundary=b"}),
                         413, "limit"),
        "no file field": (dict(data={"clip": "x"}, files={
            "other": ("a.wav", clip)}), 400, "field 'file'"),
        "not multipart": (dict(content=clip,
                               headers={"content-type": "audio/wav"}), 400,
                          "multipart/form-data"),
    }
    for name, (kwargs, status, message) in bad.items():
      response = post(client, **kwargs)
      assert response.status_code == status, (name, response.text)
      assert message in response.json()["error"], (name, response.text)
      assert client.get("/health").json()["status"] == "ok", name
    good = post(client, files={"file": ("a.wav", clip)})
    assert good.status_code == 200 and good.json()["version"] == v2

    version = client.get("/version").json()
    assert version["version"] == v2 and version["meta"]["parent"] == v1
    assert version["reloads"] == 1
    text = client.get("/metrics").text
    assert metric(text, 'cljax_serve_requests_total{status="200"}') == (
        statuses.count(200))
    assert metric(text, "cljax_serve_errors_total") == sum(
        s >= 400 for s in statuses)
    assert metric(text, "cljax_serve_reloads_total") == 1
    assert metric(text, "cljax_serve_reload_failures_total") == 0
    p50 = metric(text, 'cljax_serve_score_latency_seconds{quantile="0.5"}')
    p99 = metric(text, 'cljax_serve_score_latency_seconds{quantile="0.99"}')
    assert 0 < p50 <= p99 and math.isfinite(p99)
    assert f'cljax_serve_model_info{{version="{v2}"' in text


class _Stub:
  def __init__(self, version):
    self.version = version


def test_a_version_that_fails_to_load_leaves_the_old_one_serving(runs,
                                                                 tmp_path):
  registry = Registry(str(tmp_path / "registry"))
  v1 = registry.register(runs[0])
  v2 = registry.register(runs[1])
  loads = []

  def loader(reg, version):
    loads.append(version)
    if version == v2 and loads.count(v2) <= 2:
      raise RuntimeError("checkpoint damaged")
    return _Stub(version)

  registry.promote(v1)
  holder = serve_lib.ModelHolder(registry, poll_seconds=0.02, loader=loader,
                                 retry_seconds=0.5)
  assert holder.check() and holder.current.version == v1
  holder.start()
  try:
    registry.promote(v2)
    wait_for(lambda: holder.reload_failures == 1, 10, "the failed reload")
    time.sleep(0.25)  # Over ten polls, but before the retry is due.
    assert holder.current.version == v1 and loads == [v1, v2]
    assert "checkpoint damaged" in holder.last_error
    # Retried after 0.5 s (fails), then after 1 s (loads).
    wait_for(lambda: holder.current.version == v2, 10, "the retried load")
    assert loads == [v1, v2, v2, v2] and holder.reload_failures == 2
    assert holder.reloads == 1 and holder.last_error is None
    registry.rollback()
    wait_for(lambda: holder.current.version == v1, 10, "the rollback")
    assert loads == [v1, v2, v2, v2, v1] and holder.reloads == 2
  finally:
    holder.stop()
