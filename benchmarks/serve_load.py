r"""Latency and throughput of the scoring service under a bounded local load.

  python benchmarks/serve_load.py [--registry=DIR | --workdir=RUN] \
      [--clients=4] [--seconds=20] [--clip_seconds=2] [--baseline_seconds=5]

Starts the service as a user does (``python -m cljax.serve`` in a
subprocess, on a free localhost port) on the registry's production version
(``--registry``), on a run registered into a temporary registry
(``--workdir``), or, with neither, on a run of
``configs/finetune_audio.py:small`` trained first (about 20 s). Then, with
httpx clients in this process, each posting the same ``--clip_seconds`` wav
(white noise at 16 kHz) in a loop, it measures:

* baseline: 1 client for ``--baseline_seconds``;
* load: ``--clients`` concurrent clients for ``--seconds``;

and prints, for each, requests, errors, requests/s and the client-side
latency p50/p90/p99/max, the throughput ratio load/baseline (both measured
in this run, on the same server), and the server's own latency quantiles
from ``/metrics``. Load is bounded: each client waits for its answer before
sending the next request (closed loop), so at most ``--clients`` requests
are in flight.

Measured numbers go in the report of the change that last touched the
service; the machine, and whether it was shared, matters for them.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

import httpx
import numpy as np
import soundfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env() -> dict[str, str]:
  env = dict(os.environ)
  env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
  env.setdefault("WANDB_MODE", "offline")
  return env


def _clip(seconds: float, rate: int = 16000) -> bytes:
  samples = (np.random.default_rng(0).standard_normal(int(seconds * rate))
             * 3000).astype(np.int16)
  buffer = io.BytesIO()
  soundfile.write(buffer, samples, rate, format="WAV", subtype="PCM_16")
  return buffer.getvalue()


def _free_port() -> int:
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


def _registry_for(args, scratch: str) -> str:
  from cljax.deploy.registry import Registry  # pylint: disable=g-import-not-at-top
  if args.registry:
    return args.registry
  workdir = args.workdir
  if not workdir:
    workdir = os.path.join(scratch, "run")
    print("training configs/finetune_audio.py:small ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "cljax.main",
         "--config=configs/finetune_audio.py:small",
         "--config.data.stream.num_tasks=2", f"--workdir={workdir}",
         "--config.output.progress=none", "--config.output.plots=False"],
        cwd=REPO, env=_env(), check=True, capture_output=True)
  registry = Registry(os.path.join(scratch, "registry"))
  registry.promote(registry.register(workdir), reason="benchmark")
  return registry.root


def _drive(url: str, clip: bytes, clients: int, seconds: float
           ) -> dict[str, float]:
  latencies: list[float] = []
  errors = [0]
  lock = threading.Lock()
  deadline = time.perf_counter() + seconds

  def loop():
    with httpx.Client(base_url=url, timeout=60) as client:
      while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
          ok = client.post("/score", files={"file": ("clip.wav", clip)}
                           ).status_code == 200
        except httpx.HTTPError:
          ok = False
        elapsed = time.perf_counter() - started
        with lock:
          if ok:
            latencies.append(elapsed)
          else:
            errors[0] += 1

  started = time.perf_counter()
  threads = [threading.Thread(target=loop) for _ in range(clients)]
  for thread in threads:
    thread.start()
  for thread in threads:
    thread.join()
  wall = time.perf_counter() - started
  values = np.asarray(latencies) * 1000
  return {"clients": clients, "requests": len(latencies),
          "errors": errors[0], "wall_s": wall,
          "rps": len(latencies) / wall,
          **{f"p{q}": float(np.percentile(values, q)) if values.size
             else float("nan") for q in (50, 90, 99)},
          "max": float(values.max()) if values.size else float("nan")}


def _line(name: str, r: dict[str, float]) -> str:
  return (f"{name:9s} clients={r['clients']:<2d} requests={r['requests']:<6d}"
          f" errors={r['errors']:<3d} {r['rps']:7.1f} req/s   latency ms: "
          f"p50 {r['p50']:6.1f}  p90 {r['p90']:6.1f}  p99 {r['p99']:6.1f}  "
          f"max {r['max']:6.1f}")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--registry", default=None)
  parser.add_argument("--workdir", default=None)
  parser.add_argument("--clients", type=int, default=4)
  parser.add_argument("--seconds", type=float, default=20.0)
  parser.add_argument("--baseline_seconds", type=float, default=5.0)
  parser.add_argument("--clip_seconds", type=float, default=2.0)
  args = parser.parse_args()
  with tempfile.TemporaryDirectory(prefix="cljax-serve-load-") as scratch:
    registry = _registry_for(args, scratch)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "cljax.serve", f"--registry={registry}",
         f"--port={port}", "--log_level=warning"], cwd=REPO, env=_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
      deadline = time.time() + 180
      while True:
        if server.poll() is not None:
          raise SystemExit(f"the service exited:\n{server.stderr.read()}")
        try:
          if httpx.get(f"{url}/health", timeout=2).status_code == 200:
            break
        except httpx.HTTPError:
          pass
        if time.time() > deadline:
          raise SystemExit("the service did not become healthy in 180 s")
        time.sleep(0.2)
      clip = _clip(args.clip_seconds)
      _drive(url, clip, 1, 1.0)  # Warm the connection pool and the server.
      version = httpx.get(f"{url}/version").json()["version"]
      print(f"service {url} on {version}; clip {args.clip_seconds:g} s "
            f"({len(clip)} bytes); {os.cpu_count()} CPUs", flush=True)
      baseline = _drive(url, clip, 1, args.baseline_seconds)
      print(_line("baseline", baseline), flush=True)
      load = _drive(url, clip, args.clients, args.seconds)
      print(_line("load", load), flush=True)
      print(f"throughput ratio load/baseline: "
            f"{load['rps'] / baseline['rps']:.2f}x with {args.clients} "
            "clients")
      metrics = httpx.get(f"{url}/metrics").text
      quantiles = dict(re.findall(
          r'cljax_serve_score_latency_seconds\{quantile="([0-9.]+)"\} (\S+)',
          metrics))
      print("server-side latency (last 4096 requests) ms: " + "  ".join(
          f"p{float(q) * 100:g} {float(v) * 1000:.1f}"
          for q, v in quantiles.items()))
    finally:
      server.terminate()
      try:
        server.wait(timeout=30)
      except subprocess.TimeoutExpired:
        server.kill()


if __name__ == "__main__":
  main()
