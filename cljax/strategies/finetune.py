"""Fine-tuning: train on each task in turn with nothing to prevent forgetting.

The lower bound every continual-learning paper reports: the gradient passes
through unchanged (``optax.identity``) and only the current task's data is
used.

Example::

  strategy = cljax.strategies.finetune.make(context)
"""

from __future__ import annotations

from cljax.strategies.base import Strategy, StrategyContext


def make(context: StrategyContext) -> Strategy:
  """Builds the fine-tune strategy (no fields)."""
  del context  # Nothing to configure.
  return Strategy(name="finetune")
