"""``mlpp hls``: deploy the course's models to FPGA firmware with hls4ml.

    mlpp hls convert hls/configs/jets5_mlp_hgq.yml      project, g++ emulation, agreement, estimates
    mlpp hls synth hls/configs/jets5_mlp_hgq.yml        C synthesis (needs vitis_hls or vivado_hls)
    mlpp hls warmup                                     compile da4ml's numba kernels once
"""
from __future__ import annotations

import argparse
import sys

from mlpp import settings

EXAMPLES = """examples:
  mlpp hls convert hls/configs/jets5_mlp_hgq.yml
  mlpp hls convert hls/configs/*.yml --tier full
  mlpp hls convert hls/configs/vae_encoder.yml --estimators hls4ml,da4ml
  mlpp hls synth hls/configs/jets5_mlp_ptq.yml

The configuration format is described in hls/README.md (and mlpp.hls.config)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    hls = subparsers.add_parser("hls", help="convert models to FPGA firmware with hls4ml",
                                description="Deploy the course's models with hls4ml: one YAML file per model "
                                            "in hls/configs/, results in hls/build/<name>/.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = hls.add_subparsers(dest="hls_command", metavar="ACTION")

    conv = sub.add_parser(
        "convert", help="convert, compile the C++ emulation, check agreement, estimate resources",
        description="Build the model named by each CONFIG (training it, seeded, on first use; weights are "
                    "cached), convert it with hls4ml into hls/build/<name>/project/, compile the C++ emulation "
                    "with g++, compare it with the Keras model on the test jets (HGQ2 models must agree bit for "
                    "bit), run the estimators (hls4ml's rules, da4ml, rule4ml) and write report.json and "
                    "report.md. Exit status 1 if a check fails, 2 for an invalid configuration.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    conv.add_argument("configs", nargs="+", metavar="CONFIG", help="YAML configuration file(s)")
    conv.add_argument("--tier", choices=settings.TIERS, default=None,
                      help="data and training size (default: the file's model.tier, else $MLPP_TIER)")
    conv.add_argument("--build-dir", default=None, metavar="DIR",
                      help="write here instead of hls/build/<name>/ (one CONFIG only)")
    conv.add_argument("--estimators", default="hls4ml,da4ml,rule4ml", metavar="LIST",
                      help="comma-separated subset of hls4ml,da4ml,rule4ml (default: all)")
    conv.add_argument("--quiet", action="store_true", help="print only errors")
    conv.set_defaults(func=_convert)

    syn = sub.add_parser(
        "synth", help="run C synthesis (needs vitis_hls or vivado_hls on PATH)",
        description="Convert as 'convert' does, then run C synthesis with Vitis HLS (or Vivado HLS) and write "
                    "hls/build/<name>/synth.json with the synthesised latency, II and resources. Without the "
                    "tool on PATH it exits with status 3 and says what to install.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    syn.add_argument("config", metavar="CONFIG", help="YAML configuration file")
    syn.add_argument("--tier", choices=settings.TIERS, default=None, help="data and training size")
    syn.add_argument("--build-dir", default=None, metavar="DIR", help="write here instead of hls/build/<name>/")
    syn.set_defaults(func=_synth)

    warm = sub.add_parser("warmup", help="compile da4ml's numba kernels once (about 95 s of CPU)",
                          description="da4ml compiles its solver with numba on first use (about 95 s of CPU and "
                                      "1.7 GB); until then 'convert' runs it as plain Python (slower). Run this "
                                      "once after installing.")
    warm.set_defaults(func=_warmup)
    hls.set_defaults(func=lambda args: hls.print_help() or 2)


def _convert(args: argparse.Namespace) -> int:
    from mlpp.hls.config import ConfigError, load_config
    from mlpp.hls.convert import AgreementError, run

    tools = tuple(t.strip() for t in args.estimators.split(",") if t.strip())
    unknown = set(tools) - {"hls4ml", "da4ml", "rule4ml"}
    if unknown:
        print(f"mlpp hls convert: unknown estimator {sorted(unknown)[0]!r}; use hls4ml, da4ml, rule4ml", file=sys.stderr)
        return 2
    if args.build_dir and len(args.configs) > 1:
        print("mlpp hls convert: --build-dir needs exactly one CONFIG", file=sys.stderr)
        return 2
    try:
        configs = [load_config(path, tier=args.tier) for path in args.configs]
    except ConfigError as err:
        print(f"mlpp hls convert: {err}", file=sys.stderr)
        return 2
    status = 0
    for config in configs:
        try:
            report = run(config, args.build_dir, tools, log=(lambda *a: None) if args.quiet else print)
        except AgreementError as err:
            print(f"mlpp hls convert: {err}", file=sys.stderr)
            status = 1
            continue
        except KeyError as err:
            print(f"mlpp hls convert: {config.name}: {err.args[0]}", file=sys.stderr)
            return 2
        if not args.quiet:
            print((config.build_dir if not args.build_dir else args.build_dir), "->",
                  ", ".join(f"{k} {v:.4g}" for k, v in report["agreement"].items() if isinstance(v, float))[:200])
    return status


def _synth(args: argparse.Namespace) -> int:
    from mlpp.hls.config import ConfigError, load_config
    from mlpp.hls.synth import ToolMissing, require_tool, run

    try:
        config = load_config(args.config, tier=args.tier)
    except ConfigError as err:
        print(f"mlpp hls synth: {err}", file=sys.stderr)
        return 2
    try:
        require_tool(config.backend)
    except ToolMissing as err:
        print(str(err), file=sys.stderr)
        return 3
    report = run(config, args.build_dir)
    print(", ".join(f"{k} {v}" for k, v in report.items()))
    return 0


def _warmup(args: argparse.Namespace) -> int:
    from mlpp.hls.estimate import numba_cache_warm, warm_up

    if numba_cache_warm():
        print("da4ml's numba kernels are already compiled (cache is warm)")
        return 0
    print(f"compiled da4ml's numba kernels in {warm_up():.0f} s")
    return 0
