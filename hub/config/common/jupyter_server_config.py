"""Jupyter server settings of every user on the course hub: the user's own view of the course data.

The datasets are shared and read-only (`$MLPP_HUB_SHARED_DATA`), but lectures also write there:
Lectures 2, 3, 5 and 6 record their taggers' scores under `$MLPP_DATA/scores` for the landscape page. So
each user gets `~/.cache/mlpp-data`: a link to every shared file and folder, and a `scores/` of
their own; `MLPP_DATA` points there for the server and every kernel and terminal it starts.
This file runs as the user when their server starts (JUPYTER_CONFIG_PATH, set by the hub).
"""
import os
from pathlib import Path

c = get_config()  # noqa: F821 (provided by traitlets)


def data_view(shared: Path, view: Path) -> Path:
    """Make ``view`` hold links to everything in ``shared`` and a writable ``scores/``; returns it."""
    view.mkdir(parents=True, exist_ok=True)
    (view / "scores").mkdir(exist_ok=True)
    for entry in shared.iterdir():
        if entry.name.startswith(".") or entry.name == "scores":
            continue
        link = view / entry.name
        if link.is_symlink() and os.readlink(link) == str(entry):
            continue
        if link.is_symlink() or link.is_file():  # a stale link, or a copy the user made: the shared one wins
            link.unlink()
        elif link.exists():  # a folder of the user's own: left alone
            continue
        link.symlink_to(entry)
    return view


_shared = os.environ.get("MLPP_HUB_SHARED_DATA", "")
if _shared and Path(_shared).is_dir():
    os.environ["MLPP_DATA"] = str(data_view(Path(_shared), Path.home() / ".cache" / "mlpp-data"))
