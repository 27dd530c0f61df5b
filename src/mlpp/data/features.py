"""High-level jet features, after the hls4ml LHC jet dataset (arXiv:1804.06913).

Conventions (stated here and on the book page ``book/datasets.md``):

* Angles are ΔR² = Δy² + Δφ² with rapidity y; momentum fractions z_i = pT,i / Σ pT.
* N-subjettiness τ_N^(β) (Thaler, Van Tilburg, arXiv:1011.2268): fastjet-contrib
  ``NormalizedMeasure(β, R0 = jet R)`` with exclusive-kT axes, N = 1, 2, 3, for β = 1, 2.
  τ21 = τ2/τ1 and τ32 = τ3/τ2.
* Energy-correlation ratios (Larkoski, Salam, Thaler arXiv:1305.0007; Larkoski,
  Moult, Neill arXiv:1409.6298; Moult, Necib, Thaler arXiv:1609.07483): fastjet-contrib
  ``EnergyCorrelator`` values, normalised, pT measure: C1^(β) = e2^(β) (β = 0, 1, 2),
  C2^(β) = e3 e1 / e2², D2^(β) = e3 / e2³, D2^(α=1, β), M2^(β), N2^(β) for β = 1, 2.
  energyflow's EFP-based D2 is 0.75× and C2 1.5× these (ordered vs unordered tuples).
* ``mass_mmdt``: mass after modified mass-drop / soft-drop grooming, β = 0, z_cut = 0.1,
  on a Cambridge/Aachen reclustering (arXiv:1307.0007, arXiv:1402.2657).
* ``zlogz`` = Σ z_i ln z_i, ``multiplicity`` = number of stored constituents.
* Substructure uses the stored constituents (at most the card's ``max_constituents``,
  the hardest ones); ``pt``, ``eta`` and ``mass`` are those of the clustered jet.
* Event cards (:mod:`mlpp.data.cards`) store :data:`EVENT_JET_FEATURES` for each of their
  jets: the multiplicity and the β = 1 N-subjettiness values above, computed the same way
  (the costly energy correlators are left out: an event card has hundreds of thousands of jets).
* Paired cards store :data:`UNFOLDING_OBSERVABLES` at each level, the six of OmniFold's Z+jet
  study (Andreassen et al., arXiv:1911.09107): the jet ``mass``, the constituent
  ``multiplicity``, the ``width`` Σ pT,i ΔR_i / Σ pT,i (ΔR to the jet axis), ``tau21`` (β = 1,
  as above), and from the soft-drop-groomed jet (z_cut = 0.1, β = 0, R0 = R, fastjet-contrib
  ``SoftDrop`` on the C/A reclustering, arXiv:1402.2657) its momentum sharing ``zg`` (0 when
  no splitting passes) and ``lnrho`` = ln(m_SD² / pT²) with the ungroomed pT, floored at
  :data:`LN_RHO_FLOOR` (a groomed jet of one massless particle has m_SD = 0).
"""
from __future__ import annotations

import numpy as np

from mlpp.kinematics import masses_from_p4s, pseudorapidities, rapidities_from_p4s, rapidities_from_ptetaes

FEATURE_NAMES = (
    "pt", "eta", "mass", "multiplicity", "zlogz",
    "tau1_b1", "tau2_b1", "tau3_b1", "tau21_b1", "tau32_b1",
    "tau1_b2", "tau2_b2", "tau3_b2", "tau21_b2", "tau32_b2",
    "c1_b0", "c1_b1", "c1_b2", "c2_b1", "c2_b2", "d2_b1", "d2_b2",
    "d2_a1_b1", "d2_a1_b2", "m2_b1", "m2_b2", "n2_b1", "n2_b2",
    "mass_mmdt",
)
#: Per-jet features of an event card (a subset of :data:`FEATURE_NAMES`, same definitions).
EVENT_JET_FEATURES = ("multiplicity", "tau1_b1", "tau2_b1", "tau3_b1", "tau21_b1", "tau32_b1")
#: Per-level observables of a paired card (OmniFold's six, arXiv:1911.09107; module docstring).
UNFOLDING_OBSERVABLES = ("mass", "multiplicity", "width", "tau21", "zg", "lnrho")
#: ln ρ of a jet whose groomed mass is zero (or below e^-20 pT).
LN_RHO_FLOOR = -20.0
SOFT_DROP = {"beta": 0.0, "symmetry_cut": 0.1}


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


