"""Dataset cards that must agree with each other, and combining datasets."""
from __future__ import annotations

import numpy as np
import pytest

from mlpp.data.cards import load_card
from mlpp.data.dataset import JetDataset
from mlpp.data.generate import chunk_seed


def test_top_qcd_is_the_qcd_class_of_top_with_another_seed():
    top, extra = load_card("top"), load_card("top_qcd")
    assert extra.class_names == ["qcd"]
    assert extra.classes[0] == top.classes[top.class_names.index("qcd")]
    assert (extra.ecm, extra.settings, extra.jets) == (top.ecm, top.settings, top.jets)
    assert extra.seed != top.seed
    top_seeds = {chunk_seed(top.seed, 0, i) for i in range(len(top.chunks("full")))}
    extra_seeds = {chunk_seed(extra.seed, 0, i) for i in range(len(extra.chunks("full")))}
    assert not top_seeds & extra_seeds, "an extra QCD chunk would repeat events of the top card"


def _dataset(name, class_names, labels, width, R=0.8):
    n = len(labels)
    rng = np.random.default_rng(len(name))
    mask = np.zeros((n, width), bool)
    mask[:, :2] = True
    constituents = {k: np.where(mask, rng.random((n, width)), 0.0) for k in ("pt", "eta", "phi", "e", "charge")}
    constituents["pid_class"] = np.where(mask, 1, -1)
    constituents["mask"] = mask
    return JetDataset(name=name, class_names=class_names, labels=np.asarray(labels), jet=rng.random((n, 4)),
                      features=rng.random((n, 3)), constituents=constituents, feature_names=["a", "b", "c"],
                      meta={"R": R, "card": name})


def test_concatenate_relabels_by_class_name_and_pads():
    base = _dataset("top", ["qcd", "top"], [0, 1, 1], width=3)
    extra = _dataset("top_qcd", ["qcd"], [0, 0], width=5)
    both = base.concatenate(extra)
    assert len(both) == 5 and both.max_constituents == 5
    assert both.labels.tolist() == [0, 1, 1, 0, 0]
    assert both.mask[:3, 3:].sum() == 0 and (both.constituents["pid_class"][:3, 3:] == -1).all()
    np.testing.assert_array_equal(both.constituents["pt"][3:], extra.constituents["pt"])
    assert both.meta["added"] == ["top_qcd"]


def test_concatenate_maps_a_class_that_has_another_label():
    base = _dataset("top", ["qcd", "top"], [0, 1], width=2)
    only_top = _dataset("more", ["top"], [0, 0], width=2)
    assert base.concatenate(only_top).labels.tolist() == [0, 1, 1, 1]


@pytest.mark.parametrize("other, message", [
    (_dataset("w", ["W"], [0], width=2), "not among"),
    (_dataset("wide", ["qcd"], [0], width=2, R=0.4), "jet radius"),
])
def test_concatenate_refuses_what_does_not_fit(other, message):
    with pytest.raises(ValueError, match=message):
        _dataset("top", ["qcd", "top"], [0, 1], width=2).concatenate(other)
