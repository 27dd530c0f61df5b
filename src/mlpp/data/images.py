"""Jet images: constituents pixelised on an η–φ grid (Cogan et al. arXiv:1407.5675;
de Oliveira et al. arXiv:1511.05190; Kasieczka et al. arXiv:1701.08784).

Preprocessing, each step optional and in this order:

``center``     shift so the pT-weighted centroid is at (0, 0);
``rotate``     rotate so the principal axis of the pT distribution is vertical;
``flip``       reflect so the half-planes η > 0 and φ > 0 carry the larger pT;
``normalize``  divide by the summed pixel pT (the image sums to 1; else to the jet's scalar pT
               inside the window).
"""
from __future__ import annotations

import numpy as np

STEPS = ("center", "rotate", "flip", "normalize")


def preprocess_coordinates(pts: np.ndarray, etas: np.ndarray, phis: np.ndarray, mask: np.ndarray,
                           steps: tuple[str, ...] = ("center", "rotate", "flip")) -> tuple[np.ndarray, np.ndarray]:
    """Transformed (η, φ) of padded constituents (n_jets, n_particles); inputs are not changed."""
    unknown = set(steps) - set(STEPS)
    if unknown:
        raise ValueError(f"unknown preprocessing step(s) {sorted(unknown)}; choose from {STEPS}")
    w = np.where(mask, pts, 0.0).astype(float)
    wsum = np.maximum(w.sum(1, keepdims=True), 1e-12)
    x = np.where(mask, etas, 0.0).astype(float)
    y = np.where(mask, phis, 0.0).astype(float)
    if "center" in steps:
        x = np.where(mask, x - (w * x).sum(1, keepdims=True) / wsum, 0.0)
        y = np.where(mask, y - (w * y).sum(1, keepdims=True) / wsum, 0.0)
    if "rotate" in steps:
        sxx, syy, sxy = (w * x * x).sum(1), (w * y * y).sum(1), (w * x * y).sum(1)
        # Angle of the principal axis; rotating by (π/2 − θ) makes it vertical.
        theta = 0.5 * np.arctan2(2 * sxy, sxx - syy)
        angle = (np.pi / 2 - theta)[:, None]
        x, y = x * np.cos(angle) - y * np.sin(angle), x * np.sin(angle) + y * np.cos(angle)
    if "flip" in steps:
        # After centring, the pT-weighted means of x and y are zero: compare the pT in each half-plane.
        x = np.where((w * (x > 0)).sum(1, keepdims=True) < (w * (x < 0)).sum(1, keepdims=True), -x, x)
        y = np.where((w * (y > 0)).sum(1, keepdims=True) < (w * (y < 0)).sum(1, keepdims=True), -y, y)
    return np.where(mask, x, 0.0), np.where(mask, y, 0.0)


def jet_images(pts: np.ndarray, etas: np.ndarray, phis: np.ndarray, mask: np.ndarray, npix: int = 40,
               half_width: float = 1.0, steps: tuple[str, ...] = ("center", "rotate", "flip", "normalize")) -> np.ndarray:
    """Images (n_jets, npix, npix) of pT per pixel; axis 1 is η, axis 2 is φ.

    ``half_width`` is the window half-size in η and φ (1.0 for R = 0.8 jets keeps the whole jet).
    Constituents outside the window are dropped.
    """
    x, y = preprocess_coordinates(pts, etas, phis, mask, tuple(s for s in steps if s != "normalize"))
    n = len(pts)
    edges = np.linspace(-half_width, half_width, npix + 1)
    ix = np.digitize(x, edges) - 1
    iy = np.digitize(y, edges) - 1
    inside = mask & (ix >= 0) & (ix < npix) & (iy >= 0) & (iy < npix)
    images = np.zeros((n, npix, npix), dtype=np.float32)
    jets = np.broadcast_to(np.arange(n)[:, None], pts.shape)
    np.add.at(images, (jets[inside], ix[inside], iy[inside]), np.asarray(pts)[inside])
    if "normalize" in steps:
        images /= np.maximum(images.sum(axis=(1, 2), keepdims=True), 1e-12)
    return images
