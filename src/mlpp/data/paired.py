"""Paired cards: each event's leading jet at particle level and at detector level, for unfolding.

The particle level ("generator" or "truth" level) clusters the stable visible particles of the
Pythia event, before the detector: every final-state particle except neutrinos, with |η| below
:data:`PARTICLE_ABS_ETA_MAX`. The detector level clusters the course detector's candidates of the
same event (:mod:`mlpp.data.detector`), exactly as jet and event cards do. Both use the card's jet
definition, and each keeps its leading jet among the jets above :data:`JET_PT_MIN`.

An event is stored when the recoiling boson (``paired.boson``, its last copy in the event record,
i.e. after its own recoils, before it decays) has pT above ``paired.boson_pt_min`` and the leading
jet passes the card's window (pT and acceptance) at the particle level, at the detector level or
at both. Nothing else is dropped:

* ``pass_particle`` / ``pass_detector``: the leading jet of that level is in the window;
* ``dr``: ΔR (rapidity–azimuth) between the two leading jets; ``matched``: ``dr < match_dr``;
* a *miss* passes at particle level but not (matched) at detector level, a *fake* the reverse;
  a level without any jet above :data:`JET_PT_MIN` has an all-zero jet and fails.

Each row carries an ``event`` number, ``chunk_index * EVENT_ID_STRIDE`` + the event's position
in its chunk's Pythia run, so that a row can be traced back to its event (with its class).
"""
from __future__ import annotations

import os
import time

import numpy as np

from mlpp import kinematics
from mlpp.data.dataset import LEVELS
from mlpp.data.detector import NEUTRINOS, DetectorModel, pid_classes_from_pdgids
#: Jets below this pT (GeV) are not candidates for an event's leading jet (as in the OmniFold samples).
JET_PT_MIN = 10.0
#: Stable visible particles beyond this |η| are left out of the particle level.
PARTICLE_ABS_ETA_MAX = 5.0
EVENT_ID_STRIDE = 10**8


def boson_pt(ids: np.ndarray, px: np.ndarray, py: np.ndarray, event_of: np.ndarray, n_events: int,
             pdgid: int) -> np.ndarray:
    """pT of the last copy of particle ``|pdgid|`` in each event's record: (n_events,), 0 where there is none."""
    rows = np.flatnonzero(np.abs(ids) == abs(pdgid))
    out = np.zeros(n_events)
    # The record is ordered by event, and within an event the last copy comes last: later rows overwrite.
    out[event_of[rows]] = np.hypot(px[rows], py[rows])
    return out


def particle_level(b: dict, charge_of) -> tuple[dict, np.ndarray]:
    """The stable visible particles of a batch record ``b`` (:func:`mlpp.data.generate._reconstruct`)
    as candidates ``pt, eta, phi, e, charge, pid_class, event`` and their count per event."""
    ids, status = b["ids"], b["status"]
    visible = np.flatnonzero((status > 0) & ~np.isin(np.abs(ids), NEUTRINOS))
    pt, eta, phi = kinematics.ptetaphi_from_momenta(b["px"][visible], b["py"][visible], b["pz"][visible])
    inside = np.isfinite(eta) & (np.abs(eta) < PARTICLE_ABS_ETA_MAX)
    visible, pt, eta, phi = visible[inside], pt[inside], eta[inside], phi[inside]
    charge = charge_of(ids[visible])
    parts = {"pt": pt, "eta": eta, "phi": phi, "e": b["e"][visible], "charge": charge.astype(np.int8),
             "pid_class": pid_classes_from_pdgids(ids[visible], charge), "event": b["event_of"][visible]}
    return parts, np.bincount(parts["event"], minlength=len(b["counts"]))


def _leading(jets: dict, iev: int) -> int | None:
    """Index of the leading jet of event ``iev`` among the flattened ``jets`` (None: no jet)."""
    first, last = jets["jet_start"][iev], jets["jet_start"][iev + 1]
    if first == last:
        return None
    return int(first + np.argmax(jets["jpt"][first:last]))  # inclusive_jets is not sorted


