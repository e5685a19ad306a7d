"""Findings: what a guard saw a candidate do, as data.

A finding is a kind (which guard saw it, which decides nothing by itself: any finding makes the
candidate tampered) and the detail a person reads. It used to be a prefixed string, and code
that wanted the kind had to read the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class FindingKind(Enum):
    """Which guard saw it."""

    #: The project guard (boundary.py): a file of the project changed, and was put back.
    PROJECT_FILE = "changed project file"
    #: The static scan of the candidate's source (integrity.py).
    CODE = "suspicious code"
    #: The fingerprints of the state the tests rely on differ from the baseline's.
    STATE = "state"
    #: The parent's clock contradicts a benchmark's reported time (clock.py).
    CLOCK = "clock"
    #: The child's results: forged, unsigned, or contradicted by its exit status or output.
    RESULTS = "results"
    #: What the worker's runtime checks and the audit hook saw inside the child.
    MEASURING = "measuring"


#: The words a finding of each kind starts with, as the journal and the terminal show it.
_PREFIX = {FindingKind.PROJECT_FILE: "changed project file: ",
           FindingKind.CODE: "suspicious code: ", FindingKind.CLOCK: "clock: "}


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    detail: str

    def __str__(self) -> str:
        return _PREFIX.get(self.kind, "") + self.detail
