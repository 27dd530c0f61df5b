"""Kinematics of jets and their constituents (numpy; GeV and radians)."""
from __future__ import annotations

import numpy as np


def delta_phi(phi1: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    """φ1 − φ2 wrapped into [−π, π)."""
    return (np.asarray(phi1) - np.asarray(phi2) + np.pi) % (2 * np.pi) - np.pi


def delta_r(eta1: np.ndarray, phi1: np.ndarray, eta2: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    """ΔR = sqrt(Δη² + Δφ²), with Δφ wrapped."""
    return np.hypot(np.asarray(eta1) - np.asarray(eta2), delta_phi(phi1, phi2))


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


def masses_from_p4s(p4s: np.ndarray) -> np.ndarray:
    """Invariant mass sqrt(E² − |p|²), clipped at 0 for rounding."""
    p4s = np.asarray(p4s, dtype=float)
    m2 = p4s[..., 0] ** 2 - (p4s[..., 1:] ** 2).sum(axis=-1)
    return np.sqrt(np.maximum(m2, 0.0))


def ptetaphim_from_p4s(p4s: np.ndarray) -> np.ndarray:
    """(…, 4) = (pT, η, φ, m) from (E, px, py, pz)."""
    p4s = np.asarray(p4s, dtype=float)
    pts = np.hypot(p4s[..., 1], p4s[..., 2])
    etas = np.arcsinh(np.divide(p4s[..., 3], pts, out=np.zeros_like(pts), where=pts > 0))
    phis = np.arctan2(p4s[..., 2], p4s[..., 1])
    return np.stack([pts, etas, phis, masses_from_p4s(p4s)], axis=-1)


def boost_z(p4s: np.ndarray, rapidity: float) -> np.ndarray:
    """Boost four-vectors (E, px, py, pz) along the beam by ``rapidity``; masses are unchanged."""
    p4s = np.asarray(p4s, dtype=float)
    ch, sh = np.cosh(rapidity), np.sinh(rapidity)
    out = p4s.copy()
    out[..., 0] = ch * p4s[..., 0] + sh * p4s[..., 3]
    out[..., 3] = sh * p4s[..., 0] + ch * p4s[..., 3]
    return out
