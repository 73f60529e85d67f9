"""Replay memories: fixed-capacity pytrees of device arrays, jittable.

``buffer`` holds the memory itself (``ReplayBuffer``, ``empty``, ``sample``,
``nbytes``); each insertion or selection policy is one module beside it.
"""

from cljax.replay.buffer import ReplayBuffer
from cljax.replay.buffer import check_capacity
from cljax.replay.buffer import check_replay_batch_size
from cljax.replay.buffer import empty
from cljax.replay.buffer import example_spec
from cljax.replay.buffer import gather
from cljax.replay.buffer import nbytes
from cljax.replay.buffer import sample

__all__ = ["ReplayBuffer", "check_capacity", "check_replay_batch_size",
           "empty", "example_spec", "gather", "nbytes", "sample"]
