"""The continual loop: for each task, fit, consolidate, evaluate all, record.

Read top to bottom::

  build stream, front end, model, strategy, optimizer, steps
  restore the newest checkpoint of this workdir, if any
  evaluate the untrained model on every task (forward-transfer baseline)
  for each task t of the stream:
    strategy.start_task
    fit: the jitted train step over t's training data (per the strategy's
         data policy), metrics fetched every log_every steps, a checkpoint
         every checkpoint_every steps
    strategy.end_task
    evaluate on the test split of every task -> row t of the result matrix
    write results, plots; checkpoint
  print the summary table and where everything is

Everything that decides the numbers (data order, crops, dropout keys) is a
function of the seed and the step, so a resumed run reproduces the
uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import time
from typing import Any, Iterator, Mapping, Sequence

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cljax import distributed
from cljax import metrics as metrics_lib
from cljax import registry
from cljax import replay
from cljax.data import codec_augment
from cljax.data import grouped
from cljax.data import loader
from cljax.data import paths as data_paths
from cljax.data.streams import make_stream
from cljax.data.stream import Stream, Task
from cljax.features import make_frontend
from cljax.features.augment import Augment, make_augment
from cljax.io import plots
from cljax.io.checkpoints import Checkpointer, restore_variables
from cljax.io.results import ResultMatrix, atomic_write_text
from cljax.io.writers import MetricWriter, read_jsonl
from cljax.models import make_model
from cljax.optim import current_learning_rate, make_tx, reset_base_optimizer
from cljax.state import TrainState, create_train_state
from cljax import step as step_lib
from cljax.strategies import StrategyContext, TaskContext, make_strategy


class NonFiniteLossError(RuntimeError):
  """The loss became NaN or Inf; the message names where and what to do."""


class Interrupted(Exception):
  """SIGINT/SIGTERM arrived; the state was saved."""

  def __init__(self, signum: int, message: str):
    super().__init__(message)
    self.signum = signum


@dataclasses.dataclass
class Experiment:
  """Everything built from the config, before any training."""

  config: ml_collections.ConfigDict
  stream: Stream
  mesh: jax.sharding.Mesh
  frontend: Any
  model: Any
  strategy: Any
  tx: Any
  steps_per_task: list[int]
  crop_length: int
  eval_length: int
  augment: Augment = Augment()  # waveform augmentation (config.augment)

  @property
  def metric_names(self) -> list[str]:
    return list(self.config.eval.metrics)

  def train_sources(self, task_id: int) -> list[Any]:
    return train_sources(self.stream, self.strategy, task_id,
                         self.config.data)


def train_sources(stream: Stream, strategy, task_id: int,
                  data: ml_collections.ConfigDict | None = None) -> list[Any]:
  """The training splits task ``task_id`` fits on, per the data policy.

  With ``data.codec_augment`` / ``data.speed_perturb`` set, each split is
  expanded with its codec and speed copies (built once, cached on disk).
  """
  sources = [stream.tasks[i].split("train")
             for i in strategy.train_tasks(task_id)]
  if data is None or not (data.codec_augment or data.speed_perturb):
    return sources
  cache_dir = data.augment_cache_dir or os.path.join(data_paths.data_dir(),
                                                     "codec_augment")
  augmented = []
  for source in sources:
    source = codec_augment.CodecAugmentedSource(
        source, stream.sample_rate, codecs=tuple(data.codec_augment),
        speed_factors=tuple(data.speed_perturb), cache_dir=cache_dir)
    source.build()  # Once, with its own progress bar, before training.
    augmented.append(source)
  return augmented


def build_experiment(config: ml_collections.ConfigDict) -> Experiment:
  """Builds every component; config errors surface here, before compiling."""
  mesh = step_lib.make_mesh()
  stream = make_stream(config.data.stream)
  if config.data.groups:
    stream = grouped.group_tasks(stream, grouped.load_groups(
        config.data.groups, stream))
  if stream.synthetic:
    logging.warning(
        "\n%s\n  SYNTHETIC DATA: stream %r is procedurally generated audio, "
        "not speech.\n  Numbers from it test the machinery, not a detector."
        "\n%s", "!" * 72, stream.name, "!" * 72)
  frontend = make_frontend(config.frontend, stream.sample_rate)
  augment = make_augment(config.augment, stream.sample_rate)
  model = make_model(config.model, stream.num_classes)
  strategy = make_strategy(config.strategy, StrategyContext(
      model=model, num_classes=stream.num_classes, num_tasks=len(stream),
      frontend=frontend))
  batch_size = config.data.batch_size
  steps_per_task = []
  for task_id in range(len(stream)):
    if config.train.steps_per_task:
      steps_per_task.append(int(config.train.steps_per_task))
    else:
      steps_per_task.append(loader.num_steps_for(
          train_sources(stream, strategy, task_id, config.data), batch_size,
          config.train.epochs_per_task))
  tx = make_tx(config.optimizer, strategy.tx, sum(steps_per_task))
  return Experiment(
      config=config, stream=stream, mesh=mesh, frontend=frontend, model=model,
      strategy=strategy, tx=tx, steps_per_task=steps_per_task,
      crop_length=int(round(config.data.crop_seconds * stream.sample_rate)),
      eval_length=int(round(config.data.eval_seconds * stream.sample_rate)),
      augment=augment)


def initial_state(exp: Experiment) -> TrainState:
  """A fresh (or ``config.init_from`` warm-started) state on the mesh."""
  config = exp.config
  init_rng, dropout_rng, state_rng = jax.random.split(
      jax.random.PRNGKey(config.seed), 3)
  dummy = jnp.zeros((1, exp.crop_length), jnp.float32)
  variables = exp.model.init({"params": init_rng, "dropout": dropout_rng},
                             exp.frontend(dummy), train=False)
  params = variables["params"]
  batch_stats = variables.get("batch_stats", {})
  if config.init_from:
    loaded = restore_variables(config.init_from)
    for name, fresh, saved in (("params", params, loaded["params"]),
                               ("batch_stats", batch_stats,
                                loaded["batch_stats"])):
      if jax.tree.structure(fresh) != jax.tree.structure(saved) or any(
          a.shape != b.shape for a, b in zip(jax.tree.leaves(fresh),
                                             jax.tree.leaves(saved))):
        raise registry.ConfigError(
            f"config.init_from={config.init_from!r}: its {name} do not match "
            "config.model (different architecture or number of classes).")
    params = jax.tree.map(jnp.asarray, loaded["params"])
    batch_stats = jax.tree.map(jnp.asarray, loaded["batch_stats"])
    logging.info("Initialised the model from %s.", config.init_from)
  variables = {"params": params}
  if batch_stats:
    variables["batch_stats"] = batch_stats
  strategy_state = (exp.strategy.init_state(variables)
                    if exp.strategy.init_state else {})
  buffer = (exp.strategy.init_buffer(train_example_spec(exp))
            if exp.strategy.init_buffer else {})
  state = create_train_state(params=params, batch_stats=batch_stats,
                             tx=exp.tx, strategy_state=strategy_state,
                             rng=state_rng, buffer=buffer)
  return distributed.replicate(state, exp.mesh)


def train_example_spec(exp: Experiment) -> dict[str, jax.ShapeDtypeStruct]:
  """Shape and dtype of one training example, as the train step sees it."""
  # Batches stay int16 (uint8) only when every clip is int16 (every image
  # uint8); anything else is float32 (loader._as_batch_dtype).
  dtypes = {np.asarray(task.split("train")[0]["audio"]).dtype
            for task in exp.stream.tasks}
  audio_dtype = (dtypes.pop() if len(dtypes) == 1
                 and next(iter(dtypes)) in (np.int16, np.uint8)
                 else np.float32)
  return {"audio": jax.ShapeDtypeStruct((exp.crop_length,), audio_dtype),
          "label": jax.ShapeDtypeStruct((), jnp.int32),
          "task": jax.ShapeDtypeStruct((), jnp.int32)}


def _host_eval_batches(exp: Experiment, task: Task, split: str
                       ) -> Iterator[dict[str, Any]]:
  """Fixed-shape host batches of a task's split, every record once."""
  return loader.eval_batches(task.split(split),
                             batch_size=exp.config.data.eval_batch_size,
                             window_length=exp.eval_length,
                             pad_mode=exp.config.data.pad_mode)


