"""The dijet thread: the physics of the fast-tier events, the features, the regions and the injection."""
from __future__ import annotations

import numpy as np
import pytest

from mlpp.data import EventDataset, load_card
from mlpp.tasks import dijet as thread


@pytest.fixture(scope="module")
def events():
    """The fast-tier dijet events (about 3 minutes to generate on 2 cores, then read from the cache)."""
    return thread.load("fast")


def _peak(values: np.ndarray, lo: float, hi: float, width: float) -> float:
    counts, edges = np.histogram(values, bins=np.arange(lo, hi + width, width))
    return float(edges[np.argmax(counts)] + width / 2)


def _of(events: EventDataset, label: int) -> EventDataset:
    return events.subset(events.labels == label)


# --- physics of the fast tier ------------------------------------------------------------------

def test_the_signal_is_a_bump_at_3p5_TeV(events):
    m = thread.mjj(_of(events, thread.SIGNAL))
    assert 3300 <= _peak(m, 2000, 5000, 100) <= 3600
    assert np.mean(thread.in_signal_region(m)) > 0.45


def test_the_signal_jets_are_the_100_and_500_GeV_resonances(events):
    mj1, mj2 = thread.features(_of(events, thread.SIGNAL), ("mj1", "mj2")).T
    assert 85 <= _peak(mj1, 20, 300, 10) <= 115
    assert 470 <= _peak(mj2, 300, 700, 10) <= 520
    # two-prong jets: the signal's τ21 is well below QCD's
    tau21 = thread.features(events, ("tau21_j1", "tau21_j2"))
    for column in range(2):
        sig, bkg = (np.median(tau21[events.labels == label, column]) for label in (thread.SIGNAL, thread.BACKGROUND))
        assert sig < bkg - 0.15


def test_the_background_mjj_falls_steeply_without_a_bump(events):
    m = thread.mjj(_of(events, thread.BACKGROUND))
    counts, _ = np.histogram(m, bins=np.arange(2800, 4601, 200))
    assert np.all(np.diff(counts) < 0), counts
    assert counts[0] > 5 * counts[-1]  # 2.8-3.0 TeV against 4.4-4.6 TeV (measured: 9 times)
    (lo_band, hi_band) = (np.sum((m >= lo) & (m < hi)) for lo, hi in thread.SIDEBANDS)
    assert lo_band > 2 * hi_band


def test_the_leading_jet_passes_the_trigger_cut(events):
    spec = load_card(thread.CARD).jets
    pt, eta = events.jets[..., 0], events.jets[..., 1]
    assert pt[:, 0].min() >= spec.pt_min == 1200.0
    assert np.abs(eta[:, 0]).max() < spec.abs_eta_max
    assert np.all(pt[:, 0] >= pt[:, 1]), "jets are stored in decreasing pT"
    assert events.jets.shape[1:] == (2, 4) and events.features.shape[1:] == (2, len(events.feature_names))


def test_the_inputs_do_not_follow_mjj_but_the_jet_pt_does(events):
    """What makes CWoLa hunting work, and the counter-example the lecture shows."""
    bkg = _of(events, thread.BACKGROUND)
    m = thread.mjj(bkg)
    window = thread.in_sidebands(m) | thread.in_signal_region(m)
    x = thread.features(bkg, thread.FEATURES + ("pt_j2",))[window]
    corr = [abs(np.corrcoef(x[:, i], m[window])[0, 1]) for i in range(x.shape[1])]
    assert max(corr[:4]) < 0.15, corr  # measured: below 0.07
    assert corr[4] > 0.2, corr  # measured: 0.32


# --- features and regions ------------------------------------------------------------------------

def test_features_sort_the_jets_by_mass(events):
    x = thread.features(events, ("mj1", "mj2", "delta_mj", "tau21_j1", "mjj"))
    assert x.shape == (len(events), 5)
    assert np.all(x[:, 0] <= x[:, 1]) and np.allclose(x[:, 2], x[:, 1] - x[:, 0]) and np.all(x[:, 2] >= 0)
    np.testing.assert_allclose(x[:, 4], events.mjj)
    lighter = np.argmin(events.jets[:, :, 3], axis=1)
    np.testing.assert_allclose(x[:, 3], events.feature("tau21_b1")[np.arange(len(events)), lighter], rtol=1e-6)
    with pytest.raises(KeyError, match="unknown dijet feature"):
        thread.features(events, ("mass",))


