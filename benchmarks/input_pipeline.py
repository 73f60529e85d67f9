r"""Is the input pipeline fast enough? Loader vs step; JAX vs librosa LFCC.

  python benchmarks/input_pipeline.py [--config=configs/finetune_audio.py] \
      [--variant=default] [--steps=200] [--repeats=5] [--lfcc_batch=32]

Everything is measured in this process; each figure is the median over
``--repeats`` (other jobs share the CPU, so single repeats are noisy).

1. Loader vs step. From the config (``cljax.train.build_experiment``, so
   whatever stream, crop, model and front end the config uses):

   * loader: examples/s of ``loader.train_dataset`` + ``train_iterator``
     with the config's ``worker_count`` / ``read_threads``, iterated alone
     (crops, batching), in steady state (after the first epoch, which
     fills the loader's memory cache) and, separately, over the first
     epoch (every record read and decoded from the source);
   * step: examples/s of the jitted train step (front end, model, loss,
     strategy, optimizer) on one batch already on the device.

   Ratio loader / step; target >= 3 (the loader must not be the
   bottleneck).

2. LFCC: the JAX front end (``cljax.features.lfcc``, jitted, warm) against
   the same computation with librosa (``librosa.stft``) + numpy/scipy on a
   ``[lfcc_batch, 64000]`` batch of 4-s clips: seconds per batch and the
   speed ratio, after checking both give the same features.

Measured on the 2-core CPU VM (shared with other jobs), default variant:
see the README paragraph "Input pipeline" for the numbers.
"""

from __future__ import annotations

import importlib.util
import statistics
import time

from absl import app
from absl import flags
import jax
import librosa
import ml_collections
import numpy as np
import scipy.fft

from cljax import step as step_lib
from cljax import train
from cljax.data import loader
from cljax.features import lfcc as lfcc_lib  # the module

_CONFIG = flags.DEFINE_string("config", "configs/finetune_audio.py",
                              "Config file whose get_config(variant) to use.")
_VARIANT = flags.DEFINE_string("variant", None, "Config variant.")
_STEPS = flags.DEFINE_integer("steps", 200, "Batches per timing.")
_REPEATS = flags.DEFINE_integer("repeats", 5, "Timings per figure (median).")
_LFCC_BATCH = flags.DEFINE_integer("lfcc_batch", 32, "Clips per LFCC batch.")
_SYNTHETIC = flags.DEFINE_bool(
    "synthetic", False, "Replace the config's stream by the procedural one "
    "(256 clips per class of crop_seconds + 0.5 s), e.g. where the "
    "config's corpus is not built.")


