"""environment.yml (Binder, conda) must list exactly what pyproject.toml pins."""
from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_environment_yml_mirrors_pyproject():
    pinned = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip: section"
    requirements = [line for line in pip_sections[0] if not line.startswith("-")]
    assert requirements == pinned, "environment.yml's pip: list drifted from pyproject.toml's dependencies"
    assert "-e ." in pip_sections[0]
    assert "python=3.11" in env["dependencies"]


def test_every_dependency_is_pinned_exactly():
    pinned = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    loose = [d for d in pinned if "==" not in d]
    assert not loose, f"unpinned dependencies: {loose}"


def test_pins_match_the_installed_environment():
    """The venv that ran these tests has exactly the pinned versions (a stale venv is caught here)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    wrong = []
    for line in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]:
        req = Requirement(line)
        installed = metadata.version(req.name)
        if not req.specifier.contains(installed.split("+")[0], prereleases=True):
            wrong.append(f"{req.name} {installed} (want {req.specifier})")
    assert not wrong, "reinstall with 'make venv': " + ", ".join(wrong)
