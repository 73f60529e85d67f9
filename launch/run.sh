#!/usr/bin/env bash
# Sets up cljax if needed, then runs the main job; arguments pass through.
#
#   bash launch/run.sh                                  # the default experiment
#   bash launch/run.sh --config=configs/joint_audio.py:small --workdir=runs/j
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/setup.sh
DEFAULT_CONFIG=configs/finetune_audio.py
[ -f configs/rwm_audio.py ] && DEFAULT_CONFIG=configs/rwm_audio.py
has_config=0
for arg in "$@"; do
  case "$arg" in --config=*|--config) has_config=1 ;; esac
done
if [ "$has_config" = 1 ]; then
  exec .venv/bin/python -m cljax.main "$@"
else
  exec .venv/bin/python -m cljax.main --config="$DEFAULT_CONFIG" "$@"
fi
