"""The grading sandbox against a hostile student: real bwrap, real nbgrader, real kernels.

Each attack is a submission of the tiny demo exercise (tests/fixtures/demo_exercise, 3 points)
whose answer is right only if the attack works (it reads the solution, fetches it over the
network, finds a secret): in the sandbox it must score 0, and a control run with
``--no-sandbox`` shows that the same notebook scores 3 where nothing stops it. The resource
attacks (endless loops, memory, processes, output, a dying kernel) must cost at most their
limit and still give a row with the points earned before them and the reason. All attacks
run as one nbgrader batch to keep the file fast; exercise 00 (the real one) is the slow test.
"""
from __future__ import annotations

import csv
import http.server
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from mlpp.cli import main
from mlpp.grading import CSV_EXTRA, GradingError, grade_batch, grade_notebook
from mlpp.nbgrader_bridge import read_notebook, write_notebook
from mlpp.sandbox import (
    CELL_TIMEOUT, DEFAULT_LIMITS, EXECUTE_STEP, REPORT_STEP, Limits, add_preprocessors, configure_nbgrader,
    sandbox_problem,
)

REPO = Path(__file__).resolve().parents[1]
DEMO = "demo_exercise"
CORRECT = "return np.hypot(pxs, pys)"
SECRET = "instructor-secret-7f3a"
# The attack batch's limits: small, so that each resource attack costs seconds.
LIMITS = DEFAULT_LIMITS.updated(cell_timeout_s=6, memory_mb=1536, output_mb=2, notebook_timeout_s=120)

pytestmark = pytest.mark.skipif(sandbox_problem() is not None, reason=str(sandbox_problem()))


# --- building submissions ---------------------------------------------------------------

def _source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def submission(release: Path, answer_body: str, *, before_tests: str = "", between_tests: str = "") -> dict:
    """The release with the answer's body replaced and student cells added: one before the
    test cells, one between the visible and the hidden test (nbgrader keeps added cells)."""
    nb = read_notebook(release)
    cells = []
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id == "pts_from_pxpys":
            cell["source"] = _source(cell).replace("    raise NotImplementedError()", indent(answer_body))
        if grade_id == "test_pts_values" and between_tests:
            cells.append(_student_cell("between", between_tests))
        cells.append(cell)
        if grade_id == "pts_from_pxpys" and before_tests:
            cells.append(_student_cell("before", before_tests))
    nb["cells"] = cells
    return nb


def _student_cell(cell_id: str, source: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": f"student-{cell_id}", "metadata": {},
            "outputs": [], "source": source}


def indent(code: str) -> str:
    return "\n".join("    " + line for line in code.strip().splitlines())


