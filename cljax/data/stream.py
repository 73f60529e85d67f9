"""Tasks and streams: what the continual loop iterates over.

A *stream* is an ordered tuple of tasks. A *task* names its splits; each split
is a random-access source (anything with ``__len__`` and ``__getitem__``, e.g.
``tfds.data_source(...)`` or an in-memory list) whose records are dicts::

    {"audio": np.ndarray (num_samples,) int16 or float32,
     "label": int,          # 0 = bona fide / real, 1.. = spoof / fake classes
     "utt_id": str}

Class 0 is always the genuine class: scores are "higher = more genuine", as
the ASVspoof evaluation code expects.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Protocol, Sequence

import numpy as np


class RandomAccessSource(Protocol):
  """The protocol grain's ``MapDataset.source`` accepts."""

  def __len__(self) -> int: ...

  def __getitem__(self, index: int) -> Mapping[str, Any]: ...


class Concatenated:
  """Several random-access sources read one after the other, as one.

  Picklable (grain worker processes read it). ``len`` is the sum of the
  sources' lengths; an index past the end raises IndexError.
  """

  def __init__(self, sources: Sequence[RandomAccessSource]):
    self._sources = list(sources)
    self._ends = np.cumsum([len(s) for s in self._sources], dtype=np.int64)

  def __len__(self) -> int:
    return int(self._ends[-1]) if len(self._ends) else 0

  def __getitem__(self, index: int) -> Mapping[str, Any]:
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"index {index} out of range for {len(self)} records")
    which = int(np.searchsorted(self._ends, index, side="right"))
    start = int(self._ends[which - 1]) if which else 0
    return self._sources[which][index - start]


@dataclasses.dataclass(frozen=True)
class Task:
  """One step of a stream: a generator family, an attack set or a corpus."""

  name: str
  splits: Mapping[str, RandomAccessSource]
  metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def split(self, name: str) -> RandomAccessSource:
    if name not in self.splits:
      raise KeyError(
          f"Task {self.name!r} has no split {name!r}; it has "
          f"{sorted(self.splits)}. Set the split name in the config "
          "(e.g. config.data.eval_split) to one of these.")
    source = self.splits[name]
    if len(source) == 0:
      raise ValueError(
          f"Split {name!r} of task {self.name!r} is empty: check the corpus "
          "folder or protocol that defines it.")
    return source


@dataclasses.dataclass(frozen=True)
class Stream:
  """An ordered sequence of tasks sharing one label space and sample rate."""

  name: str
  tasks: Sequence[Task]
  class_names: Sequence[str]
  sample_rate: int
  # True for procedurally generated data: announced loudly in the output so
  # that nobody mistakes a smoke run for a result on real speech.
  synthetic: bool = False
  # Test-only tasks scored after every task, never trained on (e.g. seed
  # 001's NeuralTextures); each has a "test" split.
  unseen_tasks: Sequence[Task] = ()

  @property
  def num_classes(self) -> int:
    return len(self.class_names)

  @property
  def task_names(self) -> list[str]:
    return [task.name for task in self.tasks]

  def __len__(self) -> int:
    return len(self.tasks)
