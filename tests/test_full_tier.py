"""benchmarks/full_tier.py: a lecture it executes is one the site build takes from the cache."""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def full_tier(benchmark_script):
    return benchmark_script("full_tier")


def _notebook(path: Path, source: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_the_lectures_in_site_order_without_the_summary_page(full_tier):
    notebooks = [nb.relative_to(REPO).as_posix() for nb in full_tier.toc_notebooks()]
    assert notebooks[0] == "lectures/00_collisions_to_jets.ipynb"
    assert "lectures/landscape.ipynb" not in notebooks  # the build runs it after the lectures, every time
    lectures = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "lectures").glob("*.ipynb"))
    assert sorted(notebooks) == [nb for nb in lectures if not nb.endswith("landscape.ipynb")]


def test_an_executed_notebook_is_a_cache_match_for_the_site_build(full_tier, tmp_path):
    sys.path.insert(0, str(REPO / "book" / "_ext"))
    from execution_cache import will_execute

    notebook = _notebook(tmp_path / "lecture.ipynb", "import time, os\ntime.sleep(0.5)\nprint(os.environ.get('MLPP_TIER'))")
    cache = tmp_path / "cache"
    assert full_tier.cached_seconds(cache, notebook) is None and will_execute(cache, notebook)
    row = full_tier.execute_into_cache(notebook, cache, timeout=60)
    assert row["seconds"] >= 0.5 and row["peak_gb"] > 0.01  # a kernel is at least tens of MB
    assert not will_execute(cache, notebook)  # what myst-nb asks before executing a page
    assert full_tier.cached_seconds(cache, notebook) == pytest.approx(row["seconds"], abs=0.1)
    # a code change is a new notebook for the cache, a markdown change is not
    changed = nbformat.read(notebook, as_version=4)
    changed.cells.append(nbformat.v4.new_markdown_cell("More words."))
    nbformat.write(changed, notebook)
    assert not will_execute(cache, notebook)
    changed.cells[0].source += "\nx = 1"
    nbformat.write(changed, notebook)
    assert will_execute(cache, notebook)


def test_a_failing_notebook_is_reported_and_not_cached(full_tier, tmp_path):
    notebook = _notebook(tmp_path / "broken.ipynb", "raise ValueError('no jets in the cache')")
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="ValueError: no jets in the cache"):
        full_tier.execute_into_cache(notebook, cache, timeout=60)
    assert full_tier.cached_seconds(cache, notebook) is None
