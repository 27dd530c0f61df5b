"""Classifier figures of merit as quoted in the jet-tagging literature."""
from __future__ import annotations

import numpy as np


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signal efficiency εS and background efficiency εB for every threshold.

    ``labels``: 1 for signal, 0 for background; ``scores``: larger means more signal-like.
    """
    from sklearn.metrics import roc_curve as _roc

    eps_b, eps_s, _ = _roc(np.asarray(labels), np.asarray(scores))
    return eps_s, eps_b


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(labels), np.asarray(scores)))


def rejection_at(labels: np.ndarray, scores: np.ndarray, signal_efficiency: float = 0.3) -> float:
    """Background rejection 1/εB at the threshold that keeps ``signal_efficiency`` of the signal.

    The threshold is the (1 − εS) quantile of the signal scores; background jets at or
    above it count as accepted. Returns ``inf`` when no background jet passes.
    """
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    threshold = np.quantile(scores[labels], 1.0 - signal_efficiency)
    eps_b = np.mean(scores[~labels] >= threshold)
    return float(np.inf) if eps_b == 0 else float(1.0 / eps_b)


def accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Fraction of correct predictions; ``predictions`` are class indices or (n, k) scores."""
    predictions = np.asarray(predictions)
    if predictions.ndim == 2:
        predictions = predictions.argmax(axis=1)
    return float(np.mean(np.asarray(labels) == predictions))


def balanced_accuracy(labels: np.ndarray, predictions: np.ndarray) -> float:
    """Accuracy with every class weighted equally: the mean over classes of the fraction of its
    jets predicted correctly. Equals :func:`accuracy` on a test set with equal class sizes, and
    does not change when one class gets extra test jets (such as ``top_qcd``)."""
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    if predictions.ndim == 2:
        predictions = predictions.argmax(axis=1)
    return float(np.mean([np.mean(predictions[labels == k] == k) for k in np.unique(labels)]))
