"""Generated jet datasets: Pythia 8 + a simple detector + FastJet, one card per dataset.

>>> from mlpp import data
>>> jets = data.load("top")           # generated on first use, then read from the cache
>>> train, val, test = jets.split()
"""
from __future__ import annotations

from mlpp.data.build import build, dataset_path, load
from mlpp.data.cache import CorruptCacheError
from mlpp.data.cards import Card, CardError, available, load_card
from mlpp.data.dataset import EventDataset, JetDataset, PairedDataset, TrackEvents
from mlpp.data.detector import CLASS_NAMES, DetectorModel
from mlpp.data.features import FEATURE_NAMES

__all__ = ["build", "dataset_path", "load", "CorruptCacheError", "Card", "CardError", "available",
           "load_card", "JetDataset", "EventDataset", "PairedDataset", "TrackEvents",
           "CLASS_NAMES", "DetectorModel", "FEATURE_NAMES"]
