"""Deployment configurations: one YAML file per model in ``hls/configs/``.

.. code-block:: yaml

    name: jets5_mlp_ptq                 # the build folder: hls/build/<name>/
    description: Lecture 1's tagger, pruned to 75 % and quantised after training.
    model:
      source: jets5_mlp_ptq             # a function of mlpp.hls.models.SOURCES, or "module:function"
      tier: fast                        # optional: fast | full (default: $MLPP_TIER)
    hls4ml:
      backend: Vitis                    # Vitis | Vivado
      part: xcvu13p-flga2577-2-e        # one of mlpp.hls.estimate.PARTS
      clock_period: 5                   # ns
      io_type: io_parallel              # io_parallel | io_stream
      strategy: Latency                 # Latency | Resource
      reuse_factor: 1                   # multiplications sharing one multiplier
      precision: ap_fixed<16,6>         # default type of every weight, bias, sum and activation
      layers:                           # optional per-layer types (weight, bias, accum, result)
        output: {result: ap_fixed<16,6>}
    checks:
      min_argmax_agreement: 0.99        # post-training quantisation; HGQ2 models must be bit-exact

:func:`load_config` reads and validates such a file; every problem is one line of
:class:`ConfigError` that names the file and the key, e.g.
``jets5.yml: hls4ml.precision: ap_fixed<4,8>: 8 integer bits but only 4 bits in all ...``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlpp import settings
from mlpp.hls.estimate import PARTS
from mlpp.hls.fixed_point import FixedType, PrecisionError, parse_type

BACKENDS = ("Vitis", "Vivado")
IO_TYPES = ("io_parallel", "io_stream")
STRATEGIES = ("Latency", "Resource")
PRECISION_KEYS = ("weight", "bias", "accum", "result")
_TOP_KEYS = {"name", "description", "model", "hls4ml", "checks"}
_MODEL_KEYS = {"source", "tier"}
_HLS_KEYS = {"backend", "part", "clock_period", "io_type", "strategy", "reuse_factor", "precision", "layers"}
_CHECK_KEYS = {"min_argmax_agreement", "max_rz_relative_difference"}


class ConfigError(ValueError):
    """An invalid deployment configuration; ``str()`` is one line naming the file and the key."""


@dataclass
class HLSConfig:
    """A validated configuration (see the module docstring for the meaning of each field)."""

    name: str
    source: str
    tier: str
    backend: str = "Vitis"
    part: str = "xcvu13p-flga2577-2-e"
    clock_period: float = 5.0
    io_type: str = "io_parallel"
    strategy: str = "Latency"
    reuse_factor: int = 1
    precision: str = "ap_fixed<16,6>"
    layers: dict[str, dict[str, str]] = field(default_factory=dict)
    min_argmax_agreement: float = 0.99
    max_rz_relative_difference: float = 0.05
    description: str = ""
    path: Path | None = None

    @property
    def build_dir(self) -> Path:
        """``hls/build/<name>/`` in the repository (ignored by git)."""
        return settings.repo_root() / "hls" / "build" / self.name

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "source": self.source, "tier": self.tier,
                "backend": self.backend, "part": self.part, "clock_period": self.clock_period,
                "io_type": self.io_type, "strategy": self.strategy, "reuse_factor": self.reuse_factor,
                "precision": self.precision, "layers": self.layers,
                "min_argmax_agreement": self.min_argmax_agreement}


def load_config(path: str | Path, tier: str | None = None) -> HLSConfig:
    """Read and validate ``path``; ``tier`` overrides the file's ``model.tier``."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such configuration file (the course's are in hls/configs/)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"{path.name}: not valid YAML{line}") from None
    return config_from_dict(raw, origin=path, tier=tier)


