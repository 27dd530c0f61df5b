"""Glued names agree between a lecture's code and its markdown (static: nothing is executed).

A lecture quotes its own results with myst-nb: ``glue("name", value, display=False)`` in a code
cell and ``{glue:text}`name:.3f``` (or ``{glue}``, ``{glue:figure}`` ...) in the markdown. A name
used in the markdown but glued nowhere renders as an error on the site; a name glued but never
used is a result computed for the text and then left out of it, which is allowed only when the
cell that glues it also prints. The names are read from the code without running it: a string
literal, an f-string (read as a pattern: ``f"auc_{key}"`` stands for ``auc_`` followed by anything,
and must match at least one name the markdown uses), or the key of a loop over a dict literal of
the same cell; any other name fails, so that the check always sees what is glued.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LECTURES = sorted((REPO / "lectures").glob("*.ipynb"))

# {glue}`name`, {glue:}`name`, {glue:text}`name:.3f`, {glue:any}`name`, {glue:md}`name:myst`, ...
_ROLE = re.compile(r"\{glue(?::\w*)?\}`([^`]+)`")
# ```{glue:figure} name   or   :::{glue} name
_DIRECTIVE = re.compile(r"^[ \t]*(?:`{3,}|:{3,})[ \t]*\{glue(?::\w*)?\}[ \t]+(\S+)", re.M)
_PRINTS = re.compile(r"(?<![\w.])print\(")


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def used_names(notebook: dict) -> set[str]:
    """Names that the markdown cells show with a glue role or directive (format spec removed)."""
    names = set()
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            text = _source(cell)
            names |= {role.split(":", 1)[0].strip() for role in _ROLE.findall(text)}
            names |= set(_DIRECTIVE.findall(text))
    return names


def _dict_keys(tree: ast.AST, name: str) -> list[str] | None:
    """The string keys of the dict literal assigned to ``name`` in the cell, if there is exactly one."""
    found = [node.value for node in ast.walk(tree) if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
             and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)]
    if len(found) != 1 or not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in found[0].keys):
        return None
    return [k.value for k in found[0].keys]


def _loop_keys(tree: ast.AST, variable: str) -> list[str] | None:
    """Keys of ``for variable[, value] in d.items()`` (or ``in d``) over a dict literal ``d`` of the cell."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.For):
            continue
        target = node.target.elts[0] if isinstance(node.target, ast.Tuple) else node.target
        if not (isinstance(target, ast.Name) and target.id == variable):
            continue
        it = node.iter
        if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr in ("items", "keys"):
            it = it.func.value
        if isinstance(it, ast.Name):
            return _dict_keys(tree, it.id)
    return None


def _names_of_call(tree: ast.AST, call: ast.Call) -> list[str] | None:
    """Names a glue call can give: a literal; an f-string as a pattern (``auc_{k}`` -> regex ``auc_.+``);
    the key variable of a loop over a dict literal. None when the name cannot be known without running."""
    if not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return [re.escape(arg.value)]
    if isinstance(arg, ast.JoinedStr):
        return ["".join(re.escape(part.value) if isinstance(part, ast.Constant) else ".+" for part in arg.values)]
    if isinstance(arg, ast.Name):
        keys = _loop_keys(tree, arg.id)
        return None if keys is None else [re.escape(k) for k in keys]
    return None


def glued_names(notebook: dict) -> tuple[dict[str, bool], list[str]]:
    """``({name pattern (regex): whether a cell that glues it prints}, [glue calls whose name is unknown])``."""
    names: dict[str, bool] = {}
    unknown = []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code":
            continue
        text = _source(cell)
        # IPython magics and shell escapes are not Python: blank them out, keeping line numbers.
        tree = ast.parse("\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines()))
        prints = bool(_PRINTS.search(text))
        for node in ast.walk(tree):
            is_glue = isinstance(node, ast.Call) and (
                (isinstance(node.func, ast.Name) and node.func.id == "glue")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "glue"))
            if not is_glue:
                continue
            patterns = _names_of_call(tree, node)
            if patterns is None:
                unknown.append(ast.get_source_segment(text, node) or "glue(...)")
            for pattern in patterns or []:
                names[pattern] = names.get(pattern, False) or prints
    return names, unknown


