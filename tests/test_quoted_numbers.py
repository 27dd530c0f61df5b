"""The re-typing check: it catches a measured number typed into markdown, and only that."""
from __future__ import annotations

import json

import pytest

from mlpp.quoted_numbers import find_retyped, main, significant_digits


def _nb(markdown: list[str], outputs: list[str]) -> tuple[dict, dict]:
    md = [{"cell_type": "markdown", "source": text} for text in markdown]
    code = [{"cell_type": "code", "source": "print(...)", "outputs": [{"output_type": "stream", "text": text}]}
            for text in outputs]
    return {"cells": md + code}, {"cells": md + code}


@pytest.mark.parametrize("written, digits", [("0.986", 3), ("12.4", 3), ("2001", 4), ("990", 2), ("30", 1),
                                             ("0.8", 1), ("100 000", 1), ("1300", 2), ("0.050", 2), ("1.00", 3)])
def test_significant_digits(written, digits):
    assert significant_digits(written) == digits


def test_a_retyped_result_is_caught_at_the_precision_it_is_written():
    source, run = _nb(["The CNN reaches AUC 0.986 and rejects 2001 QCD jets; training took 12.4 min."],
                      ["CNN  auc 0.98612  1/eB 2001.3\n", "train time 742.9 s = 12.38 min\n"])
    found = find_retyped(source, run, "02.ipynb")
    assert [f.number for f in found] == ["0.986", "2001", "12.4"]
    assert "02.ipynb, markdown cell 0" in str(found[0])


def test_ordinary_numbers_pass():
    source, run = _nb(["We keep 30 particles per jet, R = 0.8, 100 000 training jets, a 64-32-32-5 network, "
                       "$550 < p_T < 650$ GeV."],
                      ["30 particles, R=0.8, 100000 jets, 550 650 64 32 5\n"])
    assert find_retyped(source, run) == []


def test_numbers_the_run_does_not_print_pass():
    # a more precise written value cannot come from a less precise output, and other values differ
    source, run = _nb(["Here AUC 0.986 and 1/eB 2001."], ["AUC 0.99, 1/eB 1998.7\n"])
    assert find_retyped(source, run) == []


@pytest.mark.parametrize("text", [
    "The published CNN reaches AUC 0.981 (arXiv:1902.09914). Ours reaches 0.975.",
    "ParticleNet reaches 0.981 {cite:p}`Qu2020`. Ours reaches 0.975.",
    "| tagger | AUC | source |\n|---|---|---|\n| CNN | 0.981 | arXiv:1902.09914 |\n| ours | 0.975 | this run |",
    "- the CNN, 0.981 (arXiv:1902.09914)\n- ours, 0.975",
])
def test_a_cited_number_passes_but_only_in_its_own_sentence(text):
    source, run = _nb([text], ["0.981 0.9748\n"])
    assert [f.number for f in find_retyped(source, run)] == ["0.975"]


def test_glue_roles_code_and_links_are_not_read():
    source, run = _nb(["AUC {glue:text}`auc_cnn:.3f`, see `model(0.986)` and [the paper](https://x.org/1234)."],
                      ["0.986 1234\n"])
    assert find_retyped(source, run) == []


def test_arithmetic_in_math_passes_but_math_with_symbols_does_not():
    source, run = _nb(["A guess gives $\\ln 5 \\approx 1.609$ and $17\\cdot64 + 65\\cdot32 = 3168$ weights; "
                       "we measure $1/\\varepsilon_B \\approx 2001$."],
                      ["1.6094 3168 2001.2\n"])
    assert [f.number for f in find_retyped(source, run)] == ["2001"]


def test_the_command_exits_1_on_a_retyped_number(tmp_path, capsys):
    source, run = _nb(["AUC 0.986."], ["0.9861\n"])
    (tmp_path / "src").mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "src" / "02.ipynb").write_text(json.dumps(source))
    (tmp_path / "run" / "02.ipynb").write_text(json.dumps(run))
    assert main([str(tmp_path / "src"), str(tmp_path / "run")]) == 1
    assert "'0.986'" in capsys.readouterr().out
    (tmp_path / "src" / "02.ipynb").write_text(json.dumps(_nb(["AUC {glue:text}`auc`."], ["0.9861\n"])[0]))
    assert main([str(tmp_path / "src"), str(tmp_path / "run")]) == 0
    assert main([str(tmp_path / "src"), str(tmp_path / "missing")]) == 2
