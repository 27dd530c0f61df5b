"""Sphinx extension: pages that load without console errors (found by tests/test_book.py in Chromium).

Two errors appeared on every page of the site:

- ``Identifier 'THEBE_JS_URL' has already been declared``: sphinx-thebe's inline configuration
  script (``const THEBE_JS_URL = ...``) reaches the page twice (so does togglebutton's), once
  with no file name (None) and once with an empty one, so Sphinx's own duplicate check misses it,
  and the second ``const`` throws. Each page keeps the first copy of such a script.
- ``Got invalid theme mode: . Resetting to auto.``: pydata-sphinx-theme starts from the template
  variable ``default_mode``, which nothing sets under Jupyter Book, so the mode is an empty string.
  It is set to the theme's own default, ``auto`` (light or dark as the reader's system says).
"""
from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def _script_key(script: Any) -> tuple:
    """Scripts are the same when their file (None and "" alike) and their attributes (an inline
    body among them) are."""
    return (getattr(script, "filename", str(script)) or "",
            tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items())))


def _fix_page(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    scripts = context.get("script_files")
    if scripts:
        seen, unique = set(), []
        for script in scripts:
            key = _script_key(script)
            if key not in seen:
                seen.add(key)
                unique.append(script)
        context["script_files"] = unique
    if not context.get("default_mode"):
        context["default_mode"] = "auto"


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("html-page-context", _fix_page)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
