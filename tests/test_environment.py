"""The places the course runs: environment.yml (Binder, conda) lists exactly what pyproject.toml pins,
with a CPU-only torch; Google Colab (Python 3.12) gets the course from each lecture's setup cell."""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[1]
TORCH_CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"
COLAB_CELL_ID = "colab-setup"


def test_environment_yml_mirrors_pyproject():
    pinned = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1, "environment.yml needs exactly one pip: section"
    requirements = [line for line in pip_sections[0] if not line.startswith("-")]
    assert requirements == pinned, "environment.yml's pip: list drifted from pyproject.toml's dependencies"
    assert "-e ." in pip_sections[0]
    assert "python=3.11" in env["dependencies"]


def _empty_wheel(folder: Path, name: str, version: str) -> None:
    """A valid, empty wheel ``name==version`` in ``folder`` (what pip needs to choose between builds)."""
    import base64
    import hashlib
    import zipfile

    info = f"{name}-{version}.dist-info"
    files = {f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    digest = {k: base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=").decode()
              for k, v in files.items()}
    files[f"{info}/RECORD"] = "".join(f"{k},sha256={digest[k]},{len(v)}\n" for k, v in files.items()) + f"{info}/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as wheel:
        for path, text in files.items():
            wheel.writestr(path, text)


def test_binder_installs_torch_without_cuda(tmp_path):
    """environment.yml adds PyTorch's CPU-only index beside PyPI. Both offer torch at the pinned
    version, PyPI as 2.13.0 (the CUDA build on Linux), the CPU index as 2.13.0+cpu: pip, asked for
    the pin, takes +cpu. Shown here with empty wheels of both names in two local folders (offline)."""
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_lines = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert TORCH_CPU_INDEX in pip_lines, "environment.yml lost PyTorch's CPU-only index (Binder would get CUDA torch)"
    assert not [line for line in pip_lines if line.startswith(("nvidia-", "cuda"))]
    (torch_pin,) = [line for line in pip_lines if line.startswith("torch==")]
    version = torch_pin.removeprefix("torch==")
    _empty_wheel(tmp_path / "pypi", "torch", version)
    _empty_wheel(tmp_path / "cpu", "torch", f"{version}+cpu")
    chosen = subprocess.run([sys.executable, "-m", "pip", "--isolated", "install", "--dry-run", "--ignore-installed",
                             "--no-index", "--find-links", str(tmp_path / "pypi"), "--find-links", str(tmp_path / "cpu"),
                             "--quiet", "--report", "-", torch_pin], capture_output=True, text=True, timeout=120)
    assert chosen.returncode == 0, chosen.stderr
    assert [item["metadata"]["version"] for item in json.loads(chosen.stdout)["install"]] == [f"{version}+cpu"]


def test_python_312_is_allowed_for_colab():
    requires = SpecifierSet(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"])
    assert requires.contains("3.11.9") and requires.contains("3.12.11"), f"requires-python {requires}"


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


def _colab_cells() -> dict[str, str]:
    """The Colab setup cell of each lecture (the source of its first code cell)."""
    cells = {}
    for nb in sorted((REPO / "lectures").glob("*.ipynb")):
        code = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        assert code and code[0].get("id") == COLAB_CELL_ID, f"{nb.name}: the first code cell is not the Colab setup cell"
        cells[nb.name] = "".join(code[0]["source"])
    return cells


def test_every_lecture_starts_with_the_same_colab_cell():
    cells = _colab_cells()
    assert len(set(cells.values())) == 1, "the lectures' Colab cells differ: copy one into all (same text)"
    source = next(iter(cells.values()))
    tree = ast.parse(source)
    # Everything but `import sys` sits under the Colab test, so nothing happens elsewhere.
    guarded = [node for node in tree.body if not isinstance(node, ast.Import)]
    assert len(guarded) == 1 and isinstance(guarded[0], ast.If)
    assert ast.unparse(guarded[0].test) == "'google.colab' in sys.modules"
    # It clones the repository the site's launch buttons point at.
    repository = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]
    assert f'"--branch", "{repository["branch"]}"' in source and f'"{repository["url"]}"' in source, \
        "the Colab cell clones another repository or branch than _config.yml's"
    # The packages it leaves to Colab are pinned names of pyproject.toml (a renamed pin is caught here).
    keeps = next(node.value for node in ast.walk(tree)
                 if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "colab_keeps")
    pinned = {pin.split("==")[0] for pin in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]}
    assert ast.literal_eval(keeps) <= pinned and "ipykernel" in ast.literal_eval(keeps)


def test_colab_cell_does_nothing_outside_colab(tmp_path):
    """Run as a script here (no google.colab): no output, no new file, the environment unchanged."""
    source = next(iter(_colab_cells().values()))
    probe = source + "\nimport json, os\nprint(json.dumps(dict(os.environ)))\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLPP_")}
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(subprocess.run(
        [sys.executable, "-c", "import json, os\nprint(json.dumps(dict(os.environ)))"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60).stdout)
    assert not list(tmp_path.iterdir()) and not Path("/content/mlpp").exists()
