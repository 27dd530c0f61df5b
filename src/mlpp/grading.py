"""Autograde exercise notebooks with nbgrader, one at a time or a folder at once.

    mlpp grade SUBMISSION.ipynb --exercise 01_nn_recap [--student NAME] [--json]
    mlpp grade --batch DIR --exercise 01_nn_recap

Grading happens in a temporary nbgrader course: the assignment is generated from
``solutions/<ID>/`` (so the hidden tests come from the source, whatever the student did
to the test cells), the submission goes to ``submitted/<student>/<ID>/<ID>.ipynb`` and
``nbgrader autograde`` runs it on a fresh kernel in the grading sandbox
(:mod:`mlpp.sandbox`: no network, no course files, limits on time, memory, processes and
output), with the caller's ``MLPP_TIER``. A dead kernel, a time-out or a limit ends the
run but not the row: the points earned before it count and ``reason`` says what stopped
it. A batch keeps its gradebook in ``grading/gradebook.db`` (written only by the grader,
outside the sandbox) and writes ``grading/grades.csv``: every student of the exercise in
the gradebook, not only the last batch (both ignored by git). ``--no-sandbox`` is for a
trusted setting only and says so in every output.

Before nbgrader sees a file it is checked, so that a student gets one clear line
instead of a traceback: missing file, not a notebook, broken JSON, another exercise.
"""
from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlpp.nbgrader_bridge import (
    SOURCE_DIR, CourseError, config_path, exercise_ids, last_error_line, make_course,
    read_notebook, run_nbgrader, unknown_exercise_message,
)
from mlpp.sandbox import CELL_TIMEOUT, DEFAULT_LIMITS, Limits, sandbox_problem
from mlpp.settings import repo_root

DEFAULT_TIMEOUT = CELL_TIMEOUT  # seconds per cell (defined once, in mlpp.sandbox)
GRADING_DIR = "grading"
REDOWNLOAD = "re-download it from JupyterLab with File > Download"
NO_SANDBOX_WARNING = ("WARNING: graded WITHOUT the sandbox (--no-sandbox): student code ran as you, "
                      "with your files, network and environment")


class GradingError(CourseError):
    """A submission cannot be graded; the message is one line meant for the student."""


@dataclass(frozen=True)
class PartScore:
    """Points for one autograded cell (its nbgrader grade id)."""

    name: str
    score: float
    max_score: float
    needs_manual_grade: bool = False


