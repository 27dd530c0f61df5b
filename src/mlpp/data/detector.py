"""A deliberately simple detector, applied to Pythia's visible final-state particles.

It stands in for Delphes so that the course's jets look like reconstructed
particle-flow candidates rather than perfect generator particles: tracks for charged
particles, calorimeter towers for everything else. Every number is a field of
:class:`DetectorModel` and is described on the book page ``book/detector.md``; the
cell sizes and thresholds follow the Delphes CMS card (``delphes_card_CMS.tcl``).

Candidate classes (the ``pid_class`` column of a constituent):

====  ================  ====================================================
code  class             measured by
====  ================  ====================================================
0     charged hadron    tracker: pT resolution a ⊕ b·pT
1     electron          tracker, as charged hadrons
2     muon              tracker, as charged hadrons
3     photon            an ECAL tower: the summed deposits of one ECAL cell
4     neutral hadron    an HCAL tower: the summed deposits of one HCAL cell
====  ================  ====================================================

Photons and electrons that are not tracked deposit their energy in the ECAL, every
other particle that is not tracked (neutral hadrons, charged particles outside the
tracker or lost by its inefficiency) in the HCAL. All deposits in one cell of one
event make one tower: energies summed, then smeared with the calorimeter resolution,
the tower placed at a uniformly random point of its cell (Delphes' ``SmearTowerCenter``)
and kept above an energy threshold. Neutrinos are never seen.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

CLASS_NAMES = ("charged hadron", "electron", "muon", "photon", "neutral hadron")
CHARGED_HADRON, ELECTRON, MUON, PHOTON, NEUTRAL_HADRON = range(5)
NEUTRINOS = (12, 14, 16)
PION_MASS = 0.13957  # GeV: particle flow gives every track the charged-pion mass


@dataclass(frozen=True)
class DetectorModel:
    """Resolutions, acceptances, cell sizes and thresholds (energies in GeV)."""

    tracker_abs_eta: float = 2.5
    tracking_efficiency: float = 0.95
    track_pt_min: float = 0.5
    track_pt_resolution_const: float = 0.005   # 0.5 %
    track_pt_resolution_slope: float = 1.0e-4  # per GeV: 10 % at 1 TeV
    calo_abs_eta: float = 4.9
    ecal_stochastic: float = 0.10   # 10 %/√E
    ecal_constant: float = 0.01
    ecal_cell_eta: float = 0.0174   # Δη of an ECAL cell (a CMS crystal)
    ecal_phi_cells: int = 360       # Δφ = 1°
    hcal_stochastic: float = 1.00   # 100 %/√E
    hcal_constant: float = 0.05
    hcal_cell_eta: float = 0.087    # Δη of an HCAL tower
    hcal_phi_cells: int = 72        # Δφ = 5°
    ecal_tower_e_min: float = 0.5
    hcal_tower_e_min: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)

    def cell(self, calorimeter: str) -> tuple[float, float]:
        """(Δη, Δφ) of one cell of the ``"ecal"`` or ``"hcal"``."""
        if calorimeter == "ecal":
            return self.ecal_cell_eta, 2 * np.pi / self.ecal_phi_cells
        if calorimeter == "hcal":
            return self.hcal_cell_eta, 2 * np.pi / self.hcal_phi_cells
        raise ValueError(f"calorimeter must be 'ecal' or 'hcal', not {calorimeter!r}")


def pid_classes_from_pdgids(pdgids: np.ndarray, charges: np.ndarray) -> np.ndarray:
    """Generator-level class (0–4) of each particle, before detector effects."""
    absid = np.abs(pdgids)
    classes = np.where(charges != 0, CHARGED_HADRON, NEUTRAL_HADRON)
    classes = np.where(absid == 11, ELECTRON, classes)
    classes = np.where(absid == 13, MUON, classes)
    classes = np.where(absid == 22, PHOTON, classes)
    return classes.astype(np.int8)


def cell_indices(etas: np.ndarray, phis: np.ndarray, model: DetectorModel, calorimeter: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(η index, φ index) of the ``calorimeter`` cell that each (η, φ) falls in.

    Cells are a regular grid: η index ``floor(η/Δη)`` (0 starts at η = 0), φ index
    ``floor((φ + π)/Δφ)``, so the φ cells tile the circle exactly.
    """
    d_eta, d_phi = model.cell(calorimeter)
    n_phi = int(round(2 * np.pi / d_phi))
    i_eta = np.floor(etas / d_eta).astype(np.int64)
    i_phi = np.floor((np.asarray(phis) + np.pi) / d_phi).astype(np.int64) % n_phi
    return i_eta, i_phi


