"""Data: task streams, the synthetic stream and the grain input pipelines.

* ``Stream`` / ``Task`` — what the continual loop iterates over
  (``cljax.data.stream``).
* ``synthetic_audio_stream`` — a procedural deepfake stream for tests and
  smoke runs (``cljax.data.synthetic``).
* ``train_dataset`` / ``train_iterator`` / ``eval_batches`` /
  ``num_steps_for`` — grain loaders (``cljax.data.loader``).
"""

from __future__ import annotations

from cljax.data.loader import (eval_batches, num_steps_for, train_dataset,
                               train_iterator)
from cljax.data.stream import RandomAccessSource, Stream, Task
from cljax.data.synthetic import synthetic_audio_stream

__all__ = ["RandomAccessSource", "Stream", "Task", "eval_batches",
           "num_steps_for", "synthetic_audio_stream", "train_dataset",
           "train_iterator"]
