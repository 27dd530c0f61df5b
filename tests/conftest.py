"""Shared fixtures: the fast-tier datasets and a private cache for tests that write."""
from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable
from types import ModuleType
from pathlib import Path

import pytest

os.environ.setdefault("MLPP_TIER", "fast")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def benchmark_script() -> Callable[[str], ModuleType]:
    """Load a script of benchmarks/ (not a package) as a module: ``benchmark_script("full_tier")``."""
    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(f"benchmark_{name}", REPO / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load


@pytest.fixture(scope="session")
def jets5():
    """The fast-tier jets5 dataset (generated on first use, about a minute on 2 cores)."""
    from mlpp import data

    return data.load("jets5", "fast")


@pytest.fixture(scope="session")
def top():
    """The fast-tier top-vs-QCD dataset."""
    from mlpp import data

    return data.load("top", "fast")


@pytest.fixture()
def tiny_cards(tmp_path, monkeypatch):
    """A private cards folder and cache with a 'tiny' copy of the top card (40 jets per class)."""
    import yaml

    cards = tmp_path / "cards"
    cards.mkdir()
    raw = yaml.safe_load((REPO / "datasets" / "top.yml").read_text())
    raw.update(name="tiny", sizes={"fast": 40, "full": 80}, chunk_jets=20)
    (cards / "tiny.yml").write_text(yaml.safe_dump(raw))
    shutil.copy(REPO / "datasets" / "qg.yml", cards / "qg.yml")
    monkeypatch.setenv("MLPP_CARDS", str(cards))
    monkeypatch.setenv("MLPP_DATA", str(tmp_path / "cache"))
    return cards

# The demo exercise is graded by test_grading.py, not executed by nbval.
collect_ignore = ["fixtures"]


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course (the checkout as far as the grader knows) with the demo exercise released.

    tests/test_grading.py overrides it with a course that has a second exercise."""
    from mlpp.cli import main

    root = tmp_path_factory.mktemp("course")
    shutil.copyfile(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(REPO / "tests" / "fixtures" / "demo_exercise", root / "solutions" / "demo_exercise")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLPP_ROOT", str(root))
        assert main(["release"]) == 0
    return root
