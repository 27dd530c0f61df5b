"""Tampering does not pay (mlpp.grading_guard): attacks on the autograder earn nothing and are flagged.

The slow tests run real nbgrader autogrades (through ``mlpp.nbgrader_bridge``, in the grading
sandbox) of exercise 00 with submissions built from the student release plus attack cells:
first with the guard switched off, to show that each attack really wins the points, then with
it, where each defeated test scores 0 and the submission carries the reasons. The honest
solutions of exercises 00 and 01 score full marks and are not flagged; the static scan is run
on all the solutions and releases.
"""
from __future__ import annotations

import copy
import csv
import hashlib
import hmac
import json
from pathlib import Path

import nbformat
import pytest
from traitlets.config import Config

from mlpp import grading_guard as guard
from mlpp.nbgrader_bridge import config_path, make_course, read_notebook, run_nbgrader, write_notebook

REPO = Path(__file__).resolve().parents[1]
EX0 = "00_collisions_to_jets"
EX1 = "01_nn_recap"
SOLUTIONS = sorted((REPO / "solutions").glob("*/*.ipynb"))
RELEASES = sorted((REPO / "exercises").glob("*/*.ipynb"))


# --- submissions ------------------------------------------------------------------------

def _answers(exercise: str) -> dict[str, str]:
    """The instructor's answer cells of an exercise: ``{grade_id: source}``."""
    nb = read_notebook(REPO / "solutions" / exercise / f"{exercise}.ipynb")
    return {c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]) for c in nb["cells"]
            if c["metadata"].get("nbgrader", {}).get("solution")}


def _submission(exercise: str, answers: dict[str, str]) -> dict:
    """The student release with the given answer cells filled in."""
    nb = copy.deepcopy(read_notebook(REPO / "exercises" / exercise / f"{exercise}.ipynb"))
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = answers[grade_id]
    return nb


# Plausible arrays of the right shapes, and numpy's comparisons rebound so that they pass.
FAKE_NUMPY = """import numpy as np
np.testing.assert_allclose = lambda *a, **k: None
np.allclose = lambda *a, **k: True
np.isclose = lambda a, b, *r, **k: np.ones(np.broadcast(a, b).shape, dtype=bool)
np.median = lambda *a, **k: 0.0
np.all = lambda *a, **k: True
np.array_equal = lambda *a, **k: True
"""
FAKE_ANSWERS = {
    "part1_answer": "def jet_mass(pts, etas, phis, es, mask):\n    return np.zeros(len(pts))\n",
    "part2_answer": "def delta_rs_to_axis(etas, phis, jet_etas, jet_phis):\n    return np.zeros(np.shape(etas))\n"
                    "def max_delta_r(etas, phis, mask, jet_etas, jet_phis):\n    return np.full(len(etas), 0.4)\n",
    "part3_function": "def charged_pt_fractions(pts, charges, mask):\n    return np.full(len(pts), 0.6)\n",
    "part3_answer": "fraction_means = np.full(5, 0.6)\nfraction_stds = np.full(5, 0.1)\n",
}
# jet_mass writes into the padding of its inputs (hidden test part 1 (4) catches it with `all`).
MODIFIES_INPUTS = ("    mask = np.asarray(mask, dtype=bool)",
                   "    if isinstance(pts, np.ndarray):\n        pts[~np.asarray(mask, dtype=bool)] = 123.0\n"
                   "    mask = np.asarray(mask, dtype=bool)")
# A checker that swaps the originals back in while the guard's check runs.
WRAPPER = """
_orig = {k: getattr(np.testing, k) for k in ['assert_allclose']}
_fake = {'assert_allclose': lambda *a, **k: None}
for _k in list(globals()):
    if _k.startswith('_mlpp_guard_'):
        def _wrapped(*a, _real=globals()[_k], **k):
            np.testing.assert_allclose = _orig['assert_allclose']
            try:
                return _real(*a, **k)
            finally:
                np.testing.assert_allclose = _fake['assert_allclose']
        globals()[_k] = _wrapped
np.testing.assert_allclose = _fake['assert_allclose']
"""


# Arrays that answer numpy's comparisons themselves: nothing is rebound.
LYING_ARRAY = """import numpy as np
class _Plausible(np.ndarray):
    def __array_function__(self, func, types, args, kwargs):
        if func.__name__ == "isclose":
            return np.ones(np.shape(args[0]), dtype=bool)
        if func.__name__ in ("allclose", "array_equal"):
            return True
        return super().__array_function__(func, types, args, kwargs)
"""


