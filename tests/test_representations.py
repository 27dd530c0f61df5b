"""Jet representations for set models: layout conversions and symmetry transformations."""
from __future__ import annotations

import numpy as np
import pytest

from mlpp import representations as reps
from mlpp.data.dataset import JetDataset
from mlpp.data.detector import CHARGED_HADRON, ELECTRON, MUON, NEUTRAL_HADRON, PHOTON


def _random_particles(n_jets=20, n_particles=30, n_features=4, seed=0, padded=True):
    """(n_jets, n_particles, n_features): pT in GeV, y and φ near 0, a fourth column of labels; zero padding."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n_jets, n_particles, n_features))
    counts = rng.integers(3, n_particles, n_jets) if padded else np.full(n_jets, n_particles)
    for j, n in enumerate(counts):
        out[j, :n, 0] = np.sort(rng.exponential(20.0, n))[::-1] + 0.5
        out[j, :n, 1:3] = rng.normal(0.0, 0.1, (n, 2))
        if n_features > 3:
            out[j, :n, 3] = rng.choice([22.0, 211.0, -211.0, 130.0], n)
    return out


def _pair_correlator(particles, beta=1.0):
    """Σ_ij z_i z_j θ_ij^β per jet: an IRC-safe observable (the one-edge EFP)."""
    zs = particles[..., 0] / particles[..., 0].sum(-1, keepdims=True)
    diff = particles[:, :, None, 1:3] - particles[:, None, :, 1:3]
    thetas = np.sqrt((diff**2).sum(-1)) ** beta
    return np.einsum("ni,nj,nij->n", zs, zs, thetas)


def _multiplicity(particles):
    return (particles[..., 0] > 0).sum(-1)


def _toy_dataset(n_jets=12, n_particles=25, seed=3):
    rng = np.random.default_rng(seed)
    counts = rng.integers(2, n_particles + 1, n_jets)
    mask = np.arange(n_particles)[None, :] < counts[:, None]
    pts = np.where(mask, rng.exponential(30.0, mask.shape) + 1.0, 0.0)
    etas = np.where(mask, rng.normal(0.5, 0.2, mask.shape), 0.0)
    phis = np.where(mask, rng.normal(3.0, 0.2, mask.shape), 0.0)
    classes = np.where(mask, rng.integers(0, 5, mask.shape), -1)
    masses = np.where(np.isin(classes, [PHOTON]), 0.0, 0.13957)
    charges = np.where(np.isin(classes, [CHARGED_HADRON, ELECTRON, MUON]), rng.choice([-1, 1], mask.shape), 0)
    es = np.where(mask, np.sqrt((pts * np.cosh(etas)) ** 2 + masses**2), 0.0)
    constituents = {"pt": pts.astype(np.float32), "eta": etas.astype(np.float32), "phi": phis.astype(np.float32),
                    "e": es.astype(np.float32), "charge": charges.astype(np.int8),
                    "pid_class": classes.astype(np.int8), "mask": mask}
    return JetDataset(name="toy", class_names=["a", "b"], labels=rng.integers(0, 2, n_jets),
                      jet=np.zeros((n_jets, 4)), features=np.zeros((n_jets, 29)), constituents=constituents)


# --- conversions -----------------------------------------------------------------------

def test_pdgids_from_classes():
    classes = np.array([CHARGED_HADRON, CHARGED_HADRON, ELECTRON, MUON, PHOTON, NEUTRAL_HADRON, -1])
    charges = np.array([1, -1, -1, 1, 0, 0, 0])
    np.testing.assert_array_equal(reps.pdgids_from_classes(classes, charges), [211, -211, 11, -13, 22, 130, 0])


def test_energyflow_knows_every_pdgid():
    data_utils = pytest.importorskip("energyflow.utils.data_utils")
    for code, pdgid in reps.PDGID_OF_CLASS.items():
        assert pdgid in data_utils.PID2FLOAT_MAP
        if code in (CHARGED_HADRON, ELECTRON, MUON):
            assert -pdgid in data_utils.PID2FLOAT_MAP


def test_ptyphipids_from_dataset_layout():
    jets = _toy_dataset()
    particles = reps.ptyphipids_from_dataset(jets)
    mask = jets.mask
    assert particles.shape == (len(jets), jets.max_constituents, 4) and particles.dtype == np.float64
    assert np.all(particles[~mask] == 0.0)
    np.testing.assert_allclose(particles[..., 0][mask], jets.constituents["pt"][mask])
    np.testing.assert_allclose(particles[..., 2][mask], jets.constituents["phi"][mask])
    photons = mask & (jets.constituents["pid_class"] == PHOTON)
    np.testing.assert_allclose(particles[..., 1][photons], jets.constituents["eta"][photons], atol=1e-5)
    assert np.all(np.isin(particles[..., 3][mask], [211, -211, 11, -11, 13, -13, 22, 130]))


def test_ptyphipids_match_energyflow_mass():
    """The converted particles give the jet mass that the constituents give."""
    ef = pytest.importorskip("energyflow")
    from mlpp.kinematics import jet_p4s, masses_from_p4s

    jets = _toy_dataset()
    particles = reps.ptyphipids_from_dataset(jets)
    c = jets.constituents
    expected = masses_from_p4s(jet_p4s(c["pt"], c["eta"], c["phi"], c["e"], c["mask"]))
    for j in range(len(jets)):
        real = particles[j, :, 0] > 0
        ms = np.where(jets.constituents["pid_class"][j, real] == PHOTON, 0.0, 0.13957)
        p4 = ef.p4s_from_ptyphims(np.column_stack([particles[j, real, :3], ms]))
        got = masses_from_p4s(p4.sum(0))
        assert got == pytest.approx(expected[j], rel=2e-3, abs=0.05)


# --- preprocessing ---------------------------------------------------------------------

def test_center_and_normalize():
    particles = _random_particles()
    before = particles.copy()
    out = reps.center_and_normalize(particles)
    np.testing.assert_array_equal(particles, before)  # input unchanged
    real = particles[..., 0] > 0
    np.testing.assert_allclose(out[..., 0].sum(-1), 1.0)
    np.testing.assert_allclose((out[..., :1] * out[..., 1:3]).sum(1), 0.0, atol=1e-12)  # weighted centroid at 0
    assert np.all(out[~real] == 0.0)
    np.testing.assert_array_equal(out[..., 3], particles[..., 3])


@pytest.mark.parametrize("shift", [(0.7, 0.0), (-1.2, 0.4)])
def test_center_and_normalize_removes_translations_and_scale(shift):
    particles = _random_particles(seed=4)
    moved = particles.copy()
    real = moved[..., 0] > 0
    moved[..., 1:3][real] += np.asarray(shift)
    moved[..., 0] *= 3.5
    np.testing.assert_allclose(reps.center_and_normalize(moved), reps.center_and_normalize(particles), atol=1e-12)


# --- symmetry transformations ----------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_permute_particles_is_a_permutation(seed):
    particles = _random_particles(seed=seed)
    permuted, order = reps.permute_particles(particles, seed)
    assert permuted.shape == particles.shape and order.shape == particles.shape[:2]
    for j in range(len(particles)):
        np.testing.assert_array_equal(np.sort(order[j]), np.arange(particles.shape[1]))
        np.testing.assert_array_equal(permuted[j], particles[j, order[j]])
    assert not np.array_equal(permuted, particles)
    # a set function does not notice; the same seed gives the same permutation
    np.testing.assert_allclose(_pair_correlator(permuted), _pair_correlator(particles), rtol=1e-12)
    np.testing.assert_array_equal(reps.permute_particles(particles, seed)[1], order)


def test_permute_particles_works_without_feature_axis():
    zs = _random_particles()[..., 0]
    permuted, order = reps.permute_particles(zs, 5)
    np.testing.assert_array_equal(permuted, np.take_along_axis(zs, order, axis=1))


@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.93])
@pytest.mark.parametrize("index", [0, 2])
def test_collinear_split_keeps_irc_safe_observables(fraction, index):
    particles = _random_particles(seed=7)
    before = particles.copy()
    split = reps.split_collinear(particles, index=index, fraction=fraction)
    np.testing.assert_array_equal(particles, before)
    assert split.shape == (particles.shape[0], particles.shape[1] + 1, particles.shape[2])
    np.testing.assert_allclose(split[..., 0].sum(-1), particles[..., 0].sum(-1), rtol=1e-12)
    np.testing.assert_allclose(split[:, index, 0], fraction * particles[:, index, 0])
    np.testing.assert_array_equal(split[:, -1, 1:], particles[:, index, 1:])  # same direction and PID
    np.testing.assert_allclose(_pair_correlator(split), _pair_correlator(particles), rtol=1e-10)
    np.testing.assert_array_equal(_multiplicity(split), _multiplicity(particles) + 1)  # IRC unsafe


def test_collinear_split_per_jet_index_and_energy_columns():
    particles = _random_particles(n_features=4, seed=8)
    particles[..., 3] = 2.0 * particles[..., 0]  # an energy column, e.g. E
    index = np.arange(len(particles)) % 3
    split = reps.split_collinear(particles, index=index, fraction=0.25, energy_columns=(0, 3))
    rows = np.arange(len(particles))
    np.testing.assert_allclose(split[rows, index, 3], 0.25 * particles[rows, index, 3])
    np.testing.assert_allclose(split[:, -1, 3], 0.75 * particles[rows, index, 3])
    with pytest.raises(ValueError):
        reps.split_collinear(particles, fraction=1.0)


def test_energyflow_efps_are_irc_safe_under_our_transformations():
    ef = pytest.importorskip("energyflow")
    particles = _random_particles(n_jets=5, seed=9)[..., :3]
    efpset = ef.EFPSet("d<=3", measure="hadr", beta=0.5, normed=True)
    reference = efpset.batch_compute([p[p[:, 0] > 0] for p in particles], n_jobs=1)
    for changed in (reps.split_collinear(particles, index=1, fraction=0.3),
                    reps.add_soft_particle(particles, energy=1e-12, direction=(0.3, -0.2)),
                    reps.permute_particles(particles, 1)[0]):
        values = efpset.batch_compute([p[p[:, 0] > 0] for p in changed], n_jobs=1)
        np.testing.assert_allclose(values, reference, rtol=1e-8, atol=1e-12)


def test_add_soft_particle():
    particles = _random_particles()
    out = reps.add_soft_particle(particles, energy=1e-6, direction=(0.2, -0.3), other_values={3: 22.0})
    assert out.shape[1] == particles.shape[1] + 1
    np.testing.assert_array_equal(out[:, :-1], particles)
    np.testing.assert_array_equal(out[:, -1], np.tile([1e-6, 0.2, -0.3, 22.0], (len(particles), 1)))
    np.testing.assert_allclose(_pair_correlator(out), _pair_correlator(particles), rtol=1e-5)
