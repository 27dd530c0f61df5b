"""Jets as sets of particles, and the transformations that test a set model's symmetries.

Lecture 4 hands jets to EnergyFlow (arXiv:1712.07124, arXiv:1810.05165), whose layout is one
row per particle, ``(pT, y, φ, pid)``, zero-padded. This module converts the course's
constituents to that layout and provides the transformations under which a model's output
should (or should not) change:

* :func:`permute_particles` reorders the particles of each jet (a set function ignores it);
* :func:`split_collinear` replaces a particle by two collinear ones that share its energy
  (an IRC-safe observable ignores it);
* :func:`add_soft_particle` adds a particle of vanishing energy (likewise).

>>> from mlpp import data, representations as reps
>>> jets = data.load("qg")
>>> particles = reps.center_and_normalize(reps.ptyphipids_from_dataset(jets))  # (n, P, 4)
>>> split = reps.split_collinear(particles, index=0, fraction=0.3)               # (n, P + 1, 4)

All functions return new arrays and never change their inputs. The first column of a
particle array holds its energy-like weight (pT in GeV, or the pT fraction z); which columns
scale with energy is set by ``energy_columns`` where it matters.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from mlpp.data.detector import CHARGED_HADRON, ELECTRON, MUON, NEUTRAL_HADRON, PHOTON
from mlpp import kinematics

#: PDG id of a positive particle of each detector class (photons and neutral hadrons: the
#: id used for all of them, K0_L for neutral hadrons). Negative charge flips the sign.
PDGID_OF_CLASS = {CHARGED_HADRON: 211, ELECTRON: -11, MUON: -13, PHOTON: 22, NEUTRAL_HADRON: 130}


def pdgids_from_classes(pid_classes: np.ndarray, charges: np.ndarray) -> np.ndarray:
    """PDG ids from the detector's particle classes and charges (any shape; padding, class −1, → 0).

    Charged hadrons become ±211, electrons ∓11, muons ∓13, photons 22 and neutral hadrons 130:
    the ids EnergyFlow's ``remap_pids`` knows.
    """
    pid_classes = np.asarray(pid_classes)
    charges = np.asarray(charges)
    out = np.zeros(pid_classes.shape, dtype=np.float64)
    for code, pdgid in PDGID_OF_CLASS.items():
        sel = pid_classes == code
        charged = code in (CHARGED_HADRON, ELECTRON, MUON)
        out[sel] = pdgid * (np.sign(charges[sel]) if charged else 1.0)
    return out


def ptyphipids_from_dataset(jets) -> np.ndarray:
    """EnergyFlow's particle layout from a :class:`mlpp.data.JetDataset`.

    Returns (n_jets, max_constituents, 4) float64 = (pT [GeV], y, φ, PDG id), pT-ordered as
    stored, zero rows for padding. φ stays within π of the jet axis, as stored.
    """
    c = jets.constituents
    mask = np.asarray(c["mask"], dtype=bool)
    ys = kinematics.rapidities_from_ptetaes(c["pt"], c["eta"], c["e"], mask)
    pdgids = pdgids_from_classes(c["pid_class"], c["charge"])
    columns = [np.asarray(c["pt"], np.float64), ys, np.asarray(c["phi"], np.float64), pdgids]
    return np.where(mask[..., None], np.stack(columns, axis=-1), 0.0)


def center_and_normalize(particles: np.ndarray) -> np.ndarray:
    """The EFN paper's preprocessing: y and φ relative to the pT-weighted centroid, pT → z = pT / ΣpT.

    ``particles``: (n_jets, n_particles, ≥ 3) with columns (pT, y, φ, …), zero rows for padding
    (pT = 0), which stay zero. Further columns (a PDG id) are copied. Returns a float64 copy.
    """
    out = np.array(particles, dtype=np.float64, copy=True)
    pts = out[..., 0]
    real = pts > 0
    sums = pts.sum(axis=-1, keepdims=True)
    sums = np.where(sums > 0, sums, 1.0)
    centroids = (pts[..., None] * out[..., 1:3]).sum(axis=-2, keepdims=True) / sums[..., None]
    out[..., 1:3] = np.where(real[..., None], out[..., 1:3] - centroids, 0.0)
    out[..., 0] = pts / sums
    return out


def permute_particles(particles: np.ndarray, seed: int | np.random.Generator = 0) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle the particle axis of each jet independently (padding included).

    ``particles``: (n_jets, n_particles, ...). Returns ``(permuted, order)`` with
    ``permuted[j] = particles[j, order[j]]``; ``order`` is (n_jets, n_particles).
    """
    rng = np.random.default_rng(seed)
    particles = np.asarray(particles)
    n_jets, n_particles = particles.shape[:2]
    order = np.argsort(rng.random((n_jets, n_particles)), axis=1)
    index = order.reshape(order.shape + (1,) * (particles.ndim - 2))
    return np.take_along_axis(particles, index, axis=1), order


def split_collinear(particles: np.ndarray, index: int | np.ndarray = 0, fraction: float = 0.5,
                    energy_columns: Sequence[int] = (0,)) -> np.ndarray:
    """Split one particle per jet into two collinear ones that share its energy.

    ``particles``: (n_jets, n_particles, n_features), zero rows for padding. Particle ``index``
    (one int, or one per jet) keeps ``fraction`` of its energy-like columns ``energy_columns``
    (pT or z; add the E column if there is one); a copy with the rest, ``1 − fraction``, and the
    same direction and other features (y, φ, PID) is appended as a new last slot.
    Returns (n_jets, n_particles + 1, n_features); the sum of each energy column is unchanged.
    """
    particles = np.asarray(particles)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    n_jets = particles.shape[0]
    index = np.broadcast_to(np.asarray(index), (n_jets,))
    rows = np.arange(n_jets)
    chosen = particles[rows, index].copy()                      # (n_jets, n_features)
    kept = chosen.copy()
    columns = list(energy_columns)
    kept[:, columns] = fraction * chosen[:, columns]
    chosen[:, columns] = (1.0 - fraction) * chosen[:, columns]
    out = np.concatenate([particles, chosen[:, None, :]], axis=1)
    out[rows, index] = kept
    return out


def add_soft_particle(particles: np.ndarray, energy: float = 1e-6, direction: Sequence[float] = (0.1, -0.1),
                      energy_columns: Sequence[int] = (0,), direction_columns: Sequence[int] = (1, 2),
                      other_values: dict[int, float] | None = None) -> np.ndarray:
    """Append one particle of tiny energy to every jet: an infrared emission.

    ``particles``: (n_jets, n_particles, n_features). The new particle has ``energy`` in the
    columns ``energy_columns``, ``direction`` (e.g. y, φ) in ``direction_columns``, the values of
    ``other_values`` ({column: value}, e.g. a PID) and zero elsewhere.
    Returns (n_jets, n_particles + 1, n_features).
    """
    particles = np.asarray(particles)
    soft = np.zeros((particles.shape[0], 1, particles.shape[2]), dtype=particles.dtype)
    soft[..., list(energy_columns)] = energy
    soft[..., list(direction_columns)] = np.asarray(direction, dtype=particles.dtype)
    for column, value in (other_values or {}).items():
        soft[..., column] = value
    return np.concatenate([particles, soft], axis=1)
