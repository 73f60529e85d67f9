r"""cljax's jitted train step against a PyTorch eager one, in one process.

  python benchmarks/jax_vs_torch.py [--models=hm_conformer,cnn1d] \
      [--hm_batch=8] [--cnn_batch=32] [--steps=5] [--repeats=9] \
      [--dtype=float32|bfloat16] [--peak_flops=989e12] [--torch_compile]

Needs PyTorch (``pip install -r benchmarks/requirements-torch.txt``). The
PyTorch side is ``benchmarks/torch_models.py``: ports of the same models
with the same layers and trainable-parameter counts (checked before timing;
the run stops if they differ).

For each model, both sides train on the same random int16 batch (bona fide
and spoof labels alternating), from the waveform:

* cljax: ``cljax.step.make_train_step`` — the real step a run compiles:
  front end (``cljax.features.make_frontend``), forward in training mode,
  the model's loss, backward, the ``finetune`` strategy's transform and Adam
  (``cljax.optim.make_tx`` with the base config's optimizer: adam, lr 1e-3,
  constant), on ``make_mesh()``; it also computes its logged metrics
  (accuracy, gradient and update norms).
* PyTorch eager: front end + forward in ``train()`` mode + the same loss +
  ``backward()`` + ``torch.optim.Adam(lr=1e-3)`` (PyTorch's default Adam
  implementation for the device).

Models: ``hm_conformer`` (4-s crops, LFCC ``[B, 401, 120]``, the five-head
weighted OC-softmax loss on the PyTorch side; the cljax side uses whatever
loss ``make_train_step`` gives the model, printed) and ``cnn1d`` (2-s
crops, log-mel 64 bands, the ``default`` variant's CNN1D, softmax
cross-entropy). Dropout on and BatchNorm on batch statistics on both sides;
HM-Conformer's frame mask off.

The cljax step builder and the timing are ``benchmarks/_harness.py``,
shared with ``benchmarks/resnet_vs_torch.py``. Each side is warmed up
(compilation, allocator), then each of ``repeats`` rounds runs ``steps``
cljax steps and ``steps`` PyTorch steps in turn, each blocked at the end
(``jax.block_until_ready``; ``torch.cuda.synchronize`` on
a GPU). steps/s are the medians over the rounds; the ratio cljax/PyTorch
(> 1: cljax is faster) is the median of the rounds' ratios, so that load
from other processes, which drifts over seconds, hits both sides of a ratio
alike. Both frameworks use all cores (XLA's CPU thread
pool; ``torch.set_num_threads(os.cpu_count())``).

``--dtype=bfloat16`` (for a GPU): cljax's HM-Conformer computes in bfloat16
(``dtype`` field; parameters and OC cosines stay float32), PyTorch's runs
under ``torch.autocast(device, torch.bfloat16)``; front ends stay float32
on both sides. cljax's CNN1D has no ``dtype`` field, so both sides run it in
float32 (printed). On a GPU, float32 matmuls may use TF32 on both sides
(``torch.backends.cuda.matmul.allow_tf32 = True``, XLA's default).

Achieved FLOP/s: the cljax step's FLOPs from XLA's cost analysis of the
compiled step (``jitted.lower(...).compile().cost_analysis()``) divided by
the median step time; on an accelerator also as a share of ``--peak_flops``
(default: H100 SXM dense bf16, 989e12).

Targets (issue 6): cljax >= 1.2x PyTorch on CPU, >= 2x PyTorch eager on an
H100 in bfloat16.

Measured (2-core CPU VM shared with other jobs, load average 7-9, so noisy;
jax 0.10.2, torch 2.13.0+cpu; defaults): hm_conformer batch 8: cljax 1.19,
PyTorch 0.14 steps/s (9.7x); cnn1d batch 32: 32.2 vs 2.86 steps/s (13.2x).
Those ratios mostly measure PyTorch's 2 OpenMP threads stalling when the
cores are oversubscribed: with ``--torch_threads=1`` in the same conditions
PyTorch ran 0.98 and 28.3 steps/s (cljax/PyTorch 1.15x and 1.61x). On a
less loaded machine a short early run gave hm_conformer 0.60x and cnn1d
1.10x, so whether cljax reaches 1.2x on an idle CPU is open. XLA's cost
analysis: 23.9 GFLOP per HM-Conformer step, 2.6 per CNN1D step.
``--torch_compile`` works on CPU: warm-up 25 s (cnn1d) and 290 s
(hm_conformer), then within the noise of PyTorch eager. Not yet run on a
GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from typing import Any, Callable

# Let JAX and PyTorch share a GPU: no up-front grab of 75 % of its memory.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

try:
  import torch
except ImportError:
  sys.exit("benchmarks/jax_vs_torch.py needs PyTorch: run `pip install -r "
           "benchmarks/requirements-torch.txt` and try again.")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness  # noqa: E402  (benchmarks/_harness.py)
import torch_models  # noqa: E402  (benchmarks/torch_models.py)

from cljax import config_schema, presets  # noqa: E402
from cljax.features import make_frontend  # noqa: E402
from cljax.models import make_model  # noqa: E402

SAMPLE_RATE = 16000  # The speech benchmark's and ASVspoof's rate.
MODELS = ("hm_conformer", "cnn1d")
# Official HM-Conformer parameter count (tests/models/test_hm_conformer.py).
HM_CONFORMER_PARAMS = 2_733_184


@dataclasses.dataclass
class Pair:
  """One model's two train steps on the same batch."""

  name: str
  batch: int
  crop_seconds: float
  dtype: str            # the precision both sides compute in
  jax_step: Callable[[], Any]     # runs one step, returns what to block on
  torch_step: Callable[[], Any]
  jax_flops: float | None
  jax_loss: str
  torch_compiled_step: Callable[[], Any] | None = None
  compile_note: str = ""


