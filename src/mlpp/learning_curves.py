"""Learning curves of the course's top taggers: how AUC and rejection grow with training jets.

The published landscape (arXiv:1902.09914) trained on 1.2M jets; the course trains on at most
100 000. Whether the course's ordering of taggers differs from the published one because of
that is a question of how each tagger's rejection grows with the number of training jets.
``benchmarks/learning_curves.py`` runs the lectures that train the taggers again with fewer
training jets (``$MLPP_TRAIN_JETS``) and other seeds (``$MLPP_SEED``) and keeps one row per
(tagger, training jets, seed) in a committed JSON file, with the fingerprint of the test jets;
this module loads it, refuses results on other test jets, and summarises and plots them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlpp import settings

METRICS = {"auc": "AUC", "rejection_03": r"$1/\varepsilon_B$ at $\varepsilon_S = 0.3$",
           "rejection_05": r"$1/\varepsilon_B$ at $\varepsilon_S = 0.5$"}


def results_path(tier: str | None = None) -> Path:
    """The committed results file of ``tier``: ``benchmarks/results/learning_curves-<tier>.json``."""
    return settings.repo_root() / "benchmarks" / "results" / f"learning_curves-{settings.tier(tier)}.json"


@dataclass(frozen=True)
class Curves:
    """Learning-curve points: ``rows`` are dicts with ``tagger, lecture, n_train, seed`` and the metrics."""

    tier: str
    fingerprint: str
    rows: list[dict]

    def taggers(self) -> list[str]:
        return sorted({r["tagger"] for r in self.rows})

    def summary(self, tagger: str, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(training jets, mean, standard deviation over seeds, number of seeds) of ``metric`` for ``tagger``."""
        sizes = sorted({r["n_train"] for r in self.rows if r["tagger"] == tagger})
        values = [[r[metric] for r in self.rows if r["tagger"] == tagger and r["n_train"] == n] for n in sizes]
        return (np.array(sizes), np.array([np.mean(v) for v in values]),
                np.array([np.std(v, ddof=1) if len(v) > 1 else np.nan for v in values]),
                np.array([len(v) for v in values]))

    def table(self):
        """A pandas table: one row per (tagger, training jets), mean ± std over seeds of each metric."""
        import pandas as pd

        rows = []
        for tagger in self.taggers():
            for metric in METRICS:
                sizes, mean, std, count = self.summary(tagger, metric)
                for n, m, s, c in zip(sizes, mean, std, count):
                    rows.append({"tagger": tagger, "training jets": int(n), "seeds": int(c), "metric": metric,
                                 "mean": m, "std": s})
        frame = pd.DataFrame(rows)
        if frame.empty:
            return frame
        return frame.pivot_table(index=["tagger", "training jets", "seeds"], columns="metric",
                                 values=["mean", "std"]).round(3)


    def at(self, n_train: int):
        """A pandas table of the taggers measured with ``n_train`` training jets: per tagger the number
        of seeds and the mean and standard deviation over seeds of each metric (best 1/εB at 0.3 first)."""
        import pandas as pd

        rows = []
        for tagger in self.taggers():
            found = [r for r in self.rows if r["tagger"] == tagger and r["n_train"] == n_train]
            if not found:
                continue
            row = {"tagger": tagger, "lecture": found[0].get("lecture"), "seeds": len(found)}
            for metric, label in (("auc", "AUC"), ("rejection_03", "1/eB @ eS=0.3"), ("rejection_05", "1/eB @ eS=0.5")):
                values = np.array([r[metric] for r in found], dtype=float)
                row[f"{label} mean"] = values.mean()
                row[f"{label} sd"] = values.std(ddof=1) if len(values) > 1 else np.nan
            rows.append(row)
        frame = pd.DataFrame(rows)
        if frame.empty:
            return frame
        return frame.set_index("tagger").sort_values("1/eB @ eS=0.3 mean", ascending=False)


def load(fingerprint: str, tier: str | None = None, path: Path | None = None) -> tuple[Curves | None, str]:
    """The curves measured on the test jets with ``fingerprint``, and a line that says what was found.

    Returns ``(None, reason)`` when there is no results file for the tier or it holds other
    test jets (another detector, card or split): the reason says how to measure them.
    """
    path = results_path(tier) if path is None else Path(path)
    cost = "hours" if settings.tier(tier) == "full" else "tens of minutes"
    how = f"run 'python benchmarks/learning_curves.py --tier {settings.tier(tier)}' ({cost} on 2 cores; resumable)"
    if not path.exists():
        return None, f"no learning curves for the {settings.tier(tier)} tier yet: {how}"
    stored = json.loads(path.read_text())
    if stored.get("fingerprint") != fingerprint:
        return None, (f"{path.name} was measured on other test jets (fingerprint {stored.get('fingerprint')}, "
                      f"these are {fingerprint}): {how}")
    curves = Curves(stored["tier"], stored["fingerprint"], stored["points"])
    return curves, f"{len(curves.rows)} points from {path.name} ({len(curves.taggers())} taggers)"


def plot(axes, curves: Curves, taggers: list[str] | None = None, metrics: tuple[str, ...] = tuple(METRICS)) -> list:
    """One panel per metric: mean over seeds against training jets (log x), the seeds' spread as error bars."""
    drawn = []
    for ax, metric in zip(np.atleast_1d(axes), metrics):
        for tagger in taggers or curves.taggers():
            sizes, mean, std, _ = curves.summary(tagger, metric)
            drawn.append(ax.errorbar(sizes, mean, yerr=np.nan_to_num(std), marker="o", capsize=3, label=tagger))
        ax.set_xscale("log")
        if metric != "auc":
            ax.set_yscale("log")
        ax.set_xlabel("training jets")
        ax.set_ylabel(METRICS[metric])
    np.atleast_1d(axes)[0].legend(fontsize=9)
    return drawn


def growth(curves: Curves, tagger: str, metric: str = "rejection_05") -> float:
    """How many times ``metric`` (mean over seeds) grows from the smallest to the largest training set."""
    sizes, mean, _, _ = curves.summary(tagger, metric)
    return float(mean[-1] / mean[0]) if len(sizes) > 1 else float("nan")


def crossing(curves: Curves, rising: str, leading: str, metric: str = "rejection_05") -> float | None:
    """Training jets where ``rising`` would catch up with ``leading``: straight lines through the
    means in log(metric) against log(jets), fitted to each tagger's points. ``None`` if the lines
    do not meet beyond the largest measured training set (the rising one is not rising faster,
    or it already leads there). A rough extrapolation: quote it with its caveat."""
    fits = {}
    for name in (rising, leading):
        sizes, mean, _, _ = curves.summary(name, metric)
        if len(sizes) < 2 or not np.all(np.isfinite(mean)) or np.any(mean <= 0):
            return None
        fits[name] = np.polyfit(np.log(sizes), np.log(mean), 1)  # (slope, intercept)
    (b_r, a_r), (b_l, a_l) = fits[rising], fits[leading]
    if b_r - b_l <= 1e-9:  # parallel within rounding: they never meet
        return None
    at = float(np.exp((a_l - a_r) / (b_r - b_l)))
    if not np.isfinite(at):
        return None
    largest = max(curves.summary(rising, metric)[0].max(), curves.summary(leading, metric)[0].max())
    return at if at > largest else None


def find_tagger(curves: Curves, prefix: str) -> str | None:
    """The tagger whose name starts with ``prefix`` (names carry sizes, e.g. 'ParticleNet-Lite, 40 particles')."""
    return next((t for t in curves.taggers() if t.startswith(prefix)), None)
