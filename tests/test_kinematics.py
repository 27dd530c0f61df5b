"""Tests of mlpp.kinematics: η and rapidity, Lorentz transformations keep inner products; the pairwise features."""
from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import numpy as np
import pytest

from mlpp import kinematics


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
    return kinematics.p4s_from_constituents(pts, etas, phis, es, mask), mask


AXES = [(0, 0, 1), (1, 0, 0), (0.3, -0.5, 0.8)]


def test_p4s_from_constituents_zero_padding_and_masses():
    p4s, mask = random_jets()
    assert p4s.shape == (5, 12, 4)
    assert np.all(p4s[~mask] == 0)
    m2 = kinematics.masses2_from_p4s(p4s[mask])
    assert np.all(m2 > -1e-6) and np.all(m2 < 0.25)


# --- η and rapidity ---------------------------------------------------------------------

def test_massless_rapidity_is_pseudorapidity():
    etas = np.linspace(-2.5, 2.5, 11)
    pts = np.full_like(etas, 50.0)
    np.testing.assert_allclose(kinematics.rapidities_from_ptetaes(pts, etas, pts * np.cosh(etas)), etas, atol=1e-12)


@pytest.mark.parametrize("mass", [0.13957, 1.0, 10.0])
def test_rapidity_of_a_massive_particle(mass):
    pts, etas = np.array([1.0, 20.0, 300.0]), np.array([-1.5, 0.3, 2.0])
    pzs = pts * np.sinh(etas)
    es = np.sqrt(pts**2 + pzs**2 + mass**2)
    expected = 0.5 * np.log((es + pzs) / (es - pzs))
    got = kinematics.rapidities_from_ptetaes(pts, etas, es)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert np.all(np.abs(got) <= np.abs(etas) + 1e-12)  # |y| <= |η| for a massive particle
    p4s = np.stack([es, pts * np.cos(0.4), pts * np.sin(0.4), pzs], axis=-1)
    np.testing.assert_allclose(kinematics.rapidities_from_p4s(p4s), expected, rtol=1e-10, atol=1e-12)


def test_padding_gets_zero_rapidity_and_pseudorapidity():
    mask = np.array([True, False])
    assert kinematics.rapidities_from_ptetaes([10.0, 0.0], [1.0, 0.0], [15.4, 0.0], mask)[1] == 0.0
    assert kinematics.rapidities_from_p4s(np.zeros((2, 4))).tolist() == [0.0, 0.0]
    assert kinematics.pseudorapidities([0.0, 3.0], [5.0, 0.0]).tolist() == [0.0, 0.0]


def test_rounding_below_the_light_cone_gives_eta():
    """float32 storage can leave E a little below |p|: the particle is then taken as massless."""
    pts, etas = np.array([50.0]), np.array([1.2])
    es = pts * np.cosh(etas) * (1 - 1e-7)
    np.testing.assert_allclose(kinematics.rapidities_from_ptetaes(pts, etas, es), etas, atol=1e-12)


def test_ptetaphi_from_momenta():
    pts, etas, phis = kinematics.ptetaphi_from_momenta(np.array([3.0, 0.0]), np.array([4.0, -2.0]),
                                                       np.array([5.0 * np.sinh(0.7), 1.0]))
    np.testing.assert_allclose(pts, [5.0, 2.0])
    np.testing.assert_allclose(etas, [0.7, np.arcsinh(0.5)])
    np.testing.assert_allclose(phis, [np.arctan2(4.0, 3.0), -np.pi / 2])


def test_delta_phi_wraps_and_delta_r():
    np.testing.assert_allclose(kinematics.delta_phi(3.0, -3.0), 6.0 - 2 * np.pi)
    np.testing.assert_allclose(kinematics.delta_r(0.3, 3.1, 0.0, -3.1), np.hypot(0.3, 6.2 - 2 * np.pi))


# --- four-vectors ------------------------------------------------------------------------

