"""benchmarks/notebook_budget.py: it measures a real kernel, and says when a notebook fails."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest



@pytest.fixture(scope="module")
def budget(benchmark_script):
    return benchmark_script("notebook_budget")


def _notebook(path: Path, source: str) -> Path:
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), path)
    return path


def test_the_peak_memory_is_the_kernels(budget, tmp_path):
    # The kernel holds 300 MB for over a second: the sampled peak must see it.
    notebook = _notebook(tmp_path / "hold.ipynb", "import time\nblock = bytearray(300_000_000)\ntime.sleep(1.5)")
    seconds, gigabytes = budget.run_once(notebook, "fast", timeout=120)
    assert seconds > 1.5
    assert 0.3 < gigabytes < 1.5


def test_memory_shared_with_forked_workers_counts_once(budget, tmp_path):
    # 300 MB in the kernel, then two forked workers that share its pages: a sum of resident
    # sizes counts them three times (about 1 GB), the real footprint is about 300 MB.
    source = ("import multiprocessing, time\nblock = bytearray(300_000_000)\n"
              "with multiprocessing.get_context('fork').Pool(2) as pool:\n"
              "    pool.map(time.sleep, [2.0, 2.0])")
    seconds, gigabytes = budget.run_once(_notebook(tmp_path / "fork.ipynb", source), "fast", timeout=120)
    assert 0.3 < gigabytes < 0.6


def test_a_failing_notebook_is_reported_not_timed(budget, tmp_path, capsys):
    notebook = _notebook(tmp_path / "broken.ipynb", "raise ValueError('no jets')")
    with pytest.raises(RuntimeError, match="broken.ipynb failed in the fast tier"):
        budget.run_once(notebook, "fast", timeout=120)
    assert budget.main([str(notebook), "--runs", "1"]) == 1
    assert "error" in capsys.readouterr().out


def test_a_failure_names_the_exception_even_with_a_dotted_name(budget):
    lines = ["Traceback (most recent call last):", "nbclient.exceptions.CellTimeoutError: A cell timed out while it "
             "was being executed, after 3600 seconds.", "pn_seconds = sum(history)", "-------------------"]
    assert [ln for ln in lines if budget.EXCEPTION_LINE.match(ln)] == [lines[1]]
    assert budget.EXCEPTION_LINE.match("KeyError: 'seconds'") and not budget.EXCEPTION_LINE.match("errors = 3")
