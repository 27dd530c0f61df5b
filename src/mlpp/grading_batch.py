"""Autograde a batch of submissions in parallel: local processes or a Dask cluster.

    mlpp grade --batch DIR --exercise ID --workers N
    mlpp grade --batch DIR --exercise ID --scheduler tcp://HOST:8786

The executor is the one ``mlpp data generate`` uses (:func:`mlpp.data.build.open_executor`).
Each task (:func:`autograde_one`) grades ONE submission in its own temporary nbgrader
course with its own private gradebook, in the sandbox as always, and returns nbgrader's
outcome, the grading report and the private gradebook's bytes (a Dask worker may be on
another machine; it needs the course checkout at the same path and the course
environment). Only the calling process writes the course's gradebook: one nbgrader run
merges the private gradebooks into it, in the order of the submissions, so the gradebook
and ``grades.csv`` are those of a sequential run.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mlpp.nbgrader_bridge import SOURCE_DIR, config_path, make_course, run_nbgrader

PRIVATE_DB = "private-gradebook.db"


def autograde_one(exercise: str, student: str, notebook: bytes, source_root: str, limits: dict[str, Any],
                  sandbox: bool = True, verbose: bool = False) -> dict[str, Any]:
    """Grade one submission (the notebook's bytes) in a private course; runs on a worker.

    Returns ``generate`` and ``autograde`` (nbgrader's outcomes), ``report`` (the grading
    report, ``{}`` if none) and ``gradebook`` (the private gradebook file's bytes).
    """
    root = Path(source_root)
    with tempfile.TemporaryDirectory(prefix="mlpp-grade-") as tmp:
        course = Path(tmp)
        make_course(course, [root / SOURCE_DIR / exercise], config_path(root))
        dest = course / "submitted" / student / exercise / f"{exercise}.ipynb"
        dest.parent.mkdir(parents=True)
        dest.write_bytes(notebook)
        job = {"generate": [exercise], "db_url": f"sqlite:///{course / PRIVATE_DB}", "limits": limits,
               "sandbox": sandbox, "autograde": {"exercise": exercise, "students": [student]}}
        outcome = run_nbgrader(course, job, verbose=verbose)
        db = course / PRIVATE_DB
        return {"generate": outcome["generate"][exercise],
                "autograde": outcome["autograde"].get(student, {}),
                "report": outcome["reports"].get(student, {}),
                "gradebook": db.read_bytes() if db.is_file() else b""}


def autograde_parallel(submissions: dict[str, Path], exercise: str, source_root: Path, job: dict[str, Any], *,
                       workers: int | None = None, scheduler: str | None = None,
                       verbose: bool = False) -> dict[str, Any]:
    """Grade ``{student: notebook}`` on ``workers`` processes or the Dask ``scheduler``.

    ``job`` is what one sequential :func:`mlpp.nbgrader_bridge.run_nbgrader` would get
    (``db_url``, ``limits``, ``sandbox``); the answer has the same form as its result
    (``generate``, ``autograde``, ``grades`` of every student in the gradebook, ``reports``).
    """
    from mlpp.data.build import open_executor  # one executor interface for the course

    args = (str(source_root), job["limits"], job.get("sandbox", True), verbose)
    with open_executor(workers, scheduler) as pool:
        futures = {student: pool.submit(autograde_one, exercise, student, path.read_bytes(), *args)
                   for student, path in submissions.items()}
        done = {student: future.result() for student, future in futures.items()}
    failed = [d["generate"] for d in done.values() if not d["generate"].get("success")]
    if failed:  # the source itself is broken: the caller says so, as after a sequential run
        return {"generate": {exercise: failed[0]}, "autograde": {}, "grades": {}, "reports": {}}
    with tempfile.TemporaryDirectory(prefix="mlpp-grade-merge-") as tmp:
        course = Path(tmp)
        make_course(course, [source_root / SOURCE_DIR / exercise], config_path(source_root))
        gradebooks = []
        for i, student in enumerate(submissions):
            if done[student]["gradebook"]:
                gradebooks.append(str(course / f"private-{i}.db"))
                Path(gradebooks[-1]).write_bytes(done[student]["gradebook"])
        merge = {"exercise": exercise, "gradebooks": gradebooks,
                 "autograde": {student: d["autograde"] for student, d in done.items()}}
        outcome = run_nbgrader(course, {"generate": [exercise], "db_url": job.get("db_url"), "merge": merge},
                               verbose=verbose)
    outcome["reports"] = {student: d["report"] for student, d in done.items() if d["report"]}
    return outcome
