"""The ``jets5`` thread: five classes of 1 TeV jets (g, q, W, Z, t) described by 16 features.

Lectures 1 and 11, their exercises and ``hls/`` share it: the card, the 16 hls4ml-like features
of Lecture 1, the fixed 60/20/20 split and the standardisation with the training jets'
statistics. Notebooks write their own models and import the thread::

    from mlpp.tasks import jets5
    jets = jets5.load()
    train, val, test = jets5.split(jets)          # JetDatasets
    arrays = jets5.arrays(jets)                   # standardised (n, 16) matrices and labels
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlpp import settings
from mlpp.data import JetDataset, dataset
from mlpp.training import Standardizer, standardize

CARD = "jets5"
#: The 16 inputs of the hls4ml paper's tagger (arXiv:1804.06913), in the order the networks see them.
FEATURES: tuple[str, ...] = (
    "zlogz", "c1_b0", "c1_b1", "c1_b2", "c2_b1", "c2_b2", "d2_b1", "d2_b2", "d2_a1_b1",
    "d2_a1_b2", "m2_b1", "m2_b2", "n2_b1", "n2_b2", "mass_mmdt", "multiplicity",
)
#: Training, validation and test fractions; the jets are stored in a seeded random order.
SPLIT: tuple[float, float, float] = (0.6, 0.2, 0.2)
#: Labels of the quark and gluon jets (the "background" of anomaly detection).
QCD_CLASSES: tuple[int, ...] = (0, 1)


def load(tier: str | None = None) -> JetDataset:
    """The ``jets5`` dataset of ``tier`` (default ``$MLPP_TIER``), generated on first use."""
    from mlpp import data

    return data.load(CARD, tier=settings.tier(tier))


def split_slices(n_jets: int) -> tuple[slice, slice, slice]:
    """Where the training, validation and test jets lie among ``n_jets`` stored jets (:data:`SPLIT`)."""
    return dataset.split_slices(n_jets, SPLIT)


def split(jets: JetDataset) -> tuple[JetDataset, JetDataset, JetDataset]:
    """The course's fixed training / validation / test split (60/20/20, in the stored, seeded random order)."""
    _check_card(jets)
    train, val, test = (jets.subset(part) for part in split_slices(len(jets)))
    return train, val, test


def features(jets: JetDataset) -> np.ndarray:
    """The raw 16 features of every jet: (n_jets, 16), columns in the order of :data:`FEATURES`."""
    return np.stack([jets.feature(name) for name in FEATURES], axis=1)


@dataclass(frozen=True)
class Arrays:
    """The split jets as standardised feature matrices.

    ``x_*``: (n, 16) float32, ``(x - mean) / std`` with the mean and spread of the training jets
    (``scaler``); ``y_*``: (n,) int labels 0..4 in the order of ``class_names`` (g, q, W, Z, t);
    ``tier``: the tier the jets come from.
    """

    x_train: np.ndarray
    x_val: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_val: np.ndarray
    y_test: np.ndarray
    scaler: Standardizer
    class_names: tuple[str, ...]
    tier: str


def arrays(jets: JetDataset | None = None, tier: str | None = None) -> Arrays:
    """Split ``jets`` (default: :func:`load` of ``tier``) and standardise its 16 features.

    The scaler is fitted on the training jets only and applied unchanged to the validation and
    test jets (and, in Lecture 11, to the firmware's inputs).
    """
    jets = load(tier) if jets is None else jets
    _check_card(jets)
    parts = split_slices(len(jets))
    every = features(jets)  # one matrix, sliced: no copy of the constituents
    x_train, x_val, x_test, scaler = standardize(*(every[part] for part in parts))
    return Arrays(x_train, x_val, x_test, *(jets.labels[part] for part in parts), scaler=scaler,
                  class_names=tuple(jets.class_names), tier=jets.meta.get("tier") or settings.tier(tier))


def _check_card(jets: JetDataset) -> None:
    card = jets.meta.get("card", jets.name)
    if card != CARD:
        raise ValueError(f"the jets5 thread needs the {CARD!r} dataset, not {card!r}")
