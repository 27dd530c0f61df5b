"""FPGA resources and latency without Vivado: three estimators that disagree, side by side.

- **hls4ml's own rules** (:func:`hls4ml_rules`), the cost model of its DSP-aware pruning
  (``hls4ml/optimization/dsp_aware_pruning/objectives/vivado_objectives.py``): one DSP per multiplication
  (divided by the reuse factor) when the weights have 9 bits or more, none below; BRAM only for the
  Resource strategy; a rough FF count. It ignores pruned (zero) weights and gives no LUTs or latency.
- **da4ml** (:func:`da4ml_estimate`): traces the network with its actual constant weights and bit
  widths into adders (distributed arithmetic, the multiplier-free design hls4ml generates with
  ``Strategy: distributed_arithmetic``) and counts their cost, about one LUT per adder bit, and the
  depth of the adder tree. Zero weights cost nothing. It models a *different* implementation from
  the DSP-based Latency strategy, so its DSP count is 0 by construction.
- **rule4ml** (:func:`rule4ml_estimate`): neural networks trained on thousands of hls4ml + Vivado
  syntheses predict LUT, FF, DSP, BRAM, latency and II from the architecture, one precision, the
  reuse factor and a board name (pynq-z2, zcu102, alveo-u200, alveo-u250). It cannot see pruning or
  per-weight bit widths.

Plus **EBOPs** (:func:`ebops`), HGQ2's resource surrogate: the sum over non-zero weights of
(input bits x weight bits), a quick number that tracks LUT + DSP use.

The da4ml trace runs in a subprocess (``python -m mlpp.hls.estimate --da4ml-worker DIR``): da4ml's
numba kernels take about 95 s of CPU and 1.7 GB to compile on first use, so when numba's cache of
them is cold the worker runs them as plain Python instead (about 15 s for the jet tagger) and the
main process never pays the compile; ``mlpp hls warmup`` fills the cache once.
"""
from __future__ import annotations

import argparse
import functools
import glob
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlpp.hls.fixed_point import FixedType, parse_type

# The parts the course knows: resources of the whole device (BRAM in 18 kb blocks, as HLS reports them).
PARTS: dict[str, dict] = {
    "xcvu13p-flga2577-2-e": {"family": "Virtex UltraScale+ VU13P (Vitis default)", "lut": 1728000, "ff": 3456000,
                             "dsp": 12288, "bram_18k": 5376, "rule4ml_board": "alveo-u250"},
    "xcvu9p-flga2104-2l-e": {"family": "Virtex UltraScale+ VU9P", "lut": 1182240, "ff": 2364480, "dsp": 6840,
                             "bram_18k": 4320, "rule4ml_board": "alveo-u200"},
    "xcku115-flvb2104-2-i": {"family": "Kintex UltraScale KU115 (the hls4ml paper's)", "lut": 663360,
                             "ff": 1326720, "dsp": 5520, "bram_18k": 4320, "rule4ml_board": None},
    "xcu250-figd2104-2l-e": {"family": "Alveo U250", "lut": 1728000, "ff": 3456000, "dsp": 12288,
                             "bram_18k": 5376, "rule4ml_board": "alveo-u250"},
    "xcu200-fsgd2104-2-e": {"family": "Alveo U200", "lut": 1182240, "ff": 2364480, "dsp": 6840, "bram_18k": 4320,
                            "rule4ml_board": "alveo-u200"},
    "xczu9eg-ffvb1156-2-e": {"family": "Zynq UltraScale+ ZU9EG (ZCU102)", "lut": 274080, "ff": 548160, "dsp": 2520,
                             "bram_18k": 1824, "rule4ml_board": "zcu102"},
    "xc7z020clg400-1": {"family": "Zynq-7000 Z-7020 (PYNQ-Z2)", "lut": 53200, "ff": 106400, "dsp": 220,
                        "bram_18k": 280, "rule4ml_board": "pynq-z2"},
}
DA4ML_OPTIONS = {"hard_dc": 2, "search_all_decompose_dc": False}  # hls4ml's DA pass uses hard_dc=2 too


