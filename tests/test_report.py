"""The run report as a user reads it: step lines, the summary, report.md and tree.html."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from report_journals import (
    BEST,
    BREAKOUT,
    ORIGINAL,
    failed_baseline_journal,
    multi_objective_journal,
    single_objective_journal,
)

from pytest_aide.journal import Journal
from pytest_aide.report import (
    fmt_value,
    short_reason,
    step_line,
    summary_lines,
    write_report_md,
    write_tree_html,
)

# ---------------------------------------------------------------------------------------------
# step lines


def test_step_line_of_the_best_improve_shows_metric_best_and_tokens() -> None:
    journal = single_objective_journal()
    line = step_line(journal, journal[6], steps=7, elapsed=4.1)
    assert line.startswith("step 6/7 improve <- 4  ")
    assert "mean=0.0011 " in line
    assert "best=0.0011 (-12.0%)" in line
    assert "4.1s" in line
    assert line.endswith("1.2k tok")


def test_step_line_of_the_baseline_has_no_parent_best_or_tokens() -> None:
    journal = single_objective_journal()
    line = step_line(journal, journal.root, steps=7, elapsed=2.0)
    assert line == "step 0/7 baseline  mean=0.00125  2.0s"


def test_step_line_best_so_far_ignores_later_nodes() -> None:
    journal = single_objective_journal()
    # at step 1 only the baseline and a slower draft exist: the baseline is still the best
    assert "best=0.00125 (baseline)" in step_line(journal, journal[1], 7, 3.0)
    assert "best=0.0012 (-4.0%)" in step_line(journal, journal[5], 7, 3.0)


@pytest.mark.parametrize(
    ("node_id", "expected"),
    [
        (2, "BUGGY: ZeroDivisionError: division by zero"),
        (3, "BUGGY: test_ok: AssertionError: assert 3 == 4"),
        (5, "TAMPERED: candidate changed the measurement: benchmark result"),
    ],
)
def test_step_line_of_a_failed_node_gives_status_and_reason(node_id: int, expected: str) -> None:
    journal = single_objective_journal()
    line = step_line(journal, journal[node_id], 7, 3.0)
    assert expected in line
    assert "mean=" not in line.split("best=")[0]


def test_step_line_with_several_objectives_lists_each() -> None:
    journal = multi_objective_journal()
    line = step_line(journal, journal[3], steps=3, elapsed=2.0)
    assert "mean=0.001 accuracy=0.92" in line
    assert "best: mean -50.0% accuracy +2.2%" in line


def test_step_line_with_many_objectives_shows_the_score() -> None:
    journal = multi_objective_journal()
    journal.objectives = journal.objectives + [
        {"nodeid": f"tests/test_k.py::test_{i}", "metric": f"m{i}", "maximize": True}
        for i in range(3)
    ]
    line = step_line(journal, journal[3], steps=3, elapsed=2.0)
    assert "score=0.7" in line
    assert "best score=0.7" in line


def test_short_reason_and_values() -> None:
    assert short_reason("") == ""
    assert short_reason("x" * 100).endswith("...")
    assert len(short_reason("x" * 100)) == 60
    assert fmt_value(0.00123) == "0.00123"
    assert fmt_value(1.5e-7) == "1.500e-07"
    assert fmt_value(float("nan")) == "n/a"


# ---------------------------------------------------------------------------------------------
# summary


def test_summary_lines_of_an_applied_run(tmp_path: Path) -> None:
    journal = single_objective_journal()
    run_dir = tmp_path / ".aide" / journal.run_id
    lines = summary_lines(
        journal,
        run_dir,
        tmp_path,
        applied=True,
        patch=run_dir / "best.patch",
        resume_hint="pytest --aide-resume 20240101-120000-k",
    )
    text = "\n".join(lines)
    assert all("\n" not in line for line in lines)
    assert lines[0] == "src/k.py (k), run 20240101-120000-k"
    assert "mean (lower is better): baseline 0.00125 -> best 0.0011 (-12.0%)" in text
    assert "best: node #6 (improve, step 6)" in text
    assert "confirmed: mean -11.0% (interval -14.0% .. -8.0%)" in text
    assert "7 steps: 4 good, 2 buggy, 1 tampered; 1m12s; 8.6k tokens, $0.0084" in text
    assert "target: src/k.py written" in text
    assert f"run dir: .aide/{journal.run_id}" in text
    assert f"patch: .aide/{journal.run_id}/best.patch" in text
    assert "git apply" not in text  # already applied
    assert f"report: .aide/{journal.run_id}/report.md, .aide/{journal.run_id}/tree.html" in text
    assert text.endswith("resume: pytest --aide-resume 20240101-120000-k")


def test_summary_lines_when_nothing_beat_the_baseline(tmp_path: Path) -> None:
    journal = single_objective_journal()
    journal.nodes = journal.nodes[:4]
    journal.best_id = 0
    lines = summary_lines(
        journal, tmp_path / "run", tmp_path, applied=False, patch=None, resume_hint=""
    )
    text = "\n".join(lines)
    assert "no candidate beat the baseline" in text
    assert "-> best" not in text
    assert "target: src/k.py left unchanged" in text
    assert "patch:" not in text and "resume:" not in text


def test_summary_lines_of_a_preserved_run_with_several_objectives(tmp_path: Path) -> None:
    journal = multi_objective_journal()
    run_dir = tmp_path / "elsewhere"  # outside the rootdir: shown as it is
    lines = summary_lines(
        journal,
        run_dir,
        tmp_path / "root",
        applied=False,
        patch=run_dir / "best.patch",
        resume_hint="",
    )
    text = "\n".join(lines)
    assert "mean (lower is better): baseline 0.002 -> best 0.001 (-50.0%)" in text
    assert "accuracy (higher is better): baseline 0.9 -> best 0.92 (+2.2%)" in text
    assert f"apply it: git apply {run_dir / 'best.patch'}" in text
    assert "confirmed" not in text


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
