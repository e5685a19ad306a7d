"""report.md as a user reads it: the same story as the terminal, and the diff git applies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from report_journals import (
    BEST,
    ORIGINAL,
    multi_objective_journal,
    single_objective_journal,
)

from pytest_aide.report.markdown import write_report_md

# ---------------------------------------------------------------------------------------------
# report.md


def test_report_md_has_objectives_path_diff_and_a_row_per_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    journal = single_objective_journal()
    path = write_report_md(journal, tmp_path, ORIGINAL, BEST)
    assert path == tmp_path / "report.md"
    text = path.read_text(encoding="utf-8")
    assert (
        "| `tests/test_k.py::test_speed` | mean | lower is better | 0.00125 | 0.0011 | -12.0% |"
        in text
    )
    assert "Best confirmed: mean -11.0%" in text
    path_section = text.split("## Path to the best")[1].split("## Best diff")[0]
    headings = re.findall(r"^### #(\d+) (\w+)", path_section, flags=re.M)
    assert headings == [
        ("0", "baseline"),
        ("2", "draft"),
        ("3", "debug"),
        ("4", "debug"),
        ("6", "improve"),
    ]
    assert "> plan of #4: debug" in path_section
    assert "buggy: `ZeroDivisionError: division by zero`" in path_section
    diff = text.split("```diff\n")[1].split("```")[0]
    assert "--- a/src/k.py\n+++ b/src/k.py\n" in diff
    assert "-    return sum(range(x))\n+    return x * (x - 1) // 2\n" in diff
    rows = re.findall(r"^\| (\d+)(?: ★)? \| \d+ \|", text, flags=re.M)
    assert rows == [str(node.id) for node in journal.nodes]
    assert re.search(
        r"^\| 6 ★ \| 6 \| 4 \| improve \| good \| mean=0.0011 \| -12.0% \|", text, flags=re.M
    )
    assert "| 5 | 5 | 1 | improve | tampered |" in text


def test_report_md_without_improvement_says_so(tmp_path: Path) -> None:
    journal = single_objective_journal()
    journal.best_id = 0
    text = write_report_md(journal, tmp_path, ORIGINAL, None).read_text(encoding="utf-8")
    assert "No candidate beat the baseline." in text
    assert "No change: the original code stays." in text
    assert "```diff" not in text


def test_report_md_fence_survives_backticks_in_code(tmp_path: Path) -> None:
    journal = single_objective_journal()
    best = BEST + '"""Example:\n```\ntotal(3)\n```\n"""\n'
    text = write_report_md(journal, tmp_path, ORIGINAL, best).read_text(encoding="utf-8")
    assert "````diff\n" in text


def test_report_md_is_appended_to_the_github_step_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "step_summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    journal = single_objective_journal()
    report = write_report_md(journal, tmp_path / "run", ORIGINAL, BEST).read_text(encoding="utf-8")
    write_report_md(multi_objective_journal(), tmp_path / "run2", ORIGINAL, BEST)
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n" + report)
    assert text.count("# pytest-aide run") == 2


