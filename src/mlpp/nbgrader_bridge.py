"""The bridge to nbgrader: a temporary course folder and one nbgrader run in a subprocess.

``mlpp.release`` (generate the student release) and ``mlpp.grading`` (autograde submissions)
both work the same way: :func:`make_course` lays out a throw-away nbgrader course (a copy of
``nbgrader_config.py`` and of the ``solutions/<ID>/`` sources, with fixed cell ids), and
:func:`run_nbgrader` runs one job there in a fresh interpreter that drives
``nbgrader.apps.NbGraderAPI`` (:func:`_worker`), so the checkout never gets a ``gradebook.db``
or stray folders. This module also reads and writes notebooks as plain JSON and holds the
course's layout (:data:`SOURCE_DIR`, :func:`exercise_ids`) and its one-line errors
(:class:`CourseError`).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from mlpp.settings import repo_root

SOURCE_DIR = "solutions"
CONFIG_NAME = "nbgrader_config.py"
# Files that never belong in a course copy or a release (nbgrader_config.py ignores them too).
IGNORED = (".ipynb_checkpoints", "__pycache__", "*.pyc", ".DS_Store", "feedback")
_CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class CourseError(RuntimeError):
    """A release or grading step failed; the message is one line meant for the user."""


# --- the course's exercises and files ------------------------------------------------

def exercise_ids(source_root: Path | str | None = None) -> list[str]:
    """IDs of the exercises under ``solutions/``: folders ``<ID>`` holding ``<ID>.ipynb``."""
    solutions = Path(source_root or repo_root()) / SOURCE_DIR
    if not solutions.is_dir():
        return []
    return sorted(p.name for p in solutions.iterdir() if (p / f"{p.name}.ipynb").is_file())


def unknown_exercise_message(exercise: str, known: list[str]) -> str:
    """One line naming the exercises that do exist."""
    listed = ", ".join(known) if known else f"none: {SOURCE_DIR}/ has no <ID>/<ID>.ipynb yet"
    return f"unknown exercise {exercise!r}; known exercises: {listed}"


def ignored(name: str) -> bool:
    """Whether a file or folder name matches :data:`IGNORED` (editor and nbgrader droppings)."""
    return any(Path(name).match(pattern) for pattern in IGNORED)


def copy_tree(src: Path, dst: Path) -> None:
    """Copy the folder ``src`` to ``dst`` (which must not exist), leaving out :data:`IGNORED` files."""
    shutil.copytree(src, dst, ignore=lambda _, names: [n for n in names if ignored(n)])


def course_files(folder: Path) -> list[Path]:
    """Files under ``folder`` (relative paths, sorted), ignoring editor droppings."""
    if not folder.is_dir():
        return []
    return sorted(
        p.relative_to(folder) for p in folder.rglob("*")
        if p.is_file() and not any(ignored(part) for part in p.relative_to(folder).parts)
    )


def read_notebook(path: Path) -> dict[str, Any]:
    """A notebook as plain JSON (no nbformat import: it costs about a second)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_notebook(nb: dict[str, Any], path: Path) -> None:
    """Write ``nb`` the way nbformat and JupyterLab do (indent 1, sorted keys, final newline)."""
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")


def fix_cell_ids(nb: dict[str, Any]) -> dict[str, Any]:
    """Give cells without a valid id a fixed one, so nbformat never draws a random id."""
    if nb.get("nbformat") != 4:
        return nb
    nb["nbformat_minor"] = max(int(nb.get("nbformat_minor", 0)), 5)
    seen: set[str] = set()
    for i, cell in enumerate(nb.get("cells", [])):
        cell_id = cell.get("id")
        if not isinstance(cell_id, str) or not _CELL_ID.match(cell_id) or cell_id in seen:
            cell_id = f"cell-{i:03d}"
            cell["id"] = cell_id
        seen.add(cell_id)
    return nb


def config_path(source_root: Path | str | None = None) -> Path:
    """The course's ``nbgrader_config.py`` (at the root, next to ``solutions/``)."""
    path = Path(source_root or repo_root()) / CONFIG_NAME
    if not path.is_file():
        raise CourseError(f"no {CONFIG_NAME} in {path.parent}: it sets where nbgrader finds the sources")
    return path


def make_course(course: Path, sources: list[Path], config: Path) -> None:
    """Lay out a temporary nbgrader course: the config and a copy of each source folder.

    Cell ids are fixed in the copies (see :func:`fix_cell_ids`); the originals are untouched.
    """
    shutil.copyfile(config, course / CONFIG_NAME)
    for source in sources:
        dest = course / SOURCE_DIR / source.name
        copy_tree(source, dest)
        for path in dest.glob("*.ipynb"):
            write_notebook(fix_cell_ids(read_notebook(path)), path)


