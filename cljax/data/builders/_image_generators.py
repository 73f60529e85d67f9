"""Fake-image generator families of the embedded image benchmark, and the channel.

Each family turns a batch of genuine crops ``[N, W, W, 3]`` (uint8, the
working size ``W``, a little larger than the stored size ``S``) into fakes
of the same shape, one fake per genuine crop. The families leave different
traces in the spectrum (that is what a detector has to learn, and what
makes a stream of them forget under fine-tuning):

* ``bicubic_x2``: antialiased x2 downscale, bicubic x2 upscale (the band
  above half the Nyquist frequency is missing);
* ``bilinear_x4``: x4 down, bilinear x4 up (missing above a quarter of it,
  with bilinear's slow roll-off);
* ``nearest_x2``: x2 down, nearest-neighbour x2 up (2x2 blocks: spectral
  replicas with a cosine envelope);
* ``jpeg_q30``: JPEG at quality 20-40 (8x8 block grid, quantised DCT);
* ``decoder_d2s``: a random-weight two-layer convolutional decoder with
  depth-to-space (sub-pixel) x2 up-sampling over a bilinear skip: the
  checkerboard of transposed convolutions. ``lax.conv_transpose`` would be
  10-30x slower on CPU; conv + depth-to-space is the same operator family.
  One fixed set of weights per build (a generator has fixed weights: seeds
  of one family share a fingerprint);
* ``autoencoder``: a small convolutional autoencoder (stride-2 encoder,
  conv + depth-to-space decoder, 4x spatial down-sampling) trained with
  Adam on the *genuine train* crops during the build (a few hundred steps,
  seconds on CPU); its reconstructions are the fakes.

Every fake then gets its source crop's per-channel mean and std
(``match_moments``), and genuine and fake go through the same ``channel``
(Lanczos resize ``W -> S``, JPEG quality 90; the fake's moments matched to
its resized source once more before the JPEG), so colour, brightness,
contrast and the final compression carry no label. A small GAN collapsed in
every try on a 2-core CPU and is not a family.
"""

from __future__ import annotations

import io
from typing import Callable, Sequence

import numpy as np

CHANNEL_JPEG_QUALITY = 90


def _pil():
  from PIL import Image  # pylint: disable=g-import-not-at-top
  return Image


def resize(image: np.ndarray, size: int, method: str) -> np.ndarray:
  """uint8 ``[H, W, 3]`` to ``[size, size, 3]`` with PIL (antialiased down)."""
  Image = _pil()  # pylint: disable=invalid-name
  kinds = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR,
           "nearest": Image.NEAREST, "lanczos": Image.LANCZOS,
           "box": Image.BOX}
  return np.asarray(Image.fromarray(image).resize((size, size), kinds[method]),
                    np.uint8)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
  """One JPEG encode/decode (PIL, 4:2:0 chroma) of a uint8 RGB image."""
  buffer = io.BytesIO()
  _pil().fromarray(image).save(buffer, format="JPEG", quality=int(quality))
  buffer.seek(0)
  with _pil().open(buffer) as decoded:
    return np.asarray(decoded.convert("RGB"), np.uint8)


def channel(image: np.ndarray, size: int,
            reference: np.ndarray | None = None) -> np.ndarray:
  """The shared channel: Lanczos resize to ``size``, then JPEG quality 90.

  With ``reference`` (a fake's source crop, already through ``resize``),
  the resized fake's per-channel mean and std are matched to it once more
  just before the JPEG: the resize removes the band above the new Nyquist
  frequency, which holds more of a noisy fake's energy than of its source
  (the random decoder's std dropped ~2 %, enough for AUC 0.60 on means and
  stds alone).
  """
  small = resize(image, size, "lanczos")
  if reference is not None:
    small = match_moments(small, reference)
  return jpeg(small, CHANNEL_JPEG_QUALITY)


