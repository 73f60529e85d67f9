#!/usr/bin/env bash
# Sets up cljax if needed, then runs the whole test suite on the CPU.
#
#   bash launch/test.sh                 # everything
#   bash launch/test.sh tests/metrics   # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
# Tests are CPU-only by design (CI has no accelerator), and deterministic.
export JAX_PLATFORMS=cpu
export CUDA_VISIBLE_DEVICES=""
export WANDB_MODE=offline WANDB_SILENT=true
exec .venv/bin/python -m pytest "$@"
