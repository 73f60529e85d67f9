r"""cljax's ResNet-50 train step against torchvision's, in one process.

  python benchmarks/resnet_vs_torch.py [--device=auto|cpu|gpu] [--batch=8] \
      [--image_size=224] [--num_classes=2] [--steps=2] [--repeats=7] \
      [--dtype=float32|bfloat16] [--torch_threads=N] [--channels_last]

Needs PyTorch and torchvision (``pip install -r
benchmarks/requirements-torch.txt``). The issue's "Speed" item (issue 8):
the image backbone's train step against the same model in
PyTorch/torchvision, same run.

Both sides train on the same random uint8 batch ``[B, S, S, 3]`` (NHWC, as
cljax's image loader gives it; labels alternating 0/1):

* cljax: ``cljax.step.make_train_step`` — the real step a run compiles —
  with the registered ``"resnet50"`` model (``cljax/models/resnet.py``),
  the ``"rgb"`` front end (uint8 / 255, inside the step), forward in training
  mode (BatchNorm on batch statistics, running averages updated), the
  model's loss (softmax cross-entropy; the script checks which loss the step
  logged), backward, the ``finetune`` strategy's transform and SGD with
  momentum 0.9 (``config.optimizer.name="momentum"``, constant
  ``--learning_rate``), plus the step's logged metrics (accuracy, gradient
  and update norms). Built by ``benchmarks/_harness.py``, shared with
  ``benchmarks/jax_vs_torch.py``.
* PyTorch: ``torchvision.models.resnet50(weights=None,
  num_classes=...)`` in ``train()`` mode, eager; the step converts the
  same uint8 NHWC batch (permute to NCHW, / 255), runs forward,
  ``F.cross_entropy``, ``backward()`` and ``torch.optim.SGD(lr,
  momentum=0.9)``. ``--channels_last`` gives PyTorch the NHWC memory layout
  (often faster with oneDNN/cuDNN); the default is torchvision's NCHW.

Before timing, both trainable-parameter counts must be equal and equal to
the standard ResNet-50's: 25,557,032 with 1000 classes, 23,512,130 with 2
(23,508,032 + 2,049 per class; BatchNorm running statistics excluded).

Timing (``benchmarks/_harness.py``): warm-up, then ``repeats`` rounds, each
running ``steps`` cljax steps and ``steps`` PyTorch steps in turn, blocked at
the end. steps/s are medians over rounds; the ratio cljax/PyTorch (> 1:
cljax is faster) is the median of per-round ratios, so drifting load from
other processes hits both sides of a ratio alike. Both frameworks use all
cores on CPU (XLA's thread pool; ``torch.set_num_threads(os.cpu_count())``
unless ``--torch_threads``).

``--device``: ``auto`` (the default) runs on the GPU when JAX's default
backend is one, else on the CPU; ``cpu`` forces the CPU for both (cljax's
mesh over ``jax.devices("cpu")``); ``gpu`` requires a JAX GPU backend and a
CUDA build of torch. Default batch: 8 on CPU, 128 on a GPU.
``--dtype=bfloat16``: cljax's ResNet computes in bfloat16 (``dtype``
field; parameters, pooled embedding and logits stay float32); PyTorch runs
under ``torch.autocast(device, torch.bfloat16)``. On a GPU, float32
convolutions and matmuls may use TF32 on both sides (XLA's default;
``allow_tf32`` set for PyTorch). The GPU and bfloat16 paths are written but
were not run when this was written (no GPU on the development machine).

Measured (2-core CPU VM shared with other jobs, load average 3.3 rising to
5.1 during the run, so noisy; jax 0.10.2, torch 2.14.1+cu130 and
torchvision 0.29.1+cu130 on the CPU; defaults: batch 8 x 224 x 224 x 3, 2
classes, float32, SGD momentum 0.9, steps 2 x repeats 7): cljax 0.186,
PyTorch 0.158 steps/s (1.5 and 1.3 images/s), cljax/PyTorch 1.17x (per-round
ratios about 0.8x to 2.0x). With ``--torch_threads=1`` a few minutes later
(steps 1 x repeats 4, load average 5.0 to 4.3): cljax 0.454, PyTorch 0.508
steps/s, 0.90x; as in jax_vs_torch.py, PyTorch's two OpenMP threads stall
when other jobs hold the cores, so neither ratio is an idle-machine one.
XLA's cost analysis: 191.6 GFLOP per step (batch 8, 224 px); cljax
achieved 36-87 GFLOP/s. GPU and bfloat16: not yet run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

# Let JAX and PyTorch share a GPU: no up-front grab of 75 % of its memory.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

try:
  import torch
  import torchvision
except ImportError as error:
  sys.exit(f"benchmarks/resnet_vs_torch.py needs PyTorch and torchvision "
           f"({error}): run `pip install -r benchmarks/requirements-torch.txt`"
           " in a virtual env of its own and try again.")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness  # noqa: E402  (benchmarks/_harness.py)
import torch_models  # noqa: E402  (benchmarks/torch_models.py)

from cljax import config_schema  # noqa: E402
from cljax.features import make_frontend  # noqa: E402
from cljax.models import make_model  # noqa: E402

# torchvision's ResNet-50 without its classifier; the classifier adds
# 2048 weights + 1 bias per class (25,557,032 with ImageNet's 1000).
RESNET50_BACKBONE_PARAMS = 23_508_032
MOMENTUM = 0.9


def expected_params(num_classes: int) -> int:
  """Trainable parameters of the standard ResNet-50 on RGB input."""
  return RESNET50_BACKBONE_PARAMS + 2049 * num_classes


def random_batch(batch: int, image_size: int, seed: int):
  """uint8 images ``[B, S, S, 3]`` (uniform noise) and alternating labels."""
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (batch, image_size, image_size, 3),
                        dtype=np.uint8)
  return images, np.arange(batch, dtype=np.int32) % 2


def cljax_model(num_classes: int, dtype: str = "float32"):
  """The registered ``resnet50`` as a run builds it from ``config.model``."""
  return make_model({"name": "resnet50", "dtype": getattr(jnp, dtype)},
                    num_classes)


def torch_model(num_classes: int):
  """torchvision's ResNet-50, random init (no download)."""
  return torchvision.models.resnet50(weights=None, num_classes=num_classes)