def jet_features(pts: np.ndarray, etas: np.ndarray, phis: np.ndarray, es: np.ndarray,
                 mask: np.ndarray, R: float) -> np.ndarray:
    """Features of ``FEATURE_NAMES`` for padded jets.

    ``pts, etas, phis, es``: (n_jets, n_particles) constituents in GeV, with ``mask``
    (n_jets, n_particles) true for real particles. Returns (n_jets, n_features) float32.
    """
    import awkward as ak

    # float64 throughout: a jet mass is a difference of large squares.
    pts, etas, phis, es = (np.asarray(a, dtype=np.float64) for a in (pts, etas, phis, es))
    mask = np.asarray(mask, dtype=bool)
    counts = mask.sum(axis=1)
    cs = _reclustered(pts, etas, phis, es, mask)

    out = {}
    sum_px = (pts * np.cos(phis) * mask).sum(1)
    sum_py = (pts * np.sin(phis) * mask).sum(1)
    sum_pz = (pts * np.sinh(etas) * mask).sum(1)
    sum_e = (es * mask).sum(1)
    jet_pt = np.hypot(sum_px, sum_py)
    out["pt"] = jet_pt
    out["eta"] = pseudorapidities(jet_pt, sum_pz)
    out["mass"] = masses_from_p4s(np.stack([sum_e, sum_px, sum_py, sum_pz], axis=-1))
    out["multiplicity"] = counts.astype(float)
    scalar_pt = (pts * mask).sum(1, keepdims=True)
    z = np.where(mask, pts / np.maximum(scalar_pt, 1e-12), 1.0)
    out["zlogz"] = (z * np.log(z)).sum(1)

    for beta in (1, 2):
        out.update(_nsubjettiness(cs, len(pts), beta, R))

    def ecf(beta: float, npoint: int, angles: int = -1) -> np.ndarray:
        """Normalised generalised ECF ``angles``e``npoint``^(β) (angles = -1: all angles)."""
        values = cs.exclusive_jets_energy_correlator(njets=1, func="generalized", beta=beta, npoint=npoint,
                                                     angles=angles)
        return np.nan_to_num(np.asarray(ak.to_numpy(values), dtype=float))

    # Every ratio is built from a few correlators, each computed once
    # (checked against fastjet-contrib's C2, D2, N2, M2 and generalised D2 classes in the tests).
    e2 = {beta: ecf(float(beta), 2) for beta in (0, 1, 2)}
    for beta in (0, 1, 2):
        out[f"c1_b{beta}"] = e2[beta]
    for beta in (1, 2):
        e3 = ecf(float(beta), 3)
        e3_min2 = ecf(float(beta), 3, angles=2)   # 2e3: the two smallest angles
        e3_min1 = ecf(float(beta), 3, angles=1)   # 1e3: the smallest angle
        out[f"c2_b{beta}"] = _safe_ratio(e3, e2[beta] ** 2)
        out[f"d2_b{beta}"] = _safe_ratio(e3, e2[beta] ** 3)
        out[f"m2_b{beta}"] = _safe_ratio(e3_min1, e2[beta])
        out[f"n2_b{beta}"] = _safe_ratio(e3_min2, e2[beta] ** 2)
        if beta == 1:
            e3_alpha1 = e3
    for beta in (1, 2):
        # D2^(α, β) = e3^(α) / (e2^(β))^(3α/β), here with α = 1.
        out[f"d2_a1_b{beta}"] = _safe_ratio(e3_alpha1, e2[beta] ** (3.0 / beta))
    groomed = cs.exclusive_jets_softdrop_grooming(njets=1, beta=0.0, symmetry_cut=0.1, R0=float(R))
    out["mass_mmdt"] = np.asarray(ak.to_numpy(groomed.msoftdrop), dtype=float).reshape(-1)
    return np.stack([out[name] for name in FEATURE_NAMES], axis=1).astype(np.float32)


def _reclustered(pts: np.ndarray, etas: np.ndarray, phis: np.ndarray, es: np.ndarray, mask: np.ndarray):
    """A FastJet ClusterSequence in which each padded jet (float64 arrays) is one "event",
    reclustered with C/A into one exclusive jet."""
    try:
        import awkward as ak
        import fastjet
    except ImportError as err:  # pragma: no cover - the course pins both
        raise ImportError(f"jet features need fastjet and awkward ({err}); run 'make venv'") from None

    counts = mask.sum(axis=1)
    flat = mask.ravel()
    px = (pts * np.cos(phis)).ravel()[flat]
    py = (pts * np.sin(phis)).ravel()[flat]
    pz = (pts * np.sinh(etas)).ravel()[flat]
    e = es.ravel()[flat]
    events = ak.unflatten(ak.zip({"px": px, "py": py, "pz": pz, "E": e}, with_name="Momentum4D"), counts)
    return fastjet.ClusterSequence(events, fastjet.JetDefinition(fastjet.cambridge_algorithm, 10.0))


