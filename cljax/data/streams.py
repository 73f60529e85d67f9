"""The registry of streams a config can name in ``config.data.stream.name``."""

from __future__ import annotations

from typing import Any, Callable, Mapping

from cljax import registry
from cljax.data import corpus_streams
from cljax.data import image_streams
from cljax.data.digits import digits_stream
from cljax.data.grouped import grouped_stream
from cljax.data.image_stream import image_benchmark_stream
from cljax.data.speech_stream import speech_benchmark_stream
from cljax.data.stream import Stream
from cljax.data.synthetic import synthetic_audio_stream

STREAMS: dict[str, Callable[..., Stream]] = {
    "synthetic_audio": synthetic_audio_stream,
    # Over a user's own copy of a corpus (cljax.data.corpus_streams).
    "asvspoof2019_la_attacks": corpus_streams.asvspoof2019_la_attacks,
    "corpus_incremental": corpus_streams.corpus_incremental,
    "audio_folder": corpus_streams.audio_folder,
    "evda_features": corpus_streams.evda_features,
    # Images over a user's copy (cljax.data.image_streams).
    "image_folders": image_streams.image_folders,
    "cddb_easy": image_streams.cddb_easy,
    "cddb_long": image_streams.cddb_long,
    "seed001_sequence": image_streams.seed001_sequence,
    "speech_benchmark": speech_benchmark_stream,
    "digits": digits_stream,
    # The embedded image benchmark (cljax.data.image_stream).
    "image_benchmark": image_benchmark_stream,
    # Another stream's tasks merged into groups (cljax.group writes these).
    "grouped": grouped_stream,
}


def make_stream(block: Mapping[str, Any]) -> Stream:
  """Builds the stream named by ``config.data.stream``, fields checked."""
  return registry.build(STREAMS, block, "data.stream")
