"""Tagger comparison tables in the format of the top-tagging landscape
(Kasieczka et al., arXiv:1902.09914, Table 1; seed 000): AUC, accuracy (class-balanced),
background rejection 1/εB at εS = 0.3 and 0.5, number of parameters.

The accuracy is that of the cut at probability 0.5, so it needs scores that are
probabilities: :class:`TaggerResult` refuses scores outside [0, 1] unless told what they are
(``kind="logit"``: converted with the sigmoid; ``kind="cut"``: a variable to cut on, such as
the distance to a mass window, which has no accuracy). AUC and rejections do not depend on
the choice: they only use the order of the scores.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mlpp.metrics import auc, balanced_accuracy, rejection_at

# what a tagger's scores are: a probability of "signal", a logit, or any variable to cut on
SCORE_KINDS = ("probability", "logit", "cut")


@dataclass
class TaggerResult:
    """Scores of one binary tagger on a test set (labels: 1 signal, 0 background).

    ``kind`` says what the scores are: ``"probability"`` (the default; values in [0, 1],
    anything else is refused), ``"logit"`` (converted here to probabilities with the sigmoid,
    after which ``kind`` is ``"probability"``), or ``"cut"`` (a single variable cut on, e.g.
    minus the distance to the top mass: no accuracy, since no threshold is singled out).
    """

    name: str
    labels: np.ndarray
    scores: np.ndarray
    n_params: int | None = None
    train_seconds: float | None = None
    extra: dict = field(default_factory=dict)
    kind: str = "probability"

    def __post_init__(self) -> None:
        if self.kind not in SCORE_KINDS:
            raise ValueError(f"{self.name}: kind must be one of {SCORE_KINDS}, not {self.kind!r}")
        if self.kind == "logit":
            # float64 and clipped: exp(-s) overflows for s < -709, where the sigmoid is 0 anyway
            logits = np.clip(np.asarray(self.scores, dtype=np.float64), -700.0, 700.0)
            self.scores, self.kind = 1.0 / (1.0 + np.exp(-logits)), "probability"
        elif self.kind == "probability":
            scores = np.asarray(self.scores, dtype=float)
            if scores.size and not np.all((scores >= 0.0) & (scores <= 1.0)):
                raise ValueError(
                    f"{self.name}: scores span [{np.nanmin(scores):.3g}, {np.nanmax(scores):.3g}], not probabilities "
                    "in [0, 1]: pass sigmoid(logits), or kind='logit' to convert them, or kind='cut' for a "
                    "variable to cut on (no accuracy)")

    def row(self) -> dict:
        labels = np.asarray(self.labels).astype(int)
        scores = np.asarray(self.scores, dtype=float)
        n_background = int(np.sum(labels == 0))
        r30 = rejection_at(labels, scores, 0.3)
        n_passed = int(round(n_background / r30)) if np.isfinite(r30) else 0
        return {
            "tagger": self.name,
            "AUC": auc(labels, scores),
            # at probability 0.5, class-balanced so extra background test jets do not inflate it;
            # a cut on one variable has no natural threshold, so no accuracy
            "accuracy": np.nan if self.kind == "cut" else balanced_accuracy(labels, (scores > 0.5).astype(int)),
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
