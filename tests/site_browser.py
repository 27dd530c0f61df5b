"""Headless Chromium for the site tests: built pages opened from file:// with the network cut off.

Debian's ``chromium`` (``apt-get install chromium``; ``.ci/run`` installs it) driven by
playwright (pinned in pyproject.toml). Every request that is not for a local file is aborted
and recorded, so a page that needs a CDN shows it.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

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
    blocked: list[str] = field(default_factory=list)  # non-file requests the page tried


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


def math_report(browser, html: Path, timeout_ms: int = 30_000) -> MathReport:
    """Open ``html`` from file:// with every other request aborted and report how its math rendered."""
    context = browser.new_context()
    blocked: list[str] = []

    def route(request_route) -> None:
        url = request_route.request.url
        if url.startswith(("file:", "data:", "blob:", "about:")):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    try:
        context.route("**/*", route)
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        page.goto(html.resolve().as_uri(), wait_until="load")
        found = page.evaluate(_INSPECT_MATH)
    finally:
        context.close()
    return MathReport(page=html.name, blocked=blocked, **found)
