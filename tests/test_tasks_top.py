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
    files = [p for pattern in ("src/mlpp/**/*.py", "lectures/*.ipynb", "solutions/*/*.ipynb", "exercises/*/*.ipynb",
                               "benchmarks/*.py", "hls/**/*.py")
             for p in REPO.glob(pattern) if p.name != "top.py" or p.parent.name != "tasks"]
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
