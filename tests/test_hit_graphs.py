"""Hit graphs of the toy tracker (mlpp.tracking): the pT-threshold slope, candidate edges against a
brute force, every true edge of stiff tracks kept, and the edge features."""
from __future__ import annotations

import numpy as np

from mlpp import tracking
from mlpp.tracking import Tracker, simulate_hits

RADII = (32.0, 72.0, 116.0, 172.0, 260.0, 360.0, 500.0, 660.0)  # mm, the tracks card's barrel


def _tracker(**kw) -> Tracker:
    n = len(RADII)
    base = dict(radii=RADII, half_lengths=(1100.0,) * n, sigma_rphi=(0.0,) * n, sigma_z=(0.0,) * n, B=2.0)
    return Tracker(**(base | kw))


def _event(seed: int, n: int = 40, pt_min: float = 1.0, noise: float = 0.0):
    rng = np.random.default_rng(seed)
    p = {"pt": pt_min + rng.exponential(3.0, n), "eta": rng.uniform(-1.2, 1.2, n), "phi": rng.uniform(-np.pi, np.pi, n),
         "q": rng.choice([-1.0, 1.0], n), "vx": np.zeros(n), "vy": np.zeros(n), "vz": rng.normal(0, 50, n)}
    return simulate_hits(p, _tracker(noise_per_layer=noise), rng), p


def test_max_phi_slope_is_half_the_inverse_radius():
    # pT = 1 GeV in 2 T: R = 1667.8 mm, so the slope is 3.0e-4 rad/mm
    assert np.isclose(tracking.max_phi_slope(1.0, 2.0), 1 / (2 * 1000 / (tracking.C_LIGHT * 2.0)))
    assert np.isclose(tracking.max_phi_slope(2.0, 2.0), tracking.max_phi_slope(1.0, 2.0) / 2)


def test_candidate_edges_match_a_brute_force():
    hits, _ = _event(3, n=15, noise=2.0)
    max_slope, max_z0 = 6e-4, 120.0
    inner, outer = tracking.candidate_edges(hits, max_slope, max_z0)
    expected = set()
    r, phi, z, layer = hits["r"], hits["phi"], hits["z"], hits["layer"]
    for i in range(len(r)):
        for j in range(len(r)):
            if layer[j] != layer[i] + 1:
                continue
            dphi = (phi[j] - phi[i] + np.pi) % (2 * np.pi) - np.pi
            z0 = z[i] - r[i] * (z[j] - z[i]) / (r[j] - r[i])
            if abs(dphi / (r[j] - r[i])) < max_slope and abs(z0) < max_z0:
                expected.add((i, j))
    assert set(zip(inner.tolist(), outer.tolist())) == expected
    assert len(expected) > 0 and inner.dtype == outer.dtype == np.int64


def test_every_true_edge_of_tracks_above_threshold_is_kept():
    hits, p = _event(5, n=60, pt_min=1.0, noise=5.0)
    inner, outer = tracking.candidate_edges(hits, 1.1 * tracking.max_phi_slope(1.0, 2.0), 4 * 50.0)
    kept = tracking.true_edges(hits, inner, outer)
    # every pair of consecutive-layer hits of one particle (fully efficient tracker, |vz| < 200 mm)
    particle, layer = hits["particle"], hits["layer"]
    n_true = 0
    for k in np.flatnonzero(np.abs(p["vz"]) < 200):
        layers = np.sort(layer[particle == k])
        n_true += int(np.sum(np.diff(layers) == 1))
    assert kept.sum() == n_true > 100
    assert not np.any(kept & (particle[inner] < 0)), "noise hits never make true edges"


def test_edge_features_z0_and_slope():
    hits, p = _event(7, n=30)
    inner, outer = tracking.candidate_edges(hits, 1.1 * tracking.max_phi_slope(1.0, 2.0), 300.0)
    f = tracking.edge_features(hits, inner, outer)
    assert f.shape == (len(inner), len(tracking.EDGE_FEATURE_NAMES)) and f.dtype == np.float32
    true = tracking.true_edges(hits, inner, outer)
    col = {name: f[:, k] for k, name in enumerate(tracking.EDGE_FEATURE_NAMES)}
    # a true edge's straight line in (r, z) points back to its particle's vertex (stiff tracks: within 1 mm)
    vz = p["vz"][hits["particle"][inner[true]]]
    assert np.median(np.abs(1000 * col["z0"][true] - vz)) < 1.0
    # |phi slope| per m is below the pT threshold's for every true edge
    assert np.all(np.abs(col["phi_slope"][true]) < 1000 * 1.1 * tracking.max_phi_slope(1.0, 2.0))