def _load_config(path: str, variant: str | None):
  spec = importlib.util.spec_from_file_location("benchmark_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(variant)


def librosa_lfcc(waves: np.ndarray, sample_rate: int = 16000,
                 n_fft: int = 512, win_length: int = 320,
                 hop_length: int = 160, n_filters: int = 40) -> np.ndarray:
  """The HM-Conformer LFCC with librosa's STFT and numpy (host baseline)."""
  emphasised = np.concatenate(
      [waves[:, :1], waves[:, 1:] - 0.97 * waves[:, :-1]], axis=1)
  spectrum = librosa.stft(emphasised, n_fft=n_fft, hop_length=hop_length,
                          win_length=win_length, window="hamming",
                          center=True, pad_mode="constant")
  power = (np.abs(spectrum) ** 2).transpose(0, 2, 1)          # [B, T, F]
  bank = lfcc_lib.linear_filterbank(sample_rate, n_fft, n_filters)
  eps = np.finfo(np.float32).eps
  coefs = scipy.fft.dct(np.log10(power @ bank + eps), type=2, norm="ortho",
                        axis=-1)
  coefs[..., 0] = np.log10(power.sum(-1) / n_fft + eps)

  def delta(x):
    padded = np.concatenate([x[:, :1], x, x[:, -1:]], axis=1)
    return padded[:, 2:] - padded[:, :-2]

  first = delta(coefs)
  return np.concatenate([coefs, first, delta(first)], axis=-1)


def _median_time(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def loader_vs_step(config, steps: int, repeats: int) -> None:
  exp = train.build_experiment(config)
  batch_size = config.data.batch_size
  sources = exp.train_sources(0)
  # Read every record once: a generating source (synthetic) fills its own
  # cache and a file source the OS page cache, as in a long run.
  for source in sources:
    for index in range(len(source)):
      source[index]  # pylint: disable=pointless-statement
  train_step = step_lib.make_train_step(
      model=exp.model, frontend=exp.frontend, strategy=exp.strategy,
      tx=exp.tx, mesh=exp.mesh)
  epoch_batches = max(1, -(-loader.total_length(sources) // batch_size))
  dataset = loader.train_dataset(
      sources, batch_size=batch_size, crop_length=exp.crop_length,
      num_steps=steps * repeats + epoch_batches + 1, seed=0,
      pad_mode=config.data.pad_mode)
  state = train.initial_state(exp)
  device_batch = step_lib.put_batch(dataset[0], exp.mesh)
  for _ in range(3):  # Compile and warm up.
    state, metrics = train_step(state, device_batch)
  jax.block_until_ready(metrics)

  iterator = loader.train_iterator(
      dataset, worker_count=config.data.worker_count,
      read_threads=config.data.read_threads)
  next(iterator)  # Start workers / threads outside the timing.
  # The first epoch reads every record from the source (and fills the
  # loader's memory cache); later epochs are the steady state timed below.
  start = time.perf_counter()
  for _ in range(epoch_batches):
    next(iterator)
  cold_rate = epoch_batches * batch_size / (time.perf_counter() - start)

  def read():
    for _ in range(steps):
      next(iterator)

  def run_steps():
    nonlocal state
    for _ in range(steps):
      state, metrics = train_step(state, device_batch)
    jax.block_until_ready((state, metrics))

  print(f"stream: {exp.stream.name} (synthetic={exp.stream.synthetic})  "
        f"model: {config.model.name}  frontend: {config.frontend.name}  "
        f"batch: {batch_size}  crop: {exp.crop_length} samples  workers: "
        f"{config.data.worker_count}  read_threads: "
        f"{config.data.read_threads}  devices: {jax.devices()}")
  loader_rates, step_rates = [], []
  for repeat in range(repeats):
    loader_rates.append(steps * batch_size / _median_time(read, 1))
    step_rates.append(steps * batch_size / _median_time(run_steps, 1))
    print(f"  repeat {repeat}: loader {loader_rates[-1]:9.0f} ex/s   step "
          f"{step_rates[-1]:9.0f} ex/s   ratio "
          f"{loader_rates[-1] / step_rates[-1]:5.1f}x")
  if hasattr(iterator, "close"):
    iterator.close()
  loader_rate = statistics.median(loader_rates)
  step_rate = statistics.median(step_rates)
  print(f"loader {loader_rate:.0f} ex/s vs train step {step_rate:.0f} ex/s:"
        f" ratio {loader_rate / step_rate:.1f}x (target >= 3x; median of "
        f"{repeats}); first epoch (records read from the source) "
        f"{cold_rate:.0f} ex/s: ratio {cold_rate / step_rate:.1f}x")


def lfcc_speed(batch: int, repeats: int) -> None:
  rng = np.random.default_rng(0)
  waves = (0.1 * rng.standard_normal((batch, 64000))).astype(np.float32)
  jax_lfcc = jax.jit(lfcc_lib.lfcc)
  device_waves = jax.device_put(waves)
  ours = np.asarray(jax_lfcc(device_waves))   # Compile.
  theirs = librosa_lfcc(waves)
  assert ours.shape == theirs.shape == (batch, 401, 120), ours.shape
  worst = float(np.max(np.abs(ours - theirs)))
  jax_time = _median_time(
      lambda: jax_lfcc(device_waves).block_until_ready(), repeats)
  librosa_time = _median_time(lambda: librosa_lfcc(waves), repeats)
  print(f"LFCC of {batch} x 64000 samples -> {ours.shape}: JAX (jit, warm) "
        f"{1e3 * jax_time:.1f} ms/batch, librosa+numpy "
        f"{1e3 * librosa_time:.1f} ms/batch: JAX is "
        f"{librosa_time / jax_time:.1f}x faster (max |diff| {worst:.1e}; "
        f"median of {repeats})")


def main(argv) -> None:
  del argv
  config = _load_config(_CONFIG.value, _VARIANT.value)
  if _SYNTHETIC.value:
    with config.unlocked():
      config.data.stream = ml_collections.ConfigDict(dict(
          name="synthetic_audio", num_tasks=2, train_per_class=256,
          test_per_class=8, val_per_class=0,
          seconds=config.data.crop_seconds + 0.5, seed=0))
  loader_vs_step(config, _STEPS.value, _REPEATS.value)
  lfcc_speed(_LFCC_BATCH.value, _REPEATS.value)


if __name__ == "__main__":
  app.run(main)