def evaluation_batches(exp: Experiment, split: str,
                       task_ids: Sequence[int]) -> Iterator[dict[str, Any]]:
  """Device batches of a split of some tasks, in a fixed order, with mask."""
  for task_id in task_ids:
    for batch in _host_eval_batches(exp, exp.stream.tasks[task_id], split):
      yield step_lib.put_batch(distributed.local_rows(batch, exp.mesh),
                               exp.mesh)


def task_context(exp: Experiment, task_id: int) -> TaskContext:
  """What the strategy's ``start_task``/``end_task`` see of task ``task_id``."""
  return TaskContext(
      task_id=task_id, task_name=exp.stream.tasks[task_id].name,
      num_tasks=len(exp.stream), model=exp.model, frontend=exp.frontend,
      batches=lambda split, ids: evaluation_batches(exp, split, ids))


def _scoring_batches(exp: Experiment, task: Task, split: str
                     ) -> Iterator[dict[str, Any]]:
  """Host batches for scoring: first windows, or every window (``full``)."""
  data = exp.config.data
  if data.eval_mode == "full":
    hop = int(round((data.eval_hop_seconds or data.eval_seconds)
                    * exp.stream.sample_rate))
    return loader.eval_windows(
        task.split(split),
        batch_size=data.eval_batch_size, window_length=exp.eval_length,
        hop_length=hop, pad_mode=data.pad_mode, split=split)
  return _host_eval_batches(exp, task, split)