# --- running nbgrader ---------------------------------------------------------------

def nbgrader_env() -> dict[str, str]:
    """Environment for nbgrader and the kernels it starts.

    ``MLPP_TIER`` and the rest of the caller's environment pass through. The interpreter's
    ``bin/`` goes first on ``PATH`` (nbgrader shells out to ``alembic``) and its Jupyter
    data folder first on ``JUPYTER_PATH`` (so "python3" is this environment's kernel,
    not one a user installed elsewhere).
    """
    env = dict(os.environ)
    prefix = Path(sys.prefix)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    jupyter = [str(prefix / "share" / "jupyter")] + [p for p in [env.get("JUPYTER_PATH")] if p]
    env["JUPYTER_PATH"] = os.pathsep.join(jupyter)
    package_parent = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([package_parent] + [p for p in [env.get("PYTHONPATH")] if p])
    env.setdefault("MLPP_ROOT", str(repo_root()))
    return env


def run_nbgrader(course: Path, job: dict[str, Any], *, verbose: bool = False) -> dict[str, Any]:
    """Run one nbgrader job in a subprocess and return its result (see :func:`_worker`).

    ``job`` keys: ``generate`` (exercise IDs), ``no_db`` (bool), ``db_url`` (str or None),
    ``autograde`` (``{"exercise": ID, "students": [...]}`` or None), and for autograde
    ``limits`` (:class:`mlpp.sandbox.Limits` as a dict) and ``sandbox`` (bool, default True);
    ``merge`` (``{"exercise": ID, "gradebooks": [sqlite files], "autograde": {student:
    outcome}}``) writes gradebooks autograded elsewhere into this one instead.
    The result's ``grades`` hold every student of the exercise in the gradebook, ``reports``
    the grading report of each student graded now. Without ``verbose`` nbgrader's log is
    kept out of the terminal.
    """
    job_path, result_path = course / "job.json", course / "result.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    code = "import sys; from mlpp.nbgrader_bridge import _worker; sys.exit(_worker(sys.argv[1], sys.argv[2]))"
    output = None if verbose else subprocess.PIPE
    proc = subprocess.run(
        [sys.executable, "-c", code, str(job_path), str(result_path)],
        cwd=course, env=nbgrader_env(), stdout=output, stderr=subprocess.STDOUT if output else None,
        text=True, check=False,
    )
    if proc.returncode != 0 or not result_path.is_file():
        tail = (proc.stdout or "").strip().splitlines()[-1:] or ["see the log above"]
        raise CourseError(f"nbgrader failed (exit {proc.returncode}): {tail[0].strip()} "
                          "(run with --verbose for its log)")
    return json.loads(result_path.read_text(encoding="utf-8"))


def failed_cells(path: Path) -> list[str]:
    """The code cells of an executed notebook that raised, as ``"<grade id or cell N>: <exception>"``.

    nbgrader executes a submission to the end whatever fails, so an error in a cell that earns
    no points (a plot, a print) shows up only here."""
    if not path.is_file():
        return []
    failed = []
    for index, cell in enumerate(read_notebook(path).get("cells", [])):
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if cell.get("cell_type") == "code" and errors:
            name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {index}"
            failed.append(f"{name}: {errors[0].get('ename', 'error')}")
    return failed


