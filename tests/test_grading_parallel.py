"""Grading a batch in parallel: local worker processes and a Dask cluster on loopback.

Workers grade each submission in a private nbgrader course and gradebook (in the sandbox);
the calling process alone writes the gradebook. The grades must be those of a sequential
run: the same CSV, row for row.
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from mlpp.cli import main
from mlpp.grading import grade_batch
from mlpp.nbgrader_bridge import read_notebook, write_notebook

REPO = Path(__file__).resolve().parents[1]
DEMO = "demo_exercise"


# `course` (the demo exercise, released) comes from conftest.py


def submissions(course: Path, folder: Path) -> Path:
    """alice: the solution; bob: the release; mallory: the solution plus a rebound np.allclose;
    carol: broken JSON."""
    folder.mkdir()
    solution = read_notebook(course / "solutions" / DEMO / f"{DEMO}.ipynb")
    write_notebook(solution, folder / "alice.ipynb")
    shutil.copyfile(course / "exercises" / DEMO / f"{DEMO}.ipynb", folder / "bob.ipynb")
    answer = next(c for c in solution["cells"] if c["metadata"].get("nbgrader", {}).get("solution"))
    answer["source"] = "".join(answer["source"]) + "\nnp.allclose = lambda *a, **k: True\n"
    write_notebook(solution, folder / "mallory.ipynb")
    (folder / "carol.ipynb").write_text('{"cells": [', encoding="utf-8")
    return folder


def grade_into(course: Path, folder: Path, out: Path, *flags: str) -> list[dict[str, str]]:
    """``mlpp grade --batch`` into ``out/grading``; the CSV's rows."""
    shutil.rmtree(course / "grading", ignore_errors=True)
    assert main(["grade", "--batch", str(folder), "--exercise", DEMO, "--timeout", "60", *flags]) == 1  # carol
    shutil.copytree(course / "grading", out)
    with (out / "grades.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_two_workers_give_the_sequential_csv(course: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--workers 2 and a sequential run give the same CSV; a second batch adds to the gradebook."""
    monkeypatch.setenv("MLPP_ROOT", str(course))
    folder = submissions(course, tmp_path / "submissions")
    sequential = grade_into(course, folder, tmp_path / "sequential")
    parallel = grade_into(course, folder, tmp_path / "parallel", "--workers", "2")
    assert parallel == sequential
    assert [(r["student"], r["score"], r["needs_review"]) for r in parallel] == [
        ("alice", "3", ""), ("bob", "0", ""), ("mallory", "0", "yes")]
    assert (tmp_path / "sequential" / "grades.csv").read_bytes() == (tmp_path / "parallel" / "grades.csv").read_bytes()
    assert "np.allclose" in parallel[2]["review_reasons"]

    # A later batch of one new student, in parallel: the CSV is still the whole gradebook.
    later = tmp_path / "later"
    later.mkdir()
    shutil.copyfile(folder / "alice.ipynb", later / "dave.ipynb")
    assert main(["grade", "--batch", str(later), "--exercise", DEMO, "--workers", "2"]) == 0
    with (course / "grading" / "grades.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["student"], r["score"]) for r in rows] == [("alice", "3"), ("bob", "0"), ("dave", "3"),
                                                         ("mallory", "0")]
    assert rows[:2] + rows[3:] == parallel


def test_workers_need_a_batch(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["grade", "x.ipynb", "--exercise", "00_collisions_to_jets", "--workers", "2"]) == 2
    assert "--workers and --scheduler go with --batch DIR" in capsys.readouterr().err


@pytest.mark.slow
def test_dask_cluster_on_loopback_grades_exercise_00(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real distributed scheduler with two worker processes on 127.0.0.1 grades exercise 00:
    the solution full marks, the untouched release zero."""
    distributed = pytest.importorskip("distributed")
    exercise = "00_collisions_to_jets"
    folder = tmp_path / "submissions"
    folder.mkdir()
    shutil.copyfile(REPO / "solutions" / exercise / f"{exercise}.ipynb", folder / "perfect.ipynb")
    shutil.copyfile(REPO / "exercises" / exercise / f"{exercise}.ipynb", folder / "untouched.ipynb")
    monkeypatch.setenv("MLPP_TIER", "fast")  # the workers inherit it, as on a course's cluster
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  scheduler_port=0, dashboard_address=None) as cluster:
        assert len(cluster.workers) == 2
        batch = grade_batch(folder, exercise, source_root=REPO, db_path=tmp_path / "gradebook.db",
                            csv_path=tmp_path / "grades.csv", scheduler=cluster.scheduler_address)
    assert batch.errors == {}
    perfect, untouched = batch.results["perfect"], batch.results["untouched"]
    assert perfect.score == perfect.max_score > 0 and untouched.score == 0
    with (tmp_path / "grades.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["student"], float(r["score"])) for r in rows] == [("perfect", perfect.max_score), ("untouched", 0)]
