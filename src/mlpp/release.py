"""Generate the student release ``exercises/<ID>/`` from the nbgrader source ``solutions/<ID>/``.

    mlpp release                         regenerate every exercise under solutions/
    mlpp release --exercise 01_nn_recap  regenerate one
    mlpp release --check                 exit 1 if exercises/ differs from a fresh release

nbgrader runs in a temporary course folder (a copy of ``nbgrader_config.py`` and of the
sources), so the checkout never gets a ``gradebook.db`` or stray folders. The release is
byte-for-byte reproducible: cell ids are fixed before nbgrader sees the notebook and the
written JSON is normalised, so ``--check`` can diff it against what is committed.

This module also holds the bridge to nbgrader that ``mlpp.grading`` uses: one subprocess
per job (:func:`run_nbgrader`) that drives ``nbgrader.apps.NbGraderAPI``.
"""
from __future__ import annotations

import argparse
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlpp.settings import repo_root

SOURCE_DIR = "solutions"
RELEASE_DIR = "exercises"
CONFIG_NAME = "nbgrader_config.py"
# Files that never belong in a release (nbgrader_config.py ignores them too).
IGNORED = (".ipynb_checkpoints", "__pycache__", "*.pyc", ".DS_Store", "feedback")
# Per-cell metadata that editors add on every run (JupyterLab's "execution" timings,
# the ExecuteTime extension); dropped so a release depends on the source alone.
VOLATILE_CELL_METADATA = ("execution", "ExecuteTime")
_CELL_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class CourseError(RuntimeError):
    """A release or grading step failed; the message is one line meant for the user."""


# --- exercises and their files -------------------------------------------------------

def exercise_ids(source_root: Path | str | None = None) -> list[str]:
    """IDs of the exercises under ``solutions/``: folders ``<ID>`` holding ``<ID>.ipynb``."""
    solutions = Path(source_root or repo_root()) / SOURCE_DIR
    if not solutions.is_dir():
        return []
    return sorted(p.name for p in solutions.iterdir() if (p / f"{p.name}.ipynb").is_file())


def _ignored(name: str) -> bool:
    return any(Path(name).match(pattern) for pattern in IGNORED)


def _copy_tree(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=lambda _, names: [n for n in names if _ignored(n)])


def _files(folder: Path) -> list[Path]:
    """Files under ``folder`` (relative paths, sorted), ignoring editor droppings."""
    if not folder.is_dir():
        return []
    return sorted(
        p.relative_to(folder) for p in folder.rglob("*")
        if p.is_file() and not any(_ignored(part) for part in p.relative_to(folder).parts)
    )


def read_notebook(path: Path) -> dict[str, Any]:
    """A notebook as plain JSON (no nbformat import: it costs about a second)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_notebook(nb: dict[str, Any], path: Path) -> None:
    """Write ``nb`` the way nbformat and JupyterLab do (indent 1, sorted keys, final newline)."""
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")


def _fix_cell_ids(nb: dict[str, Any]) -> dict[str, Any]:
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


def _normalise_release(nb: dict[str, Any]) -> dict[str, Any]:
    """Drop outputs, execution counts and editor timings from a generated notebook."""
    for cell in nb.get("cells", []):
        for key in VOLATILE_CELL_METADATA:
            cell.get("metadata", {}).pop(key, None)
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return nb


# A solution or hidden-test block: the lines between the BEGIN and END marker lines.
_SECRET_BLOCK = re.compile(r"BEGIN (SOLUTION|HIDDEN TESTS)[^\n]*\n(.*?)^[^\n]*END \1", re.S | re.M)


def _cell_text(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def secret_lines(source: dict[str, Any]) -> set[str]:
    """Lines only an exercise source may hold: inside its solution or hidden-test blocks and
    nowhere else in it (stripped, non-empty, no comments). A leak scan looks for these."""
    inside, outside = set(), set()
    for cell in source["cells"]:
        text = _cell_text(cell)
        inside |= {ln.strip() for block in _SECRET_BLOCK.findall(text) for ln in block[1].splitlines()}
        outside |= {ln.strip() for ln in _SECRET_BLOCK.sub("", text).splitlines()}
    return {ln for ln in inside - outside if ln and not ln.startswith("#")}


def config_path(source_root: Path | str | None = None) -> Path:
    """The course's ``nbgrader_config.py`` (at the root, next to ``solutions/``)."""
    path = Path(source_root or repo_root()) / CONFIG_NAME
    if not path.is_file():
        raise CourseError(f"no {CONFIG_NAME} in {path.parent}: it sets where nbgrader finds the sources")
    return path


