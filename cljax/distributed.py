"""Multi-process (multi-host) runs: start-up, who writes, who reads what.

JAX runs one Python process per host (or per GPU): every process executes
the same program, holds the same replicated state, and feeds its own rows
of every global batch. ``initialize`` joins the processes with
``jax.distributed.initialize()`` before anything touches a device; after it
``jax.devices()`` lists the devices of every process, so the loop's 1-D
``data`` mesh (``step.make_mesh``) spans all hosts and XLA's gradient
all-reduce crosses them. Nothing else in the loop changes:

* training: process ``p`` builds only rows ``process_slice(B)`` of global
  batch ``b`` (``loader.train_dataset(rows=...)``): the same epoch
  permutation and crops as one process, each process reading its share;
* evaluation: each process feeds its rows of every eval batch, the eval step
  returns replicated scores, so every process computes the same metrics;
* output: only the main process (index 0) writes results, plots, JSONL /
  TensorBoard / wandb logs and progress bars; orbax checkpointing is
  called by every process (orbax coordinates the write).

Multi-host needs a folder every process sees at the same path (NFS, GCS
through orbax) for ``--workdir``.

One process is the default; a run becomes multi-process when
``cljax.main --distributed`` asks for it, or when the environment says so
(``requested_by_environment``): ``JAX_COORDINATOR_ADDRESS`` (with
``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``), or a SLURM, Open MPI or
TPU-pod job of more than one process, which ``jax.distributed`` detects
itself. See ``launch/multi_host.sh`` and ``launch/slurm.sbatch``.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from absl import logging
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from cljax.registry import ConfigError

DATA_AXIS = "data"  # step.DATA_AXIS; not imported, to keep this module light.

COORDINATOR_ENV = "JAX_COORDINATOR_ADDRESS"  # Read by jax itself too.
NUM_PROCESSES_ENV = "JAX_NUM_PROCESSES"
PROCESS_ID_ENV = "JAX_PROCESS_ID"


def _env_int(environ: Mapping[str, str], name: str) -> int | None:
  value = environ.get(name)
  if value is None or value == "":
    return None
  try:
    return int(value)
  except ValueError:
    raise ConfigError(f"Environment variable {name}={value!r} is not an "
                      "integer; set it to the process count / index, or "
                      "unset it.") from None


def requested_by_environment(environ: Mapping[str, str] | None = None
                             ) -> str | None:
  """Why the environment asks for a multi-process run, or None.

  Only environments of more than one process count: a one-task SLURM job or
  a single TPU VM (Colab) stays a plain single-process run.
  """
  environ = os.environ if environ is None else environ
  if environ.get(COORDINATOR_ENV):
    return f"{COORDINATOR_ENV} is set"
  # The variables jax's SlurmCluster needs, plus more than one task.
  slurm = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS",
           "SLURM_PROCID", "SLURM_LOCALID")
  if all(name in environ for name in slurm) and (
      _env_int(environ, "SLURM_NTASKS") or 1) > 1:
    return f"a SLURM step of {environ['SLURM_NTASKS']} tasks"
  if "OMPI_MCA_orte_hnp_uri" in environ and (
      _env_int(environ, "OMPI_COMM_WORLD_SIZE") or 1) > 1:
    return f"an Open MPI job of {environ['OMPI_COMM_WORLD_SIZE']} processes"
  hosts = environ.get("TPU_WORKER_HOSTNAMES", "")
  if len([h for h in hosts.split(",") if h.strip()]) > 1:
    return "a multi-host TPU slice (TPU_WORKER_HOSTNAMES)"
  if environ.get("MEGASCALE_COORDINATOR_ADDRESS"):
    return "a multi-slice TPU job (MEGASCALE_COORDINATOR_ADDRESS)"
  return None


def initialize(requested: bool = False, *,
               coordinator_address: str | None = None,
               num_processes: int | None = None,
               process_id: int | None = None,
               environ: Mapping[str, str] | None = None,
               initialization_timeout: int = 300) -> bool:
  """Joins the other processes when asked (flag) or told (environment).

  Call once, before any JAX computation. Arguments left None come from
  ``JAX_COORDINATOR_ADDRESS`` / ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``,
  and what is still missing from the cluster jax detects (SLURM, Open MPI,
  Cloud TPU).

  Args:
    requested: ``cljax.main --distributed``: initialise even when the
      environment does not ask for it (e.g. a GCE TPU pod, which jax
      detects from the VM's metadata).
    coordinator_address: ``host:port`` of process 0.
    num_processes: number of processes in the run.
    process_id: this process's index in ``[0, num_processes)``.
    environ: the environment (tests pass their own); default ``os.environ``.
    initialization_timeout: seconds to wait for every process to join.

  Returns:
    True if the run is multi-process (now or already initialised).

  Raises:
    ConfigError: the settings are incomplete or inconsistent; the message
      names the flags and variables to set.
  """
  environ = os.environ if environ is None else environ
  if jax.distributed.is_initialized():
    return True
  if requested:
    reason = "--distributed"
  elif any(value is not None for value in (coordinator_address,
                                           num_processes, process_id)):
    reason = "--coordinator_address/--num_processes/--process_id"
  else:
    reason = requested_by_environment(environ)
  if reason is None:
    return False
  coordinator_address = coordinator_address or environ.get(COORDINATOR_ENV)
  if num_processes is None:
    num_processes = _env_int(environ, NUM_PROCESSES_ENV)
  if process_id is None:
    process_id = _env_int(environ, PROCESS_ID_ENV)
  if num_processes is not None and process_id is not None and not (
      0 <= process_id < num_processes):
    raise ConfigError(
        f"process id {process_id} is outside [0, {num_processes}) "
        f"(--process_id / {PROCESS_ID_ENV}, --num_processes / "
        f"{NUM_PROCESSES_ENV}): number the processes 0 .. N-1.")
  logging.info("Multi-process run (%s): coordinator %s, %s processes, this "
               "is process %s.", reason, coordinator_address or "auto",
               num_processes if num_processes is not None else "auto",
               process_id if process_id is not None else "auto")
  # All three given: no cluster detection, which would otherwise (inside a
  # SLURM allocation) limit this process to one GPU; it drives all its own.
  explicit = None not in (coordinator_address, num_processes, process_id)
  try:
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes,
        process_id=process_id, initialization_timeout=initialization_timeout,
        cluster_detection_method="deactivate" if explicit else None)
  except ValueError as error:
    # jax found no cluster to fill in what is missing.
    raise ConfigError(
        f"Cannot start the multi-process run ({reason}): "
        f"{str(error).rstrip('.')}. Outside "
        "SLURM, Open MPI and Cloud TPU, give every process "
        f"--coordinator_address=HOST:PORT (or {COORDINATOR_ENV}), "
        f"--num_processes=N ({NUM_PROCESSES_ENV}) and --process_id=I "
        f"({PROCESS_ID_ENV}); see launch/multi_host.sh.") from None
  return True


def is_main_process() -> bool:
  """True on the process that writes results, logs and plots (index 0)."""
  return jax.process_index() == 0


def _data_mesh(mesh: Mesh | None) -> Mesh:
  return mesh if mesh is not None else Mesh(np.asarray(jax.devices()),
                                            (DATA_AXIS,))


def process_slice(global_batch: int, mesh: Mesh | None = None) -> slice:
  """The rows of a global batch of ``global_batch`` this process feeds.

  Read off the mesh's batch sharding, so they are exactly the rows
  ``jax.make_array_from_process_local_data`` (``step.put_batch``) expects
  from this process: ``[p * B / P, (p + 1) * B / P)`` for process ``p`` of
  ``P`` with the default mesh over ``jax.devices()``, whose devices are
  ordered by process.

  Raises:
    ValueError: the batch does not split evenly over the devices, or this
      process's devices hold rows that are not contiguous (a mesh whose
      devices interleave processes).
  """
  mesh = _data_mesh(mesh)
  devices = mesh.devices.size
  if global_batch % devices:
    raise ValueError(
        f"A global batch of {global_batch} rows does not split over the "
        f"{devices} devices of the mesh: make config.data.batch_size and "
        "config.data.eval_batch_size multiples of the device count.")
  sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
  indices = sharding.addressable_devices_indices_map((global_batch,))
  spans = sorted({(index[0].start or 0,
                   global_batch if index[0].stop is None else index[0].stop)
                  for index in indices.values()})
  start, stop = spans[0][0], spans[-1][1]
  covered = sum(b - a for a, b in spans)
  if covered != stop - start:
    raise ValueError(
        f"Process {jax.process_index()} holds rows {spans} of the batch, "
        "which are not contiguous: order the mesh's devices by process "
        "(step.make_mesh over jax.devices() does).")
  return slice(start, stop)


def local_rows(batch: Mapping[str, Any], mesh: Mesh | None = None
               ) -> dict[str, Any]:
  """This process's rows of a global host batch (arrays and lists alike).

  With one process the batch is returned as is (a new dict, same values).
  """
  if jax.process_count() == 1:
    return dict(batch)
  sizes = {len(value) for value in batch.values()
           if isinstance(value, (np.ndarray, list))}
  if len(sizes) != 1:
    raise ValueError(f"The batch's entries have different lengths {sizes}.")
  rows = process_slice(sizes.pop(), mesh)
  return {key: value[rows] if isinstance(value, (np.ndarray, list)) else value
          for key, value in batch.items()}


def replicate(tree: Any, mesh: Mesh) -> Any:
  """``tree`` on every device of ``mesh``, replicated (the train state).

  With several processes the leaves go through host memory first: in jax
  0.10.2, ``device_put`` of an array already on a local device onto a
  sharding spanning other processes' devices returns an array whose
  ``addressable_shards`` raise ("input arrays must have one shard each"),
  which breaks orbax's save; from numpy it builds a sound global array.
  Every process must pass the same values (they do: same seed, same steps).
  """
  sharding = NamedSharding(mesh, PartitionSpec())
  if jax.process_count() > 1:
    tree = jax.device_get(tree)
  return jax.device_put(tree, sharding)


def on_mesh(tree: Any, mesh: Mesh) -> Any:
  """``tree`` with every leaf replicated over ``mesh`` (multi-process only).

  A strategy's ``start_task``/``end_task`` may put new arrays in the state
  outside any jitted step (``jnp.ones([])`` for a flag): they live on one
  local device. One process's jit moves them; with several processes orbax
  cannot save them ("Cannot serialize host local jax.Array"), so they are
  replicated here, through the host. Leaves already replicated on the mesh
  are kept as they are, and with one process the tree is returned as is.
  """
  if jax.process_count() == 1:
    return tree
  sharding = NamedSharding(mesh, PartitionSpec())

  def fix(leaf):
    if isinstance(leaf, jax.Array) and leaf.sharding.is_equivalent_to(
        sharding, leaf.ndim):
      return leaf
    return jax.device_put(np.asarray(jax.device_get(leaf)), sharding)

  return jax.tree.map(fix, tree)


def describe(mesh: Mesh) -> str:
  """One line for the log: this process, the process count and the mesh."""
  local = jax.local_devices()
  return (f"process {jax.process_index()} of {jax.process_count()}; mesh "
          f"{dict(mesh.shape)} over {mesh.devices.size} devices "
          f"{list(mesh.devices.flat)}; local devices {local}")


def sync(name: str) -> None:
  """Waits until every process reaches the barrier ``name`` (no-op alone)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    multihost_utils.sync_global_devices(name)


class NullWriter:
  """Stands in for ``MetricWriter`` on processes other than the main one."""

  def write_train(self, record: Mapping[str, Any]) -> None:
    del record

  def write_eval(self, record: Mapping[str, Any]) -> None:
    del record

  def truncate_after(self, step: int) -> tuple[int, int]:
    del step
    return 0, 0

  def close(self) -> None:
    pass


def host_array(x: Any) -> np.ndarray:
  """A (possibly data-sharded, multi-process) array as one numpy array.

  With several processes a sharded array's rows live on other hosts, so
  ``np.asarray`` fails; every process gets all rows through
  ``multihost_utils.process_allgather``.
  """
  if jax.process_count() > 1 and isinstance(x, jax.Array) and not (
      x.is_fully_addressable):
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))
  return np.asarray(x)
