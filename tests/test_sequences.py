"""Particle sequences: padding, masks, orderings and features relative to the jet axis."""
from __future__ import annotations

import numpy as np
import pytest

from mlpp import sequences as seq
from mlpp.data.dataset import JetDataset
from mlpp.kinematics import jet_p4s, ptetaphim_from_p4s


def _jets(n_jets: int = 40, n_slots: int = 25, seed: int = 0, holes: bool = False):
    """Random jets around random axes (φ anywhere, also across ±π), in random order, with padding.

    Returns float64 (n_jets, n_slots) arrays pts, etas, phis, es and the mask. With ``holes`` the
    padding is scattered through each jet instead of sitting at the end; padded slots hold garbage.
    """
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, n_slots + 1, n_jets)
    counts[0] = n_slots  # one full jet
    mask = seq.mask_from_counts(counts, n_slots)
    if holes:
        mask = np.stack([rng.permutation(m) for m in mask])
    pts = rng.exponential(20.0, (n_jets, n_slots)) + 0.5
    etas = rng.uniform(-2, 2, (n_jets, 1)) + rng.normal(0, 0.3, (n_jets, n_slots))
    phis = rng.uniform(-np.pi, np.pi, (n_jets, 1)) + rng.normal(0, 0.3, (n_jets, n_slots))
    phis = (phis + np.pi) % (2 * np.pi) - np.pi
    masses = rng.uniform(0, 0.5, (n_jets, n_slots))
    es = np.sqrt((pts * np.cosh(etas)) ** 2 + masses**2)
    garbage = rng.normal(0, 100, (4, n_jets, n_slots))
    pts, etas, phis, es = (np.where(mask, a, g) for a, g in zip((pts, etas, phis, es), garbage))
    return pts, etas, phis, es, mask


# --- masks, padding, truncation ---------------------------------------------------------------

def test_mask_from_counts():
    mask = seq.mask_from_counts(np.array([0, 2, 5, 9]), 5)
    assert mask.shape == (4, 5) and mask.dtype == bool
    np.testing.assert_array_equal(mask.sum(1), [0, 2, 5, 5])
    assert np.all(np.diff(mask.astype(int), axis=1) <= 0)  # real particles first
    with pytest.raises(ValueError):
        seq.mask_from_counts(np.array([-1]), 3)


@pytest.mark.parametrize("n_particles", [0, 3, 25, 40])
@pytest.mark.parametrize("pad_value", [0.0, -9.0])
def test_fix_length_pads_and_truncates(n_particles, pad_value):
    pts, etas, phis, es, mask = _jets()
    x = np.stack([pts, etas], axis=-1)
    before = (x.copy(), mask.copy())
    out, out_mask = seq.fix_length(x, mask, n_particles, pad_value=pad_value)
    assert out.shape == (len(x), n_particles, 2) and out_mask.shape == (len(x), n_particles)
    np.testing.assert_array_equal(out_mask.sum(1), np.minimum(mask.sum(1), n_particles))
    assert np.all(out[~out_mask] == pad_value)
    keep = min(n_particles, x.shape[1])
    np.testing.assert_array_equal(out[:, :keep][out_mask[:, :keep]], x[:, :keep][mask[:, :keep]])
    np.testing.assert_array_equal(before[0], x)  # inputs untouched
    np.testing.assert_array_equal(before[1], mask)


def test_fix_length_twice_is_the_same_as_once():
    pts, _, _, _, mask = _jets()
    once = seq.fix_length(pts, mask, 40)
    twice = seq.fix_length(*seq.fix_length(pts, mask, 60), 40)
    np.testing.assert_array_equal(once[0], twice[0])
    np.testing.assert_array_equal(once[1], twice[1])


