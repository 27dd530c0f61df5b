"""The zjet thread (mlpp.tasks.zjet) and the paired card behind it: particle- and detector-level jets.

The card, the observables (soft drop on hand-made jets), the pairing flags and the file format are
checked without Pythia; the slow tests check the physics of the fast-tier ``zjet`` card: the Z's pT
spectrum, the matching efficiency, the response diagonal and the αs shift between the variants.
They use the cached file; until a lecture loads the card (then ``make data`` generates it) they
are skipped when it is not cached, since generating it takes several minutes on 2 cores.
"""
from __future__ import annotations

import numpy as np
import pytest
import yaml

from mlpp.data import CardError, PairedDataset, load_card
from mlpp.data.dataset import LEVELS, read_h5, write_h5
from mlpp.data.features import LN_RHO_FLOOR, UNFOLDING_OBSERVABLES, unfolding_observables
from mlpp.data.paired import boson_pt
from mlpp.tasks import zjet

# --- the card -------------------------------------------------------------------------------


def test_zjet_is_a_paired_card_with_two_variants():
    from mlpp.data.build import GENERATOR_VERSION, _fingerprint

    card = load_card("zjet")
    assert card.is_paired and not card.is_events and card.class_names == list(zjet.VARIANTS)
    assert card.paired == {"boson": 23, "boson_pt_min": 200.0, "match_dr": 0.2}
    assert card.jets.R == 0.4 and card.jets.jets_per_event == 1 and card.ecm == 14000.0
    assert "Tune:pp = 14" in card.settings and "PartonLevel:MPI = off" in card.settings
    assert card.classes[0].settings == () and card.classes[1].settings == ("TimeShower:alphaSvalue = 0.150",)
    assert all(c.truth == {"rule": "any"} for c in card.classes)
    assert card.n_per_class("fast") == 10000 and card.n_per_class("full") >= 100000
    assert _fingerprint(card).startswith(f"{card.sha256}:v{GENERATOR_VERSION}.p1:det-")
    assert card.public["doi"] == "10.5281/zenodo.3548091"


@pytest.mark.parametrize("edit, message", [
    (lambda raw: raw.pop("paired"), "missing key 'paired'"),
    (lambda raw: raw["paired"].pop("boson"), "paired: missing key 'boson'"),
    (lambda raw: raw["paired"].update(jet="leading"), "unknown key"),
    (lambda raw: raw["paired"].update(match_dr=0.0), "match_dr"),
    (lambda raw: raw["jets"].update(jets_per_event=2), "jets_per_event must be 1"),
    (lambda raw: raw["classes"][0].update(truth={"rule": "parton", "pdgids": [21]}), "must be 'any'"),
])
def test_bad_paired_cards_are_explained(tiny_cards, edit, message):
    raw = yaml.safe_load((zjet_card_path()).read_text())
    edit(raw)
    (tiny_cards / "broken.yml").write_text(yaml.safe_dump(raw))
    with pytest.raises(CardError, match=message):
        load_card("broken")


def zjet_card_path():
    from pathlib import Path

    return Path(__file__).resolve().parents[1] / "datasets" / "zjet.yml"


# --- observables and pairing, without Pythia ------------------------------------------------------

def _jets(*jets):
    """Padded (pts, etas, phis, es, mask) of massless particles given as lists of (pT, eta, phi)."""
    width = max(len(j) for j in jets)
    arr = np.zeros((len(jets), width, 3))
    mask = np.zeros((len(jets), width), bool)
    for i, j in enumerate(jets):
        arr[i, :len(j)] = j
        mask[i, :len(j)] = True
    pts, etas, phis = arr[..., 0], arr[..., 1], arr[..., 2]
    return pts, etas, phis, pts * np.cosh(etas), mask


def test_soft_drop_grooms_the_soft_wide_branch_and_keeps_the_two_prongs():
    """C/A joins A (100 GeV) and B (40 GeV, ΔR 0.3) first, then the soft C (2 GeV, ΔR 0.38 from A):
    declustering drops C (z = 2/142 < 0.1) and stops at A–B (z = 40/140 > 0.1)."""
    pts, etas, phis, es, mask = _jets([(100, 0, 0), (40, 0.3, 0), (2, 0, 0.38)], [(50, 0.1, 0.2)])
    out = dict(zip(UNFOLDING_OBSERVABLES, unfolding_observables(pts, etas, phis, es, mask, 0.4).T))
    m_ab = np.sqrt(2 * 100 * 40 * (np.cosh(0.3) - 1))                   # two massless prongs at Δη = 0.3
    p = (pts * mask)[0]
    jet_pt = np.hypot((p * np.cos(phis[0])).sum(), (p * np.sin(phis[0])).sum())
    np.testing.assert_allclose(out["zg"][0], 40 / 140, rtol=1e-5)
    np.testing.assert_allclose(out["lnrho"][0], np.log(m_ab**2 / jet_pt**2), rtol=1e-4)
    assert out["mass"][0] > m_ab                                        # C adds mass before grooming
    assert out["multiplicity"].tolist() == [3, 1]
    # one massless particle: no splitting passes, no groomed mass, zero width
    assert out["zg"][1] == 0 and out["lnrho"][1] == LN_RHO_FLOOR and out["width"][1] == 0
    assert out["tau21"][1] == 0


