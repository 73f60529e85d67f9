#!/usr/bin/env bash
# Runs one process of a multi-host run: start it on every host, each with
# the same arguments and its own HOST_ID. Each process drives all of its
# host's devices; the `data` mesh spans every device of every host.
#
#   # on host 0 (10.0.0.1), host 1, ... host NUM_HOSTS-1:
#   COORDINATOR=10.0.0.1:12355 NUM_HOSTS=2 HOST_ID=0 \
#     bash launch/multi_host.sh --config=configs/rwm_audio.py:gpu --workdir=/shared/runs/rwm
#   COORDINATOR=10.0.0.1:12355 NUM_HOSTS=2 HOST_ID=1 \
#     bash launch/multi_host.sh --config=configs/rwm_audio.py:gpu --workdir=/shared/runs/rwm
#
#   COORDINATOR  host:port of host 0, reachable from every host (a free port).
#   NUM_HOSTS    number of processes (hosts) in the run.
#   HOST_ID      this host's index, 0 .. NUM_HOSTS-1; host 0 writes results,
#                plots and logs.
#
# --workdir must be a folder every host sees at the same path (NFS, a
# shared disk): orbax writes the checkpoints there from all hosts together.
# Under SLURM use launch/slurm.sbatch instead (no variables to set); on a
# Cloud TPU pod run `python -m cljax.main --distributed ...` on every
# worker (gcloud compute tpus tpu-vm ssh --worker=all): jax finds the rest.
# Batch sizes are global: multiples of the total device count.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${CLJAX_PYTHON:-.venv/bin/python}"

missing=()
for name in COORDINATOR NUM_HOSTS HOST_ID; do
  [ -n "${!name:-}" ] || missing+=("$name")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "error: launch/multi_host.sh needs ${missing[*]} set: run on every" \
       "host COORDINATOR=<host0>:<port> NUM_HOSTS=<N> HOST_ID=<0..N-1>" \
       "bash launch/multi_host.sh --config=... --workdir=<shared folder>" >&2
  exit 2
fi
case "$COORDINATOR" in
  *:[0-9]*) ;;
  *) echo "error: COORDINATOR=$COORDINATOR must be host:port (e.g. 10.0.0.1:12355)." >&2
     exit 2 ;;
esac
if ! [[ "$NUM_HOSTS" =~ ^[0-9]+$ && "$HOST_ID" =~ ^[0-9]+$ ]] \
    || [ "$HOST_ID" -ge "$NUM_HOSTS" ]; then
  echo "error: NUM_HOSTS=$NUM_HOSTS and HOST_ID=$HOST_ID must be integers" \
       "with 0 <= HOST_ID < NUM_HOSTS." >&2
  exit 2
fi
has_workdir=0
for arg in "$@"; do
  case "$arg" in --workdir=*|--workdir) has_workdir=1 ;; esac
done
if [ "$has_workdir" = 0 ]; then
  echo "error: pass --workdir=<a folder every host sees at the same path>." >&2
  exit 2
fi

echo "[multi_host] host $HOST_ID of $NUM_HOSTS, coordinator $COORDINATOR"
export JAX_COORDINATOR_ADDRESS="$COORDINATOR"
export JAX_NUM_PROCESSES="$NUM_HOSTS"
export JAX_PROCESS_ID="$HOST_ID"
exec "$PYTHON" -m cljax.main --distributed "$@"
