"""The calorimeter: deposits of one cell become one tower, energy is conserved up to the
resolution, tracks stay individual, and the multiplicity drops by exactly the merged cells."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from mlpp.data.detector import (CHARGED_HADRON, NEUTRAL_HADRON, PHOTON, DetectorModel, apply_detector,
                                cell_indices)

# No smearing and no thresholds: the towers must then carry exactly the deposited energy.
PERFECT = replace(DetectorModel(), ecal_stochastic=0.0, ecal_constant=0.0, hcal_stochastic=0.0,
                  hcal_constant=0.0, ecal_tower_e_min=0.0, hcal_tower_e_min=0.0)


def _photons(etas, phis, energies=None, event=None, model=PERFECT, seed=0):
    etas, phis = np.asarray(etas, float), np.asarray(phis, float)
    energies = np.full(len(etas), 10.0) if energies is None else np.asarray(energies, float)
    pts = energies / np.cosh(etas)
    n = len(etas)
    return apply_detector(pts, etas, phis, np.full(n, 22), np.zeros(n), np.random.default_rng(seed), model, event)


def test_two_photons_in_one_cell_become_one_candidate():
    # 0.001 and 0.010 share the ECAL cell [0, 0.0174) in η and [0°, 1°) in φ.
    seen = _photons([0.001, 0.010], [0.001, 0.010], [10.0, 30.0])
    assert len(seen["pt"]) == 1
    assert seen["n_deposits"][0] == 2
    assert seen["pid_class"][0] == PHOTON and seen["charge"][0] == 0
    assert seen["e"][0] == pytest.approx(40.0)
    assert 0.0 <= seen["eta"][0] < 0.0174 and 0.0 <= seen["phi"][0] < 2 * np.pi / 360


def test_neighbouring_cells_and_other_events_stay_apart():
    assert len(_photons([0.001, 0.020], [0.001, 0.001])["pt"]) == 2          # next η cell
    assert len(_photons([0.001, 0.001], [0.001, 0.020])["pt"]) == 2          # next φ cell
    assert len(_photons([0.001, 0.002], [0.001, 0.002], event=[0, 1])["pt"]) == 2  # same cell, two events
    # φ cells tile the circle: π - ε and -π + ε are different cells, as are their neighbours
    assert len(_photons([0.5, 0.5], [np.pi - 1e-4, -np.pi + 1e-4])["pt"]) == 2


def test_hadron_towers_are_coarser_than_ecal_cells():
    # 0.01 and 0.07 are in one HCAL tower (Δη = 0.087) but in different ECAL cells.
    neutrons = apply_detector(np.array([10.0, 10.0]), np.array([0.01, 0.07]), np.array([0.01, 0.07]),
                              np.array([2112, 2112]), np.zeros(2), np.random.default_rng(0), PERFECT)
    assert len(neutrons["pt"]) == 1 and neutrons["pid_class"][0] == NEUTRAL_HADRON
    assert len(_photons([0.01, 0.07], [0.01, 0.07])["pt"]) == 2
    # A photon and a neutral hadron in the same place go to different calorimeters.
    mixed = apply_detector(np.array([10.0, 10.0]), np.zeros(2) + 0.01, np.zeros(2) + 0.01,
                           np.array([22, 130]), np.zeros(2), np.random.default_rng(0), PERFECT)
    assert sorted(mixed["pid_class"].tolist()) == [PHOTON, NEUTRAL_HADRON]


def test_energy_is_conserved_into_towers():
    rng = np.random.default_rng(3)
    n = 4000  # photons crowded into a 0.2 x 0.2 patch of 50 events: many cells hold several
    etas, phis = rng.uniform(-0.1, 0.1, n), rng.uniform(-0.1, 0.1, n)
    energies, event = rng.exponential(5.0, n) + 0.1, rng.integers(0, 50, n)
    seen = _photons(etas, phis, energies, event)
    assert seen["n_deposits"].sum() == n
    assert len(seen["pt"]) < 0.8 * n
    per_event = np.bincount(event, weights=energies, minlength=50)
    assert np.allclose(np.bincount(seen["event"], weights=seen["e"], minlength=50), per_event, rtol=1e-12)
    # With the ECAL's resolution each tower scatters by σ(E) around the deposited energy.
    smeared = _photons(etas, phis, energies, event, model=replace(DetectorModel(), ecal_tower_e_min=0.0))
    exact = _photons(etas, phis, energies, event)
    assert np.array_equal(smeared["event"], exact["event"])
    sigma = np.hypot(0.10 / np.sqrt(exact["e"]), 0.01)
    pulls = (smeared["e"] - exact["e"]) / (sigma * exact["e"])
    assert abs(pulls.mean()) < 4 / np.sqrt(len(pulls))
    assert pulls.std() == pytest.approx(1.0, abs=0.05)


def test_towers_lie_in_the_cell_of_their_deposits():
    rng = np.random.default_rng(5)
    etas, phis = rng.uniform(-2, 2, 500), rng.uniform(-np.pi, np.pi, 500)
    seen = _photons(etas, phis, event=np.arange(500))  # one photon per event: one tower each
    assert len(seen["pt"]) == 500
    assert np.array_equal(np.stack(cell_indices(seen["eta"], seen["phi"], PERFECT, "ecal")),
                          np.stack(cell_indices(etas, phis, PERFECT, "ecal")))


def test_tracks_stay_individual_and_untracked_charged_particles_reach_the_hcal():
    n = 200
    etas = np.concatenate([np.full(n, 0.3001), np.full(n, 3.0001)])  # inside and outside the tracker
    seen = apply_detector(np.full(2 * n, 20.0), etas, np.full(2 * n, 0.1001), np.full(2 * n, 211),
                          np.ones(2 * n), np.random.default_rng(1), PERFECT)
    tracks = seen["pid_class"] == CHARGED_HADRON
    assert 0.9 * n < tracks.sum() <= n and np.all(seen["n_deposits"][tracks] == 1)
    # Everything beyond |η| = 2.5, and the few lost tracks, end up in two HCAL towers.
    towers = seen["pid_class"] == NEUTRAL_HADRON
    assert towers.sum() == 2 and seen["n_deposits"][towers].sum() == 2 * n - tracks.sum()


def test_thresholds_apply_to_towers_not_to_deposits():
    soft = [0.3, 0.3]  # each below the ECAL's 0.5 GeV, together above it
    model = replace(DetectorModel(), ecal_stochastic=0.0, ecal_constant=0.0)
    assert len(_photons([0.001, 0.002], [0.001, 0.002], soft, model=model)["pt"]) == 1
    assert len(_photons([0.001, 0.5], [0.001, 0.5], soft, model=model)["pt"]) == 0


def test_same_seed_same_candidates():
    rng = np.random.default_rng(9)
    args = (rng.exponential(5, 300) + 0.5, rng.uniform(-3, 3, 300), rng.uniform(-3, 3, 300),
            rng.choice([22, 211, -211, 130, 2112, 11], 300))
    charges = np.isin(args[3], [211, -211, 11]).astype(float)
    a = apply_detector(*args, charges, np.random.default_rng(4), event=np.repeat(np.arange(30), 10))
    b = apply_detector(*args, charges, np.random.default_rng(4), event=np.repeat(np.arange(30), 10))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert np.all(np.diff(a["event"]) >= 0)  # sorted by event, as FastJet's input needs


@pytest.mark.slow
def test_multiplicity_drops_by_the_merged_cells():
    """On real top events, calorimeter candidates = distinct (event, calorimeter, cell) of the deposits."""
    import awkward as ak

    from mlpp.data.cards import load_card
    from mlpp.data.generate import _ChargeTable, make_pythia
    from mlpp.kinematics import ptetaphi_from_momenta

    card = load_card("top")
    pythia = make_pythia(card, card.class_names.index("top"), seed=7)
    prt = pythia.nextBatch(20).prt
    counts = ak.to_numpy(ak.num(prt))
    ids, status = ak.to_numpy(ak.flatten(prt.id)), ak.to_numpy(ak.flatten(prt.status))
    px, py, pz = (ak.to_numpy(ak.flatten(getattr(prt.p, c))) for c in ("px", "py", "pz"))
    event = np.repeat(np.arange(len(counts)), counts)
    keep = (status > 0) & ~np.isin(np.abs(ids), (12, 14, 16))
    pt, eta, phi = ptetaphi_from_momenta(px[keep], py[keep], pz[keep])
    inside = np.abs(eta) < 4.9
    ids, event, pt, eta, phi = ids[keep][inside], event[keep][inside], pt[inside], eta[inside], phi[inside]
    charges = _ChargeTable(pythia)(ids)
    model = replace(PERFECT, tracking_efficiency=1.0, track_pt_min=0.0)
    seen = apply_detector(pt, eta, phi, ids, charges, np.random.default_rng(0), model, event)

    calo = (charges == 0) | (np.abs(eta) >= model.tracker_abs_eta)
    em = np.isin(np.abs(ids), (11, 22))
    expected = set()
    for name, sel in (("ecal", calo & em), ("hcal", calo & ~em)):
        i_eta, i_phi = cell_indices(eta[sel], phi[sel], model, name)
        expected |= set(zip(event[sel].tolist(), [name] * sel.sum(), i_eta.tolist(), i_phi.tolist()))
    n_towers = np.count_nonzero(seen["pid_class"] >= PHOTON)
    assert n_towers == len(expected)
    assert n_towers < 0.97 * calo.sum()  # boosted π0 photons share cells: fewer candidates than particles
    assert np.count_nonzero(seen["pid_class"] < PHOTON) == np.count_nonzero(~calo)
