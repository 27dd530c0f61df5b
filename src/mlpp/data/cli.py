"""``mlpp data``: generate, list and verify the course datasets."""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from mlpp import settings


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="generate, list and verify datasets",
                                 description="Generate, list and verify the course datasets (datasets/*.yml).")
    sub = data.add_subparsers(dest="data_command", metavar="ACTION")

    gen = sub.add_parser(
        "generate", help="generate datasets into the cache",
        description="Run Pythia 8 + detector + FastJet for the named cards and write "
                    "$MLPP_DATA/<card>-<tier>.h5 (default datasets/cache). A verified file is reused.",
        epilog="examples:\n  mlpp data generate --all --tier fast\n  mlpp data generate top --workers 8\n"
               "  mlpp data generate --needed --tier full\n"
               "  mlpp data generate top --tier full --scheduler tcp://scheduler:8786",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    gen.add_argument("names", nargs="*", metavar="CARD", help="card names (see 'mlpp data list')")
    gen.add_argument("--all", action="store_true", help="every card in datasets/")
    gen.add_argument("--needed", action="store_true",
                     help="the cards that lectures/ and solutions/ load (what 'make data' generates)")
    gen.add_argument("--tier", choices=settings.TIERS, default=None, help="sizes to generate (default: $MLPP_TIER or full)")
    gen.add_argument("--workers", type=int, default=None, help="local worker processes (default: all cores, at most 8)")
    gen.add_argument("--scheduler", metavar="ADDRESS", default=None,
                     help="run the chunks on an existing Dask cluster instead of local processes")
    gen.add_argument("--force", action="store_true", help="regenerate even if a verified file exists")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=_generate)

    lst = sub.add_parser("list", help="cards, sizes and cache status")
    lst.set_defaults(func=_list)

    ver = sub.add_parser("verify", help="check every cached file against its sha256")
    ver.set_defaults(func=_verify)
    data.set_defaults(func=lambda args: data.print_help() or 2)


def _generate(args: argparse.Namespace) -> int:
    from mlpp.data import CardError, available, build

    names = available() if args.all else list(args.names)
    if args.needed:
        names += [n for n in needed_cards() if n not in names]
    if not names:
        print("mlpp data generate: name one or more cards, or pass --all (cards: " + ", ".join(available()) + ")",
              file=sys.stderr)
        return 2
    # A SIGTERM (a job scheduler, `kill`, a closing session) ends the build like Ctrl-C does:
    # the workers stop and the finished chunks stay on disk for the next run.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    for name in names:
        try:
            build(name, args.tier, workers=args.workers, scheduler=args.scheduler, force=args.force, quiet=args.quiet)
        except (CardError, ValueError, RuntimeError) as err:
            print(f"mlpp data generate: {err}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print(f"mlpp data generate: interrupted while generating {name}; its finished chunks are kept: "
                  "run the same command again to resume", file=sys.stderr)
            return 130
        print(f"{name}: ok")
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def needed_cards(folders: tuple[str, ...] = ("lectures", "solutions")) -> list[str]:
    """Cards that the course notebooks load, found by reading their ``data.load("NAME"...)`` calls
    and their ``from mlpp.tasks import THREAD`` imports, or ``from mlpp.tasks.THREAD import ...``
    and ``import mlpp.tasks.THREAD`` (a thread names its cards in ``CARD``/``CARDS``, and in
    ``CALL_CARDS`` the cards that one of its functions loads: those count where a notebook calls it)."""
    import json

    from mlpp.data import available

    found: set[str] = set()
    for folder in folders:
        for notebook in sorted((settings.repo_root() / folder).rglob("*.ipynb")):
            cells = json.loads(notebook.read_text()).get("cells", [])
            sources = (cell.get("source", "") for cell in cells)
            found |= _notebook_cards("\n".join(s if isinstance(s, str) else "".join(s) for s in sources))
    return sorted(found & set(available()))