@dataclass
class DenseSpec:
    """One Dense layer as the hardware sees it, independent of Keras and hls4ml.

    ``kernel`` (n_in, n_out) and ``bias`` (n_out,): the values the FPGA holds (already quantised).
    ``input_kif``: (3, n_in) ints ``(k, i, f)`` = (sign bit, integer bits without the sign, fractional
    bits) of each input; ``input_modes``: (rounding, overflow) that bring the incoming values to them.
    ``result_kif`` / ``relu_kif``: (3, n_out) quantisation of the sum and after the ReLU (None: exact).
    ``weight_bits`` (n_in, n_out) and ``bias_bits`` (n_out,): bits of each weight without its sign, as
    HGQ2 counts them (post-training quantisation: the type's width minus the sign bit, 0 if pruned).
    """

    name: str
    kernel: np.ndarray
    bias: np.ndarray
    input_kif: np.ndarray
    weight_bits: np.ndarray
    input_modes: tuple[str, str] = ("TRN", "WRAP")
    relu: bool = False
    result_kif: np.ndarray | None = None
    result_modes: tuple[str, str] = ("TRN", "WRAP")
    relu_kif: np.ndarray | None = None
    relu_modes: tuple[str, str] = ("TRN", "WRAP")
    bias_bits: np.ndarray | None = None


def kif_of(kind: FixedType | str, n: int) -> np.ndarray:
    """(3, n) ``(k, i, f)`` of a fixed-point type: ap_fixed<W,I> is k=1, i=I-1, f=W-I."""
    kind = parse_type(kind)
    k = 1 if kind.signed else 0
    return np.tile(np.array([[k], [kind.integer - k], [kind.width - kind.integer]]), (1, n))


# ----------------------------------------------------------------------------- layer specs
def specs_from_hls(hls_model) -> list[DenseSpec]:
    """The Dense layers of a (post-training-quantised) hls4ml model, with their types.

    Softmax and other non-Dense layers are skipped: their lookup tables are not estimated here.
    """
    specs: list[DenseSpec] = []
    incoming: FixedType | None = None
    for layer in hls_model.get_layers():
        kind = layer.class_name
        out_type = _fixed(layer.get_output_variable().type.precision)
        if kind == "Input":
            incoming = out_type
        elif kind == "Dense":
            weight, bias = layer.attributes["weight"], layer.attributes["bias"]
            w_type, b_type = _fixed(weight.type.precision), _fixed(bias.type.precision)
            kernel = w_type.quantize(np.asarray(weight.data, dtype=np.float64))
            bias_q = b_type.quantize(np.asarray(bias.data, dtype=np.float64))
            n_in, n_out = kernel.shape
            specs.append(DenseSpec(
                name=layer.name, kernel=kernel, bias=bias_q, input_kif=kif_of(incoming, n_in),
                weight_bits=np.where(kernel != 0, w_type.width - w_type.signed, 0),
                result_kif=kif_of(out_type, n_out), result_modes=(out_type.rounding, out_type.overflow),
                bias_bits=np.where(bias_q != 0, b_type.width - b_type.signed, 0)))
            incoming = out_type
        elif kind in ("Activation", "ReLU") and layer.get_attr("activation", "").lower() == "relu" and specs:
            specs[-1].relu = True
            specs[-1].relu_kif = kif_of(out_type, specs[-1].kernel.shape[1])
            specs[-1].relu_modes = (out_type.rounding, out_type.overflow)
            incoming = out_type
    return specs


def specs_from_hgq(model) -> list[DenseSpec]:
    """The QDense layers of an HGQ2 model: per-input and per-weight bit widths, quantised values."""
    import keras

    specs = []
    for layer in model.layers:
        if not hasattr(layer, "qkernel"):
            continue
        n_in, n_out = layer.kernel.shape
        q = layer.iq.quantizer
        kif = np.stack([np.asarray(keras.ops.convert_to_numpy(q.bw_mapper.bw_to_x(x, (1, n_in))))[0]
                        for x in q.kif]).astype(int)
        kernel = np.asarray(keras.ops.convert_to_numpy(layer.qkernel), dtype=np.float64)
        bias = np.asarray(keras.ops.convert_to_numpy(layer.qbias), dtype=np.float64)
        w_bits = np.asarray(keras.ops.convert_to_numpy(layer.kq.bits_(layer.kernel.shape)))
        b_bits = np.asarray(keras.ops.convert_to_numpy(layer.bq.bits_(layer.bias.shape)))
        specs.append(DenseSpec(
            name=layer.name, kernel=kernel, bias=bias, input_kif=kif, input_modes=(q.round_mode, q.overflow_mode),
            weight_bits=w_bits, relu=layer.activation is keras.activations.relu, bias_bits=b_bits))
    return specs


