"""Kinematics of particles and jets: the one home of four-vectors, pT/η/φ, rapidity, ΔR,
Minkowski inner products, boosts and rotations, and the Particle Transformer's pairwise
features (numpy; GeV and radians).

Four-vectors are ``(..., 4)`` arrays ``(E, px, py, pz)`` in GeV; the metric is
``diag(+1, -1, -1, -1)``. Axes are 3-vectors (any length); rapidities are dimensionless.
Padded particles are all-zero four-vectors with ``mask`` false.

Every other module takes η, y and φ from here (:func:`pseudorapidities`, :func:`rapidities`,
:func:`ptetaphi_from_momenta`) instead of writing the formulas again; a test checks that.
"""
from __future__ import annotations

import numpy as np

METRIC = np.array([1.0, -1.0, -1.0, -1.0])
PAIR_FEATURE_NAMES = ("ln_delta", "ln_kt", "ln_z", "ln_m2")
_CHUNK = 1000


# --- angles, pseudorapidity and rapidity --------------------------------------------------

def delta_phi(phi1: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    """φ1 − φ2 wrapped into [−π, π)."""
    return (np.asarray(phi1) - np.asarray(phi2) + np.pi) % (2 * np.pi) - np.pi


def delta_r(eta1: np.ndarray, phi1: np.ndarray, eta2: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    """ΔR = sqrt(Δη² + Δφ²), with Δφ wrapped (pass rapidities for the rapidity-based ΔR)."""
    return np.hypot(np.asarray(eta1) - np.asarray(eta2), delta_phi(phi1, phi2))


def pseudorapidities(pts: np.ndarray, pzs: np.ndarray) -> np.ndarray:
    """η = asinh(pz / pT) from pT and pz (GeV, any shape); 0 where pT = 0 (padding, beam axis)."""
    pts, pzs = np.asarray(pts, dtype=np.float64), np.asarray(pzs, dtype=np.float64)
    return np.arcsinh(np.divide(pzs, pts, out=np.zeros(np.broadcast(pts, pzs).shape), where=pts > 0))


def rapidities(pts: np.ndarray, pzs: np.ndarray, es: np.ndarray) -> np.ndarray:
    """Rapidity y = ½ ln((E + pz)/(E − pz)) = asinh(pz / mT) from pT, pz and E (GeV, any shape).

    Computed as asinh(pz / mT) with mT = sqrt(E² − pz²) floored at pT, so that rounding (float32
    storage can give E slightly below |p|) makes a particle massless (y = η) instead of producing
    nonsense; exact for physical four-vectors. 0 where mT = 0 (all-zero padding).
    """
    pts, pzs, es = (np.asarray(a, dtype=np.float64) for a in (pts, pzs, es))
    mts = np.sqrt(np.maximum(es**2 - pzs**2, pts**2))
    return np.arcsinh(np.divide(pzs, mts, out=np.zeros(np.broadcast(pts, pzs, es).shape), where=mts > 0))


def ptetaphi_from_momenta(px: np.ndarray, py: np.ndarray, pz: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pT, η, φ) from momentum components (GeV, any shape); η = 0 where pT = 0."""
    pts = np.hypot(px, py)
    return pts, pseudorapidities(pts, pz), np.arctan2(py, px)


def rapidities_from_ptetaes(pts: np.ndarray, etas: np.ndarray, es: np.ndarray,
                            mask: np.ndarray | None = None) -> np.ndarray:
    """Rapidities from pT [GeV], η and E [GeV] (see :func:`rapidities`); any shape.

    Entries where ``mask`` is false (padding) are 0. For a massless particle y = η.
    """
    pts, etas = np.asarray(pts, dtype=np.float64), np.asarray(etas, dtype=np.float64)
    ys = rapidities(pts, pts * np.sinh(etas), es)
    return ys if mask is None else np.where(mask, ys, 0.0)


# --- four-vectors -----------------------------------------------------------------------

def p4s_from_ptetaphie(pts: np.ndarray, etas: np.ndarray, phis: np.ndarray, es: np.ndarray) -> np.ndarray:
    """(…, 4) four-vectors (E, px, py, pz) from pT, η, φ, E."""
    pts = np.asarray(pts, dtype=float)
    return np.stack([np.asarray(es, float), pts * np.cos(phis), pts * np.sin(phis), pts * np.sinh(etas)], axis=-1)


def jet_p4s(pts: np.ndarray, etas: np.ndarray, phis: np.ndarray, es: np.ndarray,
            mask: np.ndarray | None = None) -> np.ndarray:
    """Summed four-vector (E, px, py, pz) of each jet from (n_jets, n_particles) constituents."""
    p4 = p4s_from_ptetaphie(pts, etas, phis, es)
    if mask is not None:
        p4 = p4 * np.asarray(mask)[..., None]
    return p4.sum(axis=-2)


def p4s_from_constituents(pts: np.ndarray, etas: np.ndarray, phis: np.ndarray, es: np.ndarray,
                          mask: np.ndarray) -> np.ndarray:
    """(n_jets, n_particles, 4) float64 four-vectors (E, px, py, pz) in GeV; zero at padding.

    Inputs are (n_jets, n_particles) arrays: pT and E in GeV, η and φ in radians.
    """
    mask = np.asarray(mask, dtype=bool)
    p4s = p4s_from_ptetaphie(np.where(mask, pts, 0.0), np.where(mask, etas, 0.0),
                             np.where(mask, phis, 0.0), np.where(mask, es, 0.0))
    return np.where(mask[..., None], p4s, 0.0)


def p4s_from_dataset(dataset, n_particles: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_particles`` hardest constituents of each jet of a :class:`mlpp.data.JetDataset`.

    Returns ``p4s`` (n_jets, n_particles, 4) float64 (E, px, py, pz) in GeV, zero at padding,
    and ``mask`` (n_jets, n_particles) bool. The stored constituents are in decreasing pT.
    """
    c = dataset.constituents
    cols = [np.asarray(c[key][:, :n_particles], dtype=np.float64) for key in ("pt", "eta", "phi", "e")]
    mask = np.asarray(c["mask"][:, :n_particles], dtype=bool)
    if mask.shape[1] < n_particles:  # fewer stored slots than asked: pad
        pad = n_particles - mask.shape[1]
        cols = [np.pad(col, ((0, 0), (0, pad))) for col in cols]
        mask = np.pad(mask, ((0, 0), (0, pad)))
    return p4s_from_constituents(*cols, mask), mask


def ptetaphie_from_p4s(p4s: np.ndarray) -> np.ndarray:
    """(..., 4) = (pT, η, φ, E) from (E, px, py, pz); η = 0 where pT = 0."""
    p4s = np.asarray(p4s, dtype=np.float64)
    pts, etas, phis = ptetaphi_from_momenta(p4s[..., 1], p4s[..., 2], p4s[..., 3])
    return np.stack([pts, etas, phis, p4s[..., 0]], axis=-1)


def ptetaphim_from_p4s(p4s: np.ndarray) -> np.ndarray:
    """(..., 4) = (pT, η, φ, m) from (E, px, py, pz), the layout of ``JetDataset.jet``."""
    p4s = np.asarray(p4s, dtype=np.float64)
    pts, etas, phis = ptetaphi_from_momenta(p4s[..., 1], p4s[..., 2], p4s[..., 3])
    return np.stack([pts, etas, phis, masses_from_p4s(p4s)], axis=-1)


def rapidities_from_p4s(p4s: np.ndarray) -> np.ndarray:
    """Rapidity y of (E, px, py, pz) four-vectors (see :func:`rapidities`); 0 for all-zero padding."""
    p4s = np.asarray(p4s, dtype=np.float64)
    return rapidities(np.hypot(p4s[..., 1], p4s[..., 2]), p4s[..., 3], p4s[..., 0])


# --- Minkowski inner products ---------------------------------------------------------------

def minkowski_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a·b = a⁰b⁰ − a⃗·b⃗ over the last axis (broadcasting), in GeV²."""
    return np.sum(np.asarray(a, dtype=np.float64) * METRIC * np.asarray(b, dtype=np.float64), axis=-1)


def masses2_from_p4s(p4s: np.ndarray) -> np.ndarray:
    """Invariant mass squared p·p in GeV² (can be slightly negative from rounding)."""
    return minkowski_dot(p4s, p4s)


def masses_from_p4s(p4s: np.ndarray) -> np.ndarray:
    """Invariant mass sqrt(E² − |p|²) in GeV, clipped at 0 for rounding."""
    return np.sqrt(np.maximum(masses2_from_p4s(p4s), 0.0))


def minkowski_gram(p4s: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """(..., P, P) matrix of all inner products p_i·p_j (GeV²) of (..., P, 4) four-vectors.

    With ``mask`` (..., P), entries that involve a padded particle are 0.
    """
    p4s = np.asarray(p4s, dtype=np.float64)
    gram = np.einsum("...im,...jm->...ij", p4s * METRIC, p4s)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        gram = np.where(mask[..., :, None] & mask[..., None, :], gram, 0.0)
    return gram


# --- Lorentz transformations of whole jets ------------------------------------------------

def _unit(axis) -> np.ndarray:
    axis = np.asarray(axis, dtype=np.float64)
    norm = np.linalg.norm(axis, axis=-1, keepdims=True)
    if np.any(norm == 0):
        raise ValueError("the axis must not be the zero vector")
    return axis / norm


def boost_matrix(axis, rapidity) -> np.ndarray:
    """(..., 4, 4) matrix Λ of a pure boost with ``rapidity`` along the 3-vector ``axis``.

    Apply as ``p' = Λ p`` (see :func:`boost`); a positive rapidity moves the particles
    towards ``+axis`` (β = tanh(rapidity)). ``axis`` (..., 3) and ``rapidity`` (...) broadcast.
    """
    n = _unit(axis)
    rapidity = np.asarray(rapidity, dtype=np.float64)
    n, rapidity = np.broadcast_arrays(n, rapidity[..., None])
    rapidity = rapidity[..., 0]
    ch, sh = np.cosh(rapidity), np.sinh(rapidity)
    lam = np.zeros(rapidity.shape + (4, 4))
    lam[..., 0, 0] = ch
    lam[..., 0, 1:] = sh[..., None] * n
    lam[..., 1:, 0] = sh[..., None] * n
    lam[..., 1:, 1:] = np.eye(3) + (ch - 1)[..., None, None] * n[..., :, None] * n[..., None, :]
    return lam


def rotation_matrix(axis, angle) -> np.ndarray:
    """(..., 4, 4) matrix of a spatial rotation by ``angle`` (radians, right-handed) about ``axis``."""
    n = _unit(axis)
    angle = np.asarray(angle, dtype=np.float64)
    n, angle = np.broadcast_arrays(n, angle[..., None])
    angle = angle[..., 0]
    c, s = np.cos(angle), np.sin(angle)
    cross = np.zeros(angle.shape + (3, 3))  # the matrix of n × (.)
    cross[..., 0, 1], cross[..., 0, 2] = -n[..., 2], n[..., 1]
    cross[..., 1, 0], cross[..., 1, 2] = n[..., 2], -n[..., 0]
    cross[..., 2, 0], cross[..., 2, 1] = -n[..., 1], n[..., 0]
    rot = (c[..., None, None] * np.eye(3) + s[..., None, None] * cross
           + (1 - c)[..., None, None] * n[..., :, None] * n[..., None, :])
    out = np.zeros(angle.shape + (4, 4))
    out[..., 0, 0] = 1.0
    out[..., 1:, 1:] = rot
    return out


def transform(p4s: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply the 4×4 ``matrix`` (one, or one per jet: (n_jets, 4, 4)) to (n_jets, P, 4) four-vectors.

    Returns a new array; all-zero (padded) four-vectors stay zero.
    """
    p4s = np.asarray(p4s, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim == 2:
        return p4s @ matrix.T
    return np.einsum("...ab,...pb->...pa", matrix, p4s)


def boost(p4s: np.ndarray, axis, rapidity) -> np.ndarray:
    """Boost whole jets: every four-vector of (n_jets, P, 4) ``p4s`` by ``rapidity`` along ``axis``.

    ``axis``: a 3-vector, or (n_jets, 3) for one axis per jet (e.g. each jet's own direction);
    ``rapidity``: a number or (n_jets,).
    """
    return transform(p4s, boost_matrix(axis, rapidity))


def rotate(p4s: np.ndarray, axis, angle) -> np.ndarray:
    """Rotate whole jets by ``angle`` (radians) about ``axis`` (a 3-vector, or one per jet)."""
    return transform(p4s, rotation_matrix(axis, angle))


def jet_directions(p4s: np.ndarray) -> np.ndarray:
    """(n_jets, 3) unit 3-vectors along each jet's summed momentum."""
    return _unit(np.asarray(p4s, dtype=np.float64).sum(axis=-2)[..., 1:])


# --- pairwise interaction features (Qu, Li, Qian, arXiv:2202.03772) -------------------------

def pair_features(p4s: np.ndarray, mask: np.ndarray, eps: float = 1e-8) -> np.ndarray:
    """(n_jets, P, P, 4) pairwise features of the Particle Transformer, float32:

    ln Δ, ln kT, ln z, ln m² with Δ = sqrt((y_a − y_b)² + (φ_a − φ_b)²) (rapidity y),
    kT = min(pT,a, pT,b) Δ, z = min(pT,a, pT,b)/(pT,a + pT,b), m² = (p_a + p_b)² (GeV, GeV²).
    Arguments of the logarithms are clipped at ``eps`` (as ParT does; this matters on the
    diagonal, where Δ = 0). Entries involving a padded particle are 0. All four are invariant
    under boosts along the beam (z) axis and rotations about it; only m² is Lorentz invariant.
    """
    p4s = np.asarray(p4s, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    if p4s.ndim == 3 and len(p4s) > _CHUNK:  # bound the float64 temporaries
        return np.concatenate([pair_features(p4s[i:i + _CHUNK], mask[i:i + _CHUNK], eps)
                               for i in range(0, len(p4s), _CHUNK)])
    pts = np.hypot(p4s[..., 1], p4s[..., 2])  # (n, P)
    ys = rapidities_from_p4s(p4s)
    phis = np.arctan2(p4s[..., 2], p4s[..., 1])
    delta = np.hypot(ys[..., :, None] - ys[..., None, :], delta_phi(phis[..., :, None], phis[..., None, :]))
    pt_min = np.minimum(pts[..., :, None], pts[..., None, :])
    pt_sum = pts[..., :, None] + pts[..., None, :]
    z = np.divide(pt_min, pt_sum, out=np.zeros_like(pt_sum), where=pt_sum > 0)
    gram = minkowski_gram(p4s)  # (n, P, P); (p_a + p_b)² = p_a² + p_b² + 2 p_a·p_b
    self_m2 = np.einsum("...ii->...i", gram)
    m2 = self_m2[..., :, None] + self_m2[..., None, :] + 2.0 * gram
    out = np.stack([np.log(np.maximum(delta, eps)), np.log(np.maximum(pt_min * delta, eps)),
                    np.log(np.maximum(z, eps)), np.log(np.maximum(m2, eps))], axis=-1)
    both = mask[..., :, None] & mask[..., None, :]
    return np.where(both[..., None], out, 0.0).astype(np.float32)
