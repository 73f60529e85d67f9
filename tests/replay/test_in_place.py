"""Every replay strategy updates its memory in place inside the jitted step.

A step that reads rows of the memory and writes others into it makes XLA
copy the whole memory unless the write is ordered after the read
(``reservoir.insert(after=...)``): 0.5 s per step for the 320 MB default
memory on CPU, a 1000x slow-down that no result reveals. The compiled
program of each strategy's ``replay`` with a donated memory must hold no
copy of it.
"""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import optax
import pytest

from cljax.models import MLP
from cljax.strategies.base import ReplayContext, StrategyContext

CLIP = 1000
SPEC = {"audio": jax.ShapeDtypeStruct((CLIP,), jnp.int16),
        "label": jax.ShapeDtypeStruct((), jnp.int32),
        "task": jax.ShapeDtypeStruct((), jnp.int32)}
FIELDS = {"er": {}, "mir": {"candidates": 16}, "er_bce": {}, "icarl": {},
          "gdumb": {}, "gdumb_task_class": {"balance_by": "task_class"}}


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_the_memory_is_updated_in_place_not_copied(name):
  module = importlib.import_module(
      f"cljax.strategies.{name.replace('_task_class', '')}")
  model = MLP(num_classes=2, hidden_sizes=())
  frontend = lambda audio: audio[:, :4].astype(jnp.float32)
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 4)))
  params = variables["params"]

  def per_example_loss(p, rows):
    logits, _ = model.apply({"params": p}, frontend(rows["audio"]))
    return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                           rows["label"])

  strategy = module.make(
      StrategyContext(model=model, num_classes=2, num_tasks=3,
                      frontend=frontend), memory_size=64, **FIELDS[name])
  strategy_state = (strategy.init_state(variables) if strategy.init_state
                    else {})
  context = ReplayContext(params=params, variables=variables,
                          strategy_state=strategy_state,
                          per_example_loss=per_example_loss)
  batch = {"audio": jnp.ones((8, CLIP), jnp.int16),
           "label": jnp.zeros(8, jnp.int32), "task": jnp.ones(8, jnp.int32)}
  step = jax.jit(lambda memory, key: strategy.replay(memory, batch, key,
                                                      context),
                 donate_argnums=0)
  hlo = step.lower(strategy.init_buffer(SPEC),
                   jax.random.PRNGKey(0)).compile().as_text()
  copies = [line for line in hlo.splitlines()
            if f"s16[64,{CLIP}]" in line and " copy(" in line]
  assert not copies, copies