def _fixed(precision) -> FixedType:
    return parse_type(str(precision))


# ----------------------------------------------------------------------------- EBOPs
def ebops(specs: list[DenseSpec]) -> float:
    """Effective bit operations as HGQ2 defines them: the sum over weights of (input bits x weight
    bits), both without the sign bit, plus the mean bias bits times the number of outputs."""
    total = 0.0
    for spec in specs:
        input_bits = np.maximum(spec.input_kif[1] + spec.input_kif[2], 0)
        total += float((input_bits[:, None] * spec.weight_bits).sum())
        if spec.bias_bits is not None:
            total += float(np.mean(spec.bias_bits)) * spec.kernel.shape[1]
    return total


# ----------------------------------------------------------------------------- hls4ml's rules
def hls4ml_rules(hls_model, part: str | None = None) -> dict:
    """hls4ml's own resource model, summed over the Dense layers of a converted model.

    These are the formulas of hls4ml's DSP-aware pruning objectives
    (``hls4ml/optimization/dsp_aware_pruning/objectives/vivado_objectives.py``: ``VivadoDSPEstimator``,
    ``VivadoMultiObjectiveEstimator``, ``VivadoFFEstimator``), transcribed because that module imports
    QKeras, which the course does not install:

    - DSP = n_in * n_out // reuse factor if the weights have 9 bits or more, else 0;
    - BRAM (18 kb) = ceil(n_in * n_out * weight bits / (reuse factor * 36)) for the Resource strategy
      with reuse factor > 1, else 0;
    - FF = n_in * n_out * weight bits + n_out * output bits (io_parallel, Latency), n_out * output bits
      (io_parallel, Resource), n_in * n_out * weight bits (io_stream, Latency), 0 (io_stream, Resource).

    Zero (pruned) weights are counted like the others; no LUTs, no latency.
    """
    io_type = hls_model.config.get_config_value("IOType")
    per_layer, totals = {}, {"dsp": 0, "bram_18k": 0, "ff": 0}
    for layer in hls_model.get_layers():
        if layer.class_name != "Dense":
            continue
        n_in, n_out = int(layer.get_attr("n_in")), int(layer.get_attr("n_out"))
        reuse = int(layer.get_attr("reuse_factor", 1))
        resource = str(layer.get_attr("strategy", "Latency")).lower() == "resource"
        w_bits = _fixed(layer.attributes["weight"].type.precision).width
        out_bits = _fixed(layer.get_output_variable().type.precision).width
        entry = dense_rules(n_in, n_out, w_bits, out_bits, reuse, resource, io_type)
        per_layer[layer.name] = entry
        for key, value in entry.items():
            totals[key] += value
    return {**totals, **_percent(totals, part), "per_layer": per_layer,
            "note": "hls4ml's DSP-aware-pruning formulas: DSP = multiplications / reuse factor if weights have >= 9 "
                    "bits; pruned weights still counted; no LUT or latency model"}


def dense_rules(n_in: int, n_out: int, weight_bits: int, output_bits: int, reuse_factor: int = 1,
                resource: bool = False, io_type: str = "io_parallel") -> dict:
    """hls4ml's DSP, BRAM (18 kb) and FF formulas for one Dense layer (see :func:`hls4ml_rules`)."""
    n_weights = n_in * n_out
    dsp = n_weights // reuse_factor if weight_bits >= 9 else 0
    bram = math.ceil(n_weights * weight_bits / (reuse_factor * 36)) if resource and reuse_factor > 1 else 0
    if io_type == "io_stream":
        ff = 0 if resource else n_weights * weight_bits
    else:
        ff = n_out * output_bits + (0 if resource else n_weights * weight_bits)
    return {"dsp": int(dsp), "bram_18k": int(bram), "ff": int(ff)}


def _percent(values: dict, part: str | None) -> dict:
    if not part or part.lower() not in PARTS:
        return {}
    device = PARTS[part.lower()]
    return {f"{key}_percent": round(100.0 * values[key] / device[key], 3)
            for key in ("lut", "ff", "dsp", "bram_18k") if values.get(key) is not None and key in values}