def make_eval_step(exp: Experiment):
  """The jitted scoring step of ``exp`` (with its strategy's classifier)."""
  return step_lib.make_eval_step(model=exp.model, frontend=exp.frontend,
                                 mesh=exp.mesh, strategy=exp.strategy,
                                 augment=exp.augment.test)


def score_task(exp: Experiment, eval_step, state: TrainState, task_id: int,
               split: str, *, unseen: bool = False) -> dict[str, np.ndarray]:
  """Scores every utterance of a task's split: scores, labels, ids.

  ``unseen=True``: task ``task_id`` of ``exp.stream.unseen_tasks`` (test-only
  tasks) instead of the stream's. In ``config.data.eval_mode="full"`` an
  utterance's score is the mean of its windows' scores and its prediction
  their majority vote.
  """
  task = (exp.stream.unseen_tasks if unseen else exp.stream.tasks)[task_id]
  extras = ((state.strategy_state, state.buffer)
            if exp.strategy.eval_logits is not None else ())
  outputs, labels, masks, utt_ids, utt_index = [], [], [], [], []
  for batch in _scoring_batches(exp, task, split):
    # Each process feeds its rows; the step returns every row's scores.
    audio = step_lib.put_batch(distributed.local_rows(
        {"audio": batch["audio"]}, exp.mesh), exp.mesh)["audio"]
    # Fetched once, below.
    outputs.append(eval_step(state.variables, audio, extras))
    labels.append(batch["label"])
    masks.append(batch["mask"])
    utt_ids.extend(batch["utt_id"])
    if "utt_index" in batch:
      utt_index.append(batch["utt_index"])
  outputs = jax.device_get(outputs)
  mask = np.concatenate(masks)
  scores = np.concatenate([o["scores"] for o in outputs])
  predictions = np.concatenate([o["predictions"] for o in outputs])
  if not utt_index:
    return {"scores": scores[mask], "predictions": predictions[mask],
            "labels": np.concatenate(labels)[mask],
            "utt_ids": [u for u, m in zip(utt_ids, mask) if m]}
  index = np.concatenate(utt_index)
  count = len(task.split(split))
  # The first window of each utterance carries its label and id.
  first = np.flatnonzero(mask)[np.unique(index[mask], return_index=True)[1]]
  return {
      "scores": loader.pool_window_scores(scores, index, mask, count),
      "predictions": loader.pool_window_scores(predictions, index, mask,
                                               count, reduce="vote"),
      "labels": np.concatenate(labels)[first],
      "utt_ids": [utt_ids[i] for i in first],
  }


