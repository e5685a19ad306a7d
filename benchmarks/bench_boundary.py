"""The project snapshot's cost on a project of a few thousand files.

Every evaluation checks the whole project after the child ends (boundary.py), so the check
must stay cheap: goal, under 1 s for 3,000 files (it was an assertion in the tests, where a
loaded 2-core machine broke it; the tests keep the correctness of the same tree). Printed:
the median of the snapshot's check over a few repeats, the snapshot's own cost, and the check
as a multiple of a bare walk that stats every file (what no check can go below).

Run: ``python benchmarks/bench_boundary.py [files] [repeats]`` (default 3000, 7).
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pytest_aide.guards.boundary import ProjectSnapshot

GOAL_SECONDS = 1.0


def make_tree(root: Path, count: int) -> None:
    for i in range(count):
        folder = root / f"pkg{i % 30}"
        folder.mkdir(exist_ok=True)
        (folder / f"m{i}.py").write_text("x = 1\n" * 50)


def bare_walk(root: Path) -> int:
    """Stat every file under ``root``: the floor for any check of the tree."""
    seen = 0
    for folder, _, names in os.walk(root):
        for name in names:
            os.stat(os.path.join(folder, name))
            seen += 1
    return seen


def timed(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str]) -> None:
    count = int(argv[0]) if argv else 3000
    repeats = int(argv[1]) if len(argv) > 1 else 7
    with tempfile.TemporaryDirectory() as place:
        root = Path(place)
        make_tree(root, count)
        take = timed(lambda: ProjectSnapshot.take(root), repeats)
        snapshot = ProjectSnapshot.take(root)
        check = timed(snapshot.restore, repeats)
        floor = timed(lambda: bare_walk(root), repeats)
    verdict = "within" if check < GOAL_SECONDS else "OVER"
    print(f"{count} files, median of {repeats}:")
    print(f"  snapshot taken in  {take * 1000:8.1f} ms")
    print(f"  checked in         {check * 1000:8.1f} ms  ({verdict} the {GOAL_SECONDS:.0f} s goal)")
    print(f"  bare walk + stat   {floor * 1000:8.1f} ms  (check = {check / floor:.1f}x the walk)")


if __name__ == "__main__":
    main(sys.argv[1:])
