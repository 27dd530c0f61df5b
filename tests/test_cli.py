"""The mlpp command line: help that helps, one-line errors."""
from __future__ import annotations

import subprocess
from pathlib import Path
import sys

import pytest

from mlpp.cli import main


def test_top_level_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("data", "grade", "release"):
        assert command in out


def test_generate_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["data", "generate", "--help"])
    out = capsys.readouterr().out
    assert "--scheduler" in out and "--workers" in out and "examples:" in out


def test_generate_without_names_explains(capsys):
    assert main(["data", "generate"]) == 2
    assert "pass --all" in capsys.readouterr().err


def test_unknown_card_is_one_line(capsys, tiny_cards):
    assert main(["data", "generate", "nope", "--tier", "fast"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no dataset card 'nope'" in err


def test_list_shows_cards_and_sizes(capsys, tiny_cards):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "qg" in out and "40" in out


def test_list_reports_a_broken_card_in_one_line_and_lists_the_rest(capsys, tiny_cards):
    (tiny_cards / "broken.yml").write_text("name: broken\nseed: 1\n")
    assert main(["data", "list"]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().count("\n") == 0 and "broken.yml" in captured.err and "generator" in captured.err
    assert "tiny" in captured.out and "qg" in captured.out


def test_an_empty_environment_variable_means_the_default_folder(monkeypatch):
    from mlpp import settings

    monkeypatch.setenv("MLPP_CARDS", "")
    assert settings.cards_dir() == settings.repo_root() / "datasets"


def test_list_keeps_columns_aligned_for_long_card_names(capsys, tiny_cards):
    import yaml

    raw = yaml.safe_load((tiny_cards / "tiny.yml").read_text())
    raw["name"] = "a_rather_long_card_name"
    (tiny_cards / "a_rather_long_card_name.yml").write_text(yaml.safe_dump(raw))
    assert main(["data", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, rows = lines[0], [line for line in lines[1:] if not line.startswith("(")]
    assert len(rows) == 3
    # every row's classes column starts where the header's does
    start = header.index("classes")
    assert all(row[start - 1] == " " and row[start] != " " for row in rows), lines
    assert all(row[:start].rstrip() in {"a_rather_long_card_name", "qg", "tiny"} for row in rows), lines


def test_verify_reports_a_corrupt_file(capsys, tiny_cards, tmp_path):
    from mlpp.settings import cache_dir

    (cache_dir() / "tiny-fast.h5").write_bytes(b"nonsense")
    assert main(["data", "verify"]) == 1
    assert "CORRUPT" in capsys.readouterr().out


def test_console_script_is_installed():
    result = subprocess.run([sys.executable, "-m", "mlpp.cli", "data", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "generate" in result.stdout


def test_needed_cards_are_read_from_the_notebooks(tmp_path, monkeypatch):
    import json

    from mlpp.data.cli import needed_cards

    for folder, source in (("lectures", 'jets = data.load("jets5")\n'), ("solutions/x", "d = load('top', tier)")):
        (tmp_path / folder).mkdir(parents=True)
        nb = {"cells": [{"cell_type": "code", "source": source, "metadata": {}, "outputs": []}]}
        (tmp_path / folder / "nb.ipynb").write_text(json.dumps(nb))
    monkeypatch.setenv("MLPP_ROOT", str(tmp_path))
    monkeypatch.setenv("MLPP_CARDS", str(Path(__file__).resolve().parents[1] / "datasets"))
    assert needed_cards() == ["jets5", "top"]


@pytest.mark.parametrize("source, cards", [
    # a thread's own card for any import; the cards of its functions only where the notebook calls them
    ("from mlpp.tasks import top\njets = top.load()\n", ["top"]),
    ("from mlpp.tasks import top, zjet as z, wz\nz.load_smeared()\n", ["top", "wz", "zjet", "zjet_smeared"]),
    ("from mlpp.tasks import top\nx = top.load_smeared('fast')\ntrain, val, test = top.split()\n",
     ["top", "top_qcd", "top_smeared"]),
    ("import mlpp.tasks.top as t\nt.load_smeared()\nzjet.load_smeared()\n", ["top", "top_smeared"]),
    ("import mlpp.tasks.zjet\nmlpp.tasks.zjet.load_smeared()\n", ["zjet", "zjet_smeared"]),
    ("from mlpp.tasks.zjet import load_smeared as smeared\nevents = smeared()\n", ["zjet", "zjet_smeared"]),
    ("from mlpp.tasks.top import fingerprint\nnp.split(x, 2)\njets.split()\n", ["top"]),
])
def test_needed_cards_follow_the_threads_functions(tmp_path, monkeypatch, source, cards):
    """top.load_smeared() needs top_smeared, zjet.load_smeared() zjet_smeared and top.split() top_qcd, in
    whatever cell the call is and under whatever name the thread is imported; another thread's function of
    the same name, or a method called split, does not count."""
    import json

    from mlpp.data.cli import needed_cards

    (tmp_path / "lectures").mkdir()
    imports, calls = source.split("\n", 1)
    nb = {"cells": [{"cell_type": "code", "source": text, "metadata": {}, "outputs": []} for text in (imports, calls)]}
    (tmp_path / "lectures" / "nb.ipynb").write_text(json.dumps(nb))
    monkeypatch.setenv("MLPP_ROOT", str(tmp_path))
    monkeypatch.setenv("MLPP_CARDS", str(Path(__file__).resolve().parents[1] / "datasets"))
    assert needed_cards(("lectures",)) == cards