# ----------------------------------------------------------------------------- rule4ml
def rule4ml_estimate(model, precision: str, reuse_factor: int = 1, strategy: str = "Latency",
                     board: str = "alveo-u250") -> dict:
    """rule4ml's predictions for ``model``'s architecture with one uniform ``precision``.

    ``model``: a Keras model of Dense layers (HGQ2 layers are replaced by plain Dense of the same
    shape, because rule4ml reads only the architecture). Returns LUT, FF, DSP, BRAM (18 kb),
    latency in clock cycles and II, for hls4ml 1.1.0 and Vivado 2023.2 (the newest it was trained on).
    """
    estimator = _rule4ml_models()
    plain = plain_dense_copy(model)
    config = {"board": board, "model": {"strategy": strategy, "precision": precision, "reuse_factor": reuse_factor}}
    table = estimator.predict(plain, hls_configs=[config], hls4ml_versions=["1.1.0"], vivado_versions=["2023.2"])
    row = table.iloc[0]
    result = {"lut": float(row["LUT"]), "ff": float(row["FF"]), "dsp": float(row["DSP"]),
              "bram_18k": float(row["BRAM"]), "latency_cycles": float(row["CYCLES"]),
              "ii_cycles": float(row["INTERVAL"]), "board": board, "precision": precision}
    for key in ("LUT", "FF", "DSP", "BRAM"):
        if f"{key} (%)" in row:
            result[f"{key.lower() if key != 'BRAM' else 'bram_18k'}_percent"] = float(row[f"{key} (%)"])
    result["note"] = "rule4ml sees the architecture, one precision and the reuse factor: not pruning, not per-weight bits"
    return result


@functools.lru_cache(maxsize=1)
def _rule4ml_models():
    """rule4ml's default predictors, loaded once per process (they import torch)."""
    from rule4ml.models.wrappers import MultiModelWrapper

    estimator = MultiModelWrapper()
    estimator.load_default_models()
    return estimator


def plain_dense_copy(model):
    """A Keras Sequential of plain Dense layers with the units and activations of ``model``'s Dense-like layers."""
    import keras

    layers = [keras.Input(model.input_shape[1:])]
    for layer in model.layers:
        if hasattr(layer, "units"):
            activation = keras.activations.serialize(layer.activation) if layer.activation else None
            name = activation if isinstance(activation, str) else (activation or {}).get("config", {}).get("name", "linear")
            layers.append(keras.layers.Dense(layer.units, activation=name, name=layer.name))
    plain = keras.Sequential(layers, name=model.name)
    plain.build(model.input_shape)
    return plain


# ----------------------------------------------------------------------------- da4ml
def da4ml_estimate(specs: list[DenseSpec], timeout: float = 900.0) -> dict:
    """da4ml's adder count (~LUTs) and adder-tree depth for the network, traced in a subprocess.

    Returns ``{"lut", "adder_depth", "per_layer_lut", "seconds", "jit"}``: ``lut`` is da4ml's cost
    (about one LUT per adder bit), ``adder_depth`` the (min, max) number of adders on the way from
    the inputs to an output. Raises RuntimeError (with the worker's last lines) if it fails.
    """
    with tempfile.TemporaryDirectory(prefix="mlpp-da4ml-") as tmp:
        folder = Path(tmp)
        _save_specs(specs, folder / "specs.npz")
        env = dict(os.environ)
        warm = numba_cache_warm()
        if not warm:
            env["NUMBA_DISABLE_JIT"] = "1"
        env.setdefault("OMP_NUM_THREADS", "1")
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "mlpp.hls.estimate", "--da4ml-worker", str(folder)],
                              env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise RuntimeError(f"da4ml worker failed: {tail}")
        result = json.loads((folder / "result.json").read_text())
    result.update(seconds=round(time.perf_counter() - started, 2), jit=warm,
                  note="da4ml: multiplier-free (distributed arithmetic) adders; LUT ~ adder bits, DSP = 0; "
                       "depth in adders, not ns")
    return result


def numba_cache_warm() -> bool:
    """True if numba's cache holds da4ml's compiled solver (so tracing need not compile it)."""
    import importlib.util

    spec = importlib.util.find_spec("da4ml")
    if spec is None or not spec.submodule_search_locations:
        return False
    roots = [spec.submodule_search_locations[0], os.environ.get("NUMBA_CACHE_DIR", ""),
             os.path.expanduser("~/.cache/numba")]
    needed = ("api.jit_solve-*.nbi", "__init__.cmvm-*.nbi", "bit_decompose.csd_decompose-*.nbi")
    return all(any(glob.glob(os.path.join(root, "**", pattern), recursive=True) for root in roots if root)
               for pattern in needed)


