"""The baseline: what running the original code established, as a value.

Every candidate's evaluation is compared with it: its fingerprints of the state the tests
rely on (fingerprint.py), its benchmarks' clock brackets (clock.py), and which tests guard a
candidate. It is measured once per run, kept in the run directory (``baseline.json``), loaded
by a resumed run (or measured again when an older run has none) and handed to every
evaluation and to the confirmation, on this machine or a Ray node. It used to live in the
evaluator as state learnt from whichever trusted evaluation ran first, so a resumed run, which
runs none, compared candidates with nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_aide.guards.canonical import Tolerance
from pytest_aide.guards.clock import Bracket
from pytest_aide.guards.replay import Call
from pytest_aide.guards.selection import AT_IMPORT, GuardChoice, GuardMode

#: The file in the run directory.
FILENAME = "baseline.json"
#: Bumped when the file's layout changes; an unknown version is measured again.
VERSION = 1


class BaselineMissing(LookupError):
    """A candidate was to be compared with a baseline that nobody measured."""


@dataclass(frozen=True)
class Baseline:
    """The original's evidence that candidates are held to."""

    #: Fingerprints of the state the tests rely on, from the original's run.
    state: dict[str, Any] = field(default_factory=dict)
    #: Each benchmark's reported time bracketed by the parent's clock, on the original.
    clock: dict[str, Bracket] = field(default_factory=dict)
    #: Tests that passed on the original: every candidate must pass them.
    guards: tuple[str, ...] = ()
    #: Selected tests the original skips or xfails: they guard nothing.
    skipped: tuple[str, ...] = ()
    #: Metrics read from the tests' printed output (a candidate must not print them).
    output_metrics: tuple[str, ...] = ()
    #: How the guards were chosen (guards/selection.py), for the header of a resumed run.
    guard_mode: str = "files"
    #: Tests the guard probe ran (0: no probe).
    suite: int = 0
    #: Tests that ran the target but guard nothing, by their outcome on the original.
    left_out: dict[str, int] = field(default_factory=dict)
    #: The original's calls into the target, replayed against candidates (replay.py).
    calls: list[Call] = field(default_factory=list)
    #: The tolerance of that comparison for floats and arrays (None: by float type).
    rtol: float | None = None
    atol: float | None = None
    #: Each timed marked test's benchmarked call (a recorded call's id), timed on fresh
    #: inputs (fresh.py); a test with none is judged by its benchmark alone.
    fresh_calls: dict[str, int] = field(default_factory=dict)
    #: The target's functions each test ran on the original, by the guard probe's coverage
    #: (``selection.AT_IMPORT``: while it was imported): a candidate runs the guards that ran
    #: what it changed. Empty: every candidate runs every guard.
    guard_functions: dict[str, list[str]] = field(default_factory=dict)
    #: Why a timed marked test's call is not timed on fresh inputs (the header says it).
    fresh_missing: dict[str, str] = field(default_factory=dict)
    #: Where each benchmarked call spent its time on the original, by marked test: the
    #: target's hottest functions (evaluation/profile.py's HotSpot, as dicts); the prompts
    #: show them.
    profile: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def guard_choice(self, marked: list[str]) -> GuardChoice:
        """How the guards were chosen, as the header says it (``marked``: the tests that
        measure, which every candidate runs anyway)."""
        return GuardChoice(mode=GuardMode(self.guard_mode),
                           guards=tuple(g for g in self.guards if g not in marked),
                           suite=self.suite, left_out=dict(self.left_out),
                           per_candidate=bool(self.guard_functions))

    def guards_for(self, changed: frozenset[str] | None, marked: list[str]) -> tuple[str, ...]:
        """The guards a candidate that changed the functions ``changed`` runs (with the
        ``marked`` tests): those that ran one of them on the original; all of them when
        ``changed`` is None (module-level code changed), when no map was made, or when one
        of them ran while the module was imported (every test then depends on it)."""
        at_import = set(self.guard_functions.get(AT_IMPORT, ()))
        if changed is None or not self.guard_functions or changed & at_import:
            return self.guards
        return tuple(g for g in self.guards
                     if g in marked or changed & set(self.guard_functions.get(g, ())))

    @property
    def tolerance(self) -> Tolerance:
        return Tolerance(self.rtol, self.atol)

    def replayed_calls(self) -> list[dict[str, Any]]:
        """What a candidate's evaluation is sent: the stable calls' names and arguments,
        never the original's answers (those stay with the parent)."""
        return [{"id": c.id, "name": c.name, "args": c.args} for c in self.calls if c.stable]

    def fresh_requests(self) -> dict[str, dict[str, Any]]:
        """What a timed evaluation is sent: each benchmarked call's name and arguments."""
        by_id = {c.id: c for c in self.calls}
        return {nodeid: {"id": i, "name": by_id[i].name, "args": by_id[i].args}
                for nodeid, i in self.fresh_calls.items() if i in by_id}

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "state": self.state,
            "clock": {nodeid: bracket.to_dict() for nodeid, bracket in self.clock.items()},
            "guards": list(self.guards),
            "skipped": list(self.skipped),
            "output_metrics": list(self.output_metrics),
            "guard_mode": self.guard_mode,
            "suite": self.suite,
            "left_out": dict(self.left_out),
            "calls": [call.to_dict() for call in self.calls],
            "rtol": self.rtol,
            "atol": self.atol,
            "fresh_calls": dict(self.fresh_calls),
            "guard_functions": dict(self.guard_functions),
            "fresh_missing": dict(self.fresh_missing),
            "profile": dict(self.profile),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Baseline:
        def mapping(key: str, value: Any) -> dict[str, Any]:
            return {str(k): value(v) for k, v in (data.get(key) or {}).items()}

        return cls(
            state=dict(data.get("state") or {}),
            clock=mapping("clock", lambda values: Bracket(**values)),
            guards=tuple(data.get("guards") or ()),
            skipped=tuple(data.get("skipped") or ()),
            output_metrics=tuple(data.get("output_metrics") or ()),
            guard_mode=str(data.get("guard_mode") or "files"),
            suite=int(data.get("suite") or 0),
            left_out=mapping("left_out", int),
            calls=[Call.from_dict(c) for c in data.get("calls") or []],
            rtol=_number(data.get("rtol")),
            atol=_number(data.get("atol")),
            fresh_calls=mapping("fresh_calls", int),
            guard_functions=mapping("guard_functions", lambda v: [str(f) for f in v]),
            fresh_missing=mapping("fresh_missing", str),
            profile=mapping("profile", lambda v: [dict(s) for s in v]),
        )

    def save(self, run_dir: Path) -> Path:
        """Write ``baseline.json`` into ``run_dir`` (atomically: a reader never sees half)."""
        path = run_dir / FILENAME
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(self.to_dict(), sort_keys=True), encoding="utf-8")
        partial.replace(path)
        return path


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def load(run_dir: Path) -> Baseline | None:
    """The baseline a run saved, or None when it has none this code can read (a run made
    before baselines were saved, or a damaged file): the caller measures it again."""
    try:
        data = json.loads((run_dir / FILENAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return None
    try:
        return Baseline.from_dict(data)
    except (TypeError, ValueError):
        return None
