"""Run-folder I/O: JSONL/TensorBoard/wandb logs, result matrices, plots.

``MetricWriter`` and ``read_jsonl`` (``cljax.io.writers``) and
``ResultMatrix`` (``cljax.io.results``) are re-exported here; plots live in
``cljax.io.plots`` and are not imported eagerly because matplotlib is slow
to import and the training loop only needs it at task boundaries.
"""

from __future__ import annotations

from cljax.io.results import ResultMatrix
from cljax.io.writers import MetricWriter
from cljax.io.writers import read_jsonl

__all__ = ["MetricWriter", "ResultMatrix", "read_jsonl"]
