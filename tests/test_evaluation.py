from __future__ import annotations

import numpy as np
import pytest

from mlpp.evaluation import TaggerResult, comparison_table, count_parameters
from mlpp.metrics import accuracy, auc, rejection_at


def test_rejection_on_a_known_case():
    # 10 signal at scores 0.1..1.0, 100 background: 10 of them at 0.95, the rest at 0
    labels = np.r_[np.ones(10), np.zeros(100)]
    scores = np.r_[np.linspace(0.1, 1.0, 10), np.full(10, 0.95), np.zeros(90)]
    # εS = 0.3 keeps signal ≥ 0.8 (quantile 0.7 of the signal scores = 0.73): all 10 background at 0.95 pass
    assert rejection_at(labels, scores, 0.3) == pytest.approx(10.0)
    assert rejection_at(labels, np.r_[np.linspace(0.1, 1.0, 10), np.zeros(100)], 0.3) == np.inf


def test_perfect_and_random_taggers():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 20000)
    assert auc(labels, labels + 0.0) == 1.0
    assert abs(auc(labels, rng.random(20000)) - 0.5) < 0.02
    assert 1.8 < rejection_at(labels, rng.random(20000), 0.5) < 2.2
    assert accuracy(labels, np.stack([1 - labels, labels], 1)) == 1.0


def test_table_columns_and_background_count():
    rng = np.random.default_rng(1)
    labels = np.r_[np.ones(5000), np.zeros(5000)]
    scores = np.r_[rng.normal(1, 1, 5000), rng.normal(-1, 1, 5000)]
    row = TaggerResult("gauss", labels, scores, n_params=3, kind="logit").row()
    assert row["bkg jets @ 0.3"] == pytest.approx(5000 / row["1/eB @ eS=0.3"], abs=1)
    assert row["stat. +- @ 0.3"] == pytest.approx(row["1/eB @ eS=0.3"] / np.sqrt(row["bkg jets @ 0.3"]))
    table = comparison_table([TaggerResult("gauss", labels, scores, n_params=3, kind="logit")])
    assert list(table.index) == ["gauss"] and table.loc["gauss", "AUC"] > 0.9


def test_no_background_left_has_no_uncertainty_to_quote():
    labels = np.r_[np.ones(100), np.zeros(100)]
    row = TaggerResult("perfect", labels, labels.copy()).row()
    assert row["1/eB @ eS=0.3"] == np.inf and row["bkg jets @ 0.3"] == 0
    assert np.isnan(row["stat. +- @ 0.3"])


def test_count_parameters_keras_and_torch():
    import keras
    import torch

    assert count_parameters(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])) == 15
    assert count_parameters(torch.nn.Linear(4, 3)) == 15


def test_balanced_accuracy_ignores_extra_background():
    from mlpp.metrics import balanced_accuracy

    labels = np.array([0, 0, 1, 1])
    predictions = np.array([0, 1, 1, 1])
    assert balanced_accuracy(labels, predictions) == accuracy(labels, predictions) == 0.75
    more = np.concatenate([labels, np.zeros(96, int)]), np.concatenate([predictions, np.zeros(48, int), np.ones(48, int)])
    assert balanced_accuracy(*more) == 0.75
    assert accuracy(*more) != 0.75


def _logits_mostly_between_0_and_half():
    """Labels and logits of a tagger whose logits often fall in (0, 0.5), where p is 0.5 to 0.62."""
    rng = np.random.default_rng(4)
    labels = np.r_[np.ones(4000), np.zeros(4000)]
    logits = np.r_[rng.normal(0.6, 1.0, 4000), rng.normal(-0.6, 1.0, 4000)]
    return labels, logits


def test_logits_are_refused_as_probabilities_with_a_hint():
    labels, logits = _logits_mostly_between_0_and_half()
    with pytest.raises(ValueError, match=r"not probabilities.*sigmoid.*kind='logit'"):
        TaggerResult("logit tagger", labels, logits)


def test_logits_are_converted_and_cut_at_probability_one_half():
    labels, logits = _logits_mostly_between_0_and_half()
    row = TaggerResult("logit tagger", labels, logits, kind="logit").row()
    from mlpp.metrics import balanced_accuracy

    at_half = balanced_accuracy(labels, (logits > 0).astype(int))      # p > 0.5
    at_062 = balanced_accuracy(labels, (logits > 0.5).astype(int))     # what a cut at 0.5 on logits takes
    assert row["accuracy"] == pytest.approx(at_half) and abs(at_half - at_062) > 0.01
    probabilities = 1 / (1 + np.exp(-logits))
    assert TaggerResult("p", labels, probabilities).row()["accuracy"] == pytest.approx(at_half)
    # the order of the scores, and so AUC and rejections, is unchanged by the conversion
    assert row["AUC"] == pytest.approx(auc(labels, logits))
    assert row["1/eB @ eS=0.5"] == pytest.approx(rejection_at(labels, logits, 0.5))


def test_a_cut_on_one_variable_has_no_accuracy():
    labels = np.r_[np.ones(100), np.zeros(100)]
    distance = -np.abs(np.r_[np.full(100, 172.0), np.linspace(20, 300, 100)] - 172.5)  # minus |m - m0|
    row = TaggerResult("mass window", labels, distance, n_params=1, kind="cut").row()
    assert np.isnan(row["accuracy"]) and row["AUC"] > 0.9
    table = comparison_table([TaggerResult("mass window", labels, distance, n_params=1, kind="cut")])
    assert np.isnan(table.loc["mass window", "accuracy"])


def test_unknown_score_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        TaggerResult("x", np.array([0, 1]), np.array([0.2, 0.8]), kind="probabilities")
