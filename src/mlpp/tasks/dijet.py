"""The ``dijet`` thread: an LHC-Olympics-like bump hunt in m_JJ (Lecture 08, Part B).

The ``dijet`` card (``datasets/dijet.yml``) holds events, each with its two leading anti-kT
R = 1.0 jets: QCD dijets (label 0) and W′ (3.5 TeV) → W (500 GeV) Z (100 GeV) → 4 quarks
(label 1). This module owns what every notebook of the bump hunt shares: the dijet mass, the
four m_JJ-independent features, the signal region and sidebands, the disjoint pools of
events, and the data set with an injected signal fraction. The weakly supervised
classifiers (CWoLa, k-folding) are written in the notebooks::

    from mlpp.tasks import dijet
    events = dijet.load()                          # EventDataset, rows are events
    pools = dijet.pools(events)                    # disjoint background / signal pools
    data = dijet.inject(pools.background, pools.signal, signal_fraction=0.01, seed=0)
    x, m = dijet.features(data), dijet.mjj(data)   # (n, 4) inputs, (n,) m_JJ in GeV
    sr, sb = dijet.in_signal_region(m), dijet.in_sidebands(m)
    dijet.region_counts(data)                      # truth: S, B, S/B and S/√B in the signal region

Conventions. The two leading jets are ordered by mass for the features: J1 is the lighter
jet, J2 the heavier (as in the LHC Olympics R&D features, arXiv:2101.08320, and CATHODE,
arXiv:2109.00546). Masses are in GeV. τ21 = τ2/τ1 with β = 1 (:mod:`mlpp.data.features`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlpp import settings
from mlpp.data import EventDataset

CARD = "dijet"
#: Labels of the card's classes.
BACKGROUND, SIGNAL = 0, 1
#: m_JJ window [GeV] around the 3.5 TeV resonance: CATHODE's signal region (arXiv:2109.00546).
SIGNAL_REGION: tuple[float, float] = (3300.0, 3700.0)
#: m_JJ sidebands [GeV], 400 GeV on each side of the signal region, where the classifier of
#: CWoLa hunting learns "background-like" events.
SIDEBANDS: tuple[tuple[float, float], tuple[float, float]] = ((2900.0, 3300.0), (3700.0, 4100.0))
#: The inputs of the bump hunt, none of which scales with m_JJ: the lighter jet's mass, the mass
#: difference of the two jets (≥ 0) and τ21 of the lighter and of the heavier jet.
FEATURES: tuple[str, ...] = ("mj1", "delta_mj", "tau21_j1", "tau21_j2")
#: Every name :func:`features` knows. ``pt_j1``, ``pt_j2`` (the jets' pT, GeV) and ``mjj`` grow
#: with m_JJ: a classifier that sees them learns the sidebands from the signal region instead of
#: the signal, and its cut sculpts a bump into the background (the lecture's counter-example).
KNOWN_FEATURES: tuple[str, ...] = FEATURES + ("mj2", "tau32_j1", "tau32_j2", "pt_j1", "pt_j2", "mjj")
#: Fractions of the stored background events in the pools of :func:`pools`, in stored order.
BACKGROUND_POOLS: dict[str, float] = {"background": 0.5, "reference": 0.25, "test": 0.25}
#: Fractions of the stored signal events in the pools of :func:`pools`.
SIGNAL_POOLS: dict[str, float] = {"signal": 0.5, "test": 0.5}


def load(tier: str | None = None) -> EventDataset:
    """The ``dijet`` events of ``tier`` (default ``$MLPP_TIER``), generated on first use."""
    from mlpp import data

    events = data.load(CARD, tier=settings.tier(tier))
    _check_card(events)
    return events


def mjj(events: EventDataset) -> np.ndarray:
    """Dijet invariant mass of the two leading jets: (n,) float64, GeV."""
    return events.mjj


def _by_mass(events: EventDataset) -> tuple[np.ndarray, np.ndarray]:
    """Per-event indices (n,) of the lighter and the heavier of the two leading jets."""
    heavier_first = events.jets[:, 1, 3] > events.jets[:, 0, 3]
    light = np.where(heavier_first, 0, 1)
    return light, 1 - light


def features(events: EventDataset, names: tuple[str, ...] = FEATURES) -> np.ndarray:
    """The features ``names`` (default :data:`FEATURES`) of every event: (n, len(names)) float64.

    J1 is the lighter of the two leading jets and J2 the heavier: ``mj1``, ``mj2`` their masses,
    ``delta_mj`` = m_J2 − m_J1, ``tau21_j1`` … their τ21 and τ32, ``pt_j1``, ``pt_j2`` their pT
    and ``mjj`` the dijet mass (see :data:`KNOWN_FEATURES` for which depend on m_JJ).
    """
    unknown = [n for n in names if n not in KNOWN_FEATURES]
    if unknown:
        raise KeyError(f"unknown dijet feature(s) {unknown}; known: {', '.join(KNOWN_FEATURES)}")
    rows = np.arange(len(events))
    light, heavy = _by_mass(events)
    per_jet = {
        "m": events.jets[..., 3], "pt": events.jets[..., 0],
        "tau21": events.feature("tau21_b1"), "tau32": events.feature("tau32_b1"),
    }  # each (n, 2), jets in pT order

    def jet_value(kind: str, which: np.ndarray) -> np.ndarray:
        return per_jet[kind][rows, which].astype(np.float64)

    columns = {
        "mj1": lambda: jet_value("m", light), "mj2": lambda: jet_value("m", heavy),
        "delta_mj": lambda: jet_value("m", heavy) - jet_value("m", light),
        "tau21_j1": lambda: jet_value("tau21", light), "tau21_j2": lambda: jet_value("tau21", heavy),
        "tau32_j1": lambda: jet_value("tau32", light), "tau32_j2": lambda: jet_value("tau32", heavy),
        "pt_j1": lambda: jet_value("pt", light), "pt_j2": lambda: jet_value("pt", heavy),
        "mjj": lambda: mjj(events),
    }
    return np.stack([columns[name]() for name in names], axis=1) if names else np.empty((len(events), 0))


def in_signal_region(m: np.ndarray) -> np.ndarray:
    """Boolean mask (n,) of the events whose m_JJ [GeV] lies in :data:`SIGNAL_REGION` (lower edge included)."""
    lo, hi = SIGNAL_REGION
    m = np.asarray(m)
    return (m >= lo) & (m < hi)


def in_sidebands(m: np.ndarray) -> np.ndarray:
    """Boolean mask (n,) of the events whose m_JJ [GeV] lies in one of the :data:`SIDEBANDS`."""
    m = np.asarray(m)
    return np.any([(m >= lo) & (m < hi) for lo, hi in SIDEBANDS], axis=0)


@dataclass(frozen=True)
class Pools:
    """Disjoint parts of the card's events (consecutive slices of the seeded stored order).

    ``background``: QCD events to build the "data" from (:func:`inject`); ``reference``: more QCD
    events, a perfectly modelled background for the idealised classifier (data vs background in
    the signal region); ``test_background`` and ``test_signal``: never trained on, for the ROC and
    SIC curves; ``signal``: W′ events that :func:`inject` draws from (and the supervised bound
    may train on).
    """

    background: EventDataset
    reference: EventDataset
    test_background: EventDataset
    signal: EventDataset
    test_signal: EventDataset


def _slices(n: int, fractions: dict[str, float]) -> dict[str, slice]:
    from mlpp.data.dataset import split_slices

    return dict(zip(fractions, split_slices(n, tuple(fractions.values()))))


def pools(events: EventDataset) -> Pools:
    """Split ``events`` into the disjoint :class:`Pools` (:data:`BACKGROUND_POOLS`, :data:`SIGNAL_POOLS`)."""
    _check_card(events)
    bkg = events.subset(events.labels == BACKGROUND)
    sig = events.subset(events.labels == SIGNAL)
    b, s = _slices(len(bkg), BACKGROUND_POOLS), _slices(len(sig), SIGNAL_POOLS)
    return Pools(background=bkg.subset(b["background"]), reference=bkg.subset(b["reference"]),
                 test_background=bkg.subset(b["test"]), signal=sig.subset(s["signal"]),
                 test_signal=sig.subset(s["test"]))


def n_injected(n_background: int, signal_fraction: float) -> int:
    """Signal events that :func:`inject` adds to ``n_background`` events: round(fraction × n_background)."""
    if signal_fraction < 0:
        raise ValueError(f"signal_fraction must be >= 0, not {signal_fraction}")
    return int(round(signal_fraction * n_background))


def inject(background: EventDataset, signal: EventDataset, signal_fraction: float, seed: int = 0) -> EventDataset:
    """Every event of ``background`` plus a seeded random subset of ``signal``, shuffled.

    ``signal_fraction`` is S/B over the whole sample (before any m_JJ cut): the data set gets
    :func:`n_injected` = round(``signal_fraction`` × len(background)) signal events. The LHC
    Olympics R&D benchmark, 1000 signal events in 1,000,000 background events, is 0.001 (CATHODE,
    arXiv:2109.00546); S/B in the signal region is larger, see :func:`region_counts`. For one
    ``seed`` the chosen signal events are nested: those of a smaller fraction are among those
    of a larger one, so a scan of the fraction only adds events. ``labels`` keep the truth
    (0 background, 1 signal) for evaluation; a weakly supervised classifier must not use them.
    """
    for part, name in ((background, "background"), (signal, "signal")):
        _check_card(part)
        wanted = BACKGROUND if name == "background" else SIGNAL
        if np.any(part.labels != wanted):
            raise ValueError(f"inject: the {name} events must all have label {wanted}")
    n_sig = n_injected(len(background), signal_fraction)
    if n_sig > len(signal):
        raise ValueError(f"inject: signal_fraction {signal_fraction} needs {n_sig} signal events but the pool has "
                         f"{len(signal)}: use a smaller fraction or the full tier")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.permutation(len(signal))[:n_sig])
    sig = signal.subset(chosen)
    order = rng.permutation(len(background) + n_sig)
    data = EventDataset(
        name=f"{CARD}+signal", class_names=list(background.class_names),
        labels=np.concatenate([background.labels, sig.labels])[order],
        jets=np.concatenate([background.jets, sig.jets])[order],
        features=np.concatenate([background.features, sig.features])[order],
        feature_names=list(background.feature_names),
        meta=dict(background.meta, injected={"signal_fraction": signal_fraction, "n_signal": n_sig, "seed": seed}),
    )
    return data


def region_counts(events: EventDataset) -> dict[str, float]:
    """Truth counts in the signal region: ``S``, ``B``, ``S/B`` and ``S/sqrt(B)`` (a yardstick, the
    significance of a perfect cut-and-count before any classifier), and ``S_total``, ``B_total``."""
    sr = in_signal_region(mjj(events))
    s = int(np.sum(sr & (events.labels == SIGNAL)))
    b = int(np.sum(sr & (events.labels == BACKGROUND)))
    return {"S": s, "B": b, "S/B": s / b if b else float("nan"), "S/sqrt(B)": s / np.sqrt(b) if b else float("nan"),
            "S_total": int(np.sum(events.labels == SIGNAL)), "B_total": int(np.sum(events.labels == BACKGROUND))}


def _check_card(events: EventDataset) -> None:
    card = events.meta.get("card", events.name)
    if card != CARD or not isinstance(events, EventDataset):
        raise ValueError(f"the dijet thread needs the {CARD!r} events, not {card!r}")