def _empty_jet(P: int) -> dict:
    return {"pt": np.zeros(P, np.float32), "eta": np.zeros(P, np.float32), "phi": np.zeros(P, np.float32),
            "e": np.zeros(P, np.float32), "charge": np.zeros(P, np.int8), "pid_class": np.full(P, -1, np.int8),
            "mask": np.zeros(P, bool), "jet_p4": np.zeros(4)}


def generate_paired(card, cls, pythia, charge_of, rng: np.random.Generator, detector: DetectorModel, jet_def,
                    n_wanted: int, chunk_index: int, start: float) -> dict[str, np.ndarray]:
    """``n_wanted`` events of one variant (class) of a paired card.

    Returns per level (``particle_*``, ``detector_*``) the padded constituents
    ``(n, max_constituents)`` and ``jet_p4`` ``(n, 4)`` = (pT, η, φ, m) of the leading jet, and per event
    ``event``, ``boson_pt``, ``pass_particle``, ``pass_detector``, ``dr``, ``matched``, ``label`` and
    the bookkeeping of :func:`mlpp.data.generate.generate_chunk`.
    """
    from mlpp.data.generate import EventBatches, _cluster, _in_window, _pack_jet, _reconstruct

    spec, P = card.jets, card.jets.max_constituents
    boson, boson_pt_min, match_dr = (card.paired[k] for k in ("boson", "boson_pt_min", "match_dr"))
    rows: list[dict] = []
    batches = EventBatches(pythia, n_wanted, lambda: len(rows), f"card {card.name}, class {cls.name} (paired)",
                           "check the boson's pT cut and the jet window")
    for first_event, batch in batches:
        b = _reconstruct(batch, charge_of, rng, detector, jet_def, JET_PT_MIN)
        truth, truth_counts = particle_level(b, charge_of)
        t = _cluster(truth, truth_counts, jet_def, JET_PT_MIN)
        n_batch = len(b["counts"])
        zpt = boson_pt(b["ids"], b["px"], b["py"], b["event_of"], n_batch, boson)
        levels = {"particle": (t, truth, _in_window(spec, t["jpt"], t["jeta"], t["jy"])),
                  "detector": (b, b["seen"], _in_window(spec, b["jpt"], b["jeta"], b["jy"]))}
        for iev in range(n_batch):
            if zpt[iev] <= boson_pt_min:
                continue
            lead = {level: _leading(jets, iev) for level, (jets, _, _) in levels.items()}
            passed = {level: lead[level] is not None and bool(levels[level][2][lead[level]]) for level in LEVELS}
            if not any(passed.values()):
                continue
            row = {"event": chunk_index * EVENT_ID_STRIDE + first_event + iev, "boson_pt": zpt[iev],
                   "pass_particle": passed["particle"], "pass_detector": passed["detector"]}
            for level, (jets, parts, _) in levels.items():
                j = lead[level]
                packed = _empty_jet(P) if j is None else _pack_jet(
                    parts, jets["cons_flat"][jets["cons_start"][j]:jets["cons_start"][j + 1]] + jets["offsets"][iev],
                    P, tuple(jets[k][j] for k in ("jpt", "jeta", "jphi", "je", "jpx", "jpy", "jpz")))
                row.update({f"{level}_{key}": value for key, value in packed.items()})
            jp, jd = lead["particle"], lead["detector"]
            row["dr"] = (np.inf if jp is None or jd is None else
                         float(kinematics.delta_r(t["jy"][jp], t["jphi"][jp], b["jy"][jd], b["jphi"][jd])))
            row["matched"] = row["dr"] < match_dr
            rows.append(row)
            if len(rows) == n_wanted:
                break
    out = {key: np.stack([np.asarray(row[key]) for row in rows]) for key in rows[0]}
    out["event"] = out["event"].astype(np.int64)
    out["label"] = np.full(n_wanted, cls.label, dtype=np.int8)
    out["events"] = np.array(batches.events)
    out["seconds"] = np.array(time.perf_counter() - start)
    out["worker_pid"] = np.array(os.getpid())
    return out