def _attacks() -> dict[str, dict[str, str]]:
    """Answer cells of each attacking submission of exercise 00 (and what each defeats)."""
    honest = _answers(EX0)
    fake = dict(FAKE_ANSWERS, part1_answer=FAKE_NUMPY + FAKE_ANSWERS["part1_answer"])
    builtin = dict(honest, part1_answer=honest["part1_answer"].replace(*MODIFIES_INPUTS)
                   + "\nimport builtins, sys\n"  # `all` lies to the notebook only
                   "builtins.all = lambda it, real=all: (\n"
                   "    True if sys._getframe(1).f_globals is globals() else real(it))\n")
    # Neuter the guard (every function named like it becomes a no-op), then fake part 2 and 3.
    noop = dict(FAKE_ANSWERS, part1_answer=honest["part1_answer"],
                part2_answer=FAKE_ANSWERS["part2_answer"] + FAKE_NUMPY
                + "for _k in list(globals()):\n    if _k.startswith('_mlpp_guard_'):\n"
                  "        globals()[_k] = lambda nonce, *a: print('MLPP-GUARD', nonce, '[]', '00' * 32)\n"
                  "import mlpp.grading_guard as _g\n_g.GuardVerdict.preprocess = lambda self, nb, r: (nb, r)\n")
    wrapper = dict(honest, part2_answer=FAKE_ANSWERS["part2_answer"] + "import numpy as np\n" + WRAPPER,
                   part3_function=FAKE_ANSWERS["part3_function"], part3_answer=FAKE_ANSWERS["part3_answer"])
    # An input transformer that empties every later cell (the tests and the guard's checks).
    blank = dict(honest, part3_function=FAKE_ANSWERS["part3_function"]
                 + "get_ipython().input_transformers_cleanup.append(lambda lines: [])\n",
                 part3_answer=FAKE_ANSWERS["part3_answer"])
    lying = {k: v.replace("np.zeros(len(pts))", "np.zeros(len(pts)).view(_Plausible)")
             .replace("np.zeros(np.shape(etas))", "np.zeros(np.shape(etas)).view(_Plausible)")
             .replace("np.full(len(pts), 0.6)", "np.full(len(pts), 0.6).view(_Plausible)")
             .replace("np.full(5, 0.6)", "np.full(5, 0.6).view(_Plausible)")
             .replace("np.full(5, 0.1)", "np.full(5, 0.1).view(_Plausible)") for k, v in FAKE_ANSWERS.items()}
    lying["part1_answer"] = LYING_ARRAY + lying["part1_answer"]
    # The course library's reference functions, which the hidden tests compare with, return zeros too.
    library = dict(honest, part1_answer=FAKE_ANSWERS["part1_answer"]
                   + "from mlpp import kinematics\nkinematics.masses_from_p4s = lambda p4s: np.zeros(len(p4s))\n",
                   part2_answer=FAKE_ANSWERS["part2_answer"].replace("np.full(len(etas), 0.4)", "np.zeros(len(etas))")
                   + "kinematics.delta_r = lambda eta, phi, *axis: np.zeros(np.shape(eta))\n")
    return {"honest": honest, "fake_numpy": fake, "lying_array": lying, "library": library,
            "builtin_all": builtin, "guard_noop": noop,
            "guard_wrapper": wrapper, "blank_cells": blank}


