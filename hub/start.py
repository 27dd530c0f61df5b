"""Start the course's JupyterHub on this machine: `.venv/bin/python hub/start.py` (or `make hub`).

It prepares what the hub shares between users, checks the instructor's nbgrader configuration,
then replaces itself with `jupyterhub` (same process id, so stopping this process with SIGTERM or
Ctrl-C stops the hub, which stops the proxy and every user's server).

Prepared under the state folder (default hub/state, ignored by git):
  hub/       the hub's database and cookie secret (root only)
  exchange/  nbgrader's exchange (everyone may write; nbgrader sets the modes inside)
  data/      the fast-tier datasets, copied from the course's cache: readable by all, writable by none
and `~<instructor>/mlpp-course/source/`, a copy of the repository's solutions/ (only when missing).

The hub switches to each user's unix account, so it runs as root. Users must exist as unix users
with passwords; `--create-users` creates the missing ones and prints their new passwords once.
"""
from __future__ import annotations

import argparse
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import sys
from pathlib import Path

HUB_DIR = Path(__file__).resolve().parent
REPO = HUB_DIR.parent
VENV = Path(sys.prefix)
PROXY = HUB_DIR / "node_modules" / ".bin" / "configurable-http-proxy"
COURSE_FOLDER = "mlpp-course"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="hub/start.py", description=__doc__.split("\n\n")[0],
        epilog="Example: sudo .venv/bin/python hub/start.py --instructor teacher --students ada,bob --create-users")
    parser.add_argument("--instructor", default="instructor", help="unix user of the instructor (default: instructor)")
    parser.add_argument("--students", default="student1,student2",
                        help="comma-separated unix users of the students (default: student1,student2)")
    parser.add_argument("--ip", default="127.0.0.1", help="address to serve on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port to serve on (default: 8000)")
    parser.add_argument("--state", type=Path, default=HUB_DIR / "state",
                        help="folder for the hub's database, the exchange and the shared data (default: hub/state)")
    parser.add_argument("--course-id", default="mlpp", help="nbgrader course id (default: mlpp)")
    parser.add_argument("--create-users", action="store_true",
                        help="create missing unix users (with a home and a random password, printed once)")
    args = parser.parse_args(argv)
    args.students = [s.strip() for s in args.students.split(",") if s.strip()]
    if not args.students:
        parser.error("--students needs at least one user name")
    if args.instructor in args.students:
        parser.error(f"{args.instructor} is both the instructor and a student: give each role its own user")
    return args


def check_ready() -> None:
    """Refuse, in one line each, what would make the hub fail later and less clearly."""
    if os.geteuid() != 0:
        raise SystemExit("hub/start.py must run as root: the hub starts each user's server under that user's "
                         "account (sudo make hub)")
    if not PROXY.exists():
        raise SystemExit(f"configurable-http-proxy is missing ({PROXY}): run 'make hub', or "
                         "'npm install --prefix hub --no-save configurable-http-proxy@5.3.0'")
    if not (VENV / "bin" / "jupyterhub-singleuser").exists():
        raise SystemExit(f"{VENV} has no jupyterhub: run this script with the course's .venv/bin/python")


def ensure_users(names: list[str], create: bool) -> None:
    """Every name is a unix user with a home; create missing ones when asked."""
    missing = []
    for name in names:
        try:
            pwd.getpwnam(name)
        except KeyError:
            missing.append(name)
    if missing and not create:
        raise SystemExit(f"no unix user {', '.join(missing)}: create them (useradd -m NAME; passwd NAME) "
                         "or pass --create-users")
    for name in missing:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
        password = secrets.token_urlsafe(9)
        subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True)
        print(f"created unix user {name} with password {password}", flush=True)


def _copy_if_changed(source: Path, target: Path) -> None:
    if target.exists() and target.stat().st_size == source.stat().st_size \
            and target.stat().st_mtime == source.stat().st_mtime:
        return
    shutil.copy2(source, target)


def prepare_data(target: Path) -> None:
    """The fast-tier data in a folder every user can read and none can write (owned by root).

    Files already generated in the course's cache are copied (the generator writes them readable by
    their owner only); anything still missing is generated into the folder.
    """
    target.mkdir(parents=True, exist_ok=True)
    source = Path(os.environ.get("MLPP_DATA", REPO / "datasets" / "cache"))
    if source.resolve() != target.resolve():
        for folder in (source, source / "hls"):
            if not folder.is_dir():
                continue
            dest = target / folder.relative_to(source)
            dest.mkdir(exist_ok=True)
            for path in folder.iterdir():
                if path.is_file() and ("-fast" in path.name or path.name == "manifest.json"):
                    _copy_if_changed(path, dest / path.name)
    env = {**os.environ, "MLPP_DATA": str(target), "MLPP_TIER": "fast"}
    subprocess.run([str(VENV / "bin" / "mlpp"), "data", "generate", "--needed", "--tier", "fast", "--quiet"],
                   env=env, check=True)
    for root, dirs, files in os.walk(target):
        os.chmod(root, 0o755)
        for name in files:
            os.chmod(os.path.join(root, name), 0o644)


