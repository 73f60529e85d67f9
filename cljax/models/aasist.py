r"""AASIST and AASIST-L (Jung et al., ICASSP 2022), ported from clovaai/aasist.

Verified against clovaai/aasist ``models/AASIST.py`` (commit 8ec3bf9) and
``config/AASIST.conf`` / ``config/AASIST-L.conf``:

=============  ==========================================  =====================
field          AASIST                                      AASIST-L
=============  ==========================================  =====================
first_conv     128 (made odd: 129 taps)                    128
filts          70, [1,32], [32,32], [32,64], [64,64]       70, [1,32], [32,32],
                                                           [32,24], [24,24]
gat_dims       [64, 32]                                    [24, 32]
pool_ratios    [0.5, 0.7, 0.5, 0.5]                        [0.4, 0.5, 0.7, 0.5]
temperatures   [2.0, 2.0, 100.0, 100.0]                    same
=============  ==========================================  =====================

Pipeline, for a waveform :math:`x \in \mathbb{R}^{L}` (official 64600
samples):

1. **Sinc front end** (``CONV``): 70 *fixed* (not learnt) band-pass filters,
   mel-spaced edges over 0..8 kHz, ideal band-pass ``sinc`` differences times
   a symmetric Hamming window, 129 taps, no padding. ``|.|``, then 3x3
   max-pool over (filters, time) -> 23 spectral rows; BatchNorm(1); SELU.
2. **Encoder**: six residual blocks (``filts[1], filts[2], filts[3],
   filts[4] x3``): [BN -> SELU] -> Conv(2x3, pad (1,1)) -> BN -> SELU ->
   Conv(2x3, pad (0,1)) (+ 1x3 conv on the skip when widths differ) ->
   max-pool (1,3). **Official quirk kept**: ``out = self.conv1(x)``
   overwrites the pre-activation, so blocks 2-6 compute BN1 -> SELU and
   discard it; BN1's parameters exist (and count) but do not affect the
   output. 64600 samples -> 23 spectral x 29 temporal nodes.
3. **Graphs**: spectral nodes :math:`\max_t |e|` + learnt positions
   ``pos_S [23, C]``; temporal nodes :math:`\max_f |e|`. Each through a graph
   attention layer (GAT): attention
   :math:`a_{ij} = \mathrm{softmax}_j(w^\top \tanh(W (h_i \odot h_j)) / \tau)`,
   output :math:`\mathrm{SELU}(BN(W_1 \sum_j a_{ij} h_j + W_2 h_i))`, input
   dropout 0.2; then graph pooling (keep the top ``ratio`` nodes by
   :math:`\sigma(p^\top h)` and scale them by that score; dropout 0.3).
4. **HS-GAL** x2 branches, each two heterogeneous stacking layers with a
   learnt master node (separate attention weights for S-S, T-T and S-T
   edges; master attends over all nodes), pooling between them, residual
   adds; branch outputs combined by element-wise max (dropout 0.2 each).
5. **Readout**: ``[max|T|, mean T, max|S|, mean S, master]`` (5 x
   gat_dims[1] = 160) -> dropout 0.5 = ``embedding`` -> ``classifier``
   Dense(2).

Parameters (PyTorch ``model.parameters()`` count, which includes the unused
BN1s): AASIST 297,866; AASIST-L 85,306 (README: "Model has 85,306
parameters"; paper: 297K). Both tested.

Labels: cljax trains class 0 = genuine; the official code uses 1 = bona fide
and scores with ``output[:, 1]`` — only the column meaning differs.

Input: raw waveform ``[B, L]`` or ``[B, L, 1]`` (``config.frontend.name =
'raw'``). ``L`` must be at least ``first_conv + 3**7`` samples (~0.15 s) so
that one temporal node survives the seven pools.

Example::

  model = AASIST()               # or AASISTL()
  logits, embedding = model.apply(variables, audio, train=False)
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cljax.models import heads

_BN_MOMENTUM = 0.9


@functools.lru_cache(maxsize=8)
def sinc_filters(out_channels: int, kernel_size: int,
                 sample_rate: int = 16000) -> np.ndarray:
  """The official fixed band-pass filters ``[kernel, 1, out]`` (WIO)."""
  if kernel_size % 2 == 0:
    kernel_size += 1                      # Forced odd (symmetric) in CONV.
  to_mel = lambda hz: 2595 * np.log10(1 + hz / 700)  # noqa: E731
  to_hz = lambda mel: 700 * (10 ** (mel / 2595) - 1)  # noqa: E731
  nfft = 512
  f = int(sample_rate / 2) * np.linspace(0, 1, nfft // 2 + 1)
  fmel = to_mel(f)
  edges = to_hz(np.linspace(np.min(fmel), np.max(fmel), out_channels + 1))
  hsupp = np.arange(-(kernel_size - 1) / 2, (kernel_size - 1) / 2 + 1)
  bank = np.zeros((out_channels, kernel_size), np.float32)
  for i in range(out_channels):
    fmin, fmax = edges[i], edges[i + 1]
    high = (2 * fmax / sample_rate) * np.sinc(2 * fmax * hsupp / sample_rate)
    low = (2 * fmin / sample_rate) * np.sinc(2 * fmin * hsupp / sample_rate)
    bank[i] = (np.hamming(kernel_size) * (high - low)).astype(np.float32)
  return np.ascontiguousarray(bank.T[:, None, :])


def _batch_norm(train: bool, dtype: Any, name: str) -> nn.BatchNorm:
  return nn.BatchNorm(use_running_average=not train, momentum=_BN_MOMENTUM,
                      dtype=dtype, name=name)


class ResidualBlock(nn.Module):
  out_channels: int
  first: bool
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    identity = x
    if not self.first:
      # Official bug kept: this pre-activation is computed and discarded.
      nn.selu(_batch_norm(train, self.dtype, "bn1")(x))
    out = nn.Conv(self.out_channels, (2, 3), padding=((1, 1), (1, 1)),
                  dtype=self.dtype, name="conv1")(x)
    out = nn.selu(_batch_norm(train, self.dtype, "bn2")(out))
    out = nn.Conv(self.out_channels, (2, 3), padding=((0, 0), (1, 1)),
                  dtype=self.dtype, name="conv2")(out)
    if x.shape[-1] != self.out_channels:
      identity = nn.Conv(self.out_channels, (1, 3), padding=((0, 0), (1, 1)),
                         dtype=self.dtype, name="conv_downsample")(identity)
    out = out + identity
    return nn.max_pool(out, (1, 3), strides=(1, 3), padding="VALID")


def _pairwise(x):
  return x[:, :, None, :] * x[:, None, :, :]              # [B, N, N, D]


class GraphAttention(nn.Module):
  out_dim: int
  temperature: float
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool, drop: bool):
    x = nn.Dropout(0.2, deterministic=not drop)(x)
    att = jnp.tanh(nn.Dense(self.out_dim, dtype=self.dtype,
                            name="att_proj")(_pairwise(x)))
    w = self.param("att_weight", nn.initializers.xavier_normal(),
                   (self.out_dim, 1))
    att = (att @ w.astype(att.dtype))[..., 0].astype(jnp.float32)
    att = jax.nn.softmax(att / self.temperature, axis=-1).astype(x.dtype)
    x = (nn.Dense(self.out_dim, dtype=self.dtype, name="proj_with_att")(
        att @ x) + nn.Dense(self.out_dim, dtype=self.dtype,
                            name="proj_without_att")(x))
    return nn.selu(_batch_norm(train, self.dtype, "bn")(x))


class HeteroGraphAttention(nn.Module):
  """``HtrgGraphAttentionLayer``: two node types plus a master node."""

  out_dim: int
  temperature: float
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x1, x2, master, train: bool, drop: bool):
    n1, n2 = x1.shape[1], x2.shape[1]
    in_dim = x1.shape[-1]
    dense = lambda dim, name: nn.Dense(dim, dtype=self.dtype,  # noqa: E731
                                       name=name)
    x = jnp.concatenate([dense(in_dim, "proj_type1")(x1),
                         dense(in_dim, "proj_type2")(x2)], axis=1)
    x = nn.Dropout(0.2, deterministic=not drop)(x)
    init = nn.initializers.xavier_normal()
    w11 = self.param("att_weight11", init, (self.out_dim, 1))
    w22 = self.param("att_weight22", init, (self.out_dim, 1))
    w12 = self.param("att_weight12", init, (self.out_dim, 1))
    w_master = self.param("att_weightM", init, (self.out_dim, 1))

    # Node-to-node attention with a weight per edge type.
    att = jnp.tanh(dense(self.out_dim, "att_proj")(_pairwise(x)))
    scores = att @ jnp.concatenate([w11, w22, w12], 1).astype(att.dtype)
    is_type2 = jnp.arange(n1 + n2) >= n1
    same11 = (~is_type2[:, None]) & (~is_type2[None, :])
    same22 = is_type2[:, None] & is_type2[None, :]
    scores = jnp.where(same11, scores[..., 0],
                       jnp.where(same22, scores[..., 1], scores[..., 2]))
    att = jax.nn.softmax(scores.astype(jnp.float32) / self.temperature,
                         axis=-1).astype(x.dtype)

    # Master node: attends over all nodes (computed from the same x).
    att_m = jnp.tanh(dense(self.out_dim, "att_projM")(x * master))
    att_m = (att_m @ w_master.astype(att_m.dtype))[..., 0]    # [B, N]
    att_m = jax.nn.softmax(att_m.astype(jnp.float32) / self.temperature,
                           axis=-1).astype(x.dtype)
    master = (dense(self.out_dim, "proj_with_attM")(
        jnp.einsum("bn,bnd->bd", att_m, x)[:, None]) +
              dense(self.out_dim, "proj_without_attM")(master))

    x = (dense(self.out_dim, "proj_with_att")(att @ x) +
         dense(self.out_dim, "proj_without_att")(x))
    x = nn.selu(_batch_norm(train, self.dtype, "bn")(x))
    return x[:, :n1], x[:, n1:], master


class GraphPool(nn.Module):
  ratio: float
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, h, drop: bool):
    z = nn.Dropout(0.3, deterministic=not drop)(h)
    scores = jax.nn.sigmoid(nn.Dense(1, dtype=self.dtype, name="proj")(z))
    keep = max(int(h.shape[1] * self.ratio), 1)
    _, idx = jax.lax.top_k(scores[..., 0].astype(jnp.float32), keep)
    return jnp.take_along_axis(h * scores, idx[..., None], axis=1)


class AASIST(nn.Module):
  """AASIST over raw waveforms (defaults: ``config/AASIST.conf``).

  Attributes:
    num_classes: classifier width (2).
    head: ``"softmax"`` (a Dense classifier) or ``"oc_softmax"`` (one-class
      softmax, trained with the OC loss); see ``heads.classifier_head``.
    first_conv: sinc filter length (made odd).
    filts: ``(sinc filters, block1 (in, out), block2, block3, block4)``.
    gat_dims, pool_ratios, temperatures: graph sizes, as the .conf files.
    sample_rate: for the sinc filter design.
    use_dropout: False turns every dropout off (the official rates 0.2,
      0.3, 0.5 are fixed in the code; off is for tests and ablations).
    dtype: computation dtype (``jnp.bfloat16`` for mixed precision).

  Sows ``("intermediates", "nodes")`` = (spectral, temporal) node counts
  after the encoder: (23, 29) for 64600 samples.
  """

  num_classes: int = 2
  head: str = "softmax"
  first_conv: int = 128
  filts: Sequence[Any] = (70, (1, 32), (32, 32), (32, 64), (64, 64))
  gat_dims: Sequence[int] = (64, 32)
  pool_ratios: Sequence[float] = (0.5, 0.7, 0.5, 0.5)
  temperatures: Sequence[float] = (2.0, 2.0, 100.0, 100.0)
  sample_rate: int = 16000
  use_dropout: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, audio: jnp.ndarray, train: bool = False
               ) -> tuple[jnp.ndarray, jnp.ndarray]:
    if audio.ndim == 3 and audio.shape[-1] == 1:
      audio = audio[..., 0]
    if audio.ndim != 2:
      raise ValueError(
          f"AASIST expects a raw waveform [batch, samples] (or [.., 1]), got "
          f"shape {audio.shape}. Use config.frontend.name='raw'.")
    taps = self.first_conv + (self.first_conv + 1) % 2
    if audio.shape[1] < taps + 3 ** 7:
      raise ValueError(
          f"AASIST needs at least {taps + 3 ** 7} samples per clip "
          f"(got {audio.shape[1]}); use a longer crop.")
    filts = [self.filts[0]] + [tuple(f) for f in self.filts[1:]]
    bank = jnp.asarray(sinc_filters(filts[0], self.first_conv,
                                    self.sample_rate), self.dtype)
    x = jax.lax.conv_general_dilated(
        audio[..., None].astype(self.dtype), bank, (1,), "VALID",
        dimension_numbers=("NWC", "WIO", "NWC"))           # [B, L', 70]
    x = jnp.abs(jnp.swapaxes(x, 1, 2))[..., None]        # [B, 70, L', 1]
    x = nn.max_pool(x, (3, 3), strides=(3, 3), padding="VALID")
    x = nn.selu(_batch_norm(train, self.dtype, "first_bn")(x))

    widths = [filts[1], filts[2], filts[3], filts[4], filts[4], filts[4]]
    for i, (_, width) in enumerate(widths):
      x = ResidualBlock(width, first=(i == 0), dtype=self.dtype,
                        name=f"encoder_{i}")(x, train)
    e = jnp.abs(x)                                 # [B, spec, time, C]
    self.sow("intermediates", "nodes", (x.shape[1], x.shape[2]))
    # Dropout layers below read `train`; without dropout they are identities.
    drop_train = train and self.use_dropout

    channels = x.shape[-1]
    pos_s = self.param("pos_S", nn.initializers.normal(1.0),
                       (1, x.shape[1], channels))
    e_s = jnp.max(e, axis=2) + pos_s.astype(e.dtype)
    e_t = jnp.max(e, axis=1)
    d0, d1 = self.gat_dims
    temp = self.temperatures
    out_s = GraphPool(self.pool_ratios[0], self.dtype, name="pool_S")(
        GraphAttention(d0, temp[0], self.dtype, name="GAT_layer_S")(
            e_s, train, drop_train), drop_train)
    out_t = GraphPool(self.pool_ratios[1], self.dtype, name="pool_T")(
        GraphAttention(d0, temp[1], self.dtype, name="GAT_layer_T")(
            e_t, train, drop_train), drop_train)

    def branch(k):
      master = self.param(f"master{k}", nn.initializers.normal(1.0),
                          (1, 1, d0)).astype(self.dtype)
      t1, s1, m1 = HeteroGraphAttention(
          d1, temp[2], self.dtype, name=f"HtrgGAT_layer_ST{k}1")(
              out_t, out_s, master, train, drop_train)
      s1 = GraphPool(self.pool_ratios[2], self.dtype, name=f"pool_hS{k}")(
          s1, drop_train)
      t1 = GraphPool(self.pool_ratios[2], self.dtype, name=f"pool_hT{k}")(
          t1, drop_train)
      t_aug, s_aug, m_aug = HeteroGraphAttention(
          d1, temp[2], self.dtype, name=f"HtrgGAT_layer_ST{k}2")(
              t1, s1, m1, train, drop_train)
      return t1 + t_aug, s1 + s_aug, m1 + m_aug

    drop_way = nn.Dropout(0.2, deterministic=not drop_train)
    t1, s1, m1 = (drop_way(v) for v in branch(1))
    t2, s2, m2 = (drop_way(v) for v in branch(2))
    out_t = jnp.maximum(t1, t2)
    out_s = jnp.maximum(s1, s2)
    master = jnp.maximum(m1, m2)
    hidden = jnp.concatenate(
        [jnp.max(jnp.abs(out_t), axis=1), jnp.mean(out_t, axis=1),
         jnp.max(jnp.abs(out_s), axis=1), jnp.mean(out_s, axis=1),
         master[:, 0]], axis=-1).astype(jnp.float32)
    embedding = nn.Dropout(0.5, deterministic=not drop_train)(hidden)
    logits = heads.classifier_head(self, embedding, self.head,
                                   self.num_classes)
    return logits, embedding


class AASISTL(AASIST):
  """AASIST-L: the light configuration (``config/AASIST-L.conf``)."""

  filts: Sequence[Any] = (70, (1, 32), (32, 32), (32, 24), (24, 24))
  gat_dims: Sequence[int] = (24, 32)
  pool_ratios: Sequence[float] = (0.4, 0.5, 0.7, 0.5)