def test_ptetaphie_round_trip():
    p4s, mask = random_jets()
    back = kinematics.ptetaphie_from_p4s(p4s)
    again = kinematics.p4s_from_ptetaphie(back[..., 0], back[..., 1], back[..., 2], back[..., 3])
    np.testing.assert_allclose(again[mask], p4s[mask], rtol=1e-10, atol=1e-9)
    masses = kinematics.ptetaphim_from_p4s(p4s)[..., 3]
    np.testing.assert_allclose(masses**2, np.maximum(kinematics.masses2_from_p4s(p4s), 0), atol=1e-6)


@pytest.mark.parametrize("axis", AXES)
@pytest.mark.parametrize("rapidity", [-1.3, 0.2, 2.0])
def test_boost_keeps_inner_products(axis, rapidity):
    p4s, mask = random_jets()
    boosted = kinematics.boost(p4s, axis, rapidity)
    assert not np.allclose(boosted, p4s)
    gram, gram_b = kinematics.minkowski_gram(p4s, mask), kinematics.minkowski_gram(boosted, mask)
    np.testing.assert_allclose(gram_b, gram, rtol=1e-9, atol=1e-6)
    assert np.all(boosted[~mask] == 0)
    # the inverse boost undoes it
    np.testing.assert_allclose(kinematics.boost(boosted, axis, -rapidity), p4s, atol=1e-8)


@pytest.mark.parametrize("axis", AXES)
def test_rotation_keeps_energies_and_inner_products(axis):
    p4s, mask = random_jets(seed=1)
    rotated = kinematics.rotate(p4s, axis, 0.7)
    np.testing.assert_allclose(rotated[..., 0], p4s[..., 0])
    np.testing.assert_allclose(kinematics.minkowski_gram(rotated), kinematics.minkowski_gram(p4s), rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(rotated[..., 1:], axis=-1), np.linalg.norm(p4s[..., 1:], axis=-1))


def test_matrices_preserve_the_metric():
    g = np.diag(kinematics.METRIC)
    for lam in (kinematics.boost_matrix((0.2, 0.4, -1), 1.1), kinematics.rotation_matrix((1, 2, 3), -2.0)):
        np.testing.assert_allclose(lam.T @ g @ lam, g, atol=1e-12)


def test_boost_along_z_shifts_rapidity():
    p4s, mask = random_jets(seed=2)
    boosted = kinematics.boost(p4s, (0, 0, 1), 0.8)
    ch, sh = np.cosh(0.8), np.sinh(0.8)  # E' = E ch + pz sh, pz' = E sh + pz ch
    np.testing.assert_allclose(boosted[..., 0], ch * p4s[..., 0] + sh * p4s[..., 3], atol=1e-9)
    np.testing.assert_allclose(boosted[..., 3], sh * p4s[..., 0] + ch * p4s[..., 3], atol=1e-9)
    np.testing.assert_allclose(boosted[..., 1:3], p4s[..., 1:3], atol=1e-12)
    dy = kinematics.rapidities_from_p4s(boosted)[mask] - kinematics.rapidities_from_p4s(p4s)[mask]
    np.testing.assert_allclose(dy, 0.8, atol=1e-9)


def test_per_jet_axes_and_jet_directions():
    p4s, mask = random_jets(n_jets=4, seed=3)
    axes = kinematics.jet_directions(p4s)
    np.testing.assert_allclose(np.linalg.norm(axes, axis=-1), 1.0)
    rapidities = np.array([0.1, 0.5, -0.3, 1.0])
    boosted = kinematics.boost(p4s, axes, rapidities)
    for i in range(4):
        np.testing.assert_allclose(boosted[i], kinematics.boost(p4s[i:i + 1], axes[i], rapidities[i])[0], atol=1e-9)
    # boosting a jet along its own direction keeps its direction
    np.testing.assert_allclose(kinematics.jet_directions(boosted), axes, atol=1e-9)