def warm_up() -> float:
    """Compile da4ml's numba kernels once (about 95 s of CPU, 1.7 GB); returns the seconds taken."""
    rng = np.random.default_rng(0)
    kernel = np.round(rng.normal(size=(8, 4)) * 8) / 8
    spec = DenseSpec("warmup", kernel, np.zeros(4), kif_of("ap_fixed<8,3>", 8), np.full(kernel.shape, 8))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlpp-da4ml-") as tmp:
        _save_specs([spec], Path(tmp) / "specs.npz")
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
        subprocess.run([sys.executable, "-m", "mlpp.hls.estimate", "--da4ml-worker", tmp], env=env, check=True)
    return time.perf_counter() - started


def _save_specs(specs: list[DenseSpec], path: Path) -> None:
    arrays, meta = {}, []
    for n, spec in enumerate(specs):
        entry = {"name": spec.name, "relu": spec.relu, "input_modes": spec.input_modes,
                 "result_modes": spec.result_modes, "relu_modes": spec.relu_modes}
        for key in ("kernel", "bias", "input_kif", "result_kif", "relu_kif"):
            value = getattr(spec, key)
            entry[key] = value is not None
            if value is not None:
                arrays[f"{n}_{key}"] = np.asarray(value)
        meta.append(entry)
    with open(path, "wb") as handle:
        np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)


def _worker(folder: Path) -> None:
    """Trace the saved layers with da4ml and write ``result.json`` (runs in the subprocess)."""
    from da4ml.trace import FixedVariableArray, HWConfig, comb_trace

    with np.load(folder / "specs.npz") as stored:
        meta = json.loads(str(stored["meta"]))
        arrays = {key: stored[key] for key in stored.files if key != "meta"}
    k, i, f = arrays["0_input_kif"]
    inp = FixedVariableArray.from_kif(k, i, f, HWConfig(1, -1, -1), solver_options=DA4ML_OPTIONS)
    x, per_layer, previous = inp, {}, 0.0
    for n, entry in enumerate(meta):
        if n > 0:  # bring the incoming values to this layer's input type
            k, i, f = arrays[f"{n}_input_kif"]
            x = x.quantize(k, i, f, round_mode=entry["input_modes"][0], overflow_mode=entry["input_modes"][1])
        x = x @ arrays[f"{n}_kernel"] + arrays[f"{n}_bias"]
        if entry["result_kif"]:
            k, i, f = arrays[f"{n}_result_kif"]
            x = x.quantize(k, i, f, round_mode=entry["result_modes"][0], overflow_mode=entry["result_modes"][1])
        if entry["relu"]:
            x = x.relu()
            if entry["relu_kif"]:
                k, i, f = arrays[f"{n}_relu_kif"]
                x = x.quantize(k, i, f, round_mode=entry["relu_modes"][0], overflow_mode=entry["relu_modes"][1])
        cost = comb_trace(inp, x).cost
        per_layer[entry["name"]] = cost - previous
        previous = cost
    logic = comb_trace(inp, x)
    result = {"lut": float(logic.cost), "adder_depth": [float(v) for v in logic.latency],
              "per_layer_lut": {name: float(v) for name, v in per_layer.items()}}
    (folder / "result.json").write_text(json.dumps(result))


# ----------------------------------------------------------------------------- all of them
def disagreement(estimates: dict) -> dict:
    """For LUT, FF, DSP and BRAM: the tools that estimate it, their values and max/min ratio."""
    out = {}
    for key in ("lut", "ff", "dsp", "bram_18k"):
        values = {tool: float(est[key]) for tool, est in estimates.items()
                  if isinstance(est, dict) and est.get(key) is not None}
        if len(values) >= 2:
            positive = [v for v in values.values() if v > 0]
            ratio = (max(positive) / min(positive)) if len(positive) == len(values) else float("inf")
            out[key] = {"values": values, "max_over_min": round(ratio, 2) if np.isfinite(ratio) else None}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="internal: the da4ml worker of mlpp.hls.estimate")
    parser.add_argument("--da4ml-worker", metavar="DIR", required=True)
    args = parser.parse_args(argv)
    _worker(Path(args.da4ml_worker))
    return 0


if __name__ == "__main__":
    sys.exit(main())