def evaluate_all(exp: Experiment, eval_step, state: TrainState, *,
                 unseen: bool = False
                 ) -> tuple[list[dict[str, float]], list[int]]:
  """Every task's evaluation metrics (one result-matrix row) and sizes.

  ``unseen=True``: the stream's test-only tasks instead, on their ``test``
  split.
  """
  row, sizes = [], []
  tasks = exp.stream.unseen_tasks if unseen else exp.stream.tasks
  split = "test" if unseen else exp.config.data.eval_split
  for task_id in range(len(tasks)):
    scored = score_task(exp, eval_step, state, task_id, split, unseen=unseen)
    values = metrics_lib.compute_metrics(
        exp.metric_names, scores=scored["scores"], labels=scored["labels"],
        predictions=scored["predictions"])
    row.append(values)
    sizes.append(int(len(scored["labels"])))
  return row, sizes


class _StopFlag:
  """Turns SIGINT/SIGTERM into a flag the loop checks between steps."""

  def __init__(self):
    self.signum = None
    self._previous = {}

  def __enter__(self):
    for signum in (signal.SIGINT, signal.SIGTERM):
      try:
        self._previous[signum] = signal.signal(signum, self._handle)
      except ValueError:  # Not the main thread (e.g. inside a test runner).
        pass
    return self

  def _handle(self, signum, frame):
    del frame
    if self.signum is not None:  # Second signal: stop now.
      raise KeyboardInterrupt
    self.signum = signum
    logging.warning("Received signal %d: saving a checkpoint, then exiting.",
                    signum)

  def __exit__(self, *exc):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


class _Progress:
  """A tqdm bar on a terminal; plain log lines every ~15 s otherwise."""

  def __init__(self, mode: str, total: int, initial: int, description: str):
    use_bar = mode == "bar" or (mode == "auto" and sys.stderr.isatty())
    self.mode = "bar" if use_bar else ("none" if mode == "none" else "log")
    self.total, self.done, self.description = total, initial, description
    self.started, self.last_line = time.time(), 0.0
    self.bar = None
    if self.mode == "bar":
      from tqdm.auto import tqdm
      self.bar = tqdm(total=total, initial=initial, desc=description,
                      unit="step", dynamic_ncols=True, leave=True)

  def update(self, steps: int, record: Mapping[str, Any]) -> None:
    self.done += steps
    if self.bar is not None:
      self.bar.set_postfix(loss=f"{record['loss']:.4f}",
                           acc=f"{record['accuracy']:.3f}", refresh=False)
      self.bar.update(steps)
    elif self.mode == "log" and (time.time() - self.last_line > 15
                                 or self.done >= self.total):
      self.last_line = time.time()
      rate = record.get("steps_per_sec", float("nan"))
      eta = (self.total - self.done) / rate if rate and rate > 0 else 0.0
      logging.info("%s: step %d/%d  loss %.4f  acc %.3f  %.1f steps/s  "
                   "ETA %.0f s", self.description, self.done, self.total,
                   record["loss"], record["accuracy"], rate, eta)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()