def test_minkowski_gram_and_dot_agree():
    p4s, mask = random_jets(seed=4)
    gram = kinematics.minkowski_gram(p4s, mask)
    np.testing.assert_allclose(gram[:, 2, 5], kinematics.minkowski_dot(p4s[:, 2], p4s[:, 5]))
    np.testing.assert_allclose(gram, np.swapaxes(gram, -1, -2))
    assert np.all(gram[:, -1, :] == 0) and np.all(gram[:, :, -1] == 0)


def test_pair_features_values():
    # two massless particles with pT 100 and 50 GeV at y = 0, 0.3 apart in phi
    pts, ys, phis = np.array([[100.0, 50.0]]), np.zeros((1, 2)), np.array([[0.0, 0.3]])
    p4s = kinematics.p4s_from_constituents(pts, ys, phis, pts * np.cosh(ys), np.ones((1, 2), bool))
    feats = kinematics.pair_features(p4s, np.ones((1, 2), bool))
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
        moved = kinematics.boost(p4s, (0, 0, 1), 1.5)
    else:
        moved = kinematics.rotate(p4s, (0, 0, 1), 2.5)
    np.testing.assert_allclose(kinematics.pair_features(moved, mask), kinematics.pair_features(p4s, mask), atol=2e-4)


def test_pair_features_only_mass_invariant_under_transverse_boost():
    p4s, mask = random_jets(seed=6)
    moved = kinematics.boost(p4s, (1, 0, 0), 1.0)
    before, after = kinematics.pair_features(p4s, mask), kinematics.pair_features(moved, mask)
    off_diagonal = mask[:, :, None] & mask[:, None, :] & ~np.eye(mask.shape[1], dtype=bool)
    np.testing.assert_allclose(after[..., 3][off_diagonal], before[..., 3][off_diagonal], atol=2e-4)
    for k in range(3):
        assert np.max(np.abs(after[..., k] - before[..., k])) > 0.1


def test_pair_features_padding_permutation_and_chunks():
    p4s, mask = random_jets(n_jets=7, seed=7)
    feats = kinematics.pair_features(p4s, mask)
    assert np.all(feats[:, -1] == 0) and np.all(feats[:, :, -1] == 0)
    junk = p4s.copy()
    junk[~mask] = 123.0  # whatever sits in the padded slots
    np.testing.assert_array_equal(kinematics.pair_features(junk, mask), feats)
    perm = np.random.default_rng(0).permutation(p4s.shape[1])
    np.testing.assert_allclose(kinematics.pair_features(p4s[:, perm], mask[:, perm]), feats[:, perm][:, :, perm])
    many = np.concatenate([p4s] * 300)  # > one chunk
    np.testing.assert_array_equal(kinematics.pair_features(many, np.concatenate([mask] * 300))[-7:], feats)


def test_inputs_are_not_changed():
    p4s, mask = random_jets(seed=8)
    copy = p4s.copy()
    kinematics.boost(p4s, (0, 1, 0), 0.5)
    kinematics.rotate(p4s, (0, 1, 0), 0.5)
    kinematics.pair_features(p4s, mask)
    kinematics.minkowski_gram(p4s, mask)
    np.testing.assert_array_equal(p4s, copy)


def test_zero_axis_raises():
    with pytest.raises(ValueError):
        kinematics.boost_matrix((0, 0, 0), 1.0)


def test_p4s_from_dataset_truncates_and_pads():
    from types import SimpleNamespace

    rng = np.random.default_rng(9)
    pts = np.sort(rng.exponential(20.0, (3, 6)), axis=1)[:, ::-1] + 1.0
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], dtype=bool)
    pts = np.where(mask, pts, 0.0)
    etas, phis = rng.normal(0, 0.3, (3, 6)), rng.normal(0, 0.3, (3, 6))
    es = pts * np.cosh(etas)
    dataset = SimpleNamespace(constituents={"pt": pts, "eta": etas, "phi": phis, "e": es, "mask": mask})
    p4s, kept = kinematics.p4s_from_dataset(dataset, 4)
    assert p4s.shape == (3, 4, 4) and kept.shape == (3, 4)
    np.testing.assert_array_equal(kept, mask[:, :4])
    np.testing.assert_allclose(kinematics.ptetaphie_from_p4s(p4s)[..., 0][kept], pts[:, :4][mask[:, :4]])
    assert np.all(p4s[~kept] == 0)
    p4s_long, kept_long = kinematics.p4s_from_dataset(dataset, 8)  # more slots than stored: padded
    assert p4s_long.shape == (3, 8, 4) and not kept_long[:, 6:].any()


