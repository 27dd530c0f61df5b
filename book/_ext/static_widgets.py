"""Sphinx extension: notebook widgets shown as text, so that no page loads scripts from a CDN.

A cell that shows an ipywidget (Lecture 0's tqdm progress bar is one) makes myst-nb put the
widgets' saved state on the page and load RequireJS and the widget manager from cdnjs and
jsdelivr to draw it. Offline the page then logs two failed loads and shows nothing, and on line
it draws a progress bar that no reader can use. This extension writes each such output as the
text its widgets hold (for a tqdm bar: ``generating: 100%|##########| 5/5 [00:40<00:00, ...]``)
and drops the widget scripts from the page. Widgets in a running notebook are not affected.
"""
from __future__ import annotations

import html
import json
import re
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx

WIDGET_VIEW = '<script type="application/vnd.jupyter.widget-view+json">'
_TAGS = re.compile(r"<[^>]+>")


def widget_text(model_id: str, state: dict[str, Any]) -> str:
    """The text a widget and its children show, from the notebook's saved widget state."""
    model = state.get(model_id, {}).get("state", {})
    name = model.get("_model_name", "")
    if "children" in model:   # boxes (a tqdm bar is an HBox of label, bar, counter)
        return "".join(widget_text(child.removeprefix("IPY_MODEL_"), state) for child in model["children"])
    if name.endswith("ProgressModel"):
        done = model.get("value", 0) / model["max"] if model.get("max") else 0
        return "|" + "#" * round(10 * done) + " " * (10 - round(10 * done)) + "|"
    if "value" in model and isinstance(model["value"], (str, int, float)):
        # tqdm pads its labels with no-break and figure spaces
        return html.unescape(_TAGS.sub("", str(model["value"]))).replace("\xa0", " ").replace("\u2007", " ")
    return model.get("description", "")


def _widgets_as_text(app: Sphinx, doctree: nodes.document) -> None:
    docname = app.env.docname
    js_files = getattr(app.env, "nb_metadata", {}).get(docname, {}).get("js_files", {})
    if "ipywidgets_state" not in js_files:
        return
    state = json.loads(js_files["ipywidgets_state"][1]["body"]).get("state", {})
    for raw in list(doctree.findall(nodes.raw)):
        if raw.astext().startswith(WIDGET_VIEW):
            view = json.loads(raw.astext()[len(WIDGET_VIEW):].removesuffix("</script>"))
            text = widget_text(view["model_id"], state).strip() or "(an interactive widget)"
            raw.replace_self(nodes.literal_block(text, text, language="none", classes=["output", "text_plain"]))
    for key in [key for key in js_files if key.startswith("ipywidgets_")]:
        del js_files[key]


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("doctree-read", _widgets_as_text)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