def _save_results(exp: Experiment, workdir: str, results: ResultMatrix) -> None:
  """results.json, the CSVs and (optionally) the plots, from the matrix."""
  if not distributed.is_main_process():  # Every process has the same matrix.
    return
  results_dir = os.path.join(workdir, "results")
  results.save(results_dir)
  if not exp.config.output.plots:
    return
  plots_dir = os.path.join(workdir, "plots")
  os.makedirs(plots_dir, exist_ok=True)
  for name in exp.metric_names:
    higher = metrics_lib.METRICS[name].higher_is_better
    matrix = results.matrix(name)
    baseline = results.baseline(name)
    plots.plot_matrix(matrix, results.task_names, name, higher,
                      os.path.join(plots_dir, f"matrix_{name}.png"),
                      baseline=baseline)
    plots.plot_curves(matrix, results.task_names, name, higher,
                      os.path.join(plots_dir, f"curves_{name}.png"),
                      baseline=baseline)
  train_path = os.path.join(workdir, "train.jsonl")
  if os.path.exists(train_path):
    boundaries = list(np.cumsum(exp.steps_per_task)[:-1])
    plots.plot_loss(read_jsonl(train_path),
                    os.path.join(plots_dir, "loss.png"),
                    task_boundaries=boundaries)


def _evaluate_unseen(exp: Experiment, eval_step, state: TrainState,
                     task_id: int, progress: Mapping[str, Any],
                     writer) -> list[dict[str, dict[str, float]]]:
  """Scores the test-only tasks after task ``task_id``; returns the rows so
  far (one ``{unseen task name: metrics}`` per finished task), which travel
  in the checkpoint's progress so that a resumed run keeps them."""
  row, sizes = evaluate_all(exp, eval_step, state, unseen=True)
  names = [task.name for task in exp.stream.unseen_tasks]
  for tested, values in enumerate(row):
    writer.write_eval({"after_task": task_id, "unseen_task": tested,
                       "task_name": names[tested], "step": progress["step"],
                       "num_examples": sizes[tested], **values})
  primary = exp.metric_names[0]
  logging.info("After task %d: %s on the unseen test-only tasks: %s",
               task_id, primary, " ".join(
                   f"{name} {metrics_lib.format_value(primary, v[primary])}"
                   for name, v in zip(names, row)))
  rows = list(progress.get("unseen") or [])[:task_id]
  return rows + [dict(zip(names, row))]


def _save_unseen(exp: Experiment, workdir: str,
                 rows: Sequence[Mapping[str, Mapping[str, float]]] | None
                 ) -> None:
  """``results/unseen.json``: the test-only tasks' metrics after each task.

  Rows are kept apart from the result matrix, whose columns (and BWT,
  forward transfer...) are the trained tasks only.
  """
  if not rows or not distributed.is_main_process():
    return
  path = os.path.join(workdir, "results", "unseen.json")
  atomic_write_text(path, json.dumps({
      "unseen_tasks": [task.name for task in exp.stream.unseen_tasks],
      "trained_tasks": exp.stream.task_names,
      # NaN (a metric undefined on a one-class set) as JSON null.
      "after_task": [{name: {k: None if math.isnan(v) else float(v)
                             for k, v in metrics.items()}
                      for name, metrics in row.items()} for row in rows],
  }, indent=1))


def _check_finite(records: list[dict[str, Any]], task_id: int, task_name: str,
                  checkpointer: Checkpointer) -> None:
  for record in records:
    if not math.isfinite(record["loss"]):
      last = checkpointer.latest_step()
      where = (f"{checkpointer.path_of(last)} (step {last})"
               if last is not None else "none saved yet")
      raise NonFiniteLossError(
          f"The loss became {record['loss']} at task {task_id} "
          f"({task_name!r}), global step {record['step']}. Training stopped; "
          f"nothing after the last good checkpoint was saved: {where}. Lower "
          "config.optimizer.learning_rate or set "
          "config.optimizer.grad_clip_norm, then re-run in a new workdir "
          "(or the same one to resume from that checkpoint).")


