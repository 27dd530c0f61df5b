"""Headless Chromium for the site tests: built pages opened from file:// with the network cut off.

Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it) driven by
playwright (pinned in pyproject.toml). Every request that is not for a local file is aborted
and recorded, so a page that needs a CDN shows it. ``inspect_page`` opens one page and reports
what the tests judge: its math, console errors, failed local loads, broken images, links, anchors
and text; ``link_problems`` checks the links of a set of pages against each other.
"""
from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]

# Runs in the page once it has loaded: waits for MathJax's first typesetting, then inspects
# every element that Sphinx/myst-nb mark as math (inline \(..\), display \[..\], LaTeX outputs).
_INSPECT_MATH = """async () => {
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) { await mj.startup.promise; }
  const maths = [...document.querySelectorAll('.math')];
  const raw = maths.filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.trim().slice(0, 80));
  // Prose outside code: TeX delimiters left there mean math that nothing typeset.
  const main = (document.querySelector('main') || document.body).cloneNode(true);
  main.querySelectorAll('pre, code, script, style, .highlight, mjx-container, .math').forEach(e => e.remove());
  const prose = main.textContent;
  const leftovers = ['$$', '\\\\(', '\\\\[', '\\\\begin{'].filter(d => prose.includes(d));
  return {
    version: mj && mj.version ? mj.version : null,
    scripts: [...document.scripts].map(s => s.src).filter(s => s.toLowerCase().includes('mathjax')),
    math: maths.length,
    rendered: document.querySelectorAll('mjx-container').length,
    raw: raw,
    errors: [...document.querySelectorAll('mjx-merror')].map(e => e.getAttribute('data-mjx-error') || e.textContent),
    leftovers: leftovers,
  };
}"""


# Runs in the page after the math: loads every image (lazy ones too) and lists what the page
# shows and points at. textContent, not innerText: collapsed cells (hide-input) count as text.
_INSPECT_PAGE = """async () => {
  const images = [...document.images];
  images.forEach(img => { img.loading = 'eager'; });
  await Promise.all(images.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener('load', done); img.addEventListener('error', done); setTimeout(done, 10000);
  })));
  const broken = images.filter(img => !img.complete || (img.naturalWidth === 0 && !/\\.svg([?#]|$)/i.test(img.src)))
                       .map(img => img.getAttribute('src'));
  return {
    broken_images: broken,
    image_sources: images.map(img => img.src),
    links: [...document.querySelectorAll('a[href]')].map(a => [a.getAttribute('href'), a.href]),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id)
           .concat([...document.querySelectorAll('a[name]')].map(a => a.name)),
    text: document.body.textContent,
    launch_menu_visible: (() => {
      const toggle = document.querySelector('.dropdown-launch-buttons .dropdown-toggle');
      return !!toggle && toggle.offsetParent !== null && toggle.getBoundingClientRect().width > 0;
    })(),
  };
}"""


@dataclass
class MathReport:
    """What MathJax did on one page."""

    page: str
    version: str | None
    scripts: list[str]
    math: int                      # elements marked as math by Sphinx
    rendered: int                  # mjx-container elements MathJax produced
    raw: list[str]                 # math elements left as TeX source
    errors: list[str]              # MathJax's own error boxes (unknown macro, ...)
    leftovers: list[str]           # TeX delimiters in prose outside code

    def problems(self, site: Path) -> list[str]:
        """Why this page's math is not rendered offline (empty when it is)."""
        found = []
        if self.math and not (self.scripts and all(src.startswith(site.resolve().as_uri()) for src in self.scripts)):
            found.append(f"MathJax not loaded from the site itself: {self.scripts}")
        if self.rendered < self.math or self.raw:
            found.append(f"{self.math - self.rendered} of {self.math} formulas not typeset, e.g. {self.raw[:3]}")
        found += [f"MathJax error: {e}" for e in self.errors]
        found += [f"TeX delimiter {d} left in the prose" for d in self.leftovers]
        return found


@dataclass
class PageReport:
    """One page as headless Chromium saw it, offline."""

    path: Path
    math: MathReport
    blocked: list[str]             # non-file requests the page tried (aborted)
    console_errors: list[str]      # console.error messages and uncaught exceptions
    failed_loads: list[str]        # local files the page asked for and did not get
    broken_images: list[str]       # <img> that did not load or decode
    image_sources: list[str]       # absolute URLs of every <img>
    links: list[tuple[str, str]]   # (href as written, href resolved against the page)
    ids: set[str]                  # anchors on the page
    text: str                      # all text, collapsed cells included
    launch_menu_visible: bool      # the theme's launch (rocket) menu is on screen


