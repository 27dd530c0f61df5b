"""Sphinx extension: Jupyter Book's execution cache, one per tier, and pages that follow the lectures.

With ``execute_notebooks: cache`` myst-nb keeps each executed notebook in a jupyter-cache and
reuses it while the notebook's code cells are unchanged (markdown edits do not count). The
cache matches code only, so it cannot tell a fast-tier run from a full-tier one: this
extension gives each tier its own cache folder, ``<cache>/<tier>`` (by default
``_build/.jupyter_cache/fast`` and ``_build/.jupyter_cache/full``). The folder is a Sphinx
configuration value that rebuilds the environment, so switching ``MLPP_TIER`` also makes Sphinx
read every page again instead of keeping the other tier's pages.

Pages named in ``mlpp_summary_pages`` (the landscape page, which loads the scores the lectures
record) are executed every time they are read (never from the cache) and are read again
whenever another notebook is about to be executed rather than taken from the cache, so they
show what the lectures recorded in this build.

A notebook that raised is read (and executed) again by the next build, so that the build
keeps failing until it is fixed.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.environment import BuildEnvironment

from mlpp import settings


def tier_cache_path(base: str | Path, tier: str) -> Path:
    """The jupyter-cache folder of ``tier`` under the configured (or default) cache folder ``base``."""
    return Path(base) / settings.tier(tier)


def _key_cache_on_tier(app: Sphinx, config: Config) -> None:
    base = config.nb_execution_cache_path
    if base:
        base = Path(app.confdir, base)  # a relative `execute.cache` is relative to the book
    else:
        base = Path(app.outdir).parent / ".jupyter_cache"  # myst-nb's own default
    config.nb_execution_cache_path = str(tier_cache_path(base, settings.tier()).resolve())


def _is_notebook(env: BuildEnvironment, docname: str) -> bool:
    return Path(env.doc2path(docname)).suffix == ".ipynb"


def failed_notebooks(env: BuildEnvironment) -> list[str]:
    """Pages whose notebook raised when it last ran (myst-nb's execution record in the environment)."""
    records = getattr(env, "nb_metadata", {})
    return sorted(doc for doc, data in records.items()
                  if doc in env.found_docs and (data.get("exec_data") or {}).get("succeeded") is False)


def will_execute(cache_path: str | Path, notebook: str | Path) -> bool:
    """True if ``notebook``'s code has no executed match in the jupyter-cache at ``cache_path``."""
    import nbformat
    from jupyter_cache import get_cache

    try:
        get_cache(str(cache_path)).match_cache_notebook(nbformat.read(notebook, as_version=4))
    except KeyError:
        return True
    return False


def _outdated(app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str],
              removed: set[str]) -> list[str]:
    # Sphinx re-reads only changed sources: without this, a second `make book` would pass
    # with a lecture that raised in the first one (and -W would not see it again).
    extra = set(failed_notebooks(env))
    summaries = set(app.config.mlpp_summary_pages) & set(env.found_docs)
    # A summary page runs again only when a notebook will really run (new code, new tier, a
    # failure), not when a lecture's markdown changed: in the full tier it takes minutes.
    cache = app.config.nb_execution_cache_path
    if any(_is_notebook(env, doc) and will_execute(cache, env.doc2path(doc))
           for doc in (added | changed | extra) - summaries):
        extra |= summaries
    return sorted(extra)


def _force_summary_execution(app: Sphinx, docname: str, source: list[str]) -> None:
    # myst-nb reads a notebook's own "mystnb" metadata as per-page configuration.
    if docname in app.config.mlpp_summary_pages and _is_notebook(app.env, docname):
        nb = json.loads(source[0])
        nb.setdefault("metadata", {}).setdefault("mystnb", {})["execution_mode"] = "force"
        source[0] = json.dumps(nb)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("mlpp_summary_pages", [], "env", list)
    # Before myst-nb copies its configuration (builder-inited) and before the environment
    # compares configurations, so that a change of tier counts as a change of configuration.
    app.connect("config-inited", _key_cache_on_tier)
    app.connect("env-get-outdated", _outdated)
    app.connect("source-read", _force_summary_execution)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
