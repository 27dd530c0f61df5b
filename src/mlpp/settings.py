"""Where the course keeps things and which tier it runs in.

Two tiers share every notebook: ``fast`` (tests, CI, Binder: each notebook within
2 minutes and 1.5 GB on 2 cores) and ``full`` (the website and the physics results).
Only sample sizes and training lengths differ between them.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

TIERS = ("fast", "full")


def repo_root() -> Path:
    """The course checkout: the folder that holds ``datasets/`` and ``lectures/``."""
    env = os.environ.get("MLPP_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "datasets").is_dir() and (parent / "pyproject.toml").is_file():
            return parent
    return Path.cwd()


def tier(value: str | None = None) -> str:
    """The active tier: ``value`` if given, else ``$MLPP_TIER``, else ``full``."""
    chosen = (value or os.environ.get("MLPP_TIER") or "full").strip().lower()
    if chosen not in TIERS:
        raise ValueError(f"unknown tier {chosen!r}: set MLPP_TIER to one of {', '.join(TIERS)}")
    return chosen


def is_fast(value: str | None = None) -> bool:
    """True in the fast tier (tests, CI, Binder)."""
    return tier(value) == "fast"


def cards_dir() -> Path:
    """Folder of the dataset cards (``datasets/*.yml``)."""
    return Path(os.environ.get("MLPP_CARDS") or repo_root() / "datasets")  # an empty value means unset


def cache_dir() -> Path:
    """Folder of generated data: ``$MLPP_DATA`` or ``datasets/cache`` (ignored by git)."""
    path = Path(os.environ.get("MLPP_DATA") or repo_root() / "datasets" / "cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def limit_threads(n: int = 2) -> None:
    """Pin numpy/torch/TensorFlow to ``n`` threads, the course's reference machine."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    # torch reads OMP_NUM_THREADS when it is imported; only one imported already needs telling.
    # (Importing it here would cost TensorFlow-only notebooks about 180 MB.)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)


def _positive_int(variable: str) -> int | None:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) <= 0:
        raise ValueError(f"{variable}={raw!r} is not a positive whole number: unset it or give one, e.g. {variable}=10000")
    return int(raw)


def seed(default: int) -> int:
    """The training seed of a notebook: ``$MLPP_SEED`` if set (learning-curve runs repeat a lecture
    with several seeds), else ``default``."""
    raw = os.environ.get("MLPP_SEED", "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ValueError(f"MLPP_SEED={raw!r} is not a non-negative whole number: unset it or give one, e.g. MLPP_SEED=1")
    return int(raw)


def training_jets() -> int | None:
    """``$MLPP_TRAIN_JETS``: train on only this many of the split's training jets (learning curves); None = all."""
    return _positive_int("MLPP_TRAIN_JETS")


def run_variant() -> str | None:
    """A name for a run with a non-default seed or training size (``train10000-seed1``), else None.

    Results of such runs are kept apart from the lecture's own (see :func:`mlpp.landscape.scores_dir`).
    """
    jets, chosen = training_jets(), os.environ.get("MLPP_SEED", "").strip()
    if jets is None and not chosen:
        return None
    return f"train{jets if jets is not None else 'all'}-seed{seed(0) if chosen else 'default'}"