def _nsubjettiness(cs, n_jets: int, beta: int, R: float) -> dict[str, np.ndarray]:
    """τ1, τ2, τ3, τ21 and τ32 at ``beta`` of every jet of ``cs`` (see the module docstring)."""
    import awkward as ak

    taus = ak.to_numpy(cs.njettiness(njets=[1, 2, 3], axes_definition="KT_Axes", beta=float(beta), R0=float(R)))
    taus = np.asarray(taus, dtype=float).reshape(n_jets, 3)
    out = {f"tau{n + 1}_b{beta}": taus[:, n] for n in range(3)}
    out[f"tau21_b{beta}"] = _safe_ratio(taus[:, 1], taus[:, 0])
    out[f"tau32_b{beta}"] = _safe_ratio(taus[:, 2], taus[:, 1])
    return out


def event_jet_features(pts: np.ndarray, etas: np.ndarray, phis: np.ndarray, es: np.ndarray,
                       mask: np.ndarray, R: float) -> np.ndarray:
    """:data:`EVENT_JET_FEATURES` of padded jets, as :func:`jet_features` computes them.

    Inputs as for :func:`jet_features`, (n_jets, n_particles); returns (n_jets, 6) float32.
    """
    pts, etas, phis, es = (np.asarray(a, dtype=np.float64) for a in (pts, etas, phis, es))
    mask = np.asarray(mask, dtype=bool)
    out = {"multiplicity": mask.sum(axis=1).astype(float)}
    out.update(_nsubjettiness(_reclustered(pts, etas, phis, es, mask), len(pts), 1, R))
    return np.stack([out[name] for name in EVENT_JET_FEATURES], axis=1).astype(np.float32)


def unfolding_observables(pts: np.ndarray, etas: np.ndarray, phis: np.ndarray, es: np.ndarray,
                          mask: np.ndarray, R: float) -> np.ndarray:
    """:data:`UNFOLDING_OBSERVABLES` of padded jets (inputs as for :func:`jet_features`, every jet
    with at least one constituent): (n_jets, 6) float32."""
    import awkward as ak

    pts, etas, phis, es = (np.asarray(a, dtype=np.float64) for a in (pts, etas, phis, es))
    mask = np.asarray(mask, dtype=bool)
    if not mask.any(axis=1).all():
        raise ValueError("unfolding_observables needs at least one constituent per jet")
    px, py, pz = pts * np.cos(phis) * mask, pts * np.sin(phis) * mask, pts * np.sinh(etas) * mask
    e = es * mask
    jet = np.stack([e.sum(1), px.sum(1), py.sum(1), pz.sum(1)], axis=-1)           # (n, 4): E, px, py, pz
    jet_pt = np.hypot(jet[:, 1], jet[:, 2])
    jet_y = rapidities_from_p4s(jet)
    jet_phi = np.arctan2(jet[:, 2], jet[:, 1])
    # constituent rapidities (tracks carry the pion mass); padding gets y = 0 and weight 0
    y = rapidities_from_ptetaes(pts, etas, es, mask)
    dr = np.hypot(y - jet_y[:, None], np.mod(phis - jet_phi[:, None] + np.pi, 2 * np.pi) - np.pi)
    out = {"mass": masses_from_p4s(jet), "multiplicity": mask.sum(axis=1).astype(float),
           "width": (pts * mask * dr).sum(1) / (pts * mask).sum(1)}
    cs = _reclustered(pts, etas, phis, es, mask)
    out["tau21"] = _nsubjettiness(cs, len(pts), 1, R)["tau21_b1"]
    groomed = cs.exclusive_jets_softdrop_grooming(njets=1, R0=float(R), **SOFT_DROP)
    m_sd = np.asarray(ak.to_numpy(groomed.msoftdrop), dtype=float).reshape(-1)
    out["zg"] = np.clip(np.asarray(ak.to_numpy(groomed.symmetrysoftdrop), dtype=float).reshape(-1), 0.0, None)
    rho = np.nan_to_num(m_sd) ** 2 / jet_pt**2
    out["lnrho"] = np.log(np.maximum(rho, np.exp(LN_RHO_FLOOR)))
    return np.stack([out[name] for name in UNFOLDING_OBSERVABLES], axis=1).astype(np.float32)
