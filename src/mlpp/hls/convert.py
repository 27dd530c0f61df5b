"""``mlpp hls convert``: model -> hls4ml project -> g++ emulation -> agreement -> estimates -> report.

:func:`run` does the whole flow for one configuration and writes ``report.json`` and ``report.md``
into ``hls/build/<name>/`` (the hls4ml project itself goes to ``hls/build/<name>/project/``). The
pieces are usable on their own (Lecture 11 calls them): :func:`hls_config_for` builds hls4ml's
configuration dict, :func:`convert` and :func:`compile_model` make the C++ emulation,
:func:`agreement` compares it with Keras, :func:`estimate_all` runs the estimators.
"""
from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path

import numpy as np

from mlpp.hls.config import HLSConfig, resolve_source
from mlpp.hls.fixed_point import parse_type
from mlpp.hls.jsonable import jsonable


class AgreementError(RuntimeError):
    """The compiled emulation does not agree with the model it came from."""


# ----------------------------------------------------------------------------- configuration
def hls_config_for(model, config: HLSConfig, bit_exact: bool = False) -> tuple[dict, list[str]]:
    """hls4ml's configuration dict for ``model`` and notes on what was decided.

    HGQ2 models (``bit_exact``) carry their own per-weight types: hls4ml derives every precision
    from the quantisers. Other models get ``config.precision`` everywhere hls4ml would otherwise
    infer a type ("auto"), then the per-layer types of ``config.layers``; a ReLU takes the type of
    the Dense layer before it unless named itself. No "auto" is left: hls4ml's automatic inference
    gives the last Dense layer a ~38-bit result, and the softmax's lookup tables, indexed by the
    top bits of that input, then return the same value for every jet (the softmax precision trap).
    """
    import hls4ml

    model_level = {"Precision": config.precision, "ReuseFactor": config.reuse_factor, "Strategy": config.strategy}
    if bit_exact:
        return {"Model": model_level}, ["HGQ2 model: hls4ml derives every type from the quantisers (bit-exact)"]
    with contextlib.redirect_stdout(io.StringIO()):
        hls = hls4ml.utils.config_from_keras_model(model, granularity="name", backend=config.backend,
                                                   default_precision=config.precision)
    hls["Model"].update(model_level)
    replaced = 0
    for name, layer in hls["LayerName"].items():
        if "ReuseFactor" in layer:
            layer["ReuseFactor"] = config.reuse_factor
        for key, value in list(layer.get("Precision", {}).items()):
            if value == "auto":
                layer["Precision"][key] = config.precision
                replaced += 1
    unknown = sorted(set(config.layers) - set(hls["LayerName"]))
    if unknown:
        raise KeyError(f"hls4ml.layers: no layer {unknown[0]!r} in the model; its layers: {', '.join(hls['LayerName'])}")
    for name, types in config.layers.items():
        hls["LayerName"][name]["Precision"].update(types)
        relu = f"{name}_relu"
        if "result" in types and relu in hls["LayerName"] and relu not in config.layers:
            hls["LayerName"][relu]["Precision"]["result"] = types["result"]
    notes = [f"{replaced} 'auto' types set to {config.precision} (no automatic inference: softmax precision trap)"]
    return hls, notes


def convert(model, config: HLSConfig, output_dir: str | Path, bit_exact: bool = False, hls_config: dict | None = None):
    """Convert ``model`` with hls4ml into ``output_dir`` (written, not compiled); returns the ModelGraph."""
    import hls4ml

    if hls_config is None:
        hls_config, _ = hls_config_for(model, config, bit_exact)
    with contextlib.redirect_stdout(io.StringIO()):
        return hls4ml.converters.convert_from_keras_model(
            model, hls_config=hls_config, output_dir=str(output_dir), project_name="myproject",
            backend=config.backend, part=config.part, clock_period=config.clock_period, io_type=config.io_type)


def compile_model(hls_model) -> float:
    """Write the project and compile its C++ emulation with g++; returns the seconds it took."""
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        hls_model.compile()
    return time.perf_counter() - started


