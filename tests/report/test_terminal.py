"""The terminal's view of a run as a user reads it: step lines and the summary."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_journals import (
    multi_objective_journal,
    single_objective_journal,
)

from pytest_aide.report.formatting import fmt_value, short_reason
from pytest_aide.report.terminal import step_line, summary_lines

# ---------------------------------------------------------------------------------------------
# step lines


def test_step_line_of_the_best_improve_shows_metric_best_and_tokens() -> None:
    journal = single_objective_journal()
    line = step_line(journal, journal[6], steps=7, elapsed=4.1)
    assert line.startswith("step 6/7 improve <- 4  ")
    assert "mean=1.1 ms " in line
    assert "best=1.1 ms (-12.0%) " in line  # confirmed
    assert "4.1s" in line
    assert line.endswith("1.2k tok")


def test_step_line_of_the_baseline_has_no_parent_best_or_tokens() -> None:
    journal = single_objective_journal()
    line = step_line(journal, journal.root, steps=7, elapsed=2.0)
    assert line == "step 0/7 baseline  mean=1.25 ms  2.0s"


def test_step_line_best_so_far_ignores_later_nodes() -> None:
    journal = single_objective_journal()
    # at step 1 only the baseline and a slower draft exist: the baseline is still the best
    assert "best=1.25 ms (baseline)" in step_line(journal, journal[1], 7, 3.0)
    # node 4, never measured again against the original (the confirmation, at the end)
    assert "best=1.2 ms (-4.0%, provisional)" in step_line(journal, journal[5], 7, 3.0)
    journal[4].confirmed = {"confirmed": True}
    assert "best=1.2 ms (-4.0%) " in step_line(journal, journal[5], 7, 3.0)


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
    assert "mean=1 ms accuracy=0.92" in line
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


FAILURES = """\
tests/test_other.py::test_loop: failed
    def test_loop():
>       assert check(1000000) == "one million"
E       AssertionError: assert 'one million and one' == 'one million'
E         - one million

tests/common.py:9: AssertionError
tests/test_perf.py::test_small: failed
E       assert 2 == 1

