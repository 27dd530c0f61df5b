"""The course's JupyterHub (hub/), started for real on loopback and driven through a whole term.

Three unix users are created for the test (an instructor and two students, removed afterwards) and
the hub is started with `hub/start.py`, as a course would start it. Through the Hub's REST API and
each user's nbgrader endpoints (formgrader, assignment list) the instructor releases exercise 00
from the repository's solutions/, the students fetch it (one in the browser, below), one submits the
solution and one the untouched release, the instructor collects, autogrades (through the grading
sandbox, which a probe in the submission checks from inside), generates and releases feedback, a
student fetches it, and `nbgrader export` writes the CSV. In headless Chromium a student logs in,
opens a lecture through the nbgitpuller launch link, runs its first cells in the course kernel, sees
the exercise in the Assignment List and fetches it; the instructor opens the formgrader.
Screenshots go to $MLPP_ARTIFACTS/hub (default test-artifacts/hub).

Needs root (the hub switches to each user's account), configurable-http-proxy in hub/node_modules
(`make hub` or `make test` installs it), Debian's chromium and bubblewrap (`make system`).
"""
from __future__ import annotations

import csv
import io
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.prefix) / "bin"
PROXY = REPO / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EXERCISE = "00_collisions_to_jets"
LECTURE = "lectures/00_collisions_to_jets.ipynb"
COURSE_ID = "mlpp"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the hub runs as root (it starts each user's server "
                                                           "as that user)")


def _artifacts() -> Path:
    folder = Path(os.environ.get("MLPP_ARTIFACTS") or REPO / "test-artifacts") / "hub"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie of ours is not running
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


def _stop(pids: list[int], grace: float = 10) -> list[int]:
    """SIGTERM each pid, wait up to ``grace`` s, SIGKILL the rest; returns the pids that needed SIGKILL."""
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.2)
    killed = [p for p in pids if _alive(p)]
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    return killed


# --------------------------------------------------------------------------- the machine's side

@pytest.fixture(scope="module")
def state_dir():
    """The hub's state folder, outside pytest's tmp_path (which other users cannot enter)."""
    folder = Path(tempfile.mkdtemp(prefix="mlpp-hub-", dir="/tmp"))
    os.chmod(folder, 0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def python_for_everyone():
    """The course's Python must be runnable by the course's users.

    On machines where it lives under root's home (pyenv in /root, mode 0700) the test lets other
    users pass through the closed folders (o+x, no listing) and restores their modes afterwards;
    hub/start.py refuses with the same advice when this is missing.
    """
    sys.path.insert(0, str(REPO / "hub"))
    try:
        from start import unreachable_folder
    finally:
        sys.path.remove(str(REPO / "hub"))
    opened: dict[Path, int] = {}
    interpreter = Path(os.path.realpath(VENV_BIN / "python"))
    try:
        while (blocked := unreachable_folder(interpreter)) is not None:
            opened[blocked] = stat.S_IMODE(blocked.stat().st_mode)
            os.chmod(blocked, opened[blocked] | 0o001)
        yield
    finally:
        for folder, mode in opened.items():
            os.chmod(folder, mode)


@pytest.fixture(scope="module")
def users(state_dir, python_for_everyone):
    """An instructor and two students as unix users with homes and passwords (removed afterwards)."""
    tag = secrets.token_hex(3)
    names = {"instructor": f"mlpp{tag}i", "alice": f"mlpp{tag}a", "bob": f"mlpp{tag}b"}
    passwords = {role: secrets.token_urlsafe(12) for role in names}
    created = []
    try:
        for role, name in names.items():
            home = state_dir / "home" / name
            home.parent.mkdir(exist_ok=True)
            os.chmod(home.parent, 0o755)
            subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/bash", name],
                           check=True)
            created.append(name)
            subprocess.run(["chpasswd"], input=f"{name}:{passwords[role]}\n", text=True, check=True)
        yield {role: (name, passwords[role]) for role, name in names.items()}
    finally:
        for name in created:
            # their processes are stopped by the hub fixture first; -f: remove the home even if in use
            subprocess.run(["userdel", "--force", "--remove", name], capture_output=True)


