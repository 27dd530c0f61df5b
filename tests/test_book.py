"""The course site builds warning-free, shows the executed lectures, works in a browser, and leaks nothing.

The fast-tier site is built once (``site``) and every page is opened once in headless Chromium,
offline (``browsed``); each test below judges one thing about what the browser saw.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from mlpp.nbgrader_bridge import exercise_ids, read_notebook
from mlpp.release import secret_lines
from site_browser import PageReport, inspect_page, link_problems, offline_browser, site_pages

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


@pytest.fixture(scope="module")
def browsed(site) -> list[PageReport]:
    """Every page of the site as headless Chromium shows it, from file:// with no network."""
    with offline_browser() as browser:
        return [inspect_page(browser, page) for page in site_pages(site)]


def _report(browsed: list[PageReport], site: Path, page: str) -> PageReport:
    return next(r for r in browsed if r.path == site / page)


@pytest.mark.slow
def test_browser_saw_every_page(site, browsed):
    opened = {r.path.relative_to(site).as_posix() for r in browsed}
    assert {f"{page}.html" for page in _toc_files()} <= opened
    assert {"genindex.html", "search.html"} <= opened


@pytest.mark.slow
def test_pages_load_without_errors_offline(site, browsed):
    """No console error or uncaught exception, no local file missing, and nothing from the network."""
    problems = []
    for r in browsed:
        where = r.path.relative_to(site)
        problems += [f"{where}: console: {e}" for e in r.console_errors]
        problems += [f"{where}: failed to load {f}" for f in r.failed_loads]
        problems += [f"{where}: needs the network for {url}" for url in r.blocked]
    assert not problems, "pages with errors in Chromium:\n" + "\n".join(problems[:30])


@pytest.mark.slow
def test_every_image_shows(site, browsed):
    images = sum(len(r.image_sources) for r in browsed)
    assert images >= 20, f"only {images} images on the whole site: do the lectures still show their figures?"
    broken = [f"{r.path.relative_to(site)}: {src}" for r in browsed for src in r.broken_images]
    assert not broken, "images that did not load:\n" + "\n".join(broken)


@pytest.mark.slow
def test_links_and_anchors_resolve(site, browsed):
    """Internal links reach a file and, with a #fragment, an anchor on that page; external links
    (not fetched: the build machines are offline) are well-formed http(s) or mailto addresses."""
    internal = sum(1 for r in browsed for _, url in r.links if url.startswith("file:"))
    assert internal >= 100, f"only {internal} internal links: did the navigation disappear?"
    problems = link_problems(browsed, site)
    assert not problems, "broken links:\n" + "\n".join(problems[:30])


@pytest.mark.slow
def test_math_renders_offline_on_every_page(site, browsed):
    """Each page with math shows typeset math, with the site's own MathJax."""
    with_math = [r for r in browsed if r.math.math]
    assert len(with_math) >= 3, f"only {len(with_math)} pages with math: is dollarmath still on?"
    problems = [f"{r.path.relative_to(site)}: {p}" for r in browsed for p in r.math.problems(site)]
    assert not problems, "math not rendered offline:\n" + "\n".join(problems[:30])


def _launch_urls(notebook: str) -> dict[str, str]:
    """The launch buttons _config.yml asks for, each with the address that opens ``notebook``
    (a path in the repository) there, as sphinx-book-theme writes it."""
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    repo_url, branch = config["repository"]["url"].rstrip("/"), config["repository"]["branch"]
    org_repo = urlsplit(repo_url).path.strip("/")
    buttons = config["launch_buttons"]
    ui = "lab/tree" if buttons.get("notebook_interface") == "jupyterlab" else "tree"
    urls = {}
    if buttons.get("binderhub_url"):
        urls["Binder"] = f"{buttons['binderhub_url'].rstrip('/')}/v2/gh/{org_repo}/{branch}?urlpath={ui}/{notebook}"
    if buttons.get("jupyterhub_url"):
        urls["JupyterHub"] = f"{buttons['jupyterhub_url'].rstrip('/')}/hub/user-redirect/git-pull"
    if buttons.get("colab_url"):
        urls["Colab"] = f"{buttons['colab_url'].rstrip('/')}/github/{org_repo}/blob/{branch}/{notebook}"
    return urls


@pytest.mark.slow
def test_every_lecture_page_has_its_launch_buttons(site, browsed):
    """Binder, JupyterHub and Colab (those configured) on each lecture page, in a visible menu,
    each opening this lecture's notebook of the course repository."""
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    repo_url, branch = config["repository"]["url"].rstrip("/"), config["repository"]["branch"]
    lectures = sorted((REPO / "lectures").glob("*.ipynb"))
    assert len(_launch_urls("x")) == 3, "_config.yml no longer asks for Binder, JupyterHub and Colab"
    problems = []
    for nb in lectures:
        notebook = nb.relative_to(REPO).as_posix()
        report = _report(browsed, site, f"lectures/{nb.stem}.html")
        hrefs = [url for _, url in report.links]
        if not report.launch_menu_visible:
            problems.append(f"{nb.stem}: the launch menu is not on screen")
        for service, expected in _launch_urls(notebook).items():
            if service == "JupyterHub":  # nbgitpuller: the repository, its branch and the notebook in the clone
                found = [parse_qs(urlsplit(h).query) for h in hrefs if h.startswith(expected + "?")]
                wanted = {"repo": [repo_url], "branch": [branch],
                          "urlpath": [f"lab/tree/{urlsplit(repo_url).path.rsplit('/', 1)[-1]}/{notebook}"]}
                ok = any({k: q.get(k) for k in wanted} == wanted for q in found)
            else:
                ok = expected in hrefs
            if not ok:
                problems.append(f"{nb.stem}: no {service} button to {expected}")
    assert not problems, "launch buttons missing:\n" + "\n".join(problems)


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
def test_site_leaks_no_solution_or_hidden_test(site, browsed, exercise):
    """No solution or hidden-test line in any file of the site, nor in the text Chromium shows
    (collapsed cells and text that scripts add included)."""
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
    for report in browsed:
        leaks += [f"{report.path.relative_to(site)} (in Chromium): {s}" for s in secrets if s in report.text]
    assert not leaks, "solution or hidden-test lines on the site:\n" + "\n".join(leaks[:20])