def train_and_evaluate(config: ml_collections.ConfigDict,
                       workdir: str) -> ResultMatrix:
  """Runs (or resumes) the whole stream in ``workdir``; returns the results."""
  exp = build_experiment(config)
  logging.info("%s", distributed.describe(exp.mesh))
  num_tasks = len(exp.stream)
  checkpointer = Checkpointer(workdir,
                              keep_latest=config.train.checkpoints_to_keep)
  train_step = step_lib.make_train_step(
      model=exp.model, frontend=exp.frontend, strategy=exp.strategy,
      tx=exp.tx, mesh=exp.mesh, augment=exp.augment.train)
  eval_step = make_eval_step(exp)
  state = initial_state(exp)
  results = ResultMatrix(task_names=exp.stream.task_names,
                         metrics={name: metrics_lib.METRICS[name]
                                  .higher_is_better
                                  for name in exp.metric_names},
                         method=config.strategy.name,
                         config_name=config.get("config_name", ""),
                         seed=config.seed)
  results.memory_bytes = replay.nbytes(state.buffer)
  if results.memory_bytes:
    logging.info("Replay memory of %s: %.1f MB on each device (%d bytes).",
                 config.strategy.name, results.memory_bytes / 1e6,
                 results.memory_bytes)
  progress = {"step": 0, "task": 0, "task_step": 0, "iterator": None}
  if checkpointer.latest_step() is not None:
    state, progress = checkpointer.restore(state)
    results = ResultMatrix.from_json(progress["results"])
    logging.info("Resuming %s at task %d, step %d of the task (global step "
                 "%d).", workdir, progress["task"], progress["task_step"],
                 progress["step"])
  writer = MetricWriter(
      workdir, tensorboard=config.output.tensorboard,
      wandb=({"project": config.output.wandb_project,
              "mode": config.output.wandb_mode, "config": config.to_dict()}
             if config.output.wandb else None)
  ) if distributed.is_main_process() else distributed.NullWriter()
  writer.truncate_after(progress["step"])

  def save(state: TrainState, task_end: int | None = None) -> str:
    progress["results"] = results.to_json()
    return checkpointer.save(state, progress, task_end=task_end)

  if config.eval.baseline and not results.has_baseline:
    row, sizes = evaluate_all(exp, eval_step, state)
    results.set_baseline(row)
    for task_id, values in enumerate(row):
      writer.write_eval({"after_task": -1, "task": task_id,
                         "task_name": exp.stream.tasks[task_id].name,
                         "step": 0, "num_examples": sizes[task_id], **values})
    if checkpointer.latest_step() is None:
      save(state)

  try:
    with _StopFlag() as stop:
      for task_id in range(progress["task"], num_tasks):
        task = exp.stream.tasks[task_id]
        num_steps = exp.steps_per_task[task_id]
        if progress["task_step"] == 0:
          if exp.strategy.start_task is not None:
            state = distributed.on_mesh(exp.strategy.start_task(
                state, task_context(exp, task_id)), exp.mesh)
          if config.optimizer.reset_per_task and task_id > 0:
            state = state.replace(opt_state=distributed.replicate(
                reset_base_optimizer(exp.tx, state.opt_state, state.params),
                exp.mesh))
        state = _fit_task(exp, state, train_step, task_id, num_steps,
                          progress, writer, checkpointer, save, stop)
        if exp.strategy.end_task is not None:
          state = distributed.on_mesh(exp.strategy.end_task(
              state, task_context(exp, task_id)), exp.mesh)
        row, sizes = evaluate_all(exp, eval_step, state)
        results.add_row(row)
        for tested, values in enumerate(row):
          writer.write_eval({"after_task": task_id, "task": tested,
                             "task_name": exp.stream.tasks[tested].name,
                             "step": progress["step"],
                             "num_examples": sizes[tested], **values})
        if exp.stream.unseen_tasks:
          progress["unseen"] = _evaluate_unseen(
              exp, eval_step, state, task_id, progress, writer)
        progress.update(task=task_id + 1, task_step=0, iterator=None)
        _save_results(exp, workdir, results)
        _save_unseen(exp, workdir, progress.get("unseen"))
        save(state, task_end=task_id)
        primary = exp.metric_names[0]
        logging.info("After task %d (%s): %s on each task: %s", task_id,
                     task.name, primary,
                     " ".join(metrics_lib.format_value(primary, v[primary])
                              for v in row))
  finally:
    checkpointer.wait()
    checkpointer.close()
    writer.close()
  return results