def _autograde(course: Path, exercise: str, submissions: dict[str, dict], *, guarded: bool) -> dict[str, dict]:
    """Autograde ``{student: notebook}`` with nbgrader; ``{student: {"scores", "reasons", "report"}}``."""
    course.mkdir(parents=True)
    make_course(course, [REPO / "solutions" / exercise], config_path(REPO))
    with (course / "nbgrader_config.py").open("a", encoding="utf-8") as f:
        if guarded:  # idempotent: also right once the course's config calls it
            f.write("\nfrom mlpp.grading_guard import configure_nbgrader as _guard\n_guard(c)\n")
        else:
            f.write("\nc.GuardInject.enabled = False\nc.GuardVerdict.enabled = False\n")
    for student, nb in submissions.items():
        folder = course / "submitted" / student / exercise
        folder.mkdir(parents=True)
        write_notebook(nb, folder / f"{exercise}.ipynb")
    outcome = run_nbgrader(course, {"generate": [exercise],
                                    "autograde": {"exercise": exercise, "students": list(submissions)}})
    graded = {}
    for student in submissions:
        assert outcome["autograde"][student]["success"], outcome["autograde"][student].get("log", "")[-2000:]
        notebook = course / "autograded" / student / exercise / f"{exercise}.ipynb"
        graded[student] = {
            "scores": {g["name"]: float(g["score"] or 0) for g in outcome["grades"][student]},
            "max": {g["name"]: float(g["max_score"] or 0) for g in outcome["grades"][student]},
            "reasons": guard.review_reasons(notebook),
            "guarded": guard.guarded(notebook),
            "report": outcome.get("reports", {}).get(student, {}),
            "notebook": read_notebook(notebook),
        }
    return graded


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    """Exercise 00: every attack graded without the guard, then with it."""
    submissions = {name: _submission(EX0, answers) for name, answers in _attacks().items()}
    root = tmp_path_factory.mktemp("guard")
    bare = _autograde(root / "bare", EX0, {k: v for k, v in submissions.items() if k != "honest"}, guarded=False)
    return bare, _autograde(root / "guarded", EX0, submissions, guarded=True)


def _total(graded: dict) -> float:
    return sum(graded["scores"].values())


# --- end to end: real nbgrader autograde -------------------------------------------------

@pytest.mark.slow
def test_every_attack_wins_points_without_the_guard(attacked):
    bare, _ = attacked
    for name, graded in bare.items():
        assert not graded["guarded"] and graded["reasons"] == []
    assert _total(bare["fake_numpy"]) == 10, bare["fake_numpy"]["scores"]
    assert _total(bare["builtin_all"]) == 10, bare["builtin_all"]["scores"]
    assert _total(bare["guard_noop"]) == 10, bare["guard_noop"]["scores"]
    assert bare["guard_wrapper"]["scores"]["part2_hidden_tests"] == 3, bare["guard_wrapper"]["scores"]
    assert _total(bare["blank_cells"]) == 10, bare["blank_cells"]["scores"]


@pytest.mark.slow
def test_honest_solution_scores_full_and_is_not_flagged(attacked):
    _, graded = attacked
    honest = graded["honest"]
    assert honest["guarded"] and honest["reasons"] == []
    assert honest["scores"] == honest["max"] and _total(honest) == 10
    assert honest["report"].get("review_reasons", []) == []
    # The graded notebook keeps no trace of the injected cells.
    assert not any(guard.METADATA_KEY in c.get("metadata", {}) for c in honest["notebook"]["cells"])


def _reasons_with(graded: dict, text: str) -> list[str]:
    return [r for r in graded["reasons"] if text in r]


