#!/usr/bin/env python
"""Execute the site's lectures into the tier's execution cache, one at a time, and time each.

`make book` executes every lecture whose code has no match in the execution cache
(``_build/.jupyter_cache/<tier>``, see ``book/_ext/execution_cache.py``). In the full tier the
lectures take 10-30 minutes each on 2 cores, more than one sitting of a shared machine allows in
a row. This script does what the build would do for each lecture of ``_toc.yml`` that has no
match yet: it executes it the way myst-nb does (jupyter-cache's ``single_nb_execution``, in the
notebook's folder, with the cell timeout of ``_config.yml``) and stores the executed notebook in
the same cache, so that a later `make book` takes it from there. It records each lecture's wall
time, the peak memory of its kernel (proportional set size, summed over the kernel and what it
starts) and the load average before it ran in ``benchmarks/results/full_tier-<tier>.json``
(written atomically after every lecture). An interrupted run loses at most the lecture in
progress: run the same command again and it goes on.

Pages named in ``mlpp_summary_pages`` (the landscape page) are skipped: the build executes them
every time, after the lectures, because they load what the lectures recorded.

The time of a full-tier build from scratch is the sum of the recorded lecture times plus the
time of `make book` once every lecture is cached (Sphinx and the summary pages). Run it on a
quiet machine: with the cores shared, PyTorch's threads wait for each other and the times mean
little (each row keeps its load average).

    MLPP_TIER=full python benchmarks/full_tier.py --list       # cached / missing, recorded times
    MLPP_TIER=full python benchmarks/full_tier.py              # execute what is missing, in toc order
    MLPP_TIER=full python benchmarks/full_tier.py --only 02 08 # just these lectures (by number)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import psutil
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "book" / "_ext"))


def toc_notebooks(repo: Path = REPO) -> list[Path]:
    """The notebooks of ``_toc.yml`` in the order of the site, without the summary pages."""
    config = yaml.safe_load((repo / "_config.yml").read_text())
    summaries = set(config.get("sphinx", {}).get("config", {}).get("mlpp_summary_pages", []))
    toc = yaml.safe_load((repo / "_toc.yml").read_text())
    files = [toc["root"]] + [chapter["file"] for part in toc.get("parts", []) for chapter in part.get("chapters", [])]
    return [repo / f"{name}.ipynb" for name in files
            if name not in summaries and (repo / f"{name}.ipynb").exists()]


def cell_timeout(repo: Path = REPO) -> int:
    """Seconds per cell, as the site build uses (``execute.timeout`` in ``_config.yml``)."""
    return int(yaml.safe_load((repo / "_config.yml").read_text())["execute"]["timeout"])


def cache_folder(tier: str, repo: Path = REPO) -> Path:
    """The tier's jupyter-cache folder, as ``book/_ext/execution_cache.py`` names it for `make book`."""
    from execution_cache import tier_cache_path

    return tier_cache_path(repo / "_build" / ".jupyter_cache", tier)


def cached_seconds(cache: Path, notebook: Path) -> float | None:
    """The recorded execution time of ``notebook``'s cached match, None if its code has no match."""
    from jupyter_cache import get_cache

    try:
        record = get_cache(str(cache)).match_cache_notebook(nbformat.read(notebook, as_version=4))
    except KeyError:
        return None
    return float(record.data.get("execution_seconds") or float("nan"))


class PeakMemory:
    """Sample the summed PSS of this process's children (the kernel and what it starts) every 0.2 s."""

    def __init__(self) -> None:
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_full_info().pss
                except (psutil.Error, AttributeError):  # ended meanwhile, or no PSS here
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.2)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def execute_into_cache(notebook: Path, cache: Path, timeout: int) -> dict:
    """Execute ``notebook`` as myst-nb would and cache it; return its record (raises if a cell fails)."""
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.executors.utils import single_nb_execution

    store = get_cache(str(cache))
    nb = nbformat.read(notebook, as_version=4)
    stage = store.add_nb_to_project(str(notebook))
    load = os.getloadavg()[0]
    with PeakMemory() as memory:
        result = single_nb_execution(nb, cwd=str(notebook.parent), timeout=timeout, allow_errors=False,
                                     meta_override=True)
    if result.err is not None:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", result.exc_string or "")  # the traceback is coloured
        last = plain.strip().splitlines()[-1:] or [type(result.err).__name__]
        raise RuntimeError(f"{_shown(notebook)} failed: {last[0]}")
    store.cache_notebook_bundle(CacheBundleIn(nb, stage.uri, data={"execution_seconds": result.time}),
                                check_validity=False, overwrite=True)
    return {"seconds": round(result.time, 1), "peak_gb": round(memory.peak / 1e9, 2),
            "load_before": round(load, 2), "cores": os.cpu_count(),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _write(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--tier", choices=["fast", "full"], default=os.environ.get("MLPP_TIER", "full"),
                        help="the tier to execute (default $MLPP_TIER or full)")
    parser.add_argument("--only", nargs="+", metavar="NN", default=None,
                        help="lecture numbers or names to consider (default: every lecture of _toc.yml)")
    parser.add_argument("--list", action="store_true", help="say what is cached and what is missing; run nothing")
    parser.add_argument("--results", type=Path, default=None,
                        help="results file (default benchmarks/results/full_tier-<tier>.json)")
    args = parser.parse_args(argv)

    os.environ.update(MLPP_TIER=args.tier, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONHASHSEED="0")
    notebooks = toc_notebooks()
    if args.only:
        notebooks = [nb for nb in notebooks if any(nb.stem.startswith(key) for key in args.only)]
        if not notebooks:
            parser.error(f"no lecture of _toc.yml matches {' '.join(args.only)}; see --list")
    cache, timeout = cache_folder(args.tier), cell_timeout()
    results_path = args.results or REPO / "benchmarks" / "results" / f"full_tier-{args.tier}.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {"tier": args.tier, "lectures": {}}

    missing = [nb for nb in notebooks if cached_seconds(cache, nb) is None]
    for nb in notebooks:
        seconds = cached_seconds(cache, nb)
        row = results["lectures"].get(nb.stem, {})
        state = "missing" if seconds is None else f"cached, ran in {seconds:.0f} s"
        recorded = f"; recorded {row['seconds']:.0f} s, {row['peak_gb']:.2f} GB at load {row['load_before']}" if row else ""
        print(f"{_shown(nb)}: {state}{recorded}")
    if args.list or not missing:
        total = sum(row["seconds"] for row in results["lectures"].values())
        print(f"{len(notebooks) - len(missing)} of {len(notebooks)} cached in {_shown(cache)}; "
              f"recorded lecture time {total / 60:.0f} min")
        return 0

    print(f"tier {args.tier}: executing {len(missing)} lecture(s) into {_shown(cache)} "
          f"(cell timeout {timeout} s)", flush=True)
    for nb in missing:
        start = time.strftime("%H:%M:%S")
        try:
            row = execute_into_cache(nb, cache, timeout)
        except RuntimeError as error:
            print(f"error: {error}; fix it and run again (the cached lectures stay)")
            return 1
        results["lectures"][nb.stem] = row
        _write(results_path, results)
        print(f"{_shown(nb)}: started {start}, {row['seconds'] / 60:.1f} min, {row['peak_gb']:.2f} GB "
              f"(load before {row['load_before']})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
