"""The site build: the per-tier execution cache, failing notebooks, math without a network, and
browser checks that catch a broken page.

A tiny book (the course's own _config.yml and extensions, two pages) is built with Jupyter Book
as `make book` does, so these tests take seconds, not the lectures' minutes; test_book.py opens
every page of the real site with the same browser helper.
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

from site_browser import inspect_page, link_problems, offline_browser, site_pages

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

See {eq}`eq-tau`. As in the lectures, display math inside a paragraph,
$$ f(\rho_g(x)) = f(x), $$
and **more text** between two such equations,
$$ f(\rho_g(x)) = \rho'_g(f(x)) . $$
"""


def _notebook(path: Path, code: str, note: str = "A notebook of the test book.") -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# Chapter\n\n{note}"), nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def _make_book(root: Path, chapter_code: str, summary_code: str | None = None) -> Path:
    """A book under ``root`` with the course's configuration (math page, one chapter notebook and,
    given ``summary_code``, a summary notebook in the role of the landscape page); returns its folder."""
    book = root / "book_src"
    (book / "book").mkdir(parents=True)
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    config["sphinx"]["config"]["mlpp_summary_pages"] = ["summary"] if summary_code else []
    shutil.copytree(BOOK_EXT, book / "book" / "_ext")
    shutil.copy(REPO / "book" / "references.bib", book / "book" / "references.bib")
    (book / "_config.yml").write_text(yaml.safe_dump(config))
    chapters = [{"file": "chapter"}] + ([{"file": "summary"}] if summary_code else [])
    (book / "_toc.yml").write_text(yaml.safe_dump({"format": "jb-book", "root": "intro", "chapters": chapters}))
    (book / "intro.md").write_text(MATH_PAGE)
    _notebook(book / "chapter.ipynb", chapter_code)
    if summary_code:
        _notebook(book / "summary.ipynb", summary_code)
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


def _executed(result: subprocess.CompletedProcess) -> set[str]:
    """The pages whose notebook the build executed (myst-nb logs one line per execution)."""
    return {Path(line.split(":")[0]).stem for line in _log(result).splitlines() if "Executing notebook using" in line}


def test_cache_is_reused_within_a_tier_and_never_across_tiers(tmp_path):
    # The chapter leaves a result on disk, as lectures record scores; the summary page shows it.
    book = _make_book(tmp_path, "import os\nresult = 'tier ' + os.environ['MLPP_TIER']\n"
                                "open('result.txt', 'w').write(result)\nprint('built in', result)",
                      summary_code="print('summary of', open('result.txt').read())")
    chapter, summary = (book / "_build" / "html" / f"{page}.html" for page in ("chapter", "summary"))

    first = _build(book, "fast")
    assert first.returncode == 0, _log(first)[-3000:]
    assert _executed(first) == {"chapter", "summary"}
    assert "built in tier fast" in chapter.read_text() and "summary of tier fast" in summary.read_text()
    assert (book / "_build" / ".jupyter_cache" / "fast").is_dir()

    # A markdown edit: the page is read again, but its code is unchanged, so nothing is executed.
    nb = nbformat.read(book / "chapter.ipynb", as_version=4)
    nb.cells[0].source = "# Chapter\n\nAn edited sentence."
    nbformat.write(nb, book / "chapter.ipynb")
    second = _build(book, "fast")
    assert second.returncode == 0, _log(second)[-3000:]
    assert "Using cached notebook" in _log(second) and not _executed(second)
    assert "An edited sentence." in chapter.read_text() and "built in tier fast" in chapter.read_text()

    # A code edit: the chapter runs again, and so does the summary page, whose source did not change.
    nb.cells[1].source = nb.cells[1].source.replace("'tier '", "'edited tier '")
    nbformat.write(nb, book / "chapter.ipynb")
    third = _build(book, "fast")
    assert third.returncode == 0, _log(third)[-3000:]
    assert _executed(third) == {"chapter", "summary"}
    assert "summary of edited tier fast" in summary.read_text()

    # Another tier: its own cache folder, so the chapter runs again and the pages show the new tier.
    fourth = _build(book, "full")
    assert fourth.returncode == 0, _log(fourth)[-3000:]
    assert _executed(fourth) == {"chapter", "summary"} and "Using cached notebook" not in _log(fourth)
    assert "built in edited tier full" in chapter.read_text()
    assert "summary of edited tier full" in summary.read_text()
    assert (book / "_build" / ".jupyter_cache" / "full").is_dir()