@dataclass(frozen=True)
class GradeResult:
    """Score of one submission; ``parts`` follow the order of the notebook."""

    exercise: str
    student: str
    score: float
    max_score: float
    parts: list[PartScore] = field(default_factory=list)
    reason: str = ""  # what ended the run early (dead kernel, time-out, limit); "" if it ran through
    needs_review: bool = False  # a person should look at it (tampering checks set it)
    review_reasons: list[str] = field(default_factory=list)
    sandbox: bool = True  # False: graded with --no-sandbox
    failed_cells: list[str] = field(default_factory=list)  # "<grade id or cell N>: <exception>" of cells that raised

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` form: exercise, student, score, max_score, parts, reason,
        needs_review, review_reasons, sandbox, failed_cells."""
        return asdict(self)


@dataclass(frozen=True)
class BatchResult:
    """Grades of a folder of submissions; ``errors`` maps a file to its one-line problem."""

    exercise: str
    results: dict[str, GradeResult]
    errors: dict[str, str]
    csv_path: Path | None = None


# --- checks before grading ------------------------------------------------------------

def graded_ids(nb: dict[str, Any]) -> list[str]:
    """nbgrader grade ids of the answer and test cells of a notebook, in order."""
    ids = []
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if isinstance(meta, dict) and (meta.get("grade") or meta.get("solution") or meta.get("task")):
            ids.append(str(meta.get("grade_id", "")))
    return ids


def load_submission(path: Path | str) -> dict[str, Any]:
    """Read a submitted notebook, or raise :class:`GradingError` with one line that says why not."""
    path = Path(path)
    if not path.exists():
        raise GradingError(f"{path} does not exist")
    if path.is_dir():
        raise GradingError(f"{path} is a folder, not a notebook (use --batch to grade a folder)")
    if path.suffix != ".ipynb":
        raise GradingError(f"{path} is not a notebook (.ipynb file): {REDOWNLOAD}")
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise GradingError(
            f"{path} is not a valid notebook (invalid JSON at line {err.lineno}): {REDOWNLOAD}") from None
    except UnicodeDecodeError:
        raise GradingError(f"{path} is not a valid notebook (not UTF-8 text): {REDOWNLOAD}") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list) or nb.get("nbformat") != 4:
        raise GradingError(f"{path} is not a valid notebook (no nbformat 4 'cells' list): {REDOWNLOAD}")
    return nb


def check_exercise(path: Path | str, nb: dict[str, Any], exercise: str, source_root: Path) -> None:
    """Raise :class:`GradingError` unless ``nb`` is a notebook of ``exercise``.

    Compares the nbgrader grade ids of the submission with those of every source: the
    submission must share more ids with its own exercise than with any other.
    """
    submitted = set(graded_ids(nb))
    overlaps = {
        other: len(submitted & set(graded_ids(read_notebook(source_notebook(other, source_root)))))
        for other in exercise_ids(source_root)
    }
    best = max(overlaps, key=lambda e: (overlaps[e], e == exercise))
    if overlaps[best] > overlaps[exercise]:
        raise GradingError(f"{path} looks like exercise {best}, not {exercise}")
    if overlaps[exercise] == 0:
        raise GradingError(
            f"{path} has none of the graded cells of exercise {exercise}: "
            f"start from exercises/{exercise}/{exercise}.ipynb, or {REDOWNLOAD}")


def source_notebook(exercise: str, source_root: Path | str | None = None) -> Path:
    """``solutions/<ID>/<ID>.ipynb``, or :class:`GradingError` listing the known exercises."""
    root = Path(source_root or repo_root())
    known = exercise_ids(root)
    if exercise not in known:
        raise GradingError(unknown_exercise_message(exercise, known))
    return root / SOURCE_DIR / exercise / f"{exercise}.ipynb"


def student_from_name(name: str) -> str:
    """A student id nbgrader can use as a folder name (letters, digits, ``._@+-``)."""
    return re.sub(r"[^A-Za-z0-9._@+-]+", "_", name).strip("._") or "student"


# --- grading --------------------------------------------------------------------------

def check_sandbox(sandbox: bool) -> None:
    """Refuse to grade (one line) when the sandbox is wanted but cannot start."""
    problem = sandbox_problem() if sandbox else None
    if problem:
        raise GradingError(f"{problem}; or, in a trusted setting only, grade with --no-sandbox")


def _reason(report: dict[str, Any]) -> str:
    """One line from the grading report: what stopped the run or hit a limit."""
    return "; ".join(f"{e.get('reason')} ({e.get('cell')})" for e in report.get("events", []))


def _result(exercise: str, student: str, grades: list[dict[str, Any]], order: dict[str, int],
            note: dict[str, Any]) -> GradeResult:
    parts = sorted(
        (PartScore(g["name"], float(g["score"] or 0), float(g["max_score"] or 0), g["needs_manual_grade"])
         for g in grades),
        key=lambda p: order.get(p.name, len(order)),
    )
    reasons = [str(r) for r in note.get("review_reasons", [])]
    return GradeResult(exercise, student, sum(p.score for p in parts), sum(p.max_score for p in parts), parts,
                       reason=str(note.get("reason", "")), needs_review=bool(note.get("needs_review", reasons)),
                       review_reasons=reasons, sandbox=bool(note.get("sandbox", True)),
                       failed_cells=[str(c) for c in note.get("failed_cells", [])])


def _autograde_here(submissions: dict[str, Path], exercise: str, source_root: Path, job: dict[str, Any],
                    verbose: bool) -> dict[str, Any]:
    """One nbgrader run (this process's subprocess) for every submission, in order."""
    with tempfile.TemporaryDirectory(prefix="mlpp-grade-") as tmp:
        course = Path(tmp)
        make_course(course, [source_root / SOURCE_DIR / exercise], config_path(source_root))
        for student, path in submissions.items():
            dest = course / "submitted" / student / exercise / f"{exercise}.ipynb"
            dest.parent.mkdir(parents=True)
            shutil.copyfile(path, dest)
        return run_nbgrader(course, job, verbose=verbose)


def _autograde(
    submissions: dict[str, Path],
    exercise: str,
    source_root: Path,
    *,
    limits: Limits,
    sandbox: bool = True,
    db_url: str | None = None,
    notes: dict[str, dict[str, Any]] | None = None,
    verbose: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
) -> tuple[dict[str, GradeResult], dict[str, str], dict[str, GradeResult]]:
    """Grade checked submissions ``{student: notebook}`` in one nbgrader run, or with
    ``workers``/``scheduler`` one private run per submission (:mod:`mlpp.grading_batch`).

    Returns this run's results, its errors, and every student of the exercise in the
    gradebook (earlier runs too; their reasons and review flags come from ``notes``,
    which this run's are added to).
    """
    source_ids = graded_ids(read_notebook(source_notebook(exercise, source_root)))
    order = {name: i for i, name in enumerate(source_ids)}
    notes = {} if notes is None else notes
    results, errors = {}, {}
    job = {"generate": [exercise], "db_url": db_url, "limits": asdict(limits), "sandbox": sandbox,
           "autograde": {"exercise": exercise, "students": list(submissions)}}
    if workers or scheduler:
        from mlpp.grading_batch import autograde_parallel

        outcome = autograde_parallel(submissions, exercise, source_root, job, workers=workers,
                                     scheduler=scheduler, verbose=verbose)
    else:
        outcome = _autograde_here(submissions, exercise, source_root, job, verbose)
    generated = outcome["generate"][exercise]
    if not generated["success"]:
        raise GradingError(f"nbgrader could not generate {exercise}: {last_error_line(generated)}")
    for student, path in submissions.items():
        graded = outcome["autograde"].get(student, {})
        if not graded.get("success") or student not in outcome["grades"]:
            errors[student] = f"{path}: nbgrader could not grade it: {last_error_line(graded)}"
            continue
        report = outcome["reports"].get(student, {})
        reasons = [str(r) for r in report.get("review_reasons", [])]
        notes[student] = {"reason": _reason(report), "needs_review": bool(reasons), "review_reasons": reasons,
                          "sandbox": sandbox, "failed_cells": list(report.get("failed_cells", []))}
        results[student] = _result(exercise, student, outcome["grades"][student], order, notes[student])
    everyone = {student: results.get(student) or _result(exercise, student, grades, order, notes.get(student, {}))
                for student, grades in outcome["grades"].items()}
    return results, errors, everyone


def grade_notebook(
    path: Path | str,
    exercise: str,
    student: str = "student",
    source_root: Path | str | None = None,
    timeout: int | None = None,
    *,
    limits: Limits | None = None,
    sandbox: bool = True,
    verbose: bool = False,
) -> GradeResult:
    """Autograde one submitted notebook against ``solutions/<exercise>/`` (hidden tests included).

    Runs in a temporary course folder, the kernel in the sandbox with ``limits`` (``timeout``
    overrides the per-cell limit): nothing is written under ``source_root``. Raises
    :class:`GradingError` (one-line message) for a file that cannot be graded or a sandbox
    that cannot start.
    """
    root = Path(source_root or repo_root())
    limits = (limits or DEFAULT_LIMITS).updated(cell_timeout_s=timeout)
    source_notebook(exercise, root)
    check_exercise(path, load_submission(path), exercise, root)
    check_sandbox(sandbox)
    student = student_from_name(student)
    results, errors, _ = _autograde({student: Path(path)}, exercise, root, limits=limits, sandbox=sandbox,
                                    verbose=verbose)
    if errors:
        raise GradingError(errors[student])
    return results[student]


def find_submissions(directory: Path | str, exercise: str) -> dict[str, Path]:
    """``{student: notebook}`` in a folder: ``DIR/<student>.ipynb`` or ``DIR/<student>/<ID>.ipynb``."""
    directory = Path(directory)
    found = {}
    for path in sorted(directory.glob("*.ipynb")):
        found[student_from_name(path.stem)] = path
    for path in sorted(directory.glob(f"*/{exercise}.ipynb")):
        if path.parent.name != ".ipynb_checkpoints":
            found[student_from_name(path.parent.name)] = path
    return found


def _read_notes(path: Path, exercise: str) -> dict[str, dict[str, Any]]:
    """The grader's notes (reasons, review flags) of an exercise's students, kept beside the gradebook."""
    try:
        notes = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found = notes.get(exercise, {}) if isinstance(notes, dict) else {}
    return found if isinstance(found, dict) else {}


def _write_notes(path: Path, exercise: str, notes: dict[str, dict[str, Any]]) -> None:
    try:
        everything = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        everything = {}
    everything = everything if isinstance(everything, dict) else {}
    everything[exercise] = notes
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(everything, indent=1, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def grade_batch(
    directory: Path | str,
    exercise: str,
    *,
    source_root: Path | str | None = None,
    db_path: Path | str | None = None,
    csv_path: Path | str | None = None,
    timeout: int | None = None,
    limits: Limits | None = None,
    sandbox: bool = True,
    verbose: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
) -> BatchResult:
    """Grade every submission in ``directory`` into a gradebook and a CSV file.

    Defaults: ``<source_root>/grading/gradebook.db`` and ``<source_root>/grading/grades.csv``.
    A file that cannot be graded lands in ``errors`` and the others go on. The CSV has one
    row per student of the exercise in the gradebook (earlier batches too): student, score,
    max_score, one column per part, then reason, needs_review, review_reasons, sandbox.
    ``workers`` (local processes) or ``scheduler`` (a Dask address) grade the submissions in
    parallel, each in a private course; this process alone writes the gradebook, and the
    grades are those of the sequential run (one nbgrader run) that neither gives.
    """
    root = Path(source_root or repo_root())
    limits = (limits or DEFAULT_LIMITS).updated(cell_timeout_s=timeout)
    source_notebook(exercise, root)
    directory = Path(directory)
    if not directory.is_dir():
        raise GradingError(f"{directory} is not a folder of submissions")
    db_path = Path(db_path) if db_path else root / GRADING_DIR / "gradebook.db"
    csv_path = Path(csv_path) if csv_path else root / GRADING_DIR / "grades.csv"
    notes_path = db_path.with_name(f"{db_path.stem}-notes.json")

    submissions, errors = {}, {}
    for student, path in find_submissions(directory, exercise).items():
        try:
            check_exercise(path, load_submission(path), exercise, root)
        except GradingError as err:
            errors[student] = str(err)
        else:
            submissions[student] = path
    results: dict[str, GradeResult] = {}
    if submissions:
        check_sandbox(sandbox)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        notes = _read_notes(notes_path, exercise)
        results, failed, everyone = _autograde(
            submissions, exercise, root, limits=limits, sandbox=sandbox,
            db_url=f"sqlite:///{db_path.resolve()}", notes=notes, verbose=verbose, workers=workers,
            scheduler=scheduler)
        errors.update(failed)
        _write_notes(notes_path, exercise, {s: n for s, n in notes.items() if s in everyone})
        if everyone:
            write_grades_csv(list(everyone.values()), csv_path)
    return BatchResult(exercise, dict(sorted(results.items())), dict(sorted(errors.items())),
                       csv_path if results else None)


CSV_EXTRA = ["reason", "needs_review", "review_reasons", "sandbox"]


def write_grades_csv(results: list[GradeResult], path: Path | str) -> None:
    """One row per student: student, score, max_score, each part's score, then :data:`CSV_EXTRA`."""
    parts: list[str] = []
    for r in results:
        parts += [p.name for p in r.parts if p.name not in parts]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "score", "max_score", *parts, *CSV_EXTRA])
        for r in sorted(results, key=lambda r: r.student):
            scores = {p.name: p.score for p in r.parts}
            points = [f"{scores.get(name, 0):g}" for name in parts]
            writer.writerow([r.student, f"{r.score:g}", f"{r.max_score:g}", *points, r.reason,
                             "yes" if r.needs_review else "", "; ".join(r.review_reasons),
                             "yes" if r.sandbox else "NO"])


def format_result(result: GradeResult) -> str:
    """A per-part table with the total, then what stopped the run and review flags, for the terminal."""
    width = max([len("total")] + [len(p.name) for p in result.parts])
    lines = [f"{result.exercise} ({result.student})", f"  {'part':<{width}}  {'score':>6}  {'max':>6}"]
    if not result.sandbox:
        lines.insert(0, NO_SANDBOX_WARNING)
    for p in result.parts:
        note = "  (needs manual grading)" if p.needs_manual_grade else ""
        lines.append(f"  {p.name:<{width}}  {p.score:>6g}  {p.max_score:>6g}{note}")
    lines.append(f"  {'total':<{width}}  {result.score:>6g}  {result.max_score:>6g}")
    if result.reason:
        lines.append(f"  stopped: {result.reason}")
    if result.needs_review:
        lines.append(f"  NEEDS REVIEW: {'; '.join(result.review_reasons) or 'flagged'}")
    return "\n".join(lines)


def format_batch(batch: BatchResult) -> str:
    """One line per student graded now: score, max score, the points of each part, and notes."""
    results = sorted(batch.results.values(), key=lambda r: r.student)
    names = [p.name for p in results[0].parts] if results else []
    width = max([len("student")] + [len(r.student) for r in results])
    lines = [f"{'student':<{width}}  {'score':>6}  {'max':>6}  " + "  ".join(names)]
    if any(not r.sandbox for r in results):
        lines.insert(0, NO_SANDBOX_WARNING)
    for r in results:
        scores = {p.name: p.score for p in r.parts}
        cells = "  ".join(f"{scores.get(n, 0):>{len(n)}g}" for n in names)
        notes = [f"stopped: {r.reason}"] * bool(r.reason) + ["NEEDS REVIEW"] * r.needs_review
        lines.append(f"{r.student:<{width}}  {r.score:>6g}  {r.max_score:>6g}  {cells}"
                     + (f"  [{'; '.join(notes)}]" if notes else ""))
    return "\n".join(lines)


# --- command line ---------------------------------------------------------------------

LIMIT_FLAGS = {  # flag: (Limits field, metavar, help)
    "--timeout": ("cell_timeout_s", "S", "seconds one cell may run"),
    "--notebook-timeout": ("notebook_timeout_s", "S", "seconds the whole notebook may run"),
    "--memory": ("memory_mb", "MIB", "memory (address space) of the kernel, MiB"),
    "--cpu": ("cpu_s", "S", "CPU seconds of the kernel, all threads together"),
    "--processes": ("processes", "N", "processes and threads in the sandbox"),
    "--file-size": ("file_mb", "MIB", "largest file the kernel may write, MiB"),
    "--output": ("output_mb", "MIB", "output kept per cell, MiB"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mlpp grade``."""
    parser = subparsers.add_parser(
        "grade",
        help="autograde a submitted notebook (or a folder of them) with nbgrader, in the sandbox",
        description="Autograde an exercise notebook with nbgrader (hidden tests included)\n"
                    "and print the points per part and the total. The student's code runs in\n"
                    "a bubblewrap sandbox (no network, no course files, limits below).",
        epilog="examples:\n"
               "  mlpp grade my_01_nn_recap.ipynb --exercise 01_nn_recap\n"
               "  mlpp grade --batch submissions/ --exercise 01_nn_recap   "
               "(-> grading/grades.csv, every student graded so far)\n"
               "  mlpp grade --batch submissions/ --exercise 01_nn_recap --timeout 60 --memory 2048\n"
               "  mlpp grade --batch submissions/ --exercise 01_nn_recap --workers 4\n"
               "  mlpp grade --batch submissions/ --exercise 01_nn_recap --scheduler tcp://scheduler:8786",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("submission", nargs="?", metavar="SUBMISSION.ipynb", help="the notebook to grade")
    parser.add_argument("--exercise", required=True, metavar="ID", help="exercise ID, a folder of solutions/")
    parser.add_argument("--batch", metavar="DIR", type=Path,
                        help="grade DIR/<student>.ipynb or DIR/<student>/<ID>.ipynb into grading/")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="with --batch: grade N submissions at a time, each in its own sandbox "
                             "(default: one after the other)")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="with --batch: grade on this Dask scheduler's workers (same course checkout "
                             "and environment there), e.g. tcp://scheduler:8786")
    parser.add_argument("--student", default="student", metavar="NAME", help="student name for a single notebook")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    limits = parser.add_argument_group("limits per submission (defaults in mlpp.sandbox.Limits)")
    for flag, (name, metavar, text) in LIMIT_FLAGS.items():
        limits.add_argument(flag, dest=name, type=int, metavar=metavar,
                            help=f"{text} (default {getattr(DEFAULT_LIMITS, name)})")
    parser.add_argument("--no-sandbox", dest="sandbox", action="store_false",
                        help="run student code WITHOUT the sandbox: only for code you trust")
    parser.add_argument("--verbose", action="store_true", help="show nbgrader's log")
    parser.set_defaults(func=_main)


def _limits(args: argparse.Namespace) -> Limits:
    for flag, (name, _, _) in LIMIT_FLAGS.items():
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise GradingError(f"{flag} must be a positive whole number, got {value}")
    return DEFAULT_LIMITS.updated(**{name: getattr(args, name) for name, _, _ in LIMIT_FLAGS.values()})


def _main(args: argparse.Namespace) -> int:
    if (args.submission is None) == (args.batch is None):
        print("mlpp grade: give either SUBMISSION.ipynb or --batch DIR", file=sys.stderr)
        return 2
    if (args.workers is not None or args.scheduler) and args.batch is None:
        print("mlpp grade: --workers and --scheduler go with --batch DIR", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers <= 0:
        print(f"mlpp grade: --workers must be a positive whole number, got {args.workers}", file=sys.stderr)
        return 2
    if not args.sandbox:
        print(f"mlpp grade: {NO_SANDBOX_WARNING}", file=sys.stderr)
    try:
        if args.batch is not None:
            return _main_batch(args)
        result = grade_notebook(args.submission, args.exercise, args.student, limits=_limits(args),
                                sandbox=args.sandbox, verbose=args.verbose)
    except CourseError as err:
        print(f"mlpp grade: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict()) if args.json else format_result(result))
    return 0


def _main_batch(args: argparse.Namespace) -> int:
    batch = grade_batch(args.batch, args.exercise, limits=_limits(args), sandbox=args.sandbox,
                        verbose=args.verbose, workers=args.workers, scheduler=args.scheduler)
    for student, message in batch.errors.items():
        print(f"mlpp grade: {student}: {message}", file=sys.stderr)
    if args.json:
        print(json.dumps({"exercise": batch.exercise, "sandbox": args.sandbox,
                          "results": [r.to_dict() for r in batch.results.values()],
                          "errors": batch.errors}))
    else:
        print(format_batch(batch))
        if batch.csv_path:
            print(f"{len(batch.results)} graded, {len(batch.errors)} failed: wrote {batch.csv_path}")
        else:
            print(f"0 graded, {len(batch.errors)} failed")
    return 1 if batch.errors else 0
