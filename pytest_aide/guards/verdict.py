"""Cross-checks of the child's signed results against what the parent sees for itself.

A signature proves who wrote the results, not that they are true: a candidate that found
the key in its own process could sign a story of its own. So the parent also reads two
things the results do not control, and a disagreement between any of the three is
tampering: the child's exit status (the kernel's), and pytest's own closing line of counts
(the terminal's). A test counts as passed only when its setup, call and teardown were each
reported, and each passed.
"""

from __future__ import annotations

import re
from typing import Any

#: Outcomes pytest counts as a failure of the run (exit status 1).
FAILING = ("failed", "error")

#: pytest's closing line, e.g. "2 failed, 5 passed, 1 error in 0.31s" (-q or not).
_COUNTS_LINE = re.compile(r"^=*\s*((?:\d+ [a-z]+(?:, )?)+) in [\d.]+s\b", re.MULTILINE)
_COUNT = re.compile(r"(\d+) ([a-z]+)")


def phase_checked_outcome(nodeid: str, outcome: str | None, reports: list[dict[str, Any]]) -> str:
    """``outcome``, unless it says passed without a passed setup, call and teardown."""
    if not outcome:
        return "not run"
    if outcome != "passed":
        return outcome
    phases = {
        report.get("when"): report.get("outcome")
        for report in reports
        if report.get("nodeid") == nodeid and report.get("$report_type") == "TestReport"
    }
    if all(phases.get(when) == "passed" for when in ("setup", "call", "teardown")):
        return "passed"
    return "error"


def pytest_counts(output: str) -> dict[str, int] | None:
    """The counts of pytest's last closing line in the child's output (None: not found)."""
    lines = _COUNTS_LINE.findall(output)
    if not lines:
        return None
    counts: dict[str, int] = {}
    for number, word in _COUNT.findall(lines[-1]):
        word = {"errors": "error", "warnings": "warning"}.get(word, word)
        counts[word] = counts.get(word, 0) + int(number)
    return counts


def disagreements(data: dict[str, Any], *, returncode: int | None, output: str) -> list[str]:
    """What the signed results claim that the exit status or pytest's counts contradict."""
    found = []
    claimed = data.get("exitstatus")
    outcomes = [entry.get("outcome") for entry in data.get("tests", {}).values()]
    failing = any(o in FAILING for o in outcomes) or bool(data.get("collection_errors"))
    if returncode is not None and claimed is not None and int(claimed) != returncode:
        found.append(f"the results say pytest exited with {claimed}, but the child's exit "
                     f"status was {returncode}")
    if returncode == 0 and failing:
        found.append("the results report failures, but the child exited with 0 (all passed)")
    if returncode == 1 and not failing:
        found.append("the results report no failure, but the child exited with 1 (tests failed)")
    counts = pytest_counts(output)
    if counts is not None:
        claimed_passed = outcomes.count("passed")
        if claimed_passed > counts.get("passed", 0):
            found.append(f"the results report {claimed_passed} passed, pytest's own summary "
                         f"{counts.get('passed', 0)}")
        if not failing and (counts.get("failed", 0) or counts.get("error", 0)):
            found.append("the results report no failure, but pytest's own summary has "
                         f"{counts.get('failed', 0)} failed and {counts.get('error', 0)} errors")
    return found
