"""Joint training: fit each task on the union of every task seen so far.

The upper bound of a continual stream: when task ``t`` arrives the model
(continuing from where task ``t-1`` left it) trains on the training data of
tasks ``0..t``, shuffled together, for the task's budget of steps. Nothing is
forgotten because nothing old is withheld; the memory cost is storing every
task, which is what continual methods avoid.
"""

from __future__ import annotations

from typing import Sequence

from cljax.strategies.base import Strategy, StrategyContext


def all_tasks_so_far(task_id: int) -> Sequence[int]:
  """The union of tasks ``0..task_id``."""
  return tuple(range(task_id + 1))


def make(context: StrategyContext) -> Strategy:
  """Builds the joint strategy (no fields)."""
  del context  # Nothing to configure.
  return Strategy(name="joint", train_tasks=all_tasks_so_far)
