"""Recording and loading tagger scores for the landscape page."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlpp import landscape
from mlpp.data.cache import CorruptCacheError
from mlpp.evaluation import TaggerResult


@pytest.fixture()
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLPP_DATA", str(tmp_path))
    return tmp_path


def test_recorded_scores_come_back_in_lecture_order(top, private_cache):
    test = top.subset(slice(0, 300))
    rng = np.random.default_rng(1)
    for name, lecture in [("GRU", "03"), ("CNN", "02")]:
        landscape.record(TaggerResult(name, test.labels, rng.random(300), 123, 4.5), test, lecture=lecture)
    results, missing = landscape.load(test, {"02": "L02.ipynb", "03": "L03.ipynb", "05": "L05.ipynb"})
    assert [r.name for r in results] == ["CNN", "GRU"]
    assert results[0].n_params == 123 and results[0].train_seconds == 4.5
    assert missing == ["lecture 05: no tagger recorded on these test jets; run L05.ipynb with MLPP_TIER=fast"]


def test_a_recorded_cut_keeps_its_empty_accuracy(top, private_cache):
    test = top.subset(slice(0, 300))
    mass_window = -np.abs(test.jet[:, 3] - 172.5)  # a cut on one variable: no threshold singled out
    landscape.record(TaggerResult("mass window", test.labels, mass_window, 1, kind="cut"), test, lecture="02")
    results, _ = landscape.load(test)
    assert results[0].kind == "cut" and np.isnan(landscape.table(results).loc["mass window", "accuracy"])


def test_landscape_table_puts_the_best_auc_first(top):
    test = top.subset(slice(0, 300))
    labels = test.labels
    perfect, noise = labels.astype(float), np.random.default_rng(2).random(300)
    table = landscape.table([TaggerResult("noise", labels, noise, 1, extra={"lecture": "02"}),
                             TaggerResult("perfect", labels, perfect, 2)])
    assert list(table.index) == ["perfect", "noise"]
    assert table.loc["perfect", "AUC"] == 1.0 and table.loc["perfect", "lecture"] == ""
    assert table.loc["noise", "lecture"] == "02"


def test_scores_of_other_test_jets_are_not_mixed_in(top, private_cache):
    test, other = top.subset(slice(0, 300)), top.subset(slice(300, 600))
    landscape.record(TaggerResult("CNN", test.labels, np.zeros(300)), test, lecture="02")
    assert landscape.load(other)[0] == []
    with pytest.raises(ValueError, match="labels"):
        landscape.record(TaggerResult("CNN", other.labels[::-1], np.zeros(300)), test, lecture="02")


def test_a_damaged_score_file_is_refused(top, private_cache):
    test = top.subset(slice(0, 300))
    path = landscape.record(TaggerResult("CNN", test.labels, np.zeros(300)), test, lecture="02")
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CorruptCacheError, match="re-run the lecture"):
        landscape.load(test)


def test_published_table_has_the_reference_rows():
    table = landscape.published_table()
    assert table.loc["ParticleNet", "1/eB @ eS=0.3"] == 1615
    assert table.loc["CNN", "AUC"] == 0.981
    # eS = 0.5 only where the ParticleNet paper gives it, with its source; empty elsewhere
    assert table.loc["ParticleNet-Lite", "1/eB @ eS=0.5"] == 325
    assert table.loc["ParticleNet-Lite", "source @ 0.5"] == "arXiv:1902.08570"
    assert table["1/eB @ eS=0.5"].isna().sum() == len(table) - len(landscape.PUBLISHED_REJECTION_05)
    assert table.loc["CNN", "source @ 0.5"] == ""


def test_every_counterpart_is_a_published_row():
    published = landscape.published_table()
    assert all(theirs in published.index for _, theirs in landscape.COUNTERPARTS)


def test_side_by_side_pairs_our_taggers_with_their_published_counterparts(top):
    labels = top.subset(slice(0, 300)).labels
    rng = np.random.default_rng(3)
    good = labels + rng.normal(size=300)            # some overlap: a finite rejection
    poor = 0.3 * labels + rng.normal(size=300)      # much more overlap
    results = [TaggerResult("CNN on 25x25 images", labels, poor, 10, kind="logit"),
               TaggerResult("ParticleNet-Lite, 30 particles", labels, good, 20, kind="logit"),
               TaggerResult("GRU", labels, good, 30, kind="logit")]    # no published counterpart
    pairs = landscape.side_by_side(landscape.table(results))
    assert list(pairs.index) == ["ParticleNet-Lite, 30 particles", "CNN on 25x25 images"]
    assert pairs.loc["CNN on 25x25 images", "published counterpart"] == "CNN"
    assert pairs.loc["CNN on 25x25 images", "1/eB @ 0.3 published"] == 914
    assert list(pairs["rank"]) == [1, 2] and list(pairs["rank published"]) == [1, 2]
    ratio = pairs.loc["CNN on 25x25 images", "1/eB @ 0.3"] / 914
    assert pairs.loc["CNN on 25x25 images", "ratio"] == pytest.approx(ratio, abs=0.005)
    # at eS = 0.5 the landscape paper's CNN has no published value: no rank there
    assert pairs.loc["ParticleNet-Lite, 30 particles", "1/eB @ 0.5 published"] == 325
    assert pd.isna(pairs.loc["CNN on 25x25 images", "1/eB @ 0.5 published"])
    assert pd.isna(pairs.loc["CNN on 25x25 images", "rank @ 0.5"])
    assert pairs.loc["ParticleNet-Lite, 30 particles", "rank @ 0.5"] == 1


def test_side_by_side_ranks_at_05_among_published_rows_only(top):
    labels = top.subset(slice(0, 400)).labels
    rng = np.random.default_rng(5)
    scores = {name: width * labels + rng.normal(size=400) for name, width in
              [("1D CNN", 3.0), ("Particle Flow Network", 1.0), ("ParticleNet-Lite, 30 particles", 0.5),
               ("MLP on 27 features", 2.0)]}
    results = [TaggerResult(name, labels, s, 10, kind="logit") for name, s in scores.items()]
    pairs = landscape.side_by_side(landscape.table(results))
    # ours by 1/eB at 0.5 among the three with a published value: 1D CNN, PFN, ParticleNet-Lite;
    # published (arXiv:1902.08570): ParticleNet-Lite 325 > PFN 247 > P-CNN 201
    ranks = pairs["rank @ 0.5"].dropna().to_dict()
    assert ranks == {"1D CNN": 1, "Particle Flow Network": 2, "ParticleNet-Lite, 30 particles": 3}
    assert pairs["rank published @ 0.5"].dropna().to_dict() == {
        "1D CNN": 3, "Particle Flow Network": 2, "ParticleNet-Lite, 30 particles": 1}
    assert pd.isna(pairs.loc["MLP on 27 features", "rank @ 0.5"])
    assert list(pairs.columns) == landscape.SIDE_BY_SIDE_COLUMNS


def test_side_by_side_without_counterparts_is_empty(top):
    labels = top.subset(slice(0, 300)).labels
    pairs = landscape.side_by_side(landscape.table([TaggerResult("GRU", labels, labels.astype(float), 1)]))
    assert pairs.empty and "rank published" in pairs.columns