def _worker(job_path: str, result_path: str) -> int:
    """The subprocess side of :func:`run_nbgrader`: generate, autograde, read the gradebook."""
    import nbgrader
    import nbgrader.api
    from alembic.script import ScriptDirectory
    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    job = json.loads(Path(job_path).read_text(encoding="utf-8"))
    course = Path.cwd()
    # nbgrader stamps each new gradebook by running `alembic heads` in a subprocess
    # (about 2 s, and it fails if alembic is not on PATH); ask alembic in-process instead.
    head = ScriptDirectory(str(Path(nbgrader.__file__).parent / "alembic")).get_current_head()
    nbgrader.api.get_alembic_version = lambda: head

    config = PyFileConfigLoader(CONFIG_NAME, path=str(course)).load_config()
    config.CourseDirectory.root = str(course)
    reports = course / "reports"
    if job.get("autograde"):
        from mlpp.sandbox import Limits, configure_nbgrader

        # Whatever the course's config says, the kernel runs in the sandbox (unless told not to).
        configure_nbgrader(config, limits=Limits(**job.get("limits", {})))
        config.SandboxedExecute.sandbox = bool(job.get("sandbox", True))
        config.GradingReport.report_dir = str(reports)
    if job.get("db_url"):
        config.CourseDirectory.db_url = job["db_url"]
    if job.get("no_db"):
        config.GenerateAssignment.no_database = True
        config.SaveCells.enabled = False
    config.Exchange.root = str(course / "exchange")  # keep the API away from /srv/nbgrader
    api = NbGraderAPI(config=config)

    result: dict[str, Any] = {"generate": {}, "autograde": {}, "grades": {}, "reports": {}}
    for exercise in job.get("generate", []):
        result["generate"][exercise] = api.generate_assignment(exercise, force=True, create=True)
        _echo(result["generate"][exercise])
    grading = job.get("autograde") or job.get("merge")
    if grading and all(r["success"] for r in result["generate"].values()):
        exercise = grading["exercise"]
        if job.get("merge"):
            # Gradebooks that workers filled in private courses (mlpp.grading_batch): this
            # process alone writes their grades into the course's gradebook.
            result["autograde"] = grading["autograde"]
            with nbgrader.api.Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
                for private in grading["gradebooks"]:
                    _merge_gradebook(gb, f"sqlite:///{private}", exercise)
        for student in grading.get("students", []):
            result["autograde"][student] = api.autograde(exercise, student, force=True, create=True)
            _echo(result["autograde"][student])
        for student in grading.get("students", []):
            path = reports / f"{student}.json"
            report = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
            failed = failed_cells(course / "autograded" / student / exercise / f"{exercise}.ipynb")
            if failed:
                report["failed_cells"] = failed
            if report:
                result["reports"][student] = report
        # Every student of the exercise in the gradebook, not only this run's.
        with nbgrader.api.Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
            for submission in gb.find_assignment(exercise).submissions:
                student = submission.student_id
                if student in result["autograde"] and not result["autograde"][student]["success"]:
                    continue
                try:
                    nb = gb.find_submission_notebook(exercise, exercise, student)
                except nbgrader.api.MissingEntry:
                    continue
                result["grades"][student] = [
                    {"name": g.name, "score": g.score, "max_score": g.max_score,
                     "needs_manual_grade": bool(g.needs_manual_grade)}
                    for g in nb.grades
                ]
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")
    return 0


def _merge_gradebook(gb: Any, private_url: str, exercise: str) -> None:
    """Write the submissions of ``exercise`` in the gradebook at ``private_url`` into ``gb``.

    Does what ``nbgrader autograde`` does to a gradebook (create the student and the
    submission, set each grade's ``auto_score`` and each comment's ``auto_comment``), so a
    merged gradebook reads as if the course's own had been graded; a manual score already
    there stays, and flags the grade for manual grading as nbgrader would.
    """
    import nbgrader.api

    with nbgrader.api.Gradebook(private_url, gb.course_id) as src:
        for submission in src.find_assignment(exercise).submissions:
            student = submission.student_id
            gb.update_or_create_student(student)
            stamp = {"timestamp": submission.timestamp} if submission.timestamp else {}
            gb.update_or_create_submission(exercise, student, **stamp)
            for notebook in submission.notebooks:
                target = gb.find_submission_notebook(notebook.name, exercise, student)
                target.late_submission_penalty = notebook.late_submission_penalty
                for grade in notebook.grades:
                    mine = gb.find_grade(grade.name, notebook.name, exercise, student)
                    mine.auto_score = grade.auto_score
                    mine.needs_manual_grade = mine.manual_score is not None or mine.auto_score is None
                for comment in notebook.comments:
                    gb.find_comment(comment.name, notebook.name, exercise, student).auto_comment = \
                        comment.auto_comment
            gb.db.commit()


def _echo(outcome: dict[str, Any]) -> None:
    """Pass nbgrader's captured log on to stderr (the parent hides it unless --verbose)."""
    for key in ("log", "error"):
        if outcome.get(key):
            print(outcome[key], file=sys.stderr)


_EXCEPTION_LINE = re.compile(r"^(?:[\w]+\.)*(\w+(?:Error|Exception|Exit|Interrupt)\b.*)$")


def last_error_line(outcome: dict[str, Any]) -> str:
    """The most telling line of a failed nbgrader step, e.g. ``DeadKernelError: Kernel died``.

    nbgrader logs the real exception inside its log and ends with a generic
    "see the above traceback"; take the last exception that is not nbgrader's own.
    """
    text = "\n".join(outcome.get(key) or "" for key in ("log", "error"))
    lines = [ln.strip() for ln in text.splitlines()]
    found = [m.group(1) for ln in lines if (m := _EXCEPTION_LINE.match(ln))]
    found = [ln for ln in found if not ln.startswith("NbGraderException")]
    if not found:
        found = [ln.removeprefix("[ERROR] ") for ln in lines if ln.startswith("[ERROR]")]
    detail = found[-1] if found else "unknown error"
    return f"{detail} (run with --verbose for nbgrader's log)"
