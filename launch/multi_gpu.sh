#!/usr/bin/env bash
# Trains on every GPU of this host, data parallel: one process drives all of
# them, the batch is split over a 1-D `data` mesh, the state is replicated
# and XLA all-reduces the gradients (no pmap, no process per GPU).
#
#   bash launch/multi_gpu.sh --config=configs/rwm_audio.py:gpu --workdir=runs/rwm-gpu
#   CUDA_VISIBLE_DEVICES=0,1 bash launch/multi_gpu.sh --config=configs/finetune_audio.py:small
#
# Arguments go to `python -m cljax.main`. config.data.batch_size and
# config.data.eval_batch_size are global batches: they must be multiples of
# the GPU count (the run refuses others, naming the field). Run
# launch/setup.sh on this machine first: it installs the CUDA build of jax
# when nvidia-smi works.
#
# XLA flags set here (override by exporting XLA_FLAGS yourself):
#   --xla_gpu_enable_latency_hiding_scheduler=true
#       lets XLA schedule the gradient all-reduce so it overlaps the rest of
#       the backward pass instead of waiting for it (JAX's GPU performance
#       tips; the NVIDIA JAX containers set it by default).
# Memory: XLA_PYTHON_CLIENT_MEM_FRACTION (default 0.75 of each GPU) is left
# as is; raise it (e.g. 0.9) for big backbones or batches.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${CLJAX_PYTHON:-.venv/bin/python}"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi >/dev/null 2>&1; then
  echo "error: nvidia-smi is missing or fails: no usable NVIDIA GPU on this" \
       "host. Check the driver, or use launch/run.sh to run on the CPU." >&2
  exit 2
fi
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader

if [[ "${XLA_FLAGS:-}" != *xla_gpu_enable_latency_hiding_scheduler* ]]; then
  export XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_enable_latency_hiding_scheduler=true"
fi
echo "XLA_FLAGS=$XLA_FLAGS"

"$PYTHON" - <<'PY'
import sys
import jax
gpus = [d for d in jax.devices() if d.platform == "gpu"]
print(f"jax {jax.__version__}: {len(gpus)} GPU device(s): {gpus}", flush=True)
if not gpus:
  sys.exit("error: jax sees no GPU (it has the CPU build): run "
           "launch/setup.sh on this machine to install jax[cuda].")
PY
exec "$PYTHON" -m cljax.main "$@"