@pytest.mark.slow
def test_rebinding_numpy_comparisons_scores_zero_and_is_flagged(attacked):
    _, graded = attacked
    fake = graded["fake_numpy"]
    assert _total(fake) == 0, fake["scores"]
    for name in ("numpy.testing.assert_allclose", "numpy.allclose", "numpy.isclose"):
        assert _reasons_with(fake, f"tampering: {name} was rebound"), fake["reasons"]
    assert _reasons_with(fake, "static scan: cell part1_answer line 2: rebinds the module attribute "
                               "np.testing.assert_allclose")
    # The same reasons reach the grading report that `mlpp grade` reads (CSV and JSON).
    assert fake["report"]["review_reasons"] == fake["reasons"]
    # The student sees why in the feedback: the test cell carries the guard's error.
    errors = [o for c in fake["notebook"]["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert any(o["ename"] == "GradingGuardError" and "numpy.allclose was rebound" in o["evalue"] for o in errors)


@pytest.mark.slow
def test_arrays_that_lie_to_numpy_score_zero_and_are_flagged(attacked):
    bare, graded = attacked
    hidden = ("part1_hidden_tests", "part2_hidden_tests", "part3_hidden_tests")
    assert sum(bare["lying_array"]["scores"][name] for name in hidden) > 0, bare["lying_array"]["scores"]
    lying = graded["lying_array"]
    assert _total(lying) == 0, lying["scores"]
    assert _reasons_with(lying, "the notebook defines _Plausible, an array type")
    assert _reasons_with(lying, "subclasses np.ndarray")


@pytest.mark.slow
def test_rebinding_the_course_library_scores_zero_and_is_flagged(attacked):
    bare, graded = attacked
    assert bare["library"]["scores"]["part1_hidden_tests"] == 2, bare["library"]["scores"]
    assert bare["library"]["scores"]["part2_hidden_tests"] == 3, bare["library"]["scores"]
    attack = graded["library"]
    assert attack["scores"]["part1_hidden_tests"] == 0 and attack["scores"]["part2_hidden_tests"] == 0
    assert _reasons_with(attack, "tampering: mlpp.kinematics.masses_from_p4s was rebound")
    assert _reasons_with(attack, "tampering: mlpp.kinematics.delta_r was rebound")
    assert _reasons_with(attack, "rebinds the module attribute kinematics.masses_from_p4s")


@pytest.mark.slow
def test_rebinding_a_builtin_scores_zero_on_the_tests_after_it(attacked):
    bare, graded = attacked
    attack = graded["builtin_all"]
    assert bare["builtin_all"]["scores"]["part1_hidden_tests"] == 2  # `all` hid the modified inputs
    assert attack["scores"]["part1_hidden_tests"] == 0, attack["scores"]
    assert _total(attack) == 0
    assert _reasons_with(attack, "tampering: builtins.all was rebound")
    assert _reasons_with(attack, "rebinds the module attribute builtins.all")


@pytest.mark.slow
def test_neutering_the_guard_fails_closed(attacked):
    _, graded = attacked
    noop = graded["guard_noop"]
    # Part 1 ran before the attack (honest, 3 points); parts 2 and 3 ran after it.
    assert noop["scores"]["part1_tests"] == 1 and noop["scores"]["part1_hidden_tests"] == 2
    assert _total(noop) == 3, noop["scores"]
    assert _reasons_with(noop, "the grading guard's check gave no valid report")
    assert _reasons_with(noop, "imports mlpp.grading_guard")
    wrapper = graded["guard_wrapper"]
    assert wrapper["scores"]["part2_hidden_tests"] == 0 and _total(wrapper) == 3, wrapper["scores"]
    assert _reasons_with(wrapper, "called through a wrapper"), wrapper["reasons"]


@pytest.mark.slow
def test_blanking_cells_with_an_input_transformer_scores_zero(attacked):
    _, graded = attacked
    blank = graded["blank_cells"]
    assert blank["scores"]["part3_tests"] == 0 and blank["scores"]["part3_hidden_tests"] == 0
    assert _total(blank) == 7, blank["scores"]
    assert _reasons_with(blank, "(0 points for part3_tests, part3_hidden_tests)")
    assert _reasons_with(blank, "calls get_ipython()")


@pytest.mark.slow
def test_solution_of_exercise_01_scores_full_and_is_not_flagged(tmp_path):
    graded = _autograde(tmp_path / "course", EX1, {"honest": _submission(EX1, _answers(EX1))}, guarded=True)
    honest = graded["honest"]
    assert honest["guarded"] and honest["reasons"] == []
    assert honest["scores"] == honest["max"], honest["scores"]


@pytest.mark.slow
def test_mlpp_grade_reports_tampering_in_the_json_and_the_csv(tmp_path):
    from mlpp.grading import grade_batch

    folder = tmp_path / "submissions"
    folder.mkdir()
    write_notebook(_submission(EX0, _attacks()["fake_numpy"]), folder / "mallory.ipynb")
    batch = grade_batch(folder, EX0, source_root=REPO, db_path=tmp_path / "gradebook.db",
                        csv_path=tmp_path / "grades.csv")
    result = batch.results["mallory"]
    assert result.score == 0 and result.max_score == 10
    assert result.to_dict()["needs_review"] is True
    assert any("tampering: numpy.testing.assert_allclose was rebound" in r for r in result.review_reasons)
    with (tmp_path / "grades.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["student"] == "mallory" and rows[0]["needs_review"] == "yes"
    assert "numpy.allclose was rebound" in rows[0]["review_reasons"]


# --- static scan --------------------------------------------------------------------------

@pytest.mark.parametrize("path", SOLUTIONS + RELEASES, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_static_scan_finds_nothing_in_solutions_and_releases(path):
    assert [str(h) for h in guard.scan_notebook(read_notebook(path))] == []


def test_every_exercise_is_scanned():
    """The glob above finds every exercise's source and release (a renamed folder would silently drop one)."""
    from mlpp.nbgrader_bridge import exercise_ids

    ids = exercise_ids(REPO)
    assert len(ids) >= 8
    assert [p.parent.name for p in SOLUTIONS] == sorted(ids)
    assert sorted(p.parent.name for p in RELEASES) == sorted(ids)


@pytest.mark.parametrize("source, expected", [
    ("import numpy as np\nnp.testing.assert_allclose = lambda *a, **k: None",
     "line 2: rebinds the module attribute np.testing.assert_allclose"),
    ("import numpy\nnumpy.isclose = f", "rebinds the module attribute numpy.isclose"),
    ("from mlpp import kinematics\nkinematics.jet_p4s = lambda *a, **k: None",
     "rebinds the module attribute kinematics.jet_p4s"),
    ("import builtins\nbuiltins.len = lambda x: 500", "rebinds the module attribute builtins.len"),
    ("setattr(np, 'allclose', f)", "calls setattr()"),
    ("del np.testing.assert_allclose", "rebinds the module attribute np.testing.assert_allclose"),
    ("import sys\nsys.modules['numpy'] = fake", "writes into sys.modules"),
    ("import importlib\nimportlib.reload(np)", "imports importlib"),
    ("import gc\ngc.get_referrers(f)", "imports gc"),
    ("import ctypes", "imports ctypes"),
    ("from inspect import currentframe", "imports inspect"),
    ("exec('np.allclose = f')", "calls exec()"),
    ("eval(code)", "calls eval()"),
    ("__import__('numpy').allclose", "calls __import__()"),
    ("f.__code__ = (lambda *a: True).__code__", "assigns f.__code__"),
    ("g = f.__globals__", "uses f.__globals__"),
    ("globals()['np'] = fake", "writes into a namespace"),
    ("get_ipython().input_transformers_cleanup.append(f)", "calls get_ipython()"),
    ("!rm -rf /", "runs a shell command (rm -rf /)"),
    ("%reset -f", "runs the magic %reset"),
    ("import asyncio\nawait asyncio.sleep(0)\nnp.allclose = f", "rebinds the module attribute np.allclose"),
    ("class Liar(np.ndarray):\n    def __array_function__(self, *a):\n        return True",
     "subclasses np.ndarray"),
    ("class Liar:\n    def __eq__(self, other):\n        return True", "defines __eq__"),
    ("import mlpp.grading_guard", "imports mlpp.grading_guard"),
    ("t = np.testing\nt.assert_allclose = f", "rebinds the module attribute t.assert_allclose"),
    ("np.testing.__dict__.update(assert_allclose=f)", "uses np.testing.__dict__"),
    ("vars(np)['allclose'] = f", "calls vars()"),
    ("object.__setattr__(np, 'allclose', f)", "uses object.__setattr__"),
    ("class V:\n    def __sub__(self, other):\n        return 0", "defines __sub__"),
    ("from mlpp import grading", "imports mlpp.grading"),
    ("import threading", "imports threading"),
    ("import sys\nsys.settrace(f)", "uses sys.settrace"),
])
def test_static_scan_flags_tampering(source, expected):
    hits = [str(h) for h in guard.scan_source(source, "answer")]
    assert any(expected in h for h in hits), hits


@pytest.mark.parametrize("source", [
    "import numpy as np\nx = np.zeros(3)\nx[0] = 1.0",
    "np.asarray(pts)[mask] = 0.0",
    "%time y = f(x)",
    "%matplotlib inline",
    "class Net:\n    def __init__(self):\n        setattr(self, 'w', 1)\n        self.b = 2",
    "names = f.__code__.co_names",
    "model.eval()",
    "def f(len=3):\n    sum = 0\n    return sum",
])
def test_static_scan_leaves_ordinary_code_alone(source):
    assert guard.scan_source(source, "answer") == []


def test_static_scan_flags_rebinding_the_names_the_tests_read():
    nb = _submission(EX0, dict(_answers(EX0), part3_answer="len = lambda x: 500\nnp = None\n"))
    hits = [str(h) for h in guard.scan_notebook(nb)]
    assert "cell part3_answer line 1: rebinds 'len', which the tests use" in hits
    assert "cell part3_answer line 2: rebinds 'np', which the tests use" in hits


def test_static_scan_ignores_settings_of_packages_the_tests_do_not_use():
    nb = _submission(EX0, dict(_answers(EX0), part3_answer=_answers(EX0)["part3_answer"]
                               + "\nimport os\nimport matplotlib.pyplot as plt\nos.environ['X'] = '1'\n"
                                 "plt.rcParams['figure.dpi'] = 80\nnp.testing.assert_allclose = None\n"))
    assert [h.what for h in guard.scan_notebook(nb)] == [
        "rebinds the module attribute np.testing.assert_allclose"]


def test_static_scan_reads_cells_that_only_claim_to_be_locked():
    nb = _submission(EX0, _answers(EX0))
    fake = {"cell_type": "code", "execution_count": None, "id": "fake", "outputs": [],
            "metadata": {"nbgrader": {"locked": True, "grade": False, "solution": False}},  # no grade id
            "source": "np.allclose = lambda *a, **k: True\n"}
    nb["cells"].insert(3, fake)
    assert [str(h) for h in guard.scan_notebook(nb)] == [
        "cell fake line 1: rebinds the module attribute np.allclose"]


# --- the kernel side, in an IPython shell of its own -------------------------------------

# One interpreter imports IPython, numpy and the course library once, then forks a clean child
# per case: capture, the case's cell, one check (the case's report goes to stdout).
RUNTIME = """
import json, os, sys
from IPython.core.interactiveshell import InteractiveShell
import numpy, numpy.testing, mlpp.kinematics
install, cells = sys.stdin.read().split("\\0", 1)
for i, cell in enumerate(json.loads(cells)):
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        shell = InteractiveShell.instance()
        shell.run_cell(install.replace("NONCE", f"case{i}"))
        shell.run_cell("import numpy as np")
        shell.run_cell(cell)
        shell.run_cell(f"_mlpp_guard_case{i}('{i:04x}', ['np', 'len'], {{'np': ['module', 'numpy', '']}})")
        sys.stdout.flush()
        os._exit(0)
    os.waitpid(pid, 0)
"""
CASES = [
    ("x = np.zeros(3)\nx[0] = len([1, 2])", None),
    ("np.isclose = lambda *a, **k: True", "numpy.isclose was rebound"),
    ("np.testing.assert_allclose.__code__ = (lambda *a, **k: None).__code__",
     "assert_allclose were replaced"),
    ("np.allclose._implementation.__code__ = (lambda *a, **k: True).__code__", "allclose were replaced"),
    ("import mlpp.kinematics\nmlpp.kinematics.delta_r.__defaults__ = (1,)",
     "the code or defaults of mlpp.kinematics.delta_r were replaced"),
    ("del np.testing.assert_allclose", "numpy.testing.assert_allclose was deleted"),
    ("import sys\nsys.modules['numpy.testing'] = type(sys)('numpy.testing')",
     "sys.modules['numpy.testing'] was replaced"),
    ("len = lambda x: 500", "the builtin 'len' the tests use is shadowed in the notebook"),
    ("import math as np", "the name 'np' the tests use no longer refers to numpy"),
    ("__builtins__ = dict(vars(__builtins__))", "the notebook's __builtins__ was replaced"),
    ("import threading, time\nthreading.Thread(target=lambda: time.sleep(60), daemon=True).start()",
     "a thread runs the notebook's code between cells: <lambda>"),
    ("get_ipython().events.register('pre_run_cell', lambda *a: None)",
     "IPython's events.pre_run_cell got a hook from the notebook"),
    ("get_ipython().set_custom_exc((AssertionError,), lambda *a, **k: None)",
     "IPython's custom_exceptions was replaced"),
    ("_real = _mlpp_guard_caseN\n_mlpp_guard_caseN = lambda *a, **k: _real(*a, **k)",
     "the grading guard's check was called through a wrapper"),
    ("class Liar(np.ndarray):\n    pass", "the notebook defines Liar, an array type"),
]


@pytest.fixture(scope="module")
def kernel_reports() -> list[list[str]]:
    """Each case's problems, from its signed report (the signature is verified here)."""
    import subprocess
    import sys

    install = guard._runtime_source() + "_mlpp_guard_install('NONCE', ['numpy', 'numpy.testing', " \
        "'mlpp.kinematics'], ('builtins', 'numpy', 'mlpp'))\n"
    cells = [cell.replace("caseN", f"case{i}") for i, (cell, _) in enumerate(CASES)]
    out = subprocess.run([sys.executable, "-c", RUNTIME], input=install + "\0" + json.dumps(cells),
                         capture_output=True, text=True, timeout=300, check=True).stdout
    lines = out.splitlines()
    reports = []
    for i in range(len(CASES)):
        (key,) = [ln.split()[3] for ln in lines if ln.startswith(f"MLPP-GUARD case{i} [] ")]
        (report,) = [ln[len("MLPP-GUARD "):] for ln in lines if ln.startswith(f"MLPP-GUARD {i:04x} ")]
        body, signature = report.rsplit(" ", 1)
        assert signature == hmac.new(bytes.fromhex(key), body.encode(), hashlib.sha256).hexdigest()
        reports.append(json.loads(body.split(" ", 1)[1]))
    return reports


@pytest.mark.parametrize("case", range(len(CASES)), ids=[c[1] or "clean" for c in CASES])
def test_the_check_in_the_kernel_finds_tampering(kernel_reports, case):
    problems, expected = kernel_reports[case], CASES[case][1]
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems


# --- the verdict, without a kernel --------------------------------------------------------

def _injected(exercise: str = EX0):
    nb = nbformat.from_dict(copy.deepcopy(read_notebook(REPO / "solutions" / exercise / f"{exercise}.ipynb")))
    nb, resources = guard.GuardInject().preprocess(nb, {})
    return nb, resources


def _stdout(text: str):
    return nbformat.from_dict({"output_type": "stream", "name": "stdout", "text": text})


def _sign(key: bytes, nonce: str, problems: str) -> str:
    body = f"{nonce} {problems}"
    return f"MLPP-GUARD {body} {hmac.new(key, body.encode(), hashlib.sha256).hexdigest()}\n"


def _fill(nb, key: bytes, report) -> None:
    """Give every injected cell an output: the capture its key, each check ``report(cell)``."""
    for cell in nb.cells:
        meta = cell.metadata.get(guard.METADATA_KEY)
        if meta and meta["role"] == "capture":
            cell.outputs = [_stdout(f"MLPP-GUARD {meta['nonce']} [] {key.hex()}\n")]
            cell.execution_count = 1
        elif meta:
            cell.outputs = report(cell)
            cell.execution_count = 2


def _scores_zeroed(nb) -> list[str]:
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if any(o.get("ename") == "GradingGuardError" for o in c.get("outputs", []))]


def test_injection_wraps_every_test_cell_and_starts_with_the_capture():
    nb, _ = _injected()
    roles = [c.metadata.get(guard.METADATA_KEY, {}).get("role") for c in nb.cells]
    tests = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if guard._is_test(c)]
    assert roles[0] == "capture" and roles.count("before") == roles.count("after") == len(tests) == 6
    for i, cell in enumerate(nb.cells):
        if guard._is_test(cell):
            assert roles[i - 1] == "before" and roles[i + 1] == "after"
    nbformat.validate(nb)


def test_verdict_keeps_clean_checks_and_removes_the_injected_cells():
    key = bytes(range(16))
    nb, resources = _injected()
    _fill(nb, key, lambda c: [_stdout(_sign(key, c.metadata[guard.METADATA_KEY]["nonce"], "[]"))])
    nb, resources = guard.GuardVerdict().preprocess(nb, resources)
    assert _scores_zeroed(nb) == [] and guard.review_reasons(nb) == []
    assert not any(guard.METADATA_KEY in c.metadata for c in nb.cells)
    assert resources["mlpp"]["review_reasons"] == []


def test_verdict_zeroes_tests_around_a_failed_check():
    key = bytes(range(16))
    nb, resources = _injected()
    problem = json.dumps(["numpy.allclose was rebound"])

    def report(cell):
        meta = cell.metadata[guard.METADATA_KEY]
        bad = meta["test"] == "part2_tests" and meta["role"] == "after"
        return [_stdout(_sign(key, meta["nonce"], problem if bad else "[]"))]

    _fill(nb, key, report)
    nb, resources = guard.GuardVerdict().preprocess(nb, resources)
    assert _scores_zeroed(nb) == ["part2_tests"]
    assert guard.review_reasons(nb) == ["tampering: numpy.allclose was rebound (0 points for part2_tests)"]
    assert resources["mlpp"]["review_reasons"] == guard.review_reasons(nb)


@pytest.mark.parametrize("forgery", ["unsigned", "wrong_key", "silent", "two_reports"])
def test_verdict_fails_closed_on_forged_or_missing_reports(forgery):
    key, other = bytes(range(16)), bytes(16)

    def report(cell):
        nonce = cell.metadata[guard.METADATA_KEY]["nonce"]
        return {"unsigned": [_stdout(f"MLPP-GUARD {nonce} [] 00\n")],
                "wrong_key": [_stdout(_sign(other, nonce, "[]"))],
                "silent": [],
                "two_reports": [_stdout(_sign(key, nonce, "[]") + _sign(key, nonce, "[]"))]}[forgery]

    nb, resources = _injected()
    _fill(nb, key, report)
    nb, _ = guard.GuardVerdict().preprocess(nb, resources)
    assert len(_scores_zeroed(nb)) == 6
    assert any("gave no valid report" in r for r in guard.review_reasons(nb))


def test_verdict_does_not_call_a_stopped_kernel_tampering():
    key = bytes(range(16))
    nb, resources = _injected()
    stopped = nbformat.from_dict({"output_type": "error", "ename": "NotRun", "evalue": "not run: the kernel died",
                                  "traceback": []})
    _fill(nb, key, lambda c: [stopped])
    nb, _ = guard.GuardVerdict().preprocess(nb, resources)
    assert _scores_zeroed(nb) == [] and guard.review_reasons(nb) == []


def test_review_reasons_of_a_notebook_graded_without_the_guard():
    nb = read_notebook(REPO / "solutions" / EX0 / f"{EX0}.ipynb")
    assert guard.review_reasons(nb) == [] and not guard.guarded(nb)


def test_command_line_scans_submissions_and_reads_verdicts(tmp_path, capsys):
    tampered = tmp_path / "mallory.ipynb"
    write_notebook(_submission(EX0, _attacks()["fake_numpy"]), tampered)
    solution = REPO / "solutions" / EX0 / f"{EX0}.ipynb"
    assert guard.main([str(solution)]) == 0
    assert guard.main([str(tampered)]) == 1
    assert "cell part1_answer line 3: rebinds the module attribute np.allclose" in capsys.readouterr().out
    graded = tmp_path / "graded.ipynb"
    write_notebook({"cells": [], "metadata": {guard.METADATA_KEY: {"reasons": ["tampering: x"]}},
                    "nbformat": 4, "nbformat_minor": 5}, graded)
    assert guard.main(["--graded", str(graded)]) == 1 and "  tampering: x" in capsys.readouterr().out
    (tmp_path / "broken.ipynb").write_text("{", encoding="utf-8")
    assert guard.main([str(tmp_path / "broken.ipynb")]) == 1
    assert "cannot read it as a notebook" in capsys.readouterr().err


# --- wiring -------------------------------------------------------------------------------

def test_configure_puts_the_guard_around_execute_once():
    c = guard.configure_nbgrader(guard.configure_nbgrader(Config()))
    names = [guard._step_name(s) for s in c.Autograde.autograde_preprocessors]
    at = names.index("nbgrader.preprocessors.execute.Execute")
    assert names[at - 1:at + 2] == [guard.INJECT_STEP, names[at], guard.VERDICT_STEP]
    assert names.count(guard.INJECT_STEP) == names.count(guard.VERDICT_STEP) == 1
    assert names.index("nbgrader.preprocessors.saveautogrades.SaveAutoGrades") > at + 1


@pytest.mark.parametrize("guard_first", [True, False])
def test_configure_works_with_the_sandbox_in_either_order(guard_first):
    from mlpp import sandbox

    c = Config()
    steps = [guard.configure_nbgrader, sandbox.configure_nbgrader]
    for step in steps if guard_first else reversed(steps):
        step(c)
    names = [guard._step_name(s) for s in c.Autograde.autograde_preprocessors]
    at = names.index(sandbox.EXECUTE_STEP)
    assert names[at - 1:at + 2] == [guard.INJECT_STEP, sandbox.EXECUTE_STEP, guard.VERDICT_STEP]


def test_configure_refuses_a_list_without_execute():
    c = Config()
    c.Autograde.autograde_preprocessors = ["nbgrader.preprocessors.SaveAutoGrades"]
    with pytest.raises(ValueError, match="no Execute step"):
        guard.configure_nbgrader(c)