def config_from_dict(raw: dict, origin: str | Path = "<dict>", tier: str | None = None) -> HLSConfig:
    """Validate a configuration given as a dict (the parsed YAML); see :func:`load_config`."""
    label = Path(origin).name if isinstance(origin, Path) else str(origin)

    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"{label}: {key}: {message}")

    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: expected a mapping with keys name, model, hls4ml")
    _no_unknown(raw, _TOP_KEYS, "", fail)
    name = raw.get("name")
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise fail("name", "give a name of letters, digits, '_' or '-' (it names hls/build/<name>/)")
    model = raw.get("model") or {}
    if not isinstance(model, dict):
        raise fail("model", "expected a mapping with 'source' (and optionally 'tier')")
    _no_unknown(model, _MODEL_KEYS, "model.", fail)
    source = model.get("source")
    if not isinstance(source, str) or not source:
        raise fail("model.source", "name the function that builds the model, e.g. jets5_mlp_hgq")
    _check_source(source, fail)
    try:
        chosen_tier = settings.tier(tier or model.get("tier"))
    except ValueError as err:
        raise fail("model.tier", str(err)) from None

    hls = raw.get("hls4ml") or {}
    if not isinstance(hls, dict):
        raise fail("hls4ml", "expected a mapping")
    _no_unknown(hls, _HLS_KEYS, "hls4ml.", fail)
    config = HLSConfig(name=name, source=source, tier=chosen_tier, description=str(raw.get("description", "")),
                       path=Path(origin) if isinstance(origin, Path) else None)
    backend = str(hls.get("backend", config.backend))
    match = {b.lower(): b for b in BACKENDS}.get(backend.lower())
    if match is None:
        raise fail("hls4ml.backend", f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    config.backend = match
    part = str(hls.get("part", config.part))
    if part.lower() not in PARTS:
        raise fail("hls4ml.part", f"unknown FPGA part {part!r}; known parts: {', '.join(PARTS)}")
    config.part = part.lower()
    config.clock_period = _positive_number(hls.get("clock_period", config.clock_period), "hls4ml.clock_period (ns)", fail)
    config.io_type = _choice(hls.get("io_type", config.io_type), IO_TYPES, "hls4ml.io_type", fail)
    config.strategy = _choice(hls.get("strategy", config.strategy), STRATEGIES, "hls4ml.strategy", fail)
    reuse = hls.get("reuse_factor", config.reuse_factor)
    if not isinstance(reuse, int) or isinstance(reuse, bool) or reuse < 1:
        raise fail("hls4ml.reuse_factor", f"{reuse!r} is not a whole number >= 1")
    config.reuse_factor = reuse
    config.precision = str(check_precision(hls.get("precision", config.precision), "hls4ml.precision", fail))
    layers = hls.get("layers") or {}
    if not isinstance(layers, dict):
        raise fail("hls4ml.layers", "expected a mapping {layer name: {weight|bias|accum|result: type}}")
    for layer, types in layers.items():
        if not isinstance(types, dict):
            raise fail(f"hls4ml.layers.{layer}", "expected a mapping {weight|bias|accum|result: type}")
        _no_unknown(types, set(PRECISION_KEYS), f"hls4ml.layers.{layer}.", fail)
        config.layers[str(layer)] = {key: str(check_precision(value, f"hls4ml.layers.{layer}.{key}", fail))
                                     for key, value in types.items()}

    checks = raw.get("checks") or {}
    if not isinstance(checks, dict):
        raise fail("checks", "expected a mapping")
    _no_unknown(checks, _CHECK_KEYS, "checks.", fail)
    agreement = checks.get("min_argmax_agreement", config.min_argmax_agreement)
    if not isinstance(agreement, (int, float)) or not 0 <= agreement <= 1:
        raise fail("checks.min_argmax_agreement", f"{agreement!r} is not a fraction between 0 and 1")
    config.min_argmax_agreement = float(agreement)
    config.max_rz_relative_difference = _positive_number(
        checks.get("max_rz_relative_difference", config.max_rz_relative_difference),
        "checks.max_rz_relative_difference", fail)
    return config


def check_precision(value, key: str = "precision", fail=None) -> FixedType:
    """Parse a type for a configuration; impossible ones (I > W, W < 1, W > 64) give a one-line error."""
    fail = fail or (lambda k, message: ConfigError(f"{k}: {message}"))
    try:
        kind = parse_type(str(value))
    except PrecisionError as err:
        raise fail(key, str(err)) from None
    if kind.integer > kind.width:
        raise fail(key, f"{value}: {kind.integer} integer bits but only {kind.width} bits in all: impossible here "
                        f"(the lowest bit would weigh {2 ** (kind.integer - kind.width)}); use I <= W, "
                        f"e.g. ap_fixed<{kind.integer + 8},{kind.integer}>")
    return kind


def _no_unknown(mapping: dict, allowed: set[str], prefix: str, fail) -> None:
    unknown = sorted(set(map(str, mapping)) - allowed)
    if unknown:
        raise fail(prefix + unknown[0], f"unknown key; allowed here: {', '.join(sorted(allowed))}")


def _choice(value, allowed: tuple[str, ...], key: str, fail) -> str:
    match = {a.lower(): a for a in allowed}.get(str(value).lower())
    if match is None:
        raise fail(key, f"{value!r} is not one of {', '.join(allowed)}")
    return match


def _positive_number(value, key: str, fail) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise fail(key, f"{value!r} is not a positive number")
    return float(value)


def _check_source(source: str, fail) -> None:
    from mlpp.hls.models import SOURCES

    if source in SOURCES:
        return
    if ":" not in source:
        raise fail("model.source", f"unknown source {source!r}; use one of {', '.join(SOURCES)} or 'module:function'")
    module, _, function = source.partition(":")
    if not module or not function.isidentifier():
        raise fail("model.source", f"{source!r} is not of the form 'module:function'")


def resolve_source(source: str):
    """The function that ``model.source`` names: ``SOURCES[source]`` or ``module:function``."""
    import importlib

    from mlpp.hls.models import SOURCES

    if source in SOURCES:
        return SOURCES[source]
    module, _, function = source.partition(":")
    try:
        return getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"model.source: cannot import {source!r} ({err})") from None