def test_width_is_the_pt_weighted_distance_to_the_axis():
    # two equal massless particles at Δφ = ±0.1 around φ = 0: the axis is φ = 0, each ΔR = 0.1
    pts, etas, phis, es, mask = _jets([(60, 0.5, 0.1), (60, 0.5, -0.1)], [(90, 0, 0.2), (30, 0, -0.2)])
    out = unfolding_observables(pts, etas, phis, es, mask, 0.4)
    width = out[:, UNFOLDING_OBSERVABLES.index("width")]
    np.testing.assert_allclose(width[0], 0.1, rtol=1e-4)
    # unequal pT: the axis sits at φ_axis ≈ arctan of the pT-weighted sum, the width is Σ pT ΔR / Σ pT
    axis = np.arctan2(90 * np.sin(0.2) + 30 * np.sin(-0.2), 90 * np.cos(0.2) + 30 * np.cos(-0.2))
    np.testing.assert_allclose(width[1], (90 * abs(0.2 - axis) + 30 * abs(-0.2 - axis)) / 120, rtol=1e-4)
    with pytest.raises(ValueError, match="at least one constituent"):
        unfolding_observables(*_jets([(1, 0, 0)], [(0, 0, 0)])[:4], np.array([[True], [False]]), 0.4)


def test_boson_pt_is_the_last_copys():
    ids = np.array([2, 23, 21, 23, 12, -12, 1, 23, 14])
    px = np.array([0, 10, 0, 30, 0, 0, 0, 5, 0.0])
    py = np.array([0, 0, 0, 40, 0, 0, 0, 12, 0.0])
    event_of = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(boson_pt(ids, px, py, event_of, 3, 23), [50.0, 13.0, 0.0])


def toy_events(n: int = 200, seed: int = 0) -> PairedDataset:
    """A synthetic zjet-like PairedDataset: both variants, some misses, fakes and unmatched pairs."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    passed = {"particle": rng.random(n) < 0.9, "detector": rng.random(n) < 0.9}
    passed["detector"][~passed["particle"]] = True            # a row passes at least one level
    dr = np.where(rng.random(n) < 0.95, rng.uniform(0, 0.05, n), rng.uniform(0.3, 3.0, n))
    obs = {level: rng.normal(size=(n, 6)).astype(np.float32) for level in LEVELS}
    jets = {level: np.abs(rng.normal(200, 20, (n, 4))) for level in LEVELS}
    return PairedDataset(name="zjet", class_names=list(zjet.VARIANTS), labels=labels, event=np.arange(n) + 7,
                         boson_pt=rng.uniform(200, 400, n), jets=jets, observables=obs, passed=passed, dr=dr,
                         matched=dr < 0.2, meta={"card": "zjet", "R": 0.4})


def test_response_misses_and_fakes_partition_the_passing_events():
    events = toy_events()
    ok, miss, fake = zjet.response(events), zjet.misses(events), zjet.fakes(events)
    gen, reco = zjet.passed(events, "particle"), zjet.passed(events, "detector")
    assert np.array_equal(ok | miss, gen) and not (ok & miss).any()
    assert np.array_equal(ok | fake, reco) and not (ok & fake).any()
    assert not (ok & ~events.matched).any()
    # a pair that passes at both levels but does not match is a miss and a fake at once
    both_unmatched = gen & reco & ~events.matched
    assert both_unmatched.any() and np.array_equal(miss & fake, both_unmatched)
    assert miss.any() and fake.any()


def test_split_variants_and_observables(tmp_path):
    events = toy_events(n=101)
    a, b = zjet.split(events)
    assert (len(a), len(b)) == (50, 51)
    assert np.array_equal(np.concatenate([a.event, b.event]), events.event)
    x = zjet.observables(a, "detector")
    assert x.shape == (50, 6) and np.array_equal(x[:, 1], zjet.observable(a, "multiplicity", "detector"))
    with pytest.raises(ValueError, match="level must be"):
        zjet.observables(a, "parton")
    other = toy_events(n=4)
    other.name = "top"
    with pytest.raises(ValueError, match="needs the 'zjet' dataset"):
        zjet.split(other)
    assert set(zjet.BINS) == set(zjet.OBSERVABLES) == set(zjet.LABELS)
    assert all(np.all(np.diff(edges) > 0) for edges in zjet.BINS.values())
    # the file format keeps every field, per level
    write_h5(tmp_path / "z.h5", events)
    back = read_h5(tmp_path / "z.h5")
    assert isinstance(back, PairedDataset) and len(back) == len(events)
    for field in ("labels", "event", "boson_pt", "dr", "matched"):
        np.testing.assert_array_equal(getattr(back, field), getattr(events, field))
    for level in LEVELS:
        for field in ("jets", "observables", "passed"):
            np.testing.assert_array_equal(getattr(back, field)[level], getattr(events, field)[level])


# --- physics of the fast-tier card -------------------------------------------------------------

@pytest.fixture(scope="module")
def zjet_fast() -> PairedDataset:
    from mlpp.data import dataset_path
    from mlpp.data.cli import needed_cards

    if not dataset_path("zjet", "fast").exists() and "zjet" not in needed_cards():
        pytest.skip("zjet-fast.h5 is not cached and no lecture loads it yet (so 'make data' does not make it): "
                    "run 'mlpp data generate zjet --tier fast' (several minutes on 2 cores)")
    return zjet.load("fast")


def _mean_shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Difference of the means of b and a and its statistical error."""
    return float(b.mean() - a.mean()), float(np.sqrt(a.var() / len(a) + b.var() / len(b)))