def attacks(course: Path, port: int, home: Path) -> dict[str, dict]:
    """``{student: notebook}``: every attack, and an honest student graded first."""
    release = course / "exercises" / DEMO / f"{DEMO}.ipynb"
    solution = course / "solutions" / DEMO / f"{DEMO}.ipynb"
    # Exec the solution's answer cell from a notebook's JSON text: full marks if it can be read.
    run_solution = f'''
import json
cell = next(c for c in json.loads(text)["cells"] if c["metadata"]["nbgrader"].get("grade_id") == "pts_from_pxpys")
scope = {{"np": np}}
exec("".join(cell["source"]), scope)
return scope["pts_from_pxpys"](pxs, pys)'''
    return {
        "a_honest": submission(release, CORRECT),
        "read_solution": submission(release, (f'''
from mlpp.settings import repo_root
text = None
for path in (repo_root() / "solutions" / "{DEMO}" / "{DEMO}.ipynb", "{solution}"):
    try:
        text = open(path).read()
        break
    except OSError:
        pass
''' + run_solution)),
        # nbgrader writes the notebook with the hidden tests restored into the kernel's folder.
        "read_hidden_tests": submission(release, ('''
import glob
found = [p for p in glob.glob("*.ipynb") + glob.glob("../**/*.ipynb", recursive=True)
         if "assert np.allclose" in open(p).read()]
if not found:
    raise RuntimeError("no hidden tests in reach")
return np.hypot(pxs, pys)''')),
        "network": submission(release, (f'''
import urllib.request
text = urllib.request.urlopen("http://127.0.0.1:{port}/solution", timeout=3).read().decode()
''' + run_solution)),
        "secrets": submission(release, (f'''
import os
leaks = [os.environ.get("JUPYTERHUB_API_TOKEN", "")]
for path in ("{home}/secret.txt", os.path.expanduser("~/secret.txt"), "/root/.bashrc", "/root/.profile"):
    try:
        leaks.append(open(path).read())
    except OSError:
        pass
if not any(leaks):
    raise RuntimeError("no secrets in reach")
return np.hypot(pxs, pys)''')),
        # Fills the disk: right only if it wrote more than the cap, or into its kernel's folder on the grader's disk.
        "disk_fill": submission(release, '''
if not FILLED:
    raise RuntimeError("the disk is capped")
return np.hypot(pxs, pys)''', before_tests='''
import glob
written = 0
try:
    for i in range(100):
        with open(f"fill{i}", "wb") as f:
            f.write(b"0" * (8 << 20))
        written += 8 << 20
except OSError as err:
    print("stopped at", written >> 20, "MiB:", err)
escaped = False
for folder in glob.glob("/tmp/mlpp-kernel-*"):
    try:
        open(folder + "/fill", "wb").write(b"0")
        escaped = True
    except OSError:
        pass
FILLED = written > (600 << 20) or escaped
'''),
        # Honest answer, but tries to destroy the gradebook and plant files in the checkout.
        "write_gradebook": submission(release, CORRECT, before_tests=f'''
import os
from mlpp.settings import repo_root
for target in (repo_root() / "grading" / "gradebook.db", "{course}/grading/gradebook.db"):
    try:
        with open(target, "r+b") as f:
            f.write(b"pwned" * 100)
    except OSError as err:
        print("gradebook:", err)
for folder in (repo_root() / "solutions", "{course}/solutions", "{REPO}/solutions", "{course}"):
    try:
        open(os.path.join(folder, "planted_by_student.txt"), "w").write("x")
    except OSError as err:
        print("plant:", err)
'''),
        "endless_loop": submission(release, CORRECT, before_tests="while True:\n    pass\n"),
        "stubborn_loop": submission(release, CORRECT, between_tests='''
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
while True:
    pass
'''),
        "memory_bomb": submission(release, CORRECT, before_tests='''
blocks = []
while True:
    blocks.append(bytearray(64 << 20))
'''),
        "fork_bomb": submission(release, CORRECT, before_tests='''
import os, time
children = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
        children += 1
except OSError as err:
    print("fork stopped after", children, err)
'''),
        "dies": submission(release, CORRECT, between_tests="import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"),
        "output_flood": submission(release, CORRECT, before_tests='for _ in range(40):\n    print("x" * (1 << 20))\n'),
    }


# --- fixtures ---------------------------------------------------------------------------

# `course` (the demo exercise, released) comes from conftest.py


@pytest.fixture(scope="module")
def solution_server(course: Path):
    """A web server on loopback that hands out the solution and counts requests."""
    text = (course / "solutions" / DEMO / f"{DEMO}.ipynb").read_bytes()
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hits
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def hostile_env(tmp_path_factory: pytest.TempPathFactory):
    """The instructor's environment: a home with a secret file and a hub token."""
    home = tmp_path_factory.mktemp("instructor-home")
    (home / "secret.txt").write_text(SECRET)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTERHUB_API_TOKEN", SECRET)
        mp.setenv("HOME", str(home))
        yield home


