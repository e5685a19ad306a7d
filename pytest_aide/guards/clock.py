"""Benchmark clocks checked from outside the clock.

A candidate that slows the clock its benchmark is timed with (``ctypes`` can patch
``clock_gettime`` in libc and keep every Python function object as it was) reports short
rounds that took long. No check inside the child can see that, since every clock there is
the one that was patched. So the worker marks the start and end of each benchmark on a pipe
the parent inherited to it, and the parent stamps each mark with its own monotonic clock and
with the CPU time it sees the child's processes use: the benchmark's reported time must fit
inside that span, and the span must not be much longer than the reported rounds explain
(calibration, a last call and the test's own setup, by the original code's measure).

The CPU time is evidence in the message, not a rule: code that runs on several cores uses
more CPU than wall time, honestly.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from pytest_aide.guards.reaper import process_table

#: Names the inherited descriptor on which the worker writes its marks.
MARKS_FD_ENV = "PYTEST_AIDE_MARKS_FD"
#: Allowed slack: the span may exceed what the reported rounds explain by this factor ...
SLOW_FACTOR = 1.5
#: ... plus this many seconds (scheduling, imports the first call triggers).
SLOW_SLACK = 0.1
#: Without the original code's bracket to learn the test's own overhead from (a resumed run).
UNKNOWN_OVERHEAD = (3.0, 1.0)
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# -- the worker's side ---------------------------------------------------------------------


class MarkWriter:
    """Writes ``start N`` / ``end N`` for each benchmark; remembers which test had which N."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self.current = ""
        self.marked: dict[str, int] = {}

    @classmethod
    def from_environment(cls) -> MarkWriter:
        number = os.environ.pop(MARKS_FD_ENV, "")
        return cls(int(number) if number.isdigit() else None)

    def _write(self, kind: str, index: int) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.write(self.fd, f"{kind} {index}\n".encode())

    def around(self, run: Callable[..., Any]) -> Callable[..., Any]:
        """``run`` (a fixture's ``_raw``/``_raw_pedantic``) between a start and an end mark."""
        writer = self

        def marked(fixture: Any, *args: Any, **kwargs: Any) -> Any:
            index = len(writer.marked)
            writer.marked[writer.current or f"#{index}"] = index
            writer._write("start", index)
            try:
                return run(fixture, *args, **kwargs)
            finally:
                writer._write("end", index)

        marked.__wrapped__ = run  # type: ignore[attr-defined]
        return marked

    def install(self) -> None:
        """Mark every benchmark: wraps the fixture class's runners (before the baseline of
        measuring identities is taken, so the wrappers are what integrity.py expects)."""
        if self.fd is None:
            return
        from pytest_benchmark.fixture import BenchmarkFixture

        for name in ("_raw", "_raw_pedantic"):
            setattr(BenchmarkFixture, name, self.around(getattr(BenchmarkFixture, name)))


def reported(fixture: Any) -> dict[str, float]:
    """What the benchmark's own clock says: seconds its rounds took (all iterations), and
    how many rounds; empty when it ran none."""
    metadata = getattr(fixture, "stats", None)
    stats = getattr(metadata, "stats", None)
    data = getattr(stats, "data", None)
    if not data:
        return {}
    iterations = int(getattr(metadata, "iterations", 1) or 1)
    return {"reported": float(sum(data)) * iterations, "rounds": float(len(data))}


# -- the parent's side ---------------------------------------------------------------------


@dataclass
class Bracket:
    """One benchmark, by its own clock and by the parent's."""

    reported: float  # seconds of timed rounds, by the child's clock
    rounds: int
    span: float  # seconds between the marks, by the parent's clock
    cpu: float | None  # CPU seconds the child's processes used between the marks

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


