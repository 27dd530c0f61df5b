"""The site build: the per-tier execution cache, failing notebooks, and math without a network.

A tiny book (the course's own _config.yml and extension, two pages) is built with Jupyter Book
as `make book` does, so these tests take seconds, not the lectures' minutes; test_book.py checks
the real site's math with the same browser helper.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from site_browser import math_report, offline_browser

REPO = Path(__file__).resolve().parents[1]
BOOK_EXT = REPO / "book" / "_ext"

MATH_PAGE = r"""# Math

Inline $p_T = \sqrt{p_x^2 + p_y^2}$ and a display equation:

$$
m^2 = E^2 - |\vec p|^2
$$

```{math}
:label: eq-tau
\tau_{32} = \frac{\tau_3}{\tau_2}
```

See {eq}`eq-tau`.
"""


def _notebook(path: Path, code: str, note: str = "A notebook of the test book.") -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# Chapter\n\n{note}"), nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def _make_book(root: Path, chapter_code: str) -> Path:
    """A two-page book under ``root`` with the course's configuration; returns the book folder."""
    book = root / "book_src"
    (book / "book").mkdir(parents=True)
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    shutil.copytree(BOOK_EXT, book / "book" / "_ext")
    shutil.copy(REPO / "book" / "references.bib", book / "book" / "references.bib")
    (book / "_config.yml").write_text(yaml.safe_dump(config))
    (book / "_toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": "intro",
                                                    "chapters": [{"file": "chapter"}]}))
    (book / "intro.md").write_text(MATH_PAGE)
    _notebook(book / "chapter.ipynb", chapter_code)
    return book


def _build(book: Path, tier: str) -> subprocess.CompletedProcess:
    jb = Path(sys.executable).with_name("jupyter-book")
    return subprocess.run([str(jb), "build", "-W", "-n", "--keep-going", str(book)], capture_output=True,
                          text=True, env=dict(os.environ, MLPP_TIER=tier), timeout=600)


def _log(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def test_config_uses_the_cache_and_bundled_mathjax():
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "cache"
    assert "sphinx-mathjax-offline" in config["sphinx"]["extra_extensions"]
    # nbgrader sources and releases are never executed by the site build.
    assert {"solutions/*/*.ipynb", "exercises/*/*.ipynb"} <= set(config["execute"]["exclude_patterns"])


def test_cache_is_reused_within_a_tier_and_never_across_tiers(tmp_path):
    book = _make_book(tmp_path, "import os\nprint('built in tier', os.environ['MLPP_TIER'])")
    html = book / "_build" / "html" / "chapter.html"

    first = _build(book, "fast")
    assert first.returncode == 0, _log(first)[-3000:]
    assert "built in tier fast" in html.read_text()
    assert (book / "_build" / ".jupyter_cache" / "fast").is_dir()

    # A markdown edit: the page is read again, but its code is unchanged, so nothing is executed.
    nb = nbformat.read(book / "chapter.ipynb", as_version=4)
    nb.cells[0].source = "# Chapter\n\nAn edited sentence."
    nbformat.write(nb, book / "chapter.ipynb")
    second = _build(book, "fast")
    assert second.returncode == 0, _log(second)[-3000:]
    assert "Using cached notebook" in _log(second) and "Executing notebook" not in _log(second)
    assert "An edited sentence." in html.read_text() and "built in tier fast" in html.read_text()

    # Another tier: its own cache folder, so the notebook runs again and the page shows the new tier.
    third = _build(book, "full")
    assert third.returncode == 0, _log(third)[-3000:]
    assert "Executing notebook" in _log(third) and "Using cached notebook" not in _log(third)
    assert "built in tier full" in html.read_text()
    assert (book / "_build" / ".jupyter_cache" / "full").is_dir()


def test_failing_notebook_fails_the_build_every_time(tmp_path):
    book = _make_book(tmp_path, "raise RuntimeError('a broken lecture')")
    for attempt in ("first build", "rebuild with nothing changed"):
        result = _build(book, "fast")
        assert result.returncode != 0, f"{attempt} passed with a failing notebook:\n{_log(result)[-3000:]}"
        assert "Executing notebook failed" in _log(result) or "a broken lecture" in _log(result), attempt


def test_math_renders_offline_in_chromium(tmp_path):
    book = _make_book(tmp_path, "print('no math here')")
    result = _build(book, "fast")
    assert result.returncode == 0, _log(result)[-3000:]
    site = book / "_build" / "html"
    with offline_browser() as browser:
        report = math_report(browser, site / "intro.html")
    assert report.version and report.version.startswith("3."), report
    # MathJax comes from the site's own _static folder, not from a CDN.
    assert report.scripts == [(site / "_static" / "mathjax" / "tex-chtml.js").as_uri()], report.scripts
    assert report.math == 3 and report.rendered >= 3, report
    assert not report.raw and not report.errors and not report.leftovers, report
    assert not [url for url in report.blocked if "mathjax" in url.lower()], report.blocked
