"""What the evaluator and the inert plugin cost, measured side by side in one run.

1. One evaluation (child pytest with the worker plugin and the candidate mapped in) against
   a bare ``python -m pytest <same node ids>`` of the same tests: unsandboxed and in the
   bubblewrap sandbox, cold (goal: ratio <= 1.10; the sandbox itself under 5%), and
   sandboxed and warm (forked from a zygote, warm.py; goal: <= 0.6), for plain tests and for
   tests that import torch (goal warm: <= 0.5).
2. Collection of a 500-test project with the plugin loaded but inert against the same run
   with ``-p no:aide``. Goal: overhead under 2%.

pytest-aide's own modules are compiled first, as ``pip install`` does: in an editable install
under ``PYTHONDONTWRITEBYTECODE`` every child would compile the worker anew (about 30 ms).

Run: ``python benchmarks/bench_evaluator.py``. Runs alternate (A, B, A, B, ...) so drift on
a busy machine hits both sides alike; medians are compared.
"""

from __future__ import annotations

import compileall
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest_aide
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


TORCH_MODULE = "import torch\n\n\ndef work(n):\n    return torch.arange(n).pow(2).sum().item()\n"
TORCH_TESTS = """\
import pytest
import torch
from work import work

@pytest.mark.parametrize("n", range(20))
def test_correct(n):
    assert work(n) == sum(i * i for i in range(n))

@pytest.mark.optimize(metric="mean")
def test_speed(benchmark):
    benchmark.pedantic(work, args=(2000,), rounds=20, iterations=5)
"""


def side_by_side(root: Path, module: str, tests: str, repeats: int) -> dict[str, float]:
    """Median seconds of one evaluation each way (unsandboxed, sandboxed, sandboxed and warm)
    and of a bare ``python -m pytest`` of the same tests, taken in turn."""
    (root / "work.py").write_text(module)
    (root / "test_work.py").write_text(tests)
    (root / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    nodeids = [f"test_work.py::test_correct[{n}]" for n in range(20)] + ["test_work.py::test_speed"]
    study = Study(Target("work", root / "work.py"),
                  [Objective("test_work.py::test_speed", "mean", False)], nodeids,
                  test_files=[root / "test_work.py"])
    sandbox = choose("auto").sandbox
    hidden = [root / ".aide"]
    ways = {"bare evaluation": Evaluator(study, root, protected_exclude=hidden)}
    if sandbox is not None:
        ways["sandboxed"] = Evaluator(study, root, sandbox=sandbox, protected_exclude=hidden)
        ways["sandboxed, warm"] = Evaluator(study, root, sandbox=sandbox,
                                            protected_exclude=hidden, warm=True)
    bare = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *nodeids]
    times: dict[str, list[float]] = {name: [] for name in [*ways, "python -m pytest"]}
    try:
        for name, evaluator in ways.items():  # warm-up: the zygote starts once per run
            evaluator.evaluate(module, root / ".aide" / f"first-{name}", baseline=None)
        for index in range(repeats):
            for name, evaluator in ways.items():
                started = time.perf_counter()
                evaluation = evaluator.evaluate(module, root / ".aide" / f"{index}-{name}",
                    baseline=None)
                times[name].append(time.perf_counter() - started)
                assert evaluation.completed and not evaluation.not_passed(nodeids)
                assert not evaluation.tampered, evaluation.tampered
            times["python -m pytest"].append(timed(bare, root))
    finally:
        for evaluator in ways.values():
            evaluator.close()
    if "sandboxed, warm" in ways and ways["sandboxed, warm"].warm_notice:
        print(f"warm: {ways['sandboxed, warm'].warm_notice}")
    return {name: statistics.median(values) for name, values in times.items()}


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
    compileall.compile_dir(str(Path(pytest_aide.__file__).parent), quiet=1)
    rows = []
    for label, module, tests in (("plain", MODULE, TESTS), ("torch", TORCH_MODULE, TORCH_TESTS)):
        with tempfile.TemporaryDirectory() as root:
            medians = side_by_side(Path(root), module, tests, repeats=7)
        bare = medians["python -m pytest"]
        rows.append((f"{label}: one evaluation vs python -m pytest", medians["bare evaluation"],
                     bare, "<= 1.10"))
        if "sandboxed" in medians:
            rows.append((f"{label}: sandboxed (cold) vs python -m pytest",
                         medians["sandboxed"], bare, "<= 1.10"))
            rows.append((f"{label}: sandboxed vs unsandboxed evaluation", medians["sandboxed"],
                         medians["bare evaluation"], "< 1.05"))
            goal = "<= 0.6" if label == "plain" else "<= 0.5"
            rows.append((f"{label}: sandboxed, warm vs python -m pytest",
                         medians["sandboxed, warm"], bare, goal))
        else:
            print(f"{label}: bwrap is not usable here: sandboxed and warm not measured")
    with tempfile.TemporaryDirectory() as second:
        loaded, disabled = collection_overhead(Path(second), repeats=9)
    rows.append(("collect 500 tests, inert plugin", loaded, disabled, "<= 1.02"))
    print(f"{'measure (median seconds)':<48}{'ours':>9}{'reference':>11}{'ratio':>8}  goal")
    for label, ours, reference, goal in rows:
        print(f"{label:<48}{ours:>9.3f}{reference:>11.3f}{ours / reference:>8.3f}  {goal}")


if __name__ == "__main__":
    main()
