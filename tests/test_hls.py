"""The FPGA flow (mlpp.hls, 'mlpp hls'): fixed point against hls4ml, configs, the CLI, bit-exact HGQ2.

The tests that compile C++ with g++ (about 10 s each) are marked slow; together with the HGQ2
end-to-end conversion the module takes about two minutes on 2 cores.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlpp.cli import main
from mlpp.hls import fixed_point
from mlpp.hls.config import ConfigError, config_from_dict, load_config
from mlpp.hls.fixed_point import OVERFLOW_MODES, ROUNDING_MODES, FixedType, parse_type, quantize

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "hls" / "configs"
needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="hls4ml's C++ emulation needs g++")


def _valid(**hls) -> dict:
    return {"name": "t", "model": {"source": "jets5_mlp_hgq"}, "hls4ml": {"precision": "ap_fixed<16,6>", **hls}}


# ----------------------------------------------------------------------------- fixed point
def test_worked_example_of_the_lecture():
    x = np.array([2.3, 2.69, 5.1, -4.3])
    assert np.array_equal(quantize(x, 6, 3), [2.25, 2.625, -3.0, 3.625])
    assert np.array_equal(quantize(x, 6, 3, rounding="RND", overflow="SAT"), [2.25, 2.75, 3.875, -4.0])


@pytest.mark.parametrize("rounding", ROUNDING_MODES)
@pytest.mark.parametrize("overflow", OVERFLOW_MODES)
def test_quantize_is_idempotent_and_on_the_grid(rounding, overflow):
    kind = FixedType(7, 2, rounding=rounding, overflow=overflow)
    x = np.random.default_rng(0).uniform(-5, 5, 1000)
    once = kind.quantize(x)
    assert np.array_equal(kind.quantize(once), once)  # representable values stay put
    assert np.all((once >= kind.min) & (once <= kind.max))
    assert np.array_equal(np.round(once / kind.step), once / kind.step)


@pytest.mark.parametrize("text, expected", [
    ("ap_fixed<16,6>", FixedType(16, 6)),
    ("ap_ufixed<8,0,AP_RND,AP_SAT>", FixedType(8, 0, False, "RND", "SAT")),
    ("fixed<18,8,RND,SAT,0>", FixedType(18, 8, True, "RND", "SAT")),
    ("ap_fixed<12, -2, AP_RND_CONV, AP_SAT_SYM>", FixedType(12, -2, True, "RND_CONV", "SAT_SYM")),
])
def test_parse_type(text, expected):
    assert parse_type(text) == expected
    assert parse_type(str(expected)) == expected


@pytest.mark.parametrize("values, signed, bits", [([4.0], True, 4), ([-4.0], True, 3), ([0.3], True, 0),
                                                  ([3.99, -0.1], True, 3), ([0.0], True, 1), ([1.0], False, 1),
                                                  ([0.99], False, 0), ([2.0 ** -5], True, -3)])
def test_integer_bits(values, signed, bits):
    assert fixed_point.integer_bits(values, signed) == bits
    kind = FixedType(bits + 30, bits, signed, overflow="SAT")
    assert np.allclose(kind.quantize(values), values, atol=2.0 ** -29)  # the values fit


@needs_gxx
@pytest.mark.slow
def test_quantize_matches_hls4ml_compiled_types(tmp_path):
    """Every rounding and overflow mode, signed and unsigned, I <= 0 and I > W, on a grid of values
    that includes exact half steps and the edges of the ranges."""
    from mlpp.hls.convert import compile_type_probe

    types = [f"ap_fixed<6,3,AP_{q},AP_{o}>" for q in ROUNDING_MODES for o in OVERFLOW_MODES]
    types += ["ap_ufixed<5,2,AP_RND,AP_SAT>", "ap_ufixed<5,2>", "ap_fixed<8,0>", "ap_fixed<6,-1,AP_RND,AP_SAT>",
              "ap_fixed<4,6,AP_RND,AP_WRAP>", "ap_fixed<1,1,AP_RND,AP_SAT>", "ap_fixed<20,9,AP_TRN,AP_SAT_SYM>"]
    rng = np.random.default_rng(5)
    values = np.r_[np.arange(-48, 48) / 8 + 1 / 16, np.arange(-48, 48) / 8, [-4.0, 3.875, -4.0625, 3.9375, 7.9, -8.1],
                   rng.uniform(-20, 20, 200), rng.uniform(-0.6, 0.6, 50)]
    probe = compile_type_probe(types, tmp_path / "probe", n_values=64)
    compiled = probe(values)
    for kind, row in zip(types, compiled):
        expected = parse_type(kind).quantize(values)
        bad = np.flatnonzero(expected != row)
        assert bad.size == 0, f"{kind}: x={values[bad[:3]]} hls4ml {row[bad[:3]]} mlpp {expected[bad[:3]]}"


@needs_gxx
@pytest.mark.slow
def test_dense_fixed_is_bit_exact_with_hls4ml(tmp_path):
    """The numpy Dense layer equals hls4ml's dense_latency on every output, for mixed types and modes."""
    import keras

    from mlpp.hls import convert
    from mlpp.hls.fixed_point import dense_fixed

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((7,), name="x"), keras.layers.Dense(9, activation="relu", name="d1"),
                              keras.layers.Dense(4, name="d2")])
    x = np.random.default_rng(4).normal(size=(300, 7)).astype(np.float32) * 2
    types = {"x": {"result": "ap_fixed<10,4,AP_RND,AP_SAT>"},
             "d1": {"weight": "ap_fixed<7,1>", "bias": "ap_fixed<8,2>", "accum": "ap_fixed<14,5>",
                    "result": "ap_fixed<9,4,AP_RND,AP_SAT>"},
             "d2": {"weight": "ap_fixed<6,1,AP_RND,AP_SAT>", "bias": "ap_fixed<8,2>", "accum": "ap_fixed<20,8>",
                    "result": "ap_fixed<12,5>"}}
    config = config_from_dict({"name": "dense", "model": {"source": "jets5_mlp_ptq"},
                               "hls4ml": {"precision": "ap_fixed<16,6>", "layers": types}})
    hls_config, _ = convert.hls_config_for(model, config)
    hls_model = convert.convert(model, config, tmp_path / "dense", hls_config=hls_config)
    convert.compile_model(hls_model)
    emulated = np.asarray(hls_model.predict(np.ascontiguousarray(x)), dtype=np.float64)
    h = parse_type(types["x"]["result"]).quantize(x)
    h = np.maximum(dense_fixed(h, *model.layers[0].get_weights(), **_types(types["d1"])), 0)
    out = dense_fixed(h, *model.layers[1].get_weights(), **_types(types["d2"]))
    assert np.array_equal(out, emulated.reshape(out.shape))


