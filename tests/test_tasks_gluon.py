"""The gluon thread (mlpp.tasks.gluon): JetNet-style particle clouds, their mass and their EFPs.

The coordinate conventions are checked on a small synthetic JetDataset; the slow tests check the
physics of the fast-tier ``gluon`` card (generated on first use, a few minutes on 2 cores).
"""
from __future__ import annotations

import numpy as np
import pytest

from mlpp.data import FEATURE_NAMES, JetDataset
from mlpp.tasks import gluon


def toy_jets(n: int = 50, width: int = 40, seed: int = 0) -> JetDataset:
    """``n`` jets near eta 1, phi 3.1 (close to the ±π seam) with 5..``width`` massless constituents."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(5, width + 1, n)
    mask = np.arange(width)[None, :] < counts[:, None]
    pt = np.sort(rng.exponential(20.0, (n, width)), axis=1)[:, ::-1] * mask
    eta = (1.0 + rng.normal(0, 0.2, (n, width))) * mask
    phi = (3.1 + rng.normal(0, 0.2, (n, width))) * mask      # within π of the axis, as stored
    e = pt * np.cosh(eta)
    px, py, pz = (pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1), (pt * np.sinh(eta)).sum(1)
    jpt = np.hypot(px, py)
    jet = np.stack([jpt, np.arcsinh(pz / jpt), np.arctan2(py, px), np.zeros(n)], axis=1)
    constituents = {"pt": pt, "eta": eta, "phi": phi, "e": e, "charge": np.zeros((n, width), np.int8),
                    "pid_class": np.where(mask, 0, -1).astype(np.int8), "mask": mask}
    return JetDataset(name="gluon", class_names=["g"], labels=np.zeros(n, np.int8), jet=jet,
                      features=np.zeros((n, len(FEATURE_NAMES)), np.float32), constituents=constituents,
                      meta={"card": "gluon", "tier": "fast", "R": 0.8})


def test_particles_are_relative_zero_padded_and_leading():
    jets = toy_jets()
    x = gluon.particles(jets)
    assert x.shape == (len(jets), 30, 3) and x.dtype == np.float32
    m = gluon.mask(jets)
    assert m.shape == (len(jets), 30) and np.array_equal(m, jets.mask[:, :30])
    assert np.array_equal(gluon.mask(x), m)                    # the mask follows from pt_rel > 0
    assert np.all(x[~m] == 0)
    c = jets.constituents
    np.testing.assert_allclose(x[..., 2][m], (c["pt"][:, :30] / jets.jet[:, :1])[m], rtol=1e-6)
    np.testing.assert_allclose(x[..., 0][m], (c["eta"][:, :30] - jets.jet[:, 1:2])[m], atol=1e-6)
    # phi_rel is small although the jets straddle the ±π seam
    assert np.abs(x[..., 1][m]).max() < 1.5
    # all constituents' pT_rel add up to at least 1 (vector sum ≤ scalar sum); 30 of them to less
    full = gluon.particles(jets, n_particles=40)
    assert np.all(full[..., 2].sum(1) >= 1 - 1e-5)
    assert np.all(x[..., 2].sum(1) <= full[..., 2].sum(1) + 1e-6)


def test_jet_mass_is_the_mass_of_the_leading_particles_over_jet_pt():
    jets = toy_jets()
    x = gluon.particles(jets)
    c = jets.constituents
    keep = jets.mask[:, :30]
    pt, eta, phi = (np.where(keep, c[k][:, :30], 0.0) for k in ("pt", "eta", "phi"))
    e, px = (pt * np.cosh(eta)).sum(1), (pt * np.cos(phi)).sum(1)
    py, pz = (pt * np.sin(phi)).sum(1), (pt * np.sinh(eta)).sum(1)
    mass = np.sqrt(e**2 - px**2 - py**2 - pz**2)
    np.testing.assert_allclose(gluon.jet_mass(x), mass / jets.jet[:, 0], rtol=1e-4)
    # padding and negative pt_rel (a generator's) do not add mass
    y = x.copy()
    y[~keep] = (0.3, 0.3, -0.1)
    np.testing.assert_allclose(gluon.jet_mass(y), gluon.jet_mass(x), rtol=1e-12)
    assert np.array_equal(gluon.multiplicity(x), keep.sum(1))


def test_efps_are_jetnets_36_and_ignore_padding():
    x = gluon.particles(toy_jets(n=6))
    f = gluon.efps(x)
    assert f.shape == (6, 36) and np.isfinite(f).all()
    # the EFP of the single node (d = 0) is the sum of the pT weights
    np.testing.assert_allclose(f[:, 0], x[..., 2].sum(1), rtol=1e-5)
    # order of the particles and extra zero particles do not matter
    shuffled = np.concatenate([x[:, ::-1], np.zeros((6, 5, 3), np.float32)], axis=1)
    np.testing.assert_allclose(gluon.efps(shuffled), f, rtol=1e-6, atol=1e-12)


def test_batched_efps_equal_energyflows_jet_by_jet():
    """The batched sums give what jetnet.utils.efps (energyflow's EFPSet) gives, phi seam included."""
    import energyflow

    x = gluon.particles(toy_jets(n=8, seed=3)).astype(np.float64)
    x[:2, :, 1] += 3.0                      # particles on both sides of phi = ±π in the same jet
    reference = energyflow.EFPSet(*gluon.EFP_ARGS, **gluon.EFP_OPTIONS).batch_compute(
        x[..., [2, 0, 1]], n_jobs=1)        # energyflow reads (pT, y, phi)
    np.testing.assert_allclose(gluon.efps(x, batch_size=3), reference, rtol=1e-10, atol=1e-14)


def test_split_is_fixed_disjoint_and_60_40():
    jets = toy_jets(n=1003)
    train, test = gluon.split(jets)
    again_train, again_test = gluon.split(jets)
    assert (len(train), len(test)) == (602, 401)
    assert np.array_equal(train.jet, again_train.jet) and np.array_equal(test.jet, again_test.jet)
    assert not {tuple(j) for j in train.jet} & {tuple(j) for j in test.jet}
    other = toy_jets(n=10)
    other.name = "top"
    with pytest.raises(ValueError, match="needs the 'gluon' dataset"):
        gluon.split(other)


@pytest.fixture(scope="module")
def gluon_fast():
    return gluon.load("fast")


@pytest.mark.slow
def test_card_gives_one_tev_gluon_jets(gluon_fast):
    jets = gluon_fast
    assert jets.class_names == ["g"] and len(jets) == 20000
    pt, mass = jets.jet[:, 0], jets.jet[:, 3]
    assert np.all((pt >= 800) & (pt < 1600)) and 950 < np.median(pt) < 1050
    # the mass of 1 TeV gluon jets peaks well below its mean (Sudakov peak, long tail)
    assert 150 < mass.mean() < 195, mass.mean()
    assert np.median(mass) < mass.mean()
    n = jets.mask.sum(1)
    assert 60 < n.mean() < 120, n.mean()
    assert np.mean(n >= 30) > 0.95                 # nearly every jet fills the 30 JetNet particles


@pytest.mark.slow
def test_relative_clouds_of_the_fast_card(gluon_fast):
    train, test = gluon.split(gluon_fast)
    assert (len(train), len(test)) == (12000, 8000)
    x = gluon.particles(test)
    m = gluon.mask(test)
    assert x.shape == (8000, 30, 3) and np.array_equal(gluon.mask(x), m)
    assert np.all(x[~m] == 0) and np.all(x[..., 2][m] > 0)
    # pT ordered; inside the jet; the 30 leading particles carry most but not all of the pT
    assert np.all(np.diff(x[..., 2], axis=1)[m[:, 1:]] <= 0)
    # (anti-kT jets are not exact cones: a constituent can lie a little beyond R of the axis)
    assert np.hypot(x[..., 0], x[..., 1])[m].max() < 1.2
    total = x[..., 2].sum(1)
    assert 0.85 < total.mean() < 0.97 and np.all(total < 1.1)
    # the 30 leading particles carry less mass than the whole jet (soft wide-angle particles
    # and the underlying event add mass), but most of it, and never more
    rel = gluon.jet_mass(x)
    full = test.jet[:, 3] / test.jet[:, 0]
    assert 0.6 * full.mean() < rel.mean() < 0.85 * full.mean()
    assert np.mean(rel <= full * 1.001) > 0.99