def build_cljax(images: np.ndarray, labels: np.ndarray, num_classes: int,
                dtype: str, learning_rate: float, seed: int, devices=None):
  """cljax's jitted step; returns ``_harness.build_cljax_step``'s tuple."""
  frontend = make_frontend({"name": "rgb"}, None)
  optimizer = config_schema.base_config().optimizer
  optimizer.name = "momentum"  # optax.sgd(lr, momentum), as torch's SGD
  optimizer.momentum = MOMENTUM
  optimizer.learning_rate = learning_rate
  return _harness.build_cljax_step(
      cljax_model(num_classes, dtype), frontend, num_classes, optimizer,
      images, labels, seed, devices=devices)


def build_torch(images: np.ndarray, labels: np.ndarray, num_classes: int,
                device, autocast: bool, learning_rate: float, seed: int,
                channels_last: bool = False):
  """The PyTorch eager step on the same batch; returns ``(step, model)``."""
  torch.manual_seed(seed)
  memory_format = (torch.channels_last if channels_last
                   else torch.contiguous_format)
  model = torch_model(num_classes).to(device, memory_format=memory_format)
  model.train()
  optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate,
                              momentum=MOMENTUM)
  x = torch.from_numpy(images).to(device)
  y = torch.from_numpy(labels).long().to(device)

  def run():
    # The same input work as cljax's "rgb" front end, inside the step.
    inputs = (x.permute(0, 3, 1, 2).float() / 255.0).contiguous(
        memory_format=memory_format)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
      logits = model(inputs)
    loss = torch.nn.functional.cross_entropy(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()

  return run, model


def check_counts(jax_params, torch_module, num_classes: int) -> int:
  """Both sides' trainable-parameter counts; stops the run if they differ."""
  jax_count = torch_models.count_jax_params(jax_params)
  torch_count = torch_models.count_torch_params(torch_module)
  if jax_count != torch_count:
    raise SystemExit(
        f"resnet50: cljax has {jax_count:,} trainable parameters but "
        f"torchvision has {torch_count:,}; the models differ, fix "
        "cljax/models/resnet.py (or the --num_classes both use) before "
        "timing them.")
  if jax_count != expected_params(num_classes):
    raise SystemExit(
        f"resnet50: {jax_count:,} parameters on both sides, but the standard "
        f"ResNet-50 with {num_classes} classes has "
        f"{expected_params(num_classes):,}.")
  return jax_count


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--device", default="auto",
                      choices=("auto", "cpu", "gpu"))
  parser.add_argument("--batch", type=int, default=None,
                      help="images per step (default 8 on CPU, 128 on GPU)")
  parser.add_argument("--image_size", type=int, default=224)
  parser.add_argument("--num_classes", type=int, default=2)
  parser.add_argument("--learning_rate", type=float, default=0.01)
  parser.add_argument("--steps", type=int, default=2,
                      help="steps per timed round and side")
  parser.add_argument("--repeats", type=int, default=7,
                      help="timed rounds (medians are over these)")
  parser.add_argument("--warmup", type=int, default=2)
  parser.add_argument("--dtype", default="float32",
                      choices=("float32", "bfloat16"))
  parser.add_argument("--channels_last", action="store_true",
                      help="PyTorch model and input in channels_last layout")
  parser.add_argument("--torch_threads", type=int, default=None,
                      help="PyTorch intra-op threads (default: all cores, "
                      "as XLA uses)")
  parser.add_argument("--peak_flops", type=float, default=989e12,
                      help="accelerator peak FLOP/s for the utilisation "
                      "share (default: H100 SXM dense bf16)")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  if args.num_classes < 2:
    raise SystemExit("--num_classes must be >= 2 (labels alternate 0/1).")

  backend = jax.default_backend()
  use_gpu = (args.device == "gpu"
             or (args.device == "auto" and backend == "gpu"))
  if use_gpu:
    if backend != "gpu":
      raise SystemExit(f"--device=gpu: JAX's default backend is {backend}; "
                       "install the CUDA build of jax (launch/setup.sh does "
                       "on a GPU machine).")
    if not torch.cuda.is_available():
      raise SystemExit("--device=gpu: PyTorch sees no CUDA device; install "
                       "the CUDA build of torch and torchvision of the "
                       "versions in benchmarks/requirements-torch.txt.")
    devices = jax.devices("gpu")[:1]
    device = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = True  # fixed shapes: pick the best algo
    device_name = devices[0].device_kind
  else:
    devices = jax.devices("cpu")
    device = torch.device("cpu")
    device_name = f"cpu x{os.cpu_count()}"
    if args.dtype == "bfloat16":
      print("note: --dtype=bfloat16 on CPU (both sides emulate bf16 "
            "convolutions slowly; meant for a GPU).")
  torch.set_num_threads(args.torch_threads or os.cpu_count() or 1)
  batch = args.batch or (128 if use_gpu else 8)
  print(f"jax {jax.__version__} on {devices}; torch {torch.__version__}, "
        f"torchvision {torchvision.__version__} on {device}, "
        f"torch.get_num_threads()={torch.get_num_threads()}; batch {batch} x "
        f"{args.image_size} x {args.image_size} x 3, {args.num_classes} "
        f"classes, {args.dtype}; steps {args.steps} x repeats "
        f"{args.repeats}, warm-up {args.warmup}", flush=True)

  images, labels = random_batch(batch, args.image_size, args.seed)
  start = time.perf_counter()
  with jax.default_device(devices[0]):
    jax_step, jax_params, flops, jax_loss = build_cljax(
        images, labels, args.num_classes, args.dtype, args.learning_rate,
        args.seed, devices)
  print(f"cljax step compiled and run once in "
        f"{time.perf_counter() - start:.0f} s", flush=True)
  torch_step, torch_module = build_torch(
      images, labels, args.num_classes, device, args.dtype == "bfloat16",
      args.learning_rate, args.seed, args.channels_last)
  count = check_counts(jax_params, torch_module, args.num_classes)
  print(f"resnet50: {count:,} trainable parameters on both sides "
        f"({args.num_classes} classes); cljax loss: {jax_loss}; PyTorch "
        "loss: softmax cross-entropy", flush=True)

  medians, ratios = _harness.measure(
      {"cljax": (jax_step, jax.block_until_ready),
       "torch": (torch_step, _harness.torch_sync(torch, device))},
      steps=args.steps, repeats=args.repeats, warmup=args.warmup,
      label="resnet50")

  header = (f"{'model':9s} {'device':18s} {'dtype':9s} {'batch':>5s} "
            f"{'size':>4s} {'cljax st/s':>10s} {'torch st/s':>10s} "
            f"{'cljax img/s':>11s} {'torch img/s':>11s} {'cljax/torch':>11s}")
  print()
  print(header)
  print("-" * len(header))
  print(f"{'resnet50':9s} {device_name[:18]:18s} {args.dtype:9s} {batch:5d} "
        f"{args.image_size:4d} {medians['cljax']:10.3f} "
        f"{medians['torch']:10.3f} {batch * medians['cljax']:11.1f} "
        f"{batch * medians['torch']:11.1f} {ratios['torch']:10.2f}x")
  print()
  if flops is None:
    print(f"cljax step FLOPs: cost analysis unavailable on {backend}")
  else:
    achieved = flops * medians["cljax"]
    line = (f"cljax step: {flops / 1e9:.1f} GFLOP/step (XLA cost analysis), "
            f"achieved {achieved / 1e9:.1f} GFLOP/s")
    if use_gpu:
      line += (f" = {100 * achieved / args.peak_flops:.1f} % of the peak "
               f"{args.peak_flops / 1e12:.0f} TFLOP/s (--peak_flops)")
    print(line)


if __name__ == "__main__":
  main()
