"""The top thread: one split, one set of test jets, one fingerprint, and no copies elsewhere."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from mlpp.tasks import top as thread

REPO = Path(__file__).resolve().parents[1]


def test_split_is_50_10_40_and_the_test_jets_add_top_qcd(top):
    from mlpp import data

    extra = data.load("top_qcd", "fast")
    train, val, test = thread.split(top)
    n = len(top)
    assert (len(train), len(val)) == (round(0.5 * n), round(0.6 * n) - round(0.5 * n))
    assert len(test) == n - round(0.6 * n) + len(extra)
    assert np.sum(test.labels == 0) == np.sum(top.labels[round(0.6 * n):] == 0) + len(extra)
    # training and validation jets never reach the test set
    seen = {tuple(j) for j in np.round(np.concatenate([train.jet, val.jet]), 6)}
    assert not seen & {tuple(j) for j in np.round(test.jet, 6)}


def test_the_fingerprint_follows_the_test_jets(top):
    _, _, test = thread.split(top)
    again = thread.split(top)[2]
    assert thread.fingerprint(test) == thread.fingerprint(again)
    assert re.fullmatch(r"[0-9a-f]{16}", thread.fingerprint(test))
    assert thread.fingerprint(test.subset(slice(1, None))) != thread.fingerprint(test)


def test_split_refuses_another_dataset(jets5):
    with pytest.raises(ValueError, match="needs the 'top' dataset"):
        thread.split(jets5)


def _code_of(path) -> str:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return path.read_text()


def test_no_notebook_or_module_retypes_the_top_split():
    """The 50/10/40 fractions and the top_qcd extension are written in mlpp/tasks/top.py only."""
    # The wz thread owns its own split of its own card, which happens to use the same fractions.
    own_split = {REPO / "src" / "mlpp" / "tasks" / "top.py", REPO / "src" / "mlpp" / "tasks" / "wz.py"}
    files = [p for pattern in ("src/mlpp/**/*.py", "lectures/*.ipynb", "solutions/*/*.ipynb", "exercises/*/*.ipynb",
                               "benchmarks/*.py", "hls/**/*.py")
             for p in REPO.glob(pattern) if p not in own_split]
    assert len(files) > 20
    split = re.compile(r"0?\.5\s*,\s*0?\.1\s*,\s*0?\.4")
    extra = re.compile(r"""load\(\s*["']top_qcd["']""")
    offenders = [str(p.relative_to(REPO)) for p in files if split.search(_code_of(p)) or extra.search(_code_of(p))]
    assert offenders == [], f"use mlpp.tasks.top.split instead of re-typing the split in {offenders}"


def test_mlpp_train_jets_keeps_a_nested_subset_of_the_training_jets(top, monkeypatch):
    full_train, val, test = thread.split(top)
    monkeypatch.setenv("MLPP_TRAIN_JETS", "500")
    small, small_val, small_test = thread.split(top)
    assert len(small) == 500 and np.array_equal(small.jet, full_train.jet[:500])
    assert thread.fingerprint(small_test) == thread.fingerprint(test) and len(small_val) == len(val)
    monkeypatch.setenv("MLPP_TRAIN_JETS", str(len(full_train) + 1))
    with pytest.raises(ValueError, match="ask for fewer"):
        thread.split(top)
    monkeypatch.setenv("MLPP_TRAIN_JETS", "ten")
    with pytest.raises(ValueError, match="not a positive whole number"):
        thread.split(top)


# --- the same physics through a worse detector (top_smeared) -----------------------------------------

def test_load_smeared_refuses_a_sample_whose_labels_mean_something_else(top, monkeypatch):
    from mlpp import data

    swapped = top.subset(slice(0, 10))
    swapped.class_names = list(reversed(top.class_names))
    monkeypatch.setattr(data, "load", lambda name, tier=None: swapped)
    with pytest.raises(ValueError, match="labels would not mean the same"):
        thread.load_smeared("fast")


def test_the_thread_names_the_cards_its_functions_load():
    """'mlpp data generate --needed' finds top_qcd and top_smeared through CALL_CARDS: each is a card,
    and each function exists."""
    from mlpp.data import available

    assert thread.CALL_CARDS == {"split": thread.EXTRA_QCD_CARD, "load_smeared": thread.SMEARED_CARD}
    assert all(callable(getattr(thread, f)) and card in available() for f, card in thread.CALL_CARDS.items())


@pytest.fixture(scope="module")
def top_smeared():
    from mlpp.data import dataset_path
    from mlpp.data.cli import needed_cards

    if not dataset_path(thread.SMEARED_CARD, "fast").exists() and thread.SMEARED_CARD not in needed_cards():
        pytest.skip("top_smeared-fast.h5 is not cached and no lecture loads it yet: "
                    "run 'mlpp data generate top_smeared --tier fast' (a few minutes on 2 cores)")
    return thread.load_smeared("fast")


@pytest.mark.slow
def test_top_smeared_has_both_classes_in_the_window_through_its_own_detector(top_smeared, top):
    from mlpp.data import load_card

    jets = top_smeared
    assert jets.class_names == top.class_names and np.bincount(jets.labels).tolist() == [2000, 2000]
    assert np.all((jets.jet[:, 0] >= 550) & (jets.jet[:, 0] < 650))
    assert jets.meta["detector"] == load_card(thread.SMEARED_CARD).detector.to_dict() != top.meta["detector"]
    # the same physics: the top jets' mass still peaks at the top mass
    m = jets.jet[jets.labels == 1, 3]
    counts, edges = np.histogram(m, bins=np.arange(100, 260, 10))
    print(f"top_smeared top jets: mass peak bin {edges[np.argmax(counts)]:.0f}-{edges[np.argmax(counts)] + 10:.0f} GeV")
    assert 150 <= edges[np.argmax(counts)] < 200
