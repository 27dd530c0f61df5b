"""``mlpp hls synth``: C synthesis with AMD Vitis HLS (or Vivado HLS), when it is installed.

Synthesis turns the hls4ml project into RTL and reports the real latency, initiation interval and
resources (what :mod:`mlpp.hls.estimate` can only estimate). It needs the vendor tool on ``PATH``;
without it :func:`require_tool` raises :class:`ToolMissing` with a one-line message saying what
to install, and the command exits with status 3. The parsed report has the same keys as the
estimates (``lut``, ``ff``, ``dsp``, ``bram_18k``, ``latency_cycles``, ``ii_cycles``, percentages of
the part) and is written to ``hls/build/<name>/synth.json``.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from mlpp.hls.config import HLSConfig

TOOLS = {"Vitis": ("vitis_hls", "vivado_hls"), "Vivado": ("vivado_hls", "vitis_hls")}
INSTALL_HINT = ("install AMD Vitis HLS (2023.2 or newer; free 'Vitis Unified Software Platform' download from "
                "amd.com, with a licence for your part) and 'source <install>/settings64.sh' so that vitis_hls "
                "is on PATH; without it use 'mlpp hls convert' for estimates")


class ToolMissing(RuntimeError):
    """Neither vitis_hls nor vivado_hls is on PATH."""


def require_tool(backend: str = "Vitis") -> str:
    """The name of the HLS tool to use for ``backend``; raises :class:`ToolMissing` if none is on PATH."""
    for tool in TOOLS.get(backend, TOOLS["Vitis"]):
        if shutil.which(tool):
            return tool
    raise ToolMissing(f"mlpp hls synth: neither vitis_hls nor vivado_hls is on PATH: {INSTALL_HINT}")


def run(config: HLSConfig, build_dir: str | Path | None = None, log=print) -> dict:
    """Convert (as ``mlpp hls convert`` does), run C synthesis, parse and write ``synth.json``."""
    tool = require_tool(config.backend)
    from mlpp.hls.config import resolve_source
    from mlpp.hls.convert import convert, hls_config_for

    folder = Path(build_dir) if build_dir else config.build_dir
    folder.mkdir(parents=True, exist_ok=True)
    deployable = resolve_source(config.source)(config.tier)
    hls_config, _ = hls_config_for(deployable.model, config, deployable.bit_exact)
    hls_model = convert(deployable.model, config, folder / "project", deployable.bit_exact, hls_config)
    log(f"[{config.name}] C synthesis with {tool} (minutes to hours)")
    started = time.perf_counter()
    hls_model.build(csim=False, synth=True, cosim=False, export=False, vsynth=False)
    report = parse_csynth(folder / "project", config)
    report.update(tool=tool, seconds=round(time.perf_counter() - started, 1))
    (folder / "synth.json").write_text(json.dumps(report, indent=1, sort_keys=True))
    log(f"[{config.name}] wrote {folder / 'synth.json'}")
    return report


def parse_csynth(project_dir: str | Path, config: HLSConfig) -> dict:
    """The C-synthesis report of an hls4ml project in the format of the estimates."""
    from hls4ml.report import parse_vivado_report

    from mlpp.hls.estimate import PARTS

    raw = parse_vivado_report(str(project_dir)) or {}
    csynth = raw.get("CSynthesisReport")
    if not csynth:
        raise RuntimeError(f"no C-synthesis report under {project_dir}: did synthesis fail? see its vitis_hls.log")
    out = {"lut": float(csynth["LUT"]), "ff": float(csynth["FF"]), "dsp": float(csynth["DSP"]),
           "bram_18k": float(csynth["BRAM_18K"]), "latency_cycles": float(csynth["WorstLatency"]),
           "ii_cycles": float(csynth["IntervalMax"]),
           "estimated_clock_ns": float(csynth["EstimatedClockPeriod"])}
    out["latency_ns"] = out["latency_cycles"] * config.clock_period
    device = PARTS[config.part]
    for key in ("lut", "ff", "dsp", "bram_18k"):
        out[f"{key}_percent"] = round(100.0 * out[key] / device[key], 3)
    return out