def chromium_path() -> str:
    """Debian's chromium, or an error that says how to install it."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("chromium is not installed: run 'apt-get update && apt-get install -y chromium' "
                           "(as root; .ci/run does this)")
    return path


@contextmanager
def offline_browser() -> Iterator[object]:
    """A headless Chromium browser (a playwright ``Browser``) for the duration of the block."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


_REDIRECT = re.compile(r'<meta http-equiv="refresh" content="\d+;\s*url=([^"]+)"', re.IGNORECASE)


def site_pages(site: Path) -> list[Path]:
    """The pages of a built site: its .html files outside the theme's ``_static`` and ``_sources``."""
    return sorted(p for p in site.rglob("*.html") if not {"_static", "_sources"} & set(p.relative_to(site).parts))


def inspect_page(browser, html: Path, timeout_ms: int = 30_000) -> PageReport:
    """Open ``html`` from file:// with every other request aborted and report what it shows.
    A redirect page (``index.html``) is not opened: its target is reported as its one link."""
    redirect = _REDIRECT.search(html.read_text(errors="ignore"))
    if redirect:
        target = (html.parent / redirect.group(1)).resolve().as_uri()
        return PageReport(path=html, math=MathReport(html.name, None, [], 0, 0, [], [], []), blocked=[],
                          console_errors=[], failed_loads=[], broken_images=[], image_sources=[],
                          links=[(redirect.group(1), target)], ids=set(), text="", launch_menu_visible=False)
    context = browser.new_context()
    blocked: list[str] = []
    console: list[str] = []
    failed: list[str] = []

    def route(request_route) -> None:
        url = request_route.request.url
        if url.startswith(("file:", "data:", "blob:", "about:")):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    def on_failed(request) -> None:
        if request.url.startswith("file:"):
            failed.append(f"{request.url} ({request.failure})")

    def on_console(message) -> None:
        # An aborted non-file request logs "Failed to load resource"; it is reported in `blocked`.
        if message.type == "error" and not (message.text.startswith("Failed to load resource")
                                            and not message.location.get("url", "").startswith("file:")):
            console.append(f"{message.text} ({message.location.get('url', '')}:{message.location.get('lineNumber')})")

    try:
        context.route("**/*", route)
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        page.on("console", on_console)
        page.on("pageerror", lambda error: console.append(f"uncaught: {error}"))
        page.on("requestfailed", on_failed)
        page.goto(html.resolve().as_uri(), wait_until="load")
        math = page.evaluate(_INSPECT_MATH)
        found = page.evaluate(_INSPECT_PAGE)
    finally:
        context.close()
    return PageReport(path=html, math=MathReport(page=html.name, **math), blocked=blocked, console_errors=console,
                      failed_loads=failed, broken_images=found["broken_images"],
                      image_sources=found["image_sources"], links=[tuple(link) for link in found["links"]],
                      ids=set(found["ids"]), text=found["text"], launch_menu_visible=found["launch_menu_visible"])


# External links are not fetched (the build machines are offline) but must be well-formed.
_EXTERNAL_SCHEMES = {"http", "https", "mailto"}


_HOST = re.compile(r"^(localhost|([a-z0-9-]+\.)+[a-z0-9-]+)$")


def _external_problem(written: str, resolved: str) -> str | None:
    """Why an http(s) or mailto link is not a well-formed address (None when it is)."""
    if any(ch.isspace() for ch in written.strip()):
        return "white space in the address"
    parts = urlsplit(resolved)
    if parts.scheme == "mailto":
        return None if "@" in parts.path else "mailto without an address"
    if not _HOST.match(parts.hostname or ""):
        return f"no valid host name in {resolved!r}"
    return None


def link_problems(reports: Iterable[PageReport], site: Path) -> list[str]:
    """Links of ``reports`` that go nowhere: missing local files, missing anchors (checked against
    the ids of the inspected pages), external addresses that are not well-formed, other schemes."""
    site = site.resolve()
    ids = {report.path.resolve(): report.ids for report in reports}
    problems = []
    for report in reports:
        where = report.path.resolve().relative_to(site)
        for written, resolved in report.links:
            parts = urlsplit(resolved)
            if parts.scheme == "file":
                target = Path(unquote(parts.path))
                if target.is_dir():
                    target = target / "index.html"
                if not target.is_file():
                    problems.append(f"{where}: {written!r} points at a missing file")
                elif parts.fragment and target in ids and unquote(parts.fragment) not in ids[target]:
                    problems.append(f"{where}: {written!r}: no anchor #{unquote(parts.fragment)} on that page")
            elif parts.scheme in _EXTERNAL_SCHEMES:
                why = _external_problem(written, resolved)
                if why:
                    problems.append(f"{where}: {written!r}: {why}")
            else:
                problems.append(f"{where}: {written!r}: a {parts.scheme or 'relative'} link")
    return problems
