"""Tests for cljax.metrics.tdcf: hand arithmetic, a plain transcription of
the ASVspoof 2019 package, the score-file readers and the bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from cljax.metrics import tdcf


# --- A plain, loop-based transcription of the 2019 package -----------------
# (tDCF_python/eval_metrics.py + evaluate_tDCF_asvspoof19.py), written
# without cljax's code so that a slip in either shows.

def _det_curve(targets, nontargets):
  # Targets first, then a stable sort by score: on a tie a target sorts first.
  trials = [(s, 1) for s in targets] + [(s, 0) for s in nontargets]
  trials = sorted(trials, key=lambda t: t[0])
  frr, far, thr = [0.0], [1.0], [trials[0][0] - 0.001]
  n_tar, n_non = len(targets), len(nontargets)
  tar_below = non_below = 0
  for score, is_target in trials:
    tar_below += is_target
    non_below += 1 - is_target
    frr.append(tar_below / n_tar)
    far.append((n_non - non_below) / n_non)
    thr.append(score)
  return frr, far, thr


def _eer(targets, nontargets):
  frr, far, thr = _det_curve(targets, nontargets)
  best = 0
  for k in range(len(frr)):
    if abs(frr[k] - far[k]) < abs(frr[best] - far[best]):
      best = k
  return (frr[best] + far[best]) / 2, thr[best]


def _official_min_tdcf(bona_cm, spoof_cm, tar_asv, non_asv, spoof_asv):
  p_spoof = 0.05
  p_tar, p_non = (1 - p_spoof) * 0.99, (1 - p_spoof) * 0.01
  c_miss_asv, c_fa_asv, c_miss_cm, c_fa_cm = 1, 10, 1, 10
  _, t_asv = _eer(tar_asv, non_asv)
  pfa_asv = sum(1 for s in non_asv if s >= t_asv) / len(non_asv)
  pmiss_asv = sum(1 for s in tar_asv if s < t_asv) / len(tar_asv)
  pmiss_spoof = sum(1 for s in spoof_asv if s < t_asv) / len(spoof_asv)
  pmiss_cm, pfa_cm, thr = _det_curve(bona_cm, spoof_cm)
  c1 = p_tar * (c_miss_cm - c_miss_asv * pmiss_asv) - p_non * c_fa_asv * pfa_asv
  c2 = c_fa_cm * p_spoof * (1 - pmiss_spoof)
  curve = [(c1 * m + c2 * f) / min(c1, c2) for m, f in zip(pmiss_cm, pfa_cm)]
  best = min(range(len(curve)), key=lambda k: (curve[k], k))
  return curve[best], thr[best], curve


def test_cost_model_is_the_2019_one():
  cost = tdcf.asvspoof2019_cost_model()
  # REFERENCE.md: P_tar 0.9405, P_non 0.0095, P_spoof 0.05.
  assert cost.p_tar == pytest.approx(0.9405, abs=1e-15)
  assert cost.p_non == pytest.approx(0.0095, abs=1e-15)
  assert cost.p_spoof == 0.05
  assert (cost.c_miss_asv, cost.c_fa_asv, cost.c_miss_cm, cost.c_fa_cm) == (
      1, 10, 1, 10)


def test_hand_computed_case():
  # ASV: targets [1, 2, 3, 4], nontargets [-1, 0, .5, 1.5]. Sorted labels
  # [0,0,0,1,0,1,1,1]: frr = [0,0,0,0,.25,.25,.5,.75,1],
  # far = [1,.75,.5,.25,.25,0,0,0,0]; |frr - far| is 0 at k = 4:
  # EER .25 at threshold thr[4] = 1.0 (the 4th smallest score).
  # At t = 1: Pfa = #{non >= 1}/4 = .25, Pmiss = #{tar < 1}/4 = 0,
  # spoofs [0, 2, 3, 5]: Pmiss_spoof = #{< 1}/4 = .25.
  # C1 = .9405 (1 - 0) - .0095 * 10 * .25 = .91675; C2 = 10 * .05 * .75 = .375.
  # CM: bona [.2, .9, .7], spoof [.1, .8, -.3]; sorted labels [0,0,1,1,0,1]:
  # Pmiss_cm = [0,0,0,1/3,2/3,2/3,1], Pfa_cm = [1,2/3,1/3,1/3,1/3,0,0].
  # t-DCF = C1 Pmiss + C2 Pfa = [.375, .25, .125, .43058, .73617, .61117,
  # .91675]; min .125 at k = 2 (threshold .1); normalised by min(C1, C2) =
  # .375 -> 1/3. CM EER: |Pmiss - Pfa| = 0 at k = 3 -> 1/3.
  result = tdcf.min_tdcf([.2, .9, .7], [.1, .8, -.3], [1., 2., 3., 4.],
                         [-1., 0., .5, 1.5], [0., 2., 3., 5.])
  assert result.eer_asv == pytest.approx(.25)
  assert result.asv_threshold == pytest.approx(1.0)
  assert (result.pfa_asv, result.pmiss_asv, result.pmiss_spoof_asv) == (
      pytest.approx(.25), 0.0, pytest.approx(.25))
  assert result.min_tdcf == pytest.approx(1 / 3)
  assert result.cm_threshold == pytest.approx(.1)
  assert result.eer_cm == pytest.approx(1 / 3)
  curve, _ = tdcf.compute_tdcf([.2, .9, .7], [.1, .8, -.3], .25, 0.0, .25)
  np.testing.assert_allclose(
      curve * .375, [.375, .25, .125, .91675 / 3 + .125,
                     .91675 * 2 / 3 + .125, .91675 * 2 / 3, .91675])


@pytest.mark.parametrize("seed", range(5))
def test_matches_the_official_transcription_on_random_scores(seed):
  rng = np.random.default_rng(seed)
  n_bona, n_spoof = rng.integers(5, 60, size=2)
  bona_cm = rng.normal(1.0, 1.0, n_bona)
  spoof_cm = rng.normal(-1.0, 1.5, n_spoof)
  if seed % 2:  # Rounded scores: ties inside and across the classes.
    bona_cm, spoof_cm = np.round(bona_cm, 1), np.round(spoof_cm, 1)
  tar_asv = rng.normal(3.0, 1.0, 80)
  non_asv = rng.normal(-2.0, 1.0, 300)
  spoof_asv = rng.normal(1.0, 2.0, 120)
  expected, threshold, curve = _official_min_tdcf(
      list(bona_cm), list(spoof_cm), list(tar_asv), list(non_asv),
      list(spoof_asv))
  result = tdcf.min_tdcf(bona_cm, spoof_cm, tar_asv, non_asv, spoof_asv)
  assert result.min_tdcf == pytest.approx(expected, rel=1e-12)
  assert result.cm_threshold == threshold
  assert result.eer_cm == pytest.approx(_eer(list(bona_cm),
                                             list(spoof_cm))[0])
  rates = tdcf.obtain_asv_error_rates(tar_asv, non_asv, spoof_asv,
                                      result.asv_threshold)
  got_curve, _ = tdcf.compute_tdcf(bona_cm, spoof_cm, *rates)
  np.testing.assert_allclose(got_curve, curve, rtol=1e-12)
  assert 0 <= result.min_tdcf <= 1 + 1e-12  # Never worse than no CM.


def test_better_cm_has_lower_min_tdcf():
  rng = np.random.default_rng(7)
  asv = (rng.normal(3, 1, 50), rng.normal(-2, 1, 200), rng.normal(1, 2, 80))
  weak = tdcf.min_tdcf(rng.normal(.3, 1, 40), rng.normal(0, 1, 40), *asv)
  strong = tdcf.min_tdcf(rng.normal(3, 1, 40), rng.normal(0, 1, 40), *asv)
  assert strong.min_tdcf < weak.min_tdcf


@pytest.mark.parametrize("bona, spoof, match", [
    ([], [0.1, 0.2, 0.3], "CM bona fide score set is empty"),
    ([0.1, 0.2, 0.3], [], "CM spoof score set is empty"),
    ([1.0, 1.0], [0.0, 0.0], "fewer than 3 distinct"),
    ([1.0, np.nan, 2.0], [0.0], "non-finite"),
])
def test_bad_cm_scores(bona, spoof, match):
  with pytest.raises(ValueError, match=match):
    tdcf.min_tdcf(bona, spoof, [2., 3.], [0., 1.], [1.5])


@pytest.mark.parametrize("which, match", [
    (0, "ASV target score set is empty"),
    (1, "ASV nontarget score set is empty"),
    (2, "ASV spoof score set is empty"),
])
def test_empty_asv_sets(which, match):
  asv = [[2., 3.], [0., 1.], [1.5]]
  asv[which] = []
  with pytest.raises(ValueError, match=match):
    tdcf.min_tdcf([.5, .6, .7], [.1, .2], *asv)


def test_negative_weights_and_bad_priors():
  # Pmiss_asv = 1: C1 = .9405 (1 - 1) - .0095 * 10 * .5 < 0.
  with pytest.raises(ValueError, match="weights are negative"):
    tdcf.compute_tdcf([.5, .6, .7], [.1, .2], .5, 1.0, .2)
  bad = tdcf.asvspoof2019_cost_model()._replace(p_spoof=0.5)
  with pytest.raises(ValueError, match="sum to one"):
    tdcf.compute_tdcf([.5, .6, .7], [.1, .2], .1, .1, .2, cost_model=bad)


def test_read_asv_scores(tmp_path):
  path = tmp_path / "asv.txt"
  path.write_text("bonafide target 2.5\nbonafide nontarget -3.0\n"
                  "A07 spoof 0.4\n\nLA_0001 bonafide target 1.5\n")
  asv = tdcf.read_asv_scores(str(path))
  np.testing.assert_array_equal(asv.target, [2.5, 1.5])
  np.testing.assert_array_equal(asv.nontarget, [-3.0])
  np.testing.assert_array_equal(asv.spoof, [0.4])


@pytest.mark.parametrize("text, match", [
    ("bonafide target 2.5\nbonafide nontarget -3\nA07 spoofed 1\n",
     r"asv.txt:3: unknown ASV key 'spoofed'"),
    ("bonafide target 2.5\nbonafide -3\n", r"asv.txt:2: expected 'SOURCE KEY"),
    ("bonafide target x\n", r"asv.txt:1: score 'x' is not a finite number"),
    ("bonafide target 2.5\nbonafide nontarget -3\n", "no 'spoof' trial"),
])
def test_read_asv_scores_errors(tmp_path, text, match):
  path = tmp_path / "asv.txt"
  path.write_text(text)
  with pytest.raises(ValueError, match=match):
    tdcf.read_asv_scores(str(path))


def test_read_asv_scores_missing_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="ASV score file .*nope.txt"):
    tdcf.read_asv_scores(str(tmp_path / "nope.txt"))


def test_read_cm_scores(tmp_path):
  path = tmp_path / "cm.txt"
  path.write_text("LA_E_1 - bonafide 1.25\nLA_E_2 A07 spoof -0.5\n"
                  "LA_E_3 A08 spoof -2\n")
  bona, spoof = tdcf.read_cm_scores(str(path))
  np.testing.assert_array_equal(bona, [1.25])
  np.testing.assert_array_equal(spoof, [-0.5, -2.0])
  path.write_text("LA_E_1 1.25\n")
  with pytest.raises(ValueError, match="cm.txt:1: expected 'UTT_ID SOURCE"):
    tdcf.read_cm_scores(str(path))