class MarkReader:
    """Reads the child's marks on a thread, stamping each on arrival with the parent's
    monotonic clock and the CPU time of the child's process tree."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.stamps: dict[str, list[tuple[float, float | None]]] = {}
        self.malformed: list[str] = []
        self._pid: int | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)

    @property
    def started(self) -> bool:
        return self._pid is not None

    def start(self, pid: int) -> None:
        """Close our copy of the write end (the child holds it) and start reading."""
        os.close(self.write_fd)
        self._pid = pid
        self._thread.start()

    def abandon(self) -> None:
        """The child never started: close both ends."""
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _read(self) -> None:
        buffered = b""
        with open(self.read_fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(4096):
                wall = time.monotonic()
                cpu = tree_cpu_seconds(self._pid) if self._pid else None
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    self._stamp(line.decode("ascii", "replace"), wall, cpu)
        if buffered:
            self.malformed.append(buffered.decode("ascii", "replace")[:80])

    def _stamp(self, line: str, wall: float, cpu: float | None) -> None:
        kind, _, index = line.partition(" ")
        if kind not in {"start", "end"} or not index.isdigit():
            self.malformed.append(line[:80])
            return
        self.stamps.setdefault(f"{kind} {index}", []).append((wall, cpu))

    def join(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)

    def brackets(self, claimed: dict[str, dict[str, Any]]) -> tuple[dict[str, Bracket], list[str]]:
        """Each benchmark's bracket from the worker's claims (nodeid -> mark and reported
        seconds) and the stamps; and what does not add up (marks missing, doubled, forged)."""
        problems = [f"a clock mark that the worker did not write: {line!r}"
                    for line in self.malformed[:3]]
        found: dict[str, Bracket] = {}
        used = set()
        for nodeid, claim in claimed.items():
            index, reported = claim.get("mark"), claim.get("reported")
            starts = self.stamps.get(f"start {index}", [])
            ends = self.stamps.get(f"end {index}", [])
            used.update({f"start {index}", f"end {index}"})
            if len(starts) != 1 or len(ends) != 1:
                problems.append(f"{nodeid}: its benchmark's clock marks are missing or doubled "
                                f"({len(starts)} start, {len(ends)} end)")
                continue
            if reported is None:
                continue
            (wall0, cpu0), (wall1, cpu1) = starts[0], ends[0]
            rounds = max(1, int(claim.get("rounds") or 1))
            cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
            found[nodeid] = Bracket(float(reported), rounds, wall1 - wall0, cpu)
        extra = sorted(set(self.stamps) - used)
        if extra:
            problems.append(f"clock marks for no benchmark: {', '.join(extra[:4])}")
        return found, problems


def tree_cpu_seconds(root: int) -> float | None:
    """User and system CPU seconds of ``root`` and its descendants, read from /proc (as the
    parent sees them, whatever the child does to its own clocks); None once it is gone."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for pid, fields in process_table().items():
        if len(fields) >= 15:
            parents[pid] = int(fields[1])
            used[pid] = sum(int(x) for x in fields[11:15]) / _TICK  # utime stime cutime cstime
    if root not in parents:
        return None
    total, frontier = 0.0, [root]
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    while frontier:
        pid = frontier.pop()
        total += used.get(pid, 0.0)
        frontier.extend(children.get(pid, []))
    return total


def clock_findings(
    measured: dict[str, Bracket], baseline: dict[str, Bracket] | None
) -> list[str]:
    """Benchmarks whose reported time the parent's clock contradicts.

    Faster than the parent's clock: more time reported than passed. Slower: the span is longer
    than the reported rounds explain, with two more rounds' worth (pytest-benchmark's
    calibration and its last call) and the test's own overhead (the original code's span
    less its rounds, in proportion and in seconds), with room for noise.
    """
    found = []
    for nodeid, bracket in measured.items():
        cpu = f" ({bracket.cpu:.3g}s of CPU)" if bracket.cpu is not None else ""
        evidence = (f"its benchmark reported {bracket.reported:.3g}s of timed rounds, and "
                    f"{bracket.span:.3g}s passed on the optimizer's clock{cpu}")
        if bracket.reported > bracket.span * 1.02 + 0.005:
            found.append(f"{nodeid}: {evidence}: the clock it was timed with runs fast")
            continue
        reference = (baseline or {}).get(nodeid)
        calls = 2 * bracket.reported / bracket.rounds
        if reference is not None and reference.reported > 0:
            overhead = max(0.0, reference.span - reference.reported)
            proportion = 1 + overhead / reference.reported
            limit = SLOW_FACTOR * (proportion * bracket.reported + calls) + overhead + SLOW_SLACK
        else:
            factor, seconds = UNKNOWN_OVERHEAD
            limit = factor * bracket.reported + calls + seconds
        if bracket.span > limit:
            found.append(f"{nodeid}: {evidence}, more than its rounds explain (at most "
                         f"{limit:.3g}s): the clock it was timed with runs slow")
    return found
