"""The course site builds warning-free, shows the executed lectures, and leaks nothing."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mlpp.nbgrader_bridge import exercise_ids, read_notebook
from mlpp.release import secret_lines
from site_browser import math_report, offline_browser

REPO = Path(__file__).resolve().parents[1]


def _toc_files() -> list[str]:
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    return [toc["root"]] + [ch["file"] for part in toc["parts"] for ch in part["chapters"]]


def test_every_lecture_is_in_the_toc():
    listed = set(_toc_files())
    lectures = {f"lectures/{p.stem}" for p in (REPO / "lectures").glob("*.ipynb")}
    assert lectures and lectures <= listed


@pytest.mark.parametrize("notebook", sorted(
    p.relative_to(REPO).as_posix() for p in [*(REPO / "lectures").glob("*.ipynb"), *(REPO / "solutions").glob("*/*.ipynb")]))
def test_notebooks_are_committed_clean(notebook):
    """Lectures and exercise sources are committed without outputs, and every cell has an id (nbformat 4.5)."""
    import json

    raw = json.loads((REPO / notebook).read_text())
    assert (raw["nbformat"], raw["nbformat_minor"]) >= (4, 5)
    for index, cell in enumerate(raw["cells"]):
        assert cell.get("id"), f"{notebook}: cell {index} has no id; run nbformat's normalize() on it"
        if cell["cell_type"] == "code":
            assert not cell["outputs"] and cell["execution_count"] is None, \
                f"{notebook}: cell {index} was committed with outputs; clear them (jupyter nbconvert --clear-output)"


def test_syllabus_links_exactly_the_existing_lectures():
    syllabus = (REPO / "book" / "syllabus.md").read_text()
    for nb in (REPO / "lectures").glob("*.ipynb"):
        assert nb.stem in syllabus, f"{nb.stem} is not linked from the syllabus"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """Build the book in the fast tier into a temporary folder (the lectures are executed)."""
    out = tmp_path_factory.mktemp("book")
    jb = Path(sys.executable).with_name("jupyter-book")
    env = dict(os.environ, MLPP_TIER="fast")
    result = subprocess.run([str(jb), "build", "-W", "-n", "--keep-going", "--path-output", str(out), str(REPO)],
                            capture_output=True, text=True, env=env, timeout=1800)
    # Sphinx's own warnings first: with -W any one fails the build, and the log's tail rarely shows it.
    warnings = [ln for ln in (result.stdout + result.stderr).splitlines()
                if ("WARNING" in ln or "ERROR" in ln) and "absl" not in ln and "Kernel is running over TCP" not in ln]
    assert result.returncode == 0, ("jupyter-book build failed:\n" + "\n".join(warnings[:20])
                                    + f"\n...\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")
    return out / "_build" / "html"


def test_site_has_every_page_and_executed_lectures(site):
    for page in _toc_files():
        assert (site / f"{page}.html").exists(), page
    for nb in (REPO / "lectures").glob("*.ipynb"):
        html = (site / "lectures" / f"{nb.stem}.html").read_text()
        assert html.count('class="cell_output') >= 3, f"{nb.stem} shows no executed output"
        assert "Traceback" not in html and "NotImplementedError" not in html


def test_math_renders_offline_on_every_page(site):
    """Each page with math, opened from file:// in headless Chromium with no network, shows typeset math."""
    pages = sorted(p for p in site.rglob("*.html") if 'class="math' in p.read_text(errors="ignore"))
    assert len(pages) >= 3, f"only {len(pages)} pages with math: is dollarmath still on?"
    problems = []
    with offline_browser() as browser:
        for page in pages:
            report = math_report(browser, page)
            local = all(src.startswith(site.as_uri()) for src in report.scripts) and report.scripts
            if not local or report.rendered < report.math or report.raw or report.errors or report.leftovers:
                problems.append(f"{page.relative_to(site)}: {report}")
    assert not problems, "math not rendered offline:\n" + "\n".join(problems)