def match_moments(fake: np.ndarray, source: np.ndarray) -> np.ndarray:
  """``fake`` (float or uint8 ``[H, W, 3]``) with ``source``'s per-channel
  mean and std, clipped and rounded to uint8."""
  fake = fake.astype(np.float64)
  source = source.astype(np.float64)
  mu_f, sd_f = fake.mean((0, 1)), fake.std((0, 1))
  mu_s, sd_s = source.mean((0, 1)), source.std((0, 1))
  out = (fake - mu_f) / np.maximum(sd_f, 1e-6) * sd_s + mu_s
  return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _resample_family(down: int, up_method: str):
  def generate(crops: np.ndarray, rng: np.random.Generator, **unused):
    del rng, unused
    size = crops.shape[1]
    return np.stack([resize(resize(c, size // down, "box"), size, up_method)
                     for c in crops])
  generate.__doc__ = (f"x{down} box downscale, {up_method} x{down} upscale.")
  return generate


def jpeg_low_quality(crops: np.ndarray, rng: np.random.Generator, **unused):
  """JPEG at a random quality in 20..40 per image."""
  del unused
  return np.stack([jpeg(c, int(rng.integers(20, 41))) for c in crops])


# --- Convolution + depth-to-space in numpy (build time; no compile).

def _conv3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
  """'Same' 3x3 convolution of ``x [N, H, W, C]`` with ``w [3, 3, C, K]``."""
  padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
  height, width = x.shape[1:3]
  out = np.zeros(x.shape[:3] + (w.shape[-1],), np.float32)
  for i in range(3):
    for j in range(3):
      out += padded[:, i:i + height, j:j + width, :] @ w[i, j]
  return out + b


def depth_to_space(x: np.ndarray, factor: int) -> np.ndarray:
  """``[N, H, W, C*f*f]`` -> ``[N, H*f, W*f, C]`` (the sub-pixel shuffle)."""
  n, h, w, c = x.shape
  c_out = c // (factor * factor)
  x = x.reshape(n, h, w, factor, factor, c_out)
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, h * factor, w * factor, c_out)


def random_decoder(crops: np.ndarray, rng: np.random.Generator, *,
                   family_rng: np.random.Generator, **unused):
  """Random-weight conv + depth-to-space x2 decoder over a bilinear skip."""
  del rng, unused
  size = crops.shape[1]
  hidden = 16
  # Fixed weights for the whole family (drawn once from the build seed).
  w1 = family_rng.normal(0, np.sqrt(2 / 27), (3, 3, 3, hidden)).astype(np.float32)
  b1 = family_rng.normal(0, 0.05, hidden).astype(np.float32)
  w2 = family_rng.normal(0, 0.35 / np.sqrt(9 * hidden),
                         (3, 3, hidden, 12)).astype(np.float32)
  small = np.stack([resize(c, size // 2, "box") for c in crops]
                   ).astype(np.float32) / 255.0
  skip = np.stack([resize(c, size, "bilinear") for c in
                   (small * 255).round().astype(np.uint8)]
                  ).astype(np.float32) / 255.0
  h = np.maximum(_conv3x3(small, w1, b1), 0.0)
  residual = depth_to_space(_conv3x3(h, w2, np.zeros(12, np.float32)), 2)
  return (skip + residual) * 255.0


def train_autoencoder(train_crops: np.ndarray, steps: int, seed: int,
                      batch_size: int = 32):
  """Trains the family's autoencoder on genuine crops; returns ``apply(x)``.

  ``x`` and the output are float32 ``[N, W, W, 3]`` in [0, 1]; ``W`` must be
  a multiple of 4.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  def d2s(x):
    n, h, w, c = x.shape
    x = x.reshape(n, h, w, 2, 2, c // 4)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, c // 4)

  class AutoEncoder(nn.Module):
    """Stride-2 conv encoder (W -> W/4, 16 channels), sub-pixel decoder."""

    @nn.compact
    def __call__(self, x):
      x = nn.relu(nn.Conv(32, (3, 3), strides=2)(x))
      x = nn.relu(nn.Conv(16, (3, 3), strides=2)(x))
      x = nn.relu(d2s(nn.Conv(4 * 32, (3, 3))(x)))
      x = d2s(nn.Conv(4 * 3, (3, 3))(x))
      return nn.sigmoid(x)

  model = AutoEncoder()
  data = jnp.asarray(train_crops, jnp.float32) / 255.0
  params = model.init(jax.random.PRNGKey(seed), data[:1])
  optimizer = optax.adam(2e-3)
  opt_state = optimizer.init(params)

  @jax.jit
  def step(params, opt_state, key):
    index = jax.random.randint(key, (batch_size,), 0, data.shape[0])
    batch = data[index]

    def loss_fn(p):
      return jnp.mean((model.apply(p, batch) - batch) ** 2)

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  key = jax.random.PRNGKey(seed + 1)
  for _ in range(steps):
    key, sub = jax.random.split(key)
    params, opt_state, _ = step(params, opt_state, sub)
  apply = jax.jit(model.apply)

  def run(x: np.ndarray) -> np.ndarray:
    out = [np.asarray(apply(params, jnp.asarray(x[i:i + 256])))
           for i in range(0, len(x), 256)]
    return np.concatenate(out) if out else np.zeros_like(x)
  return run


def autoencoder(crops: np.ndarray, rng: np.random.Generator, *,
                autoencoder_fn: Callable[[np.ndarray], np.ndarray], **unused):
  """Convolutional autoencoder trained on the genuine train crops."""
  del rng, unused
  return autoencoder_fn(crops.astype(np.float32) / 255.0) * 255.0


GENERATORS: dict[str, Callable[..., np.ndarray]] = {
    "bicubic_x2": _resample_family(2, "bicubic"),
    "jpeg_q30": jpeg_low_quality,
    "decoder_d2s": random_decoder,
    "autoencoder": autoencoder,
    "bilinear_x4": _resample_family(4, "bilinear"),
    "nearest_x2": _resample_family(2, "nearest"),
}
DEFAULT_FAMILIES: tuple[str, ...] = tuple(GENERATORS)


def check_families(families: Sequence[str]) -> tuple[str, ...]:
  """``families`` as a tuple, or ValueError naming the config field."""
  families = tuple(families)
  if not families:
    raise ValueError("config.data.stream.families is empty; name at least "
                     f"one of {list(GENERATORS)}.")
  for family in families:
    if family not in GENERATORS:
      raise ValueError(
          f"config.data.stream.families: unknown family {family!r}; choose "
          f"from {list(GENERATORS)}.")
  if len(set(families)) != len(families):
    raise ValueError(f"config.data.stream.families={families} repeats a "
                     "family; each task needs its own.")
  return families
