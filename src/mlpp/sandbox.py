"""The grading sandbox: student code runs in a bubblewrap (``bwrap``) jail with limits.

Only the kernel that executes a submission is inside; nbgrader, the grader and the
gradebook stay outside and talk to it over ZMQ ``ipc`` sockets in one bound folder.
Inside the kernel sees:

- the system (``/usr``, a few files of ``/etc``), the Python interpreter, the course's
  virtual environment and the course library (``src/``), all read-only;
- the generated data (``datasets/cache`` or ``data_dir``) and the dataset cards, read-only;
- a private ``/tmp`` (also ``$HOME``) and a working folder ``/submission`` filled with the
  submission folder's files but not its notebooks (nbgrader's copy there holds the hidden
  tests), both in memory and capped at ``file_mb``;
- no network, no other process, a scrubbed environment (no tokens, ``HOME=/tmp``), and, when
  the grader is root, the unprivileged user :data:`SANDBOX_UID` (root ignores the process limit);

and none of ``solutions/``, ``grading/``, the nbgrader course, the instructor's home or the
rest of the checkout. Limits (:class:`Limits`) are set with ``prlimit`` on the jail (memory,
CPU time, processes, file size) and by :class:`SandboxedExecute` (wall time per cell and per
notebook, output size). :func:`configure_nbgrader` puts all of it into an nbgrader config, so
``mlpp grade`` and the hub's formgrader grade the same way. The per-cell time limit is
:data:`CELL_TIMEOUT`, defined here only.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence

EXECUTE_STEP = "mlpp.sandbox_kernel.SandboxedExecute"  # autograde's Execute step, by import name
REPORT_STEP = "mlpp.sandbox_kernel.GradingReport"  # autograde's last step: writes the grading report
WORKDIR = "/submission"  # the kernel's working folder inside the jail
SANDBOX_UID = 65534  # "nobody": the jail's user when the grader runs as root
CELL_TIMEOUT = 180  # seconds one cell may run: the one limit `mlpp grade` and nbgrader's config share
INSTALL_HINT = "install it with 'sudo apt-get install bubblewrap' (or 'make system')"
# Environment variables a kernel may inherit (everything else, tokens included, is dropped).
PASSED_ENV = ("MLPP_TIER", "MLPP_SEED", "MLPP_TRAIN_JETS", "NBGRADER_EXECUTION", "LANG", "LC_ALL", "TZ",
              "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "TF_CPP_MIN_LOG_LEVEL",
              "CUDA_VISIBLE_DEVICES", "KERAS_BACKEND", "PYTHONHASHSEED")
# Files of /etc that programs need (dynamic linker, users, locale, certificates, fonts); not /etc itself.
ETC_FILES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "passwd", "group", "nsswitch.conf",
             "localtime", "timezone", "hosts", "host.conf", "mime.types", "ssl", "ca-certificates", "fonts",
             "matplotlibrc", "os-release", "debian_version", "locale.alias")
SIGNALS = {signal.SIGXCPU: "the CPU-time limit", signal.SIGXFSZ: "the file-size limit",
           signal.SIGKILL: "killed by SIGKILL", signal.SIGSEGV: "a crash (segmentation fault)",
           signal.SIGABRT: "a crash (abort)", signal.SIGBUS: "a crash (bus error)"}


class SandboxError(RuntimeError):
    """The sandbox cannot start; the message is one line that says what to do."""


@dataclass(frozen=True)
class Limits:
    """What one submission may use. Wall times in seconds, sizes in MiB."""

    memory_mb: int = 4096      # address space of the kernel (RLIMIT_AS)
    cpu_s: int = 900           # CPU seconds of the kernel, all threads (RLIMIT_CPU)
    processes: int = 512       # processes and threads of the jail's user (RLIMIT_NPROC)
    file_mb: int = 512         # largest file the kernel may write (RLIMIT_FSIZE)
    output_mb: int = 8         # output kept per cell; the rest is dropped
    cell_timeout_s: int = CELL_TIMEOUT
    notebook_timeout_s: int = 600

    def updated(self, **changes: int | None) -> "Limits":
        """A copy with the given limits changed (``None`` keeps a value)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def names(cls) -> list[str]:
        """The field names, for CLI flags and config keys."""
        return [f.name for f in fields(cls)]


DEFAULT_LIMITS = Limits()


# --- is bwrap there and can it start? ----------------------------------------------------