def test_site_keeps_the_execution_cache_per_tier(site):
    """The build used the jupyter-cache of its tier (fast here), which holds every executed lecture."""
    from jupyter_cache import get_cache

    cache = site.parents[1] / "_build" / ".jupyter_cache"
    assert [p.name for p in cache.iterdir()] == ["fast"]
    cached = {Path(record.uri).relative_to(REPO).with_suffix("").as_posix()
              for record in get_cache(cache / "fast").list_cache_records()}
    # Executed pages: the .ipynb lectures and MyST-markdown notebooks (a kernelspec in the front matter).
    executed = {page for page in _toc_files() if (REPO / f"{page}.ipynb").exists()
                or "\nkernelspec:" in (REPO / f"{page}.md").read_text().split("\n---", 1)[0]}
    # The landscape page is executed whenever it is read (it follows what the lectures record), never cached.
    summaries = set(yaml.safe_load((REPO / "_config.yml").read_text())["sphinx"]["config"]["mlpp_summary_pages"])
    assert "lectures/landscape" in summaries and "lectures/00_collisions_to_jets" in executed
    assert cached == executed - summaries


def test_landscape_page_finds_every_lectures_top_taggers(site):
    """The landscape page runs after the lectures in the build and loads what they recorded."""
    html = (site / "lectures" / "landscape.html").read_text()
    # The phrase of landscape.load's "missing" lines: it is in the page's output only, never in its code.
    assert "no tagger recorded on these test jets" not in html, \
        "the landscape page ran before a lecture that records top taggers"
    for name in ["MLP on 27 features", "GRU, shuffled (train and test)", "BDT on 5 expert variables",
                 "Particle Flow Network", "ParticleNet-Lite, 30 particles", "transformer + interactions",
                 "Lorentz-invariant net"]:
        assert name in html, f"{name} is not in the landscape table"


def test_no_lecture_types_a_number_its_run_prints(site):
    """Numbers a lecture quotes from its own run are glued or printed (issue: numbers follow the run)."""
    from mlpp.quoted_numbers import check_folder

    executed = site.parent / "jupyter_execute" / "lectures"
    lectures = sorted(p.name for p in (REPO / "lectures").glob("*.ipynb"))
    assert sorted(p.name for p in executed.glob("*.ipynb")) == lectures, "the build left no executed copy of some lecture"
    found = check_folder(REPO / "lectures", executed)
    assert not found, "typed numbers that the run prints (glue them):\n" + "\n".join(map(str, found))


def test_glued_numbers_render_on_the_site(site):
    """Every {glue:text} role became text: no role is left raw and no glue key is reported missing."""
    for nb in (REPO / "lectures").glob("*.ipynb"):
        html = (site / "lectures" / f"{nb.stem}.html").read_text()
        assert "{glue:" not in html and "glue:text" not in html, f"{nb.stem}: a glue role was not rendered"


def test_site_holds_no_exercise_material(site):
    names = {p.relative_to(site).as_posix() for p in site.rglob("*")}
    assert not [n for n in names if n.startswith(("solutions", "exercises", "tests"))]


@pytest.mark.parametrize("exercise", exercise_ids(REPO) or ["(none)"])
def test_site_leaks_no_solution_or_hidden_test(site, exercise):
    if exercise == "(none)":
        pytest.skip("no exercises yet")
    secrets = {s for s in secret_lines(read_notebook(REPO / "solutions" / exercise / f"{exercise}.ipynb"))
               if len(s) >= 12}
    leaks = []
    for page in site.rglob("*"):
        if page.suffix in (".html", ".ipynb", ".txt", ".md", ".py", ".js") and page.is_file():
            text = page.read_text(errors="ignore")
            # HTML escapes quotes and angle brackets; compare on unescaped, tag-free text too
            plain = re.sub(r"<[^>]+>", "", text).replace("&quot;", '"').replace("&#39;", "'").replace(
                "&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            leaks += [f"{page.relative_to(site)}: {s}" for s in secrets if s in text or s in plain]
    assert not leaks, "solution or hidden-test lines on the site:\n" + "\n".join(leaks[:20])
