"""Tagger comparison tables in the format of the top-tagging landscape
(Kasieczka et al., arXiv:1902.09914, Table 1; seed 000): AUC, accuracy (class-balanced),
background rejection 1/εB at εS = 0.3 and 0.5, number of parameters."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mlpp.metrics import auc, balanced_accuracy, rejection_at


@dataclass
class TaggerResult:
    """Scores of one binary tagger on a test set (labels: 1 signal, 0 background)."""

    name: str
    labels: np.ndarray
    scores: np.ndarray
    n_params: int | None = None
    train_seconds: float | None = None
    extra: dict = field(default_factory=dict)

    def row(self) -> dict:
        labels = np.asarray(self.labels).astype(int)
        scores = np.asarray(self.scores, dtype=float)
        n_background = int(np.sum(labels == 0))
        r30 = rejection_at(labels, scores, 0.3)
        n_passed = int(round(n_background / r30)) if np.isfinite(r30) else 0
        return {
            "tagger": self.name,
            "AUC": auc(labels, scores),
            # class-balanced, so extra background test jets do not inflate it
            "accuracy": balanced_accuracy(labels, (scores > 0.5).astype(int)),
            "1/eB @ eS=0.3": r30,
            "1/eB @ eS=0.5": rejection_at(labels, scores, 0.5),
            # how many background jets the εS = 0.3 number rests on
            "bkg jets @ 0.3": n_passed,
            # Poisson: 1/εB = N/n is uncertain by (1/εB)/sqrt(n) when it rests on n jets
            "stat. +- @ 0.3": r30 / np.sqrt(n_passed) if n_passed else np.nan,
            "parameters": self.n_params,
            "train s": self.train_seconds,
            **self.extra,
        }


def comparison_table(results: list[TaggerResult]):
    """A pandas DataFrame with one row per tagger (rounded for display)."""
    import pandas as pd

    table = pd.DataFrame([r.row() for r in results]).set_index("tagger")
    return table.round({"AUC": 3, "accuracy": 3, "1/eB @ eS=0.3": 0, "1/eB @ eS=0.5": 1, "stat. +- @ 0.3": 0,
                        "train s": 1})


def count_parameters(model) -> int:
    """Trainable parameters of a Keras model or a torch module."""
    if hasattr(model, "count_params"):
        return int(model.count_params())
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
