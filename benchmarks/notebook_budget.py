#!/usr/bin/env python
"""Wall time and peak memory of notebooks, against the fast tier's budget (2 min, 1.5 GB).

Each notebook is executed with `jupyter nbconvert --execute` (the output goes to a
temporary folder, the source is not touched) in the tier given, --runs times. While
it runs, the memory of the kernel and of everything the kernel starts (worker
processes, compilers) is summed every 0.2 s; the peak of that sum is the notebook's
memory. Each process counts with its proportional set size (PSS, Linux): pages that
forked workers share with the kernel count once, where a sum of resident sizes would
count them once per worker (EnergyFlow's EFP pool in Lecture 4 doubled its figure that
way); where PSS is not available the resident size is used. The table gives the median
over the runs, the spread, and the load average of the machine before the runs,
because on shared cores the wall time follows the load.

    python benchmarks/notebook_budget.py lectures/11_fpga_hls4ml.ipynb --runs 3
    python benchmarks/notebook_budget.py solutions/*/*.ipynb --tier fast --runs 1

Exit status 1 if a median breaks the budget (--max-seconds, --max-gb) or a run fails.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil


def _memory(process: psutil.Process) -> int:
    """Proportional set size in bytes where the system reports it, else the resident size."""
    try:
        return process.memory_full_info().pss
    except (AttributeError, psutil.AccessDenied):
        return process.memory_info().rss


# "CellTimeoutError: ...", "nbclient.exceptions.CellTimeoutError: A cell timed out ...", "KeyError: 'x'"
EXCEPTION_LINE = re.compile(r"^\s*(?:[A-Za-z_]\w*\.)*\w*(?:Error|Exception|Interrupt|Exit)\b")


def run_once(notebook: Path, tier: str, timeout: int) -> tuple[float, float]:
    """(wall seconds, peak GB of the kernel and its children) of one execution."""
    env = dict(os.environ, MLPP_TIER=tier, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONHASHSEED="0")
    jupyter = Path(sys.executable).with_name("jupyter")
    with tempfile.TemporaryDirectory(prefix="budget-") as out:
        command = [str(jupyter), "nbconvert", "--to", "notebook", "--execute", "--output-dir", out,
                   f"--ExecutePreprocessor.timeout={timeout}", str(notebook)]
        start = time.perf_counter()
        launcher = psutil.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peak = 0
        while launcher.poll() is None:
            try:
                # The launcher itself only reads and writes the notebook: count what it starts.
                peak = max(peak, sum(_memory(p) for p in launcher.children(recursive=True)))
            except psutil.Error:  # a child ended between listing and reading it
                pass
            time.sleep(0.2)
        seconds = time.perf_counter() - start
        if launcher.returncode != 0:
            lines = launcher.stderr.read().decode(errors="replace").strip().splitlines()
            # nbconvert ends with the failing cell's source; the exception's own line is above it
            raised = [ln.strip() for ln in lines if EXCEPTION_LINE.match(ln)]
            raise RuntimeError(f"{notebook} failed in the {tier} tier: {' | '.join(raised[-1:] + lines[-3:])}")
    return seconds, peak / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("notebooks", nargs="+", type=Path, help="notebooks to execute")
    parser.add_argument("--tier", choices=["fast", "full"], default="fast", help="MLPP_TIER (default fast)")
    parser.add_argument("--runs", type=int, default=3, help="executions per notebook (default 3)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell before giving up (default 3600)")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="budget for the median wall time")
    parser.add_argument("--max-gb", type=float, default=1.5, help="budget for the median peak memory (GB)")
    args = parser.parse_args(argv)

    print(f"tier {args.tier}, {args.runs} run(s) each, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} before the runs")
    print(f"{'notebook':<58} {'median s':>9} {'min-max s':>13} {'median GB':>10} {'max GB':>7}  budget")
    failed = False
    for notebook in args.notebooks:
        try:
            runs = [run_once(notebook, args.tier, args.timeout) for _ in range(args.runs)]
        except RuntimeError as error:
            print(f"{str(notebook):<58} error: {error}")
            failed = True
            continue
        seconds, gigabytes = [r[0] for r in runs], [r[1] for r in runs]
        median_s, median_gb = statistics.median(seconds), statistics.median(gigabytes)
        within = median_s <= args.max_seconds and median_gb <= args.max_gb
        failed |= not within
        print(f"{str(notebook):<58} {median_s:>9.0f} {min(seconds):>6.0f}-{max(seconds):<6.0f} "
              f"{median_gb:>10.2f} {max(gigabytes):>7.2f}  {'ok' if within else 'OVER'}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} after the runs")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
