"""Host-side evaluation metrics: EER, AUC, accuracy, result-matrix summaries.

Everything here is numpy on gathered per-trial outputs. Scores are
"higher = more genuine" (log-odds of class 0, bona fide); values are
fractions in [0, 1]; ``format_value`` prints them in percent.
"""

from __future__ import annotations

from cljax.metrics.accuracy import accuracy
from cljax.metrics.accuracy import balanced_accuracy
from cljax.metrics.auc import roc_auc
from cljax.metrics.eer import compute_det_curve
from cljax.metrics.eer import compute_eer
from cljax.metrics.eer import equal_error_rate
from cljax.metrics.matrix import average_final
from cljax.metrics.matrix import average_incremental
from cljax.metrics.matrix import backward_transfer
from cljax.metrics.matrix import bwt
from cljax.metrics.matrix import forgetting
from cljax.metrics.matrix import forward_transfer
from cljax.metrics.matrix import fwt
from cljax.metrics.matrix import in_domain
from cljax.metrics.matrix import next_domain
from cljax.metrics.matrix import summarize
from cljax.metrics.registry import compute_metrics
from cljax.metrics.registry import format_value
from cljax.metrics.registry import get_metric
from cljax.metrics.registry import Metric
from cljax.metrics.registry import METRICS
from cljax.metrics.tdcf import min_tdcf

__all__ = [
    "METRICS",
    "Metric",
    "accuracy",
    "average_final",
    "average_incremental",
    "backward_transfer",
    "balanced_accuracy",
    "bwt",
    "compute_det_curve",
    "compute_eer",
    "compute_metrics",
    "equal_error_rate",
    "forgetting",
    "format_value",
    "forward_transfer",
    "fwt",
    "get_metric",
    "in_domain",
    "min_tdcf",
    "next_domain",
    "roc_auc",
    "summarize",
]