# ----------------------------------------------------------------------------- agreement
def agreement(keras_outputs: np.ndarray, emulated: np.ndarray, labels: np.ndarray | None = None,
              float_outputs: np.ndarray | None = None, kind: str = "classifier") -> dict:
    """How the compiled emulation compares with the Keras model it came from.

    ``*_outputs``: (n, k) arrays for the same n inputs. For a classifier: the fraction of jets
    with the same largest output, the fraction whose outputs are identical (bit for bit), the
    largest |difference|, and the accuracies (float model, Keras model, emulation) if ``labels``
    are given. For a VAE encoder (outputs ``(mu, log sigma^2)``): the same plus ``R_z`` from both and
    its relative difference, and the AUC of ``R_z`` for ``labels`` (1 = anomalous jet).
    """
    from mlpp import metrics
    from mlpp.hls.models import latent_score

    keras_outputs = np.asarray(keras_outputs, dtype=np.float64).reshape(len(emulated), -1)
    emulated = np.asarray(emulated, dtype=np.float64).reshape(len(keras_outputs), -1)
    diff = np.abs(emulated - keras_outputs)
    result = {"n": int(len(emulated)), "max_abs_difference": float(diff.max()),
              "identical_fraction": float(np.mean(np.all(diff == 0, axis=1))),
              "argmax_agreement": float(np.mean(emulated.argmax(1) == keras_outputs.argmax(1)))}
    if kind == "vae_encoder":
        rz_keras, rz_emulated = latent_score(keras_outputs), latent_score(emulated)
        relative = np.abs(rz_emulated - rz_keras) / np.maximum(np.abs(rz_keras), 1e-12)
        result.update(rz_median_relative_difference=float(np.median(relative)),
                      rz_p99_relative_difference=float(np.quantile(relative, 0.99)))
        if labels is not None:
            result.update(rz_auc_keras=float(metrics.auc(labels, rz_keras)),
                          rz_auc_emulated=float(metrics.auc(labels, rz_emulated)))
        return result
    if labels is not None:
        result["accuracy_keras"] = float(np.mean(keras_outputs.argmax(1) == labels))
        result["accuracy_emulated"] = float(np.mean(emulated.argmax(1) == labels))
        if float_outputs is not None:
            result["accuracy_float"] = float(np.mean(np.asarray(float_outputs).argmax(1) == labels))
            result["accuracy_change"] = result["accuracy_emulated"] - result["accuracy_float"]
    return result


def check_agreement(result: dict, config: HLSConfig, bit_exact: bool, kind: str) -> str | None:
    """None if the emulation passes this configuration's check, else a one-line reason."""
    if bit_exact and result["identical_fraction"] < 1.0:
        return (f"HGQ2 model not bit-exact: {1 - result['identical_fraction']:.2%} of the jets differ "
                f"(largest difference {result['max_abs_difference']:.3g})")
    if kind == "vae_encoder" and result["rz_median_relative_difference"] > config.max_rz_relative_difference:
        return (f"R_z differs by {result['rz_median_relative_difference']:.2%} (median), more than "
                f"{config.max_rz_relative_difference:.2%}")
    if kind == "classifier" and result["argmax_agreement"] < config.min_argmax_agreement:
        return f"argmax agreement {result['argmax_agreement']:.4f} below {config.min_argmax_agreement}"
    return None


# ----------------------------------------------------------------------------- estimates
def estimate_all(hls_model, keras_model, config: HLSConfig, bit_exact: bool,
                 tools: tuple[str, ...] = ("hls4ml", "da4ml", "rule4ml")) -> dict:
    """Every estimator on one converted model: ``{tool: result or {"error": ...}}`` plus ``ebops``."""
    from mlpp.hls import estimate

    specs = estimate.specs_from_hgq(keras_model) if bit_exact else estimate.specs_from_hls(hls_model)
    out: dict = {"ebops": estimate.ebops(specs)}
    if "hls4ml" in tools:
        out["hls4ml"] = _guarded(lambda: estimate.hls4ml_rules(hls_model, config.part))
    if "da4ml" in tools:
        out["da4ml"] = _guarded(lambda: _da4ml_with_percent(specs, config.part))
    if "rule4ml" in tools:
        board = estimate.PARTS[config.part]["rule4ml_board"]
        if board is None:
            out["rule4ml"] = {"error": f"rule4ml knows no board like {config.part}"}
        else:
            precision = widest_weight_type(hls_model)
            out["rule4ml"] = _guarded(lambda: estimate.rule4ml_estimate(
                keras_model, precision, config.reuse_factor, config.strategy, board))
            if "latency_cycles" in out["rule4ml"]:
                out["rule4ml"]["latency_ns"] = out["rule4ml"]["latency_cycles"] * config.clock_period
    out["disagreement"] = estimate.disagreement({k: v for k, v in out.items() if k in ("hls4ml", "da4ml", "rule4ml")})
    return out