tests/common.py:9: AssertionError
"""


def test_a_failing_test_is_named_with_its_error_and_where_it_was_raised() -> None:
    assert short_reason(FAILURES, width=200) == (
        "tests/test_other.py::test_loop failed: AssertionError: assert 'one million and one'"
        " == 'one million' (tests/common.py:9) (+1 more)"
    )
    # cut to the width in the error's line: the test, the location and the count stay
    assert short_reason(FAILURES, width=110) == (
        "tests/test_other.py::test_loop failed: AssertionError: assert 'one million an..."
        " (tests/common.py:9) (+1 more)"
    )
    # tampering first: what the tests said of such a candidate is beside the point
    assert short_reason("tampering: reads /proc entries\n" + FAILURES) == (
        "reads /proc entries"
    )


def test_code_that_does_not_compile_gives_file_line_and_message() -> None:
    error = ("proposal failed: the candidate does not compile: slow.py, line 2: "
             "SyntaxError: unexpected indent")
    assert short_reason(error) == (
        "does not compile: slow.py, line 2: SyntaxError: unexpected indent"
    )


def test_short_reason_and_values() -> None:
    assert short_reason("") == ""
    assert short_reason("x" * 200).endswith("...")
    assert len(short_reason("x" * 200)) == 120
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
        resume_hint="pytest --aide-steps 14 --aide-resume 20240101-120000-k",
    )
    text = "\n".join(lines)
    assert all("\n" not in line for line in lines)
    assert lines[0] == "src/k.py (k), run 20240101-120000-k"
    assert "mean (lower is better): baseline 1.25 ms -> best 1.1 ms (-12.0%)" in text
    assert "best: node #6 (improve, step 6)" in text
    assert "confirmed: mean -11.0% (interval -14.0% .. -8.0%)" in text
    assert "7 steps: 4 good, 2 buggy, 1 tampered; 1m12s; 8.6k tokens, $0.0084" in text
    assert "target: src/k.py written" in text
    assert f"run dir: .aide/{journal.run_id}" in text
    assert f"patch: .aide/{journal.run_id}/best.patch" in text
    assert "git apply" not in text  # already applied
    assert f"report: .aide/{journal.run_id}/report.md, .aide/{journal.run_id}/tree.html" in text
    # a finished run goes on by asking for more steps (--aide-steps is the run's total)
    assert text.endswith("more steps: pytest --aide-steps 14 --aide-resume 20240101-120000-k")


def test_summary_lines_of_an_unfinished_run_say_resume(tmp_path: Path) -> None:
    journal = single_objective_journal()
    journal.finished = False
    lines = summary_lines(journal, tmp_path, tmp_path, applied=False, patch=None,
                          resume_hint="pytest --aide-steps 7 --aide-resume 20240101-120000-k")
    assert lines[-1] == "  resume: pytest --aide-steps 7 --aide-resume 20240101-120000-k"


def test_summary_lines_when_the_target_already_holds_the_best(tmp_path: Path) -> None:
    journal = single_objective_journal()
    run_dir = tmp_path / ".aide" / journal.run_id
    text = "\n".join(summary_lines(
        journal, run_dir, tmp_path, applied=False, patch=run_dir / "best.patch",
        resume_hint="", already_best=True,
    ))
    assert "target: src/k.py already holds the best (written when this run first finished)" \
        in text
    assert "git apply" not in text  # the patch is against the original, no longer the file


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
    assert "mean (lower is better): baseline 2 ms -> best 1 ms (-50.0%)" in text
    assert "accuracy (higher is better): baseline 0.9 -> best 0.92 (+2.2%)" in text
    assert f"apply it: git apply {run_dir / 'best.patch'}" in text
    assert "confirmed" not in text




def test_a_best_the_confirmation_did_not_bear_out_is_not_offered_to_apply(
    tmp_path: Path,
) -> None:
    journal = multi_objective_journal()
    best = journal.best
    assert best is not None
    best.confirmed = {"confirmed": False, "summary": "the change was within the noise"}
    run_dir = tmp_path / "run"
    text = "\n".join(summary_lines(journal, run_dir, tmp_path, applied=False,
                                   patch=run_dir / "best.patch", resume_hint=""))
    assert "patch:" in text and "apply it" not in text


def test_a_duplicate_is_shown_and_counted_as_such_not_as_buggy(tmp_path: Path) -> None:
    from pytest_aide.journal import BUGGY, Node

    journal = single_objective_journal()
    journal.nodes.append(Node(id=8, parent=6, step=8, operator="improve", plan="again",
                              code=journal[6].code, status=BUGGY, duplicate_of=6,
                              error="candidate is identical to node 6: nothing changed"))
    assert "DUPLICATE of node 6: not run" in step_line(journal, journal[8], 8, 0.1)
    text = "\n".join(summary_lines(journal, tmp_path / "run", tmp_path, applied=True,
                                   patch=None, resume_hint=""))
    assert "8 steps: 4 good, 2 buggy, 1 tampered, 1 duplicate" in text


def test_a_time_shows_its_unit_and_other_metrics_as_they_are() -> None:
    from pytest_aide.report.formatting import fmt_metric

    assert fmt_metric(0.2124, "mean") == "212.4 ms"
    assert fmt_metric(2.5, "median") == "2.5 s"
    assert fmt_metric(3.2e-6, "min") == "3.2 \u00b5s"
    assert fmt_metric(4e-10, "mean") == "0.4 ns"
    assert fmt_metric(1234.5, "ops") == "1234 ops/s"
    assert fmt_metric(0.92, "accuracy") == "0.92"
    assert fmt_metric(None, "mean") == "n/a"
