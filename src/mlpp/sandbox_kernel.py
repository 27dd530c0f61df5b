"""The nbgrader side of the grading sandbox (see :mod:`mlpp.sandbox`).

:class:`SandboxKernelManager` starts the kernel inside the bwrap jail and talks to it over
ipc sockets; :class:`SandboxedExecute` is nbgrader's Execute step with that kernel, a
notebook time limit, an output cap, and a dead kernel or a time-out turned into a reason
instead of an aborted notebook. Kept apart from :mod:`mlpp.sandbox` because importing
nbgrader takes seconds.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from nbclient.util import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Bool, Integer, Unicode

from mlpp.sandbox import (
    CELL_TIMEOUT, DEFAULT_LIMITS, PASSED_ENV, SANDBOX_UID, SIGNALS, Limits, bwrap_command, copy_workdir, require_sandbox,
)


class SandboxKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel runs in the bwrap jail, reached over ipc sockets.

    ``limits`` and ``data_dir`` are set by :class:`SandboxedExecute` before the start.
    """

    data_dir = Unicode("", help="generated data shown read-only (default: $MLPP_DATA or datasets/cache)"
                       ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.limits: Limits = DEFAULT_LIMITS
        self.shared: Path | None = None
        self.stderr_path: Path | None = None

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        require_sandbox()
        if self.shared is None:
            self.shared = Path(tempfile.mkdtemp(prefix="mlpp-kernel-"))
            os.chmod(self.shared, 0o700)
            # ipc sockets in the bound folder: the jail has no network, not even loopback to the grader.
            self.transport = "ipc"
            self.connection_file = str(self.shared / "kernel.json")
            self.ip = str(self.shared / "kernel")
        if self.kernel_spec is not None:
            # A signal to the jail's process group does not reach the kernel's code reliably;
            # ipykernel interrupts itself on a control-channel request.
            self.kernel_spec.interrupt_mode = "message"
        return await super()._async_pre_start_kernel(**kw)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        assert self.shared is not None
        source = Path(kw.get("cwd") or os.getcwd())
        workdir = self.shared / "work"
        try:
            copy_workdir(source, workdir)
        except BaseException:
            shutil.rmtree(self.shared, ignore_errors=True)
            self.shared = None
            raise
        if os.geteuid() == 0:  # the jail runs as SANDBOX_UID: give it its folder and connection file
            for path in [self.shared, *self.shared.rglob("*")]:
                os.chown(path, SANDBOX_UID, SANDBOX_UID, follow_symlinks=False)
        passed = {k: v for k, v in (kw.get("env") or {}).items() if k in PASSED_ENV}
        cmd = bwrap_command(kernel_cmd, shared=self.shared, workdir=workdir, limits=self.limits,
                            data_dir=self.data_dir or None, env=passed)
        # The kernel's stderr goes to a file outside its folders: the grader reads it back, and a
        # file the student could swap for a link would let it read anything root can.
        fd, log_path = tempfile.mkstemp(prefix="mlpp-kernel-", suffix=".log")
        self.stderr_path = Path(log_path)
        with os.fdopen(fd, "wb") as log:  # the child keeps its own copy of the handle
            kw.update(cwd=str(self.shared), env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                      stdout=subprocess.DEVNULL, stderr=log)
            await super()._async_launch_kernel(cmd, **kw)

    def lock_folder(self) -> None:
        """Once the kernel has made its sockets, take its folder's write permission away (as root:
        the jail's user no longer owns it), so the student's code cannot fill the grader's disk."""
        if self.shared is not None and os.geteuid() == 0:
            os.chown(self.shared, 0, 0)
            os.chmod(self.shared, 0o755)

    def exit_reason(self) -> str:
        """Why the jail ended, from its exit status and the kernel's last log line."""
        process = getattr(self.provisioner, "process", None)
        code = process.poll() if process is not None else None
        reason = "the kernel died"
        if code is not None and code != 0:
            sig = -code if code < 0 else code - 128 if code > 128 else 0
            reason += f" ({SIGNALS.get(sig, f'signal {sig}')})" if sig > 0 else f" (exit {code})"
        tail = self.kernel_log_tail()
        return f"{reason}: {tail}" if tail else reason

    def kernel_log_tail(self) -> str:
        """The last non-empty line the kernel wrote to stderr (at most 200 characters)."""
        if self.stderr_path is None or not self.stderr_path.is_file():
            return ""
        with self.stderr_path.open("rb") as f:
            f.seek(max(0, self.stderr_path.stat().st_size - 4096))
            lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        return lines[-1][:200] if lines else ""

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:
            self.remove_folder()

    def remove_folder(self) -> None:
        """Delete the kernel's folder (connection file, sockets, working copy, log)."""
        if self.shared is not None:
            shutil.rmtree(self.shared, ignore_errors=True)
            self.shared = None
        if self.stderr_path is not None:
            self.stderr_path.unlink(missing_ok=True)
            self.stderr_path = None


class SandboxedExecute(Execute):
    """nbgrader's Execute with the kernel in the sandbox, a notebook time limit and an output cap.

    A dead kernel, a time-out or the notebook limit does not abort the notebook: the cells
    after it get an error output ("not run: ..."), so nbgrader keeps the points earned
    before it and gives none for the rest; the reasons go to ``resources["mlpp"]["events"]``
    (written out by :class:`GradingReport`) and to the notebook's cells, where the formgrader
    shows them. Limits are its traits (``c.SandboxedExecute.memory_mb`` ...; the per-cell one
    is nbgrader's ``c.Execute.timeout``), set by :func:`mlpp.sandbox.configure_nbgrader`.
    """

    sandbox = Bool(True, help="run the kernel in the bwrap jail (False only in a trusted setting)").tag(config=True)
    data_dir = Unicode("", help="generated data shown read-only in the jail").tag(config=True)
    memory_mb = Integer(DEFAULT_LIMITS.memory_mb, help=Limits.__doc__).tag(config=True)
    cpu_s = Integer(DEFAULT_LIMITS.cpu_s).tag(config=True)
    processes = Integer(DEFAULT_LIMITS.processes).tag(config=True)
    file_mb = Integer(DEFAULT_LIMITS.file_mb).tag(config=True)
    output_mb = Integer(DEFAULT_LIMITS.output_mb).tag(config=True)
    notebook_timeout_s = Integer(DEFAULT_LIMITS.notebook_timeout_s).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kernel_manager_class = SandboxKernelManager if self.sandbox else AsyncKernelManager
        # After an interrupt a kernel gets this long to go idle; one that does not is stopped.
        self.iopub_timeout = max(self.iopub_timeout, 10)

    @property
    def limits(self) -> Limits:
        """The limits this step applies."""
        return Limits(self.memory_mb, self.cpu_s, self.processes, self.file_mb, self.output_mb,
                      int(self.timeout or CELL_TIMEOUT), self.notebook_timeout_s)

    async def async_start_new_kernel_client(self):  # type: ignore[no-untyped-def]
        kc = await super().async_start_new_kernel_client()
        if isinstance(self.km, SandboxKernelManager):
            self.km.lock_folder()
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)  # the base binds its own

    def create_kernel_manager(self):  # type: ignore[no-untyped-def]
        km = super().create_kernel_manager()
        if isinstance(km, SandboxKernelManager):
            km.limits = self.limits
            km.data_dir = self.data_dir
            self._managers.append(km)
        return km

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None):  # type: ignore[no-untyped-def]
        self._started = time.monotonic()
        self._stopped: str | None = None
        self._output_cell, self._output_bytes, self._output_capped = -1, 0, False
        self._cell_timeout = self.timeout
        # What happened goes into resources["mlpp"] for GradingReport (and any check after this step).
        report = report_of(resources)
        report.update(sandbox=self.sandbox, limits=asdict(self.limits))
        self._events: list[dict[str, Any]] = report.setdefault("events", [])
        self._managers: list[SandboxKernelManager] = []
        try:
            return super().preprocess(nb, resources, km)
        finally:
            self.timeout = self._cell_timeout
            for manager in self._managers:  # a kernel that died or was stopped may leave its folder
                manager.remove_folder()

    def preprocess_cell(self, cell: NotebookNode, resources: Any, index: int):  # type: ignore[no-untyped-def]
        if cell.cell_type != "code" or not cell.source.strip():
            return super().preprocess_cell(cell, resources, index)
        left = self.notebook_timeout_s - (time.monotonic() - self._started)
        if self._stopped is None and left <= 1:
            self._stop(cell, index, f"the notebook time limit ({self.notebook_timeout_s} s) was reached")
        if self._stopped is not None:
            cell.outputs = [_error_output("NotRun", f"not run: {self._stopped}")]
            return cell, resources
        self.timeout = int(min(self._cell_timeout or CELL_TIMEOUT, left))
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            km = self.km
            reason = km.exit_reason() if isinstance(km, SandboxKernelManager) else "the kernel died"
            self._stop(cell, index, reason)
        except CellTimeoutError:
            # The kernel ignored the interrupt after a time-out: stop it, the rest cannot run.
            self._stop(cell, index, f"cell ran past the time limit ({self.timeout} s) and ignored the interrupt")
            if self.km is not None:
                self._run_sync(self.km.shutdown_kernel, now=True)
        cell.outputs = list(cell.get("outputs", [])) + [_error_output("KernelStopped", self._stopped or "")]
        return cell, resources

    def _run_sync(self, func: Any, **kw: Any) -> None:
        try:
            run_sync(func)(**kw)
        except Exception as err:  # noqa: BLE001 (a dead kernel may fail to stop; nothing to do then)
            self.log.warning("could not stop the kernel: %s", err)

    def _stop(self, cell: NotebookNode, index: int, reason: str) -> None:
        name = _cell_name(cell, index)
        self._stopped = f"{reason} in {name}"
        self._events.append({"cell": name, "reason": reason, "stopped": True})
        self.log.error("%s", self._stopped)

    async def _async_handle_timeout(self, timeout: int, cell: NotebookNode | None = None):  # type: ignore[no-untyped-def]
        name = _cell_name(cell, -1) if cell is not None else "a cell"
        self._events.append({"cell": name, "reason": f"time limit: ran over {timeout} s (interrupted)"})
        return await super()._async_handle_timeout(timeout, cell)

    def on_cell_executed(self, **kwargs: Any) -> None:
        super().on_cell_executed(**kwargs)
        content = kwargs["execute_reply"]["content"]
        if content.get("status") == "error" and content.get("ename") == "MemoryError":
            self._events.append({"cell": _cell_name(kwargs["cell"], kwargs.get("cell_index", -1)),
                                 "reason": f"memory limit ({self.memory_mb} MiB) reached (MemoryError)"})

    def output(self, outs: list, msg: dict, display_id: str | None, cell_index: int):  # type: ignore[no-untyped-def]
        # Outputs are kept in the grader's memory: at most output_mb per cell. Per cell, not per
        # notebook, so a flood in one cell does not silence the cells after it (checks included).
        if cell_index != self._output_cell:
            self._output_cell, self._output_bytes, self._output_capped = cell_index, 0, False
        self._output_bytes += len(json.dumps(msg.get("content", {}), default=str))
        if self._output_bytes > self.output_mb << 20:
            if not self._output_capped:
                self._output_capped = True
                self._events.append({"cell": f"cell {cell_index}",
                                     "reason": f"output limit ({self.output_mb} MiB per cell) reached; the rest was dropped"})
                outs.append(NotebookNode(output_type="stream", name="stderr",
                                         text=f"[output over {self.output_mb} MiB dropped by the grader]\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)


def report_of(resources: Any) -> dict[str, Any]:
    """``resources["mlpp"]``: the grading report that autograde's steps fill for one notebook.

    Keys: ``events`` (list of ``{"cell", "reason"}``: time-outs, a dead kernel, limits),
    ``review_reasons`` (list of str: why a person should look at it), ``sandbox``, ``limits``.
    """
    if resources is None:
        return {}
    return resources.setdefault("mlpp", {})


class GradingReport(NbGraderPreprocessor):
    """Last autograde step: writes ``resources["mlpp"]`` to ``<report_dir>/<student>.json``.

    ``mlpp grade`` reads it (outside the jail) for the reasons and the review flag.
    Without ``report_dir`` (the hub's formgrader) it does nothing.
    """

    report_dir = Unicode("", help="folder for <student>.json (outside the jail)").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: Any):  # type: ignore[no-untyped-def]
        if self.report_dir:
            info = resources.get("nbgrader", {})
            student = str(info.get("student") or "student")
            report = {"student": student, "notebook": info.get("notebook"), **report_of(resources)}
            folder = Path(self.report_dir)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{student}.json").write_text(json.dumps(report, default=str), encoding="utf-8")
        return nb, resources


def _cell_name(cell: NotebookNode, index: int) -> str:
    """``cell <grade id>``, else ``cell <cell id>`` (a cell the student added), else its position."""
    name = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or cell.get("id")
    return f"cell {name}" if name else f"cell {index}"


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])


