r"""EWC: elastic weight consolidation as a composable optax transform.

Kirkpatrick et al., "Overcoming catastrophic forgetting in neural networks",
PNAS 2017; the online variant from Schwarz et al., "Progress & Compress",
ICML 2018.

After task :math:`k` the diagonal Fisher information

.. math::
   F_k = \frac{1}{N} \sum_{n=1}^{N}
         \left(\nabla_\theta \log p(y_n \mid x_n; \theta^*_k)\right)^2

is measured at the task's final parameters :math:`\theta^*_k`, with
:math:`y_n` the true label (*empirical* Fisher) or drawn from the model's own
prediction :math:`y_n \sim p(\cdot \mid x_n; \theta^*_k)` (*sampled*, the
true Fisher's Monte-Carlo estimate). Training on later tasks adds the penalty

.. math::
   \Omega(\theta) = \frac{\lambda}{2} \sum_k \sum_i F_{k,i}
                    (\theta_i - \theta^*_{k,i})^2,

which this transform applies as its gradient, added to the incoming update
before the optimizer:

.. math::
   u \leftarrow u + \lambda \sum_k F_k \odot (\theta - \theta^*_k).

State: ``EWCState(fisher, anchor)``, two params-shaped trees whatever the
number of tasks.

* ``mode="separate"`` (one penalty per past task): the sum of quadratics is
  stored as one quadratic with the same gradient,
  :math:`\sum_k F_k (\theta - \theta^*_k) = F (\theta - \bar\theta)` with
  :math:`F = \sum_k F_k` and the Fisher-weighted anchor
  :math:`\bar\theta = \sum_k F_k \theta^*_k / F` (where :math:`F = 0` the
  anchor is irrelevant and set to the latest parameters). The gradient — all
  the optimizer ever sees — is exactly that of the per-task sum; only the
  penalty *value* differs, by a constant independent of :math:`\theta`. The
  memory and the per-step cost stay those of a single task instead of growing
  with the number of tasks.
* ``mode="online"``: :math:`F \leftarrow \gamma F + F_{new}`, anchor = the
  latest parameters (``decay`` is :math:`\gamma`; EVDA uses
  :math:`\lambda = 0.4, \gamma = 0.1`).

The Fisher is computed outside the step, at a task boundary, with
:func:`fisher_diagonal` (per-example gradients via ``jax.vmap(jax.grad(.))``,
batched and jitted) and folded in with :func:`consolidate`; inside cljax the
strategy's ``end_task`` does both and writes the result into the optimizer
state with ``optax.tree.set``.

Example (any Flax / JAX model; nothing else from cljax needed)::

  from cljax.strategies.ewc import ewc, fisher_diagonal, consolidate, \
      find_ewc_state, replace_ewc_state

  tx = optax.chain(ewc(strength=10.0), optax.adam(1e-3))
  opt_state = tx.init(params)
  ...  # train task A: updates, opt_state = tx.update(g, opt_state, params)
  logits_fn = lambda p, x: model.apply({"params": p}, x)
  fisher = fisher_diagonal(logits_fn, params, batches_of_task_a)
  new = consolidate(find_ewc_state(opt_state), fisher, params)
  opt_state = replace_ewc_state(opt_state, new)
  ...  # train task B: the penalty now pulls towards task A's solution
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Mapping, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from cljax import registry
from cljax.strategies import _penalty
from cljax.strategies._penalty import ParamFilter
from cljax.strategies.base import Strategy, StrategyContext, TaskContext

MODES = ("separate", "online")
FISHER_KINDS = ("empirical", "sampled")
FISHER_TASKS = ("current", "all_seen")
APPLY_TO = ("all", "classifier", "backbone")

# logits_fn(params, inputs [B, ...]) -> logits [B, C]
LogitsFn = Callable[[Any, jax.Array], jax.Array]


class EWCState(NamedTuple):
  """Consolidated importance and anchor, shaped like the selected params.

  Attributes:
    fisher: the accumulated diagonal Fisher :math:`F` (zeros before the first
      consolidation, so the transform starts as the identity).
    anchor: :math:`\\bar\\theta` (separate) or the latest task's final
      parameters (online).
  """

  fisher: Any
  anchor: Any


def ewc(strength: float = 1.0, *, param_filter: ParamFilter | None = None
        ) -> optax.GradientTransformationExtraArgs:
  """The EWC penalty gradient ``strength * F * (params - anchor)``, added.

  Args:
    strength: :math:`\\lambda`. A number or a jax scalar (so
      ``optax.inject_hyperparams(ewc)(strength=...)`` can change it).
    param_filter: ``param_filter(path, leaf) -> bool`` selecting the
      parameters penalised (path: tuple of key names, e.g.
      ``("classifier", "kernel")``); None: all. Equivalent to wrapping in
      ``optax.masked``, which also works.

  Returns:
    An ``optax.GradientTransformationExtraArgs``; ``update`` needs
    ``params`` and ignores extra keyword arguments.
  """

  def init_fn(params):
    return EWCState(fisher=jax.tree.map(jnp.zeros_like, params),
                    anchor=_penalty.tree_copy(params))

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args  # features/logits/labels of the cljax step: not needed.
    _penalty.require_params(params, "ewc")
    chex.assert_trees_all_equal_shapes(updates, params)

    def add_penalty(u, f, a, p):
      return (u + strength * f * (p - a)).astype(u.dtype)

    updates = jax.tree.map(add_penalty, updates, state.fisher, state.anchor,
                           params)
    return updates, state

  return _penalty.maybe_masked(
      optax.GradientTransformationExtraArgs(init_fn, update_fn), param_filter)


def penalty(state: EWCState, params: Any, strength: float = 1.0) -> jax.Array:
  """``strength / 2 * sum F (params - anchor)^2`` (for logging and tests)."""
  leaves = jax.tree.leaves(jax.tree.map(
      lambda f, a, p: jnp.sum(f * (p - a) ** 2), state.fisher, state.anchor,
      _penalty.like_state(state.fisher, params), is_leaf=_penalty.is_absent))
  return 0.5 * strength * sum(leaves, jnp.zeros((), jnp.float32))


def consolidate(state: EWCState, fisher_new: Any, params: Any, *,
                mode: str = "separate", decay: float = 1.0) -> EWCState:
  """Folds a new task's Fisher into the state (at the end of that task).

  Args:
    state: the current ``EWCState`` (from :func:`find_ewc_state`).
    fisher_new: :math:`F_{new}`, params-shaped (e.g. :func:`fisher_diagonal`);
      leaves the state does not hold (``optax.masked``) are ignored.
    params: the parameters at the end of the task, :math:`\\theta^*`.
    mode: ``"separate"``: :math:`F \\leftarrow F + F_{new}`, anchor the
      Fisher-weighted mean of the task anchors; ``"online"``:
      :math:`F \\leftarrow \\gamma F + F_{new}`, anchor :math:`\\theta^*`.
    decay: :math:`\\gamma` of the online mode.

  Returns:
    The new ``EWCState``.
  """
  if mode not in MODES:
    raise ValueError(f"ewc consolidate: mode={mode!r}; choose one of {MODES}.")
  fisher_new = _penalty.like_state(state.fisher, fisher_new)
  params = _penalty.like_state(state.fisher, params)
  if mode == "online":
    fisher = jax.tree.map(lambda f, n: decay * f + n, state.fisher, fisher_new)
    return EWCState(fisher=fisher, anchor=_penalty.tree_copy(params))

  def weighted_anchor(f_old, a_old, f_new, p):
    total = f_old + f_new
    mean = (f_old * a_old + f_new * p) / jnp.where(total > 0, total, 1.0)
    return jnp.where(total > 0, mean, p)

  fisher = jax.tree.map(jnp.add, state.fisher, fisher_new)
  anchor = jax.tree.map(weighted_anchor, state.fisher, state.anchor,
                        fisher_new, params)
  return EWCState(fisher=fisher, anchor=anchor)


def find_ewc_state(opt_state: Any) -> EWCState:
  """The ``EWCState`` inside any optax state (chain, masked, MultiSteps...)."""
  return _penalty.find_state(opt_state, EWCState)


def replace_ewc_state(opt_state: Any, new: EWCState) -> Any:
  """``opt_state`` with its ``EWCState`` replaced (``optax.tree.set``)."""
  return _penalty.replace_state(opt_state, new)


@functools.lru_cache(maxsize=32)
def _batch_fisher_fn(logits_fn: LogitsFn, sampled: bool):
  """Jitted ``(params, inputs, labels, weights, rng, constants) -> (sum g^2,
  count)``."""

  def log_likelihood(params, x, y, constants):
    logits = logits_fn(params, x[None], *constants)[0]
    return jax.nn.log_softmax(logits.astype(jnp.float32))[y]

  def batch_sum(params, inputs, labels, weights, rng, constants):
    if sampled:
      logits = jax.lax.stop_gradient(logits_fn(params, inputs, *constants))
      labels = jax.random.categorical(rng, logits.astype(jnp.float32))
    per_example = jax.vmap(jax.grad(log_likelihood),
                           in_axes=(None, 0, 0, None))(
                               params, inputs, labels, constants)
    weights = weights.astype(jnp.float32)
    total = jax.tree.map(
        lambda g: jnp.tensordot(weights, jnp.square(g.astype(jnp.float32)),
                                axes=1), per_example)
    return total, jnp.sum(weights)

  return jax.jit(batch_sum)


def fisher_diagonal(logits_fn: LogitsFn, params: Any,
                    batches: Iterable[Mapping[str, Any]], *,
                    sampled: bool = False, rng: jax.Array | None = None,
                    constants: tuple[Any, ...] = (),
                    input_key: str = "inputs", label_key: str = "label",
                    mask_key: str = "mask") -> Any:
  """The diagonal Fisher: mean over examples of squared log-likelihood grads.

  .. math::
     F = \\frac{1}{N} \\sum_n \\left(\\nabla_\\theta
         \\log \\mathrm{softmax}(f_\\theta(x_n))_{y_n}\\right)^2

  Args:
    logits_fn: ``logits_fn(params, inputs [B, ...]) -> logits [B, C]``, in
      inference mode (batch norm with running statistics, no dropout). It is
      called on one example at a time (``[1, ...]``) under ``jax.vmap``.
      Keep the same function object across calls to reuse the compilation.
    params: where the Fisher is measured (the end of a task).
    batches: mappings with ``inputs`` (``input_key``), ``label`` and
      optionally ``mask`` (1 = real example, 0 = padding, ignored).
    sampled: False: empirical Fisher (true labels); True: labels sampled from
      the model's prediction.
    rng: PRNG key for ``sampled``.
    constants: extra arguments of ``logits_fn`` that are not differentiated
      (e.g. batch-norm statistics): ``logits_fn(params, inputs, *constants)``.
      Passing them here, not in a closure, lets every task reuse one
      compilation.
    input_key, label_key, mask_key: the batch keys.

  Returns:
    A params-shaped tree of float32 Fisher values.

  Raises:
    ValueError: no batch, or every example masked out.
  """
  if sampled and rng is None:
    raise ValueError("fisher_diagonal(sampled=True) needs rng=a PRNG key.")
  rng = jax.random.PRNGKey(0) if rng is None else rng
  batch_fn = _batch_fisher_fn(logits_fn, bool(sampled))
  total, count = None, 0.0
  for i, batch in enumerate(batches):
    inputs = batch[input_key]
    labels = batch[label_key]
    weights = batch.get(mask_key)
    if weights is None:
      weights = jnp.ones(np.shape(labels)[0], jnp.float32)
    sums, n = batch_fn(params, inputs, labels, weights,
                       jax.random.fold_in(rng, i), tuple(constants))
    total = sums if total is None else jax.tree.map(jnp.add, total, sums)
    count += float(n)
  if total is None or count == 0:
    raise ValueError(
        "EWC: the Fisher was requested with no data (no batch, or every "
        "example masked out). Give fisher_diagonal a non-empty iterable of "
        "batches; in cljax, check config.strategy.fisher_split names a "
        "non-empty split of the tasks.")
  return jax.tree.map(lambda t: t / count, total)


def select_params(apply_to: str) -> ParamFilter | None:
  """The cljax config's ``apply_to`` as a path predicate."""
  if apply_to == "all":
    return None
  if apply_to == "classifier":
    return lambda path, _: "classifier" in path
  return lambda path, _: "classifier" not in path


