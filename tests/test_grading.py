"""Releasing and grading exercises with nbgrader.

The fast tests use a tiny demo exercise (tests/fixtures/demo_exercise: 3 points, numpy
only) in a temporary course folder; each nbgrader run takes about 3 s. The slow tests
do the same checks for every real exercise under the repository's solutions/.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest

from mlpp.cli import main
from mlpp.grading import CSV_EXTRA, GradeResult, PartScore, format_result, grade_batch, grade_notebook
from mlpp.nbgrader_bridge import IGNORED, exercise_ids, read_notebook, write_notebook
from mlpp.release import release_exercise, secret_lines

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "demo_exercise"
DEMO, OTHER = "demo_exercise", "other_exercise"
HIDDEN_ASSERT = "np.sqrt(pxs**2 + pys**2)"
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


# --- helpers --------------------------------------------------------------------------

def cell_text(cell: dict) -> str:
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def notebook_lines(nb: dict) -> set[str]:
    """Stripped, non-empty source lines of every cell."""
    return {ln.strip() for cell in nb["cells"] for ln in cell_text(cell).splitlines() if ln.strip()}


def with_grade_ids_renamed(nb: dict, prefix: str) -> dict:
    """The same notebook with every nbgrader grade id (and cell id) prefixed: another exercise."""
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader")
        if meta:
            meta["grade_id"] = prefix + meta["grade_id"]
        cell["id"] = prefix + cell["id"]
    return nb


def answered(release: Path, answer: str) -> dict:
    """The release notebook with the stub replaced by ``answer``."""
    nb = read_notebook(release)
    for cell in nb["cells"]:
        text = cell_text(cell)
        if "raise NotImplementedError()" in text:
            cell["source"] = text.replace("raise NotImplementedError()", answer)
    return nb


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err, f"expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err
    return err


# --- the demo course ------------------------------------------------------------------

@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course with the demo exercise and a look-alike (other grade ids), both released."""
    root = tmp_path_factory.mktemp("course")
    shutil.copyfile(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(FIXTURE, root / "solutions" / DEMO)
    other = root / "solutions" / OTHER / f"{OTHER}.ipynb"
    other.parent.mkdir(parents=True)
    write_notebook(with_grade_ids_renamed(read_notebook(FIXTURE / f"{DEMO}.ipynb"), "other_"), other)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLPP_ROOT", str(root))
        assert main(["release"]) == 0
    return root


@pytest.fixture()
def demo_root(course: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo course as the CLI's repository root."""
    monkeypatch.setenv("MLPP_ROOT", str(course))
    return course


def test_ignore_lists_agree() -> None:
    """The course copies skip the same editor droppings that nbgrader_config.py tells nbgrader to skip."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    assert sorted(config.CourseDirectory.ignore) == sorted(IGNORED)
    assert (config.CourseDirectory.source_directory, config.CourseDirectory.release_directory) == (
        "solutions", "exercises")


def test_release_strips_solutions_and_hidden_tests(course: Path) -> None:
    release = course / "exercises" / DEMO
    assert sorted(p.name for p in release.iterdir()) == [f"{DEMO}.ipynb"]
    text = (release / f"{DEMO}.ipynb").read_text()
    for marker in MARKERS:
        assert marker not in text
    assert HIDDEN_ASSERT not in text
    assert "np.hypot" not in text
    assert "raise NotImplementedError()" in text
    lines = notebook_lines(read_notebook(release / f"{DEMO}.ipynb"))
    assert not lines & secret_lines(read_notebook(course / "solutions" / DEMO / f"{DEMO}.ipynb"))
    assert not (course / "gradebook.db").exists() and not (course / "release").exists()


def test_release_is_deterministic(course: Path, tmp_path: Path) -> None:
    """An independent release is byte-identical; data files come along, checkpoints do not."""
    shutil.copyfile(course / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    source = tmp_path / "solutions" / DEMO
    shutil.copytree(course / "solutions" / DEMO, source)
    (source / "pts.csv").write_text("px,py\n3,4\n")
    (source / ".ipynb_checkpoints").mkdir()
    (source / ".ipynb_checkpoints" / f"{DEMO}-checkpoint.ipynb").write_text("{}")
    written = release_exercise(source, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == [f"{DEMO}.ipynb", "pts.csv"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{DEMO}.ipynb", "pts.csv"]
    committed = course / "exercises" / DEMO / f"{DEMO}.ipynb"
    assert (tmp_path / "out" / f"{DEMO}.ipynb").read_bytes() == committed.read_bytes()
    assert not (tmp_path / "gradebook.db").exists() and not (tmp_path / "exercises").exists()


def test_release_check(course: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "course"
    shutil.copytree(course, root)
    monkeypatch.setenv("MLPP_ROOT", str(root))
    assert main(["release", "--check"]) == 0
    edited = root / "exercises" / DEMO / f"{DEMO}.ipynb"
    edited.write_text(edited.read_text().replace("YOUR CODE HERE", "your code here"))
    (root / "exercises" / "old_exercise").mkdir()
    capsys.readouterr()
    assert main(["release", "--check"]) == 1
    err = capsys.readouterr().err
    assert "exercises/ is out of date: run 'make release'" in err
    assert f"exercises/{DEMO}/{DEMO}.ipynb (changed)" in err
    assert "exercises/old_exercise/ (no source in solutions/)" in err


def test_untouched_release_gets_zero(course: Path) -> None:
    result = grade_notebook(course / "exercises" / DEMO / f"{DEMO}.ipynb", DEMO, source_root=course, timeout=60)
    assert isinstance(result, GradeResult)
    assert (result.score, result.max_score) == (0, 3)
    # every failing cell is named, with its exception (the release's stub raises when the tests call it)
    assert result.failed_cells == ["test_pts_shape: NotImplementedError", "test_pts_values: NotImplementedError"]


def test_hidden_tests_run(demo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """|px| + |py| passes the visible test (shape, sign) but not the hidden one (values)."""
    wrong = tmp_path / "wrong.ipynb"
    release = demo_root / "exercises" / DEMO / f"{DEMO}.ipynb"
    write_notebook(answered(release, "return np.abs(pxs) + np.abs(pys)"), wrong)
    assert main(["grade", str(wrong), "--exercise", DEMO, "--student", "bob", "--json", "--timeout", "60"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) >= {"exercise", "student", "score", "max_score", "parts"}
    assert (result["exercise"], result["student"], result["score"], result["max_score"]) == (DEMO, "bob", 1, 3)
    assert [(p["name"], p["score"], p["max_score"]) for p in result["parts"]] == [
        ("test_pts_shape", 1, 1), ("test_pts_values", 0, 2)]
    assert result["failed_cells"] == ["test_pts_values: AssertionError"]


def test_score_table() -> None:
    parts = [PartScore("test_a", 1, 1), PartScore("essay", 0, 2, needs_manual_grade=True)]
    table = format_result(GradeResult(DEMO, "ada", 1, 3, parts)).splitlines()
    assert table[0] == f"{DEMO} (ada)"
    assert table[-1].split() == ["total", "1", "3"]
    assert "needs manual grading" in table[-2]


@pytest.mark.parametrize("make, expected", [
    (lambda tmp, root: tmp / "missing.ipynb", "does not exist"),
    (lambda tmp, root: _write(tmp / "answer.py", "print(42)\n"), "is not a notebook"),
    (lambda tmp, root: _write(tmp / "cut.ipynb",
                              (root / "exercises" / DEMO / f"{DEMO}.ipynb").read_text()[:2000]),
     "is not a valid notebook (invalid JSON at line"),
    (lambda tmp, root: root / "exercises" / OTHER / f"{OTHER}.ipynb", f"looks like exercise {OTHER}, not {DEMO}"),
], ids=["missing", "not-ipynb", "invalid-json", "other-exercise"])
def test_bad_submission_gives_one_line(make, expected: str, demo_root: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grade", str(make(tmp_path, demo_root)), "--exercise", DEMO]) != 0
    assert expected in one_error_line(capsys)


def test_unknown_exercise_lists_known_ones(demo_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    solution = demo_root / "solutions" / DEMO / f"{DEMO}.ipynb"
    assert main(["grade", str(solution), "--exercise", "99_nope"]) != 0
    err = one_error_line(capsys)
    assert "99_nope" in err and DEMO in err and OTHER in err


def test_batch_grades_a_folder(demo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The solution gets full marks, a release whose test cells were emptied gets zero
    (the source's tests come back), a broken file gets one line and the rest goes on."""
    release = demo_root / "exercises" / DEMO / f"{DEMO}.ipynb"
    folder = tmp_path / "submissions"
    folder.mkdir()
    shutil.copyfile(demo_root / "solutions" / DEMO / f"{DEMO}.ipynb", folder / "alice.ipynb")
    tampered = read_notebook(release)
    for cell in tampered["cells"]:
        if cell["metadata"]["nbgrader"].get("grade"):
            cell["source"] = "pass"
    (folder / "bob").mkdir()
    write_notebook(tampered, folder / "bob" / f"{DEMO}.ipynb")
    _write(folder / "carol.ipynb", '{"cells": [')

    assert main(["grade", "--batch", str(folder), "--exercise", DEMO, "--timeout", "60"]) == 1
    out, err = capsys.readouterr()
    assert err.strip().count("\n") == 0 and "carol" in err and "invalid JSON" in err
    assert re.search(r"^alice\s+3\s+3\s", out, re.M) and re.search(r"^bob\s+0\s+3\s", out, re.M)
    with (demo_root / "grading" / "grades.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["student"], float(r["score"]), float(r["max_score"])) for r in rows] == [
        ("alice", 3, 3), ("bob", 0, 3)]
    assert list(rows[0])[3:] == ["test_pts_shape", "test_pts_values", *CSV_EXTRA]
    assert [(r["reason"], r["needs_review"], r["sandbox"]) for r in rows] == [("", "", "yes")] * 2
    assert (demo_root / "grading" / "gradebook.db").is_file()


def test_batch_api_reports_errors(course: Path, tmp_path: Path) -> None:
    folder = tmp_path / "submissions"
    folder.mkdir()
    _write(folder / "dave.ipynb", "not json")
    batch = grade_batch(folder, DEMO, source_root=course, db_path=tmp_path / "gb.db", csv_path=tmp_path / "g.csv")
    assert batch.results == {} and list(batch.errors) == ["dave"]
    assert not (tmp_path / "g.csv").exists()


# --- every real exercise --------------------------------------------------------------

REAL = exercise_ids(REPO)
NONE_YET = [pytest.param(None, marks=pytest.mark.skip(reason="no exercises under solutions/ yet"))]
real_exercises = pytest.mark.parametrize(
    "exercise", [pytest.param(e, marks=[pytest.mark.slow, pytest.mark.notebooks]) for e in REAL] or NONE_YET)


@real_exercises
def test_committed_release_is_up_to_date(exercise: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPP_ROOT", str(REPO))
    assert main(["release", "--check", "--exercise", exercise]) == 0


@real_exercises
def test_solution_gets_full_marks(exercise: str) -> None:
    result = grade_notebook(REPO / "solutions" / exercise / f"{exercise}.ipynb", exercise, source_root=REPO)
    assert result.max_score > 0
    assert result.score == result.max_score, [p for p in result.parts if p.score < p.max_score]
    # nbgrader runs to the end whatever raises: a failing cell that earns no points shows only here
    assert result.failed_cells == [], result.failed_cells


@real_exercises
def test_release_gets_zero(exercise: str) -> None:
    result = grade_notebook(REPO / "exercises" / exercise / f"{exercise}.ipynb", exercise, source_root=REPO)
    assert result.score == 0, [p for p in result.parts if p.score > 0]
    assert any("NotImplementedError" in cell for cell in result.failed_cells), result.failed_cells


@real_exercises
def test_release_leaks_no_solution_or_hidden_test(exercise: str) -> None:
    secrets = secret_lines(read_notebook(REPO / "solutions" / exercise / f"{exercise}.ipynb"))
    for path in sorted((REPO / "exercises" / exercise).rglob("*.ipynb")):
        leaked = notebook_lines(read_notebook(path)) & secrets
        assert not leaked, f"{path.relative_to(REPO)} shows source-only lines: {sorted(leaked)}"
        text = path.read_text()
        assert not [m for m in MARKERS if m in text]


# --- module layout --------------------------------------------------------------------

def _mlpp_imports(module: str) -> set[str]:
    """The mlpp modules that ``src/mlpp/<module>.py`` imports (top level and inside functions)."""
    import ast

    tree = ast.parse((REPO / "src" / "mlpp" / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mlpp"):
            found |= {node.module} if node.module != "mlpp" else {f"mlpp.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("mlpp")}
    return found


def test_release_and_grading_meet_only_in_the_bridge() -> None:
    """release.py releases, grading.py grades; both drive nbgrader through mlpp.nbgrader_bridge,
    which imports neither (no loop); the sandbox is grading's, not release's."""
    assert _mlpp_imports("nbgrader_bridge") <= {"mlpp.settings", "mlpp.sandbox"}
    assert not {"mlpp.sandbox", "mlpp.sandbox_kernel"} & _mlpp_imports("release")
    assert "mlpp.nbgrader_bridge" in _mlpp_imports("release") and "mlpp.grading" not in _mlpp_imports("release")
    assert "mlpp.nbgrader_bridge" in _mlpp_imports("grading") and "mlpp.release" not in _mlpp_imports("grading")
