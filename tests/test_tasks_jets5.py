"""The jets5 thread (mlpp.tasks.jets5): one split, one feature list, one standardisation, one home.

The split and the scaling are checked on a small synthetic JetDataset (they only move rows and
columns); the last tests scan every module and notebook for re-typed copies of the feature list
or of the 60/20/20 split.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from mlpp.data import FEATURE_NAMES, JetDataset
from mlpp.tasks import jets5

REPO = Path(__file__).resolve().parents[1]
HOME = REPO / "src" / "mlpp" / "tasks" / "jets5.py"
# Files allowed to spell the names or the fractions for another reason than the jets5 thread:
# features.py defines all 29 features that the generator computes (jets5 uses 16 of them), and
# JetDataset.split's default fractions are the generic method's, not the thread's, and the tracks
# thread owns its own split of tracker events, which happens to use the same fractions.
ALLOWED_NAMES = {REPO / "src" / "mlpp" / "data" / "features.py"}
ALLOWED_SPLIT = {REPO / "src" / "mlpp" / "data" / "dataset.py", REPO / "src" / "mlpp" / "tasks" / "tracks.py"}


def toy_jets(n: int = 1003, seed: int = 0) -> JetDataset:
    """``n`` jets with every feature of the course; the ``pt`` column numbers the jets 0..n-1."""
    rng = np.random.default_rng(seed)
    features = rng.lognormal(size=(n, len(FEATURE_NAMES))).astype(np.float32)
    features[:, FEATURE_NAMES.index("pt")] = np.arange(n)
    width = 4
    constituents = {key: np.zeros((n, width), dtype=np.float32) for key in ("pt", "eta", "phi", "e", "charge")}
    constituents["pid_class"] = np.full((n, width), -1, dtype=np.int8)
    constituents["mask"] = np.zeros((n, width), dtype=bool)
    return JetDataset(name="jets5", class_names=["g", "q", "W", "Z", "t"], labels=rng.integers(0, 5, n),
                      jet=np.zeros((n, 4), dtype=np.float32), features=features, constituents=constituents,
                      feature_names=list(FEATURE_NAMES), meta={"card": "jets5", "tier": "fast"})


def test_split_is_disjoint_complete_and_sixty_twenty_twenty():
    jets = toy_jets()
    parts = jets5.split(jets)
    ids = [part.feature("pt").astype(int) for part in parts]
    assert sum(len(i) for i in ids) == len(jets)
    assert len(set(ids[0]) | set(ids[1]) | set(ids[2])) == len(jets)  # no jet twice, none lost
    assert [len(i) for i in ids] == [602, 200, 201]  # 0.6, 0.2, 0.2 of 1003, rounded at the edges
    assert [len(jets.labels[s]) for s in jets5.split_slices(len(jets))] == [len(i) for i in ids]


def test_split_is_deterministic_and_in_stored_order():
    jets = toy_jets()
    first, second = jets5.split(jets), jets5.split(toy_jets())
    for a, b in zip(first, second):
        assert np.array_equal(a.feature("pt"), b.feature("pt")) and np.array_equal(a.labels, b.labels)
    assert np.array_equal(np.concatenate([p.feature("pt") for p in first]), np.arange(len(jets)))
    # the same rows as the data layer's generic split with the thread's fractions
    for mine, generic in zip(first, jets.split(jets5.SPLIT)):
        assert np.array_equal(mine.labels, generic.labels)


def test_features_are_the_sixteen_in_order():
    jets = toy_jets(50)
    matrix = jets5.features(jets)
    assert matrix.shape == (50, 16) and len(set(jets5.FEATURES)) == 16
    for column, name in enumerate(jets5.FEATURES):
        assert np.array_equal(matrix[:, column], jets.feature(name))


def test_standardisation_uses_the_training_jets_only():
    jets = toy_jets()
    arrays = jets5.arrays(jets)
    train, val, test = jets5.split(jets)
    raw_train, raw_test = jets5.features(train), jets5.features(test)
    np.testing.assert_allclose(arrays.scaler.mean, raw_train.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(arrays.scaler.scale, raw_train.astype(np.float64).std(0), rtol=1e-12)
    np.testing.assert_allclose(arrays.x_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(arrays.x_train.std(0), 1, atol=1e-4)
    np.testing.assert_allclose(arrays.x_test, (raw_test - arrays.scaler.mean) / arrays.scaler.scale, rtol=1e-5, atol=1e-5)
    assert np.array_equal(arrays.y_train, train.labels) and np.array_equal(arrays.y_val, val.labels)
    assert np.array_equal(arrays.y_test, test.labels)

    # Shifting every validation and test jet far away changes neither the scaler nor the training matrix.
    moved = toy_jets()
    held_out = slice(jets5.split_slices(len(moved))[1].start, None)
    moved.features[held_out] = moved.features[held_out] * 10.0 + 1000.0
    shifted = jets5.arrays(moved)
    assert np.array_equal(shifted.scaler.mean, arrays.scaler.mean)
    assert np.array_equal(shifted.scaler.scale, arrays.scaler.scale)
    assert np.array_equal(shifted.x_train, arrays.x_train)
    assert not np.allclose(shifted.x_test, arrays.x_test)


def test_other_datasets_are_refused():
    jets = toy_jets(20)
    jets.meta["card"] = "top"
    with pytest.raises(ValueError, match="jets5"):
        jets5.split(jets)
    with pytest.raises(ValueError, match="jets5"):
        jets5.arrays(jets)


# ----------------------------------------------------------------------------- one home
def _python_sources() -> list[tuple[str, str, Path]]:
    """(label, code, path) for every module, script, test and notebook code cell of the course."""
    sources = []
    for folder in ("src", "benchmarks", "tests", "hls"):
        for path in sorted((REPO / folder).rglob("*.py")):
            sources.append((str(path.relative_to(REPO)), path.read_text(encoding="utf-8"), path))
    for folder in ("lectures", "solutions", "exercises", "book"):
        for path in sorted((REPO / folder).rglob("*.ipynb")):
            if ".ipynb_checkpoints" in path.parts:
                continue
            cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
            for index, cell in enumerate(cells):
                if cell["cell_type"] == "code":
                    code = "".join(cell["source"])
                    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in code.split("\n"))
                    sources.append((f"{path.relative_to(REPO)} cell {index}", code, path))
    return sources


def _literals(code: str):
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            yield node


def test_sources_are_found():
    labels = [label for label, _, _ in _python_sources()]
    assert any(label.startswith("lectures/01_nn_recap.ipynb") for label in labels)
    assert any(label.startswith("solutions/11_fpga_hls4ml") for label in labels)
    assert "src/mlpp/hls/models.py" in labels


def _retyped(elements: list) -> bool:
    """A copy of the feature list: half of the 16 names or more, or three in a row in the thread's order.

    A plot's choice of two or three features ("mass_mmdt", "n2_b1", "multiplicity") is neither.
    """
    names = jets5.FEATURES
    if len(set(elements) & set(names)) >= len(names) // 2:
        return True
    runs = {tuple(names[i:i + 3]) for i in range(len(names) - 2)}
    return any(tuple(elements[i:i + 3]) in runs for i in range(len(elements) - 2))


def test_the_copy_detector():
    names = list(jets5.FEATURES)
    assert _retyped(names) and _retyped(names[::-1][:8]) and _retyped(["pt"] + names[4:7])
    assert not _retyped(["mass_mmdt", "n2_b1", "multiplicity"]) and not _retyped(["c1_b1", "multiplicity", "n2_b1"])


def test_no_file_but_the_thread_retypes_the_feature_list():
    """No list, tuple or set literal outside tasks/jets5.py is a copy of the 16 names (see _retyped)."""
    found = []
    for label, code, path in _python_sources():
        if path == HOME or path in ALLOWED_NAMES:
            continue
        for node in _literals(code):
            elements = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            if _retyped(elements):
                found.append(f"{label}, line {node.lineno}: {[e for e in elements if e in jets5.FEATURES]}")
    assert not found, "use mlpp.tasks.jets5.FEATURES instead of re-typing it:\n" + "\n".join(found)


def test_no_file_but_the_thread_retypes_the_split():
    """No literal (0.6, 0.2, 0.2) outside tasks/jets5.py: notebooks call jets5.split / jets5.arrays."""
    found = []
    for label, code, path in _python_sources():
        if path == HOME or path in ALLOWED_SPLIT:
            continue
        for node in _literals(code):
            values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, (int, float))]
            if len(values) == len(node.elts) == 3 and np.allclose(values, jets5.SPLIT):
                found.append(f"{label}, line {node.lineno}")
    assert not found, "use mlpp.tasks.jets5.split instead of a 0.6/0.2/0.2 split:\n" + "\n".join(found)


def test_the_thread_itself_is_what_the_scan_would_catch():
    """The scan is not blind: the thread's own module holds the literals it looks for."""
    code = HOME.read_text(encoding="utf-8")
    assert any(len({e.value for e in n.elts if isinstance(e, ast.Constant)} & set(jets5.FEATURES)) == 16
               for n in _literals(code))
    assert any(len(n.elts) == 3 and all(isinstance(e, ast.Constant) for e in n.elts)
               and np.allclose([e.value for e in n.elts], jets5.SPLIT) for n in _literals(code))


def test_notebooks_that_import_the_thread_need_its_card(tmp_path, monkeypatch):
    """'mlpp data generate --needed' sees jets5 in a notebook that only imports the thread."""
    from mlpp.data.cli import needed_cards

    (tmp_path / "lectures").mkdir()
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [],
                     "source": "from mlpp.tasks import jets5\njets = jets5.load()\n"}]}
    (tmp_path / "lectures" / "nb.ipynb").write_text(json.dumps(nb))
    monkeypatch.setenv("MLPP_ROOT", str(tmp_path))
    monkeypatch.setenv("MLPP_CARDS", str(REPO / "datasets"))
    assert needed_cards() == ["jets5"]
