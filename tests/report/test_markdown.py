"""report.md as a user reads it: the same story as the terminal, and the diff git applies."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from report_journals import (
    BENCH,
    BEST,
    ORIGINAL,
    multi_objective_journal,
    single_objective_journal,
)

from pytest_aide.report.markdown import render_report_md, write_report_md
from pytest_aide.report.terminal import step_line

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
        "| `tests/test_k.py::test_speed` | mean | lower is better | 1.25 ms | 1.1 ms | -12.0% |"
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
        r"^\| 6 ★ \| 6 \| 4 \| improve \| good \| mean=1.1 ms \| -12.0% \|", text, flags=re.M
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




def _row(text: str, node_id: int) -> list[str]:
    """The cells of node ``node_id``'s row in the table of all nodes."""
    match = re.search(rf"^\| {node_id}(?: ★)? \|.*\|$", text, flags=re.M)
    assert match, f"no row for node {node_id}"
    return [cell.strip() for cell in match[0].strip("|").split(" | ")]


def test_report_md_names_the_tuner_as_the_terminal_does() -> None:
    journal = single_objective_journal()
    # a tuner run with no --aide-model: the journal records which proposer ran
    journal.settings = {"steps": 7, "model": None, "proposer": "tune", "seed": 0}
    text = render_report_md(journal, ORIGINAL, BEST)
    assert "- proposer tune (built-in offline tuner)\n" in text
    assert "None" not in text
    journal.settings["proposer"] = "openai:gpt-test"
    assert "- proposer openai:gpt-test\n" in render_report_md(journal, ORIGINAL, BEST)


def test_report_md_of_an_older_journal_never_says_none() -> None:
    journal = single_objective_journal()
    journal.settings = {"steps": 7, "model": None, "seed": 0}  # before "proposer" was kept
    text = render_report_md(journal, ORIGINAL, BEST)
    assert "None" not in text and "proposer" not in text
    assert "- 7 steps\n" in text  # as many as asked: said once
    journal.settings["steps"] = 20
    assert "- 7 steps of 20 asked\n" in render_report_md(journal, ORIGINAL, BEST)


@pytest.mark.parametrize(("note", "remeasured"), [
    ("improvement within noise", 0),
    ("not better than the best when measured again next to it", 1),
])
def test_report_md_explains_a_node_faster_than_the_best_as_the_terminal_does(
    note: str, remeasured: int
) -> None:
    journal = single_objective_journal()
    faster = journal[7]  # faster than the best (#6, 0.0011), but not taken
    faster.metrics, faster.objective = {BENCH: 0.00105}, -0.00105
    faster.note, faster.remeasured = note, remeasured
    text = render_report_md(journal, ORIGINAL, BEST)
    header = re.search(r"^\| # \|.*\|$", text, flags=re.M)[0]
    assert [c.strip() for c in header.strip("|").split(" | ")][-2:] == ["note", "plan"]
    cells = _row(text, 7)
    assert cells[5] == "mean=1.05 ms" and cells[-2] == note
    assert cells[-1] == "plan of #7: improve"
    assert f"({note})" in step_line(journal, faster, steps=7, elapsed=1.0)


def test_report_md_notes_a_node_measured_again_like_the_terminal() -> None:
    journal = single_objective_journal()
    journal[1].remeasured = 2  # compared after being measured again next to the best
    text = render_report_md(journal, ORIGINAL, BEST)
    note = "measured again next to the best: the machine's speed had changed"
    assert _row(text, 1)[-2] == note
    assert f"({note})" in step_line(journal, journal[1], steps=7, elapsed=1.0)
    assert _row(text, 6)[-2] == ""  # the best needs no note
    assert _row(text, 2)[-2] == "ZeroDivisionError: division by zero"
