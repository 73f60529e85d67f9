"""Continual-learning strategies; one file per method.

``make_strategy(config.strategy, context)`` imports
``cljax.strategies.<name>`` and calls its ``make(context, **fields)``, so a
new method is one new file (plus its config) and needs no registration.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Mapping

from cljax import registry
from cljax.strategies.base import (Strategy, StrategyContext, TaskContext,
                                   current_task_only)
# The optax factories, for use in any JAX code (each also has ``make`` for
# the cljax loop). Importing the submodules first keeps the package
# attributes bound to the factories, not to the modules of the same name.
from cljax.strategies.ewc import ewc
from cljax.strategies.l2sp import l2sp
from cljax.strategies.owm import owm
from cljax.strategies.rawm import rawm
from cljax.strategies.rwm import rwm
from cljax.strategies.si import si
from cljax.strategies._projection import commit as commit_projector

# Modules in this package that are not strategies.
_NOT_STRATEGIES = frozenset({"base"})


def available() -> list[str]:
  """Names of every strategy module in this package."""
  return sorted(m.name for m in pkgutil.iter_modules(__path__)
                if m.name not in _NOT_STRATEGIES and not m.name.startswith("_"))


def make_strategy(block: Mapping[str, Any],
                  context: StrategyContext) -> Strategy:
  """Builds the strategy named by ``config.strategy.name``."""
  name = dict(block).get("name")
  names = available()
  if name not in names:
    raise registry.ConfigError(
        f"config.strategy.name={name!r} is unknown. Choose one of: "
        f"{', '.join(names)}.")
  module = importlib.import_module(f"cljax.strategies.{name}")
  factory = {name: lambda **kw: module.make(context, **kw)}
  registry.check_fields(module.make, {k: v for k, v in dict(block).items()
                                      if k != "name"},
                        "strategy", fixed={"context": None})
  return registry.build(factory, block, "strategy")


__all__ = ["Strategy", "StrategyContext", "TaskContext", "available",
           "commit_projector", "current_task_only", "ewc", "l2sp",
           "make_strategy", "owm", "rawm", "rwm", "si"]