def _types(entry: dict) -> dict:
    return {"weight": entry["weight"], "bias_type": entry["bias"], "accum": entry["accum"], "result": entry["result"]}


# ----------------------------------------------------------------------------- configurations
def test_every_course_config_is_valid():
    names = set()
    for path in sorted(CONFIGS.glob("*.yml")):
        config = load_config(path, tier="fast")
        assert config.name == path.stem and config.name not in names
        names.add(config.name)
    assert {"jets5_mlp_hgq", "jets5_mlp_ptq", "vae_encoder"} <= names


@pytest.mark.parametrize("change, key, words", [
    ({"precision": "ap_fixed<4,8>"}, "hls4ml.precision", "8 integer bits but only 4 bits"),
    ({"part": "xc7k999t-ffg1"}, "hls4ml.part", "unknown FPGA part"),
    ({"precision": "ap_fixd<8,3>"}, "hls4ml.precision", "cannot read the precision"),
    ({"strategy": "Fast"}, "hls4ml.strategy", "not one of Latency, Resource"),
    ({"reuse_factor": 0}, "hls4ml.reuse_factor", "whole number >= 1"),
    ({"layers": {"fc1": {"weigth": "ap_fixed<8,2>"}}}, "hls4ml.layers.fc1.weigth", "unknown key"),
    ({"layers": {"fc1": {"result": "ap_fixed<0,0>"}}}, "hls4ml.layers.fc1.result", "between 1 and 64"),
])
def test_bad_configs_give_one_line_errors(change, key, words):
    with pytest.raises(ConfigError) as error:
        config_from_dict(_valid(**change), origin=Path("bad.yml"))
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"bad.yml: {key}:") and words in message


def test_unknown_source_and_tier():
    with pytest.raises(ConfigError, match="unknown source 'nope'"):
        config_from_dict({"name": "t", "model": {"source": "nope"}})
    with pytest.raises(ConfigError, match="model.tier"):
        config_from_dict({"name": "t", "model": {"source": "jets5_mlp_hgq", "tier": "huge"}})


