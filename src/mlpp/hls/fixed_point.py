"""Arbitrary-precision fixed-point numbers as FPGAs (and hls4ml's C++ emulation) use them.

An ``ap_fixed<W,I>`` number has ``W`` bits in all, ``I`` of them (sign included) before the
binary point, so ``F = W - I`` fractional bits: it is an integer ``m`` times the step ``2**-F``,
with ``m`` in ``[-2**(W-1), 2**(W-1) - 1]`` (``ap_ufixed``: ``[0, 2**W - 1]``). Converting a real
number first *rounds* it to a multiple of the step, then handles *overflow* if it is out of range:

rounding (``Q``)  ``TRN`` floor (the default), ``RND`` half up (towards +inf), ``TRN_ZERO``,
                  ``RND_ZERO``, ``RND_INF``, ``RND_MIN_INF``, ``RND_CONV`` (half to even)
overflow (``O``)  ``WRAP`` keep the low W bits (the default), ``SAT`` clip to the range,
                  ``SAT_ZERO`` out of range becomes 0, ``SAT_SYM`` clip to ``[-max, max]``

>>> quantize([0.3, 1.9, -2.6], width=4, integer=2)   # ap_fixed<4,2>: step 0.25, range [-2, 1.75]
array([0.25, 1.75, 1.25])
>>> quantize([0.3, 1.9, -2.6], 4, 2, rounding="RND", overflow="SAT")
array([ 0.25,  1.75, -2.  ])

(-2.6 is -10.4 steps: TRN gives -11, outside [-8, 7], and WRAP adds 16 to get 5 steps = 1.25.)

``tests/test_hls.py`` checks :func:`quantize` against hls4ml's compiled ``ap_fixed`` types on a
grid of values, for every rounding and overflow mode.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

ROUNDING_MODES = ("TRN", "RND", "TRN_ZERO", "RND_ZERO", "RND_INF", "RND_MIN_INF", "RND_CONV")
OVERFLOW_MODES = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")
MAX_WIDTH = 64  # wider types exist in C++, but float64 arithmetic below is exact only up to 53 bits

_TYPE = re.compile(
    r"^\s*(?P<kind>ap_fixed|ap_ufixed|fixed|ufixed)\s*<\s*(?P<w>-?\d+)\s*,\s*(?P<i>-?\d+)\s*"
    r"(?:,\s*(?:AP_)?(?P<q>[A-Z_]+)\s*)?(?:,\s*(?:AP_)?(?P<o>[A-Z_]+)\s*)?(?:,\s*(?P<n>\d+)\s*)?>\s*$")


class PrecisionError(ValueError):
    """A fixed-point type that cannot exist or cannot be parsed; the message is one line."""


@dataclass(frozen=True)
class FixedType:
    """``ap_fixed<width, integer, rounding, overflow>`` (``signed=False``: ``ap_ufixed``)."""

    width: int
    integer: int
    signed: bool = True
    rounding: str = "TRN"
    overflow: str = "WRAP"

    def __post_init__(self) -> None:
        name = f"{'ap_fixed' if self.signed else 'ap_ufixed'}<{self.width},{self.integer}>"
        if not 1 <= self.width <= MAX_WIDTH:
            raise PrecisionError(f"{name}: the width must be between 1 and {MAX_WIDTH} bits")
        if abs(self.integer) > MAX_WIDTH:
            raise PrecisionError(f"{name}: the integer bits must be between -{MAX_WIDTH} and {MAX_WIDTH}")
        if self.rounding not in ROUNDING_MODES:
            raise PrecisionError(f"{name}: unknown rounding mode {self.rounding!r}; use one of {', '.join(ROUNDING_MODES)}")
        if self.overflow not in OVERFLOW_MODES:
            raise PrecisionError(f"{name}: unknown overflow mode {self.overflow!r}; use one of {', '.join(OVERFLOW_MODES)}")

    @property
    def fractional(self) -> int:
        """Number of bits after the binary point, ``F = W - I`` (may exceed W if I < 0)."""
        return self.width - self.integer

    @property
    def step(self) -> float:
        """The smallest difference between two representable values, ``2**-F``."""
        return 2.0 ** -self.fractional

    @property
    def min(self) -> float:
        """Smallest representable value."""
        return -(2.0 ** (self.integer - 1)) if self.signed else 0.0

    @property
    def max(self) -> float:
        """Largest representable value, ``2**(I-1) - step`` (unsigned: ``2**I - step``)."""
        return 2.0 ** (self.integer - (1 if self.signed else 0)) - self.step

    def quantize(self, x: np.ndarray | float) -> np.ndarray:
        """``x`` converted to this type (float64 array of the same shape)."""
        return quantize(x, self.width, self.integer, self.signed, self.rounding, self.overflow)

    def __str__(self) -> str:
        base = f"{'ap_fixed' if self.signed else 'ap_ufixed'}<{self.width},{self.integer}"
        if (self.rounding, self.overflow) == ("TRN", "WRAP"):
            return base + ">"
        return base + f",AP_{self.rounding},AP_{self.overflow}>"


def parse_type(text: str | FixedType) -> FixedType:
    """A :class:`FixedType` from ``"ap_fixed<16,6>"``, ``"ap_ufixed<8,0,AP_RND,AP_SAT>"`` or
    hls4ml's ``"fixed<16,6,TRN,WRAP,0>"``. Raises :class:`PrecisionError` with a one-line message."""
    if isinstance(text, FixedType):
        return text
    match = _TYPE.match(str(text))
    if not match:
        raise PrecisionError(f"cannot read the precision {text!r}: write it as ap_fixed<W,I> (W bits in all, "
                             "I integer bits with the sign), optionally ap_fixed<W,I,AP_RND,AP_SAT>")
    rounding = match["q"] or "TRN"
    overflow = match["o"] or "WRAP"
    if rounding in OVERFLOW_MODES and match["o"] is None:  # ap_fixed<8,3,AP_SAT> is not valid C++ either
        raise PrecisionError(f"{text!r}: the rounding mode comes before the overflow mode, e.g. ap_fixed<8,3,AP_TRN,AP_SAT>")
    return FixedType(int(match["w"]), int(match["i"]), signed=not match["kind"].endswith("ufixed"),
                     rounding=rounding, overflow=overflow)