def test_mjj_of_two_known_jets():
    # Two massless back-to-back jets of pT 1.75 TeV at η = 0: m_JJ = 3.5 TeV.
    jets = np.array([[[1750.0, 0.0, 0.0, 0.0], [1750.0, 0.0, np.pi, 0.0]]])
    one = EventDataset(name="dijet", class_names=["qcd", "wprime"], labels=np.array([1]), jets=jets,
                       features=np.zeros((1, 2, 6), np.float32), meta={"card": "dijet"})
    np.testing.assert_allclose(thread.mjj(one), [3500.0])


def test_the_regions_are_adjacent_and_disjoint():
    (a, b), (c, d) = thread.SIDEBANDS
    lo, hi = thread.SIGNAL_REGION
    assert a < b == lo < hi == c < d
    assert lo < 3500 < hi
    m = np.array([a - 1, a, lo - 1e-6, lo, 3500, hi - 1e-6, hi, d - 1e-6, d])
    np.testing.assert_array_equal(thread.in_signal_region(m), [0, 0, 0, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(thread.in_sidebands(m), [0, 1, 1, 0, 0, 0, 1, 1, 0])


# --- pools and injection -------------------------------------------------------------------------

def _keys(data: EventDataset) -> set:
    return {tuple(row) for row in np.round(data.jets.reshape(len(data), -1), 4)}


def test_pools_are_disjoint_and_pure(events):
    pools = thread.pools(events)
    parts = [pools.background, pools.reference, pools.test_background, pools.signal, pools.test_signal]
    assert sum(len(p) for p in parts) == len(events)
    for part, label in zip(parts, [0, 0, 0, 1, 1]):
        assert np.all(part.labels == label)
    keys = [_keys(p) for p in parts]
    assert sum(len(k) for k in keys) == len(set().union(*keys)) == len(events)


def test_inject_adds_a_seeded_nested_subset_of_signal(events):
    pools = thread.pools(events)
    small = thread.inject(pools.background, pools.signal, 0.01, seed=3)
    large = thread.inject(pools.background, pools.signal, 0.05, seed=3)
    n_b = len(pools.background)
    assert np.sum(small.labels == 0) == np.sum(large.labels == 0) == n_b
    assert np.sum(small.labels == 1) == thread.n_injected(n_b, 0.01) == round(0.01 * n_b)
    assert np.sum(large.labels == 1) == round(0.05 * n_b)
    assert _keys(small.subset(small.labels == 1)) <= _keys(large.subset(large.labels == 1))
    assert _keys(large.subset(large.labels == 1)) <= _keys(pools.signal)
    again = thread.inject(pools.background, pools.signal, 0.01, seed=3)
    np.testing.assert_array_equal(small.jets, again.jets)
    other = thread.inject(pools.background, pools.signal, 0.01, seed=4)
    assert _keys(other.subset(other.labels == 1)) != _keys(small.subset(small.labels == 1))
    # shuffled: the signal events are not all at the end
    assert np.flatnonzero(small.labels == 1).min() < len(small) // 2
    counts = thread.region_counts(small)
    assert counts["S_total"] == np.sum(small.labels == 1) and counts["B_total"] == n_b
    assert counts["S/B"] > 0.01  # the signal region concentrates the signal
    assert counts["S/sqrt(B)"] == pytest.approx(counts["S"] / np.sqrt(counts["B"]))


def test_inject_refuses_what_it_cannot_do(events):
    pools = thread.pools(events)
    with pytest.raises(ValueError, match="needs .* signal events"):
        thread.inject(pools.background, pools.signal, 0.9)
    with pytest.raises(ValueError, match="label 0"):
        thread.inject(pools.signal, pools.signal, 0.01)
    with pytest.raises(ValueError, match=">= 0"):
        thread.inject(pools.background, pools.signal, -0.1)
    assert np.sum(thread.inject(pools.background, pools.signal, 0.0).labels) == 0


def test_the_thread_refuses_another_dataset(top):
    with pytest.raises(ValueError, match="needs the 'dijet' events"):
        thread.pools(top)
