#!/usr/bin/env bash
# Sets up cljax if needed, then runs the whole test suite on the CPU.
#
#   bash launch/test.sh                 # everything, one worker per core
#   bash launch/test.sh tests/metrics   # extra arguments go to pytest
#   bash launch/test.sh -n 0            # in one process (pdb, -x, -s)
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
# Tests are CPU-only by design (CI has no accelerator), and deterministic.
export JAX_PLATFORMS=cpu
export CUDA_VISIBLE_DEVICES=""
export WANDB_MODE=offline WANDB_SILENT=true
# pytest-xdist: one worker per core, each test file on one worker (its
# module-scoped fixtures, e.g. the cue test's fits, are computed once). Most
# of a test's time is XLA compilation or a subprocess starting up, which
# two workers overlap on two cores.
exec .venv/bin/python -m pytest -n "${CLJAX_TEST_WORKERS:-auto}" \
    --dist loadfile "$@"