def test_cli_rejects_an_impossible_precision(tmp_path, capsys):
    bad = tmp_path / "bad.yml"
    bad.write_text("name: bad\nmodel: {source: jets5_mlp_ptq}\nhls4ml: {precision: 'ap_fixed<4,8>'}\n")
    assert main(["hls", "convert", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "ap_fixed<4,8>" in err and "impossible" in err


def test_cli_rejects_an_unknown_part(tmp_path, capsys):
    bad = tmp_path / "part.yml"
    bad.write_text("name: part\nmodel: {source: jets5_mlp_hgq}\nhls4ml: {part: xcvu99p-nope}\n")
    assert main(["hls", "convert", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown FPGA part 'xcvu99p-nope'" in err


def test_synth_without_vitis_fails_cleanly(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no vitis_hls, no vivado_hls
    assert main(["hls", "synth", str(CONFIGS / "jets5_mlp_hgq.yml")]) == 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "vitis_hls" in err and "install" in err


def test_hls_help_lists_the_actions(capsys):
    with pytest.raises(SystemExit):
        main(["hls", "--help"])
    out = capsys.readouterr().out
    assert "convert" in out and "synth" in out and "examples:" in out


# ----------------------------------------------------------------------------- estimators
def test_hls4ml_rules():
    from mlpp.hls.estimate import dense_rules

    assert dense_rules(16, 64, 16, 16)["dsp"] == 1024
    assert dense_rules(16, 64, 16, 16, reuse_factor=4)["dsp"] == 256
    assert dense_rules(16, 64, 8, 16)["dsp"] == 0  # narrow weights go to LUTs
    assert dense_rules(16, 64, 16, 16, reuse_factor=4, resource=True)["bram_18k"] == 114  # ceil(1024*16/(4*36))


def test_ebops_agree_with_hgq2_and_da4ml_runs():
    """EBOPs computed from the layer specs equal HGQ2's own count; da4ml's worker returns a cost."""
    import keras
    from hgq.utils import trace_minmax

    from mlpp.hls import estimate, models

    keras.utils.set_random_seed(1)
    model = models.build_hgq_mlp(hidden=(8,), n_inputs=6, n_classes=3)
    x = np.random.default_rng(2).normal(size=(256, 6)).astype(np.float32)
    hgq_ebops = trace_minmax(model, x)
    specs = estimate.specs_from_hgq(model)
    assert estimate.ebops(specs) == pytest.approx(float(hgq_ebops), rel=1e-6)
    result = estimate.da4ml_estimate(specs)
    assert result["lut"] > 0 and result["adder_depth"][1] >= result["adder_depth"][0] > 0


# ----------------------------------------------------------------------------- end to end
@needs_gxx
@pytest.mark.slow
def test_hgq2_tagger_converts_bit_exact(tmp_path, capsys):
    """'mlpp hls convert' on the HGQ2 tagger: every logit of every test jet equals Keras."""
    build = tmp_path / "build"
    status = main(["hls", "convert", str(CONFIGS / "jets5_mlp_hgq.yml"), "--tier", "fast", "--build-dir", str(build),
                   "--estimators", "hls4ml,da4ml"])
    assert status == 0, capsys.readouterr().err
    report = json.loads((build / "report.json").read_text())
    agreement = report["agreement"]
    assert report["agreement_ok"] and report["bit_exact_expected"]
    assert agreement["identical_fraction"] == 1.0 and agreement["max_abs_difference"] == 0.0
    assert agreement["n"] == 2000 and agreement["accuracy_emulated"] > 0.6
    assert report["estimates"]["da4ml"]["lut"] > 0 and report["estimates"]["ebops"] > 0
    assert (build / "report.md").read_text().startswith("# jets5_mlp_hgq")
    assert (build / "project" / "firmware" / "myproject.cpp").is_file()


def test_cached_weights_are_verified(tmp_path, monkeypatch):
    """A corrupted cache file is noticed (sha256) and retrained, not silently loaded."""
    import keras

    from mlpp.hls import models

    monkeypatch.setenv("MLPP_DATA", str(tmp_path))
    monkeypatch.setattr(models, "_cache_key", lambda name, tier, recipe: "k")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    calls = []

    def train():
        calls.append(1)
        model.set_weights([np.ones((3, 2), np.float32), np.zeros(2, np.float32)])
        return {"trained": True}

    assert models.cached_weights("toy", "fast", model, train, {}) == {"trained": True}
    model.set_weights([np.zeros((3, 2), np.float32), np.zeros(2, np.float32)])
    assert models.cached_weights("toy", "fast", model, train, {}) == {"trained": True} and len(calls) == 1
    assert np.array_equal(model.get_weights()[0], np.ones((3, 2)))
    path = tmp_path / "hls" / "toy-fast-k.npz"
    path.write_bytes(path.read_bytes()[:-10] + b"corrupted!")
    models.cached_weights("toy", "fast", model, train, {})
    assert len(calls) == 2


def test_reports_are_plain_json():
    import json

    import numpy as np

    from mlpp.hls.jsonable import jsonable

    out = jsonable({1: (np.float32(0.5), np.int64(3), np.bool_(True)), "a": np.arange(2), "b": np.float64("inf")})
    assert out == {"1": [0.5, 3, True], "a": [0, 1], "b": None}
    json.dumps(out, allow_nan=False)  # raises if anything non-standard is left