class Hub:
    """A running hub: its address, its admin token, and helpers for the REST APIs."""

    def __init__(self, url: str, token: str, state: Path, log: Path):
        import requests

        self.url, self.state, self.log = url, state, log
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"

    def api(self, method: str, path: str, **kw):
        return self.session.request(method, f"{self.url}/hub/api/{path}", timeout=60, **kw)

    def server(self, user: str, method: str, path: str, **kw):
        """A request to ``user``'s own Jupyter server, through the proxy, with the admin token."""
        return self.session.request(method, f"{self.url}/user/{user}/{path}", timeout=300, **kw)

    def start_servers(self, names: list[str], timeout: float = 120) -> float:
        """Start the servers of ``names`` at once; returns the seconds until all were ready."""
        started = time.monotonic()
        for name in names:
            reply = self.api("POST", f"users/{name}/server")
            assert reply.status_code in (201, 202), f"starting {name}'s server: {reply.status_code} {reply.text}"
        waiting = set(names)
        while waiting:
            assert time.monotonic() - started < timeout, f"servers not ready after {timeout} s: {waiting}; " \
                                                        f"hub log {self.log}"
            for name in list(waiting):
                model = self.api("GET", f"users/{name}").json()
                if model.get("servers", {}).get("", {}).get("ready"):
                    waiting.discard(name)
            time.sleep(0.3)
        return time.monotonic() - started

    def server_pids(self) -> list[int]:
        pids = []
        for model in self.api("GET", "users").json():
            for server in model.get("servers", {}).values():
                pid = (server.get("state") or {}).get("pid")
                if pid:
                    pids.append(int(pid))
        return pids


@pytest.fixture(scope="module")
def hub(users, state_dir):
    """The course hub as `hub/start.py` starts it, stopped afterwards with every process it started."""
    assert PROXY.exists(), "configurable-http-proxy is missing: run 'make hub' (make test installs it)"
    port, token = _free_port(), secrets.token_hex(32)
    for old in _artifacts().glob("*.png"):  # screenshots of an earlier run
        old.unlink()
    log = _artifacts() / "hub.log"
    env = {**os.environ, "MLPP_HUB_API_TOKEN": token}
    command = [str(VENV_BIN / "python"), str(REPO / "hub" / "start.py"), "--instructor", users["instructor"][0],
               "--students", f"{users['alice'][0]},{users['bob'][0]}", "--port", str(port),
               "--state", str(state_dir / "state"), "--course-id", COURSE_ID]
    started = time.monotonic()
    with open(log, "w") as handle:
        process = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    hub = Hub(f"http://127.0.0.1:{port}", token, state_dir / "state", log)
    pids: list[int] = []
    try:
        while True:
            assert process.poll() is None, f"the hub exited ({process.returncode}): {log.read_text()[-2000:]}"
            try:
                if hub.api("GET", "").status_code == 200:
                    break
            except Exception:  # not listening yet
                pass
            assert time.monotonic() - started < 90, f"the hub did not answer in 90 s: {log}"
            time.sleep(0.3)
        hub.start_seconds = time.monotonic() - started
        yield hub
    finally:
        # The proxy and the user servers run in their own sessions: note their PIDs before the hub stops.
        try:
            pids = hub.server_pids()
        except Exception:
            pids = []
        proxy_pid_file = state_dir / "state" / "hub" / "proxy.pid"
        if proxy_pid_file.exists():
            pids.append(int(proxy_pid_file.read_text().strip() or 0))
        _stop([process.pid], grace=20)  # SIGTERM: the hub stops its servers and the proxy itself
        process.wait(timeout=5)
        leftover = [p for p in pids if p and _alive(p)]
        _stop(leftover)
        # whatever else the test users still run (a kernel the hub did not know of), by PID
        for name, _ in users.values():
            uid = pwd.getpwnam(name).pw_uid
            mine = [int(p) for p in os.listdir("/proc") if p.isdigit() and _owner(int(p)) == uid]
            _stop(mine, grace=5)


