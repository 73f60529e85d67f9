"""TFDS builders (array_record, no TensorFlow needed) of the cljax corpora."""