def quantize(x: np.ndarray | float, width: int, integer: int, signed: bool = True,
             rounding: str = "TRN", overflow: str = "WRAP") -> np.ndarray:
    """Values of ``x`` as ``ap_fixed<width, integer, rounding, overflow>`` would store them.

    ``x``: array-like of real numbers (any shape). Returns a float64 array of the same shape;
    ``x`` is not changed. ``integer`` may be negative or larger than ``width`` (legal in C++:
    the step is then ``2**(integer - width)``). Rounding comes first (to a multiple of ``2**-(width-integer)``), then
    the overflow mode maps the integer ``m`` back into the range of ``width`` bits.
    """
    kind = FixedType(width, integer, signed, rounding, overflow)  # validates the arguments
    frac = kind.fractional
    scaled = np.asarray(x, dtype=np.float64) * 2.0 ** frac  # exact: a power-of-two scale
    m = _round(scaled, rounding)
    low = -(2.0 ** (width - 1)) if signed else 0.0
    high = 2.0 ** (width - 1) - 1 if signed else 2.0 ** width - 1
    if overflow == "WRAP":
        m = np.mod(m - low, 2.0 ** width) + low
    elif overflow == "SAT":
        m = np.clip(m, low, high)
    elif overflow == "SAT_ZERO":
        m = np.where((m < low) | (m > high), 0.0, m)
    else:  # SAT_SYM: the most negative code is excluded, so the range is symmetric
        m = np.clip(m, -high if signed else low, high)
    return m * 2.0 ** -frac