def glue_problems(notebook: dict) -> list[str]:
    """Every disagreement between the glued names of a notebook and those its markdown uses."""
    used = used_names(notebook)
    glued, unknown = glued_names(notebook)
    problems = [f"glue name cannot be read without running the cell: {call}" for call in unknown]
    problems += [f"used in markdown but never glued: {name}" for name in sorted(used)
                 if not any(re.fullmatch(pattern, name) for pattern in glued)]
    problems += [f"glued but neither used in markdown nor printed by its cell: {pattern}"
                 for pattern, printed in sorted(glued.items())
                 if not printed and not any(re.fullmatch(pattern, name) for name in used)]
    return problems


def _notebook(markdown: list[str], code: list[str]) -> dict:
    return {"cells": [{"cell_type": "markdown", "source": text} for text in markdown]
            + [{"cell_type": "code", "source": text} for text in code]}


def test_roles_and_directives_are_read_with_their_format_removed():
    notebook = _notebook(["AUC {glue:text}`auc_cnn:.3f`, {glue}`tier` and {glue:}`n_train` jets.\n"
                          "```{glue:figure} roc_figure\n:name: fig-roc\n```\n"
                          ":::{glue:md} table_md\n:::\n"], [])
    assert used_names(notebook) == {"auc_cnn", "tier", "n_train", "roc_figure", "table_md"}


def test_a_consistent_notebook_passes():
    notebook = _notebook(["The CNN reaches {glue:text}`auc_cnn:.3f` in the {glue:text}`tier` tier."],
                         ['from myst_nb import glue\nglue("auc_cnn", 0.98, display=False)\n',
                          "glue('tier', 'fast', display=False)\n",
                          'glue("n_test", 2000, display=False)\nprint(f"{2000} test jets")\n'])
    assert glue_problems(notebook) == []


def test_a_name_used_but_not_glued_fails():
    notebook = _notebook(["The CNN reaches {glue:text}`auc_cnn:.3f`."], ['glue("auc_cn", 0.98, display=False)'])
    assert glue_problems(notebook) == ["used in markdown but never glued: auc_cnn",
                                       "glued but neither used in markdown nor printed by its cell: auc_cn"]


def test_a_glued_name_that_is_neither_used_nor_printed_fails():
    notebook = _notebook(["No number here."], ['glue("auc_cnn", 0.98, display=False)'])
    assert glue_problems(notebook) == ["glued but neither used in markdown nor printed by its cell: auc_cnn"]


def test_names_built_from_an_fstring_or_a_dict_of_the_cell_are_read():
    notebook = _notebook(["{glue:text}`auc_W` {glue:text}`auc_Z` {glue:text}`tier` {glue:text}`n_test`"],
                         ['for k in "WZ":\n    glue(f"auc_{k}", 0.9, display=False)\n',
                          'values = {"tier": "fast", "n_test": 2000}\nfor key, value in values.items():\n'
                          '    glue(key, value, display=False)\n'])
    assert glue_problems(notebook) == []
    unused = _notebook(["{glue:text}`tier`"], ['values = {"tier": "fast", "n_tst": 2000}\n'
                                               'for key, value in values.items():\n    glue(key, value, display=False)\n',
                                               'glue(f"rej_{k}", 3.0, display=False)\n'])
    assert glue_problems(unused) == ["glued but neither used in markdown nor printed by its cell: n_tst",
                                     "glued but neither used in markdown nor printed by its cell: rej_.+"]


def test_a_name_that_only_running_the_cell_can_tell_fails():
    notebook = _notebook(["{glue:text}`auc_W`"], ['glue(make_name("W"), 0.9, display=False)\n'])
    assert glue_problems(notebook) == ['glue name cannot be read without running the cell: '
                                       'glue(make_name("W"), 0.9, display=False)',
                                       "used in markdown but never glued: auc_W"]


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: p.name)
def test_lecture_glue_names_agree(path: Path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert glue_problems(notebook) == [], f"{path.name}: {glue_problems(notebook)}"
