"""Minimum tandem detection cost (min t-DCF), as the ASVspoof 2019 package.

The t-DCF (Kinnunen et al., "t-DCF: a Detection Cost Function for the
Tandem Assessment of Spoofing Countermeasures and Automatic Speaker
Verification", Odyssey 2018; ASVspoof 2019 evaluation plan) scores a
countermeasure (CM) by the cost of the cascade ``speech -> CM -> ASV``
with the organisers' fixed ASV system. This module follows the 2019
challenge's ``tDCF_python`` package (``eval_metrics.py`` and
``evaluate_tDCF_asvspoof19.py``, the formulation later shipped as "legacy"
in its v2) step for step:

1. ASV operating point: the ASV EER threshold ``t_asv`` of target vs
   nontarget ASV scores (``cljax.metrics.eer.compute_eer``, the official
   EER), then

     P_fa,asv       = #{nontarget >= t_asv} / N_non
     P_miss,asv     = #{target < t_asv} / N_tar
     P_miss,spoof   = #{spoof < t_asv} / N_spoof     (spoofs the ASV rejects)

2. CM curve: ``P_miss,cm(s), P_fa,cm(s)`` = the official DET curve of bona
   fide vs spoof CM scores (``cljax.metrics.eer.compute_det_curve``; a
   higher CM score means more bona fide), one point per threshold ``s``.

3. With the cost model (ASVspoof 2019: P_spoof = 0.05, P_tar = (1 - P_spoof)
   * 0.99 = 0.9405, P_non = (1 - P_spoof) * 0.01 = 0.0095, C_miss,asv = 1,
   C_fa,asv = 10, C_miss,cm = 1, C_fa,cm = 10)::

     C1 = P_tar (C_miss,cm - C_miss,asv P_miss,asv) - P_non C_fa,asv P_fa,asv
     C2 = C_fa,cm P_spoof (1 - P_miss,spoof)
     t-DCF(s)      = C1 P_miss,cm(s) + C2 P_fa,cm(s)
     t-DCF_norm(s) = t-DCF(s) / min(C1, C2)
     min t-DCF     = min_s t-DCF_norm(s)

   A normalised value >= 1 means the CM does not help the tandem system
   (accepting or rejecting everything does as well); 0 is a perfect CM.

The official code's checks become ``ValueError``s here (the package calls
``sys.exit``): priors that do not sum to one, a missing spoof ASV set,
non-finite scores, fewer than 3 distinct CM scores (hard decisions, not
scores) and negative weights C1/C2. Empty score sets, where the official
code divides by zero, also raise.

File formats (what ``evaluate_tDCF_asvspoof19.py`` reads with
``np.genfromtxt``):

* ASV scores, e.g. ``ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.eval.gi.
  trl.scores.txt``: ``SOURCE KEY SCORE`` per line, SOURCE ``bonafide`` or an
  attack id, KEY ``target``/``nontarget``/``spoof``, e.g.
  ``bonafide target 36.78691``, ``A07 spoof -2.15``
  (``read_asv_scores``).
* CM scores: ``UTT_ID SOURCE KEY SCORE``, SOURCE ``-`` for bona fide or the
  attack id, KEY ``bonafide``/``spoof``, SCORE higher = more bona fide, e.g.
  ``LA_E_2834763 A11 spoof -3.21`` (``read_cm_scores``; ``cljax.score``
  writes this format).

Example::

  from cljax.metrics import tdcf
  asv = tdcf.read_asv_scores("ASVspoof2019.LA.asv.eval.gi.trl.scores.txt")
  result = tdcf.min_tdcf(bona_cm, spoof_cm, asv.target, asv.nontarget,
                         asv.spoof)
  print(result.min_tdcf, result.eer_asv)

It is not in the ``config.eval.metrics`` registry: a registered metric maps
``(scores, labels, predictions)`` to a number, and t-DCF also needs the ASV
system's scores.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from cljax.metrics.eer import as_float_vector
from cljax.metrics.eer import compute_det_curve
from cljax.metrics.eer import compute_eer


class CostModel(NamedTuple):
  """Priors and costs of the t-DCF; names as the official ``cost_model``."""
  p_spoof: float      # prior of a spoofing attack
  p_tar: float        # prior of a target speaker
  p_non: float        # prior of a nontarget (zero-effort impostor)
  c_miss_asv: float   # ASV falsely rejects a target
  c_fa_asv: float     # ASV falsely accepts a nontarget
  c_miss_cm: float    # CM falsely rejects a bona fide trial
  c_fa_cm: float      # CM falsely accepts a spoof


def asvspoof2019_cost_model() -> CostModel:
  """The cost model of ``evaluate_tDCF_asvspoof19.py`` (priors computed the
  same way, so the floats are the official ones)."""
  p_spoof = 0.05
  return CostModel(p_spoof=p_spoof, p_tar=(1 - p_spoof) * 0.99,
                   p_non=(1 - p_spoof) * 0.01, c_miss_asv=1, c_fa_asv=10,
                   c_miss_cm=1, c_fa_cm=10)


class AsvErrorRates(NamedTuple):
  pfa_asv: float
  pmiss_asv: float
  pmiss_spoof_asv: float


class TdcfResult(NamedTuple):
  """What ``min_tdcf`` found; rates are fractions in [0, 1]."""
  min_tdcf: float        # minimum of the normalised t-DCF curve
  cm_threshold: float    # the CM threshold where it is reached
  eer_cm: float          # the CM's EER (bona fide vs spoof)
  eer_asv: float         # the ASV's EER (target vs nontarget)
  asv_threshold: float   # the ASV operating point (its EER threshold)
  pfa_asv: float
  pmiss_asv: float
  pmiss_spoof_asv: float


class AsvScores(NamedTuple):
  target: np.ndarray
  nontarget: np.ndarray
  spoof: np.ndarray


def _non_empty(values, what: str) -> np.ndarray:
  array = as_float_vector(values, what)
  if array.size == 0:
    raise ValueError(
        f"t-DCF: the {what} score set is empty. The ASV score file must hold "
        "target, nontarget and spoof trials and the CM scores both bona fide "
        "and spoof trials (use the organisers' ASV file of the same split).")
  return array


def obtain_asv_error_rates(tar_asv, non_asv, spoof_asv,
                           asv_threshold: float) -> AsvErrorRates:
  """The ASV's error rates at ``asv_threshold`` (official
  ``obtain_asv_error_rates``; accept iff score >= threshold).

  Raises:
    ValueError: an empty target, nontarget or spoof set.
  """
  tar_asv = _non_empty(tar_asv, "ASV target")
  non_asv = _non_empty(non_asv, "ASV nontarget")
  spoof_asv = _non_empty(spoof_asv, "ASV spoof")
  return AsvErrorRates(
      pfa_asv=float(np.sum(non_asv >= asv_threshold) / non_asv.size),
      pmiss_asv=float(np.sum(tar_asv < asv_threshold) / tar_asv.size),
      pmiss_spoof_asv=float(np.sum(spoof_asv < asv_threshold)
                            / spoof_asv.size))


def compute_tdcf(bonafide_score_cm, spoof_score_cm, pfa_asv: float,
                 pmiss_asv: float, pmiss_spoof_asv: float,
                 cost_model: CostModel | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
  """The normalised t-DCF curve over CM thresholds (official
  ``compute_tDCF``); see the module docstring for the formulas.

  Args:
    bonafide_score_cm: CM scores of bona fide trials (higher = more genuine).
    spoof_score_cm: CM scores of spoof trials.
    pfa_asv, pmiss_asv, pmiss_spoof_asv: the ASV error rates at its
      operating point (``obtain_asv_error_rates``), fractions.
    cost_model: default ``asvspoof2019_cost_model()``.

  Returns:
    ``(tdcf_norm, cm_thresholds)``, each of length ``N_bona + N_spoof + 1``.

  Raises:
    ValueError: see the module docstring.
  """
  cost = cost_model or asvspoof2019_cost_model()
  if min(cost.p_tar, cost.p_non, cost.p_spoof) < 0 or abs(
      cost.p_tar + cost.p_non + cost.p_spoof - 1) > 1e-10:
    raise ValueError(f"t-DCF: the priors of {cost} must be >= 0 and sum to "
                     "one.")
  if pmiss_spoof_asv is None:
    raise ValueError("t-DCF needs the ASV miss rate on spoof trials "
                     "(pmiss_spoof_asv); give ASV scores with spoof trials.")
  bona = _non_empty(bonafide_score_cm, "CM bona fide")
  spoof = _non_empty(spoof_score_cm, "CM spoof")
  if np.unique(np.concatenate((bona, spoof))).size < 3:
    raise ValueError(
        "t-DCF: the CM scores take fewer than 3 distinct values; give soft "
        "scores (e.g. log-odds), not binary decisions.")
  pmiss_cm, pfa_cm, thresholds = compute_det_curve(bona, spoof)
  c1 = (cost.p_tar * (cost.c_miss_cm - cost.c_miss_asv * pmiss_asv)
        - cost.p_non * cost.c_fa_asv * pfa_asv)
  c2 = cost.c_fa_cm * cost.p_spoof * (1 - pmiss_spoof_asv)
  if c1 < 0 or c2 < 0:
    raise ValueError(
        f"t-DCF weights are negative (C1={c1:.6g}, C2={c2:.6g}): the ASV "
        f"error rates (Pfa={pfa_asv}, Pmiss={pmiss_asv}, "
        f"Pmiss_spoof={pmiss_spoof_asv}) cannot come from a working ASV "
        "system; check the ASV score file's keys.")
  tdcf = c1 * pmiss_cm + c2 * pfa_cm
  return tdcf / np.minimum(c1, c2), thresholds


def min_tdcf(bonafide_score_cm, spoof_score_cm, tar_asv, non_asv, spoof_asv,
             cost_model: CostModel | None = None) -> TdcfResult:
  """min t-DCF of a CM in tandem with an ASV system, as
  ``evaluate_tDCF_asvspoof19.py`` computes it (ASV at its EER threshold).

  Args:
    bonafide_score_cm, spoof_score_cm: the CM's scores, higher = more
      genuine (cljax scores: genuine log-odds).
    tar_asv, non_asv, spoof_asv: the ASV's scores of target, nontarget and
      spoof trials (``read_asv_scores``).
    cost_model: default ``asvspoof2019_cost_model()``.

  Returns:
    ``TdcfResult``; ``min_tdcf`` is the challenge's number.
  """
  tar_asv = _non_empty(tar_asv, "ASV target")
  non_asv = _non_empty(non_asv, "ASV nontarget")
  eer_asv, asv_threshold = compute_eer(tar_asv, non_asv)
  rates = obtain_asv_error_rates(tar_asv, non_asv, spoof_asv, asv_threshold)
  curve, thresholds = compute_tdcf(bonafide_score_cm, spoof_score_cm,
                                   *rates, cost_model=cost_model)
  index = int(np.argmin(curve))
  eer_cm, _ = compute_eer(bonafide_score_cm, spoof_score_cm)
  return TdcfResult(min_tdcf=float(curve[index]),
                    cm_threshold=float(thresholds[index]), eer_cm=eer_cm,
                    eer_asv=eer_asv, asv_threshold=asv_threshold, **rates._asdict())


def _score_lines(path: str, what: str):
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{what} {path} not found.")
  with open(path) as f:
    for number, line in enumerate(f, 1):
      columns = line.split()
      if columns and not columns[0].startswith("#"):
        yield f"{path}:{number}", columns, line.strip()


def _score(where: str, text: str, value: str) -> float:
  try:
    score = float(value)
  except ValueError:
    score = float("nan")
  if not np.isfinite(score):
    raise ValueError(f"{where}: score {value!r} is not a finite number: "
                     f"{text!r}.")
  return score


ASV_KEYS = ("target", "nontarget", "spoof")


def read_asv_scores(path: str) -> AsvScores:
  """The organisers' ASV score file, split by key.

  Lines are ``SOURCE KEY SCORE`` (the official reader takes columns 0-2);
  a 4-column variant with a leading speaker id is read by its last three.

  Raises:
    FileNotFoundError: no such file.
    ValueError: a line with another column count, an unknown key, a
      non-numeric score, or a key with no trial at all.
  """
  sets = {key: [] for key in ASV_KEYS}
  for where, columns, text in _score_lines(path, "ASV score file"):
    if len(columns) not in (3, 4):
      raise ValueError(
          f"{where}: expected 'SOURCE KEY SCORE' (e.g. 'bonafide target "
          f"1.23'), got {len(columns)} columns: {text!r}. Pass the "
          "organisers' ASV score file (ASVspoof2019_LA_asv_scores/"
          "ASVspoof2019.LA.asv.<split>.gi.trl.scores.txt).")
    _, key, value = columns[-3:]
    if key not in sets:
      raise ValueError(f"{where}: unknown ASV key {key!r} (expected one of "
                       f"{list(ASV_KEYS)}): {text!r}.")
    sets[key].append(_score(where, text, value))
  for key, values in sets.items():
    if not values:
      raise ValueError(
          f"{path}: no {key!r} trial. min t-DCF needs target, nontarget and "
          "spoof ASV scores; pass the organisers' ASV score file.")
  return AsvScores(**{key: np.asarray(values, np.float64)
                      for key, values in sets.items()})


CM_KEYS = ("bonafide", "spoof")


def read_cm_scores(path: str) -> tuple[np.ndarray, np.ndarray]:
  """``(bonafide_scores, spoof_scores)`` of a 2019-format CM score file
  (``UTT_ID SOURCE KEY SCORE`` lines).

  Raises:
    FileNotFoundError, ValueError: as ``read_asv_scores``.
  """
  sets = {key: [] for key in CM_KEYS}
  for where, columns, text in _score_lines(path, "CM score file"):
    if len(columns) != 4 or columns[2] not in sets:
      raise ValueError(
          f"{where}: expected 'UTT_ID SOURCE KEY SCORE' with KEY bonafide or "
          f"spoof, got {text!r}.")
    sets[columns[2]].append(_score(where, text, columns[3]))
  return (np.asarray(sets["bonafide"], np.float64),
          np.asarray(sets["spoof"], np.float64))