_LOAD = r"""(?:data\.)?load\(\s*["']([A-Za-z0-9_]+)["']"""
_FROM_TASKS = r"from\s+mlpp\.tasks\s+import\s+([A-Za-z0-9_, ]+)"
_IMPORT_THREAD = r"import\s+mlpp\.tasks\.([A-Za-z0-9_]+)(?:\s+as\s+([A-Za-z0-9_]+))?"
_FROM_THREAD = r"from\s+mlpp\.tasks\.([A-Za-z0-9_]+)\s+import\s+([A-Za-z0-9_, ]+)"


def _notebook_cards(text: str) -> set[str]:
    """The cards that one notebook's code (all its cells, joined) loads; see :func:`needed_cards`."""
    import re

    found = set(re.findall(_LOAD, text))
    calls: dict[str, set[str]] = {}  # thread -> how the notebook calls its functions ("top.", "t.", "")
    imported: dict[str, set[str]] = {}  # thread -> its functions imported by name (maybe renamed)
    for names in re.findall(_FROM_TASKS, text):
        for name in names.split(","):
            thread, _, alias = (part.strip() for part in name.partition(" as "))
            calls.setdefault(thread, set()).add(f"{alias or thread}.")
    for thread, alias in re.findall(_IMPORT_THREAD, text):
        calls.setdefault(thread, set()).add(f"{alias}." if alias else f"mlpp.tasks.{thread}.")
    for thread, names in re.findall(_FROM_THREAD, text):
        calls.setdefault(thread, set()).add("")
        imported.setdefault(thread, set()).update(name.partition(" as ")[0].strip() for name in names.split(","))
    for thread, prefixes in calls.items():
        module = _thread_module(thread)
        if module is None:
            continue
        found.update(getattr(module, "CARDS", None) or [getattr(module, "CARD", thread)])
        for function, card in getattr(module, "CALL_CARDS", {}).items():
            # a call through one of the thread's names, not another thread's function of the same name
            called = any(re.search(rf"(?<![\w.]){re.escape(prefix + function)}\s*\(", text) for prefix in prefixes)
            if called or function in imported.get(thread, ()):
                found.add(card)
    return found


def _thread_module(name: str):
    """The data thread ``mlpp.tasks.<name>``, or ``None`` if there is no such thread."""
    import importlib

    try:
        return importlib.import_module(f"mlpp.tasks.{name}")
    except ImportError:
        return None


def _list(args: argparse.Namespace) -> int:
    from mlpp.data import CardError, available, dataset_path, load_card

    rows, bad = [], 0
    for name in available():
        try:
            card = load_card(name)
        except CardError as err:  # one broken card should not hide the others
            print(f"mlpp data list: {err}", file=sys.stderr)
            bad += 1
            continue
        cached = [t for t in settings.TIERS if dataset_path(name, t).exists()]
        sizes = {t: "/".join(dict.fromkeys(str(card.n_per_class(t, ci)) for ci in range(len(card.classes))))
                 for t in ("fast", "full")}
        classes = "- (tracker hits)" if card.is_tracks else ",".join(card.class_names)
        rows.append((name, classes, sizes["fast"], sizes["full"], " ".join(cached) or "-", card.title))
    # Columns as wide as their longest entry, so long card names and sizes stay aligned.
    header = ("card", "classes", "fast", "full", "cached", "")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        print(f"{row[0]:{widths[0]}} {row[1]:{widths[1]}} {row[2]:>{widths[2]}} {row[3]:>{widths[3]}}  "
              f"{row[4]:{widths[4]}}  {row[5]}".rstrip())
    print(f"(jets per class, events per class for an event or paired card, events for a tracks card; "
          f"cache: {settings.cache_dir()})")
    return 1 if bad else 0


def _verify(args: argparse.Namespace) -> int:
    from mlpp.data import CorruptCacheError
    from mlpp.data.build import rebuild_hint
    from mlpp.data.cache import verify

    bad = 0
    for path in sorted(settings.cache_dir().glob("*.h5")):
        name, _, tier = path.stem.rpartition("-")
        try:
            verify(path, rebuild_hint(name, tier))
            print(f"ok       {path.name}")
        except CorruptCacheError as err:
            bad += 1
            print(f"CORRUPT  {err}")
    return 1 if bad else 0
