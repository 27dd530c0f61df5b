"""Find measured numbers typed into a lecture's text instead of printed or glued from the run.

A lecture may quote its own results only through its outputs (a printed line, a table) or
myst-nb's ``glue`` with ``{glue:text}`` in the markdown; a number typed by hand goes stale
the next time the notebook runs. This module compares the numbers in a notebook's markdown
with those in its executed outputs: a markdown number with three or more significant
digits (0.986, 12.4, 2001; not 30, 0.8 or 100 000) that equals an output number, rounded to
the precision it is written with, is reported, unless the sentence, table row or list
item it stands in cites a paper (``arXiv:…`` or a ``{cite…}`` role), since published
numbers are typed with their source. Math that is pure arithmetic on numbers
(``$\ln 5 \approx 1.609$``, ``$17\cdot 64 + 65 = 1153$``) is not a result and is skipped.

    python -m mlpp.quoted_numbers lectures/ _build/jupyter_execute/lectures/
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path

# Digits with optional thousands separators (space, thin space, no-break space or comma) and decimals.
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:[ \u2009\u202f\u00a0,]\d{3})+|\d+)(\.\d+)?(?![\w])")
_CITES = re.compile(r"arXiv:\s*\d|\{cite[:\w]*\}|doi:|\[[^\]]*\]\(https?://arxiv\.org")
_SKIP = re.compile(r"`[^`]*`|\{glue[:\w]*\}`[^`]*`|\]\([^)]*\)|https?://\S+|<[^>]+>")
_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.S)
# Math that is only arithmetic on numbers (digits, operators, \ln, \cdot, \approx ...): a reader can check it.
_ARITHMETIC = re.compile(r"(?:[\d\s.,+\-*/=()^{}]|\\(?:ln|log|exp|sqrt|frac|cdot|times|approx|simeq|left|right|,|;|!))*")


@dataclass(frozen=True)
class Retyped:
    """One number of a notebook's markdown that its outputs also print."""

    notebook: str
    cell: int
    number: str
    context: str

    def __str__(self) -> str:
        return f"{self.notebook}, markdown cell {self.cell}: {self.number!r} in: {self.context}"


def significant_digits(text: str) -> int:
    """Significant digits of a written number: leading zeros never count, an integer's trailing zeros neither."""
    digits = re.sub(r"\D", "", text.split(".")[0]) if "." not in text else re.sub(r"\D", "", text)
    digits = digits.lstrip("0")
    if "." not in text:
        digits = digits.rstrip("0")
    return len(digits)


def _value(text: str) -> Decimal | None:
    try:
        return Decimal(re.sub(r"[ \u2009\u202f\u00a0,]", "", text))
    except InvalidOperation:
        return None


def numbers_in(text: str) -> list[str]:
    """The numbers written in ``text`` (as written, separators kept)."""
    return [m.group(0) for m in _NUMBER.finditer(text)]


def _pieces(markdown: str) -> list[str]:
    """Sentences, table rows and list items: the unit within which a citation excuses a number."""
    pieces = []
    for block in re.split(r"\n\s*\n", markdown):
        lines = block.splitlines()
        if any(line.lstrip().startswith("|") for line in lines):
            pieces += lines
            continue
        items = re.split(r"\n(?=\s*(?:[-*+]|\d+\.)\s)", block)
        for item in items:
            pieces += re.split(r"(?<=[.!?])\s+(?=[A-Z(])", item.replace("\n", " "))
    return pieces


def output_values(executed: dict) -> set[Decimal]:
    """Every number in the text, HTML and markdown outputs of an executed notebook."""
    values = set()
    for cell in executed.get("cells", []):
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")]
            for mime in ("text/plain", "text/html", "text/markdown", "text/latex"):
                texts.append(out.get("data", {}).get(mime, ""))
            for text in texts:
                text = "".join(text) if isinstance(text, list) else text
                for written in numbers_in(text):
                    value = _value(written)
                    if value is not None:
                        values.add(value)
    return values


def _matches(written: str, outputs: set[Decimal]) -> bool:
    value = _value(written)
    if value is None:
        return False
    places = len(written.split(".")[1]) if "." in written else 0
    quantum = Decimal(1).scaleb(-places)
    return any(out.quantize(quantum, rounding=ROUND_HALF_EVEN) == value
               for out in outputs if out.as_tuple().exponent <= -places or out == value)


def find_retyped(source: dict, executed: dict, name: str = "notebook") -> list[Retyped]:
    """Markdown numbers of ``source`` (3+ significant digits, no citation) that ``executed`` prints."""
    outputs = output_values(executed)
    found = []
    for index, cell in enumerate(source.get("cells", [])):
        if cell.get("cell_type") != "markdown":
            continue
        text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for piece in _pieces(text):
            if _CITES.search(piece):
                continue
            piece_text = _MATH.sub(lambda m: " " if _ARITHMETIC.fullmatch(m.group(1) or m.group(2)) else m.group(0),
                                   _SKIP.sub(" ", piece))
            for written in numbers_in(piece_text):
                if significant_digits(written) >= 3 and _matches(written, outputs):
                    found.append(Retyped(name, index, written, piece.strip()[:160]))
    return found


def check_folder(sources: Path, executed: Path) -> list[Retyped]:
    """:func:`find_retyped` for every notebook of ``sources`` that has an executed copy in ``executed``."""
    found = []
    for path in sorted(Path(sources).glob("*.ipynb")):
        run = Path(executed) / path.name
        if run.exists():
            found += find_retyped(json.loads(path.read_text()), json.loads(run.read_text()), path.name)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mlpp.quoted_numbers",
        description="List numbers typed into lecture markdown that the executed lecture also prints "
                    "(measured results must be printed or glued, not typed). Exit 1 if there are any.")
    parser.add_argument("sources", type=Path, help="folder of the lecture notebooks (e.g. lectures/)")
    parser.add_argument("executed", type=Path,
                        help="folder of their executed copies (e.g. _build/jupyter_execute/lectures/)")
    args = parser.parse_args(argv)
    if not args.executed.is_dir():
        print(f"error: {args.executed} is not a folder; build the site first (make book)", file=sys.stderr)
        return 2
    found = check_folder(args.sources, args.executed)
    for item in found:
        print(item)
    print(f"{len(found)} typed number(s) that the run prints: glue them (myst_nb.glue) instead"
          if found else "no typed number that the run prints")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
