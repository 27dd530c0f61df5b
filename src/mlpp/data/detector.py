"""A deliberately simple detector, applied to Pythia's visible final-state particles.

It stands in for Delphes so that the course's jets look like reconstructed
particle-flow candidates rather than perfect generator particles. Every number is a
field of :class:`DetectorModel` and is described on the book page ``book/detector.md``.

Particle classes (the ``pid_class`` column of a constituent):

====  ================  ====================================================
code  class             measured by
====  ================  ====================================================
0     charged hadron    tracker: pT resolution a ⊕ b·pT
1     electron          tracker, as charged hadrons
2     muon              tracker, as charged hadrons
3     photon            ECAL: σ_E/E = a/√E ⊕ b; position smeared by ECAL cell
4     neutral hadron    HCAL: σ_E/E = a/√E ⊕ b; position smeared by HCAL cell
====  ================  ====================================================

A charged particle outside the tracker (|η| > 2.5) or lost by the tracking
inefficiency is measured by the calorimeters as a neutral hadron (photon, if it is an
electron), as a particle-flow algorithm would see it. Neutrinos are never seen.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

CLASS_NAMES = ("charged hadron", "electron", "muon", "photon", "neutral hadron")
CHARGED_HADRON, ELECTRON, MUON, PHOTON, NEUTRAL_HADRON = range(5)
NEUTRINOS = (12, 14, 16)


@dataclass(frozen=True)
class DetectorModel:
    """Resolutions, acceptances and thresholds (energies in GeV)."""

    tracker_abs_eta: float = 2.5
    tracking_efficiency: float = 0.95
    track_pt_min: float = 0.5
    track_pt_resolution_const: float = 0.005   # 0.5 %
    track_pt_resolution_slope: float = 1.0e-4  # per GeV: 10 % at 1 TeV
    calo_abs_eta: float = 4.9
    ecal_stochastic: float = 0.10   # 10 %/√E
    ecal_constant: float = 0.01
    ecal_cell: float = 0.0175       # Δη = Δφ of an ECAL cell
    hcal_stochastic: float = 1.00   # 100 %/√E
    hcal_constant: float = 0.05
    hcal_cell: float = 0.087
    photon_e_min: float = 0.5
    neutral_hadron_e_min: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


def pid_classes_from_pdgids(pdgids: np.ndarray, charges: np.ndarray) -> np.ndarray:
    """Generator-level class (0–4) of each particle, before detector effects."""
    absid = np.abs(pdgids)
    classes = np.where(charges != 0, CHARGED_HADRON, NEUTRAL_HADRON)
    classes = np.where(absid == 11, ELECTRON, classes)
    classes = np.where(absid == 13, MUON, classes)
    classes = np.where(absid == 22, PHOTON, classes)
    return classes.astype(np.int8)


def _wrap(phis: np.ndarray) -> np.ndarray:
    return (phis + np.pi) % (2 * np.pi) - np.pi


def apply_detector(
    pts: np.ndarray,
    etas: np.ndarray,
    phis: np.ndarray,
    pdgids: np.ndarray,
    charges: np.ndarray,
    rng: np.random.Generator,
    model: DetectorModel = DetectorModel(),
) -> dict[str, np.ndarray]:
    """Smear one flat list of visible particles (neutrinos already removed).

    Returns a dict of equal-length arrays ``pt, eta, phi, e, charge, pid_class``
    for the particles that are seen; energies treat every candidate as massless
    except tracks, which keep the pion mass (as particle flow does).
    """
    n = len(pts)
    cls = pid_classes_from_pdgids(pdgids, charges)
    charged = charges != 0
    # One uniform draw per particle for the tracking efficiency, one normal per
    # smeared quantity: the draw count is fixed, so results do not depend on which
    # particles pass earlier cuts.
    u_track = rng.random(n)
    z_energy, z_eta, z_phi = rng.standard_normal((3, n))

    tracked = charged & (np.abs(etas) < model.tracker_abs_eta) & (u_track < model.tracking_efficiency)
    # Charged particles the tracker misses are seen by the calorimeters.
    cls = np.where(charged & ~tracked, np.where(cls == ELECTRON, PHOTON, NEUTRAL_HADRON), cls).astype(np.int8)
    out_charge = np.where(tracked, charges, 0.0)

    energies = pts * np.cosh(etas)
    new_pts = pts.copy()
    new_etas = etas.copy()
    new_phis = phis.copy()

    sigma_track = np.hypot(model.track_pt_resolution_const, model.track_pt_resolution_slope * pts)
    new_pts = np.where(tracked, pts * (1 + sigma_track * z_energy), new_pts)

    photon = ~tracked & (cls == PHOTON)
    hadron = ~tracked & (cls == NEUTRAL_HADRON)
    safe_e = np.maximum(energies, 1e-9)
    sigma_ecal = np.hypot(model.ecal_stochastic / np.sqrt(safe_e), model.ecal_constant)
    sigma_hcal = np.hypot(model.hcal_stochastic / np.sqrt(safe_e), model.hcal_constant)
    new_e = np.where(photon, energies * (1 + sigma_ecal * z_energy), energies)
    new_e = np.where(hadron, energies * (1 + sigma_hcal * z_energy), new_e)
    cell = np.where(photon, model.ecal_cell, model.hcal_cell) / np.sqrt(12.0)
    calo = photon | hadron
    new_etas = np.where(calo, etas + cell * z_eta, new_etas)
    new_phis = np.where(calo, _wrap(phis + cell * z_phi), new_phis)
    new_pts = np.where(calo, np.maximum(new_e, 0.0) / np.cosh(new_etas), new_pts)

    seen = np.where(tracked, new_pts > model.track_pt_min, False)
    seen |= photon & (new_e > model.photon_e_min) & (np.abs(etas) < model.calo_abs_eta)
    seen |= hadron & (new_e > model.neutral_hadron_e_min) & (np.abs(etas) < model.calo_abs_eta)

    pion_mass = 0.13957
    final_e = np.where(tracked, np.sqrt((new_pts * np.cosh(new_etas)) ** 2 + pion_mass**2),
                       new_pts * np.cosh(new_etas))
    return {
        "index": np.flatnonzero(seen),
        "pt": new_pts[seen],
        "eta": new_etas[seen],
        "phi": new_phis[seen],
        "e": final_e[seen],
        "charge": out_charge[seen].astype(np.int8),
        "pid_class": cls[seen],
    }
