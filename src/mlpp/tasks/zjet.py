"""The ``zjet`` thread: Z(→νν) + jet events with the leading jet at particle and detector level,
for unfolding (Lecture 9 and its exercise).

The ``zjet`` card (a paired card, :mod:`mlpp.data.paired`) has two variants of the same process:
``sim`` (Pythia's Monash tune) and the pseudo-``data`` (Monash with a final-state shower αs of 0.150).
Each row is one event; both levels of that event are in the same row::

    from mlpp.tasks import zjet
    sim = zjet.load(variant="sim")                      # PairedDataset, the sim events only
    train, closure = zjet.split(sim)                    # fixed halves: response / independent closure sample
    x_gen = zjet.observables(train, "particle")         # (n, 6) float32, NaN where the level has no jet
    x_reco = zjet.observables(train, "detector")
    ok = zjet.response(train)                           # both levels pass and the jets match
    miss, fake = zjet.misses(train), zjet.fakes(train)  # inefficiency and fake rows of the response matrix
    edges = zjet.BINS["mass"]                           # histogram bin edges per observable

``zjet.load_smeared()`` gives the ``sim`` variant through a worse detector (the ``zjet_smeared`` card:
another seed, the same particle-level physics, a wider detector response), for detector systematics.

The six observables are OmniFold's (Andreassen et al., arXiv:1911.09107), defined in
:mod:`mlpp.data.features` (:data:`~mlpp.data.features.UNFOLDING_OBSERVABLES`).
"""
from __future__ import annotations

import numpy as np

from mlpp import settings
from mlpp.data import PairedDataset, dataset
from mlpp.data.dataset import LEVELS
from mlpp.data.features import UNFOLDING_OBSERVABLES

CARD = "zjet"
#: The card's variants (its classes), by label: 0 = simulation, 1 = pseudo-data.
VARIANTS: tuple[str, str] = ("sim", "data")
#: The ``sim`` variant through a worse detector (datasets/zjet_smeared.yml), its one class labelled 0.
SMEARED_CARD = "zjet_smeared"
#: The cards that functions of the thread load besides :data:`CARD` (:func:`mlpp.data.cli.needed_cards`).
CALL_CARDS: dict[str, str] = {"load_smeared": SMEARED_CARD}
#: The six observables per level, in the column order of :func:`observables`.
OBSERVABLES: tuple[str, ...] = tuple(UNFOLDING_OBSERVABLES)
#: Axis labels for plots.
LABELS: dict[str, str] = {
    "mass": "jet mass $m$ [GeV]", "multiplicity": "constituent multiplicity $M$", "width": "jet width $w$",
    "tau21": r"$\tau_{21}^{(\beta=1)}$", "zg": "groomed momentum fraction $z_g$",
    "lnrho": r"groomed $\ln\rho = \ln(m_\mathrm{SD}^2/p_T^2)$",
}
#: Fractions of :func:`split`: the first part builds the response (or trains), the second is an
#: independent sample of the same variant (closure tests; the pseudo-data's "measurement").
SPLIT: tuple[float, float] = (0.5, 0.5)
#: Histogram bin edges per observable for response matrices: about 10-16 bins from the 1st to the
#: 99th percentile of the fast-tier jets (values outside fall in no bin: ``np.clip`` them first if a
#: plot needs under- and overflow). Integer multiplicities sit inside their bins; zg is 0 when no
#: splitting passes soft drop (about 0.5 % of the jets), which the first bin [0, 0.1) holds.
BINS: dict[str, np.ndarray] = {
    "mass": np.linspace(0.0, 60.0, 13),             # GeV
    "multiplicity": np.arange(-0.5, 64.0, 4.0),
    "width": np.linspace(0.0, 0.2, 11),
    "tau21": np.linspace(0.0, 1.2, 13),
    "zg": np.concatenate([[0.0], np.linspace(0.1, 0.5, 9)]),
    "lnrho": np.linspace(-14.0, -2.0, 13),
}


def load(tier: str | None = None, variant: str | None = None) -> PairedDataset:
    """The ``zjet`` events of ``tier`` (default ``$MLPP_TIER``), generated on first use; one
    ``variant`` (``"sim"`` or ``"data"``) or both (``None``, labels 0 and 1) in the stored order."""
    from mlpp import data

    events = data.load(CARD, tier=settings.tier(tier))
    if variant is None:
        return events
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS} or None, not {variant!r}")
    return events.subset(np.flatnonzero(events.labels == events.class_names.index(variant)))


def load_smeared(tier: str | None = None) -> PairedDataset:
    """The ``zjet_smeared`` events of ``tier``: the ``sim`` variant (label 0) with another seed, seen by
    a worse detector (the card's ``detector:`` block); generated on first use."""
    from mlpp import data

    events = data.load(SMEARED_CARD, tier=settings.tier(tier))
    if list(events.class_names) != [VARIANTS[0]]:
        raise ValueError(f"{SMEARED_CARD} must hold the {VARIANTS[0]!r} variant alone (label 0), "
                         f"not {list(events.class_names)}")
    return events


def split(events: PairedDataset, fractions: tuple[float, ...] = SPLIT) -> tuple[PairedDataset, ...]:
    """Fixed consecutive parts of ``events`` in the stored (seeded random) order, :data:`SPLIT` by default."""
    if events.name != CARD:
        raise ValueError(f"zjet.split needs the {CARD!r} dataset, not {events.name!r}")
    return tuple(events.subset(part) for part in dataset.split_slices(len(events), fractions))


def observables(events: PairedDataset, level: str) -> np.ndarray:
    """The six observables of the leading jet at ``level`` (``"particle"`` or ``"detector"``):
    (n_events, 6) float32 in the order of :data:`OBSERVABLES`; NaN where the level has no jet."""
    _check_level(level)
    return events.observables[level]


def observable(events: PairedDataset, name: str, level: str) -> np.ndarray:
    """One observable at one level: (n_events,) float32."""
    _check_level(level)
    return events.observable(name, level)


def passed(events: PairedDataset, level: str) -> np.ndarray:
    """The leading jet at ``level`` is in the card's jet window (``jets`` in ``datasets/zjet.yml``): (n_events,) bool."""
    _check_level(level)
    return events.passed[level]


def response(events: PairedDataset) -> np.ndarray:
    """Events in the response matrix: both levels pass and the two jets match (ΔR < R/2): (n,) bool."""
    return events.passed["particle"] & events.passed["detector"] & events.matched


def misses(events: PairedDataset) -> np.ndarray:
    """Particle-level jets with no matched detector-level jet that passes (the inefficiency): (n,) bool."""
    return events.passed["particle"] & ~response(events)


def fakes(events: PairedDataset) -> np.ndarray:
    """Detector-level jets with no matched particle-level jet that passes (the fakes): (n,) bool."""
    return events.passed["detector"] & ~response(events)


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
