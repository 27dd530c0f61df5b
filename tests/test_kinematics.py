"""Tests of mlpp.lorentz: Lorentz transformations keep inner products; the pairwise features."""
from __future__ import annotations

import numpy as np
import pytest

from mlpp import lorentz, physics


def random_jets(n_jets=5, n_particles=12, seed=0, n_padded=3):
    """(n, P, 4) massless-ish four-vectors around a random jet axis, the last n_padded slots padding."""
    rng = np.random.default_rng(seed)
    pts = rng.exponential(30.0, (n_jets, n_particles)) + 1.0
    etas = rng.normal(0, 1, (n_jets, 1)) + rng.normal(0, 0.2, (n_jets, n_particles))
    phis = rng.uniform(-np.pi, np.pi, (n_jets, 1)) + rng.normal(0, 0.2, (n_jets, n_particles))
    masses = rng.choice([0.0, 0.1396, 0.4937], (n_jets, n_particles))
    es = np.sqrt((pts * np.cosh(etas)) ** 2 + masses**2)
    mask = np.ones((n_jets, n_particles), dtype=bool)
    mask[:, n_particles - n_padded:] = False
    return lorentz.p4s_from_constituents(pts, etas, phis, es, mask), mask


AXES = [(0, 0, 1), (1, 0, 0), (0.3, -0.5, 0.8)]


def test_p4s_from_constituents_zero_padding_and_masses():
    p4s, mask = random_jets()
    assert p4s.shape == (5, 12, 4)
    assert np.all(p4s[~mask] == 0)
    m2 = lorentz.masses2_from_p4s(p4s[mask])
    assert np.all(m2 > -1e-6) and np.all(m2 < 0.25)


