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


# --- the detector: block ---------------------------------------------------------------------------

SMEARED = {"top_smeared": "top", "zjet_smeared": "zjet"}  # a card through a worse detector -> its nominal card


def _raw(name: str) -> dict:
    import yaml

    return yaml.safe_load((Path(__file__).resolve().parents[1] / "datasets" / f"{name}.yml").read_text())


def test_cards_without_a_detector_block_keep_the_course_detector_and_their_fingerprint():
    """The block changed nothing for the other cards: their fingerprints, and so their cached files, stay."""
    import hashlib
    import json

    from mlpp.data import available
    from mlpp.data.build import _fingerprint
    from mlpp.data.detector import DetectorModel

    nominal = hashlib.sha256(json.dumps(DetectorModel().to_dict(), sort_keys=True).encode()).hexdigest()[:12]
    plain = [n for n in available() if "detector" not in _raw(n) and not load_card(n).is_tracks]
    assert {"top", "top_qcd", "jets5", "qg", "dijet", "zjet", "wz"} <= set(plain)
    for name in plain:
        card = load_card(name)
        assert card.detector == DetectorModel() and _fingerprint(card).endswith(f":det-{nominal}"), name
    for name in SMEARED:
        assert not _fingerprint(load_card(name)).endswith(f":det-{nominal}")


def test_top_smeared_is_top_through_another_detector_with_another_seed():
    top, smeared = load_card("top"), load_card("top_smeared")
    assert (smeared.mode, smeared.ecm, smeared.settings, smeared.jets) == (top.mode, top.ecm, top.settings, top.jets)
    assert smeared.classes == top.classes and smeared.public == {}
    assert (smeared.n_per_class("fast"), smeared.n_per_class("full")) == (2000, 20000)
    _assert_independent(smeared, top, load_card("top_qcd"))


def test_zjet_smeared_is_the_sim_variant_of_zjet_through_another_detector_with_another_seed():
    zjet, smeared = load_card("zjet"), load_card("zjet_smeared")
    assert (smeared.mode, smeared.ecm, smeared.settings, smeared.jets, smeared.paired) == (
        zjet.mode, zjet.ecm, zjet.settings, zjet.jets, zjet.paired)
    assert smeared.classes == (zjet.classes[zjet.class_names.index("sim")],) and smeared.classes[0].label == 0
    assert (smeared.n_per_class("fast"), smeared.n_per_class("full")) == (5000, 50000)
    _assert_independent(smeared, zjet)


def _assert_independent(card, *others) -> None:
    """``card``'s Pythia runs share no seed with those of ``others`` (its events are new events)."""
    def seeds(c):
        return {chunk_seed(c.seed, ci, k) for ci, k, _ in c.chunks("full")}

    for other in others:
        assert card.seed != other.seed and not seeds(card) & seeds(other), (card.name, other.name)


@pytest.mark.parametrize("name", sorted(SMEARED))
def test_the_smeared_detectors_are_worse_in_every_field_they_change(name):
    from dataclasses import fields

    from mlpp.data.detector import DetectorModel

    card, nominal = load_card(name), DetectorModel()
    changed = set(_raw(name)["detector"])
    assert changed == {"ecal_stochastic", "ecal_constant", "hcal_stochastic", "hcal_constant",
                       "track_pt_resolution_slope"}
    for f in fields(DetectorModel):
        mine, default = getattr(card.detector, f.name), getattr(nominal, f.name)
        assert (mine > default) if f.name in changed else (mine == default), f.name
    assert card.detector.track_pt_resolution_slope == 2 * nominal.track_pt_resolution_slope
    assert card.detector == load_card(sorted(SMEARED)[0]).detector  # one worse detector for both samples