def _round(scaled: np.ndarray, rounding: str) -> np.ndarray:
    """Integer codes from ``x * 2**F``, one rounding mode of the ap_fixed standard."""
    if rounding == "TRN":
        return np.floor(scaled)
    if rounding == "TRN_ZERO":
        return np.trunc(scaled)
    if rounding == "RND":
        return np.floor(scaled + 0.5)
    if rounding == "RND_MIN_INF":
        return np.ceil(scaled - 0.5)
    if rounding == "RND_ZERO":
        return np.where(scaled >= 0, np.ceil(scaled - 0.5), np.floor(scaled + 0.5))
    if rounding == "RND_INF":
        return np.where(scaled >= 0, np.floor(scaled + 0.5), np.ceil(scaled - 0.5))
    return np.round(scaled)  # RND_CONV: numpy rounds half to even


def integer_bits(values: np.ndarray, signed: bool = True) -> int:
    """The fewest integer bits ``I`` (sign included) for which every value fits without overflow.

    ``values``: array-like. A signed type holds ``-2**(I-1) <= v < 2**(I-1)``, so 4.0 needs
    I = 4 while -4.0 needs only I = 3, and 0.3 fits with I = 0 (range [-0.5, 0.5)); an unsigned
    type holds ``0 <= v < 2**I``. The step is ignored (the fractional bits are chosen separately).
    If every value is zero the answer is 1 (signed) or 0 (unsigned).
    """
    v = np.asarray(values, dtype=np.float64)
    top = float(np.max(v)) if v.size else 0.0
    bottom = float(np.min(v)) if v.size else 0.0
    if not signed and bottom < 0:
        raise ValueError("negative values do not fit an unsigned type")
    candidates = []
    if top > 0:  # top < 2**(I-1) (signed) or top < 2**I (unsigned)
        candidates.append(int(np.floor(np.log2(top))) + (2 if signed else 1))
    if bottom < 0:  # -2**(I-1) <= bottom
        candidates.append(int(np.ceil(np.log2(-bottom))) + 1)
    if not candidates:
        return 1 if signed else 0
    return max(candidates)


def dense_fixed(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, weight: FixedType | str,
                bias_type: FixedType | str, accum: FixedType | str, result: FixedType | str) -> np.ndarray:
    """hls4ml's ``dense_latency`` in numpy: one Dense layer in fixed point, bit for bit.

    ``x``: (n, n_in) inputs already in their fixed-point type; ``kernel``: (n_in, n_out) and
    ``bias``: (n_out,) float weights (quantised here to ``weight`` and ``bias_type`` the way
    hls4ml writes them: printed with F decimals, then read into the C++ type). Every product is
    cast to ``accum``, summed with the bias (also in ``accum``), and the sum cast to ``result``.
    Returns (n, n_out) float64.
    """
    weight, bias_type, accum, result = (parse_type(t) for t in (weight, bias_type, accum, result))
    kernel_q = weight.quantize(_as_written(kernel, weight))
    bias_q = bias_type.quantize(_as_written(bias, bias_type))
    x = np.asarray(x, dtype=np.float64)
    total = accum.quantize(bias_q)[None, :]
    for start in range(0, kernel_q.shape[0], 8):  # (n, 8, n_out) products at a time keep memory small
        products = accum.quantize(x[:, start:start + 8, None] * kernel_q[None, start:start + 8, :])
        total = total + products.sum(axis=1)
    if accum.overflow == "WRAP":  # a sum of wrapped terms wraps the same way as the exact sum
        total = accum.quantize(total)
    return result.quantize(total)


def _as_written(values: np.ndarray, kind: FixedType) -> np.ndarray:
    """Weights as hls4ml's writer prints them: ``f"{value:.{F}f}"`` (then C++ reads them back)."""
    digits = max(0, kind.fractional)
    flat = [float(f"{v:.{digits}f}") for v in np.asarray(values, dtype=np.float64).ravel()]
    return np.asarray(flat).reshape(np.shape(values))