def _da4ml_with_percent(specs, part: str) -> dict:
    from mlpp.hls import estimate

    result = estimate.da4ml_estimate(specs)
    return {**result, **estimate._percent({"lut": result["lut"]}, part)}


def widest_weight_type(hls_model) -> str:
    """``ap_fixed<W,I>`` with the largest W and I among the Dense weights (what rule4ml is told)."""
    widths, integers = [], []
    for layer in hls_model.get_layers():
        if layer.class_name == "Dense":
            kind = parse_type(str(layer.attributes["weight"].type.precision))
            widths.append(kind.width)
            integers.append(kind.integer)
    return f"ap_fixed<{max(widths)},{max(integers)}>"


def _guarded(fn) -> dict:
    try:
        return fn()
    except Exception as err:  # one estimator failing must not hide the others
        return {"error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"}


# ----------------------------------------------------------------------------- the whole flow
def run(config: HLSConfig, build_dir: str | Path | None = None,
        tools: tuple[str, ...] = ("hls4ml", "da4ml", "rule4ml"), log=print) -> dict:
    """Build the model, convert, compile, check agreement, estimate; write the two reports.

    Returns the report dict. Raises :class:`AgreementError` (after writing the reports) if the
    emulation fails the configuration's check.
    """
    from mlpp import settings

    settings.limit_threads(2)
    folder = Path(build_dir) if build_dir else config.build_dir
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    log(f"[{config.name}] building the model from {config.source} ({config.tier} tier)")
    deployable = resolve_source(config.source)(config.tier)
    hls_config, notes = hls_config_for(deployable.model, config, deployable.bit_exact)
    log(f"[{config.name}] converting with hls4ml ({config.backend}, {config.part}, {config.io_type}, {config.strategy})")
    hls_model = convert(deployable.model, config, folder / "project", deployable.bit_exact, hls_config)
    seconds = compile_model(hls_model)
    log(f"[{config.name}] C++ emulation compiled with g++ in {seconds:.1f} s")
    x = np.ascontiguousarray(deployable.x_test)
    keras_outputs = np.asarray(deployable.model.predict(x, verbose=0, batch_size=4096))
    emulated = np.asarray(hls_model.predict(x))
    result = agreement(keras_outputs, emulated, deployable.y_test, deployable.float_reference, deployable.kind)
    problem = check_agreement(result, config, deployable.bit_exact, deployable.kind)
    log(f"[{config.name}] agreement: " + ("ok" if problem is None else problem))
    log(f"[{config.name}] estimating resources (hls4ml rules, da4ml, rule4ml)")
    estimates = estimate_all(hls_model, deployable.model, config, deployable.bit_exact, tools)
    report = {"name": config.name, "config": config.to_dict(), "kind": deployable.kind,
              "bit_exact_expected": deployable.bit_exact, "notes": notes, "model_info": deployable.info,
              "compile_seconds": round(seconds, 2), "agreement": result, "agreement_ok": problem is None,
              "agreement_problem": problem, "estimates": estimates, "part_resources": _part(config.part),
              "versions": _versions(), "total_seconds": round(time.perf_counter() - started, 1)}
    (folder / "report.json").write_text(json.dumps(jsonable(report), indent=1, sort_keys=True))
    (folder / "report.md").write_text(report_markdown(report))
    log(f"[{config.name}] wrote {folder / 'report.json'} and report.md")
    if problem is not None:
        raise AgreementError(f"{config.name}: {problem}")
    return report