def prepare_course(instructor: str) -> Path:
    """The instructor's course folder in their home, with the exercise sources (kept if present)."""
    user = pwd.getpwnam(instructor)
    course = Path(user.pw_dir) / COURSE_FOLDER
    source = course / "source"
    if not source.exists():
        shutil.copytree(REPO / "solutions", source,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", "*.pyc"))
        for root, dirs, files in os.walk(course):
            for name in [root, *(os.path.join(root, f) for f in files)]:
                os.chown(name, user.pw_uid, user.pw_gid)
    return course


def hub_environment(args: argparse.Namespace) -> dict[str, str]:
    """The settings hub/jupyterhub_config.py reads."""
    return {
        **os.environ,
        "MLPP_HUB_STATE": str(args.state.resolve()),
        "MLPP_HUB_INSTRUCTOR": args.instructor,
        "MLPP_HUB_STUDENTS": ",".join(args.students),
        "MLPP_COURSE_ID": args.course_id,
        "MLPP_HUB_IP": args.ip,
        "MLPP_HUB_PORT": str(args.port),
        "MLPP_HUB_INTERNAL_PORT": str(free_port()),
        "MLPP_HUB_PROXY_API_PORT": str(free_port()),
        "MLPP_HUB_VENV": str(VENV),
    }


def unreachable_folder(path: Path) -> Path | None:
    """The first folder above ``path`` that users other than its owner may not pass through."""
    for folder in reversed(path.parents):
        if not folder.stat().st_mode & 0o001:
            return folder
    return None


def check_instructor_config(instructor: str, env: dict[str, str]) -> None:
    """Load the instructor's nbgrader configuration as the instructor would; refuse on any error."""
    user = pwd.getpwnam(instructor)
    code = ("import sys; from traitlets.config.loader import PyFileConfigLoader as L; "
            "L('nbgrader_config.py', path=sys.argv[1]).load_config()")
    child_env = {**env, "HOME": user.pw_dir, "USER": instructor,
                 "MLPP_HUB_EXCHANGE": str(Path(env["MLPP_HUB_STATE"]) / "exchange"),
                 "MLPP_HUB_SHARED_DATA": str(Path(env["MLPP_HUB_STATE"]) / "data")}
    try:
        done = subprocess.run([str(VENV / "bin" / "python"), "-c", code, str(HUB_DIR / "config" / "instructor")],
                              env=child_env, user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                              capture_output=True, text=True, cwd=user.pw_dir)
    except PermissionError:
        blocked = unreachable_folder(Path(os.path.realpath(VENV / "bin" / "python")))
        raise SystemExit(f"the course's Python ({os.path.realpath(VENV / 'bin' / 'python')}) cannot be run by other "
                         f"users: {blocked} is closed to them; let them pass through it (chmod o+x {blocked}) or "
                         "build .venv from a Python outside root's home (make venv PYTHON=/usr/bin/python3.11)") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise SystemExit(f"hub/config/instructor/nbgrader_config.py fails to load: {last}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    check_ready()
    ensure_users([args.instructor, *args.students], args.create_users)
    state = args.state.resolve()
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o755)
    (state / "hub").mkdir(exist_ok=True)
    os.chmod(state / "hub", 0o700)
    exchange = state / "exchange"
    exchange.mkdir(exist_ok=True)
    os.chmod(exchange, 0o1777)  # like /tmp: everyone may create, nobody may remove others' files
    prepare_data(state / "data")
    prepare_course(args.instructor)
    env = hub_environment(args)
    check_instructor_config(args.instructor, env)
    print(f"mlpp hub: http://{args.ip}:{args.port}/ (instructor {args.instructor}, "
          f"students {', '.join(args.students)}; state in {state})", flush=True)
    os.chdir(state / "hub")
    jupyterhub = str(VENV / "bin" / "jupyterhub")
    os.execve(jupyterhub, [jupyterhub, "-f", str(HUB_DIR / "jupyterhub_config.py")], env)


if __name__ == "__main__":
    main()
