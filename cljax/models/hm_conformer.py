r"""HM-Conformer (Shin et al., ICASSP 2024), ported from the official code.

Verified line by line against talkingnow/HM-Conformer (commit 483d017):
``frontend/hm_conformer.py`` (MCA), ``wenet/transformer/
encoder_mp_nonlpe_hieracls22.py`` (encoder loop, CLS extraction),
``encoder_layer_mp_nonlpe_hieracls22.py`` (block + hierarchical pooling),
``convolution_simple.py`` (conv module that skips the CLS tokens),
``subsampling.py`` (``Conv2dSubsampling2`` + 3 CLS tokens),
``backend/attention.py`` (``SelfWeightedPooling``), ``backend/cls_backend.py``
(heads), ``framework/deepfake_detection_DA_multiloss.py`` (which head reads
what), ``hm_conformer/arguments.py`` and ``main.py`` (hyper-parameters); the
relative-position attention is WeNet's ``RelPositionMultiHeadedAttention``
with ``rel_shift`` commented out.

Input: LFCC features ``[B, T, 120]`` (``cljax.features.lfcc``; 4 s -> 401
frames). With :math:`d = 128`:

1. **Subsampling**: Conv2d(1->128, 3x3, stride 2, VALID) + ReLU ->
   ``[B, 200, 59, 128]`` -> flatten (channel-major, as torch) 7552 ->
   Dense(128). Prepend the CLS tokens ``[c1a, c1b, c0]`` (203 tokens), scale
   all by :math:`\sqrt d` (WeNet ``RelPositionalEncoding``; positions are *not*
   added to x, they feed the attention).
2. **Six macaron conformer blocks** (pre-LN, LayerNorm eps 1e-12, dropout 0.1):
   :math:`x \mathrel{+}= \tfrac12 FF(LN x)`; :math:`x \mathrel{+}= MHSA(LN x)`;
   :math:`x \mathrel{+}= Conv(LN x)`; :math:`x \mathrel{+}= \tfrac12 FF(LN x)`;
   :math:`x = LN(x)`. FF: Dense(256) -> Swish -> dropout -> Dense(128).
   MHSA (4 heads, :math:`d_k = 32`):
   :math:`s = [(q + u) k^\top + (q + v) p^\top] / \sqrt{d_k}` with
   :math:`p = W_{pos}\,PE` (sin/cos of absolute positions 0..L-1, no bias) —
   ``rel_shift`` disabled, so :math:`(q+v)p^\top` is a key-position bias.
   Conv module on the frames only (the ``n_cls`` leading tokens are passed
   through *as they come out of the LayerNorm*, so their residual update is
   :math:`x_{cls} + LN(x)_{cls}` — the official code does exactly this):
   Dense(256) -> GLU -> depthwise Conv1d(k=15, SAME) -> BatchNorm -> Swish
   -> Dense(128).
3. **Hierarchical pooling** inside blocks 2 and 4 (indices 1 and 3): token 0
   is taken out, the remaining CLS tokens are kept, frames are max-pooled by
   2 (200 -> 100 -> 50), [CLS, frames] re-scaled by :math:`\sqrt d` with new
   positions; the encoder then emits token 0 as that level's CLS output.
   CLS outputs: ``c1a`` after block 2, ``c1b`` after 4, ``c0`` after 6. Final
   frames -> LayerNorm (``after_norm``).
4. **MCA**: each CLS output -> Dense(128) -> SiLU -> BN -> dropout(0.3);
   frames -> self-weighted pooling :math:`\sum_t x_t\,\mathrm{softmax}_t(
   \tanh(x_t^\top w))` -> dropout(0.3); concat 4x128 -> dropout(0.75) ->
   Dense(128) -> SiLU -> BN = ``embedding``.
5. **Heads** (``CLSBackend`` x5): Dense(64) -> SiLU -> BN, then OC-softmax.
   Heads 0-3 read the four 128-d MCA branch outputs (post dropout 0.3), head
   4 the MCA embedding. Loss weights 0.4, 0.3, 0.2, 0.1, 0.1
   (:func:`cljax.models.heads.hm_conformer_loss`).

Trainable parameters: **2,733,184** = encoder 2,574,592 + MCA 116,352 +
heads 42,240 (as the official model; tested).

Outputs: ``(logits [B, 2], embedding [B, 64])``; ``logits`` are the MCA
head's OC cosine as 2-column logits (:func:`cljax.models.heads.oc_logits`,
genuine = class 0), and ``embedding`` is what that head's OC-softmax reads:
the 64-d head-4 projection of the MCA output (so methods that act on the
classifier, RWM/OWM/iCaRL/CoReD, see the classifier's own input). The five heads' cosines ``[B, 5]`` are sown as
``("intermediates", "head_cos")`` and the frame counts (input, after
subsampling, after each block; CLS tokens excluded) as ``("encoder",
"frames")`` inside ``intermediates`` (use ``mutable=["intermediates"]``):
401, 200, 200, 100, 100, 50, 50, 50 for 4 s.

cljax convention: the main head's OC-softmax module is named ``classifier``
so its direction sits at ``('classifier', 'kernel')`` (``[64, 1]``: no bias
and one column, not one per class). The train step trains the five heads
with their weights (``loss_weights``) through
:func:`cljax.models.heads.training_loss_per_example`.

``faithful=True`` reproduces the official test-time quirk that lives at model
input: the LFCC frame mask (torchaudio ``FrequencyMasking(20)`` on ``[B, T,
F]`` masks *frames*: one batch-shared span of ``randint(0, 20)`` frames set to
0) stays on at test time because the preprocessing module is never switched
to eval. It uses the ``'dropout'`` rng when given, else a fixed key. The
other quirks (coloured noise at test time, model selection on DF21 eval,
roc-curve EER) belong to the front end / recipe / scorer, not the model.
``frame_mask_max`` > 0 applies the same mask in training (official: 20).

Example::

  model = HMConformer()
  features = lfcc_frontend(16000)(audio)          # [B, 401, 120]
  variables = model.init(key, features)
  (logits, emb), inter = model.apply(variables, features,
                                     mutable=["intermediates"])
  head_cos = inter["intermediates"]["head_cos"][0]  # [B, 5]
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cljax.models import heads

_LN_EPS = 1e-12
_BN_MOMENTUM = 0.9  # torch BatchNorm momentum 0.1.
_BN_EPS = 1e-5


def sinusoid_positions(length: int, dim: int) -> np.ndarray:
  """WeNet ``PositionalEncoding.pe[:length]``: sin on even, cos on odd dims."""
  position = np.arange(length, dtype=np.float32)[:, None]
  div_term = np.exp(np.arange(0, dim, 2, dtype=np.float32) *
                    -(math.log(10000.0) / dim))
  pe = np.zeros((length, dim), np.float32)
  pe[:, 0::2] = np.sin(position * div_term)
  pe[:, 1::2] = np.cos(position * div_term)
  return pe


class RelPositionAttention(nn.Module):
  """WeNet relative-position MHSA with ``rel_shift`` disabled."""

  dim: int
  num_heads: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, pos: jnp.ndarray) -> jnp.ndarray:
    batch, length, _ = x.shape
    d_k = self.dim // self.num_heads
    dense = lambda name, bias=True: nn.Dense(  # noqa: E731
        self.dim, use_bias=bias, dtype=self.dtype, name=name)
    split = lambda t: t.reshape(t.shape[:-1] + (self.num_heads, d_k))  # noqa
    q = split(dense("linear_q")(x))
    k = split(dense("linear_k")(x))
    v = split(dense("linear_v")(x))
    p = split(dense("linear_pos", bias=False)(pos.astype(self.dtype)))
    init = nn.initializers.xavier_uniform()
    bias_u = self.param("pos_bias_u", init, (self.num_heads, d_k))
    bias_v = self.param("pos_bias_v", init, (self.num_heads, d_k))
    ac = jnp.einsum("bqhd,bkhd->bhqk", q + bias_u.astype(q.dtype), k)
    bd = jnp.einsum("bqhd,khd->bhqk", q + bias_v.astype(q.dtype), p)
    scores = (ac + bd).astype(jnp.float32) / math.sqrt(d_k)
    attn = jax.nn.softmax(scores, axis=-1).astype(self.dtype)
    out = jnp.einsum("bhqk,bkhd->bqhd", attn, v).reshape(batch, length,
                                                        self.dim)
    return dense("linear_out")(out)


class FeedForward(nn.Module):
  dim: int
  hidden: int
  dropout_rate: float
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.swish(nn.Dense(self.hidden, dtype=self.dtype, name="w_1")(x))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.dim, dtype=self.dtype, name="w_2")(x)


class DepthwiseConv1D(nn.Module):
  """``nn.Conv(C, (K,), padding="SAME", feature_group_count=C)`` as K
  shifted multiply-adds.

  Same parameters (``kernel [K, 1, C]``, ``bias [C]``, the same
  initialisers) and outputs; XLA's CPU grouped convolution ran the forward
  and backward pass about 4x slower than this on ``[8, 200, 128]`` with
  K = 15 (measured), and the conformer runs one per block.
  """

  kernel_size: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    channels, k = x.shape[-1], self.kernel_size
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (k, 1, channels), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (channels,),
                      jnp.float32)
    x = x.astype(self.dtype)
    kernel = kernel[:, 0, :].astype(self.dtype)
    left = (k - 1) // 2  # SAME: the extra zero of an even K goes right.
    padded = jnp.pad(x, ((0, 0), (left, k - 1 - left), (0, 0)))
    length = x.shape[1]
    out = sum(padded[:, i:i + length, :] * kernel[i] for i in range(k))
    return out + bias.astype(self.dtype)


class ConvModule(nn.Module):
  """Conformer conv module applied to the frames after ``n_cls`` tokens."""

  dim: int
  kernel_size: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, n_cls: int, train: bool):
    cls, frames = x[:, :n_cls], x[:, n_cls:]
    y = nn.Dense(2 * self.dim, dtype=self.dtype, name="pointwise_conv1")(
        frames)
    y = nn.glu(y, axis=-1)
    y = DepthwiseConv1D(self.kernel_size, self.dtype,
                        name="depthwise_conv")(y)
    y = nn.BatchNorm(use_running_average=not train, momentum=_BN_MOMENTUM,
                     epsilon=_BN_EPS, dtype=self.dtype, name="norm")(y)
    y = nn.swish(y)
    y = nn.Dense(self.dim, dtype=self.dtype, name="pointwise_conv2")(y)
    # Official: the CLS part of the conv input is concatenated back unchanged.
    return jnp.concatenate([cls, y], axis=1)


class ConformerBlock(nn.Module):
  dim: int
  num_heads: int
  ffn_dim: int
  kernel_size: int
  dropout_rate: float
  n_cls: int
  downsample: bool
  pool_size: int = 2
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, pos, train: bool):
    ln = lambda name: nn.LayerNorm(epsilon=_LN_EPS, dtype=self.dtype,  # noqa
                                   name=name)
    drop = nn.Dropout(self.dropout_rate, deterministic=not train)
    ff = lambda name: FeedForward(self.dim, self.ffn_dim,  # noqa: E731
                                  self.dropout_rate, self.dtype, name=name)
    x = x + 0.5 * drop(ff("feed_forward_macaron")(ln("norm_ff_macaron")(x),
                                                  train))
    x = x + drop(RelPositionAttention(self.dim, self.num_heads, self.dtype,
                                      name="self_attn")(ln("norm_mha")(x),
                                                        pos))
    x = x + drop(ConvModule(self.dim, self.kernel_size, self.dtype,
                            name="conv_module")(ln("norm_conv")(x),
                                                self.n_cls, train))
    x = x + 0.5 * drop(ff("feed_forward")(ln("norm_ff")(x), train))
    x = ln("norm_final")(x)
    if self.downsample:
      cls_0 = x[:, :1]
      cls_rest = x[:, 1:self.n_cls]
      frames = nn.max_pool(x[:, self.n_cls:], (self.pool_size,),
                           strides=(self.pool_size,), padding="VALID")
      x = jnp.concatenate([cls_rest, frames], axis=1) * math.sqrt(self.dim)
      pos = jnp.asarray(sinusoid_positions(x.shape[1], self.dim))
      x = jnp.concatenate([cls_0, x], axis=1)
    return x, pos


class HMConformerEncoder(nn.Module):
  """Subsampling + CLS tokens + 6 blocks; returns (frames, cls [B, 3, d])."""

  dim: int = 128
  num_heads: int = 4
  ffn_dim: int = 256
  num_blocks: int = 6
  kernel_size: int = 15
  dropout_rate: float = 0.1
  downsample_blocks: Sequence[int] = (1, 3)
  pool_size: int = 2
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, features, train: bool):
    x = features[..., None].astype(self.dtype)               # [B, T, F, 1]
    x = nn.relu(nn.Conv(self.dim, (3, 3), strides=(2, 2), padding="VALID",
                        dtype=self.dtype, name="subsampling_conv")(x))
    batch, frames, bins, channels = x.shape
    # torch: (b, c, t, f).transpose(1, 2).view(b, t, c * f).
    x = jnp.transpose(x, (0, 1, 3, 2)).reshape(batch, frames,
                                               channels * bins)
    x = nn.Dense(self.dim, dtype=self.dtype, name="subsampling_out")(x)
    uniform = lambda key, shape: jax.random.uniform(key, shape)  # torch.rand
    cls_token = self.param("cls_token", uniform, (1, 1, self.dim))
    cls_token1 = self.param("cls_token1", uniform, (1, 2, self.dim))
    num_cls = len(self.downsample_blocks) + 1
    tokens = jnp.concatenate(
        [jnp.broadcast_to(cls_token1, (batch, 2, self.dim)).astype(x.dtype),
         jnp.broadcast_to(cls_token, (batch, 1, self.dim)).astype(x.dtype),
         x], axis=1) * math.sqrt(self.dim)
    pos = jnp.asarray(sinusoid_positions(tokens.shape[1], self.dim))
    x = tokens
    self.sow("intermediates", "frames", features.shape[1])
    self.sow("intermediates", "frames", x.shape[1] - num_cls)
    cls_outputs = []
    n_cls = num_cls
    for i in range(self.num_blocks):
      downsample = i in self.downsample_blocks
      x, pos = ConformerBlock(
          self.dim, self.num_heads, self.ffn_dim, self.kernel_size,
          self.dropout_rate, n_cls, downsample, self.pool_size, self.dtype,
          name=f"encoders_{i}")(x, pos, train)
      if downsample:
        cls_outputs.append(x[:, 0])
        x = x[:, 1:]
        n_cls -= 1
      self.sow("intermediates", "frames", x.shape[1] - n_cls)
    cls_outputs.append(x[:, 0])
    x = x[:, 1:]
    x = nn.LayerNorm(epsilon=_LN_EPS, dtype=self.dtype, name="after_norm")(x)
    return x, jnp.stack(cls_outputs, axis=1)


class SelfWeightedPooling(nn.Module):
  """NII ``SelfWeightedPooling(mean_only=True, num_head=1)`` with tanh."""

  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    w = self.param("mm_weights", nn.initializers.he_uniform(),
                   (x.shape[-1], 1))
    logits = jnp.tanh((x @ w.astype(x.dtype)).astype(jnp.float32))
    attn = jax.nn.softmax(logits, axis=1).astype(x.dtype)   # over time
    return jnp.sum(x * attn, axis=1)


class MCA(nn.Module):
  """Multi-level CLS-token aggregation; returns (embedding, branches)."""

  dim: int = 128
  emb_dropout: float = 0.3
  dropout: float = 0.75
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, frames, cls, train: bool):
    bn = lambda name: nn.BatchNorm(  # noqa: E731
        use_running_average=not train, momentum=_BN_MOMENTUM,
        epsilon=_BN_EPS, dtype=self.dtype, name=name)
    emb_drop = nn.Dropout(self.emb_dropout, deterministic=not train)
    branches = []
    for i in range(cls.shape[1]):
      y = nn.silu(nn.Dense(self.dim, dtype=self.dtype, name=f"fc{i}")(
          cls[:, i]))
      branches.append(emb_drop(bn(f"bn{i}")(y)))
    branches.append(emb_drop(SelfWeightedPooling(self.dtype,
                                                 name="attn")(frames)))
    branches = jnp.stack(branches, axis=1)                  # [B, 4, d]
    y = branches.reshape(branches.shape[0], -1)
    y = nn.Dropout(self.dropout, deterministic=not train)(y)
    y = nn.silu(nn.Dense(self.dim, dtype=self.dtype,
                         name=f"fc{cls.shape[1]}")(y))
    return bn(f"bn{cls.shape[1]}")(y), branches


class HeadProjection(nn.Module):
  """``CLSBackend`` (use_pooling=False): Dense -> SiLU -> BatchNorm."""

  dim: int = 64
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    x = nn.silu(nn.Dense(self.dim, dtype=self.dtype, name="fc")(x))
    return nn.BatchNorm(use_running_average=not train, momentum=_BN_MOMENTUM,
                        epsilon=_BN_EPS, dtype=self.dtype, name="bn")(x)


class HMConformer(nn.Module):
  """HM-Conformer over LFCC ``[B, T, 120]`` (see the module docstring).

  Attributes:
    num_classes: must be 2 (OC-softmax is a binary head); set by make_model.
    dim, num_heads, ffn_dim, num_blocks, kernel_size: encoder sizes
      (official 128, 4, 256, 6, 15).
    dropout_rate: encoder dropout (official 0.1).
    emb_dropout, mca_dropout: MCA dropouts (official 0.3 and 0.75).
    head_dim: OC-softmax embedding size (official 64).
    m_real, m_fake, alpha: OC-softmax margins/scale for :func:`oc_logits`.
    frame_mask_max: width bound of the batch-shared training frame mask
      (official 20; 0 = off). Needs the ``'dropout'`` rng in training.
    faithful: also apply the frame mask at test time (official quirk).
    loss_weights: the heads' loss weights [CLS@2, CLS@4, CLS@6, pooled,
      MCA] (official 0.4, 0.3, 0.2, 0.1, 0.1).
    dtype: computation dtype (``jnp.bfloat16`` for mixed precision);
      parameters stay float32, OC cosines are computed in float32.
  """

  num_classes: int = 2
  dim: int = 128
  num_heads: int = 4
  ffn_dim: int = 256
  num_blocks: int = 6
  kernel_size: int = 15
  dropout_rate: float = 0.1
  emb_dropout: float = 0.3
  mca_dropout: float = 0.75
  head_dim: int = 64
  m_real: float = heads.M_REAL
  m_fake: float = heads.M_FAKE
  alpha: float = heads.ALPHA
  frame_mask_max: int = 0
  faithful: bool = False
  loss_weights: tuple[float, ...] = heads.HM_CONFORMER_LOSS_WEIGHTS
  dtype: Any = jnp.float32

  def _frame_mask(self, x: jnp.ndarray, train: bool) -> jnp.ndarray:
    bound = self.frame_mask_max or 20
    if self.has_rng("dropout"):
      key = self.make_rng("dropout")
    elif train:
      raise ValueError("HMConformer's frame mask needs the 'dropout' rng.")
    else:
      # Test-time faithful mode without an rng: a fixed, documented key.
      key = jax.random.PRNGKey(0)
    width_key, start_key = jax.random.split(key)
    length = x.shape[1]
    width = jax.random.randint(width_key, (), 0, bound)
    start = jax.random.randint(start_key, (), 0,
                               jnp.maximum(length - width, 1))
    t = jnp.arange(length)
    keep = (t < start) | (t >= start + width)
    return x * keep[None, :, None].astype(x.dtype)

  @nn.compact
  def __call__(self, features: jnp.ndarray, train: bool = False
               ) -> tuple[jnp.ndarray, jnp.ndarray]:
    if features.ndim != 3:
      raise ValueError(
          f"HMConformer expects LFCC features [batch, frames, 120], got "
          f"shape {features.shape}. Use config.frontend.name='lfcc'.")
    if self.num_classes != 2:
      raise ValueError(
          f"config.model.num_classes={self.num_classes}: HM-Conformer's "
          "OC-softmax head is binary (bona fide vs spoof); use 2 classes.")
    if (train and self.frame_mask_max > 0) or (not train and self.faithful):
      features = self._frame_mask(features, train)
    frames, cls = HMConformerEncoder(
        self.dim, self.num_heads, self.ffn_dim, self.num_blocks,
        self.kernel_size, self.dropout_rate, dtype=self.dtype,
        name="encoder")(features, train)
    embedding, branches = MCA(self.dim, self.emb_dropout, self.mca_dropout,
                              self.dtype, name="mca")(frames, cls, train)
    head_cos = []
    for i in range(branches.shape[1]):
      h = HeadProjection(self.head_dim, self.dtype, name=f"head{i}")(
          branches[:, i], train)
      head_cos.append(heads.OCSoftmax(name=f"oc{i}")(h))
    main = HeadProjection(self.head_dim, self.dtype,
                          name=f"head{branches.shape[1]}")(embedding, train)
    cos = heads.OCSoftmax(name="classifier")(main)
    head_cos.append(cos)
    self.sow("intermediates", "head_cos", jnp.stack(head_cos, axis=1))
    logits = heads.oc_logits(cos, self.m_real, self.m_fake, self.alpha)
    return logits, main.astype(jnp.float32)