@pytest.mark.slow
def test_the_z_recoils_above_200_gev_with_a_falling_spectrum(zjet_fast):
    events = zjet_fast
    assert len(events) == 20000 and np.bincount(events.labels).tolist() == [10000, 10000]
    pt = events.boson_pt
    assert pt.min() > 200.0
    counts, _ = np.histogram(pt, bins=[200, 250, 300, 350, 400, 500])
    print("pT(Z) per 50 GeV from 200 GeV:", counts.tolist())
    assert np.all(np.diff(counts[:4]) < 0), counts       # falling
    assert 230 < np.median(pt) < 330
    # the leading particle-level jet recoils against the Z: back to back, similar pT
    ok = zjet.passed(events, "particle")
    ratio = events.jets["particle"][ok, 0] / pt[ok]
    assert 0.75 < np.median(ratio) < 1.05, np.median(ratio)


@pytest.mark.slow
def test_matching_efficiency_and_flags(zjet_fast):
    events = zjet_fast
    gen, reco = zjet.passed(events, "particle"), zjet.passed(events, "detector")
    assert np.all(gen | reco)                               # rows pass at least one level
    efficiency = float(np.mean(events.matched[gen] & reco[gen]))
    matched = float(np.mean(events.matched[gen]))
    print(f"matching: {matched:.4f} of the particle-level jets that pass have a detector jet within "
          f"ΔR < 0.2, {efficiency:.4f} one that also passes; misses {zjet.misses(events).sum()}, "
          f"fakes {zjet.fakes(events).sum()} of {len(events)}")
    assert 0.95 < efficiency < 1.0 and zjet.misses(events).any() and zjet.fakes(events).any()
    # paired rows belong to the same event: the stored ΔR is that of the stored jets, and matched
    # jets have the same pT within the detector's resolution
    ok = zjet.response(events)
    jp, jd = events.jets["particle"][ok], events.jets["detector"][ok]
    dr = np.hypot(jp[:, 1] - jd[:, 1], np.mod(jp[:, 2] - jd[:, 2] + np.pi, 2 * np.pi) - np.pi)
    assert np.all(dr < 0.25) and np.median(np.abs(dr - events.dr[ok])) < 0.01   # stored ΔR uses rapidity
    response = jd[:, 0] / jp[:, 0]
    assert 0.97 < np.median(response) < 1.03 and np.std(response) < 0.1
    for label in (0, 1):                                    # one row per event
        ids = events.event[events.labels == label]
        assert len(np.unique(ids)) == len(ids)
    # observables exist exactly where a level has a jet
    for level in LEVELS:
        has_jet = events.jets[level][:, 0] > 0
        x = zjet.observables(events, level)
        assert np.isfinite(x[has_jet]).all() and np.isnan(x[~has_jet]).all()


