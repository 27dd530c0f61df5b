"""Dataset cards that must agree with each other, and combining datasets."""
from __future__ import annotations

from pathlib import Path

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


# --- event cards (mode: events) ------------------------------------------------------------------

def test_dijet_is_an_event_card_with_its_own_signal_size():
    card = load_card("dijet")
    assert card.is_events and card.class_names == ["qcd", "wprime"]
    assert card.jets.jets_per_event == 2 and card.jets.R == 1.0 and card.ecm == 13000.0
    assert card.n_per_class("fast", 0) > 5 * card.n_per_class("fast", 1)
    for tier in ("fast", "full"):
        units = card.chunks(tier)
        for ci in range(2):
            assert sum(n for c, _, n in units if c == ci) == card.n_per_class(tier, ci)
    assert all(c.truth == {"rule": "any"} for c in card.classes)


def test_jet_cards_keep_their_mode_and_fingerprint_format():
    """Event cards changed nothing for jet cards: same mode, sizes and fingerprint layout (their cached files stay valid)."""
    from mlpp.data.build import GENERATOR_VERSION, _fingerprint

    for name in ("top", "jets5", "qg", "top_qcd"):
        card = load_card(name)
        assert not card.is_events and all(c.sizes is None for c in card.classes)
        assert card.n_per_class("fast", 0) == card.n_per_class("fast")
        assert _fingerprint(card).startswith(f"{card.sha256}:v{GENERATOR_VERSION}:det-")
    assert ":v3.e" in _fingerprint(load_card("dijet"))


@pytest.mark.parametrize("edit, message", [
    (lambda raw: raw.update(mode="histograms"), "mode must be one of"),
    (lambda raw: raw["classes"][0].update(truth={"rule": "parton", "pdgids": [21]}), "must be 'any'"),
    (lambda raw: raw["classes"][1]["sizes"].pop("full"), "wprime: sizes has no entry"),
])
def test_bad_event_cards_are_explained(tiny_cards, edit, message):
    import yaml

    from mlpp.data import CardError

    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "datasets" / "dijet.yml").read_text())
    edit(raw)
    (tiny_cards / "broken.yml").write_text(yaml.safe_dump(raw))
    with pytest.raises(CardError, match=message):
        load_card("broken")


# --- tracks cards (mode: tracks) -----------------------------------------------------------------

def test_tracks_card_is_a_card_of_the_data_layer_with_its_own_fingerprint():
    from mlpp.data import available
    from mlpp.data.build import TRACKS_MODE_VERSION, _fingerprint

    card = load_card("tracks")
    assert "tracks" in available() and card.is_tracks and not (card.is_events or card.is_paired)
    assert card.tracks["pt_min"] == 1.0 and card.tracker.n_layers == 8
    assert sum(n for _, _, n in card.chunks("full")) == card.n_per_class("full") == 2000
    assert _fingerprint(card) == f"{card.sha256}:tracks-v{TRACKS_MODE_VERSION}"
    with pytest.raises(AttributeError, match="only a tracks card"):
        load_card("top").tracker


@pytest.mark.parametrize("edit, message", [
    (lambda raw: raw.update(jets={"R": 0.4}), r"no jets or classes: remove \['jets'\]"),
    (lambda raw: raw.pop("tracker"), "missing key 'tracker'"),
    (lambda raw: raw["particles"].pop("pt_min"), "give exactly pt_min"),
    (lambda raw: raw["tracker"].update(field=2.0), r"tracker: unknown key\(s\) \['field'\]"),
    (lambda raw: raw["tracker"].update(layers=[]), "give layers"),
    (lambda raw: raw["tracker"]["layers"][2].pop("sigma_z"), r"layers\[2\]: give exactly r, half_length"),
    (lambda raw: raw["tracker"]["layers"][0].update(r=-1.0), r"layers\[0\]: r and half_length must be > 0"),
    (lambda raw: raw["tracker"]["layers"].reverse(), "radii must increase outwards"),
    (lambda raw: raw["tracker"].update(efficiency=1.5), "0 <= efficiency <= 1"),
    (lambda raw: raw.update(chunk_events=0), "chunk_events must be at least 1"),
    (lambda raw: raw["sizes"].pop("full"), "no entry for tier"),
])
def test_bad_tracks_cards_are_explained(tiny_cards, edit, message):
    import yaml

    from mlpp.data import CardError

    raw = yaml.safe_load((Path(__file__).resolve().parents[1] / "datasets" / "tracks.yml").read_text())
    edit(raw)
    (tiny_cards / "broken.yml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    with pytest.raises(CardError, match=message) as err:
        load_card("broken")
    assert "\n" not in str(err.value)
