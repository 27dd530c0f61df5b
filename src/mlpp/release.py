"""Generate the student release ``exercises/<ID>/`` from the nbgrader source ``solutions/<ID>/``.

    mlpp release                         regenerate every exercise under solutions/
    mlpp release --exercise 01_nn_recap  regenerate one
    mlpp release --check                 exit 1 if exercises/ differs from a fresh release

nbgrader runs in a temporary course folder (a copy of ``nbgrader_config.py`` and of the
sources), so the checkout never gets a ``gradebook.db`` or stray folders. The release is
byte-for-byte reproducible: cell ids are fixed before nbgrader sees the notebook and the
written JSON is normalised, so ``--check`` can diff it against what is committed.
nbgrader itself is driven through :mod:`mlpp.nbgrader_bridge`.
"""
from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from mlpp.nbgrader_bridge import (
    SOURCE_DIR, CourseError, config_path, course_files, exercise_ids, ignored, last_error_line, make_course,
    read_notebook, run_nbgrader, unknown_exercise_message, write_notebook,
)
from mlpp.settings import repo_root

RELEASE_DIR = "exercises"
# Per-cell metadata that editors add on every run (JupyterLab's "execution" timings,
# the ExecuteTime extension); dropped so a release depends on the source alone.
VOLATILE_CELL_METADATA = ("execution", "ExecuteTime")


# --- what a release may not show -------------------------------------------------------

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
            for rel in course_files(built):
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
            fresh_files = set(course_files(Path(tmp) / exercise))
            old_files = set(course_files(committed / exercise))
            for rel in sorted(fresh_files | old_files):
                name = f"{RELEASE_DIR}/{exercise}/{rel.as_posix()}"
                if rel not in old_files:
                    problems.append(f"{name} (missing)")
                elif rel not in fresh_files:
                    problems.append(f"{name} (not in the release)")
                elif not filecmp.cmp(Path(tmp) / exercise / rel, committed / exercise / rel, shallow=False):
                    problems.append(f"{name} (changed)")
    if not exercises and committed.is_dir():
        for stale in sorted(p.name for p in committed.iterdir() if p.is_dir() and not ignored(p.name)):
            if stale not in chosen:
                problems.append(f"{RELEASE_DIR}/{stale}/ (no source in {SOURCE_DIR}/)")
    return problems


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
            if stale.name not in known and not ignored(stale.name):
                shutil.rmtree(stale)
                print(f"removed {stale.relative_to(root)}/ (no source in {SOURCE_DIR}/)")
    if not written:
        print(f"nothing to release: {SOURCE_DIR}/ has no <ID>/<ID>.ipynb")
    return 0