def test_pad_sequences_round_trip():
    rng = np.random.default_rng(3)
    jets = [rng.normal(size=(n, 3)) for n in (4, 0, 7, 1)]
    values, mask = seq.pad_sequences(jets)
    assert values.shape == (4, 7, 3) and mask.shape == (4, 7)
    for jet, row, m in zip(jets, values, mask):
        np.testing.assert_array_equal(row[m], jet)
        assert np.all(row[~m] == 0)
    short, short_mask = seq.pad_sequences(jets, n_particles=2, pad_value=-1.0)
    assert short.shape == (4, 2, 3) and np.all(short[~short_mask] == -1.0)
    np.testing.assert_array_equal(short[2], jets[2][:2])


# --- orderings --------------------------------------------------------------------------------

@pytest.mark.parametrize("holes", [False, True])
@pytest.mark.parametrize("descending", [True, False])
def test_sorting_puts_real_particles_first_in_order(holes, descending):
    pts, etas, _, _, mask = _jets(holes=holes, seed=4)
    x = np.stack([pts, etas], axis=-1)
    out, out_mask = seq.sort_particles(x, mask, pts, descending=descending)
    np.testing.assert_array_equal(out_mask, seq.mask_from_counts(mask.sum(1), mask.shape[1]))
    for i in range(len(x)):
        real = out[i][out_mask[i]]
        steps = np.diff(real[:, 0])
        assert np.all(steps <= 0) if descending else np.all(steps >= 0)
        # the same particles (rows stay together), only reordered
        np.testing.assert_array_equal(np.sort(real[:, 1]), np.sort(x[i][mask[i]][:, 1]))
    assert np.all(out[~out_mask] == 0)


def test_sorting_is_stable_for_ties():
    keys = np.array([[1.0, 2.0, 1.0, 2.0, 0.0]])
    mask = np.array([[True, True, True, True, False]])
    np.testing.assert_array_equal(seq.ordering(keys, mask), [[1, 3, 0, 2, 4]])


def test_sorting_a_sorted_dataset_changes_nothing(top):
    c = top.constituents
    out, out_mask = seq.sort_particles(c["pt"][:200], c["mask"][:200], c["pt"][:200])
    np.testing.assert_array_equal(out, c["pt"][:200])
    np.testing.assert_array_equal(out_mask, c["mask"][:200])


def test_shuffle_keeps_the_particles_and_is_seeded():
    pts, etas, _, _, mask = _jets(seed=5)
    x, mask = seq.sort_particles(np.stack([pts, etas], -1), mask, pts)
    a, a_mask = seq.shuffle_particles(x, mask, seed=7)
    b, _ = seq.shuffle_particles(x, mask, seed=7)
    c, _ = seq.shuffle_particles(x, mask, seed=8)
    np.testing.assert_array_equal(a_mask, mask)  # padding stays at the end
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, x)
    # sorting the shuffled particles by pT again recovers the original sequence
    back, _ = seq.sort_particles(a, a_mask, a[..., 0])
    np.testing.assert_array_equal(back, x)


# --- features relative to the jet axis ----------------------------------------------------------

