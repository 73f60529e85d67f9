r"""PyTorch ports of HM-Conformer, CNN1D and their front ends (benchmark only).

``benchmarks/jax_vs_torch.py`` times cljax's jitted train step against a
PyTorch eager one; this module is the PyTorch side. Every port has the same
layers, shapes and trainable-parameter count as the cljax module it copies
(:func:`count_torch_params` / :func:`count_jax_params`; the benchmark
refuses to time a pair whose counts differ):

* :class:`HMConformer` — ``cljax/models/hm_conformer.py``: Conv2d
  subsampling + 3 CLS tokens, six macaron conformer blocks with WeNet's
  relative-position attention (``rel_shift`` disabled) and hierarchical
  pooling in blocks 2 and 4, MCA, five ``CLSBackend`` heads with OC-softmax.
  2,733,184 trainable parameters (the official model's count). Returns
  ``(logits [B, 2], embedding [B, 64], head_cos [B, 5])``; train it with
  :func:`hm_conformer_loss` (weights 0.4, 0.3, 0.2, 0.1, 0.1; label 0 = bona
  fide), as ``cljax/models/heads.py`` does.
* :class:`CNN1D` — ``cljax/models/cnn1d.py`` with its default fields (three
  Conv1d(64, k=5, no bias) + BatchNorm + ReLU, mean+std pooling, Dense(128),
  Dense classifier); trained with softmax cross-entropy.
* :class:`LFCC` and :class:`LogMel` — ``cljax/features/lfcc.py`` and
  ``cljax/features/logmel.py`` with ``torch.stft`` (``center=True``,
  constant padding), as the official HM-Conformer code computes LFCC. The
  host constants (linear and mel filterbanks, DCT matrix) are cljax's own
  numpy arrays: both sides then multiply by the same matrices, and what the
  test compares is the framing, STFT, log, energy and delta code.

Layouts follow PyTorch (``Linear`` weights ``[out, in]``, ``Conv1d``
``[out, in/groups, k]``); only the counts, shapes up to transposition, and
computation match, not the initialisation (each side uses its own; the
benchmark times steps, it does not compare trained models). Training mode
matches cljax's: dropout on, BatchNorm on batch statistics (torch momentum
0.1 = flax 0.9, eps 1e-5), HM-Conformer's frame mask off.

Mixed precision: run the model under ``torch.autocast(device, bfloat16)``;
the front ends switch autocast off (cljax computes them in float32 at
``precision="highest"``), and OC-softmax cosines and attention softmax are
computed in float32, as in cljax.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cljax.features import lfcc as lfcc_lib
from cljax.features import logmel as logmel_lib
from cljax.models import heads as heads_lib
from cljax.models.hm_conformer import sinusoid_positions

# The official/cljax hyper-parameters.
_LN_EPS = 1e-12
_BN_MOMENTUM = 0.1  # flax momentum 0.9.
_BN_EPS = 1e-5

__all__ = ["CNN1D", "HMConformer", "LFCC", "LogMel", "count_jax_params",
           "count_torch_params", "hm_conformer_loss", "oc_logits", "to_float"]


def count_torch_params(module: nn.Module) -> int:
  """Trainable parameters of a torch module (BatchNorm statistics excluded)."""
  return sum(p.numel() for p in module.parameters() if p.requires_grad)


def count_jax_params(params) -> int:
  """Entries of a Flax ``params`` collection (``batch_stats`` is separate)."""
  import jax  # Local: this module's torch half must not need a jax import.
  return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


def to_float(audio: torch.Tensor) -> torch.Tensor:
  """int16 PCM -> float32 in [-1, 1) (``cljax.features.to_float``)."""
  if audio.dtype == torch.int16:
    return audio.float() / 32768.0
  return audio.float()


class LFCC(nn.Module):
  """``audio [B, L] -> LFCC [B, 1 + L // hop, 120]`` (cljax/official LFCC).

  Pre-emphasis 0.97, ``torch.stft`` with a periodic Hamming window of
  ``win_length`` centred in ``n_fft``, linear triangular filterbank, log10
  (+ float32 eps), orthonormal DCT-II, coefficient 0 replaced by the log10
  frame energy, deltas ``c[t+1] - c[t-1]`` with edges replicated.
  """

  def __init__(self, sample_rate: int = 16000, n_fft: int = 512,
               win_length: int = 320, hop_length: int = 160,
               n_filters: int = 40, pre_emphasis: float = 0.97):
    super().__init__()
    self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
    self.pre_emphasis = pre_emphasis
    self.register_buffer("window", torch.hamming_window(win_length),
                         persistent=False)
    self.register_buffer("bank", torch.from_numpy(
        lfcc_lib.linear_filterbank(sample_rate, n_fft, n_filters).copy()),
                         persistent=False)
    self.register_buffer("dct", torch.from_numpy(
        lfcc_lib.dct_matrix(n_filters, n_filters).copy()), persistent=False)

  @staticmethod
  def delta(x: torch.Tensor) -> torch.Tensor:
    padded = torch.cat([x[:, :1], x, x[:, -1:]], dim=1)
    return padded[:, 2:] - padded[:, :-2]

  def forward(self, audio: torch.Tensor) -> torch.Tensor:
    with torch.autocast(audio.device.type, enabled=False):
      x = to_float(audio)
      x = torch.cat([x[:, :1], x[:, 1:] - self.pre_emphasis * x[:, :-1]], 1)
      spec = torch.stft(x, self.n_fft, self.hop_length, self.win_length,
                        window=self.window, center=True, pad_mode="constant",
                        return_complex=True)               # [B, F, T]
      power = (spec.real ** 2 + spec.imag ** 2).transpose(1, 2)
      eps = lfcc_lib.FLOAT32_EPS
      coefs = torch.log10(power @ self.bank + eps) @ self.dct
      energy = torch.log10(power.sum(-1, keepdim=True) / self.n_fft + eps)
      coefs = torch.cat([energy, coefs[..., 1:]], dim=-1)
      first = self.delta(coefs)
      return torch.cat([coefs, first, self.delta(first)], dim=-1)


class LogMel(nn.Module):
  """``audio [B, L] -> log-mel [B, 1 + L // hop, n_mels]`` (librosa's).

  ``torch.stft`` with a periodic Hann window of ``win_length`` centred in
  ``n_fft`` (as ``librosa.stft``), librosa's Slaney mel filterbank,
  ``log(mel + 1e-6)``.
  """

  def __init__(self, sample_rate: int = 16000, n_fft: int = 512,
               win_length: int = 400, hop_length: int = 160,
               n_mels: int = 64, fmin: float = 20.0,
               fmax: float | None = None, log_offset: float = 1e-6):
    super().__init__()
    self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
    self.log_offset = log_offset
    self.register_buffer("window", torch.hann_window(win_length),
                         persistent=False)
    self.register_buffer("filters", torch.from_numpy(
        logmel_lib.mel_filterbank(sample_rate, n_fft, n_mels, float(fmin),
                                  fmax).copy()), persistent=False)

  def forward(self, audio: torch.Tensor) -> torch.Tensor:
    with torch.autocast(audio.device.type, enabled=False):
      spec = torch.stft(to_float(audio), self.n_fft, self.hop_length,
                        self.win_length, window=self.window, center=True,
                        pad_mode="constant", return_complex=True)
      power = (spec.real ** 2 + spec.imag ** 2).transpose(1, 2)
      return torch.log(power @ self.filters + self.log_offset)


# --------------------------------------------------------------------------
# OC-softmax and the HM-Conformer loss (cljax/models/heads.py).


class OCSoftmax(nn.Module):
  """Cosine of the L2-normalised input with one learnt direction, in float32."""

  def __init__(self, dim: int):
    super().__init__()
    # Official layout [num_class=1, dim]; cljax stores [dim, 1].
    self.weight = nn.Parameter(torch.empty(1, dim))
    nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = F.normalize(x.float(), dim=-1)
    w = F.normalize(self.weight.float(), dim=-1)
    return (x @ w.t())[:, 0]


def oc_logits(cos: torch.Tensor, m_real: float = heads_lib.M_REAL,
              m_fake: float = heads_lib.M_FAKE,
              alpha: float = heads_lib.ALPHA) -> torch.Tensor:
  """2-column logits ``[z/2, -z/2]``, ``z = alpha (cos - (m_r + m_f)/2)``."""
  z = alpha * (cos.float() - 0.5 * (m_real + m_fake))
  return torch.stack([0.5 * z, -0.5 * z], dim=-1)


def hm_conformer_loss(head_cos: torch.Tensor, labels: torch.Tensor,
                      weights: Sequence[float] =
                      heads_lib.HM_CONFORMER_LOSS_WEIGHTS,
                      m_real: float = heads_lib.M_REAL,
                      m_fake: float = heads_lib.M_FAKE,
                      alpha: float = heads_lib.ALPHA) -> torch.Tensor:
  """``mean_b sum_i w_i softplus(alpha * margin_i)``; label 0 = bona fide."""
  head_cos = head_cos.float()
  bona_fide = (labels == heads_lib.BONA_FIDE)[:, None]
  margin = torch.where(bona_fide, m_real - head_cos, head_cos - m_fake)
  per_head = F.softplus(alpha * margin)                       # [B, H]
  w = torch.tensor(weights, dtype=torch.float32, device=head_cos.device)
  return (per_head @ w).mean()


# --------------------------------------------------------------------------
# HM-Conformer.

_POSITIONS: dict = {}


def _positions(length: int, dim: int, device) -> torch.Tensor:
  """WeNet sinusoidal positions ``[length, dim]``, cached per device."""
  key = (length, dim, str(device))
  if key not in _POSITIONS:
    _POSITIONS[key] = torch.from_numpy(
        sinusoid_positions(length, dim)).to(device)
  return _POSITIONS[key]


class RelPositionAttention(nn.Module):
  """WeNet ``RelPositionMultiHeadedAttention`` with ``rel_shift`` disabled."""

  def __init__(self, dim: int, num_heads: int):
    super().__init__()
    self.h, self.d_k = num_heads, dim // num_heads
    self.linear_q = nn.Linear(dim, dim)
    self.linear_k = nn.Linear(dim, dim)
    self.linear_v = nn.Linear(dim, dim)
    self.linear_out = nn.Linear(dim, dim)
    self.linear_pos = nn.Linear(dim, dim, bias=False)
    self.pos_bias_u = nn.Parameter(torch.empty(num_heads, self.d_k))
    self.pos_bias_v = nn.Parameter(torch.empty(num_heads, self.d_k))
    nn.init.xavier_uniform_(self.pos_bias_u)
    nn.init.xavier_uniform_(self.pos_bias_v)

  def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    batch, length, dim = x.shape
    split = lambda t: t.view(*t.shape[:-1], self.h, self.d_k)  # noqa: E731
    q = split(self.linear_q(x))
    k = split(self.linear_k(x))
    v = split(self.linear_v(x))
    p = split(self.linear_pos(pos))                           # [L, H, d_k]
    ac = torch.einsum("bqhd,bkhd->bhqk", q + self.pos_bias_u.to(q.dtype), k)
    bd = torch.einsum("bqhd,khd->bhqk", q + self.pos_bias_v.to(q.dtype), p)
    scores = (ac + bd).float() / math.sqrt(self.d_k)
    attn = torch.softmax(scores, dim=-1).to(v.dtype)
    out = torch.einsum("bhqk,bkhd->bqhd", attn, v).reshape(batch, length, dim)
    return self.linear_out(out)


class FeedForward(nn.Module):
  def __init__(self, dim: int, hidden: int, dropout_rate: float):
    super().__init__()
    self.w_1 = nn.Linear(dim, hidden)
    self.w_2 = nn.Linear(hidden, dim)
    self.dropout = nn.Dropout(dropout_rate)

  def forward(self, x):
    return self.w_2(self.dropout(F.silu(self.w_1(x))))


class ConvModule(nn.Module):
  """Pointwise -> GLU -> depthwise Conv1d -> BN -> Swish -> pointwise, on the
  frames after the ``n_cls`` CLS tokens (those pass through unchanged)."""

  def __init__(self, dim: int, kernel_size: int):
    super().__init__()
    self.pointwise_conv1 = nn.Linear(dim, 2 * dim)
    self.depthwise_conv = nn.Conv1d(dim, dim, kernel_size, groups=dim,
                                    padding=(kernel_size - 1) // 2)
    self.norm = nn.BatchNorm1d(dim, eps=_BN_EPS, momentum=_BN_MOMENTUM)
    self.pointwise_conv2 = nn.Linear(dim, dim)

  def forward(self, x, n_cls: int):
    cls, frames = x[:, :n_cls], x[:, n_cls:]
    y = F.glu(self.pointwise_conv1(frames), dim=-1).transpose(1, 2)
    y = F.silu(self.norm(self.depthwise_conv(y))).transpose(1, 2)
    return torch.cat([cls, self.pointwise_conv2(y)], dim=1)


class ConformerBlock(nn.Module):
  def __init__(self, dim, num_heads, ffn_dim, kernel_size, dropout_rate,
               n_cls, downsample, pool_size=2):
    super().__init__()
    self.dim, self.n_cls = dim, n_cls
    self.downsample, self.pool_size = downsample, pool_size
    ln = lambda: nn.LayerNorm(dim, eps=_LN_EPS)  # noqa: E731
    self.norm_ff_macaron, self.norm_mha, self.norm_conv = ln(), ln(), ln()
    self.norm_ff, self.norm_final = ln(), ln()
    self.feed_forward_macaron = FeedForward(dim, ffn_dim, dropout_rate)
    self.feed_forward = FeedForward(dim, ffn_dim, dropout_rate)
    self.self_attn = RelPositionAttention(dim, num_heads)
    self.conv_module = ConvModule(dim, kernel_size)
    self.dropout = nn.Dropout(dropout_rate)

  def forward(self, x, pos):
    drop = self.dropout
    x = x + 0.5 * drop(self.feed_forward_macaron(self.norm_ff_macaron(x)))
    x = x + drop(self.self_attn(self.norm_mha(x), pos))
    x = x + drop(self.conv_module(self.norm_conv(x), self.n_cls))
    x = x + 0.5 * drop(self.feed_forward(self.norm_ff(x)))
    x = self.norm_final(x)
    if self.downsample:
      cls_0, cls_rest = x[:, :1], x[:, 1:self.n_cls]
      frames = F.max_pool1d(x[:, self.n_cls:].transpose(1, 2),
                            self.pool_size).transpose(1, 2)
      x = torch.cat([cls_rest, frames], dim=1) * math.sqrt(self.dim)
      pos = _positions(x.shape[1], self.dim, x.device)
      x = torch.cat([cls_0, x], dim=1)
    return x, pos


class HMConformerEncoder(nn.Module):
  """Subsampling + CLS tokens + 6 blocks; returns (frames, cls [B, 3, d])."""

  def __init__(self, n_features=120, dim=128, num_heads=4, ffn_dim=256,
               num_blocks=6, kernel_size=15, dropout_rate=0.1,
               downsample_blocks=(1, 3), pool_size=2):
    super().__init__()
    self.dim = dim
    self.subsampling_conv = nn.Conv2d(1, dim, 3, stride=2)
    bins = (n_features - 3) // 2 + 1
    self.subsampling_out = nn.Linear(dim * bins, dim)
    self.cls_token = nn.Parameter(torch.rand(1, 1, dim))
    self.cls_token1 = nn.Parameter(torch.rand(1, 2, dim))
    n_cls = len(downsample_blocks) + 1
    blocks = []
    for i in range(num_blocks):
      blocks.append(ConformerBlock(dim, num_heads, ffn_dim, kernel_size,
                                   dropout_rate, n_cls,
                                   i in downsample_blocks, pool_size))
      n_cls -= i in downsample_blocks
    self.encoders = nn.ModuleList(blocks)
    self.after_norm = nn.LayerNorm(dim, eps=_LN_EPS)

  def forward(self, features):
    x = F.relu(self.subsampling_conv(features.unsqueeze(1)))  # [B, C, T, F]
    batch, channels, frames, bins = x.shape
    x = x.transpose(1, 2).reshape(batch, frames, channels * bins)
    x = self.subsampling_out(x)
    x = torch.cat([self.cls_token1.expand(batch, -1, -1).to(x.dtype),
                   self.cls_token.expand(batch, -1, -1).to(x.dtype), x],
                  dim=1) * math.sqrt(self.dim)
    pos = _positions(x.shape[1], self.dim, x.device)
    cls_outputs = []
    for block in self.encoders:
      x, pos = block(x, pos)
      if block.downsample:
        cls_outputs.append(x[:, 0])
        x = x[:, 1:]
    cls_outputs.append(x[:, 0])
    return self.after_norm(x[:, 1:]), torch.stack(cls_outputs, dim=1)


class SelfWeightedPooling(nn.Module):
  """``sum_t x_t softmax_t(tanh(x_t . w))`` (NII, mean only, one head)."""

  def __init__(self, dim: int):
    super().__init__()
    self.mm_weights = nn.Parameter(torch.empty(dim, 1))
    nn.init.kaiming_uniform_(self.mm_weights)

  def forward(self, x):
    logits = torch.tanh((x @ self.mm_weights.to(x.dtype)).float())
    attn = torch.softmax(logits, dim=1).to(x.dtype)
    return (x * attn).sum(dim=1)


class MCA(nn.Module):
  """Multi-level CLS aggregation; returns (embedding, branches [B, 4, d])."""

  def __init__(self, dim=128, num_cls=3, emb_dropout=0.3, dropout=0.75):
    super().__init__()
    self.fcs = nn.ModuleList([nn.Linear(dim, dim) for _ in range(num_cls)])
    self.bns = nn.ModuleList([nn.BatchNorm1d(dim, eps=_BN_EPS,
                                             momentum=_BN_MOMENTUM)
                              for _ in range(num_cls + 1)])
    self.attn = SelfWeightedPooling(dim)
    self.fc_out = nn.Linear((num_cls + 1) * dim, dim)
    self.emb_drop = nn.Dropout(emb_dropout)
    self.drop = nn.Dropout(dropout)

  def forward(self, frames, cls):
    branches = [self.emb_drop(self.bns[i](F.silu(fc(cls[:, i]))))
                for i, fc in enumerate(self.fcs)]
    branches.append(self.emb_drop(self.attn(frames)))
    branches = torch.stack(branches, dim=1)
    y = self.drop(branches.reshape(branches.shape[0], -1))
    return self.bns[-1](F.silu(self.fc_out(y))), branches


class HeadProjection(nn.Module):
  """``CLSBackend``: Linear -> SiLU -> BatchNorm1d."""

  def __init__(self, dim_in: int, dim: int = 64):
    super().__init__()
    self.fc = nn.Linear(dim_in, dim)
    self.bn = nn.BatchNorm1d(dim, eps=_BN_EPS, momentum=_BN_MOMENTUM)

  def forward(self, x):
    return self.bn(F.silu(self.fc(x)))


class HMConformer(nn.Module):
  """HM-Conformer over LFCC ``[B, T, 120]``; see the module docstring.

  ``forward(features) -> (logits [B, 2], embedding [B, 64], head_cos
  [B, 5])``, heads ordered [CLS@2, CLS@4, CLS@6, pooled frames, MCA].
  """

  def __init__(self, n_features: int = 120, dim: int = 128,
               num_heads: int = 4, ffn_dim: int = 256, num_blocks: int = 6,
               kernel_size: int = 15, dropout_rate: float = 0.1,
               emb_dropout: float = 0.3, mca_dropout: float = 0.75,
               head_dim: int = 64):
    super().__init__()
    self.encoder = HMConformerEncoder(n_features, dim, num_heads, ffn_dim,
                                      num_blocks, kernel_size, dropout_rate)
    self.mca = MCA(dim, 3, emb_dropout, mca_dropout)
    self.heads = nn.ModuleList([HeadProjection(dim, head_dim)
                                for _ in range(5)])
    self.oc = nn.ModuleList([OCSoftmax(head_dim) for _ in range(5)])

  def forward(self, features):
    frames, cls = self.encoder(features)
    embedding, branches = self.mca(frames, cls)
    inputs = [branches[:, i] for i in range(branches.shape[1])] + [embedding]
    projected = [head(x) for head, x in zip(self.heads, inputs)]
    head_cos = torch.stack([oc(h) for oc, h in zip(self.oc, projected)], 1)
    return oc_logits(head_cos[:, -1]), projected[-1].float(), head_cos


# --------------------------------------------------------------------------
# CNN1D.


class CNN1D(nn.Module):
  """cljax CNN1D: CMN, Conv1d+BN+ReLU blocks, mean+std pooling, classifier.

  Stride-1 blocks only (cljax's default and gpu variants); ``forward(x [B, T,
  F]) -> (logits [B, num_classes], embedding [B, embed_dim])``.
  """

  def __init__(self, in_channels: int = 64, num_classes: int = 2,
               channels: Sequence[int] = (64, 64, 64), kernel_size: int = 5,
               embed_dim: int = 128, dropout_rate: float = 0.0):
    super().__init__()
    widths = [in_channels] + list(channels)
    self.convs = nn.ModuleList([
        nn.Conv1d(widths[i], widths[i + 1], kernel_size, padding="same",
                  bias=False) for i in range(len(channels))])
    self.bns = nn.ModuleList([nn.BatchNorm1d(w, eps=_BN_EPS,
                                             momentum=_BN_MOMENTUM)
                              for w in channels])
    self.embed = nn.Linear(2 * channels[-1], embed_dim)
    self.dropout = nn.Dropout(dropout_rate)
    self.classifier = nn.Linear(embed_dim, num_classes)

  def forward(self, x):
    x = x.float()
    x = (x - x.mean(dim=1, keepdim=True)).transpose(1, 2)   # [B, F, T]
    for conv, bn in zip(self.convs, self.bns):
      x = F.relu(bn(conv(x)))
    mean = x.mean(dim=-1)
    std = torch.sqrt(x.var(dim=-1, unbiased=False) + 1e-5)
    embedding = self.dropout(F.relu(self.embed(torch.cat([mean, std], -1))))
    return self.classifier(embedding), embedding
