"""What the cljax-vs-PyTorch benchmarks share: cljax's real train step on a
fixed batch, and the alternating-round timing that compares two steps.

Used by ``benchmarks/jax_vs_torch.py`` (HM-Conformer, CNN1D) and
``benchmarks/resnet_vs_torch.py`` (ResNet-50), so both build the cljax side
and measure the ratio the same way. No PyTorch import here: the caller
passes PyTorch's synchronisation as a function (:func:`torch_sync`).

Timing (:func:`measure`): each side is warmed up (compilation, allocator),
then each of ``repeats`` rounds runs ``steps`` steps of every side in turn,
each blocked at the end. steps/s are the medians over the rounds; a ratio
against the reference side (> 1: the reference is faster) is the median of
the rounds' ratios, so that load from other processes, which drifts over
seconds, hits both sides of a ratio alike.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cljax import step as step_lib
from cljax.models import heads
from cljax.optim import make_tx
from cljax.state import create_train_state
from cljax.strategies import StrategyContext, make_strategy

Step = Callable[[], Any]          # runs one step, returns what to block on
Sync = Callable[[Any], None]      # blocks until a step's output is ready


def flops_of(compiled) -> float | None:
  """FLOPs of a compiled XLA program from its cost analysis, or None."""
  try:
    cost = compiled.cost_analysis()
  except Exception:  # Some backends do not implement it.
    return None
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  if not cost or "flops" not in cost:
    return None
  return float(cost["flops"])


def identify_cljax_loss(model, frontend, state, device_batch, metrics
                        ) -> str:
  """Which classification loss cljax's step used, read off its first step.

  Recomputes the step's forward pass (same parameters, batch statistics and
  dropout key: the step splits ``state.rng`` into ``(rng, dropout_rng)``)
  and returns the name of the candidate loss nearest the step's logged
  ``cross_entropy``: softmax cross-entropy of the logits, or the weighted
  OC-softmax of the heads the model sows (HM-Conformer).
  """

  @jax.jit
  def candidates(state, batch):
    _, dropout_rng = jax.random.split(state.rng)
    (logits, _), sown = model.apply(
        state.variables, frontend(batch["audio"]), train=True,
        rngs={"dropout": dropout_rng},
        mutable=["batch_stats", "intermediates"])
    cross_entropy = optax.softmax_cross_entropy_with_integer_labels(
        logits, batch["label"])
    out = {"softmax cross-entropy": cross_entropy.mean()}
    head_cos = sown.get("intermediates", {}).get("head_cos")
    if head_cos is not None:
      out[f"{head_cos[-1].shape[1]}-head weighted OC-softmax"] = (
          heads.hm_conformer_loss(
              head_cos[-1], batch["label"],
              getattr(model, "loss_weights", None)
              or (1.0,) * head_cos[-1].shape[1]))
    return out

  values = {k: float(v) for k, v in candidates(state, device_batch).items()}
  logged = float(metrics["cross_entropy"])
  name = min(values, key=lambda k: abs(values[k] - logged))
  return (f"{name} (step logged {logged:.4f}; candidates "
          + ", ".join(f"{k} {v:.4f}" for k, v in values.items()) + ")")


def build_cljax_step(model, frontend, num_classes: int,
                     optimizer: Mapping[str, Any], inputs: np.ndarray,
                     labels: np.ndarray, seed: int, devices=None):
  """cljax's jitted train step on the fixed batch ``(inputs, labels)``.

  The step a run compiles (``cljax.step.make_train_step``): front end,
  forward in training mode, the model's loss, backward, the ``finetune``
  strategy's transform and the base optimizer of ``optimizer`` (a
  ``config.optimizer`` block, through ``cljax.optim.make_tx``), on
  ``make_mesh()``; it also computes its logged metrics (accuracy, gradient
  and update norms). ``inputs`` go in the batch's ``audio`` field, where the
  loader puts waveforms and images alike. ``devices``: the mesh's devices
  (default: all of JAX's default backend).

  Returns ``(step fn, params, FLOPs per step or None, name of the loss it
  trains on)``; one step has already run (to identify the loss). ``params``
  is the initial tree, for its shapes (parameter counts) only: the step may
  have taken its buffers by donation.
  """
  mesh = step_lib.make_mesh(devices)
  strategy = make_strategy({"name": "finetune"}, StrategyContext(
      model=model, num_classes=num_classes, num_tasks=1,
      frontend=frontend))
  tx = make_tx(optimizer, strategy.tx, total_steps=1000)
  init_rng, dropout_rng, state_rng = jax.random.split(
      jax.random.PRNGKey(seed), 3)
  # Jitted init: an eager ResNet-50 init runs op by op and takes long.
  variables = jax.jit(lambda rngs, x: model.init(rngs, frontend(x),
                                                 train=False))(
      {"params": init_rng, "dropout": dropout_rng},
      jnp.zeros((1,) + inputs.shape[1:], inputs.dtype))
  state = create_train_state(
      params=variables["params"],
      batch_stats=variables.get("batch_stats", {}), tx=tx,
      strategy_state={}, rng=state_rng)
  state = jax.device_put(state, step_lib.replicated(mesh))
  train_step = step_lib.make_train_step(
      model=model, frontend=frontend, strategy=strategy, tx=tx, mesh=mesh)
  device_batch = step_lib.put_batch({"audio": inputs, "label": labels}, mesh)
  # The jitted step compiled once, for its cost analysis and for running
  # (the executable keeps the step's shardings and state donation).
  compiled = train_step.lower(state, device_batch).compile()
  flops = flops_of(compiled)
  params = variables["params"]
  # The step donates its input state: identify the loss before stepping.
  first = jax.tree.map(jnp.copy, state)
  state, metrics = compiled(state, device_batch)
  loss_name = identify_cljax_loss(model, frontend, first, device_batch,
                                  metrics)
  holder = [state]

  def run():
    holder[0], metrics = compiled(holder[0], device_batch)
    return holder[0], metrics

  return run, params, flops, loss_name


def torch_sync(torch, device) -> Sync:
  """Blocks on a PyTorch step: CUDA synchronise, or fetch the CPU loss."""

  def sync(out):
    if device.type == "cuda":
      torch.cuda.synchronize()
    elif out is not None:
      out.item()

  return sync


def timed(step: Step, steps: int, sync: Sync) -> float:
  """Seconds for ``steps`` calls of ``step``, blocked at the end."""
  start = time.perf_counter()
  out = None
  for _ in range(steps):
    out = step()
  sync(out)
  return time.perf_counter() - start


def measure(sides: Mapping[str, tuple[Step, Sync]], *, steps: int,
            repeats: int, warmup: int, label: str, reference: str = "cljax"
            ) -> tuple[dict[str, float], dict[str, float]]:
  """Times ``sides`` in alternating rounds; see the module docstring.

  Args:
    sides: name -> (step, sync), timed in this order within each round.
    steps: steps per round and side.
    repeats: rounds; the medians are over these.
    warmup: untimed steps of each side first (in turn).
    label: prefix of the per-round lines printed.
    reference: the side the ratios are of (``reference / side``).

  Returns:
    ``(median steps/s per side, median per-round ratio reference/side)``.
  """
  for _ in range(warmup):
    for step, sync in sides.values():
      sync(step())
  rates = {side: [] for side in sides}
  for repeat in range(repeats):
    for side, (step, sync) in sides.items():
      rates[side].append(steps / timed(step, steps, sync))
    print(f"{label} round {repeat}: " + "  ".join(
        f"{side} {values[-1]:.2f}" for side, values in rates.items())
          + " steps/s", flush=True)
  medians = {side: statistics.median(v) for side, v in rates.items()}
  # Ratios per round, then the median: both sides of a round share the
  # machine's load at that moment, so drifting load cancels.
  ratios = {side: statistics.median(a / b for a, b in zip(rates[reference], v))
            for side, v in rates.items()}
  return medians, ratios