def _fit_task(exp: Experiment, state: TrainState, train_step, task_id: int,
              num_steps: int, progress: dict[str, Any], writer: MetricWriter,
              checkpointer: Checkpointer, save, stop: _StopFlag) -> TrainState:
  """Trains task ``task_id`` from ``progress['task_step']`` to ``num_steps``."""
  config = exp.config
  task_name = exp.stream.tasks[task_id].name
  dataset = loader.train_dataset(
      exp.train_sources(task_id), batch_size=config.data.batch_size,
      crop_length=exp.crop_length, num_steps=num_steps,
      seed=config.seed * 1009 + task_id, pad_mode=config.data.pad_mode,
      cache_bytes=config.data.cache_mb << 20,
      rows=distributed.process_slice(config.data.batch_size, exp.mesh))
  iterator = loader.train_iterator(dataset,
                                   worker_count=config.data.worker_count,
                                   read_threads=config.data.read_threads)
  if progress.get("iterator") is not None:
    iterator.set_state(progress["iterator"])
  elif progress["task_step"]:  # A checkpoint without iterator state.
    iterator = loader.train_iterator(dataset,
                                     worker_count=config.data.worker_count,
                                     read_threads=config.data.read_threads,
                                     start_step=progress["task_step"])
  bar = _Progress(config.output.progress if distributed.is_main_process()
                  else "none", num_steps, progress["task_step"],
                  f"task {task_id + 1}/{len(exp.stream)} {task_name}")
  pending: list[dict[str, jax.Array]] = []
  window_start = time.perf_counter()

  def flush() -> None:
    """Fetches the pending step metrics (one host sync) and writes a record."""
    nonlocal pending, window_start
    if not pending:
      return
    fetched = jax.device_get(pending)
    elapsed = time.perf_counter() - window_start
    first_step = progress["step"] - len(fetched) + 1
    per_step = [{"step": first_step + i, "loss": float(m["loss"])}
                for i, m in enumerate(fetched)]
    _check_finite(per_step, task_id, task_name, checkpointer)
    record = {key: float(np.mean([m[key] for m in fetched]))
              for key in fetched[0]}
    learning_rate = current_learning_rate(state.opt_state)
    record.update(
        task=task_id, task_name=task_name, step=progress["step"],
        task_step=progress["task_step"],
        steps_per_sec=len(fetched) / max(elapsed, 1e-9),
        examples_per_sec=len(fetched) * config.data.batch_size
        / max(elapsed, 1e-9))
    if learning_rate is not None:
      record["learning_rate"] = float(learning_rate)
    writer.write_train(record)
    bar.update(len(fetched), record)
    pending = []
    window_start = time.perf_counter()

  try:
    while progress["task_step"] < num_steps:
      batch = next(iterator)
      batch["task"] = np.full(batch["label"].shape, task_id, np.int32)
      batch = step_lib.put_batch(batch, exp.mesh)
      state, step_metrics = train_step(state, batch)
      pending.append(step_metrics)
      progress["step"] += 1
      progress["task_step"] += 1
      task_step = progress["task_step"]
      if task_step % config.train.log_every == 0 or task_step == num_steps:
        flush()
      stopping = stop.signum is not None
      if (task_step < num_steps and
          (task_step % config.train.checkpoint_every == 0 or stopping)):
        flush()
        progress["iterator"] = iterator.get_state()
        path = save(state)
        if stopping:
          checkpointer.wait()
          raise Interrupted(stop.signum, (
              f"Interrupted at task {task_id} ({task_name!r}), step "
              f"{task_step}/{num_steps} (global {progress['step']}); saved "
              f"{path}. Re-run the same command to resume."))
    flush()
  finally:
    bar.close()
  return state