def report_markdown(report: dict) -> str:
    """A short human-readable summary of :func:`run`'s report."""
    cfg, agree, est = report["config"], report["agreement"], report["estimates"]
    lines = [f"# {report['name']}", "", cfg.get("description", ""), "",
             f"- source `{cfg['source']}` ({cfg['tier']} tier); {cfg['backend']}, part `{cfg['part']}`, "
             f"{cfg['clock_period']:g} ns clock, {cfg['io_type']}, {cfg['strategy']}, reuse factor {cfg['reuse_factor']}",
             f"- C++ emulation compiled in {report['compile_seconds']} s",
             f"- agreement on {agree['n']} test inputs: argmax {agree['argmax_agreement']:.4f}, identical "
             f"{agree['identical_fraction']:.4f}, largest difference {agree['max_abs_difference']:.3g} -> "
             + ("**ok**" if report["agreement_ok"] else f"**FAILED**: {report['agreement_problem']}")]
    if "accuracy_emulated" in agree:
        lines.append(f"- accuracy: float {agree.get('accuracy_float', float('nan')):.4f}, Keras "
                     f"{agree['accuracy_keras']:.4f}, emulation {agree['accuracy_emulated']:.4f}")
    if "rz_auc_emulated" in agree:
        lines.append(f"- R_z: median relative difference {agree['rz_median_relative_difference']:.2e}; AUC "
                     f"Keras {agree['rz_auc_keras']:.4f}, emulation {agree['rz_auc_emulated']:.4f}")
    lines += ["", f"EBOPs: {est['ebops']:.0f}", "", "| estimator | LUT | FF | DSP | BRAM 18k | latency |",
              "|---|---|---|---|---|---|"]
    for tool in ("hls4ml", "da4ml", "rule4ml"):
        entry = est.get(tool)
        if entry is None:
            continue
        if "error" in entry:
            lines.append(f"| {tool} | {entry['error']} | | | | |")
            continue
        latency = (f"{entry['latency_cycles']:.0f} cycles" if "latency_cycles" in entry else
                   f"{entry['adder_depth'][1]:.0f} adders deep" if "adder_depth" in entry else "-")
        cells = [_cell(entry.get(k)) for k in ("lut", "ff", "dsp", "bram_18k")]
        lines.append(f"| {tool} | " + " | ".join(cells) + f" | {latency} |")
    lines += ["", "The estimators model different things (hls4ml: DSP rule of thumb; da4ml: multiplier-free adders; "
              "rule4ml: learned from Vivado syntheses of unpruned, uniformly quantised models); where two give the "
              "same quantity their ratio is:", ""]
    for key, entry in est.get("disagreement", {}).items():
        ratio = entry["max_over_min"]
        lines.append(f"- {key}: " + ", ".join(f"{t} {v:.0f}" for t, v in entry["values"].items())
                     + (f" (max/min {ratio})" if ratio else " (one says 0)"))
    lines.append("")
    return "\n".join(lines)


def _cell(value) -> str:
    return "-" if value is None else f"{value:.0f}"


def _part(part: str) -> dict:
    from mlpp.hls.estimate import PARTS

    return {"part": part, **PARTS[part]}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("hls4ml", "hgq2", "da4ml", "rule4ml", "keras", "tensorflow"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = None
    return out


# ----------------------------------------------------------------------------- the type probe
def compile_type_probe(types: list[str], output_dir: str | Path, n_values: int = 64):
    """hls4ml's own ``ap_fixed`` conversions, compiled: a tiny model whose inputs have ``types``.

    Returns ``probe(values) -> (len(types), len(values)) array``: each row holds ``values`` as the
    C++ emulation stores them in one of the types (through hls4ml's input conversion). One g++
    compile (about 10 s) serves every type.
    """
    import hls4ml
    import keras

    inputs = [keras.Input((n_values,), name=f"in{k}") for k in range(len(types))]
    out = inputs[0]
    for k in range(1, len(inputs)):
        out = keras.layers.Concatenate(name=f"cat{k}")([out, inputs[k]])
    model = keras.Model(inputs, out)
    with contextlib.redirect_stdout(io.StringIO()):
        hls = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vitis",
                                                   default_precision="ap_fixed<64,32>")
    for k, kind in enumerate(types):
        hls["LayerName"][f"in{k}"]["Precision"]["result"] = str(parse_type(kind))
    for k in range(1, len(types)):
        hls["LayerName"][f"cat{k}"]["Precision"]["result"] = "ap_fixed<64,32>"
    with contextlib.redirect_stdout(io.StringIO()):
        graph = hls4ml.converters.convert_from_keras_model(model, hls_config=hls, output_dir=str(output_dir),
                                                           backend="Vitis", io_type="io_parallel")
        graph.compile()

    def probe(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64).ravel()
        padded = np.resize(values, -(-len(values) // n_values) * n_values).reshape(-1, n_values)
        result = np.asarray(graph.predict([padded.copy() for _ in types]), dtype=np.float64)
        result = result.reshape(len(padded), len(types), n_values).transpose(1, 0, 2).reshape(len(types), -1)
        return result[:, :len(values)]

    return probe
