r"""SI: synaptic intelligence as a composable optax transform.

Zenke, Poole & Ganguli, "Continual Learning Through Synaptic Intelligence",
ICML 2017.

During task :math:`\mu` each parameter accumulates its contribution to the
drop in the loss along the optimisation path,

.. math::
   \omega_i^\mu = -\sum_t g_i(t)\, \Delta\theta_i(t), \qquad
   \Delta\theta(t) = \theta(t+1) - \theta(t),

with :math:`g(t)` the gradient of the task loss (without the SI penalty) at
:math:`\theta(t)`. At the end of the task the importance grows by

.. math::
   \Omega_i \leftarrow \Omega_i + \frac{\omega_i^\mu}
                                   {(\Delta_i^\mu)^2 + \xi}, \qquad
   \Delta^\mu = \theta(T_\mu) - \theta(T_{\mu-1}),

and later tasks are trained with :math:`c \sum_i \Omega_i (\theta_i -
\theta^*_i)^2` (:math:`\theta^*` = the parameters at the end of the last
task), whose gradient :math:`2 c\, \Omega \odot (\theta - \theta^*)` this
transform adds to the incoming update.

**How the path integral is measured inside an optax chain.** ``update`` sees
the gradient :math:`g(t)` (the incoming ``updates``: the loss gradient after
any clipping placed before it, before the penalty and the optimizer) and the
parameters :math:`\theta(t)`, but not :math:`\theta(t+1)`, which exists only
after the optimizer step. So the state keeps the previous call's gradient and
parameters and adds :math:`-g(t-1)(\theta(t) - \theta(t-1))` at step
:math:`t`; :func:`consolidate` adds the last step's term from the final
parameters. The sum is therefore exactly Zenke et al.'s (the gradient before
the optimizer, the actual parameter change including Adam's scaling and the
penalty's own pull), not an approximation — just one step late. The one
difference from their code: with a clip transform before SI, :math:`g` is the
clipped gradient.

State: ``SIState(omega, importance, anchor, prev_params, prev_grad)``, five
params-shaped trees.

Example::

  tx = optax.chain(si(strength=0.1), optax.adam(1e-3))
  opt_state = tx.init(params)
  ...  # train a task
  opt_state = replace_si_state(
      opt_state, consolidate(find_si_state(opt_state), params))
"""

from __future__ import annotations

from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from cljax import registry
from cljax.strategies import _penalty
from cljax.strategies._penalty import ParamFilter
from cljax.strategies.base import Strategy, StrategyContext, TaskContext
from cljax.strategies.ewc import APPLY_TO, select_params


class SIState(NamedTuple):
  """Path integral, importance and anchors, shaped like the selected params.

  Attributes:
    omega: :math:`\\omega` of the current task so far.
    importance: :math:`\\Omega`, summed over finished tasks.
    anchor: :math:`\\theta^*`, the parameters at the end of the last task
      (the start of the current one).
    prev_params: :math:`\\theta(t-1)` seen by the previous ``update``.
    prev_grad: :math:`g(t-1)` seen by the previous ``update`` (zero at the
      start of a task, so the first call adds nothing).
  """

  omega: Any
  importance: Any
  anchor: Any
  prev_params: Any
  prev_grad: Any


def si(strength: float = 0.1, *, param_filter: ParamFilter | None = None
       ) -> optax.GradientTransformationExtraArgs:
  """Accumulates SI's path integral and adds ``2 c Omega (params - anchor)``.

  Args:
    strength: :math:`c`. A number or jax scalar (``inject_hyperparams``).
    param_filter: ``param_filter(path, leaf) -> bool`` selecting the
      parameters; None: all (``optax.masked`` works too).

  Returns:
    An ``optax.GradientTransformationExtraArgs``; ``update`` needs
    ``params``.
  """

  def init_fn(params):
    zeros = lambda: jax.tree.map(jnp.zeros_like, params)  # noqa: E731
    return SIState(omega=zeros(), importance=zeros(),
                   anchor=_penalty.tree_copy(params),
                   prev_params=_penalty.tree_copy(params), prev_grad=zeros())

  def update_fn(updates, state, params=None, **extra_args):
    del extra_args
    _penalty.require_params(params, "si")
    chex.assert_trees_all_equal_shapes(updates, params)
    omega = jax.tree.map(lambda w, g, p, q: w - g * (p - q), state.omega,
                         state.prev_grad, params, state.prev_params)
    new_updates = jax.tree.map(
        lambda u, o, p, a: (u + 2.0 * strength * o * (p - a)).astype(u.dtype),
        updates, state.importance, params, state.anchor)
    # Record the task-loss gradient (before the penalty), as Zenke et al.
    new_state = SIState(omega=omega, importance=state.importance,
                        anchor=state.anchor, prev_params=params,
                        prev_grad=jax.tree.map(
                            lambda u, w: u.astype(w.dtype), updates,
                            state.prev_grad))
    return new_updates, new_state

  return _penalty.maybe_masked(
      optax.GradientTransformationExtraArgs(init_fn, update_fn), param_filter)