def random_batch(batch: int, crop_seconds: float, seed: int):
  """int16 audio ``[B, L]`` (noise at about -20 dBFS) and alternating labels."""
  rng = np.random.default_rng(seed)
  length = int(round(crop_seconds * SAMPLE_RATE))
  audio = np.clip(rng.normal(0, 3000, (batch, length)), -32768, 32767)
  labels = np.arange(batch, dtype=np.int32) % 2
  return audio.astype(np.int16), labels


def build_cljax(name: str, batch: int, crop_seconds: float, dtype: str,
                audio: np.ndarray, labels: np.ndarray, seed: int):
  """cljax's jitted step on ``(audio, labels)``.

  Returns ``(step fn, params, FLOPs per step, name of the loss it trains
  on)``; one step has already run (to identify the loss).
  """
  if name == "hm_conformer":
    frontend = make_frontend({"name": "lfcc"}, SAMPLE_RATE)
    model = make_model({"name": "hm_conformer", "frame_mask_max": 0,
                        "dtype": getattr(jnp, dtype)}, 2)
  else:
    preset = presets.audio_experiment("default")
    frontend = make_frontend(preset.frontend, SAMPLE_RATE)
    model = make_model(preset.model, 2)
  optimizer = config_schema.base_config().optimizer  # adam, 1e-3, constant
  return _harness.build_cljax_step(model, frontend, 2, optimizer, audio,
                                   labels, seed)


