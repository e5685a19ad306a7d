"""What a wrong candidate costs when a guard that failed before runs first, and what a no-op
costs, against a passing candidate, on a project with 500 guard tests.

A temporary project: ``calc.py`` (``scale`` with a short sleep, the benchmarked function),
500 guard tests in five files, each a few milliseconds, and one benchmark. A scripted
proposer (a conftest's ``pytest_aide_make_proposer``) answers, in order: a wrong candidate
(fails the guard ``test_guards_3.py::test_case[437]``), a second wrong one that fails the
same guard, a faster right one, and a no-op of it (locals renamed, a comment). One real run
(``pytest --aide-steps 4``, sandboxed as by default) evaluates them; each node's evaluation
time is read from the journal and printed beside the passing candidate's.

    python benchmarks/bench_cascade.py        # about a minute on 2 cores

Goals (#27): the second wrong candidate costs <= 0.3x the passing one; the no-op costs no
evaluation.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODULE = '''\
import time


def scale(values, factor):
    time.sleep(0.01)
    return [value * factor for value in values]
'''

WRONG = MODULE.replace("value * factor for value in values",
                       "value * factor if value != 437 else 0 for value in values")
WRONG_AGAIN = WRONG.replace("time.sleep(0.01)", "time.sleep(0.002)")
RIGHT = MODULE.replace("time.sleep(0.01)", "time.sleep(0.001)")
NOOP = ("# the same, reformatted\n"
        + RIGHT.replace("value * factor for value in values", "item * factor for item in values"))

GUARDS = '''\
import time

import pytest
from calc import scale


@pytest.mark.parametrize("case", range({low}, {high}))
def test_case(case):
    time.sleep(0.002)
    assert scale([case], 2) == [case * 2]
'''

PERF = '''\
import pytest
from calc import scale


@pytest.mark.optimize(metric="mean")
def test_speed(benchmark):
    benchmark.pedantic(scale, args=(list(range(10)), 3), rounds=10, iterations=1)
'''

CONFTEST = f'''\
from pytest_aide.proposers.base import Proposal

ANSWERS = {[("wrong", WRONG), ("wrong again", WRONG_AGAIN), ("right", RIGHT),
             ("no-op", NOOP)]!r}


class Scripted:
    name = "scripted"

    def __init__(self):
        self.answers = list(ANSWERS)

    def propose(self, request):
        plan, code = self.answers.pop(0)
        return Proposal(plan=plan, code=code)

    def observe(self, node, proposal):
        pass


def pytest_aide_make_proposer(config, settings, original_code, study, notify):
    return Scripted()
'''


def make_project(root: Path) -> None:
    (root / "calc.py").write_text(MODULE)
    (root / "conftest.py").write_text(CONFTEST)
    (root / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    (root / "test_perf.py").write_text(PERF)
    for index in range(5):
        (root / f"test_guards_{index}.py").write_text(
            GUARDS.format(low=index * 100, high=(index + 1) * 100))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="aide-bench-cascade-") as scratch:
        root = Path(scratch)
        make_project(root)
        started = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "test_perf.py", "--aide-steps", "4",
             "--aide-drafts", "4", "--aide-preserve-source", "-p", "no:cacheprovider"],
            cwd=root, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if run.returncode != 0:
            sys.exit(f"the run failed (exit {run.returncode}):\n{run.stdout[-3000:]}")
        (path,) = root.glob(".aide/*/journal.json")
        nodes = json.loads(path.read_text())["nodes"]
    by_plan = {node["plan"]: node for node in nodes}
    right = by_plan["right"]["duration"]
    print(f"a run of 4 steps on a project with 500 guard tests: {wall:.1f}s")
    print(f"{'candidate':<14} {'evaluation':>10} {'/ passing':>10}  tests run")
    for plan in ("wrong", "wrong again", "right", "no-op"):
        node = by_plan[plan]
        ran = sum(1 for outcome in node["outcomes"].values() if outcome != "not run")
        print(f"{plan:<14} {node['duration']:>9.2f}s {node['duration'] / right:>10.2f}  "
              f"{ran} of {len(node['outcomes']) or 'none'}; {node['status']}")
    print("goals: 'wrong again' <= 0.30 of a passing candidate; the no-op costs nothing")


if __name__ == "__main__":
    main()
