"""Pythia 8 → detector → FastJet: one chunk of labelled jets (or events).

A chunk is the unit of work: ``(card, class_index, chunk_index, n_rows)``. It runs its
own Pythia, seeded from the card seed and the chunk's position, so the arrays do not
depend on how many workers share the chunks or in which order they finish. A card in
``events`` mode (:mod:`mlpp.data.cards`) keeps events, each with its leading jets; a card in
``paired`` mode each event's leading jet at particle and detector level (:mod:`mlpp.data.paired`);
a card in ``tracks`` mode each event's charged particles and their hits in the toy tracker
(:func:`mlpp.tracking.generate_chunk`: no detector, no jets).
"""
from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from mlpp import kinematics
from mlpp.data.cards import DAUGHTER_KINDS, Card
from mlpp.data.detector import NEUTRINOS, DetectorModel, apply_detector

EVENTS_PER_BATCH = 100
MAX_EVENTS_PER_BATCH = 400
MAX_EVENTS_PER_JET = 200  # a class that keeps fewer than 1 jet in 200 events is a broken card
# Event cards: jets below this pT are not clustered into candidates for the leading jets
# (the window of the card applies to the leading jet only; the others have no pT cut).
EVENT_JET_PT_MIN = 20.0  # GeV


def chunk_seed(card_seed: int, class_index: int, chunk_index: int) -> int:
    """Pythia seed (1..900 000 000) of one chunk, from a hash so nearby chunks are unrelated."""
    digest = hashlib.sha256(f"{card_seed}/{class_index}/{chunk_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % 900_000_000 + 1


def make_pythia(card: Card, class_index: int, seed: int):
    """A silent, initialised Pythia for one class of ``card``."""
    try:
        import pythia8mc
    except ImportError:
        raise ImportError("event generation needs pythia8mc==8.317.2: run 'make venv'") from None
    pythia = pythia8mc.Pythia("", False)
    lines = [
        f"Beams:eCM = {card.ecm}",
        "Random:setSeed = on", f"Random:seed = {seed}",
        "Print:quiet = on", "Next:numberCount = 0", "Next:numberShowEvent = 0",
        "Next:numberShowInfo = 0", "Next:numberShowProcess = 0",
        *card.settings, *card.classes[class_index].settings,
    ]
    for line in lines:
        if not pythia.readString(line):
            raise ValueError(f"card {card.name}: Pythia rejected the setting {line!r}")
    if not pythia.init():
        raise RuntimeError(f"card {card.name}: Pythia failed to initialise class {card.classes[class_index].name}")
    return pythia


class _ChargeTable:
    """Charges by PDG id, looked up once per id from Pythia's particle data."""

    def __init__(self, pythia):
        self._data = pythia.particleData
        self._known: dict[int, float] = {}

    def __call__(self, pdgids: np.ndarray) -> np.ndarray:
        uniq, inverse = np.unique(pdgids, return_inverse=True)
        values = np.empty(len(uniq))
        for i, pid in enumerate(uniq.tolist()):
            if pid not in self._known:
                self._known[pid] = float(self._data.charge(pid))
            values[i] = self._known[pid]
        return values[inverse]


def _truth_ok(rule: dict, jet_y: float, jet_phi: float, R: float, partons: dict) -> bool:
    """Does a jet pass its class's truth rule? ``partons`` holds the hard-process record."""
    kind = rule["rule"]
    if kind == "any":
        return True
    r2 = R * R
    ids, st = partons["id"], partons["status"]
    dr2 = kinematics.delta_r(partons["y"], partons["phi"], jet_y, jet_phi) ** 2
    if kind == "parton":
        # Nearest outgoing hard-process parton decides the flavour.
        is_parton = (np.abs(ids) <= 6) | (ids == 21)
        outgoing = np.flatnonzero((np.abs(st) == 23) & is_parton)
        if len(outgoing) == 0:
            return False
        nearest = outgoing[np.argmin(dr2[outgoing])]
        return bool(dr2[nearest] < r2 and abs(ids[nearest]) in rule["pdgids"])
    # resonance: the resonance within R and its decay quarks inside the jet.
    resonances = (np.abs(ids) == rule["pdgid"]) & (np.abs(st) == 22) & (dr2 < r2)
    if not resonances.any():
        return False
    inside = (np.abs(st) == 23) & (dr2 < r2)
    needed = list(rule.get("contains", []))
    if needed.count("b") > np.count_nonzero(inside & (np.abs(ids) == 5)):
        return False
    light = inside & (np.abs(ids) >= min(DAUGHTER_KINDS["q"])) & (np.abs(ids) <= max(DAUGHTER_KINDS["q"]))
    return needed.count("q") <= np.count_nonzero(light)


def _next_batch_size(missing_jets: int, kept_jets: int, events: int) -> int:
    """Events to ask Pythia for next: large batches amortise the per-batch cost, and the
    efficiency seen so far keeps the last batch from overshooting much."""
    if kept_jets == 0:
        return EVENTS_PER_BATCH
    needed = int(np.ceil(1.05 * missing_jets * events / kept_jets)) + 5
    return int(np.clip(needed, 10, MAX_EVENTS_PER_BATCH))


class EventBatches:
    """Pythia batches until ``kept()`` reaches ``wanted``: iterate for ``(first event index, batch)``.

    One loop for every mode, with one guard: a class that keeps fewer than one row in
    ``MAX_EVENTS_PER_JET`` events is a broken card, and the error says which and what to check.
    ``events`` counts the events generated so far (the chunk's bookkeeping).
    """

    def __init__(self, pythia, wanted: int, kept: Callable[[], int], what: str, hint: str) -> None:
        self.pythia, self.wanted, self.kept, self.what, self.hint = pythia, wanted, kept, what, hint
        self.events = 0

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        while self.kept() < self.wanted:
            if self.events > MAX_EVENTS_PER_JET * max(self.wanted, 10):
                raise RuntimeError(f"{self.what}: only {self.kept()} kept of {self.events} events; {self.hint}")
            batch = self.pythia.nextBatch(_next_batch_size(self.wanted - self.kept(), self.kept(), self.events))
            first, self.events = self.events, self.events + len(batch)
            yield first, batch


def generate_chunk(card: Card, class_index: int, chunk_index: int, n_jets: int,
                   detector: DetectorModel | None = None) -> dict[str, np.ndarray]:
    """Generate ``n_jets`` labelled jets of one class of ``card``, seen by ``detector`` (default: the
    card's, :attr:`mlpp.data.cards.Card.detector`).

    Returns padded constituent arrays ``(n_jets, max_constituents)`` (pt, eta, phi, e
    in GeV; charge; pid_class; mask), the jet four-vector, the label and bookkeeping
    (events used, seconds). For an event card, see :func:`_generate_events`; for a tracks card
    (``class_index`` 0, ``n_jets`` events), :func:`mlpp.tracking.generate_chunk`.
    """
    if card.is_tracks:
        from mlpp import tracking

        return tracking.generate_chunk(card, chunk_index, n_jets)
    import fastjet

    detector = card.detector if detector is None else detector
    seed = chunk_seed(card.seed, class_index, chunk_index)
    start = time.perf_counter()
    pythia = make_pythia(card, class_index, seed)
    charge_of = _ChargeTable(pythia)
    rng = np.random.default_rng(seed)
    spec, cls = card.jets, card.classes[class_index]
    algorithm = {"antikt": fastjet.antikt_algorithm, "kt": fastjet.kt_algorithm,
                 "cambridge": fastjet.cambridge_algorithm}[spec.algorithm]
    jet_def = fastjet.JetDefinition(algorithm, spec.R)
    P = spec.max_constituents

    if card.is_events:
        return _generate_events(card, cls, pythia, charge_of, rng, detector, jet_def, n_jets, start)
    if card.is_paired:
        from mlpp.data.paired import generate_paired

        return generate_paired(card, cls, pythia, charge_of, rng, detector, jet_def, n_jets, chunk_index, start)

    kept: list[dict] = []
    batches = EventBatches(pythia, n_jets, lambda: len(kept), f"card {card.name}, class {cls.name} (jets)",
                           "check the pT window and the truth rule")
    for _, batch in batches:
        b = _reconstruct(batch, charge_of, rng, detector, jet_def, 0.5 * spec.pt_min)
        counts, ids, status, px, py, pz, e, event_of = (
            b[k] for k in ("counts", "ids", "status", "px", "py", "pz", "e", "event_of"))
        seen, jet_start, cons_start, cons_flat, offsets = (
            b[k] for k in ("seen", "jet_start", "cons_start", "cons_flat", "offsets"))
        jpt, jeta, jy, jphi, je, jpx, jpy, jpz = (b[k] for k in ("jpt", "jeta", "jy", "jphi", "je", "jpx", "jpy", "jpz"))
        in_window = _in_window(spec, jpt, jeta, jy)

        hard_idx = np.flatnonzero((np.abs(status) == 22) | (np.abs(status) == 23))
        hard_start = np.searchsorted(event_of[hard_idx], np.arange(len(counts) + 1))
        hpt, _, hphi_all = kinematics.ptetaphi_from_momenta(px[hard_idx], py[hard_idx], pz[hard_idx])
        hy_all = kinematics.rapidities(hpt, pz[hard_idx], e[hard_idx])
        for iev in range(len(counts)):
            first, last = jet_start[iev], jet_start[iev + 1]
            if first == last:
                continue
            # inclusive_jets is not sorted: take the leading ones by pT.
            leading = first + np.argsort(-jpt[first:last], kind="stable")[: spec.jets_per_event]
            leading = leading[in_window[leading]]
            if len(leading) == 0:
                continue
            h = slice(hard_start[iev], hard_start[iev + 1])
            partons = {"id": ids[hard_idx[h]], "status": status[hard_idx[h]], "y": hy_all[h], "phi": hphi_all[h]}
            for j in leading:
                if not _truth_ok(cls.truth, jy[j], jphi[j], spec.R, partons):
                    continue
                idx = cons_flat[cons_start[j]:cons_start[j + 1]] + offsets[iev]
                kept.append(_pack_jet(seen, idx, P, (jpt[j], jeta[j], jphi[j], je[j], jpx[j], jpy[j], jpz[j])))
                if len(kept) == n_jets:
                    break
            if len(kept) == n_jets:
                break
    seconds = time.perf_counter() - start
    out = {key: np.stack([jet[key] for jet in kept]) for key in kept[0]}
    out["label"] = np.full(n_jets, cls.label, dtype=np.int8)
    out["events"] = np.array(batches.events)
    out["seconds"] = np.array(seconds)
    out["worker_pid"] = np.array(os.getpid())
    return out


def _reconstruct(batch, charge_of: _ChargeTable, rng: np.random.Generator, detector: DetectorModel,
                 jet_def, min_pt: float) -> dict:
    """Detector and FastJet for one Pythia batch, flattened over its events.

    Returns the generator record (``counts`` particles per event, ``ids``, ``status``,
    ``px, py, pz, e``, ``event_of``), the detector's candidates ``seen`` and every jet above
    ``min_pt``: ``jet_start`` (first jet of each event), the jets' ``jpt, jeta, jy, jphi, je,
    jpx, jpy, jpz`` and their constituents ``cons_flat[cons_start[j]:cons_start[j + 1]]``
    (indices into the event's candidates, which start at ``offsets[event]``).
    """
    import awkward as ak

    prt = batch.prt
    counts = ak.to_numpy(ak.num(prt))
    ids = ak.to_numpy(ak.flatten(prt.id))
    status = ak.to_numpy(ak.flatten(prt.status))
    px = ak.to_numpy(ak.flatten(prt.p.px))
    py = ak.to_numpy(ak.flatten(prt.p.py))
    pz = ak.to_numpy(ak.flatten(prt.p.pz))
    e = ak.to_numpy(ak.flatten(prt.p.e))
    event_of = np.repeat(np.arange(len(counts)), counts)

    visible = np.flatnonzero((status > 0) & ~np.isin(np.abs(ids), NEUTRINOS))
    pt, eta, phi = kinematics.ptetaphi_from_momenta(px[visible], py[visible], pz[visible])
    # Beyond the calorimeters nothing is seen: skip those particles before drawing random numbers.
    covered = np.abs(eta) < detector.calo_abs_eta
    visible, pt, eta, phi = visible[covered], pt[covered], eta[covered], phi[covered]
    seen = apply_detector(pt, eta, phi, ids[visible], charge_of(ids[visible]), rng, detector,
                          event=event_of[visible])
    seen_counts = np.bincount(seen["event"], minlength=len(counts))
    return {"counts": counts, "ids": ids, "status": status, "px": px, "py": py, "pz": pz, "e": e,
            "event_of": event_of, "seen": seen, **_cluster(seen, seen_counts, jet_def, min_pt)}


def _cluster(seen: dict, seen_counts: np.ndarray, jet_def, min_pt: float) -> dict:
    """FastJet on flat particles ``seen`` (``pt, eta, phi, e``, sorted by event, ``seen_counts``
    per event): every jet above ``min_pt``, flattened as :func:`_reconstruct` describes."""
    import awkward as ak
    import fastjet

    spx = seen["pt"] * np.cos(seen["phi"])
    spy = seen["pt"] * np.sin(seen["phi"])
    spz = seen["pt"] * np.sinh(seen["eta"])
    particles = ak.unflatten(ak.zip({"px": spx, "py": spy, "pz": spz, "E": seen["e"]}), seen_counts)
    cs = fastjet.ClusterSequence(particles, jet_def)
    jets = cs.inclusive_jets(min_pt=min_pt)
    cons_index = cs.constituent_index(min_pt=min_pt)
    # Flatten once per batch: indexing awkward arrays event by event costs more than Pythia.
    jets_per_event = ak.to_numpy(ak.num(jets))
    jet_start = np.concatenate([[0], np.cumsum(jets_per_event)])
    jpx, jpy, jpz, je = (ak.to_numpy(ak.flatten(getattr(jets, c))) for c in ("px", "py", "pz", "E"))
    n_cons = ak.to_numpy(ak.flatten(ak.num(cons_index, axis=2)))
    cons_start = np.concatenate([[0], np.cumsum(n_cons)])
    cons_flat = ak.to_numpy(ak.flatten(cons_index, axis=None))
    offsets = np.concatenate([[0], np.cumsum(seen_counts)])
    jpt = np.hypot(jpx, jpy)
    jeta = kinematics.pseudorapidities(jpt, jpz)
    jy = kinematics.rapidities(jpt, jpz, je)
    jphi = np.arctan2(jpy, jpx)
    return {"jet_start": jet_start, "cons_start": cons_start, "cons_flat": cons_flat, "offsets": offsets,
            "jpt": jpt, "jeta": jeta, "jy": jy, "jphi": jphi, "je": je, "jpx": jpx, "jpy": jpy, "jpz": jpz}


def _in_window(spec, jpt: np.ndarray, jeta: np.ndarray, jy: np.ndarray) -> np.ndarray:
    """Jets inside the card's pT window and acceptance."""
    in_window = (jpt >= spec.pt_min) & (jpt < spec.pt_max)
    if spec.abs_eta_max is not None:
        in_window &= np.abs(jeta) < spec.abs_eta_max
    if spec.abs_rapidity_max is not None:
        in_window &= np.abs(jy) < spec.abs_rapidity_max
    return in_window


def _generate_events(card: Card, cls, pythia, charge_of: _ChargeTable, rng: np.random.Generator,
                     detector: DetectorModel, jet_def, n_events_wanted: int, start: float) -> dict[str, np.ndarray]:
    """Events of an event card: the ``jets_per_event`` leading jets of each event, kept when the
    leading one is in the card's pT window and acceptance (the others have no cut).

    Returns constituent arrays ``(n, jets_per_event, max_constituents)``, ``jet_p4``
    ``(n, jets_per_event, 4)`` = (pT, η, φ, m) in decreasing pT, ``label`` (n,) and bookkeeping.
    """
    spec = card.jets
    N, P = spec.jets_per_event, spec.max_constituents
    kept: list[list[dict]] = []
    batches = EventBatches(pythia, n_events_wanted, lambda: len(kept), f"card {card.name}, class {cls.name} (events)",
                           "check the leading jet's pT window")
    for _, batch in batches:
        b = _reconstruct(batch, charge_of, rng, detector, jet_def, EVENT_JET_PT_MIN)
        in_window = _in_window(spec, b["jpt"], b["jeta"], b["jy"])
        jet_start, jpt, cons_start = b["jet_start"], b["jpt"], b["cons_start"]
        for iev in range(len(b["counts"])):
            first, last = jet_start[iev], jet_start[iev + 1]
            if last - first < N:
                continue
            # inclusive_jets is not sorted: the leading jets by pT, the first one the trigger jet.
            leading = first + np.argsort(-jpt[first:last], kind="stable")[:N]
            if not in_window[leading[0]]:
                continue
            kept.append([
                _pack_jet(b["seen"], b["cons_flat"][cons_start[j]:cons_start[j + 1]] + b["offsets"][iev], P,
                          tuple(b[k][j] for k in ("jpt", "jeta", "jphi", "je", "jpx", "jpy", "jpz")))
                for j in leading])
            if len(kept) == n_events_wanted:
                break
    seconds = time.perf_counter() - start
    out = {key: np.stack([np.stack([jet[key] for jet in event]) for event in kept]) for key in kept[0][0]}
    out["label"] = np.full(n_events_wanted, cls.label, dtype=np.int8)
    out["events"] = np.array(batches.events)
    out["seconds"] = np.array(seconds)
    out["worker_pid"] = np.array(os.getpid())
    return out


def _pack_jet(seen: dict, idx: np.ndarray, P: int, jet: tuple) -> dict:
    """Constituents of one jet, pT-ordered, padded or truncated to ``P``."""
    pts = seen["pt"][idx]
    order = np.argsort(-pts, kind="stable")[:P]
    idx = idx[order]
    n = len(idx)
    jpt, jeta, jphi, je, jpx, jpy, jpz = jet
    phis = seen["phi"][idx]
    phis = jphi + kinematics.delta_phi(phis, jphi)  # within π of the jet axis
    packed = {
        "pt": np.zeros(P, np.float32), "eta": np.zeros(P, np.float32), "phi": np.zeros(P, np.float32),
        "e": np.zeros(P, np.float32), "charge": np.zeros(P, np.int8), "pid_class": np.full(P, -1, np.int8),
        "mask": np.zeros(P, bool),
    }
    packed["pt"][:n] = seen["pt"][idx]
    packed["eta"][:n] = seen["eta"][idx]
    packed["phi"][:n] = phis
    packed["e"][:n] = seen["e"][idx]
    packed["charge"][:n] = seen["charge"][idx]
    packed["pid_class"][:n] = seen["pid_class"][idx]
    packed["mask"][:n] = True
    m2 = je**2 - jpx**2 - jpy**2 - jpz**2
    packed["jet_p4"] = np.array([jpt, jeta, jphi, np.sqrt(max(m2, 0.0))], dtype=np.float64)
    return packed