def _sandbox_processes(folder: Path) -> list[str]:
    """Command lines of processes that name ``folder`` (the jails' and kernels' do, and a forked kernel's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(folder) in cmdline:
                found.append(f"{entry.name}: {cmdline[:120]}")
    return found


@pytest.fixture(scope="module")
def attacked(course: Path, solution_server, hostile_env: Path, tmp_path_factory: pytest.TempPathFactory):
    """Grade every attack in one sandboxed batch; then one more student in a second batch."""
    port, hits = solution_server
    folder = tmp_path_factory.mktemp("submissions")
    for student, nb in attacks(course, port, hostile_env).items():
        write_notebook(nb, folder / f"{student}.ipynb")
    before = {p.relative_to(course) for p in course.rglob("*")}
    repo_files = set(os.listdir(REPO / "solutions"))
    kernels = Path(tempfile.mkdtemp(prefix="mlpp-test-"))  # short: ipc socket paths have a length limit
    kernels.chmod(0o755)  # the jail's user passes through it
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLPP_ROOT", str(course))
        mp.setenv("TMPDIR", str(kernels))  # the jails' folders land here: leftovers can be found
        start = time.monotonic()
        batch = grade_batch(folder, DEMO, limits=LIMITS)
        elapsed = time.monotonic() - start
        late = tmp_path_factory.mktemp("late")
        write_notebook(read_notebook(course / "exercises" / DEMO / f"{DEMO}.ipynb"), late / "z_late.ipynb")
        second = grade_batch(late, DEMO, limits=LIMITS)
    planted = sorted(p for p in REPO.joinpath("solutions").iterdir() if p.name not in repo_files)
    for path in planted:  # the sandbox failed; leave the checkout as it was
        path.unlink()
    leftovers = _sandbox_processes(kernels)
    kernel_dirs = list(kernels.glob("mlpp-kernel-*"))
    shutil.rmtree(kernels, ignore_errors=True)
    return {"batch": batch, "second": second, "elapsed": elapsed, "hits": list(hits), "planted": planted,
            "kernels": kernels, "leftovers": leftovers, "kernel_dirs": kernel_dirs,
            "before": before, "after": {p.relative_to(course) for p in course.rglob("*")}}


# --- the attacks ------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("student", ["read_solution", "read_hidden_tests", "network", "secrets", "disk_fill"])
def test_reading_attacks_earn_nothing(attacked: dict, student: str) -> None:
    result = attacked["batch"].results[student]
    assert result.sandbox and result.max_score == 3
    assert result.score == 0, result


@pytest.mark.slow
def test_no_network_even_on_loopback(attacked: dict) -> None:
    assert attacked["hits"] == []


@pytest.mark.slow
def test_gradebook_and_checkout_survive(attacked: dict, course: Path) -> None:
    """The gradebook attack changed nothing outside: every student is in the gradebook and
    the CSV, no file appeared in the course or the checkout."""
    batch = attacked["batch"]
    assert batch.results["write_gradebook"].score == 3
    assert attacked["planted"] == []
    new = {p for p in attacked["after"] - attacked["before"] if p.parts[0] != "grading"}
    assert new == set(), new
    assert not list(course.rglob("planted_by_student.txt"))
    with sqlite3.connect(course / "grading" / "gradebook.db") as db:
        students = {row[0] for row in db.execute("select id from student")}
    assert students >= set(batch.results) | {"z_late"}


@pytest.mark.slow
def test_grades_csv_is_the_whole_gradebook(attacked: dict, course: Path) -> None:
    """The second batch graded one student; the CSV still lists every student of both batches."""
    assert list(attacked["second"].results) == ["z_late"]
    with (course / "grading" / "grades.csv").open() as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(attacked["batch"].results) | {"z_late"}
    assert list(next(iter(rows.values())))[-len(CSV_EXTRA):] == CSV_EXTRA
    assert float(rows["a_honest"]["score"]) == 3 and float(rows["z_late"]["score"]) == 0
    assert "kernel died" in rows["dies"]["reason"]  # notes of the first batch survive the second
    assert {r["sandbox"] for r in rows.values()} == {"yes"}


@pytest.mark.slow
def test_endless_loop_costs_one_cell_limit(attacked: dict) -> None:
    """Interrupted at the cell limit; the tests after it still run and score."""
    result = attacked["batch"].results["endless_loop"]
    assert result.score == 3
    assert f"time limit: ran over {LIMITS.cell_timeout_s} s" in result.reason


@pytest.mark.slow
def test_loop_that_ignores_the_interrupt_is_stopped(attacked: dict) -> None:
    """SIGINT ignored: the kernel is stopped; points before it count, the rest is not run."""
    result = attacked["batch"].results["stubborn_loop"]
    assert (result.score, [p.score for p in result.parts]) == (1, [1, 0])
    assert "ignored the interrupt" in result.reason and "cell student-between" in result.reason


@pytest.mark.slow
def test_memory_bomb_hits_the_limit(attacked: dict) -> None:
    result = attacked["batch"].results["memory_bomb"]
    assert result.score == 3
    assert f"memory limit ({LIMITS.memory_mb} MiB)" in result.reason


@pytest.mark.slow
def test_fork_bomb_is_bounded_and_cleaned_up(attacked: dict) -> None:
    assert attacked["batch"].results["fork_bomb"].score == 3
    assert attacked["leftovers"] == []
    assert attacked["kernel_dirs"] == []


@pytest.mark.slow
def test_dead_kernel_keeps_points_before_it(attacked: dict) -> None:
    result = attacked["batch"].results["dies"]
    assert (result.score, [p.score for p in result.parts]) == (1, [1, 0])
    assert "the kernel died" in result.reason and "student-between" in result.reason


@pytest.mark.slow
def test_output_flood_is_capped(attacked: dict) -> None:
    result = attacked["batch"].results["output_flood"]
    assert result.score == 3
    assert f"output limit ({LIMITS.output_mb} MiB per cell)" in result.reason


@pytest.mark.slow
def test_batch_time_is_bounded(attacked: dict) -> None:
    """Thirteen submissions, two endless loops: the loops cost their limits, not 600 s."""
    assert not attacked["batch"].errors
    assert attacked["elapsed"] < 240, attacked["elapsed"]


@pytest.mark.slow
def test_attacks_work_without_the_sandbox(course: Path, solution_server, hostile_env: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: the reading attacks are real (full marks with --no-sandbox), and the trusted
    mode says so loudly in the table, on stderr and in the JSON."""
    port, _ = solution_server
    monkeypatch.setenv("MLPP_ROOT", str(course))
    everything = attacks(course, port, hostile_env)
    folder = tmp_path / "subs"
    folder.mkdir()
    for student in ("read_solution", "network", "secrets"):
        write_notebook(everything[student], folder / f"{student}.ipynb")
    code = main(["grade", "--batch", str(folder), "--exercise", DEMO, "--no-sandbox", "--json", "--timeout", "30"])
    out, err = capsys.readouterr()
    assert code == 0 and "WITHOUT the sandbox" in err
    result = json.loads(out)
    assert result["sandbox"] is False
    assert {r["student"]: (r["score"], r["sandbox"]) for r in result["results"]} == {
        "read_solution": (3, False), "network": (3, False), "secrets": (3, False)}