def make(context: StrategyContext, strength: float = 10.0,
         mode: str = "separate", decay: float = 1.0,
         fisher: str = "empirical", fisher_split: str = "val",
         fisher_tasks: str = "current", apply_to: str = "all",
         seed: int = 0) -> Strategy:
  """The EWC strategy for the cljax loop.

  Args:
    context: the experiment (model, front end).
    strength: :math:`\\lambda` (seed 003: importance 10; EVDA online 0.4).
    mode: ``"separate"`` or ``"online"`` (see the module docstring).
    decay: :math:`\\gamma` for ``online`` (EVDA: 0.1).
    fisher: ``"empirical"`` (true labels) or ``"sampled"`` (model labels).
    fisher_split: the split the Fisher is computed on (``"val"``, as seed
      003, or ``"train"``).
    fisher_tasks: ``"current"``: the task just learnt; ``"all_seen"``: every
      task so far (seed 003 measures on all past validation sets; with
      ``mode="online", decay=0`` that re-measures the whole Fisher at the
      latest parameters after each task; with ``mode="separate"`` earlier
      tasks would be counted again at every boundary).
    apply_to: ``"all"``, ``"classifier"`` or ``"backbone"`` parameters.
    seed: PRNG seed of the sampled Fisher.

  Returns:
    A ``Strategy`` with ``tx`` and ``end_task``.
  """
  for field, value, choices in (("mode", mode, MODES),
                                ("fisher", fisher, FISHER_KINDS),
                                ("fisher_tasks", fisher_tasks, FISHER_TASKS),
                                ("apply_to", apply_to, APPLY_TO)):
    if value not in choices:
      raise registry.ConfigError(
          f"config.strategy.{field}={value!r}: choose one of {list(choices)}.")
  if not (isinstance(strength, (int, float)) and strength >= 0):
    raise registry.ConfigError(
        f"config.strategy.strength={strength!r}: expected a number >= 0.")
  if not (isinstance(decay, (int, float)) and decay >= 0):
    raise registry.ConfigError(
        f"config.strategy.decay={decay!r}: expected a number >= 0.")

  model, frontend = context.model, context.frontend

  # Defined once, so every task's Fisher reuses one compilation; batch-norm
  # statistics are a constant argument (inference mode: running statistics).
  def logits_fn(params, audio, batch_stats):
    variables = {"params": params}
    if batch_stats:
      variables["batch_stats"] = batch_stats
    logits, _ = model.apply(variables, frontend(audio), train=False)
    return logits

  def end_task(state, task: TaskContext):
    task_ids = ([task.task_id] if fisher_tasks == "current"
                else list(range(task.task_id + 1)))
    try:
      fisher_new = fisher_diagonal(
          logits_fn, state.params, task.batches(fisher_split, task_ids),
          sampled=fisher == "sampled",
          rng=jax.random.fold_in(jax.random.PRNGKey(seed), task.task_id),
          constants=(state.batch_stats,), input_key="audio")
    except ValueError as error:
      raise ValueError(
          f"EWC end of task {task.task_id} ({task.task_name!r}): {error} "
          f"(config.strategy.fisher_split={fisher_split!r}, "
          f"fisher_tasks={fisher_tasks!r}).") from error
    new = consolidate(find_ewc_state(state.opt_state), fisher_new,
                      state.params, mode=mode, decay=decay)
    return state.replace(opt_state=replace_ewc_state(state.opt_state, new))

  return Strategy(name="ewc",
                  tx=ewc(strength, param_filter=select_params(apply_to)),
                  end_task=end_task)
