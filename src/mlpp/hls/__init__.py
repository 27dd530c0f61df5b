"""FPGA deployment of the course's models with hls4ml (Lecture 11 and ``hls/``).

- :mod:`mlpp.hls.fixed_point`: ``ap_fixed<W,I>`` arithmetic in numpy (rounding and overflow modes),
  checked against hls4ml's compiled types; a bit-exact numpy version of hls4ml's Dense layer;
- :mod:`mlpp.hls.models`: the seeded models that get deployed (float, pruned, HGQ2, VAE encoder);
- :mod:`mlpp.hls.config`: one YAML file per deployable model (``hls/configs/``), validated;
- :mod:`mlpp.hls.convert`: hls4ml conversion, the g++ emulation, agreement, reports;
- :mod:`mlpp.hls.estimate`: resources and latency without Vivado (hls4ml's rules, da4ml, rule4ml);
- :mod:`mlpp.hls.synth`: C synthesis when Vitis HLS is installed;
- :mod:`mlpp.hls.cli`: ``mlpp hls convert|synth|warmup``.

Only numpy is imported here; hls4ml, Keras/TensorFlow, HGQ2, da4ml and rule4ml are imported by the
functions that need them.
"""
from __future__ import annotations

from mlpp.hls.fixed_point import FixedType, PrecisionError, integer_bits, parse_type, quantize

__all__ = ["FixedType", "PrecisionError", "integer_bits", "parse_type", "quantize"]