def test_failing_notebook_fails_the_build_every_time(tmp_path):
    book = _make_book(tmp_path, "raise RuntimeError('a broken lecture')")
    for attempt in ("first build", "rebuild with nothing changed"):
        result = _build(book, "fast")
        assert result.returncode != 0, f"{attempt} passed with a failing notebook:\n{_log(result)[-3000:]}"
        assert "Executing notebook failed" in _log(result) or "a broken lecture" in _log(result), attempt


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory) -> Path:
    """The tiny book, built once in the fast tier; its chapter shows a widget (a tqdm bar)."""
    book = _make_book(tmp_path_factory.mktemp("tiny"),
                      "from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='counting'):\n    pass\nprint('no math here')")
    result = _build(book, "fast")
    assert result.returncode == 0, _log(result)[-3000:]
    return book / "_build" / "html"


@pytest.mark.slow
def test_math_renders_offline_in_chromium(tiny_site):
    site = tiny_site
    with offline_browser() as browser:
        page = inspect_page(browser, site / "intro.html")
    report = page.math
    assert report.version and report.version.startswith("3."), report
    # MathJax comes from the site's own _static folder, not from a CDN.
    assert report.scripts == [(site / "_static" / "mathjax" / "tex-chtml.js").as_uri()], report.scripts
    assert report.math == 5 and report.rendered >= 5, report
    assert not report.raw and not report.errors and not report.leftovers, report
    assert not report.problems(site)
    assert "<strong>more text</strong>" in (site / "intro.html").read_text()  # not swallowed by the math
    assert not page.blocked, page.blocked


@pytest.mark.slow
def test_tiny_site_is_clean_in_chromium(tiny_site):
    """The theme's own pages raise no console error (book/_ext/theme_fixes.py), the widget is shown
    as text with no script from a CDN (book/_ext/static_widgets.py), every link resolves."""
    with offline_browser() as browser:
        reports = [inspect_page(browser, page) for page in site_pages(tiny_site)]
    assert [r.path.name for r in reports] == ["chapter.html", "genindex.html", "index.html", "intro.html",
                                              "search.html"]
    assert not [(r.path.name, r.console_errors, r.failed_loads, r.broken_images, r.blocked) for r in reports
                if r.console_errors or r.failed_loads or r.broken_images or r.blocked]
    assert not link_problems(reports, tiny_site)
    chapter = next(r for r in reports if r.path.name == "chapter.html")
    assert "counting: 100%|##########| 3/3" in chapter.text, "the tqdm bar is not shown as text"
    assert "widget-state" not in (tiny_site / "chapter.html").read_text()
    assert chapter.launch_menu_visible and any("colab.research.google.com" in url for _, url in chapter.links)


BROKEN_PAGE = """<!DOCTYPE html><html><head><title>broken</title></head><body><main>
<h1 id="top">A broken page</h1>
<img src="_images/missing.png" alt="missing figure">
<img src="data:image/png;base64,bm90IGEgcG5n" alt="not a png">
<a href="chapter.html">fine</a> <a href="chapter.html#no-such-section">bad anchor</a>
<a href="#top">fine</a> <a href="#nowhere">bad anchor here</a> <a href="gone.html">missing page</a>
<a href="https://arxiv.org/abs/1902.09914">fine</a> <a href="https://">no host</a>
<a href="http://exa mple.org">space</a> <a href="javascript:void(0)">script</a>
<img src="https://example.org/remote.png" alt="remote">
<p>Math that nothing typesets: \\(p_T\\) and $$m^2$$</p>
<script>console.error("a console error"); undefinedFunction();</script>
</main></body></html>
"""


@pytest.mark.slow
def test_browser_checks_catch_a_broken_page(tiny_site):
    """Each kind of fault that test_book.py fails on is seen on a hand-made broken page."""
    broken = tiny_site / "broken.html"
    broken.write_text(BROKEN_PAGE)
    try:
        with offline_browser() as browser:
            reports = [inspect_page(browser, page) for page in (broken, tiny_site / "chapter.html")]
        problems = link_problems(reports, tiny_site)
    finally:
        broken.unlink()
    report = reports[0]
    assert "a console error" in " ".join(report.console_errors)
    assert any("undefinedFunction" in e for e in report.console_errors), report.console_errors
    assert any("missing.png" in f for f in report.failed_loads), report.failed_loads
    assert set(report.broken_images) >= {"_images/missing.png", "data:image/png;base64,bm90IGEgcG5n"}
    assert set(report.blocked) == {"https://example.org/remote.png"}
    assert "TeX delimiter \\( left in the prose" in report.math.problems(tiny_site)
    for written in ["chapter.html#no-such-section", "#nowhere", "gone.html", "https://",
                    "http://exa mple.org",
                    "javascript:void(0)"]:
        assert [p for p in problems if f"{written!r}" in p], f"{written} not caught: {problems}"
    assert len(problems) == 6, problems
    assert not report.launch_menu_visible
