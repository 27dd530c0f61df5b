"""The ``wz`` thread: W jets (from W' → W Z) against QCD jets, for mass decorrelation (Lecture A1).

A tagger trained on jet substructure learns the jet mass too; cutting on its output then sculpts
the QCD mass spectrum towards the W peak. The thread owns what the lecture and its exercise share:
the card, the input features (no mass among them), the 50/10/40 split, the jet mass and its
histogram binning for the Jensen–Shannon divergence, and the weights that give the W jets the QCD
jets' pT spectrum::

    from mlpp.tasks import wz
    train, val, test = wz.split()                 # JetDatasets
    x = wz.features(train)                        # (n, len(wz.FEATURES)) float32
    m = wz.mass(train)                            # (n,) GeV, the ungroomed jet mass
    w = wz.pt_weights(train)                      # (n,): 1 for QCD, W reweighted to the QCD pT
    np.histogram(m[train.labels == 0], bins=wz.MASS_BINS)
"""
from __future__ import annotations

import numpy as np

from mlpp import settings
from mlpp.data import FEATURE_NAMES, JetDataset, dataset

CARD = "wz"
#: The classes of the card, by label (datasets/wz.yml).
CLASSES: tuple[str, str] = ("qcd", "w")
#: Left out of :data:`FEATURES`: the mass itself, so that the mass a tagger uses is the one it learns
#: from the substructure (c1_b2 = e2^(β=2) ≈ m²/pT² among it), which is what decorrelation removes;
#: the groomed mass for the same reason; pT and η because they are kinematics, not substructure
#: (and pT is equalised between the classes by :func:`pt_weights`).
EXCLUDED: tuple[str, ...] = ("pt", "eta", "mass", "mass_mmdt")
#: The tagger's inputs: every feature of the generator but :data:`EXCLUDED`, in the stored order.
FEATURES: tuple[str, ...] = tuple(name for name in FEATURE_NAMES if name not in EXCLUDED)
#: Training, validation and test fractions; the jets are stored in a seeded random order.
SPLIT: tuple[float, float, float] = (0.5, 0.1, 0.4)
#: Jet mass bins (GeV) of the lecture's Jensen–Shannon divergence: 50–300 GeV in 5 GeV steps.
MASS_BINS: np.ndarray = np.arange(50, 301, 5)
#: pT bins (GeV) of :func:`pt_weights`: the card's jet window, 400–800 GeV, in 20 GeV steps.
PT_BINS: np.ndarray = np.arange(400, 801, 20)


def load(tier: str | None = None) -> JetDataset:
    """The ``wz`` dataset of ``tier`` (default ``$MLPP_TIER``), generated on first use."""
    from mlpp import data

    jets = data.load(CARD, tier=settings.tier(tier))
    _check_card(jets)
    return jets


def split(jets: JetDataset | None = None, tier: str | None = None) -> tuple[JetDataset, JetDataset, JetDataset]:
    """Training, validation and test jets (50/10/40 in the stored, seeded random order);
    ``jets`` defaults to :func:`load` of ``tier``."""
    jets = load(tier) if jets is None else jets
    _check_card(jets)
    train, val, test = (jets.subset(part) for part in dataset.split_slices(len(jets), SPLIT))
    return train, val, test


def features(jets: JetDataset) -> np.ndarray:
    """The tagger's inputs: (n_jets, len(FEATURES)) float32, columns in the order of :data:`FEATURES`."""
    return np.stack([jets.feature(name) for name in FEATURES], axis=1).astype(np.float32)


def mass(jets: JetDataset) -> np.ndarray:
    """The ungroomed jet mass in GeV: (n_jets,) float64."""
    return jets.jet[:, 3].astype(np.float64)


def pt_weights(jets: JetDataset, bins: np.ndarray = PT_BINS) -> np.ndarray:
    """Per-jet weights that give the W jets the pT spectrum of the QCD jets: (n_jets,) float64.

    QCD jets weigh 1. A W jet in pT bin ``i`` weighs ``q_i / w_i``, the ratio of the QCD to the W
    histogram (each normalised to unit sum over ``bins``), scaled so that the W weights sum to the
    number of W jets. W jets outside ``bins`` weigh 0. QCD jets in a bin without any W jet cannot be
    matched: the weighted W spectrum is the QCD spectrum with those bins left out (renormalised).
    """
    _check_card(jets)
    is_w = jets.labels == CLASSES.index("w")
    if not is_w.any() or is_w.all():
        raise ValueError(f"pt_weights needs both W and QCD jets, not {int(is_w.sum())} W of {len(jets)} jets")
    n_bins = len(bins) - 1
    index = np.digitize(jets.jet[:, 0], bins) - 1  # bin i holds bins[i] <= pT < bins[i + 1]
    inside = (index >= 0) & (index < n_bins)
    qcd_hist, w_hist = (np.bincount(index[inside & sel], minlength=n_bins).astype(np.float64) for sel in (~is_w, is_w))
    if qcd_hist.sum() == 0 or w_hist.sum() == 0:
        raise ValueError(f"pt_weights: no QCD or no W jet inside the pT bins {bins[0]}-{bins[-1]} GeV")
    ratio = np.divide(qcd_hist / qcd_hist.sum(), w_hist / w_hist.sum(), out=np.zeros(n_bins), where=w_hist > 0)
    w_weights = np.where(inside[is_w], ratio[np.clip(index[is_w], 0, n_bins - 1)], 0.0)
    if w_weights.sum() == 0:
        raise ValueError("pt_weights: the W and QCD jets share no pT bin")
    weights = np.ones(len(jets))
    weights[is_w] = w_weights * (is_w.sum() / w_weights.sum())
    return weights


def _check_card(jets: JetDataset) -> None:
    card = jets.meta.get("card", jets.name)
    if card != CARD or tuple(jets.class_names) != CLASSES:
        raise ValueError(f"the wz thread needs the {CARD!r} dataset (classes {CLASSES}), "
                         f"not {card!r} ({tuple(jets.class_names)})")
