"""The ``tracks`` thread: hits of charged particles in the course's toy tracker (tracking lecture).

The ``tracks`` card (``datasets/tracks.yml``, ``mode: tracks``; physics in :mod:`mlpp.tracking`)
holds tt̄ events at 14 TeV whose charged particles above 1 GeV crossed eight barrel layers (the
TrackML barrel, 2 T). It is generated, cached and verified by the data layer like every card
(``mlpp data generate tracks``). This module owns the plumbing every tracking notebook shares: the
events of a tier and their fixed split. The candidate edges (the graph) come from
:func:`mlpp.tracking.candidate_edges`, so that a lecture and its exercise build the same graph; the
edge classifiers and track building are the lessons and are written in the notebooks::

    from mlpp.tasks import tracks
    train, val, test = tracks.split()      # TrackEvents
    hits, particles = test[0]              # dicts of arrays; hits["particle"] == -1: noise
    tracks.TRACKER.radii                   # layer radii in mm
"""
from __future__ import annotations

from mlpp import settings
from mlpp.data import TrackEvents
from mlpp.tracking import Tracker

#: The tracks card (``datasets/tracks.yml``); ``mlpp data generate --needed`` finds it through this name.
CARD = "tracks"
#: Training, validation and test fractions of the events, in stored order (events are independent).
SPLIT: tuple[float, float, float] = (0.6, 0.2, 0.2)


def __getattr__(name: str) -> Tracker:
    """``TRACKER``: the card's tracker (layers, resolutions, field, efficiency, noise), read when
    first asked for, so that importing the thread never needs the card."""
    if name == "TRACKER":
        from mlpp.data import load_card

        return load_card(CARD).tracker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load(tier: str | None = None) -> TrackEvents:
    """All events of ``tier`` (default ``$MLPP_TIER``), generated on first use (about a minute
    for the fast tier on 2 cores), hash-checked against the cache manifest."""
    from mlpp import data

    return data.load(CARD, tier=settings.tier(tier))


def split(events: TrackEvents | None = None, tier: str | None = None) -> tuple[TrackEvents, TrackEvents, TrackEvents]:
    """Training, validation and test events: the first 60 %, the next 20 % and the last 20 %."""
    events = load(tier) if events is None else events
    return events.split(SPLIT)
