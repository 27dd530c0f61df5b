"""The wz thread (mlpp.tasks.wz): W jets against QCD jets for mass decorrelation (Lecture A1).

The card, the feature list, the split and the pT weights are checked on the card and on synthetic
jets; the slow tests check the physics of the fast-tier ``wz`` file (the W mass peak, the falling QCD
mass, the two pT spectra and the reweighting between them). They use the cached file; until a
lecture loads the card (then ``make data`` generates it) they are skipped when it is not cached.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from mlpp.data import FEATURE_NAMES, JetDataset, load_card
from mlpp.tasks import wz


def toy_jets(qcd_pt: np.ndarray, w_pt: np.ndarray, seed: int = 0) -> JetDataset:
    """QCD then W jets with the given pT, random masses and features; the ``pt`` feature numbers the jets."""
    rng = np.random.default_rng(seed)
    n = len(qcd_pt) + len(w_pt)
    features = rng.lognormal(size=(n, len(FEATURE_NAMES))).astype(np.float32)
    features[:, FEATURE_NAMES.index("pt")] = np.arange(n)
    jet = np.stack([np.concatenate([qcd_pt, w_pt]), rng.normal(0, 1, n), rng.uniform(-3, 3, n),
                    rng.uniform(10, 250, n)], axis=1)
    constituents = {key: np.zeros((n, 2), np.float32) for key in ("pt", "eta", "phi", "e", "charge")}
    constituents["pid_class"] = np.full((n, 2), -1, np.int8)
    constituents["mask"] = np.zeros((n, 2), bool)
    labels = np.r_[np.zeros(len(qcd_pt), np.int8), np.ones(len(w_pt), np.int8)]
    return JetDataset(name="wz", class_names=list(wz.CLASSES), labels=labels, jet=jet, features=features,
                      constituents=constituents, feature_names=list(FEATURE_NAMES), meta={"card": "wz", "R": 0.8})


# --- the card and the thread's constants -------------------------------------------------------------

def test_the_card_is_w_from_a_wprime_against_qcd_in_the_window_of_the_thread():
    card = load_card("wz")
    assert card.class_names == list(wz.CLASSES) and [c.label for c in card.classes] == [0, 1]
    assert card.jets.R == 0.8 and card.jets.jets_per_event == 2 and card.jets.max_constituents == 150
    assert (card.jets.pt_min, card.jets.pt_max) == (wz.PT_BINS[0], wz.PT_BINS[-1])
    assert "PartonLevel:MPI = off" in card.settings and card.ecm == 14000.0
    qcd, w = card.classes
    assert qcd.truth == {"rule": "any"} and w.truth == {"rule": "resonance", "pdgid": 24, "contains": ["q", "q"]}
    # the pThat range is the QCD class's alone: a cut on the W' (an s-channel resonance) would bias it
    assert not [s for s in card.settings + w.settings if s.startswith("PhaseSpace")]
    assert {"PhaseSpace:pTHatMin = 350.", "PhaseSpace:pTHatMax = 900."} <= set(qcd.settings)
    assert "34:m0 = 1200." in w.settings and (card.n_per_class("fast"), card.n_per_class("full")) == (10000, 100000)


def test_features_leave_out_every_mass_and_the_kinematics():
    assert set(wz.FEATURES) == set(FEATURE_NAMES) - {"pt", "eta", "mass", "mass_mmdt"}
    assert not [name for name in wz.FEATURES if "mass" in name] and len(set(wz.FEATURES)) == len(wz.FEATURES)
    assert list(wz.FEATURES) == [name for name in FEATURE_NAMES if name in wz.FEATURES]  # the stored order
    jets = toy_jets(np.full(5, 500.0), np.full(4, 600.0))
    x = wz.features(jets)
    assert x.shape == (9, len(wz.FEATURES)) and x.dtype == np.float32
    for column, name in enumerate(wz.FEATURES):
        np.testing.assert_array_equal(x[:, column], jets.feature(name))
    np.testing.assert_array_equal(wz.mass(jets), jets.jet[:, 3])


def test_mass_bins_are_the_lecture_s_5_gev_steps_from_50_to_300():
    assert wz.MASS_BINS[0] == 50 and wz.MASS_BINS[-1] == 300 and np.all(np.diff(wz.MASS_BINS) == 5)


def test_split_is_fifty_ten_forty_disjoint_and_complete():
    jets = toy_jets(np.full(600, 500.0), np.full(403, 600.0))
    parts = wz.split(jets)
    ids = [part.feature("pt").astype(int) for part in parts]
    assert [len(i) for i in ids] == [502, 100, 401]
    assert np.array_equal(np.concatenate(ids), np.arange(len(jets)))  # no jet twice, none lost, stored order
    other = toy_jets(np.full(3, 500.0), np.full(3, 600.0))
    other.meta["card"] = "top"
    with pytest.raises(ValueError, match="needs the 'wz' dataset"):
        wz.split(other)


# --- pT weights on synthetic jets --------------------------------------------------------------------

def test_pt_weights_give_the_w_jets_the_qcd_spectrum():
    rng = np.random.default_rng(1)
    qcd_pt = 400 + rng.exponential(80, 20000)
    qcd_pt = qcd_pt[qcd_pt < 800]
    w_pt = rng.normal(590, 60, 8000)
    w_pt = w_pt[(w_pt > 420) & (w_pt < 800)]             # no W jet below 420 GeV: its bin stays empty
    jets = toy_jets(qcd_pt, w_pt)
    weights = wz.pt_weights(jets)
    is_w = jets.labels == 1
    assert np.all(weights[~is_w] == 1) and np.all(np.isfinite(weights)) and np.all(weights >= 0)
    assert weights[is_w].sum() == pytest.approx(is_w.sum())
    qcd_hist = np.histogram(qcd_pt, wz.PT_BINS)[0]
    w_hist = np.histogram(w_pt, wz.PT_BINS, weights=weights[is_w])[0]
    # the W spectrum becomes the QCD one in every bin that has W jets, renormalised without the empty one
    has_w = np.histogram(w_pt, wz.PT_BINS)[0] > 0
    assert not has_w[0] and has_w[1:].all()
    np.testing.assert_allclose(w_hist / w_hist.sum(), np.where(has_w, qcd_hist, 0) / qcd_hist[has_w].sum(), rtol=1e-9)
    # before weighting the two spectra are far apart
    assert abs(np.average(w_pt) - np.average(qcd_pt)) > 50
    assert abs(np.average(w_pt, weights=weights[is_w]) - np.average(qcd_pt[qcd_pt >= 420])) < 3


def test_pt_weights_give_zero_outside_the_bins_and_refuse_one_class():
    jets = toy_jets(np.array([410.0, 430.0, 450.0]), np.array([410.0, 430.0, 850.0]))
    weights = wz.pt_weights(jets, bins=np.array([400.0, 420.0, 440.0]))
    np.testing.assert_allclose(weights, [1, 1, 1, 1.5, 1.5, 0])  # QCD 1/2 per bin, W 1/2 per bin, outside 0
    with pytest.raises(ValueError, match="both W and QCD jets"):
        wz.pt_weights(toy_jets(np.array([500.0]), np.array([])))
    with pytest.raises(ValueError, match="share no pT bin"):
        wz.pt_weights(toy_jets(np.array([410.0]), np.array([430.0])), bins=np.array([400.0, 420.0, 440.0]))


# --- 'mlpp data generate --needed' -------------------------------------------------------------------

def test_a_notebook_that_imports_the_thread_needs_the_card(tmp_path, monkeypatch):
    from pathlib import Path

    from mlpp.data.cli import needed_cards

    (tmp_path / "lectures").mkdir()
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [],
                     "source": "from mlpp.tasks import wz\ntrain, val, test = wz.split()\n"}]}
    (tmp_path / "lectures" / "A1.ipynb").write_text(json.dumps(nb))
    monkeypatch.setenv("MLPP_ROOT", str(tmp_path))
    monkeypatch.setenv("MLPP_CARDS", str(Path(__file__).resolve().parents[1] / "datasets"))
    assert needed_cards() == ["wz"]


# --- physics of the fast-tier card -------------------------------------------------------------------

@pytest.fixture(scope="module")
def wz_fast() -> JetDataset:
    from mlpp.data.cli import needed_cards

    # Lecture A1 loads wz, so 'make test' (and 'make data') generate it before the tests run.
    assert "wz" in needed_cards(), "no notebook loads wz any more: 'make test' would not generate wz-fast.h5"
    return wz.load("fast")


@pytest.mark.slow
def test_w_jets_peak_at_the_w_mass_and_qcd_masses_fall(wz_fast):
    jets = wz_fast
    card = load_card("wz")
    assert np.bincount(jets.labels).tolist() == [card.n_per_class("fast", i) for i in range(2)]
    m, is_w = wz.mass(jets), jets.labels == 1
    counts, edges = np.histogram(m[is_w], bins=wz.MASS_BINS)
    peak = edges[np.argmax(counts)]
    near = float(np.mean(np.abs(m[is_w] - 80.4) < 15))
    print(f"W jets: most populated mass bin {peak:.0f}-{peak + 5:.0f} GeV, median mass {np.median(m[is_w]):.1f} GeV, "
          f"{near:.3f} within 15 GeV of 80.4")
    assert 70 <= peak < 90 and near > 0.5
    qcd = np.histogram(m[~is_w], bins=[50, 100, 150, 200, 300])[0]
    print("QCD jets per mass range 50-100-150-200-300 GeV:", qcd.tolist())
    assert np.all(np.diff(qcd) < 0), qcd


@pytest.mark.slow
def test_the_pt_spectra_and_their_reweighting(wz_fast):
    jets = wz_fast
    pt, is_w = jets.jet[:, 0], jets.labels == 1
    assert np.all((pt >= 400) & (pt < 800)) and np.all(np.abs(jets.jet[:, 1]) < 2.0)
    qcd_median, w_median = float(np.median(pt[~is_w])), float(np.median(pt[is_w]))
    w_peak = float(wz.PT_BINS[np.argmax(np.histogram(pt[is_w], wz.PT_BINS)[0])])
    print(f"pT medians: QCD {qcd_median:.0f} GeV, W {w_median:.0f} GeV; W peak bin {w_peak:.0f}-{w_peak + 20:.0f} GeV")
    assert 540 <= w_peak < 620 and w_median > qcd_median + 50
    weights = wz.pt_weights(jets)
    assert np.all(np.isfinite(weights)) and np.all(weights >= 0) and weights[is_w].sum() == pytest.approx(is_w.sum())
    assert np.all(weights[is_w] > 0), "every W bin of the window has QCD jets"
    # the weighted W spectrum is the QCD one within the statistical precision of both, in every bin
    qcd = np.histogram(pt[~is_w], wz.PT_BINS)[0].astype(float)
    w_sum = np.histogram(pt[is_w], wz.PT_BINS, weights=weights[is_w])[0]
    w_var = np.histogram(pt[is_w], wz.PT_BINS, weights=weights[is_w] ** 2)[0]
    scale = qcd.sum() / w_sum.sum()
    pull = (w_sum * scale - qcd) / np.sqrt(qcd + w_var * scale**2)
    assert np.all(np.abs(pull) < 3), pull
    # and within a bin too: the weighted mean pT agrees to a fraction of the 20 GeV bin width
    shift = np.average(pt[is_w], weights=weights[is_w]) - pt[~is_w].mean()
    print(f"weighted W mean pT - QCD mean pT: {shift:+.1f} GeV; largest W weight {weights[is_w].max():.1f}")
    assert abs(shift) < 5