def _owner(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


# --------------------------------------------------------------------------- the term

PROBE = r'''
# not part of the exercise: what this code can see when the instructor autogrades it
import json, os
seen = {"token": sorted(k for k in os.environ if "TOKEN" in k or k.startswith("JUPYTERHUB")),
        "home": os.environ.get("HOME"), "uid": os.getuid()}
for label, path in PATHS.items():
    try:
        seen[label] = sorted(os.listdir(path))[:3] if os.path.isdir(path) else open(path, "rb").read(20).decode("latin-1")
    except OSError as err:
        seen[label] = None
print("PROBE" + json.dumps(seen))
'''


def _solution_with_probe(paths: dict[str, str]) -> dict:
    """The instructor's solution notebook, as a student would hand it in, plus a probe cell at the end."""
    nb = json.loads((REPO / "solutions" / EXERCISE / f"{EXERCISE}.ipynb").read_text())
    probe = PROBE.replace("PATHS", repr(paths))
    nb["cells"].append({"cell_type": "code", "id": "probe", "metadata": {}, "execution_count": None,
                        "outputs": [], "source": probe})
    return nb


def _ok(reply, what: str) -> dict | list:
    assert reply.status_code == 200, f"{what}: HTTP {reply.status_code}: {reply.text[:500]}"
    body = reply.json()
    if isinstance(body, dict) and body.get("success") is False:
        raise AssertionError(f"{what} failed: {(body.get('error') or body.get('log') or body)!s:.3000}")
    return body


@pytest.mark.slow
@needs_root
def test_a_term_on_the_hub(hub, users):
    """Release, fetch, submit, collect, autograde, feedback and export, on the hub, through its REST APIs."""
    t0 = time.monotonic()
    instructor, alice, bob = users["instructor"][0], users["alice"][0], users["bob"][0]
    instructor_home = Path(pwd.getpwnam(instructor).pw_dir)
    # a decoy python3 kernel in bob's home: the course kernel must win over it
    decoy = Path(pwd.getpwnam(bob).pw_dir) / ".local" / "share" / "jupyter" / "kernels" / "python3"
    decoy.mkdir(parents=True)
    (decoy / "kernel.json").write_text(json.dumps({"argv": ["/usr/bin/python3", "-m", "ipykernel_launcher", "-f",
                                                            "{connection_file}"],
                                                   "display_name": "decoy", "language": "python"}))
    subprocess.run(["chown", "-R", f"{bob}:{bob}", str(decoy.parents[3])], check=True)
    spawn_s = hub.start_servers([instructor, alice, bob])
    timings = {"hub start (s)": round(hub.start_seconds, 1), "three user servers (s)": round(spawn_s, 1)}

    # the course kernel, the tier and the shared data, as a student's server sees them
    spec = _ok(hub.server(bob, "GET", "api/kernelspecs"), "kernelspecs")["kernelspecs"]["python3"]["spec"]
    assert spec["display_name"] == "Python 3 (mlpp)" and spec["argv"][0].startswith(str(REPO / ".venv")), spec
    data = hub.state / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o755 and data.stat().st_uid == 0
    for path in data.glob("*-fast.h5"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644 and path.stat().st_uid == 0, path
    # students have no formgrader
    assert hub.server(alice, "GET", "formgrader").status_code == 404

    # the instructor releases the exercise (generate from source/, then release to the exchange)
    fg = "formgrader/api"
    _ok(hub.server(instructor, "POST", f"{fg}/assignment/{EXERCISE}/assign"), "generate")
    _ok(hub.server(instructor, "POST", f"{fg}/assignment/{EXERCISE}/release"), "release")
    listed = _ok(hub.server(alice, "GET", "assignments", params={"course_id": COURSE_ID}), "assignment list")
    assert [a["assignment_id"] for a in listed["value"] if a["status"] == "released"] == [EXERCISE], listed
    browser_started = time.monotonic()
    with _chromium() as browser:
        _student_opens_a_lecture(browser, hub, users["bob"], _course_repository(hub, bob))
    timings["browser, student (s)"] = round(time.monotonic() - browser_started, 1)

    # alice fetches it through the API (bob did in the browser)
    _ok(hub.server(alice, "POST", "assignments/fetch", data={"course_id": COURSE_ID, "assignment_id": EXERCISE}),
        "alice fetches")
    notebook = f"{EXERCISE}/{EXERCISE}.ipynb"
    fetched = _ok(hub.server(bob, "GET", f"api/contents/{notebook}"), "bob's fetched notebook")
    assert fetched["content"]["cells"], "the fetched notebook is empty"

    # alice hands in the solution (plus a probe of what her code sees when graded); bob the untouched release
    probe_paths = {"instructor_home": str(instructor_home),
                   "course_source": str(instructor_home / "mlpp-course" / "source" / EXERCISE / f"{EXERCISE}.ipynb"),
                   "repo_solutions": str(REPO / "solutions"),
                   "gradebook": str(instructor_home / "mlpp-course" / "gradebook.db")}
    reply = hub.server(alice, "PUT", f"api/contents/{notebook}",
                       json={"type": "notebook", "format": "json", "content": _solution_with_probe(probe_paths)})
    assert reply.status_code in (200, 201), f"saving alice's notebook: {reply.status_code} {reply.text[:300]}"
    for student in (alice, bob):
        _ok(hub.server(student, "POST", "assignments/submit", data={"course_id": COURSE_ID, "assignment_id": EXERCISE}),
            f"{student} submits")

    # a student can read the shared data but not change it, and cannot list the others' submissions
    sees = _as_user(alice, hub, ["python", "-c", "from mlpp import data; print(len(data.load('jets5').labels))"],
                    cwd=Path(pwd.getpwnam(alice).pw_dir))
    assert sees.returncode == 0, sees.stderr[-2000:]
    assert _as_user(alice, hub, ["touch", str(data / "mine")], cwd=Path("/")).returncode != 0
    # each user's MLPP_DATA is a view of the shared files with a writable scores/ (the landscape's)
    view = Path(pwd.getpwnam(alice).pw_dir) / ".cache" / "mlpp-data"
    assert (view / "jets5-fast.h5").resolve() == data / "jets5-fast.h5"
    assert _as_user(alice, hub, ["touch", str(view / "scores" / "mine")], cwd=Path("/")).returncode == 0
    inbound = hub.state / "exchange" / COURSE_ID / "inbound"
    assert _as_user(alice, hub, ["ls", str(inbound)], cwd=Path("/")).returncode != 0, "students can list the inbound"

    # the instructor collects and autogrades both
    _ok(hub.server(instructor, "POST", f"{fg}/assignment/{EXERCISE}/collect"), "collect")
    grading_started = time.monotonic()
    for student in (alice, bob):
        _ok(hub.server(instructor, "POST", f"{fg}/submission/{EXERCISE}/{student}/autograde"), f"autograde {student}")
    timings["autograde, two submissions (s)"] = round(time.monotonic() - grading_started, 1)
    scores = {s["student"]: (s["score"], s["max_score"])
              for s in _ok(hub.server(instructor, "GET", f"{fg}/submissions/{EXERCISE}"), "submissions")}
    assert scores[alice][0] == scores[alice][1] > 0, scores
    assert scores[bob][0] == 0, scores

    # student code under the formgrader's autograde sees no token, home or course files of the instructor
    graded = instructor_home / "mlpp-course" / "autograded" / alice / EXERCISE / f"{EXERCISE}.ipynb"
    probe_cell = next(c for c in json.loads(graded.read_text())["cells"] if c.get("id") == "probe")
    printed = "".join("".join(o.get("text", "")) for o in probe_cell["outputs"] if o.get("name") == "stdout")
    assert "PROBE" in printed, f"the probe cell did not run: {probe_cell['outputs']}"
    seen = json.loads(printed.split("PROBE", 1)[1])
    print("what the graded code saw:", seen)
    assert seen["token"] == [], f"the graded code sees {seen['token']}"
    assert seen["home"] != str(instructor_home), seen
    assert all(seen[label] is None for label in probe_paths), f"the graded code reads the instructor's files: {seen}"
    # the same probe, run as the instructor outside the sandbox, does see them: the paths are right
    outside = _as_user(instructor, hub, ["python", "-c", PROBE.replace("PATHS", repr(probe_paths))],
                       cwd=instructor_home)
    unguarded = json.loads(outside.stdout.split("PROBE", 1)[1])
    assert all(unguarded[label] is not None for label in probe_paths), unguarded

    # feedback: generated, released, fetched by alice
    _ok(hub.server(instructor, "POST", f"{fg}/assignment/{EXERCISE}/generate_feedback"), "generate feedback")
    _ok(hub.server(instructor, "POST", f"{fg}/assignment/{EXERCISE}/release_feedback"), "release feedback")
    _ok(hub.server(alice, "POST", "assignments/fetch_feedback", data={"course_id": COURSE_ID, "assignment_id": EXERCISE}),
        "alice fetches her feedback")
    feedback = list((Path(pwd.getpwnam(alice).pw_dir) / EXERCISE / "feedback").glob(f"*/{EXERCISE}.html"))
    assert len(feedback) == 1, f"alice's feedback: {feedback}"
    total = f"(Score: {float(scores[alice][0])} / {float(scores[alice][1])})"
    assert total in feedback[0].read_text(), f"{total} is not in alice's feedback"

    # the gradebook, exported as the instructor would in a terminal on the hub
    export = _as_user(instructor, hub, ["nbgrader", "export", "--to", "grades.csv"],
                      cwd=instructor_home / "mlpp-course")
    assert export.returncode == 0, export.stderr[-2000:]
    rows = list(csv.DictReader(io.StringIO((instructor_home / "mlpp-course" / "grades.csv").read_text())))
    by_student = {r["student_id"]: r for r in rows if r["assignment"] == EXERCISE}
    assert float(by_student[alice]["score"]) == float(by_student[alice]["max_score"]) > 0, rows
    assert float(by_student[bob]["score"]) == 0, rows
    with _chromium() as browser:
        _instructor_opens_the_formgrader(browser, hub, users["instructor"])
    timings["whole test (s)"] = round(time.monotonic() - t0, 1)
    (_artifacts() / "timings.json").write_text(json.dumps(timings, indent=1))
    print(timings)


def _as_user(name: str, hub: Hub, command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``command`` as ``name`` with the environment the hub gives that user's server."""
    user = pwd.getpwnam(name)
    env = {"HOME": user.pw_dir, "USER": name, "PATH": f"{VENV_BIN}:/usr/bin:/bin", "MLPP_TIER": "fast",
           "JUPYTER_CONFIG_PATH": str(REPO / "hub" / "config" / "instructor"),
           "JUPYTER_PATH": str(VENV_BIN.parent / "share" / "jupyter"), "MLPP_COURSE_ID": COURSE_ID,
           "MLPP_HUB_EXCHANGE": str(hub.state / "exchange"), "MLPP_DATA": str(hub.state / "data"),
           "MLPP_HUB_SHARED_DATA": str(hub.state / "data")}
    return subprocess.run(command, cwd=cwd, env=env, user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                          capture_output=True, text=True, timeout=120)


# --------------------------------------------------------------------------- in the browser

@contextmanager
def _chromium():
    """Debian's headless Chromium through playwright (no browser download; --no-sandbox as root)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


def _log_in(browser, hub: Hub, user: tuple[str, str]):
    """A new browser context logged in to the hub as ``user`` (name, password) through the login form."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", user[0])
    page.fill("#password_input", user[1])
    page.click("#login_submit")
    page.wait_for_url(f"{hub.url}/user/**", timeout=90_000)
    return page


def _course_repository(hub: Hub, owner: str) -> Path:
    """A bare copy of this repository's last commit, standing in for the course's public git host.

    Owned by the student who clones it (git refuses to read a local repository of another user).
    """
    bare = hub.state / "course.git"
    subprocess.run(["git", "clone", "--quiet", "--bare", "--no-hardlinks", str(REPO), str(bare)], check=True)
    subprocess.run(["chown", "-R", f"{owner}:{owner}", str(bare)], check=True)
    return bare


def _screenshot(page, name: str) -> None:
    page.screenshot(path=str(_artifacts() / name), full_page=False)


def _student_opens_a_lecture(browser, hub: Hub, student: tuple[str, str], repository: Path) -> None:
    """Log in, follow the book's JupyterHub launch link (nbgitpuller) to Lecture 0, run its first cells
    in the course kernel, find the released exercise in nbgrader's Assignment List and fetch it."""
    page = _log_in(browser, hub, student)
    branch = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--abbrev-ref", "HEAD"],
                            capture_output=True, text=True, check=True).stdout.strip()
    launch = urlencode({"repo": f"file://{repository}", "branch": branch, "targetpath": "mlpp",
                        "urlpath": f"lab/tree/mlpp/{LECTURE}"})
    try:
        page.goto(f"{hub.url}/hub/user-redirect/git-pull?{launch}")
        page.wait_for_url(f"**/lab/tree/mlpp/{LECTURE}", timeout=90_000)
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()
        kernel = page.locator(".jp-NotebookPanel-toolbar .jp-Toolbar-kernelName").first
        kernel.wait_for()
        page.wait_for_function("() => document.querySelector('.jp-NotebookPanel-toolbar .jp-Toolbar-kernelName')"
                               ".textContent.includes('(mlpp)')", timeout=60_000)
        # run the cells up to the one that loads the course dataset (markdown cells just render)
        cells = json.loads(subprocess.run(["git", "-C", str(REPO), "show", f"HEAD:{LECTURE}"], capture_output=True,
                                          text=True, check=True).stdout)["cells"]
        upto = next(i for i, c in enumerate(cells) if c["cell_type"] == "code" and "data.load(" in "".join(c["source"]))
        page.locator(".jp-NotebookPanel .jp-Cell").first.click()
        page.keyboard.press("Escape")
        for i in range(upto + 1):  # one at a time: keys pressed while Lab is busy can be lost
            page.keyboard.press("Shift+Enter")
            page.get_by_text(f"Cell {i + 2}/{len(cells)}", exact=True).wait_for(timeout=30_000)
        page.get_by_text("tier: fast").first.wait_for(timeout=180_000)
        page.wait_for_function("() => [...document.querySelectorAll('.jp-NotebookPanel .jp-InputPrompt')]"
                               ".filter(e => e.textContent.includes('*')).length === 0", timeout=180_000)
        outputs = "\n".join(page.locator(".jp-NotebookPanel .jp-OutputArea").all_inner_texts())
        assert "Traceback" not in outputs and "Error" not in outputs, outputs[-3000:]
        ran = page.locator(".jp-NotebookPanel .jp-InputPrompt").all_inner_texts()
        code_cells = sum(c["cell_type"] == "code" for c in cells[:upto + 1])
        assert sum(any(ch.isdigit() for ch in p) for p in ran) >= code_cells, ran
        _screenshot(page, "student-lecture.png")
        # the exercise the instructor released, in the Assignment List
        page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").click()
        page.locator(".lm-Menu-itemLabel", has_text="Assignment List").click()
        released = page.locator("#released_assignments_list")
        released.get_by_text(EXERCISE).wait_for(timeout=60_000)
        _screenshot(page, "student-assignment-list.png")
        # and fetches it there
        released.get_by_role("button", name="Fetch").click()
        page.locator("#fetched_assignments_list").get_by_text(EXERCISE).first.wait_for(timeout=60_000)
        _screenshot(page, "student-fetched.png")
    except Exception:
        _screenshot(page, "student-failure.png")
        raise
    # the session's kernel is the course's: its python3 spec from the venv, not the decoy in the home
    sessions = hub.server(student[0], "GET", "api/sessions").json()
    assert [s["kernel"]["name"] for s in sessions] == ["python3"], sessions
    page.context.close()


def _instructor_opens_the_formgrader(browser, hub: Hub, instructor: tuple[str, str]) -> None:
    page = _log_in(browser, hub, instructor)
    try:
        page.goto(f"{hub.url}/user/{instructor[0]}/formgrader")
        page.get_by_text(EXERCISE).first.wait_for()
        _screenshot(page, "instructor-formgrader.png")
    except Exception:
        _screenshot(page, "instructor-failure.png")
        raise
    page.context.close()


# --------------------------------------------------------------------------- start.py's refusals

def _start(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "python"), str(REPO / "hub" / "start.py"), *args],
                          capture_output=True, text=True, timeout=60)


