"""The ``mlpp`` command: one entry point, one subcommand per job.

    mlpp data generate top --tier fast     generate (or verify) a dataset
    mlpp data list                         cards and what is cached
    mlpp grade SUBMISSION.ipynb --exercise 01_nn_recap
    mlpp release                           regenerate exercises/ from solutions/

Each subcommand lives in the module that does the work and registers itself here
through a ``register(subparsers)`` function.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# (module, what it adds); a module that fails to import is reported, never silently dropped.
SUBCOMMANDS = ("mlpp.data.cli", "mlpp.grading", "mlpp.release", "mlpp.hls.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlpp",
        description="Machine Learning in Particle Physics: course data, grading and releases.",
        epilog="Run 'mlpp COMMAND --help' for the options of one command.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
