"""JupyterHub configuration of the course hub (JupyterHub 5, one machine, one unix user per person).

Start it with `make hub` or `.venv/bin/python hub/start.py` (see hub/README.md), which prepares the
shared folders and passes the settings below through `MLPP_HUB_*` environment variables. What it sets up:

- login with the users' unix passwords (PAM, JupyterHub's default); only the course's users may log in,
  the instructor is the hub's admin;
- each user's Jupyter server runs under that user's own unix account (`LocalProcessSpawner`), in their
  home, with the course's virtual environment: its `python3` kernel is the course kernel;
- every server gets `MLPP_TIER=fast` and `MLPP_DATA` (the shared, read-only data folder);
- nbgrader: the instructor gets the formgrader on the course in `~/mlpp-course`, students the
  Assignment List (hub/config/instructor and hub/config/student, chosen per user below);
- nbgitpuller is installed in the environment, so the book's JupyterHub launch button works.

For a real course, change the authenticator and the spawner (README: "Going to production").
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path

c = get_config()  # noqa: F821 (provided by traitlets when JupyterHub loads this file)

HUB_DIR = Path(__file__).resolve().parent
REPO = HUB_DIR.parent
VENV = Path(os.environ.get("MLPP_HUB_VENV", REPO / ".venv"))


def _setting(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise SystemExit(f"{name} is not set: start the hub with 'make hub' or '.venv/bin/python hub/start.py'")
    return value


STATE = Path(_setting("MLPP_HUB_STATE"))
INSTRUCTOR = _setting("MLPP_HUB_INSTRUCTOR")
STUDENTS = [name for name in _setting("MLPP_HUB_STUDENTS").split(",") if name]
COURSE_ID = _setting("MLPP_COURSE_ID")

# --- network: everything on the address given (loopback by default); internal ports chosen by start.py
c.JupyterHub.bind_url = f"http://{_setting('MLPP_HUB_IP')}:{_setting('MLPP_HUB_PORT')}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{_setting('MLPP_HUB_INTERNAL_PORT')}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{_setting('MLPP_HUB_PROXY_API_PORT')}"
# configurable-http-proxy from npm, installed into hub/node_modules by `make hub`
c.ConfigurableHTTPProxy.command = [str(HUB_DIR / "node_modules" / ".bin" / "configurable-http-proxy")]
c.ConfigurableHTTPProxy.pid_file = str(STATE / "hub" / "proxy.pid")

# --- the hub's own files (database, cookie secret) live in a folder only root can read
c.JupyterHub.db_url = f"sqlite:///{STATE / 'hub' / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "hub" / "jupyterhub_cookie_secret")

# --- who may log in
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = {INSTRUCTOR, *STUDENTS}
c.Authenticator.admin_users = {INSTRUCTOR}
# No PAM session per login: containers and small servers often lack a session manager, and the
# spawner switches user itself.
c.PAMAuthenticator.open_sessions = False

# An optional service token for scripts that drive the hub (tests, an LMS sync): admin of users
# and servers, and access to every user's server.
_token = os.environ.get("MLPP_HUB_API_TOKEN", "").strip()
if _token:
    c.JupyterHub.services = [{"name": "mlpp-admin", "api_token": _token}]
    c.JupyterHub.load_roles = [{
        "name": "mlpp-admin",
        "scopes": ["admin:users", "admin:servers", "admin:server_state", "access:servers", "list:users"],
        "services": ["mlpp-admin"],
    }]

# --- the users' servers: their own unix account, the course environment
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(VENV / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.http_timeout = 90  # a cold start of Lab on two loaded cores takes 4-8 s; leave room
c.Spawner.start_timeout = 120
c.Spawner.environment = {
    # the venv first: its kernel, nbgrader and git-pull are the course's
    "PATH": f"{VENV / 'bin'}:/usr/local/bin:/usr/bin:/bin",
    # the venv's kernelspec (`python3`, "Python 3 (mlpp)") wins over a python3 kernel a user installed
    # in ~/.local/share/jupyter: JUPYTER_PATH comes first in Jupyter's search path
    "JUPYTER_PATH": str(VENV / "share" / "jupyter"),
    "MLPP_TIER": "fast",
    # the shared, read-only datasets; each user's server turns MLPP_DATA into a view of them with a
    # writable scores/ (config/common/jupyter_server_config.py)
    "MLPP_DATA": str(STATE / "data"),
    "MLPP_HUB_SHARED_DATA": str(STATE / "data"),
    "MLPP_COURSE_ID": COURSE_ID,
    "MLPP_HUB_EXCHANGE": str(STATE / "exchange"),
    "OMP_NUM_THREADS": "2",
}


def _role_config(spawner) -> None:
    """Point the user's Jupyter at the instructor's or the students' nbgrader configuration."""
    role = "instructor" if spawner.user.name == INSTRUCTOR else "student"
    # a new dict: the configured one is shared by every spawner
    config_path = f"{HUB_DIR / 'config' / role}:{HUB_DIR / 'config' / 'common'}"
    spawner.environment = {**spawner.environment, "JUPYTER_CONFIG_PATH": config_path}
    spawner.log.info("mlpp hub: %s starts as %s (%s)", spawner.user.name, role,
                     shlex.join(spawner.cmd))


c.Spawner.pre_spawn_hook = _role_config

# Stop the proxy and every user's server when the hub stops (SIGTERM or Ctrl-C).
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True