def test_ptetaphie_round_trip():
    p4s, mask = random_jets()
    back = lorentz.ptetaphie_from_p4s(p4s)
    again = physics.p4s_from_ptetaphie(back[..., 0], back[..., 1], back[..., 2], back[..., 3])
    np.testing.assert_allclose(again[mask], p4s[mask], rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("rapidity", [-1.3, 0.2, 2.0])
def test_boost_keeps_inner_products(axis, rapidity):
    p4s, mask = random_jets()
    boosted = lorentz.boost(p4s, axis, rapidity)
    assert not np.allclose(boosted, p4s)
    gram, gram_b = lorentz.minkowski_gram(p4s, mask), lorentz.minkowski_gram(boosted, mask)
    np.testing.assert_allclose(gram_b, gram, rtol=1e-9, atol=1e-6)
    assert np.all(boosted[~mask] == 0)
    # the inverse boost undoes it
    np.testing.assert_allclose(lorentz.boost(boosted, axis, -rapidity), p4s, atol=1e-8)


@pytest.mark.parametrize("axis", AXES)
def test_rotation_keeps_energies_and_inner_products(axis):
    p4s, mask = random_jets(seed=1)
    rotated = lorentz.rotate(p4s, axis, 0.7)
    np.testing.assert_allclose(rotated[..., 0], p4s[..., 0])
    np.testing.assert_allclose(lorentz.minkowski_gram(rotated), lorentz.minkowski_gram(p4s), rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(rotated[..., 1:], axis=-1), np.linalg.norm(p4s[..., 1:], axis=-1))


def test_matrices_preserve_the_metric():
    g = np.diag(lorentz.METRIC)
    for lam in (lorentz.boost_matrix((0.2, 0.4, -1), 1.1), lorentz.rotation_matrix((1, 2, 3), -2.0)):
        np.testing.assert_allclose(lam.T @ g @ lam, g, atol=1e-12)


def test_boost_along_z_matches_physics_and_shifts_rapidity():
    p4s, mask = random_jets(seed=2)
    boosted = lorentz.boost(p4s, (0, 0, 1), 0.8)
    np.testing.assert_allclose(boosted, physics.boost_z(p4s, 0.8), atol=1e-9)
    dy = lorentz.rapidities_from_p4s(boosted)[mask] - lorentz.rapidities_from_p4s(p4s)[mask]
    np.testing.assert_allclose(dy, 0.8, atol=1e-9)


def test_per_jet_axes_and_jet_directions():
    p4s, mask = random_jets(n_jets=4, seed=3)
    axes = lorentz.jet_directions(p4s)
    np.testing.assert_allclose(np.linalg.norm(axes, axis=-1), 1.0)
    rapidities = np.array([0.1, 0.5, -0.3, 1.0])
    boosted = lorentz.boost(p4s, axes, rapidities)
    for i in range(4):
        np.testing.assert_allclose(boosted[i], lorentz.boost(p4s[i:i + 1], axes[i], rapidities[i])[0], atol=1e-9)
    # boosting a jet along its own direction keeps its direction
    np.testing.assert_allclose(lorentz.jet_directions(boosted), axes, atol=1e-9)


def test_minkowski_gram_and_dot_agree():
    p4s, mask = random_jets(seed=4)
    gram = lorentz.minkowski_gram(p4s, mask)
    np.testing.assert_allclose(gram[:, 2, 5], lorentz.minkowski_dot(p4s[:, 2], p4s[:, 5]))
    np.testing.assert_allclose(gram, np.swapaxes(gram, -1, -2))
    assert np.all(gram[:, -1, :] == 0) and np.all(gram[:, :, -1] == 0)


def test_pair_features_values():
    # two massless particles with pT 100 and 50 GeV at y = 0, 0.3 apart in phi
    pts, ys, phis = np.array([[100.0, 50.0]]), np.zeros((1, 2)), np.array([[0.0, 0.3]])
    p4s = lorentz.p4s_from_constituents(pts, ys, phis, pts * np.cosh(ys), np.ones((1, 2), bool))
    feats = lorentz.pair_features(p4s, np.ones((1, 2), bool))
    assert feats.shape == (1, 2, 2, 4) and feats.dtype == np.float32
    ln_delta, ln_kt, ln_z, ln_m2 = feats[0, 0, 1]
    np.testing.assert_allclose(ln_delta, np.log(0.3), rtol=1e-5)
    np.testing.assert_allclose(ln_kt, np.log(50 * 0.3), rtol=1e-5)
    np.testing.assert_allclose(ln_z, np.log(50 / 150), rtol=1e-5)
    np.testing.assert_allclose(ln_m2, np.log(2 * 100 * 50 * (1 - np.cos(0.3))), rtol=1e-5)
    np.testing.assert_allclose(feats[0, 1, 0], feats[0, 0, 1])


@pytest.mark.parametrize("transformation", ["boost_z", "rotate_z"])
def test_pair_features_invariant_under_longitudinal_boosts_and_azimuthal_rotations(transformation):
    p4s, mask = random_jets(seed=5)
    if transformation == "boost_z":
        moved = lorentz.boost(p4s, (0, 0, 1), 1.5)
    else:
        moved = lorentz.rotate(p4s, (0, 0, 1), 2.5)
    np.testing.assert_allclose(lorentz.pair_features(moved, mask), lorentz.pair_features(p4s, mask), atol=2e-4)


def test_pair_features_only_mass_invariant_under_transverse_boost():
    p4s, mask = random_jets(seed=6)
    moved = lorentz.boost(p4s, (1, 0, 0), 1.0)
    before, after = lorentz.pair_features(p4s, mask), lorentz.pair_features(moved, mask)
    off_diagonal = mask[:, :, None] & mask[:, None, :] & ~np.eye(mask.shape[1], dtype=bool)
    np.testing.assert_allclose(after[..., 3][off_diagonal], before[..., 3][off_diagonal], atol=2e-4)
    for k in range(3):
        assert np.max(np.abs(after[..., k] - before[..., k])) > 0.1


def test_pair_features_padding_permutation_and_chunks():
    p4s, mask = random_jets(n_jets=7, seed=7)
    feats = lorentz.pair_features(p4s, mask)
    assert np.all(feats[:, -1] == 0) and np.all(feats[:, :, -1] == 0)
    junk = p4s.copy()
    junk[~mask] = 123.0  # whatever sits in the padded slots
    np.testing.assert_array_equal(lorentz.pair_features(junk, mask), feats)
    perm = np.random.default_rng(0).permutation(p4s.shape[1])
    np.testing.assert_allclose(lorentz.pair_features(p4s[:, perm], mask[:, perm]), feats[:, perm][:, :, perm])
    many = np.concatenate([p4s] * 300)  # > one chunk
    np.testing.assert_array_equal(lorentz.pair_features(many, np.concatenate([mask] * 300))[-7:], feats)


def test_inputs_are_not_changed():
    p4s, mask = random_jets(seed=8)
    copy = p4s.copy()
    lorentz.boost(p4s, (0, 1, 0), 0.5)
    lorentz.rotate(p4s, (0, 1, 0), 0.5)
    lorentz.pair_features(p4s, mask)
    lorentz.minkowski_gram(p4s, mask)
    np.testing.assert_array_equal(p4s, copy)


def test_zero_axis_raises():
    with pytest.raises(ValueError):
        lorentz.boost_matrix((0, 0, 0), 1.0)


def test_p4s_from_dataset_truncates_and_pads():
    from types import SimpleNamespace

    rng = np.random.default_rng(9)
    pts = np.sort(rng.exponential(20.0, (3, 6)), axis=1)[:, ::-1] + 1.0
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=bool)
    pts = np.where(mask, pts, 0.0)
    etas, phis = rng.normal(0, 0.3, (3, 6)), rng.normal(0, 0.3, (3, 6))
    es = pts * np.cosh(etas)
    dataset = SimpleNamespace(constituents={"pt": pts, "eta": etas, "phi": phis, "e": es, "mask": mask})
    p4s, kept = lorentz.p4s_from_dataset(dataset, 4)
    assert p4s.shape == (3, 4, 4) and kept.shape == (3, 4)
    np.testing.assert_array_equal(kept, mask[:, :4])
    np.testing.assert_allclose(lorentz.ptetaphie_from_p4s(p4s)[..., 0][kept], pts[:, :4][mask[:, :4]])
    assert np.all(p4s[~kept] == 0)
    p4s_long, kept_long = lorentz.p4s_from_dataset(dataset, 8)  # more slots than stored: padded
    assert p4s_long.shape == (3, 8, 4) and not kept_long[:, 6:].any()