# --- set-up, config and refusal ---------------------------------------------------------

def test_missing_bwrap_refuses_with_one_line(course: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setenv("MLPP_ROOT", str(course))
    sandbox_problem.cache_clear()
    try:
        release = course / "exercises" / DEMO / f"{DEMO}.ipynb"
        assert main(["grade", str(release), "--exercise", DEMO]) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "sudo apt-get install bubblewrap" in err and "make system" in err
        with pytest.raises(GradingError, match="--no-sandbox"):
            grade_notebook(release, DEMO)
    finally:
        sandbox_problem.cache_clear()


def test_course_config_sandboxes_nbgrader() -> None:
    """nbgrader_config.py (read by the hub's formgrader too) sets the one per-cell limit and
    puts the sandboxed Execute in autograde's place; checks can sit around it."""
    from traitlets.config.loader import PyFileConfigLoader

    c = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    assert c.Execute.timeout == CELL_TIMEOUT == DEFAULT_LIMITS.cell_timeout_s < 600
    steps = [s if isinstance(s, str) else f"{s.__module__}.{s.__name__}" for s in c.Autograde.autograde_preprocessors]
    assert EXECUTE_STEP in steps[:3] and steps[-1] == REPORT_STEP  # the tamper guard may sit around it
    assert not [s for s in steps if s.endswith(".Execute")]
    assert c.SandboxedExecute.memory_mb == DEFAULT_LIMITS.memory_mb

    configure_nbgrader(c, data_dir="/srv/data", limits=Limits(cell_timeout_s=42, memory_mb=1000))
    add_preprocessors(c, before=["check.Before"], after=["check.After"])
    add_preprocessors(c, before=["check.Before"])
    steps = list(c.Autograde.autograde_preprocessors)
    at = steps.index(EXECUTE_STEP)
    assert steps[at - 1:at + 2] == ["check.Before", EXECUTE_STEP, "check.After"] and steps.count("check.Before") == 1
    assert (c.Execute.timeout, c.SandboxedExecute.memory_mb, c.SandboxedExecute.data_dir) == (42, 1000, "/srv/data")


@pytest.mark.slow
def test_nbgrader_itself_runs_kernels_in_the_sandbox(course: Path, tmp_path: Path) -> None:
    """The hub's route: plain `nbgrader autograde` with the course's nbgrader_config.py (no mlpp
    grade around it). The answer is right only inside the jail, so 3/3 proves it ran there."""
    root = tmp_path / "course"
    root.mkdir()
    shutil.copyfile(course / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(course / "solutions", root / "solutions")
    answer = (f'''
import os
assert os.environ.get("MLPP_SANDBOX") == "1" and "JUPYTERHUB_API_TOKEN" not in os.environ
assert not os.path.exists("{root}/nbgrader_config.py") and not os.path.exists("{root}/gradebook.db")
return np.hypot(pxs, pys)''')
    nb = submission(course / "exercises" / DEMO / f"{DEMO}.ipynb", answer)
    dest = root / "submitted" / "eve" / DEMO / f"{DEMO}.ipynb"
    dest.parent.mkdir(parents=True)
    write_notebook(nb, dest)
    nbgrader = [sys.executable, "-m", "nbgrader"]
    env = {**os.environ, "JUPYTERHUB_API_TOKEN": SECRET, "MLPP_ROOT": str(root),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}  # alembic
    for args in (["generate_assignment", DEMO, "--force"], ["autograde", DEMO, "--student", "eve", "--force"]):
        proc = subprocess.run(nbgrader + args, cwd=root, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    with sqlite3.connect(root / "gradebook.db") as db:
        score = db.execute("select sum(auto_score) from grade").fetchone()[0]
    assert score == 3


@pytest.mark.slow
@pytest.mark.notebooks
def test_exercise_00_in_the_sandbox(tmp_path: Path) -> None:
    """The real exercise in the jail: the solution gets full marks, the untouched release zero."""
    exercise = "00_collisions_to_jets"
    folder = tmp_path / "subs"
    folder.mkdir()
    shutil.copyfile(REPO / "solutions" / exercise / f"{exercise}.ipynb", folder / "solution.ipynb")
    shutil.copyfile(REPO / "exercises" / exercise / f"{exercise}.ipynb", folder / "release.ipynb")
    batch = grade_batch(folder, exercise, source_root=REPO, db_path=tmp_path / "gb.db", csv_path=tmp_path / "g.csv")
    assert not batch.errors
    solution, release = batch.results["solution"], batch.results["release"]
    assert solution.sandbox and solution.max_score > 0 and solution.score == solution.max_score, solution
    assert release.score == 0 and release.reason == "", release


def test_generated_data_is_readable_by_all(tmp_path: Path) -> None:
    """Data files are 0644 (not mkstemp's 0600), so a shared data folder works for every user."""
    import numpy as np

    from mlpp.data.cache import write_npz

    old = os.umask(0o022)
    try:
        write_npz(tmp_path / "sub" / "x.npz", {"a": np.arange(3)})
    finally:
        os.umask(old)
    assert (tmp_path / "sub" / "x.npz").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "sub" / "manifest.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "sub").stat().st_mode & 0o777 == 0o755


@pytest.mark.slow
def test_notebook_time_limit_stops_the_rest(tmp_path: Path) -> None:
    """Cells that each stay under the cell limit still cannot run past the notebook limit."""
    import nbformat

    from mlpp.sandbox_kernel import SandboxedExecute

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(4)") for _ in range(3)]
    step = SandboxedExecute(timeout=10, notebook_timeout_s=6)
    start = time.monotonic()
    nb, resources = step.preprocess(nb, {"metadata": {"path": str(tmp_path)}})
    assert time.monotonic() - start < 30
    assert [o.ename for o in nb.cells[2].outputs] == ["NotRun"]
    assert "notebook time limit (6 s)" in nb.cells[2].outputs[0].evalue
    assert [e["reason"] for e in resources["mlpp"]["events"]][-1] == "the notebook time limit (6 s) was reached"
