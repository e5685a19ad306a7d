"""``tree.html``: one self-contained page that draws the search tree of a run.

The page holds the whole journal as JSON in a ``<script type="application/json">`` tag and
draws everything with inline JavaScript and SVG, so it opens from disk, offline, years later,
and a CI artifact needs nothing else. The script and style are real files in
``assets/`` beside this module (package data), inlined here. Diffs are computed here with
difflib, as for ``report.md``, rather than re-implemented in JavaScript.
"""

from __future__ import annotations

import html
import json
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_aide.journal import Journal, write_atomic
from pytest_aide.metrics import BENCHMARK_STATS
from pytest_aide.report.artifacts import code_patch
from pytest_aide.report.formatting import objective_labels, time_text
from pytest_aide.sources import Sources, SourcesError


def render_tree_html(journal: Journal) -> str:
    diffs = {}
    for node in journal.nodes:
        if node.parent is not None:
            parent_code = journal[node.parent].code
            diffs[str(node.id)] = code_patch(journal.relpaths, parent_code, node.code)
    data = {
        "journal": _readable(journal),
        "labels": objective_labels(journal),
        "units": {o["nodeid"]: _unit(o["metric"]) for o in journal.objectives},
        "time": time_text(journal),
        "diffs": diffs,
    }
    parts = {
        "TITLE": html.escape(f"pytest-aide · {journal.targets_text} · {journal.run_id}"),
        "CSS": _asset("tree.css"),
        "JS": _asset("tree.js"),
        "DATA": embed_json(data),
    }
    # one pass, so that text inserted for one placeholder is never taken for another
    return re.sub(r"__(TITLE|CSS|JS|DATA)__", lambda match: parts[match[1]], PAGE)


def _readable(journal: Journal) -> dict:
    """The journal as the page shows it: with several target files, each node's code as the
    files one after another, each under a line naming it (not their stored JSON)."""
    data = journal.to_dict()
    if len(journal.relpaths) == 1:
        return data
    for node in data["nodes"]:
        try:
            sources = Sources.decode(node["code"], journal.relpaths)
        except SourcesError:
            continue
        node["code"] = "\n".join(f"# ---- {path} ----\n{text}" for path, text in sources)
    return data


def _unit(metric: str) -> str:
    """How the page writes a metric's values: "time" (s, ms, µs, ns), "ops" (per second), or
    "" (as they are), as ``formatting.fmt_metric`` does."""
    if metric not in BENCHMARK_STATS:
        return ""
    return "ops" if metric == "ops" else "time"


def _asset(name: str) -> str:
    return (resources.files("pytest_aide.report") / "assets" / name).read_text(encoding="utf-8")


def embed_json(data: Any) -> str:
    """JSON that is safe inside a ``<script>`` element.

    Every ``<`` is written as ``\\u003c``, so no ``</script>`` or ``<!--`` in user code can end
    or confuse the element; non-finite floats become null, which JSON.parse accepts.
    """
    return json.dumps(_finite(data), allow_nan=False).replace("<", "\\u003c")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>__CSS__</style>
<script>
window.onerror = function (message, source, line) {
  var box = document.getElementById("aide-error");
  if (!box) {
    box = document.createElement("pre");
    box.id = "aide-error";
    (document.body || document.documentElement).appendChild(box);
  }
  box.textContent += "Uncaught error: " + message + " (line " + line + ")\\n";
};
</script>
</head>
<body>
<header id="head"></header>
<main>
  <section id="left">
    <div class="card">
      <div class="card-title"><span>Metric over steps</span><select id="series"></select></div>
      <div id="chart"></div>
    </div>
    <div class="card">
      <div class="card-title"><span>Search tree</span><span id="legend"></span></div>
      <div id="tree"></div>
    </div>
  </section>
  <aside id="detail" class="card"></aside>
</main>
<script type="application/json" id="aide-data">__DATA__</script>
<script>__JS__</script>
</body>
</html>
"""


def write_tree_html(journal: Journal, path: Path) -> Path:
    """Write the self-contained search tree page ."""
    write_atomic(path, render_tree_html(journal))
    return path
