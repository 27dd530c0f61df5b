"""Plots the lectures share. Each function takes an ``ax``, draws, and returns what it drew."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def use_style() -> None:
    """mplhep's CMS-like style with sizes that suit a notebook."""
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.CMS)
    plt.rcParams.update({"figure.figsize": (7, 5), "font.size": 14, "axes.titlesize": 14,
                         "legend.fontsize": 12, "figure.dpi": 80})


def course_label(ax, text: str = "Pythia 8 + simple detector, √s = 14 TeV"):
    """The standard label above the axes: simulation, not data."""
    return ax.set_title(text, loc="left", fontsize=11, style="italic")


def jet_constituents(ax, etas: np.ndarray, phis: np.ndarray, pts: np.ndarray, classes: np.ndarray | None = None,
                     R: float | None = None, center: tuple[float, float] | None = None, scale: float = 2.0):
    """Constituents in the η–φ plane, marker area ∝ pT; colour by particle class if given."""
    from mlpp.data.detector import CLASS_NAMES

    sizes = scale * np.asarray(pts)
    drawn = []
    if classes is None:
        drawn.append(ax.scatter(etas, phis, s=sizes, alpha=0.7))
    else:
        for code, name in enumerate(CLASS_NAMES):
            sel = np.asarray(classes) == code
            if sel.any():
                # one colour per class, whichever classes a jet happens to have
                drawn.append(ax.scatter(np.asarray(etas)[sel], np.asarray(phis)[sel], s=sizes[sel], alpha=0.7,
                                        color=f"C{code}", label=name))
        ax.legend(loc="upper right", markerscale=0.5, fontsize=10)
    if R is not None and center is not None:
        import matplotlib.patches as patches

        drawn.append(ax.add_patch(patches.Circle(center, R, fill=False, ls="--", color="gray")))
    ax.set_xlabel(r"$\eta$")
    ax.set_ylabel(r"$\phi$")
    return drawn


def training_curves(ax, history: dict[str, Sequence[float]], keys: Sequence[str] = ("loss", "val_loss")):
    """Loss (or any metric) per epoch from a Keras-style ``history.history`` dict."""
    lines = []
    for key in keys:
        if key in history:
            lines += ax.plot(np.arange(1, len(history[key]) + 1), history[key], marker="o", ms=3, label=key)
    ax.set_xlabel("epoch")
    ax.legend()
    return lines


def roc_rejection(ax, labels: np.ndarray, scores: np.ndarray, label: str | None = None, **kwargs):
    """Background rejection 1/εB against signal efficiency εS, log scale (the tagging convention)."""
    from mlpp.metrics import auc, roc_curve

    eps_s, eps_b = roc_curve(labels, scores)
    ok = eps_b > 0
    text = f"{label} (AUC {auc(labels, scores):.3f})" if label else None
    (line,) = ax.plot(eps_s[ok], 1.0 / eps_b[ok], label=text, **kwargs)
    ax.set_yscale("log")
    ax.set_xlabel(r"signal efficiency $\varepsilon_S$")
    ax.set_ylabel(r"background rejection $1/\varepsilon_B$")
    ax.set_xlim(0, 1)
    if text:
        ax.legend()
    return line


def confusion_matrix(ax, labels: np.ndarray, predictions: np.ndarray, class_names: Sequence[str]):
    """Row-normalised confusion matrix (each true class sums to 1)."""
    k = len(class_names)
    matrix = np.zeros((k, k))
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    matrix /= np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center",
                    color="white" if matrix[i, j] > 0.5 else "black", fontsize=11)
    ax.set_xticks(range(k), class_names)
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    return image


def class_histograms(ax, values: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                     bins: int | np.ndarray = 50, density: bool = True, **kwargs):
    """One step histogram of ``values`` per class."""
    drawn = []
    bins = np.histogram_bin_edges(values, bins) if np.isscalar(bins) else bins
    for code, name in enumerate(class_names):
        _, _, patches = ax.hist(np.asarray(values)[np.asarray(labels) == code], bins=bins, density=density,
                                histtype="step", lw=2, label=name, **kwargs)
        drawn.append(patches)
    ax.legend()
    return drawn
