"""Which tests guard a candidate: chosen by what they execute, not by the file they are in.

With ``--aide-guards auto`` (the default) the suite's tests that may reach the target are run
once on the original under coverage (the guard probe); every one during which a line of the
target ran, and that passed there, must pass on every candidate, as must the tests in the
marked tests' own files (the selection the user made: one that fails there stops the run).
A correctness test kept in another file than the benchmark guards it all the same.
``files`` is the older rule (the tests in the marked tests' files), ``selected`` exactly the
tests the command line selected.

A test that skips, xfails or xpasses on the original guards nothing, and one that fails
there cannot be asked of a candidate: they are counted for the header, never run against
candidates, and (a non-strict XPASS among them) never block the run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum


class GuardMode(Enum):
    AUTO = "auto"
    FILES = "files"
    SELECTED = "selected"


#: Outcomes on the original that leave a test out of the guards, as the header words them.
LEFT_OUT = {"skipped": "skip", "xfailed": "xfail", "xpassed": "xpass", "failed": "fail",
            "error": "error", "not run": "do not run"}


#: How many guard files the header names (the rest are counted).
NAMED_FILES = 6


@dataclass(frozen=True)
class GuardChoice:
    """The guards, and what the header says about how they were chosen."""

    mode: GuardMode
    #: Tests every candidate must pass (besides the marked tests).
    guards: tuple[str, ...]
    #: Tests the probe ran (the part of the suite that may reach the target).
    suite: int = 0
    #: Tests that ran the target's code but guard nothing, by their outcome on the original.
    left_out: dict[str, int] = field(default_factory=dict)

    def files(self) -> list[str]:
        return sorted({nodeid.split("::")[0] for nodeid in self.guards})

    def header(self, target: str) -> str:
        """E.g. "guards: 37 tests in 2 files (tests/test_a.py, tests/test_b.py) (the marked
        tests' files, and the suite's tests that run core.py: coverage of 120 tests;
        --aide-guards to change); 2 that xfail on the original are not guards"."""
        count = len(self.guards)
        files = self.files()
        what = (f"{count} test{'s' if count != 1 else ''} in {len(files)} "
                f"file{'s' if len(files) != 1 else ''}")
        if files:  # named: a user sees which of their test files judge the candidates
            more = f" and {len(files) - NAMED_FILES} more" if len(files) > NAMED_FILES else ""
            what += f" ({', '.join(files[:NAMED_FILES])}{more})"
        if self.mode is GuardMode.AUTO:
            how = (f"(the marked tests' files, and the suite's tests that run {target}: "
                   f"coverage of {self.suite} test{'s' if self.suite != 1 else ''}; "
                   "--aide-guards to change)")
        elif self.mode is GuardMode.FILES:
            how = "in the marked tests' files (--aide-guards files)"
        else:
            how = "selected on the command line (--aide-guards selected)"
        parts = [f"guards: {what} {how}"]
        skipped = [f"{n} that {LEFT_OUT.get(outcome, outcome)} on the original"
                   for outcome, n in sorted(self.left_out.items())]
        if skipped:
            parts.append(", ".join(skipped) + " are not guards")
        return "; ".join(parts)

    def only_marked(self) -> bool:
        """No test but the marked ones guards: a wrong candidate that keeps the metric passes."""
        return not self.guards


def choose(mode: GuardMode, outcomes: dict[str, str], marked: list[str],
           executed: list[str] | None = None) -> GuardChoice:
    """The guards among ``outcomes`` (each candidate test's outcome on the original): with
    ``executed`` (the probe's coverage), only the tests during which the target ran."""
    reaching = [n for n in outcomes if n not in marked
                and (executed is None or n in set(executed))]
    guards = tuple(n for n in reaching if outcomes[n] == "passed")
    left_out = Counter(outcomes[n] for n in reaching if outcomes[n] != "passed")
    return GuardChoice(mode=mode, guards=guards, suite=len(outcomes), left_out=dict(left_out))
