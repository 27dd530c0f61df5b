"""Recording and loading tagger scores for the landscape page."""
from __future__ import annotations

import numpy as np
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
