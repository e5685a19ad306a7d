"""What the evaluator and the inert plugin cost, measured side by side in one run.

1. One evaluation (child pytest with the worker plugin and the candidate mapped in) against
   a bare ``python -m pytest <same node ids>`` of the same tests, without and with the
   bubblewrap sandbox (when it works here). Goal: ratio <= 1.10.
2. Collection of a 500-test project with the plugin loaded but inert against the same run
   with ``-p no:aide``. Goal: overhead under 2%.

Run: ``python benchmarks/bench_evaluator.py``. Runs alternate (A, B, A, B, ...) so drift on
a busy machine hits both sides alike; medians are compared.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_aide.evaluation.evaluator import Evaluator, child_environment
from pytest_aide.evaluation.sandbox import choose
from pytest_aide.study import Objective, Study, Target

MODULE = "def work(n):\n    return sum(i * i for i in range(n))\n"
TESTS = """\
import pytest
from work import work

@pytest.mark.parametrize("n", range(20))
def test_correct(n):
    assert work(n) == sum(i * i for i in range(n))

@pytest.mark.optimize(metric="mean")
def test_speed(benchmark):
    benchmark.pedantic(work, args=(2000,), rounds=20, iterations=5)
"""


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=child_environment(), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def evaluator_overhead(root: Path, repeats: int) -> tuple[float, float, float | None]:
    (root / "work.py").write_text(MODULE)
    (root / "test_work.py").write_text(TESTS)
    (root / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    nodeids = [f"test_work.py::test_correct[{n}]" for n in range(20)] + ["test_work.py::test_speed"]
    study = Study(Target("work", root / "work.py"),
                  [Objective("test_work.py::test_speed", "mean", False)], nodeids)
    evaluator = Evaluator(study, root)
    sandbox = choose("auto").sandbox
    boxed = Evaluator(study, root, sandbox=sandbox, protected_exclude=[root / ".aide"])
    bare = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *nodeids]
    ours, theirs, sandboxed = [], [], []
    for _ in range(repeats):
        for chosen, times in ((evaluator, ours), (boxed, sandboxed)):
            if chosen is boxed and sandbox is None:
                continue
            started = time.perf_counter()
            evaluation = chosen.evaluate(MODULE, root / ".aide" / f"{len(times)}-{id(times)}")
            times.append(time.perf_counter() - started)
            assert evaluation.completed and not evaluation.not_passed(nodeids)
            assert not evaluation.tampered, evaluation.tampered
        theirs.append(timed(bare, root))
    boxed_median = statistics.median(sandboxed) if sandboxed else None
    return statistics.median(ours), statistics.median(theirs), boxed_median


def collection_overhead(root: Path, repeats: int) -> tuple[float, float]:
    (root / "lib.py").write_text("def f(x):\n    return x + 1\n")
    for index in range(10):
        body = "from lib import f\n\n" + "".join(
            f"def test_{index}_{n}():\n    assert f({n}) == {n + 1}\n\n" for n in range(50)
        )
        (root / f"test_many_{index}.py").write_text(body)
    (root / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    base = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    loaded, disabled = [], []
    for _ in range(repeats):
        loaded.append(timed(base, root))
        disabled.append(timed([*base, "-p", "no:aide"], root))
    return statistics.median(loaded), statistics.median(disabled)


def main() -> None:
    with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
        ours, bare, boxed = evaluator_overhead(Path(first), repeats=7)
        loaded, disabled = collection_overhead(Path(second), repeats=9)
    print(f"{'measure':<44}{'pytest-aide':>12}{'reference':>12}{'ratio':>8}  goal")
    print(f"{'one evaluation vs bare pytest (s, median)':<44}{ours:>12.3f}{bare:>12.3f}"
          f"{ours / bare:>8.3f}  <= 1.10")
    if boxed is None:
        print("one evaluation in the sandbox: bwrap is not usable here, not measured")
    else:
        print(f"{'one evaluation, sandboxed, vs bare (s)':<44}{boxed:>12.3f}{bare:>12.3f}"
              f"{boxed / bare:>8.3f}  <= 1.10")
    print(f"{'collect 500 tests, inert plugin (s, median)':<44}{loaded:>12.3f}"
          f"{disabled:>12.3f}{loaded / disabled:>8.3f}  <= 1.02")


if __name__ == "__main__":
    main()