@pytest.mark.parametrize("block, message", [
    ({"ecal_resolution": 0.2}, r"unknown field\(s\) \['ecal_resolution'\] \(allowed fields: tracker_abs_eta, "),
    ({"ecal_stochastic": "twice"}, r"detector.ecal_stochastic must be a number >= 0, not 'twice' \(allowed fields"),
    ({"hcal_constant": True}, "detector.hcal_constant must be a number"),
    ({"hcal_stochastic": -1.0}, "must be a number >= 0"),
    ({"hcal_phi_cells": 71.5}, "hcal_phi_cells counts cells: give a whole number"),
    ([0.2, 1.5], "detector: give a mapping of field: number"),
])
def test_bad_detector_blocks_are_explained(tiny_cards, block, message):
    import yaml

    from mlpp.data import CardError

    raw = yaml.safe_load((tiny_cards / "tiny.yml").read_text())
    raw["detector"] = block
    (tiny_cards / "broken.yml").write_text(yaml.safe_dump(raw))
    with pytest.raises(CardError, match=message) as err:
        load_card("broken")
    assert "\n" not in str(err.value) and "broken.yml" in str(err.value)


def test_a_detector_block_changes_the_model_the_fingerprint_and_nothing_else(tiny_cards):
    import yaml

    from mlpp.data.build import _fingerprint
    from mlpp.data.detector import DetectorModel

    raw = yaml.safe_load((tiny_cards / "tiny.yml").read_text())
    raw["detector"] = {"hcal_stochastic": 2, "ecal_phi_cells": 180}
    (tiny_cards / "worse.yml").write_text(yaml.safe_dump(raw))
    worse, tiny = load_card("worse"), load_card("tiny")
    assert worse.detector.hcal_stochastic == 2.0 and isinstance(worse.detector.hcal_stochastic, float)
    assert worse.detector.ecal_phi_cells == 180 and worse.detector.ecal_cell_eta == DetectorModel().ecal_cell_eta
    assert tiny.detector == DetectorModel()
    assert _fingerprint(worse).split(":det-")[1] != _fingerprint(tiny).split(":det-")[1]
    raw["detector"] = {}                                   # an empty block is the course detector
    (tiny_cards / "same.yml").write_text(yaml.safe_dump(raw))
    assert load_card("same").detector == DetectorModel()


def test_a_tracks_card_refuses_a_detector_block(tiny_cards):
    import yaml

    from mlpp.data import CardError

    raw = _raw("tracks")
    raw["detector"] = {"ecal_stochastic": 0.2}
    (tiny_cards / "broken.yml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    with pytest.raises(CardError, match="a tracks card does not use the course detector.*remove detector"):
        load_card("broken")


def test_run_chunk_hands_the_card_s_detector_to_the_generator(monkeypatch):
    """Every mode goes through run_chunk -> generate_chunk: the card's detector must reach it."""
    import importlib

    from mlpp.data import generate

    build_module = importlib.import_module("mlpp.data.build")  # mlpp.data.build is also the function's name

    seen = []

    class Stop(Exception):
        pass

    def fake(card, class_index, chunk_index, n_jets, detector=None):
        seen.append(detector)
        raise Stop

    monkeypatch.setattr(generate, "generate_chunk", fake)
    for name in ("top_smeared", "zjet_smeared", "top"):
        with pytest.raises(Stop):
            build_module.run_chunk(load_card(name), 0, 0, 5)
    assert seen == [load_card("top_smeared").detector, load_card("zjet_smeared").detector, load_card("top").detector]
    assert seen[0] != seen[2]


def test_a_paired_chunk_sees_the_card_s_detector():
    """The same events (same card, class, chunk, seed) through the card's worse detector and through the
    course detector: identical particle level, different detector level."""
    from mlpp.data.detector import DetectorModel
    from mlpp.data.generate import generate_chunk

    card = load_card("zjet_smeared")
    worse, nominal = generate_chunk(card, 0, 0, 12), generate_chunk(card, 0, 0, 12, detector=DetectorModel())
    # a row is kept when either level passes, so compare the events that both runs kept
    common, i, j = np.intersect1d(worse["event"], nominal["event"], return_indices=True)
    assert len(common) >= 10
    np.testing.assert_array_equal(worse["boson_pt"][i], nominal["boson_pt"][j])
    np.testing.assert_array_equal(worse["particle_jet_p4"][i], nominal["particle_jet_p4"][j])
    assert not np.allclose(worse["detector_jet_p4"][i, 0], nominal["detector_jet_p4"][j, 0])