def consolidate(state: SIState, params: Any, *, damping: float = 1e-3
                ) -> SIState:
  """Ends a task: ``Omega += omega / (Delta^2 + xi)``, new anchor, reset.

  Args:
    state: the current ``SIState`` (:func:`find_si_state`).
    params: the parameters at the end of the task (after its last update).
    damping: :math:`\\xi` (Zenke et al.: 1e-3 on split MNIST).

  Returns:
    The state for the next task: ``omega`` and ``prev_grad`` zero, ``anchor``
    and ``prev_params`` = ``params``.
  """
  params = _penalty.like_state(state.omega, params)
  # The last update's term: its parameter change is only visible now.
  omega = jax.tree.map(lambda w, g, p, q: w - g * (p - q), state.omega,
                       state.prev_grad, params, state.prev_params)
  importance = jax.tree.map(
      lambda big, w, p, a: big + w / ((p - a) ** 2 + damping),
      state.importance, omega, params, state.anchor)
  # Distinct buffers for every slot: the train step donates its state, and
  # XLA refuses one buffer donated twice.
  zeros = lambda: jax.tree.map(jnp.zeros_like, state.omega)  # noqa: E731
  return SIState(omega=zeros(), importance=importance,
                 anchor=_penalty.tree_copy(params),
                 prev_params=_penalty.tree_copy(params), prev_grad=zeros())


def penalty(state: SIState, params: Any, strength: float = 0.1) -> jax.Array:
  """``c * sum Omega (params - anchor)^2`` (for logging and tests)."""
  params = _penalty.like_state(state.importance, params)
  leaves = jax.tree.leaves(jax.tree.map(
      lambda o, p, a: jnp.sum(o * (p - a) ** 2), state.importance, params,
      state.anchor))
  return strength * sum(leaves, jnp.zeros((), jnp.float32))


def find_si_state(opt_state: Any) -> SIState:
  """The ``SIState`` inside any optax state."""
  return _penalty.find_state(opt_state, SIState)


def replace_si_state(opt_state: Any, new: SIState) -> Any:
  """``opt_state`` with its ``SIState`` replaced (``optax.tree.set``)."""
  return _penalty.replace_state(opt_state, new)


def make(context: StrategyContext, strength: float = 0.1,
         damping: float = 1e-3, apply_to: str = "all") -> Strategy:
  """The SI strategy for the cljax loop.

  Args:
    context: unused (SI needs no data at task ends).
    strength: :math:`c` (EVDA: 1e-4 with its loss scale; Zenke et al. tune
      it per benchmark, 0.1 on split MNIST).
    damping: :math:`\\xi`.
    apply_to: ``"all"``, ``"classifier"`` or ``"backbone"`` parameters.

  Returns:
    A ``Strategy`` with ``tx`` and ``end_task``.
  """
  del context
  if apply_to not in APPLY_TO:
    raise registry.ConfigError(
        f"config.strategy.apply_to={apply_to!r}: choose one of "
        f"{list(APPLY_TO)}.")
  for field, value in (("strength", strength), ("damping", damping)):
    if not (isinstance(value, (int, float)) and value >= 0):
      raise registry.ConfigError(
          f"config.strategy.{field}={value!r}: expected a number >= 0.")
  if damping == 0:
    raise registry.ConfigError(
        "config.strategy.damping=0 divides by zero for parameters that did "
        "not move; use a small positive value such as 1e-3.")

  def end_task(state, task: TaskContext):
    del task
    opt_state = state.opt_state
    new = consolidate(find_si_state(opt_state), state.params, damping=damping)
    return state.replace(opt_state=replace_si_state(opt_state, new))

  return Strategy(name="si",
                  tx=si(strength, param_filter=select_params(apply_to)),
                  end_task=end_task)
