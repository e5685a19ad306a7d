"""The executor protocol: how the search and the confirmation run evaluations.

An executor lends its slots to evaluations: ``run_shared`` runs one in a free slot, next to
the others (guard tests, or everything with ``--aide-measure shared``); ``run_isolated`` runs
one alone on the measuring place, every slot drained first (timed metrics, the baseline,
re-measurements and the confirmation), so its timings are taken as with one worker. One
local worker is the serial case: both then run the same way.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from pytest_aide.evaluation.evaluator import Evaluation
from pytest_aide.guards.baseline import Baseline


class ExecutorError(Exception):
    """The executor cannot work as configured (Ray missing, no cluster): a usage error."""


class CapacityError(ExecutorError):
    """An evaluation waited longer than allowed for a place to run (a Ray cluster whose
    CPUs are all held): the run stops, and the code is not blamed."""


@runtime_checkable
class Announcing(Protocol):
    """An executor with news while evaluations run (a Ray task waiting for a node): the run
    gives it the line writer it reports with."""

    say: Callable[[str], None]
    #: The run's directory: the executor keeps there what its engine prints on its own
    #: (Ray's messages to the driver), out of pytest's output.
    run_dir: Path | None

    def events(self) -> list[str]:
        """What happened to the places evaluations ran (a node lost), for the summary."""
        ...


@dataclass(frozen=True)
class EvaluationRequest:
    """One evaluation, as the search or the confirmation asks for it."""

    #: The candidate's source (None: the target file as it is on disk).
    source: str | None
    #: Its own directory (candidate file, results, output).
    workdir: Path
    #: What the candidate is held to (guards/baseline.py). None only for the original's own
    #: run, which establishes it: a candidate is never evaluated against nothing by accident.
    baseline: Baseline | None
    #: The tests to run (None: the study's): node ids, or files and directories.
    nodeids: list[str] | None = None
    #: Record which tests run the target's code (the guard probe of ``--aide-guards auto``).
    coverage: bool = False
    #: Record the original's calls into the target (the guard probe, ``--aide-compare on``).
    record_calls: bool = False
    #: Make the baseline's recorded calls on the candidate after its tests, and compare.
    replay: bool = False
    #: Time the benchmarked calls on fresh inputs after the tests (a timed run).
    fresh: bool = False
    #: The original only answers the fresh inputs a candidate was timed on (drawn from these
    #: seeds, by marked test); its tests are collected, not run.
    fresh_seeds: dict[str, int] | None = None
    #: Stop at the first test that fails (a candidate's cascade: the rest cannot save it).
    first_failure_ends: bool = False
    #: Profile each benchmarked call once after the tests (the original's run: the prompts
    #: show where its time goes, evaluation/profile.py).
    profile: bool = False


class Executor(Protocol):
    """Where evaluations run. ``workers`` evaluations may be in flight at once."""

    workers: int

    def run_shared(self, request: EvaluationRequest) -> Evaluation:
        """Run in a free slot, next to other evaluations (guards: no timing is read)."""
        ...

    def run_isolated(self, request: EvaluationRequest) -> Evaluation:
        """Run alone on the measuring place, every slot drained first (timings)."""
        ...

    def abort(self) -> None:
        """Kill every evaluation in flight (an interrupted run); each ends as a failure."""
        ...

    def close(self) -> None:
        """Release what the executor holds (warm interpreters, a Ray connection)."""
        ...

    def describe(self) -> str:
        """Where evaluations run, for the run's header."""
        ...

    def notice(self) -> str:
        """Anything the user should know about how evaluations start ("" if nothing)."""
        ...


class Gate:
    """``count`` slots lent one at a time, or all at once for a measurement.

    A measurement waiting for the slots to drain holds back every new loan (writer
    preference), so it never starves behind a stream of guard runs; measurements take
    turns with each other.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self._free = list(range(count))
        self._waiting = 0  # measurements waiting for the slots to drain
        self._measuring = False
        self._condition = threading.Condition()

    @contextlib.contextmanager
    def slot(self) -> Iterator[int]:
        with self._condition:
            self._condition.wait_for(
                lambda: self._free and not self._waiting and not self._measuring
            )
            index = self._free.pop(0)
        try:
            yield index
        finally:
            with self._condition:
                self._free.append(index)
                self._free.sort()
                self._condition.notify_all()

    @contextlib.contextmanager
    def all(self) -> Iterator[None]:
        with self._condition:
            self._waiting += 1
            try:
                self._condition.wait_for(
                    lambda: len(self._free) == self.count and not self._measuring
                )
            finally:
                self._waiting -= 1
            self._measuring = True
        try:
            yield
        finally:
            with self._condition:
                self._measuring = False
                self._condition.notify_all()

    def busy(self) -> int:
        """Slots lent now (a measurement counts as all of them)."""
        with self._condition:
            return self.count if self._measuring else self.count - len(self._free)


def files_this_process_writes(rootdir: Path) -> list[Path]:
    """Regular files under ``rootdir`` that this process holds open for writing: its own
    output when it is redirected into the project (``pytest ... > log.txt``, or pytester's
    ``stdout``). With several workers they grow while evaluations run, and the project guard
    must not take that for a candidate's doing (and undo it)."""
    found = []
    root = Path(rootdir).resolve()
    try:
        descriptors = os.listdir("/proc/self/fd")
    except OSError:
        return []
    for fd in descriptors:
        try:
            target = Path(os.readlink(f"/proc/self/fd/{fd}"))
            with open(f"/proc/self/fdinfo/{fd}", encoding="ascii") as info:
                flags = next(int(line.split()[1], 8) for line in info
                             if line.startswith("flags:"))
        except (OSError, StopIteration, ValueError):
            continue
        if flags & (os.O_WRONLY | os.O_RDWR) and target.is_relative_to(root) and (
            target.is_file()
        ):
            found.append(target)
    return sorted(set(found))