def test_jet_axes_match_the_four_vector_sum():
    pts, etas, phis, es, mask = _jets(seed=6)
    expected = ptetaphim_from_p4s(jet_p4s(pts, etas, phis, es, mask=mask))
    axes = seq.jet_axes(pts, etas, phis, es, mask)
    np.testing.assert_allclose(axes[:, :3], expected[:, :3], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(seq.jet_axes_from_ptetaphims(expected)[:, 3], axes[:, 3], rtol=1e-10)


def test_feature_definitions():
    pts, etas, phis, es, mask = _jets(seed=7)
    f = seq.particle_features(pts, etas, phis, es, mask)
    assert f.shape == mask.shape + (len(seq.PARTICLE_FEATURE_NAMES),) and f.dtype == np.float32
    assert np.all(f[~mask] == 0)
    col = {name: f[..., k] for k, name in enumerate(seq.PARTICLE_FEATURE_NAMES)}
    axes = seq.jet_axes(pts, etas, phis, es, mask)
    np.testing.assert_allclose(col["log_pt"][mask], np.log(pts[mask]), rtol=1e-6)
    np.testing.assert_allclose(col["log_pt_rel"], np.log(np.where(mask, pts / axes[:, :1], 1)), atol=1e-5)
    np.testing.assert_allclose(col["log_e_rel"] - col["log_e"], np.where(mask, -np.log(axes[:, 3:]), 0), atol=1e-5)
    np.testing.assert_allclose(col["dr"], np.hypot(col["deta"], col["dphi"]), atol=1e-6)
    assert np.all(np.abs(col["dphi"]) <= np.pi)
    # the constituents of a jet sit near its axis, whatever the axis's φ
    assert np.median(col["dr"][mask]) < 0.5
    names = ("dr", "log_pt")
    np.testing.assert_array_equal(seq.particle_features(pts, etas, phis, es, mask, names=names),
                                  f[..., [seq.PARTICLE_FEATURE_NAMES.index(n) for n in names]])
    with pytest.raises(ValueError):
        seq.particle_features(pts, etas, phis, es, mask, names=("mass",))


@pytest.mark.parametrize("angle", [0.3, np.pi / 2, np.pi, -2.5, 6.0])
def test_features_are_invariant_under_rotations_in_phi(angle):
    pts, etas, phis, es, mask = _jets(seed=8)
    rotated = (phis + angle + np.pi) % (2 * np.pi) - np.pi
    np.testing.assert_allclose(seq.particle_features(pts, etas, rotated, es, mask),
                               seq.particle_features(pts, etas, phis, es, mask), atol=2e-5)


@pytest.mark.parametrize("rapidity", [-1.0, 0.4, 2.0])
def test_angular_features_are_invariant_under_boosts_along_the_beam(rapidity):
    """A boost along z shifts the η of a massless particle by the rapidity and leaves its pT alone.

    The η of the (massive) jet does not shift by exactly the same amount (its rapidity does), so
    the axis is given explicitly here and shifted with the particles.
    """
    pts, etas, phis, _, mask = _jets(seed=9)
    axes = seq.jet_axes(pts, etas, phis, pts * np.cosh(etas), mask)
    boosted_axes = axes + np.array([0.0, rapidity, 0.0, 0.0])
    boosted_etas = etas + rapidity
    names = ("deta", "dphi", "log_pt", "log_pt_rel", "dr")
    np.testing.assert_allclose(
        seq.particle_features(pts, boosted_etas, phis, pts * np.cosh(boosted_etas), mask, jets=boosted_axes,
                              names=names),
        seq.particle_features(pts, etas, phis, pts * np.cosh(etas), mask, jets=axes, names=names), atol=2e-5)


@pytest.mark.parametrize("factor", [0.1, 3.0])
def test_relative_features_are_invariant_under_rescaling(factor):
    pts, etas, phis, es, mask = _jets(seed=10)
    f = seq.particle_features(pts, etas, phis, es, mask)
    g = seq.particle_features(factor * pts, etas, phis, factor * es, mask)
    k = {name: i for i, name in enumerate(seq.PARTICLE_FEATURE_NAMES)}
    same = [k[n] for n in ("deta", "dphi", "log_pt_rel", "log_e_rel", "dr")]
    np.testing.assert_allclose(g[..., same], f[..., same], atol=2e-5)
    np.testing.assert_allclose(g[..., k["log_pt"]], np.where(mask, f[..., k["log_pt"]] + np.log(factor), 0), atol=2e-5)


def test_features_are_permutation_equivariant_and_ignore_padding():
    pts, etas, phis, es, mask = _jets(seed=11, holes=True)
    f = seq.particle_features(pts, etas, phis, es, mask)
    rng = np.random.default_rng(0)
    perm = np.stack([rng.permutation(mask.shape[1]) for _ in mask])
    arrays = [np.take_along_axis(a, perm, 1) for a in (pts, etas, phis, es, mask)]
    np.testing.assert_allclose(seq.particle_features(*arrays), np.take_along_axis(f, perm[..., None], 1), atol=1e-6)
    # more padding, filled with other garbage, changes nothing
    padded = [np.concatenate([a, np.full((len(a), 6), 1e3)], axis=1) for a in (pts, etas, phis, es)]
    more = seq.particle_features(*padded, np.concatenate([mask, np.zeros((len(mask), 6), bool)], axis=1))
    np.testing.assert_allclose(more[:, : mask.shape[1]], f, atol=1e-6)
    assert np.all(more[:, mask.shape[1]:] == 0)


# --- whole datasets ---------------------------------------------------------------------------

def _dataset(seed: int = 12, holes: bool = True) -> JetDataset:
    pts, etas, phis, es, mask = _jets(n_jets=30, n_slots=20, seed=seed, holes=holes)
    axes = seq.jet_axes(pts, etas, phis, es, mask)
    p4 = jet_p4s(pts, etas, phis, es, mask=mask)
    jet = np.stack([axes[:, 0], axes[:, 1], axes[:, 2], ptetaphim_from_p4s(p4)[:, 3]], axis=1)
    zeros = np.zeros_like(pts)
    return JetDataset(name="toy", class_names=["a", "b"], labels=np.arange(30) % 2, jet=jet,
                      features=np.zeros((30, 0)), feature_names=[],
                      constituents={"pt": pts, "eta": etas, "phi": phis, "e": es, "charge": zeros,
                                    "pid_class": zeros - 1, "mask": mask})


@pytest.mark.parametrize("n_particles", [5, 20, 32])
def test_sequences_from_dataset_orders(n_particles):
    data = _dataset()
    c = data.constituents
    x, mask = seq.sequences_from_dataset(data, n_particles)
    assert x.shape == (30, n_particles, 7) and mask.shape == (30, n_particles)
    np.testing.assert_array_equal(mask.sum(1), np.minimum(c["mask"].sum(1), n_particles))
    log_pt = x[..., seq.PARTICLE_FEATURE_NAMES.index("log_pt")]
    for row, m, pts, full in zip(log_pt, mask, c["pt"], c["mask"]):
        hardest = np.sort(pts[full])[::-1][: m.sum()]
        np.testing.assert_allclose(np.exp(row[m]), hardest, rtol=1e-5)  # the hardest, in decreasing pT
    shuffled, s_mask = seq.sequences_from_dataset(data, n_particles, order="random", seed=1)
    by_dr, d_mask = seq.sequences_from_dataset(data, n_particles, order="dr")
    for other, other_mask in ((shuffled, s_mask), (by_dr, d_mask)):
        np.testing.assert_array_equal(other_mask, mask)
        # the same particles, in another order
        np.testing.assert_allclose(np.sort(other[..., 2], axis=1), np.sort(x[..., 2], axis=1))
    dr = by_dr[..., seq.PARTICLE_FEATURE_NAMES.index("dr")]
    assert all(np.all(np.diff(row[m]) >= 0) for row, m in zip(dr, d_mask))
    with pytest.raises(ValueError):
        seq.sequences_from_dataset(data, 5, order="kt")


def test_sequences_from_dataset_agree_with_the_stored_layout(top):
    small = top.subset(slice(0, 300))
    x, mask = seq.sequences_from_dataset(small, 40)
    c = small.constituents
    np.testing.assert_array_equal(mask, c["mask"][:, :40])
    np.testing.assert_allclose(x[..., 2][mask], np.log(c["pt"][:, :40][mask]), rtol=1e-6)


def test_scaling_uses_real_particles_and_keeps_padding_at_zero():
    data = _dataset(seed=13, holes=False)
    x, mask = seq.sequences_from_dataset(data, 25)  # some jets padded
    scaler = seq.fit_scaler(x, mask)
    scaled = seq.scale_particles(x, mask, scaler)
    assert scaled.dtype == np.float32 and np.all(scaled[~mask] == 0)
    np.testing.assert_allclose(scaled[mask].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled[mask].std(0), 1, atol=1e-4)
