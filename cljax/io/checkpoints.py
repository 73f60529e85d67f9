"""Checkpoints with orbax: the TrainState plus the loop's progress record.

Two managers under ``<workdir>/checkpoints``:

* ``latest/<global step>``: saved every ``checkpoint_every`` steps and at
  every task end; only the newest few are kept. Resuming starts from here.
* ``tasks/<task index>``: the state after each task (after its ``end_task``),
  all kept, for ``cljax.evaluate --task`` and warm starts.

Each checkpoint holds two items: ``state`` (the TrainState pytree) and
``progress`` (JSON: task, step within the task, data iterator state, result
matrix so far). Orbax writes to a temporary folder and renames it, so a
killed process never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import orbax.checkpoint as ocp


def _manager(directory: str, max_to_keep: int | None) -> ocp.CheckpointManager:
  options = ocp.CheckpointManagerOptions(
      max_to_keep=max_to_keep, create=True,
      # Saves overlap with training; wait() joins them before exit.
      enable_async_checkpointing=True,
      # With several processes the two managers' background saves meet at
      # cross-process barriers named after the manager: without distinct
      # prefixes a task-end save of both clashes ("Barrier ... is already
      # ongoing").
      multiprocessing_options=ocp.options.MultiprocessingOptions(
          barrier_sync_key_prefix=os.path.basename(directory)))
  return ocp.CheckpointManager(os.path.abspath(directory), options=options,
                               item_names=("state", "progress"))


class Checkpointer:
  """Saves and restores the run's state; see the module docstring."""

  def __init__(self, workdir: str, *, keep_latest: int = 2):
    self.root = os.path.join(workdir, "checkpoints")
    self.latest = _manager(os.path.join(self.root, "latest"), keep_latest)
    self.tasks = _manager(os.path.join(self.root, "tasks"), None)

  def save(self, state: Any, progress: dict[str, Any], *,
           task_end: int | None = None) -> str:
    """Saves at ``progress['step']``; at the end of a task also under the
    index ``task_end``. Returns the path of the step checkpoint."""
    # A frozen copy: the save finishes in the background while the loop
    # keeps updating its progress dict (a live dict once gave a checkpoint
    # of step 100 the progress record of step 101).
    progress = json.loads(json.dumps(progress))
    args = ocp.args.Composite(state=ocp.args.StandardSave(state),
                              progress=ocp.args.JsonSave(progress))
    step = int(progress["step"])
    if step not in self.latest.all_steps():
      self.latest.save(step, args=args, force=True)
    if task_end is not None:
      self.tasks.save(int(task_end), args=args, force=True)
    return self.path_of(step)

  def path_of(self, step: int) -> str:
    return os.path.join(self.latest.directory, str(step))

  def latest_step(self) -> int | None:
    return self.latest.latest_step()

  def restore(self, abstract_state: Any, *, step: int | None = None,
              task: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Restores (state, progress): the newest, a given step or a task end."""
    manager, index = self.latest, step
    if task is not None:
      manager, index = self.tasks, task
      if task not in self.tasks.all_steps():
        raise FileNotFoundError(
            f"No checkpoint for the end of task {task} in {self.tasks.directory}"
            f"; saved task ends: {sorted(self.tasks.all_steps())}.")
    elif index is None:
      index = self.latest.latest_step()
    if index is None:
      raise FileNotFoundError(f"No checkpoint in {self.latest.directory}.")
    if task is None and index not in self.latest.all_steps():
      raise FileNotFoundError(
          f"No checkpoint at step {index} in {self.latest.directory}; saved "
          f"steps: {sorted(self.latest.all_steps())}.")
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, abstract_state)
    restored = manager.restore(index, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(target),
        progress=ocp.args.JsonRestore()))
    return restored.state, restored.progress

  def wait(self) -> None:
    self.latest.wait_until_finished()
    self.tasks.wait_until_finished()

  def close(self) -> None:
    self.latest.close()
    self.tasks.close()


def restore_variables(path: str) -> dict[str, Any]:
  """Loads ``params`` (and ``batch_stats``) from a run folder or checkpoint.

  ``path`` is a run's workdir (its newest checkpoint is used), a
  ``checkpoints/latest`` or ``checkpoints/tasks`` folder (newest), or one
  checkpoint folder. Used by ``config.init_from``.
  """
  path = os.path.abspath(path)
  candidates = [os.path.join(path, "checkpoints", "latest"), path]
  for candidate in candidates:
    if os.path.isdir(os.path.join(candidate, "state")):
      step_dir = candidate
      break
    if os.path.isdir(candidate):
      steps = [int(d) for d in os.listdir(candidate) if d.isdigit()]
      if steps:
        step_dir = os.path.join(candidate, str(max(steps)))
        break
  else:
    raise FileNotFoundError(
        f"config.init_from={path!r}: no checkpoint found. Give a run's "
        "workdir, its checkpoints/latest or checkpoints/tasks folder, or one "
        "checkpoint folder.")
  with ocp.StandardCheckpointer() as checkpointer:
    state = checkpointer.restore(os.path.join(step_dir, "state"))
  return {"params": state["params"], "batch_stats": state.get("batch_stats", {})}