@pytest.mark.slow
def test_response_is_diagonal(zjet_fast):
    """Most response events stay in their bin of :data:`zjet.BINS`, far more than if the two levels
    of different events were paired (a shuffled pairing), which is what a broken pairing would give."""
    events = zjet_fast.subset(zjet.response(zjet_fast))
    shuffle = np.random.default_rng(0).permutation(len(events))
    diagonal, shuffled = {}, {}
    for name in zjet.OBSERVABLES:
        edges = zjet.BINS[name]
        gen = np.digitize(zjet.observable(events, name, "particle"), edges)
        reco = np.digitize(zjet.observable(events, name, "detector"), edges)
        diagonal[name], shuffled[name] = float(np.mean(gen == reco)), float(np.mean(gen[shuffle] == reco))
    print("fraction of response events in the same bin at both levels:",
          {k: round(v, 3) for k, v in diagonal.items()}, "with a shuffled pairing:",
          {k: round(v, 3) for k, v in shuffled.items()})
    assert diagonal["mass"] > 0.4 and diagonal["multiplicity"] > 0.25, diagonal
    assert all(diagonal[k] > 1.5 * shuffled[k] for k in diagonal), (diagonal, shuffled)
    # the detector loses soft particles (track pT > 0.5 GeV, tower thresholds, merged towers)
    n_gen = zjet.observable(events, "multiplicity", "particle")
    n_reco = zjet.observable(events, "multiplicity", "detector")
    assert n_reco.mean() < n_gen.mean() and np.corrcoef(n_gen, n_reco)[0, 1] > 0.8


@pytest.mark.slow
def test_larger_shower_alpha_s_gives_more_and_wider_jets(zjet_fast):
    shifts = {}
    for level in LEVELS:
        sim, data = (zjet_fast.subset((zjet_fast.labels == v) & zjet.passed(zjet_fast, level)) for v in (0, 1))
        for name in ("multiplicity", "width", "mass"):
            shift, error = _mean_shift(zjet.observable(sim, name, level), zjet.observable(data, name, level))
            shifts[(level, name)] = (shift, error)
            print(f"{level:8} {name:12} sim {np.mean(zjet.observable(sim, name, level)):.4f}  "
                  f"data {np.mean(zjet.observable(data, name, level)):.4f}  shift {shift:+.4f} ± {error:.4f}")
    for level in LEVELS:
        for name in ("multiplicity", "width"):
            shift, error = shifts[(level, name)]
            assert shift > 5 * error, (level, name, shift, error)


# --- the sim variant through a worse detector (zjet_smeared) -------------------------------------

def test_load_smeared_refuses_a_sample_that_is_not_the_sim_variant(monkeypatch):
    from mlpp import data

    monkeypatch.setattr(data, "load", lambda name, tier=None: toy_events(n=4))
    with pytest.raises(ValueError, match="must hold the 'sim' variant alone"):
        zjet.load_smeared("fast")
    assert zjet.CALL_CARDS == {"load_smeared": zjet.SMEARED_CARD}


@pytest.fixture(scope="module")
def zjet_smeared_fast() -> PairedDataset:
    from mlpp.data import dataset_path
    from mlpp.data.cli import needed_cards

    if not dataset_path(zjet.SMEARED_CARD, "fast").exists() and zjet.SMEARED_CARD not in needed_cards():
        pytest.skip("zjet_smeared-fast.h5 is not cached and no lecture loads it yet: "
                    "run 'mlpp data generate zjet_smeared --tier fast' (a few minutes on 2 cores)")
    return zjet.load_smeared("fast")


def _pt_response(events: PairedDataset) -> np.ndarray:
    """Detector- over particle-level pT of the leading jet, for the events in the response matrix."""
    ok = zjet.response(events)
    return events.jets["detector"][ok, 0] / events.jets["particle"][ok, 0]


@pytest.mark.slow
def test_the_worse_detector_widens_the_pt_response_and_leaves_the_particle_level(zjet_smeared_fast, zjet_fast):
    smeared, nominal = zjet_smeared_fast, zjet_fast.subset(zjet_fast.labels == 0)  # both: the sim variant
    assert len(smeared) == 5000 and smeared.class_names == ["sim"]
    assert smeared.meta["detector"] == load_card(zjet.SMEARED_CARD).detector.to_dict() != nominal.meta["detector"]
    r_smeared, r_nominal = _pt_response(smeared), _pt_response(nominal)
    widths = {name: (float(np.std(r)), float(np.subtract(*np.percentile(r, [84, 16])) / 2))
              for name, r in (("nominal", r_nominal), ("smeared", r_smeared))}
    print("jet pT response detector/particle (std, half 16-84 % range):", widths,
          f"medians {np.median(r_nominal):.4f} / {np.median(r_smeared):.4f}")
    assert widths["smeared"][0] > 1.3 * widths["nominal"][0] and widths["smeared"][1] > 1.3 * widths["nominal"][1]
    assert 0.95 < np.median(r_smeared) < 1.05
    # the particle level is the same physics: the same observables within statistics
    for name in ("multiplicity", "mass"):
        a = zjet.observable(nominal.subset(zjet.passed(nominal, "particle")), name, "particle")
        b = zjet.observable(smeared.subset(zjet.passed(smeared, "particle")), name, "particle")
        shift, error = _mean_shift(a, b)
        assert abs(shift) < 4 * error, (name, shift, error)