def _towers(energies, etas, phis, event, model: DetectorModel, calorimeter: str, rng: np.random.Generator):
    """Sum the deposits of each (event, cell), smear, place and threshold the towers.

    Returns ``(event, eta, phi, e, n_deposits)`` of the towers above threshold,
    ordered by event, then η cell, then φ cell.
    """
    d_eta, d_phi = model.cell(calorimeter)
    i_eta, i_phi = cell_indices(etas, phis, model, calorimeter)
    n_phi = int(round(2 * np.pi / d_phi))
    n_eta = 2 * int(np.ceil(model.calo_abs_eta / d_eta)) + 2
    offset = n_eta // 2
    key = (event * n_eta + (i_eta + offset)) * n_phi + i_phi
    _, first, owner, n_deposits = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    summed = np.bincount(owner, weights=energies, minlength=len(first))
    # Draws per tower, in key order: the same event always gives the same towers.
    z_energy = rng.standard_normal(len(first))
    u_eta, u_phi = rng.random((2, len(first)))
    stochastic, constant = ((model.ecal_stochastic, model.ecal_constant) if calorimeter == "ecal"
                            else (model.hcal_stochastic, model.hcal_constant))
    sigma = np.hypot(stochastic / np.sqrt(np.maximum(summed, 1e-9)), constant)
    e_measured = summed * (1 + sigma * z_energy)
    tower_event = event[first]
    tower_eta = (i_eta[first] + u_eta) * d_eta
    tower_phi = (i_phi[first] + u_phi) * d_phi - np.pi
    e_min = model.ecal_tower_e_min if calorimeter == "ecal" else model.hcal_tower_e_min
    keep = e_measured > e_min
    return tower_event[keep], tower_eta[keep], tower_phi[keep], e_measured[keep], n_deposits[keep]


def apply_detector(
    pts: np.ndarray,
    etas: np.ndarray,
    phis: np.ndarray,
    pdgids: np.ndarray,
    charges: np.ndarray,
    rng: np.random.Generator,
    model: DetectorModel = DetectorModel(),
    event: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Reconstruct the candidates of a flat list of visible particles (neutrinos removed).

    ``event`` gives each particle's event number (non-negative integers; ``None``: all
    in one event), so that only deposits of the same event share a tower. Returns a
    dict of equal-length arrays ``event, pt, eta, phi, e, charge, pid_class, n_deposits``,
    sorted by event (tracks first within an event, then ECAL, then HCAL towers).
    Tracks carry the pion mass in their energy; towers are massless.
    """
    n = len(pts)
    event = np.zeros(n, np.int64) if event is None else np.asarray(event, dtype=np.int64)
    cls = pid_classes_from_pdgids(pdgids, charges)
    charged = charges != 0
    # One draw per particle for the tracking efficiency and one for its pT, whether it
    # is tracked or not: the draws do not depend on which particles pass earlier cuts.
    u_track = rng.random(n)
    z_track = rng.standard_normal(n)

    tracked = charged & (np.abs(etas) < model.tracker_abs_eta) & (u_track < model.tracking_efficiency)
    sigma_track = np.hypot(model.track_pt_resolution_const, model.track_pt_resolution_slope * pts)
    track_pt = pts * (1 + sigma_track * z_track)
    is_track = tracked & (track_pt > model.track_pt_min)

    energies = pts * np.cosh(etas)
    in_calo = ~tracked & (np.abs(etas) < model.calo_abs_eta)
    electromagnetic = (cls == PHOTON) | (cls == ELECTRON)
    parts = [(event[is_track], etas[is_track], phis[is_track],
              np.sqrt((track_pt[is_track] * np.cosh(etas[is_track])) ** 2 + PION_MASS**2),
              np.ones(is_track.sum(), np.int64), track_pt[is_track], charges[is_track], cls[is_track])]
    for calorimeter, sel, code in (("ecal", in_calo & electromagnetic, PHOTON),
                                   ("hcal", in_calo & ~electromagnetic, NEUTRAL_HADRON)):
        t_event, t_eta, t_phi, t_e, t_n = _towers(energies[sel], etas[sel], phis[sel], event[sel],
                                                  model, calorimeter, rng)
        parts.append((t_event, t_eta, t_phi, t_e, t_n, t_e / np.cosh(t_eta),
                      np.zeros(len(t_e)), np.full(len(t_e), code, np.int8)))
    columns = [np.concatenate(col) for col in zip(*parts)]
    order = np.argsort(columns[0], kind="stable")
    out_event, eta, phi, e, n_dep, pt, charge, pid_class = (col[order] for col in columns)
    return {
        "event": out_event, "pt": pt, "eta": eta, "phi": phi, "e": e,
        "charge": charge.astype(np.int8), "pid_class": pid_class.astype(np.int8), "n_deposits": n_dep,
    }