# --- one home: η and rapidity from momentum are computed only in mlpp.kinematics ------------

SRC = Path(__file__).resolve().parents[1] / "src" / "mlpp"
# The one file allowed to compute η or rapidity from momentum itself.
HAND_KINEMATICS_ALLOWED = {"kinematics.py"}
# η = asinh(pz/pT) = atanh(pz/|p|) = −ln tan(θ/2); y = ½ ln((E + pz)/(E − pz)) = atanh(pz/E).
HAND_KINEMATICS = [
    re.compile(r"\b(?:arcsinh|asinh|arctanh|atanh)\s*\("),
    re.compile(r"\blog\s*\(\s*(?:np\.|math\.)?tan\s*\("),
    re.compile(r"\blog\s*\([^\n]*(?:\bp_?z|\bpzs?\b|\bjpz\b|\bhpz\b)"),
    re.compile(r"(?<![\w.])0?\.5\s*\*\s*(?:np\.|math\.)?log\s*\("),  # ½ ln(...)
    re.compile(r"\blog\s*\([^\n]*\)\s*/\s*2\b"),  # ln(...) / 2
]


_TEXT_TOKENS = {tokenize.COMMENT, tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}


def _code_without_comments_and_strings(text: str) -> str:
    """The source with comments and string literals (docstrings) blanked, so formulas quoted in
    documentation do not count."""
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    lines = text.splitlines(keepends=True)
    blank = [list(line) for line in lines]
    for tok in tokens:
        if tok.type in _TEXT_TOKENS:
            (r0, c0), (r1, c1) = tok.start, tok.end
            for r in range(r0, r1 + 1):
                row = blank[r - 1]
                lo, hi = (c0 if r == r0 else 0), (c1 if r == r1 else len(row))
                for c in range(lo, hi):
                    if row[c] != "\n":
                        row[c] = " "
    return "".join("".join(row) for row in blank)


def hand_kinematics(text: str) -> list[str]:
    """Lines of Python source that compute η or rapidity from momentum by hand."""
    code = _code_without_comments_and_strings(text)
    return [line.strip() for line in code.splitlines() if any(p.search(line) for p in HAND_KINEMATICS)]


@pytest.mark.parametrize("line", [
    "eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pz), where=pt > 0))",
    "y = 0.5 * np.log((e + pz) / (e - pz))",
    "jy = 0.5 * np.log(np.maximum(je + jpz, 1e-12) / np.maximum(je - jpz, 1e-12))",
    "y = np.arctanh(p4[..., 3] / p4[..., 0])",
    "eta = -np.log(np.tan(theta / 2))",
    "eta = math.asinh(pz / pt)",
    "return 0.5 * np.log(ratio)",
    "y = np.log(plus / minus) / 2",
])
def test_the_scan_finds_hand_written_eta_and_rapidity(line):
    assert hand_kinematics(line + "\n") == [line]


def test_the_scan_ignores_documentation_and_other_logs():
    text = ('"""η = asinh(pz / pT); y = ½ ln((E + pz)/(E − pz))."""\n'
            "x = np.log(pts)  # y = 0.5 * np.log((e + pz) / (e - pz))\n"
            "pz = pt * np.sinh(eta)\n")
    assert hand_kinematics(text) == []


def test_eta_and_rapidity_from_momentum_live_only_in_kinematics():
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel not in HAND_KINEMATICS_ALLOWED and (lines := hand_kinematics(path.read_text(encoding="utf-8"))):
            found[rel] = lines
    assert not found, f"compute η / rapidity with mlpp.kinematics instead: {found}"
    assert hand_kinematics((SRC / "kinematics.py").read_text(encoding="utf-8")), "the scan found nothing at home"
