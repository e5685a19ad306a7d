"""The final check: the user's own command, with nothing of the optimizer's in it.

A candidate that is right only while it is measured (it sees the worker plugin, a variable,
an inherited pipe) passes every evaluation and fails the user's next plain run. So the
written code is checked by a plain ``python -m pytest`` of the selected tests: no worker
plugin, no key, no marks, in the same sandbox. Its exit status decides; its verbose lines
only tell the terminal which test did what.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

#: pytest -v's word for each outcome, as the terminal counts it.
OUTCOMES = {"PASSED": "passed", "FAILED": "failed", "ERROR": "error", "SKIPPED": "skipped",
            "XFAIL": "xfailed", "XPASS": "xpassed"}
_SECTION = re.compile(r"^_{3,} (?P<title>.+?) _{3,}$")
_LINE = re.compile(r"^(?P<nodeid>\S.*?) (?P<word>" + "|".join(OUTCOMES) + r")\b")


@dataclass
class PlainRun:
    """What the plain run did: its exit status decides, the outcomes are for display."""

    status: str  # "completed", "timeout", "error" (as Evaluation.status)
    returncode: int | None = None
    outcomes: dict[str, str] = field(default_factory=dict)
    output: str = ""
    duration: float = 0.0
    #: Project files the run changed (undone, as after any evaluation).
    changed: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "completed" and self.returncode == 0 and not self.changed

    def failures(self) -> dict[str, str]:
        """pytest's failure sections by their heading (a test's ``head_line``)."""
        sections: dict[str, str] = {}
        title, lines = "", []
        for line in self.output.splitlines():
            heading = _SECTION.match(line)
            if heading or line.startswith("====="):
                if title:
                    sections[title] = "\n".join(lines).strip()
                title, lines = (heading["title"] if heading else ""), []
            elif title:
                lines.append(line)
        if title:
            sections[title] = "\n".join(lines).strip()
        return sections


def plain_command(pytest_args: list[str], nodeids: list[str],
                  python: str = sys.executable) -> list[str]:
    """``python -m pytest -v`` of the tests: what a user would type, plus -v to read, and no
    colour (``PY_COLORS``/``FORCE_COLOR`` in CI would wrap each line in escape codes)."""
    return [python, "-m", "pytest", "-p", "no:cacheprovider", "-v", *pytest_args,
            "--color=no", *nodeids]


def parse_outcomes(output: str, nodeids: list[str]) -> dict[str, str]:
    """Each selected test's outcome from pytest -v's lines (``nodeid PASSED [ 50%]``); a test
    reported twice (an error in teardown after a pass) keeps the worse."""
    wanted = set(nodeids)
    found: dict[str, str] = {}
    for line in output.splitlines():
        match = _LINE.match(line)
        if not match or match["nodeid"] not in wanted:
            continue
        outcome = OUTCOMES[match["word"]]
        if found.get(match["nodeid"]) not in {"failed", "error"}:
            found[match["nodeid"]] = outcome
    return found
