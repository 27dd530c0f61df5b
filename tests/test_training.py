"""Tests of mlpp.training: standardisation invariants, seeding, the epoch timer.

The numpy tests take milliseconds; the ones that import Keras or torch are marked slow
(importing TensorFlow alone takes several seconds on 2 cores).
"""
from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

from mlpp.training import Standardizer, epoch_timer, set_seeds, standardize


def jet_like(n: int, seed: int = 0) -> np.ndarray:
    """(n, 4) columns on very different scales, like jet features: GeV masses, counts, ratios."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.gamma(2.0, 40.0, n), rng.poisson(50, n).astype(float),
                     rng.uniform(0.0, 1.0, n), rng.normal(-3.0, 0.5, n)], axis=1)


# --- standardize ----------------------------------------------------------------------

@pytest.mark.parametrize("n", [10, 1000])
def test_train_gets_zero_mean_unit_variance(n: int) -> None:
    x_train, scaler = standardize(jet_like(n))
    assert x_train.dtype == np.float32 and x_train.shape == (n, 4)
    np.testing.assert_allclose(x_train.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x_train.std(axis=0), 1.0, atol=1e-5)
    assert isinstance(scaler, Standardizer)


def test_others_use_the_training_statistics() -> None:
    train, val, test = jet_like(500, 0), jet_like(200, 1), jet_like(300, 2)
    x_train, x_val, x_test, scaler = standardize(train, val, test)
    np.testing.assert_allclose(x_val, (val - train.mean(0)) / train.std(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(x_test, scaler.transform(test))
    assert x_val.shape == val.shape and x_test.shape == test.shape


def test_inputs_are_not_changed() -> None:
    train, val = jet_like(100, 0), jet_like(50, 1)
    before = train.copy(), val.copy()
    standardize(train, val)
    np.testing.assert_array_equal(train, before[0])
    np.testing.assert_array_equal(val, before[1])


@pytest.mark.parametrize("scale, shift", [(1e-3, 0.0), (1000.0, -5.0), (2.5, 1e4)])
def test_units_do_not_matter(scale: float, shift: float) -> None:
    """GeV or TeV, with or without an offset: the standardised inputs are the same."""
    x = jet_like(300)
    (a, _), (b, _) = standardize(x), standardize(scale * x + shift)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_constant_feature_gives_zeros_not_nans() -> None:
    x = jet_like(50)
    x[:, 2] = 7.0
    z, scaler = standardize(x)
    assert np.all(np.isfinite(z)) and np.all(z[:, 2] == 0.0)
    assert scaler.scale[2] == 1.0


def test_inverse_transform_round_trip() -> None:
    x = jet_like(200)
    z, scaler = standardize(x)
    np.testing.assert_allclose(scaler.inverse_transform(z), x, rtol=1e-5, atol=1e-4)


# --- set_seeds ------------------------------------------------------------------------

def test_same_seed_same_numbers() -> None:
    set_seeds(3, frameworks=[])
    first = random.random(), np.random.rand(5)
    set_seeds(3, frameworks=[])
    second = random.random(), np.random.rand(5)
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])


def test_unknown_framework_is_an_error() -> None:
    with pytest.raises(ValueError, match="jax"):
        set_seeds(0, frameworks=["jax"])


def test_default_seeds_only_imported_frameworks() -> None:
    """Seeding must not import TensorFlow or torch behind the user's back (seconds, memory)."""
    code = ("import sys; from mlpp.training import set_seeds; print(set_seeds(0)); "
            "print('tensorflow' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "False False"


@pytest.mark.slow
def test_torch_is_seeded() -> None:
    torch = pytest.importorskip("torch")
    assert set_seeds(5, frameworks=["torch"]) == ["torch"]
    a = torch.rand(4)
    set_seeds(5, frameworks=["torch"])
    assert torch.equal(a, torch.rand(4))


def tiny_fit(seed: int, epochs: int = 2, callbacks: list | None = None):
    import keras

    set_seeds(seed, frameworks=["keras"])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(256, 4)).astype("float32"), rng.integers(0, 3, 256)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=callbacks or [])
    return model


@pytest.mark.slow
def test_keras_training_is_reproducible() -> None:
    pytest.importorskip("keras")
    a, b, c = tiny_fit(0).get_weights(), tiny_fit(0).get_weights(), tiny_fit(1).get_weights()
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
    assert any(not np.array_equal(wa, wc) for wa, wc in zip(a, c))


@pytest.mark.slow
def test_epoch_timer_records_every_epoch() -> None:
    pytest.importorskip("keras")
    timer = epoch_timer()
    tiny_fit(0, epochs=3, callbacks=[timer])
    assert len(timer.times) == 3 and all(t > 0 for t in timer.times)
    assert timer.total == pytest.approx(sum(timer.times))
    assert min(timer.times) <= timer.per_epoch <= max(timer.times)
    tiny_fit(0, epochs=2, callbacks=[timer])  # a second fit starts a new record
    assert len(timer.times) == 2


def test_limit_threads_does_not_import_torch():
    import os
    import subprocess
    import sys

    code = ("import sys; from mlpp import settings; settings.limit_threads(2); "
            "import os; print('torch' in sys.modules, os.environ['OMP_NUM_THREADS'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"})
    assert out.stdout.split() == ["False", "2"]


def test_limit_threads_tells_an_imported_torch():
    import subprocess
    import sys

    code = ("import torch; from mlpp import settings; settings.limit_threads(1); print(torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