def build_torch(name: str, device: torch.device, autocast: bool,
                audio: np.ndarray, labels: np.ndarray, seed: int,
                compile_model: bool):
  """The PyTorch eager (or compiled) step on ``(audio, labels)``."""
  torch.manual_seed(seed)
  if name == "hm_conformer":
    frontend = torch_models.LFCC(SAMPLE_RATE)
    model = torch_models.HMConformer()

    def loss_fn(outputs, target):
      return torch_models.hm_conformer_loss(outputs[2], target)
  else:
    preset = presets.audio_experiment("default")
    frontend = torch_models.LogMel(SAMPLE_RATE,
                                   n_mels=preset.frontend.n_mels)
    model = torch_models.CNN1D(in_channels=preset.frontend.n_mels)

    def loss_fn(outputs, target):
      return torch.nn.functional.cross_entropy(outputs[0].float(), target)
  frontend, model = frontend.to(device), model.to(device).train()
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
  forward = torch.compile(model) if compile_model else model
  x = torch.from_numpy(audio).to(device)
  y = torch.from_numpy(labels).long().to(device)

  def run():
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
      loss = loss_fn(forward(frontend(x)), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()

  return run, model


def check_counts(name: str, jax_params, torch_model) -> int:
  """Both sides' trainable-parameter counts; stops the run if they differ."""
  jax_count = torch_models.count_jax_params(jax_params)
  torch_count = torch_models.count_torch_params(torch_model)
  if jax_count != torch_count:
    raise SystemExit(
        f"{name}: cljax has {jax_count:,} trainable parameters but the "
        f"PyTorch port has {torch_count:,}; fix benchmarks/torch_models.py "
        "so both models are the same before timing them.")
  if name == "hm_conformer" and jax_count != HM_CONFORMER_PARAMS:
    raise SystemExit(
        f"hm_conformer: {jax_count:,} parameters on both sides, but the "
        f"official model has {HM_CONFORMER_PARAMS:,}.")
  return jax_count


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--models", default=",".join(MODELS))
  parser.add_argument("--hm_batch", type=int, default=None,
                      help="HM-Conformer batch (default 8 on CPU, 64 on an "
                      "accelerator).")
  parser.add_argument("--hm_crop", type=float, default=4.0)
  parser.add_argument("--cnn_batch", type=int, default=32)
  parser.add_argument("--cnn_crop", type=float, default=2.0)
  parser.add_argument("--steps", type=int, default=5,
                      help="steps per timed round and side")
  parser.add_argument("--repeats", type=int, default=9,
                      help="timed rounds (medians are over these)")
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--dtype", default="float32",
                      choices=("float32", "bfloat16"))
  parser.add_argument("--peak_flops", type=float, default=989e12,
                      help="accelerator peak FLOP/s for the utilisation "
                      "share (default: H100 SXM dense bf16)")
  parser.add_argument("--torch_compile", action="store_true",
                      help="also time the PyTorch step with torch.compile "
                      "(model only; skipped with a reason if it fails)")
  parser.add_argument("--torch_threads", type=int, default=None,
                      help="PyTorch intra-op threads (default: all cores, "
                      "as XLA uses)")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()

  names = [n for n in args.models.split(",") if n]
  for name in names:
    if name not in MODELS:
      raise SystemExit(f"--models: unknown model {name!r}; choose from "
                       f"{', '.join(MODELS)}.")
  backend = jax.default_backend()
  on_accelerator = backend != "cpu"
  if on_accelerator and not torch.cuda.is_available():
    raise SystemExit(f"JAX runs on {backend} but PyTorch sees no CUDA "
                     "device: install a CUDA build of torch to compare on "
                     "the same device.")
  device = torch.device("cuda" if on_accelerator else "cpu")
  torch.set_num_threads(args.torch_threads or os.cpu_count() or 1)
  if on_accelerator:
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
  if args.dtype == "bfloat16" and not on_accelerator:
    print("note: --dtype=bfloat16 on CPU (both sides emulate bf16 matmuls "
          "slowly; meant for a GPU).")
  hm_batch = args.hm_batch or (64 if on_accelerator else 8)
  device_name = (jax.devices()[0].device_kind if on_accelerator
                 else f"cpu x{os.cpu_count()}")
  print(f"jax {jax.__version__} ({backend}: {jax.devices()}); torch "
        f"{torch.__version__} on {device}, torch.get_num_threads()="
        f"{torch.get_num_threads()}; steps {args.steps} x repeats "
        f"{args.repeats}, warm-up {args.warmup}")

  torch_sync = _harness.torch_sync(torch, device)

  pairs = []
  for name in names:
    batch, crop = ((hm_batch, args.hm_crop) if name == "hm_conformer"
                   else (args.cnn_batch, args.cnn_crop))
    dtype = args.dtype
    if name == "cnn1d" and dtype != "float32":
      print("note: cljax's CNN1D has no dtype field; cnn1d runs in float32 "
            "on both sides.")
      dtype = "float32"
    audio, labels = random_batch(batch, crop, args.seed)
    jax_step, jax_params, flops, jax_loss = build_cljax(
        name, batch, crop, dtype, audio, labels, args.seed)
    autocast = dtype == "bfloat16"
    torch_step, torch_model = build_torch(name, device, autocast, audio,
                                          labels, args.seed, False)
    count = check_counts(name, jax_params, torch_model)
    torch_loss = ("5-head weighted OC-softmax" if name == "hm_conformer"
                  else "softmax cross-entropy")
    print(f"{name}: {count:,} trainable parameters on both sides; cljax "
          f"loss: {jax_loss}; PyTorch loss: {torch_loss}")
    pair = Pair(name, batch, crop, dtype, jax_step, torch_step, flops,
                jax_loss)
    if args.torch_compile:
      start = time.perf_counter()
      try:
        compiled, _ = build_torch(name, device, autocast, audio, labels,
                                  args.seed, True)
        for _ in range(max(args.warmup, 2)):
          torch_sync(compiled())
        pair.torch_compiled_step = compiled
        pair.compile_note = (f"torch.compile warm-up "
                             f"{time.perf_counter() - start:.0f} s")
      except Exception as error:  # Report, do not stop the benchmark.
        pair.compile_note = (f"torch.compile skipped: "
                             f"{type(error).__name__}: {error}"[:300])
      print(f"{name}: {pair.compile_note}")
    pairs.append(pair)

  rows = []
  for pair in pairs:
    sides = {"cljax": (pair.jax_step, jax.block_until_ready),
             "torch": (pair.torch_step, torch_sync)}
    if pair.torch_compiled_step is not None:
      sides["compiled"] = (pair.torch_compiled_step, torch_sync)
    medians, ratios = _harness.measure(
        sides, steps=args.steps, repeats=args.repeats, warmup=args.warmup,
        label=pair.name)
    rows.append((pair, medians, ratios))

  compiled_column = any(p.torch_compiled_step is not None for p in pairs)
  header = (f"{'model':13s} {'device':18s} {'dtype':9s} {'batch':>5s} "
            f"{'crop s':>6s} {'cljax st/s':>10s} {'torch st/s':>10s} "
            f"{'cljax/torch':>11s}")
  if compiled_column:
    header += f" {'compile st/s':>12s} {'cljax/comp':>10s}"
  print()
  print(header)
  print("-" * len(header))
  for pair, medians, ratios in rows:
    line = (f"{pair.name:13s} {device_name[:18]:18s} {pair.dtype:9s} "
            f"{pair.batch:5d} {pair.crop_seconds:6.1f} "
            f"{medians['cljax']:10.2f} {medians['torch']:10.2f} "
            f"{ratios['torch']:10.2f}x")
    if compiled_column:
      if "compiled" in medians:
        line += (f" {medians['compiled']:12.2f} "
                 f"{ratios['compiled']:9.2f}x")
      else:
        line += f" {'-':>12s} {'-':>10s}"
    print(line)
  print()
  print("cljax step FLOPs (XLA cost analysis of the compiled train step):")
  for pair, medians, _ in rows:
    if pair.jax_flops is None:
      print(f"  {pair.name}: cost analysis unavailable on {backend}")
      continue
    achieved = pair.jax_flops * medians["cljax"]
    line = (f"  {pair.name}: {pair.jax_flops / 1e9:.2f} GFLOP/step, "
            f"achieved {achieved / 1e9:.1f} GFLOP/s")
    if on_accelerator:
      line += (f" = {100 * achieved / args.peak_flops:.1f} % of the peak "
               f"{args.peak_flops / 1e12:.0f} TFLOP/s (--peak_flops)")
    print(line)
  for pair in pairs:
    if pair.compile_note and pair.torch_compiled_step is None:
      print(f"  {pair.name}: {pair.compile_note}")


if __name__ == "__main__":
  main()
