"""How fast the machine was while a measurement ran, so that only like is compared with like.

On a shared machine (a cloud VM, a CI runner) the CPU itself changes speed for seconds at a
time: on the 2-core VM this was built on, one fresh process in four ran the same loop about
70% slower, in stretches of several processes, with the process never descheduled (so its
CPU time cannot tell). Two measurements taken on either side of such a change differ by far
more than any rank test expects, and a real 10% speedup measured across one looks slower.

So every evaluation times a fixed probe workload just before its tests and just after them.
Two measurements are comparable when their probes agree, before with before and after with
after (code that leaves threads busy slows its "after" probe, but then on both sides), or
when the side that won did so on a machine no faster than the other's. A pair that is not
comparable is measured again; the probe never adjusts a number, it only decides whether two
numbers may be compared, the same way for both sides.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

#: Most relative difference between two probes taken at the same speed: across fresh
#: processes the probe varies by a few percent; a change of machine speed shows as tens.
SPEED_TOLERANCE = 0.10
_WORK = 20_000  # about 1-2 ms of pure-Python integer work on a current CPU
_REPEATS = 5

_clock = time.perf_counter  # taken at import, before any candidate can replace it


def _workload() -> int:
    total = 0
    for i in range(_WORK):
        total += (i * i) % 7
    return total


def probe() -> float:
    """Seconds for the fixed workload: the fastest of a few repetitions (an interrupt or a
    page fault slows one repetition; a slower machine slows them all)."""
    best = math.inf
    for _ in range(_REPEATS):
        start = _clock()
        _workload()
        best = min(best, _clock() - start)
    return best


def agree(first: Sequence[float], second: Sequence[float]) -> bool:
    """Whether two measurements ran at the same machine speed (probes before, after).

    Measurements without probes (journals from older versions) are taken as comparable.
    """
    if len(first) != len(second) or not first:
        return True
    return all(_within(a, b) for a, b in zip(first, second, strict=True))


def spread(measurements: Sequence[Sequence[float]]) -> float:
    """How far apart the machine's speed was across measurements: the largest log ratio
    between the same probe (before, after) of any two of them; infinite when a
    measurement has no usable probes."""
    if not measurements or any(len(m) != len(measurements[0]) or not m for m in measurements):
        return math.inf
    widest = 0.0
    for probes in zip(*measurements, strict=True):
        if min(probes) <= 0 or not all(math.isfinite(p) for p in probes):
            return math.inf
        widest = max(widest, math.log(max(probes) / min(probes)))
    return widest


def too_large_to_explain(first: Sequence[float], second: Sequence[float],
                         changes: Sequence[float]) -> bool:
    """Whether every relative change between two measurements (second against first: -0.8
    is 80% lower) is larger than their probes' speed difference could explain, with
    ``SPEED_TOLERANCE`` to spare: then the pair tells which side is faster even though the
    machine's speed changed, and need not be measured again. Whether a pair is kept depends
    on the size of the change, never on its sign, so identical code still wins as often as
    it loses."""
    if len(first) != len(second) or not first or not changes:
        return False
    if not all(a > 0 and b > 0 and math.isfinite(a / b) for a, b in zip(first, second,
                                                                         strict=True)):
        return False
    gap = max(abs(math.log(b / a)) for a, b in zip(first, second, strict=True))
    return all(c > -1 and math.isfinite(c) and abs(math.log1p(c)) > gap
               + math.log1p(SPEED_TOLERANCE) for c in changes)


def comparable(first: Sequence[float], second: Sequence[float], changes: Sequence[float],
               second_won: bool | None) -> bool:
    """Whether a measurement may be compared with another: taken at the same speed, or
    differing by more than the change of speed could explain, or won against the odds.

    ``second_won`` says which way the comparison went (None: do not use it). A second that
    won although no probe says its machine ran faster, or lost although none says slower,
    would only have done so more clearly at the same speed, so the pair tells the truth of
    its sign. The two rules mirror each other: swap two identical sides and one becomes the
    other, so identical code still wins exactly as often as it loses among the pairs kept
    (the interleaved confirmation's sign test relies on that). ``changes``: second against
    first."""
    if agree(first, second) or too_large_to_explain(first, second, changes):
        return True
    if second_won is None or len(first) != len(second) or not first:
        return False
    if second_won:
        return _never_faster(first, second)
    return _never_faster(second, first)


def won(changes: Sequence[float]) -> bool | None:
    """For ``comparable``: whether the second side's times were all lower (True), all higher
    (False), or neither (None: mixed, equal or unusable)."""
    if changes and all(math.isfinite(c) and c < 0 for c in changes):
        return True
    if changes and all(math.isfinite(c) and c > 0 for c in changes):
        return False
    return None


def _never_faster(first: Sequence[float], second: Sequence[float]) -> bool:
    """Whether no probe says the machine ran faster (beyond the tolerance) for ``second``."""
    return all(a > 0 and b > 0 and math.isfinite(a / b)
               and math.log(b / a) >= -math.log1p(SPEED_TOLERANCE)
               for a, b in zip(first, second, strict=True))


def difference(first: Sequence[float], second: Sequence[float]) -> str:
    """The largest probe difference, for messages: e.g. ``+68%``."""
    changes = [b / a - 1 for a, b in zip(first, second, strict=False) if a > 0]
    if not changes:
        return "n/a"
    return f"{max(changes, key=abs) * 100:+.0f}%"


def _within(a: float, b: float) -> bool:
    if a <= 0 or b <= 0 or not (math.isfinite(a) and math.isfinite(b)):
        return False
    return abs(math.log(b / a)) <= math.log1p(SPEED_TOLERANCE)
