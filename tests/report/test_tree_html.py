"""tree.html's data: the whole journal, each node's diff, and nothing that breaks the page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from report_journals import (
    BREAKOUT,
    ORIGINAL,
    failed_baseline_journal,
    multi_objective_journal,
    single_objective_journal,
)

from pytest_aide.journal import Journal
from pytest_aide.report.markdown import write_report_md
from pytest_aide.report.terminal import step_line, summary_lines
from pytest_aide.report.tree_html import write_tree_html

# ---------------------------------------------------------------------------------------------
# tree.html


def embedded_journal(html_text: str) -> dict:
    match = re.search(
        r'<script type="application/json" id="aide-data">(.*?)</script>', html_text, flags=re.S
    )
    assert match, "no embedded journal"
    return json.loads(match[1])


@pytest.mark.parametrize("make", [single_objective_journal, multi_objective_journal])
def test_tree_html_embeds_every_node(tmp_path: Path, make) -> None:
    journal: Journal = make()
    path = write_tree_html(journal, tmp_path / "tree.html")
    data = embedded_journal(path.read_text(encoding="utf-8"))
    assert Journal.from_dict(data["journal"]).to_dict() == journal.to_dict()
    assert sorted(int(k) for k in data["diffs"]) == [
        n.id for n in journal.nodes if n.parent is not None
    ]


def test_tree_html_code_cannot_break_out_of_the_data_script(tmp_path: Path) -> None:
    journal = single_objective_journal()
    journal[7].error = "<!-- <script>"
    text = write_tree_html(journal, tmp_path / "tree.html").read_text(encoding="utf-8")
    assert "alert(1)" in text  # the code is there, but only inside the JSON string
    assert "</script><script>alert(1)" not in text
    assert text.count("</script>") == 3  # onerror handler, data, page script
    assert embedded_journal(text)["journal"]["nodes"][5]["code"] == BREAKOUT


def test_tree_html_is_self_contained(tmp_path: Path) -> None:
    text = write_tree_html(single_objective_journal(), tmp_path / "tree.html").read_text(
        encoding="utf-8"
    )
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, flags=re.I)
    assert not re.search(r"@import|url\(\s*['\"]?\s*(https?:)?//", text, flags=re.I)
    assert "<link" not in text
    assert "<script src" not in text


def test_tree_html_keeps_non_finite_values_parseable(tmp_path: Path) -> None:
    journal = single_objective_journal()
    journal[2].metrics = {"tests/test_k.py::test_speed": float("inf")}
    data = embedded_journal(write_tree_html(journal, tmp_path / "t.html").read_text("utf-8"))
    assert data["journal"]["nodes"][2]["metrics"] == {"tests/test_k.py::test_speed": None}


def test_a_failed_baseline_reports_without_crashing(tmp_path: Path) -> None:
    journal = failed_baseline_journal()
    line = step_line(journal, journal.root, steps=5, elapsed=1.0)
    assert line == "step 0/5 baseline  BUGGY: test_ok: AssertionError: assert 3 == 4  1.0s"
    text = "\n".join(
        summary_lines(journal, tmp_path, tmp_path, applied=False, patch=None, resume_hint="")
    )
    assert "mean (lower is better): baseline n/a" in text
    assert "the baseline fails its tests" in text
    report = write_report_md(journal, tmp_path, ORIGINAL, None).read_text(encoding="utf-8")
    assert "| 0 | 0 |  | baseline | buggy | buggy |" in report
    data = embedded_journal(write_tree_html(journal, tmp_path / "t.html").read_text("utf-8"))
    assert len(data["journal"]["nodes"]) == 1
