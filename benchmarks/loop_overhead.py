r"""What the continual loop costs over the bare jitted train step.

  python benchmarks/loop_overhead.py [--variant=default] [--steps=1000] \
      [--repeats=7]

Both are measured in this process, on the same compiled step, model and
batch size:

* bare: the jitted ``train_step`` called ``steps`` times on one batch already
  on the device, then one block — the ceiling for this model on this machine.
* loop: ``cljax.train._fit_task`` for ``steps`` steps — grain loader (crops,
  batching), host->device transfer, metric fetches every ``log_every`` steps,
  JSONL writes, the progress reporter and orbax checkpoints every
  ``checkpoint_every`` steps, exactly as a run does them.

The synthetic records are generated (and cached by the source) before
timing: generating data is the data issue's cost, not the loop's. Prints
steps/s of each, the overhead ``loop_time / bare_time - 1`` per repeat and
its median. Target: <= 5 %.

Measured (2-core CPU VM, default variant, batch 32, log every 10 steps, a
checkpoint every 500): bare 165-170 steps/s, loop 159-166 steps/s, median
overhead +3.4 % over 7 repeats (single repeats vary from -1 % to +7 %: the
host and XLA share the two cores).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import jax

from cljax import presets
from cljax import step as step_lib
from cljax import train
from cljax.io.checkpoints import Checkpointer
from cljax.io.writers import MetricWriter


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--variant", default="default", choices=presets.VARIANTS)
  parser.add_argument("--steps", type=int, default=1000)
  parser.add_argument("--repeats", type=int, default=7)
  args = parser.parse_args()

  config = presets.audio_experiment(args.variant)
  config.train.steps_per_task = args.steps
  config.output.progress = "none"
  exp = train.build_experiment(config)
  source = exp.stream.tasks[0].split("train")
  for index in range(len(source)):  # Generate (and cache) every record.
    source[index]
  train_step = step_lib.make_train_step(
      model=exp.model, frontend=exp.frontend, strategy=exp.strategy,
      tx=exp.tx, mesh=exp.mesh)
  dataset = train.loader.train_dataset(
      exp.train_sources(0), batch_size=config.data.batch_size,
      crop_length=exp.crop_length, num_steps=args.steps, seed=0,
      pad_mode=config.data.pad_mode)
  device_batch = step_lib.put_batch(dataset[0], exp.mesh)
  state = train.initial_state(exp)
  for _ in range(3):  # Compile and warm up.
    state, metrics = train_step(state, device_batch)
  jax.block_until_ready(metrics)

  def bare(state):
    start = time.perf_counter()
    for _ in range(args.steps):
      state, metrics = train_step(state, device_batch)
    jax.block_until_ready((state, metrics))
    return time.perf_counter() - start, state

  def loop(state):
    with tempfile.TemporaryDirectory() as workdir:
      checkpointer = Checkpointer(workdir)
      writer = MetricWriter(workdir)
      progress = {"step": 0, "task": 0, "task_step": 0, "iterator": None}

      def save(state, task_end=None):
        return checkpointer.save(state, progress, task_end=task_end)

      start = time.perf_counter()
      with train._StopFlag() as stop:
        state = train._fit_task(exp, state, train_step, 0, args.steps,
                                progress, writer, checkpointer, save, stop)
      jax.block_until_ready(state)
      elapsed = time.perf_counter() - start
      checkpointer.wait()
      checkpointer.close()
      writer.close()
    return elapsed, state

  print(f"devices: {jax.devices()}  variant: {args.variant}  steps: "
        f"{args.steps}  batch: {config.data.batch_size}  log_every: "
        f"{config.train.log_every}  checkpoint_every: "
        f"{config.train.checkpoint_every}")
  overheads = []
  for repeat in range(args.repeats):
    bare_time, state = bare(state)
    loop_time, state = loop(state)
    overheads.append(loop_time / bare_time - 1)
    print(f"repeat {repeat}: bare {args.steps / bare_time:8.1f} steps/s   "
          f"loop {args.steps / loop_time:8.1f} steps/s   overhead "
          f"{100 * overheads[-1]:+6.1f} %")
  print(f"median overhead of the full loop over the bare step: "
        f"{100 * statistics.median(overheads):+.1f} % (target <= 5 %)")


if __name__ == "__main__":
  main()