@lru_cache(maxsize=None)
def sandbox_problem() -> str | None:
    """``None`` if a bwrap jail starts here, else one line saying why not and what to do."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return f"the grading sandbox needs bubblewrap (bwrap), which is not installed: {INSTALL_HINT}"
    try:
        namespaces, as_user = _jail_user()
        proc = subprocess.run([bwrap, *namespaces, "--die-with-parent", *_system_mounts(),
                               "--", *as_user, "/bin/true"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"the grading sandbox (bwrap) cannot start ({err}): {INSTALL_HINT}"
    if proc.returncode != 0:
        detail = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return (f"the grading sandbox (bwrap) cannot start ({detail}): {INSTALL_HINT}, "
                "and allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)")
    return None


def require_sandbox() -> None:
    """Raise :class:`SandboxError` (one line) unless the sandbox can start."""
    problem = sandbox_problem()
    if problem:
        raise SandboxError(problem)


# --- the jail ---------------------------------------------------------------------------

def _jail_user() -> tuple[list[str], list[str]]:
    """bwrap's namespace options and the command that drops to the jail's user.

    As a normal user: all namespaces, user id 1000 inside (the caller's outside). As root, a
    user namespace would keep the kernel root outside, and Linux never applies the process
    limit to root: bwrap mounts as root, and ``setpriv`` turns the kernel into
    :data:`SANDBOX_UID` before it starts (the only capabilities kept are those two ids').
    """
    if os.geteuid() != 0:
        return ["--unshare-all", "--uid", "1000", "--gid", "1000"], []
    namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                  "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return namespaces, ["/usr/bin/setpriv", f"--reuid={SANDBOX_UID}", f"--regid={SANDBOX_UID}", "--clear-groups"]


def _system_mounts() -> list[str]:
    """Read-only system folders and the few /etc files programs need."""
    args: list[str] = []
    for name in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ETC_FILES:
        path = Path("/etc") / name
        if path.exists():
            args += ["--ro-bind", str(path), str(path)]
    return args


def python_paths() -> list[Path]:
    """The interpreter, the virtual environment and the course library: what a kernel imports."""
    import mlpp

    paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
             Path(mlpp.__file__).resolve().parents[1]}
    return sorted(p for p in paths if not str(p).startswith("/usr"))


def data_paths(data_dir: Path | str | None = None) -> tuple[Path, list[Path]]:
    """The generated-data folder and the dataset cards (``datasets/*.yml``), both shown read-only."""
    from mlpp import settings

    data = Path(data_dir).resolve() if data_dir else Path(os.environ.get(
        "MLPP_DATA", settings.repo_root() / "datasets" / "cache")).resolve()
    cards = sorted(settings.cards_dir().resolve().glob("*.yml"))
    return data, cards


def kernel_env(data: Path, cards: Path | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a sandboxed kernel: a few settings passed through, nothing secret."""
    from mlpp import settings

    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env.update({
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": "/tmp", "TMPDIR": "/tmp", "USER": "student", "LOGNAME": "student",
        "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/.matplotlib", "PYTHONDONTWRITEBYTECODE": "1",
        # The checkout's path (not its files): repo_root() and the data settings resolve as outside.
        "MLPP_ROOT": str(settings.repo_root()), "MLPP_DATA": str(data), "MLPP_SANDBOX": "1",
    })
    if cards is not None:
        env["MLPP_CARDS"] = str(cards)
    env.update(extra or {})
    return env


def bwrap_command(argv: Sequence[str], *, shared: Path, workdir: Path, limits: Limits = DEFAULT_LIMITS,
                  data_dir: Path | str | None = None, env: dict[str, str] | None = None) -> list[str]:
    """``prlimit ... bwrap ... -- argv``: run ``argv`` in the jail with ``limits``.

    ``shared`` (connection file and ipc sockets) is the only writable folder from outside;
    ``workdir`` (the staged working folder) is copied into :data:`WORKDIR`, the kernel's
    working folder, a tmpfs of ``file_mb`` like ``/tmp``.
    """
    data, cards = data_paths(data_dir)
    cards_dir = cards[0].parent if cards else None
    mib = 1 << 20
    namespaces, as_user = _jail_user()
    cmd = [shutil.which("prlimit") or "prlimit", f"--as={limits.memory_mb * mib}", f"--cpu={limits.cpu_s}",
           f"--nproc={limits.processes}", f"--fsize={limits.file_mb * mib}", "--core=0", "--",
           shutil.which("bwrap") or "bwrap", *namespaces, "--die-with-parent", "--hostname", "sandbox",
           *_system_mounts(), "--proc", "/proc", "--dev", "/dev", "--perms", "1777",
           "--size", str(limits.file_mb * mib), "--tmpfs", "/tmp"]  # private /tmp, in memory: capped
    bound = [*python_paths(), *([data] if data.is_dir() else []), *cards, shared, workdir]
    # bwrap makes missing parent folders 0700 as root: make them 0755 so the jail's user passes.
    parents = sorted({q for path in bound for q in path.parents if q not in (Path("/"), Path("/tmp"))
                      and not q.is_relative_to("/usr") and not any(q.is_relative_to(b) for b in bound)})
    for parent in parents:
        cmd += ["--perms", "0755", "--dir", str(parent)]
    for path in python_paths():
        cmd += ["--ro-bind", str(path), str(path)]
    if data.is_dir():
        cmd += ["--ro-bind", str(data), str(data)]
    for card in cards:
        cmd += ["--ro-bind", str(card), str(card)]
    # The working folder is a capped tmpfs filled from the staged copy (read-only) as the jail's
    # user: what the code writes stays in memory it may use, not on the grader's disk.
    cmd += ["--bind", str(shared), str(shared), "--ro-bind", str(workdir), str(workdir),
            "--perms", "0777", "--size", str(limits.file_mb * mib), "--tmpfs", WORKDIR,
            "--chdir", WORKDIR, "--clearenv"]
    for key, value in kernel_env(data, cards_dir, env).items():
        cmd += ["--setenv", key, value]
    fill = ["/bin/sh", "-c", f'cp -R "$0"/. {WORKDIR}/ && cd {WORKDIR} && exec "$@"', str(workdir)]
    return cmd + ["--", *as_user, *fill, *argv]


def copy_workdir(source: Path | None, dest: Path, max_bytes: int = 1 << 30) -> None:
    """The kernel's working folder: the submission's files without notebooks (nbgrader's copy
    there holds the hidden tests). Raises :class:`SandboxError` past ``max_bytes`` in all."""
    dest.mkdir(parents=True, exist_ok=True)
    if source is None or not source.is_dir():
        return
    source, dest = source.resolve(), dest.resolve()
    if source in dest.parents or source == dest:
        raise SandboxError(f"the kernel's folder {dest} lies inside the working folder {source}")
    total = 0
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_symlink() or path.suffix == ".ipynb" or ".ipynb_checkpoints" in rel.parts:
            continue
        if path.is_dir():
            (dest / rel).mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            total += path.stat().st_size
            if total > max_bytes:
                raise SandboxError(f"{source} holds more than {max_bytes >> 20} MiB: too much to grade in")
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest / rel)


def __getattr__(name: str) -> Any:
    # The nbgrader side (mlpp.sandbox_kernel) costs seconds to import: load it only when asked.
    if name in ("SandboxKernelManager", "SandboxedExecute", "GradingReport"):
        from mlpp import sandbox_kernel

        return getattr(sandbox_kernel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- nbgrader configuration -------------------------------------------------------------

def _preprocessor_list(c: Any) -> list[Any]:
    from nbgrader.converters import Autograde

    if "Autograde" in c and "autograde_preprocessors" in c.Autograde:
        return list(c.Autograde.autograde_preprocessors)
    return list(Autograde.class_traits()["autograde_preprocessors"].default())


def _is_execute(item: Any) -> bool:
    name = item if isinstance(item, str) else f"{item.__module__}.{item.__qualname__}"
    return name.rsplit(".", 1)[-1] in ("Execute", "SandboxedExecute")


def configure_nbgrader(c: Any, *, data_dir: Path | str | None = None, limits: Limits | None = None) -> Any:
    """Make nbgrader's autograde run every kernel in the sandbox with ``limits``.

    ``c`` is an nbgrader (traitlets) config, e.g. ``get_config()`` in ``nbgrader_config.py``.
    Sets ``Execute.timeout`` (the per-cell limit), replaces ``Execute`` in
    ``Autograde.autograde_preprocessors`` by :class:`SandboxedExecute` (other preprocessors and
    their order are kept, so tamper checks can sit around it: see :func:`add_preprocessors`) and
    sets the jail's limits and data folder (``data_dir``: default ``$MLPP_DATA`` or
    ``datasets/cache``). Calling it again updates the settings. Returns ``c``.
    """
    limits = limits or DEFAULT_LIMITS
    c.Execute.timeout = limits.cell_timeout_s
    c.Execute.interrupt_on_timeout = True
    for name in ("memory_mb", "cpu_s", "processes", "file_mb", "output_mb", "notebook_timeout_s"):
        setattr(c.SandboxedExecute, name, getattr(limits, name))
    if data_dir is not None:
        c.SandboxedExecute.data_dir = str(Path(data_dir).resolve())
    steps = [EXECUTE_STEP if _is_execute(p) else p for p in _preprocessor_list(c)]
    if EXECUTE_STEP not in steps:
        steps.insert(0, EXECUTE_STEP)
    steps = [p for p in steps if p != REPORT_STEP] + [REPORT_STEP]
    c.Autograde.autograde_preprocessors = steps
    return c


def add_preprocessors(c: Any, *, before: Iterable[Any] = (), after: Iterable[Any] = ()) -> Any:
    """Put preprocessors just before and just after the sandboxed Execute step of autograde.

    For checks around the student's run (e.g. fresh references before, integrity after).
    Call after :func:`configure_nbgrader`; adding the same one twice keeps one. Returns ``c``.
    """
    steps = [p for p in _preprocessor_list(c) if p not in list(before) + list(after)]
    at = next((i for i, p in enumerate(steps) if _is_execute(p)), None)
    if at is None:
        raise ValueError("no Execute step in Autograde.autograde_preprocessors: call configure_nbgrader(c) first")
    c.Autograde.autograde_preprocessors = steps[:at] + list(before) + [steps[at]] + list(after) + steps[at + 1:]
    return c