def make_course(course: Path, sources: list[Path], config: Path) -> None:
    """Lay out a temporary nbgrader course: the config and a copy of each source folder.

    Cell ids are fixed in the copies (see :func:`_fix_cell_ids`); the originals are untouched.
    """
    shutil.copyfile(config, course / CONFIG_NAME)
    for source in sources:
        dest = course / SOURCE_DIR / source.name
        _copy_tree(source, dest)
        for path in dest.glob("*.ipynb"):
            write_notebook(_fix_cell_ids(read_notebook(path)), path)


# --- the bridge to nbgrader -----------------------------------------------------------

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
    ``timeout`` (seconds per cell), ``autograde`` (``{"exercise": ID, "students": [...]}``
    or None). Without ``verbose`` nbgrader's log is kept out of the terminal.
    """
    job_path, result_path = course / "job.json", course / "result.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    code = "import sys; from mlpp.release import _worker; sys.exit(_worker(sys.argv[1], sys.argv[2]))"
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
    config.Execute.timeout = int(job.get("timeout") or 600)
    if job.get("db_url"):
        config.CourseDirectory.db_url = job["db_url"]
    if job.get("no_db"):
        config.GenerateAssignment.no_database = True
        config.SaveCells.enabled = False
    config.Exchange.root = str(course / "exchange")  # keep the API away from /srv/nbgrader
    api = NbGraderAPI(config=config)

    result: dict[str, Any] = {"generate": {}, "autograde": {}, "grades": {}}
    for exercise in job.get("generate", []):
        result["generate"][exercise] = api.generate_assignment(exercise, force=True, create=True)
        _echo(result["generate"][exercise])
    grading = job.get("autograde")
    if grading and all(r["success"] for r in result["generate"].values()):
        exercise = grading["exercise"]
        for student in grading["students"]:
            result["autograde"][student] = api.autograde(exercise, student, force=True, create=True)
            _echo(result["autograde"][student])
        with nbgrader.api.Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
            for student, outcome in result["autograde"].items():
                if outcome["success"]:
                    nb = gb.find_submission_notebook(exercise, exercise, student)
                    result["grades"][student] = [
                        {"name": g.name, "score": g.score, "max_score": g.max_score,
                         "needs_manual_grade": bool(g.needs_manual_grade)}
                        for g in nb.grades
                    ]
    Path(result_path).write_text(json.dumps(result), encoding="utf-8")
    return 0


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


# --- release --------------------------------------------------------------------------

def release_exercises(
    source_root: Path | str | None = None,
    exercises: list[str] | None = None,
    out_root: Path | str | None = None,
    *,
    verbose: bool = False,
) -> list[Path]:
    """Regenerate ``<out_root>/<ID>/`` for each exercise (default: all under ``solutions/``).

    ``out_root`` defaults to ``<source_root>/exercises``. Each release folder is replaced as
    a whole, so files removed from the source disappear. Returns the files written.
    """
    root = Path(source_root or repo_root())
    known = exercise_ids(root)
    chosen = list(exercises) if exercises else known
    unknown = [e for e in chosen if e not in known]
    if unknown:
        raise CourseError(unknown_exercise_message(unknown[0], known))
    out = Path(out_root) if out_root else root / RELEASE_DIR
    if not chosen:
        return []
    sources = [root / SOURCE_DIR / e for e in chosen]
    with tempfile.TemporaryDirectory(prefix="mlpp-release-") as tmp:
        course = Path(tmp)
        make_course(course, sources, config_path(root))
        result = run_nbgrader(course, {"generate": chosen, "no_db": True}, verbose=verbose)
        for exercise, outcome in result["generate"].items():
            if not outcome["success"]:
                raise CourseError(f"nbgrader could not release {exercise}: {last_error_line(outcome)}")
        written = []
        for exercise in chosen:
            built, dest = course / RELEASE_DIR / exercise, out / exercise
            for path in built.rglob("*.ipynb"):
                write_notebook(_normalise_release(read_notebook(path)), path)
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            for rel in _files(built):
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(built / rel, dest / rel)
                written.append(dest / rel)
    return written


def release_exercise(source_dir: Path | str, out_dir: Path | str, *, verbose: bool = False) -> list[Path]:
    """Release one exercise: ``solutions/<ID>/`` (``source_dir``) into ``out_dir``.

    ``out_dir`` becomes exactly ``<ID>.ipynb`` plus the data files of the source folder.
    The course root (holding ``nbgrader_config.py``) is ``source_dir/../..``.
    """
    source_dir, out_dir = Path(source_dir).resolve(), Path(out_dir)
    with tempfile.TemporaryDirectory(prefix="mlpp-release-") as tmp:
        written = release_exercises(source_dir.parents[1], [source_dir.name], tmp, verbose=verbose)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        files = []
        for path in written:
            rel = path.relative_to(Path(tmp) / source_dir.name)
            (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, out_dir / rel)
            files.append(out_dir / rel)
    return files


def check_release(
    source_root: Path | str | None = None,
    exercises: list[str] | None = None,
    *,
    verbose: bool = False,
) -> list[str]:
    """Files (relative to the root) where ``exercises/`` differs from a fresh release.

    Each entry reads ``exercises/<ID>/<file> (changed|missing|not in the release)``; an
    empty list means the committed release is up to date. Without ``exercises``, release
    folders with no source are reported too.
    """
    root = Path(source_root or repo_root())
    chosen = list(exercises) if exercises else exercise_ids(root)
    committed = root / RELEASE_DIR
    problems = []
    with tempfile.TemporaryDirectory(prefix="mlpp-check-") as tmp:
        release_exercises(root, chosen, tmp, verbose=verbose)
        for exercise in chosen:
            fresh_files = set(_files(Path(tmp) / exercise))
            old_files = set(_files(committed / exercise))
            for rel in sorted(fresh_files | old_files):
                name = f"{RELEASE_DIR}/{exercise}/{rel.as_posix()}"
                if rel not in old_files:
                    problems.append(f"{name} (missing)")
                elif rel not in fresh_files:
                    problems.append(f"{name} (not in the release)")
                elif not filecmp.cmp(Path(tmp) / exercise / rel, committed / exercise / rel, shallow=False):
                    problems.append(f"{name} (changed)")
    if not exercises and committed.is_dir():
        for stale in sorted(p.name for p in committed.iterdir() if p.is_dir() and not _ignored(p.name)):
            if stale not in chosen:
                problems.append(f"{RELEASE_DIR}/{stale}/ (no source in {SOURCE_DIR}/)")
    return problems


def unknown_exercise_message(exercise: str, known: list[str]) -> str:
    """One line naming the exercises that do exist."""
    listed = ", ".join(known) if known else f"none: {SOURCE_DIR}/ has no <ID>/<ID>.ipynb yet"
    return f"unknown exercise {exercise!r}; known exercises: {listed}"


# --- command line ---------------------------------------------------------------------

def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mlpp release``."""
    parser = subparsers.add_parser(
        "release",
        help="regenerate exercises/ from solutions/ with nbgrader",
        description="Regenerate the student release exercises/<ID>/ from the nbgrader source "
                    "solutions/<ID>/ (solutions replaced by stubs, hidden tests removed).",
        epilog="exercises/ is generated: edit solutions/<ID>/<ID>.ipynb and run 'make release'.",
    )
    parser.add_argument("--exercise", action="append", metavar="ID",
                        help="release only this exercise (repeatable; default: all)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if exercises/ differs from a fresh release")
    parser.add_argument("--verbose", action="store_true", help="show nbgrader's log")
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    root = repo_root()
    try:
        if args.check:
            problems = check_release(root, args.exercise, verbose=args.verbose)
        else:
            known = exercise_ids(root)
            written = release_exercises(root, args.exercise, verbose=args.verbose)
    except CourseError as err:
        print(f"mlpp release: {err}", file=sys.stderr)
        return 1
    if args.check:
        if problems:
            print(f"{RELEASE_DIR}/ is out of date: run 'make release'", file=sys.stderr)
            for line in problems:
                print(f"  {line}", file=sys.stderr)
            return 1
        print(f"{RELEASE_DIR}/ is up to date ({len(args.exercise or exercise_ids(root))} exercises)")
        return 0
    for path in written:
        print(f"wrote {path.relative_to(root)}")
    if not args.exercise:
        for stale in sorted((root / RELEASE_DIR).glob("*/")):
            if stale.name not in known and not _ignored(stale.name):
                shutil.rmtree(stale)
                print(f"removed {stale.relative_to(root)}/ (no source in {SOURCE_DIR}/)")
    if not written:
        print(f"nothing to release: {SOURCE_DIR}/ has no <ID>/<ID>.ipynb")
    return 0
