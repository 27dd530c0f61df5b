"""Small training helpers the lectures share: input standardisation, seeding, epoch timing.

>>> from mlpp.training import set_seeds, standardize, epoch_timer
>>> set_seeds(0)                                   # python, numpy and every imported framework
>>> x_train, x_val, x_test, scaler = standardize(x_train, x_val, x_test)
>>> timer = epoch_timer()                          # a Keras callback
>>> model.fit(x_train, y_train, callbacks=[timer]); timer.times   # seconds per epoch
"""
from __future__ import annotations

import functools
import os
import random
import sys
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

FRAMEWORKS = ("keras", "tensorflow", "torch")


@dataclass(frozen=True)
class Standardizer:
    """Shift and scale per feature: ``(x - mean) / scale``.

    ``mean`` and ``scale`` have shape ``(n_features,)`` (or the trailing shape of the inputs)
    and come from the training set only, so that validation and test jets are scaled the
    same way. Features with zero spread get ``scale = 1``.
    """

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> "Standardizer":
        """Mean and standard deviation over the first axis of ``x`` (n_samples, ...)."""
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        return cls(mean=mean, scale=np.where(std > 0, std, 1.0))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """A scaled copy of ``x`` (n_samples, ...), float32; ``x`` is not changed."""
        return ((np.asarray(x, dtype=np.float64) - self.mean) / self.scale).astype(np.float32)

    def inverse_transform(self, z: np.ndarray) -> np.ndarray:
        """Back to the original units: ``z * scale + mean`` (float64 copy)."""
        return np.asarray(z, dtype=np.float64) * self.scale + self.mean


def standardize(train: np.ndarray, *others: np.ndarray) -> tuple:
    """Scale ``train`` to zero mean and unit variance per feature, and ``others`` the same way.

    ``train``: (n_samples, n_features); ``others``: arrays with the same trailing shape
    (validation, test). Returns ``(train_scaled, *others_scaled, scaler)``: float32 copies
    (the inputs are not changed) and the :class:`Standardizer` fitted on ``train``.
    """
    scaler = Standardizer.fit(train)
    return (scaler.transform(train), *(scaler.transform(x) for x in others), scaler)


def set_seeds(seed: int, frameworks: Sequence[str] | None = None, deterministic: bool = True) -> list[str]:
    """Seed Python's ``random``, numpy's global generator and the deep-learning frameworks.

    ``frameworks``: any of ``"keras"``, ``"tensorflow"``, ``"torch"``; by default those
    already imported, so that a torch notebook does not pay for importing TensorFlow
    (import your framework before calling this). With ``deterministic``, TensorFlow op
    determinism and torch's deterministic algorithms are switched on (same numbers on the
    same machine and thread count; slower for some ops). ``PYTHONHASHSEED`` cannot be set
    from inside a running interpreter: the Makefile exports it. Returns the frameworks seeded.
    """
    if isinstance(frameworks, str):
        frameworks = [frameworks]
    unknown = set(frameworks or ()) - set(FRAMEWORKS)
    if unknown:
        raise ValueError(f"unknown framework(s) {sorted(unknown)}; use {', '.join(FRAMEWORKS)}")
    if frameworks is None:
        frameworks = [name for name in FRAMEWORKS if name in sys.modules]
    random.seed(seed)
    np.random.seed(seed)
    seeded = []
    if "keras" in frameworks:
        keras = _require("keras")
        keras.utils.set_random_seed(seed)  # python, numpy and the backend's generator
        seeded.append("keras")
    if "tensorflow" in frameworks or ("keras" in frameworks and _keras_backend() == "tensorflow"):
        tf = _require("tensorflow")
        tf.random.set_seed(seed)
        if deterministic:
            tf.config.experimental.enable_op_determinism()
        seeded.append("tensorflow")
    if "torch" in frameworks:
        torch = _require("torch")
        torch.manual_seed(seed)
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
        seeded.append("torch")
    return seeded


def _keras_backend() -> str:
    return _require("keras").backend.backend()


def _require(name: str):
    try:
        return __import__(name)
    except ImportError:
        raise ImportError(f"{name} is not installed; the course pins it in pyproject.toml: run 'make venv'") from None


@functools.lru_cache(maxsize=None)
def _epoch_timer_class():
    keras = _require("keras")

    class EpochTimer(keras.callbacks.Callback):
        """Keras callback that records the wall time of every epoch in ``times`` (seconds)."""

        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []
            self._start = 0.0

        def on_train_begin(self, logs=None) -> None:
            self.times = []

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.times.append(time.perf_counter() - self._start)

        @property
        def total(self) -> float:
            """Seconds spent in all epochs of the last ``fit``."""
            return float(sum(self.times))

        @property
        def per_epoch(self) -> float:
            """Median seconds per epoch (the first epoch, which builds the graph, counts once)."""
            return float(np.median(self.times)) if self.times else float("nan")

    return EpochTimer


def epoch_timer():
    """A fresh Keras callback that times each epoch: ``.times`` (s), ``.total``, ``.per_epoch``."""
    return _epoch_timer_class()()
