"""High-level features and jet images: conventions and invariances."""
from __future__ import annotations

import numpy as np
import pytest

from mlpp.data.features import FEATURE_NAMES, jet_features
from mlpp.kinematics import boost, jet_p4s, masses_from_p4s, p4s_from_ptetaphie, ptetaphim_from_p4s

COLUMNS = ("pt", "eta", "phi", "e", "mask")


def _arrays(data, n=60):
    """Constituent arrays as stored (float32: the generator computed the features from these)."""
    return [data.constituents[k][:n] for k in COLUMNS]


def test_massless_particles_have_zero_mass(top):
    c = top.constituents
    photons = c["mask"] & (c["pid_class"] == 3)
    p4 = p4s_from_ptetaphie(c["pt"][photons], c["eta"][photons], c["phi"][photons], c["e"][photons])
    assert np.all(masses_from_p4s(p4) < 1e-3 * c["e"][photons] + 1e-3)


def test_jet_mass_from_constituents_matches_the_clustered_jet(top):
    c = top.constituents
    full = c["mask"].sum(1) < top.max_constituents  # nothing truncated
    p4 = jet_p4s(c["pt"], c["eta"], c["phi"], c["e"], c["mask"])
    np.testing.assert_allclose(ptetaphim_from_p4s(p4)[full, 3], top.jet[full, 3], rtol=2e-3, atol=0.05)


MMDT = FEATURE_NAMES.index("mass_mmdt")


def _assert_features_close(a, b, skip=()):
    """Equal to float precision, except that soft drop may flip a borderline soft branch when the
    inputs change in the last bits: there, most jets must agree exactly and all within 1 %."""
    keep = [i for i in range(len(FEATURE_NAMES)) if i != MMDT and FEATURE_NAMES[i] not in skip]
    np.testing.assert_allclose(a[:, keep], b[:, keep], rtol=1e-4, atol=1e-6)
    rel = np.abs(a[:, MMDT] - b[:, MMDT]) / np.maximum(b[:, MMDT], 1e-9)
    assert np.median(rel) < 1e-5 and rel.max() < 1e-2


def test_stored_features_match_a_recomputation(top):
    fresh = jet_features(*_arrays(top), R=0.8)
    _assert_features_close(fresh, top.features[:60], skip=("pt", "eta", "mass"))  # those come from the clustered jet


def test_features_are_permutation_invariant(top):
    pts, etas, phis, es, mask = _arrays(top, 30)
    rng = np.random.default_rng(1)
    order = np.stack([np.concatenate([rng.permutation(m.sum()), np.arange(m.sum(), len(m))]) for m in mask])
    shuffled = [np.take_along_axis(a, order, axis=1) for a in (pts, etas, phis, es, mask)]
    _assert_features_close(jet_features(*shuffled, R=0.8), jet_features(pts, etas, phis, es, mask, R=0.8))


def test_substructure_is_invariant_under_longitudinal_boosts(top):
    """τN and the energy correlators use pT and rapidity differences: a boost along z changes neither."""
    pts, etas, phis, es, mask = _arrays(top, 30)
    pts, etas, phis = (a.astype(np.float64) for a in (pts, etas, phis))
    p4 = boost(p4s_from_ptetaphie(pts, etas, phis, es), (0, 0, 1), 0.7)
    boosted = ptetaphim_from_p4s(p4)
    # rapidity, not pseudorapidity, shifts by exactly 0.7 for massive constituents; use y as "eta" consistently
    fb = jet_features(boosted[..., 0], etas + 0.7, boosted[..., 2], pts * np.cosh(etas + 0.7), mask, R=0.8)
    f0 = jet_features(pts, etas, phis, pts * np.cosh(etas), mask, R=0.8)
    _assert_features_close(fb, f0, skip=("eta",))
    # the boost did happen: the jets moved forward
    assert np.all(fb[:, FEATURE_NAMES.index("eta")] > f0[:, FEATURE_NAMES.index("eta")] + 0.5)


def test_ratios_agree_with_fastjet_contrib_classes(top):
    """Our C2, D2, N2, M2, D2^(1,2) (built from shared correlators) equal fastjet-contrib's own classes."""
    import awkward as ak
    import fastjet

    pts, etas, phis, es, mask = _arrays(top, 25)
    ours = jet_features(pts, etas, phis, es, mask, R=0.8)
    counts, flat = mask.sum(1), mask.ravel()
    events = ak.unflatten(ak.zip({"px": (pts * np.cos(phis)).ravel()[flat], "py": (pts * np.sin(phis)).ravel()[flat],
                                  "pz": (pts * np.sinh(etas)).ravel()[flat], "E": es.ravel()[flat]}), counts)
    cs = fastjet.ClusterSequence(events, fastjet.JetDefinition(fastjet.cambridge_algorithm, 10.0))
    for name, func, beta, alpha in [("c2_b1", "c2", 1.0, 0.0), ("d2_b2", "d2", 2.0, 0.0), ("n2_b1", "n2", 1.0, 0.0),
                                    ("m2_b2", "m2", 2.0, 0.0), ("d2_a1_b2", "generalizedd2", 2.0, 1.0)]:
        ref = ak.to_numpy(cs.exclusive_jets_energy_correlator(njets=1, func=func, beta=beta, alpha=alpha))
        np.testing.assert_allclose(ours[:, FEATURE_NAMES.index(name)], ref, rtol=1e-5, err_msg=name)


# --- jet images -------------------------------------------------------------------

def test_unnormalised_image_sums_to_the_constituent_pt(top):
    sub = top.subset(slice(0, 50))
    images = sub.images(npix=33, half_width=1.5, steps=("center", "rotate", "flip"))
    np.testing.assert_allclose(images.sum(axis=(1, 2)), (sub.constituents["pt"] * sub.mask).sum(1), rtol=1e-5)
    assert np.allclose(sub.images(npix=33).sum(axis=(1, 2)), 1.0, atol=1e-5)


def test_rotation_puts_the_principal_axis_vertical(top):
    from mlpp.data.images import preprocess_coordinates

    c = top.subset(slice(0, 50)).constituents
    x, y = preprocess_coordinates(c["pt"], c["eta"], c["phi"], c["mask"])
    w = np.where(c["mask"], c["pt"], 0.0)
    # flipped: the half-planes x > 0 and y > 0 carry more pT (the pT-weighted means are 0 after centring)
    assert np.all((w * (x > 0)).sum(1) >= (w * (x < 0)).sum(1))
    assert np.all((w * (y > 0)).sum(1) >= (w * (y < 0)).sum(1))
    sxx, syy, sxy = (w * x * x).sum(1), (w * y * y).sum(1), (w * x * y).sum(1)
    assert np.all(syy >= sxx - 1e-6)
    np.testing.assert_allclose(sxy / (sxx + syy), 0.0, atol=1e-6)


def test_unknown_image_step_is_rejected(top):
    with pytest.raises(ValueError, match="unknown preprocessing step"):
        top.subset(slice(0, 2)).images(steps=("centre",))