def test_start_refuses_one_user_in_two_roles():
    done = _start("--instructor", "ada", "--students", "ada,bob")
    assert done.returncode == 2 and "both the instructor and a student" in done.stderr, done.stderr


@needs_root
def test_start_refuses_missing_users_in_one_line():
    ghost = f"mlppghost{secrets.token_hex(3)}"
    done = _start("--instructor", ghost, "--students", f"{ghost}s", "--state", "/nonexistent/never-made")
    assert done.returncode == 1, done
    message = done.stderr.strip()
    assert "\n" not in message and (f"no unix user {ghost}, {ghost}s" in message or "configurable-http-proxy" in message)
    assert not Path("/nonexistent/never-made").exists()


def test_unreachable_folder_names_the_closed_parent():
    sys.path.insert(0, str(REPO / "hub"))
    try:
        from start import unreachable_folder
    finally:
        sys.path.remove(str(REPO / "hub"))
    base = Path(tempfile.mkdtemp(prefix="mlpp-reach-", dir="/tmp"))  # /tmp itself is open to all
    try:
        os.chmod(base, 0o755)
        closed = base / "closed"
        (closed / "inner").mkdir(parents=True)
        os.chmod(closed, 0o700)
        assert unreachable_folder(closed / "inner" / "python") == closed
        os.chmod(closed, 0o701)  # pass-through without listing is enough
        assert unreachable_folder(closed / "inner" / "python") is None
    finally:
        shutil.rmtree(base)
