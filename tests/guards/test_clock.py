"""Benchmark clocks checked from outside: a clock slowed below Python is caught by the parent."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import pytest
from attacks import SLOW_CLOCK, STEADY_MODULE, baseline_of, steady_study

from pytest_aide.evaluation.evaluator import Evaluator
from pytest_aide.evaluation.sandbox import choose
from pytest_aide.guards.clock import Bracket, MarkReader, clock_findings, tree_cpu_seconds
from pytest_aide.study import Study

MODULE = STEADY_MODULE

TESTS = """\
import pytest
from steady import work


def test_correct():
    assert work(5) == 10


@pytest.mark.optimize(metric="mean")
def test_speed(benchmark):
    benchmark.pedantic(work, args=(10,), rounds=15, iterations=1)
"""



def slowed_clock_candidate(original: str) -> str:
    payload = base64.b64encode(SLOW_CLOCK.encode()).decode()
    return original + textwrap.dedent(f"""
        import base64 as _codec
        KEEP = []
        exec(compile(_codec.b64decode("{payload}").decode(), "/usr/lib/timekeeping.py",
                     "exec"), {{"KEEP": KEEP}})
        """)


@pytest.fixture
def steady_project(pytester: pytest.Pytester) -> tuple[pytest.Pytester, Study]:
    return pytester, steady_study(pytester, MODULE, TESTS)


@pytest.mark.parametrize("sandboxed", [True, False], ids=["bwrap", "unsandboxed"])
def test_a_clock_slowed_below_python_is_caught_by_the_parents_clock(
    steady_project, sandboxed: bool
) -> None:
    pytester, study = steady_project
    sandbox = choose("bwrap").sandbox if sandboxed else None
    evaluator = Evaluator(study, pytester.path, sandbox=sandbox)
    original = study.target.path.read_text()
    baseline = evaluator.evaluate(None, pytester.path / ".aide" / "n0", baseline=None)
    assert baseline.completed and not baseline.tampered, baseline.output_tail
    bracket = baseline.clock["test_steady.py::test_speed"]
    assert bracket.rounds == 15
    # the parent's stamps bracket the benchmark's rounds, not the child's whole run: what
    # they hold beyond the rounds is under half of the rest of the run (start-up, collection)
    assert bracket.reported <= bracket.span
    assert bracket.span - bracket.reported < (baseline.duration - bracket.reported) / 2

    honest = evaluator.evaluate(original.replace("PAUSE = 0.004", "PAUSE = 0.002"),
                                pytester.path / ".aide" / "n1", baseline=baseline_of(baseline))
    assert honest.completed and not honest.tampered, honest.tampered

    cheat = evaluator.evaluate(slowed_clock_candidate(original), pytester.path / ".aide" / "n2",
        baseline=baseline_of(baseline))
    assert cheat.completed, cheat.output_tail
    assert cheat.not_passed(study.nodeids) == []  # it passes, and looks 8x faster inside
    assert cheat.metric(study.objectives[0]) < baseline.metric(study.objectives[0]) / 4
    clock = [t for t in cheat.findings_text if t.startswith("clock:")]
    assert clock and "runs slow" in clock[0] and "test_speed" in clock[0], cheat.tampered


def test_ctypes_reaching_memory_from_the_candidate_is_refused(steady_project) -> None:
    pytester, study = steady_project
    evaluator = Evaluator(study, pytester.path, sandbox=None)
    original = study.target.path.read_text()
    base = evaluator.evaluate(None, pytester.path / ".aide" / "n0", baseline=None)
    # the same attack written plainly in the candidate's own file
    plain = original + "\nKEEP = []\n" + SLOW_CLOCK.replace(
        "worker = threading.Thread(target=patch)\nworker.start()\nworker.join()\n", "patch()\n")
    evaluation = evaluator.evaluate(plain, pytester.path / ".aide" / "n1",
        baseline=baseline_of(base))
    assert any("reached native memory by address" in t for t in evaluation.findings_text), (
        evaluation.tampered, evaluation.output_tail)


def bracket(reported: float, span: float, rounds: int = 10) -> Bracket:
    return Bracket(reported=reported, rounds=rounds, span=span, cpu=span)


@pytest.mark.parametrize(
    ("measured", "reference", "finding"),
    [
        (bracket(1.0, 1.05), bracket(2.0, 2.1), ""),  # honest and faster
        (bracket(3.0, 3.2), bracket(2.0, 2.1), ""),  # honest and slower
        (bracket(2.0, 1.0), bracket(2.0, 2.1), "runs fast"),  # more reported than passed
        (bracket(0.25, 2.1), bracket(2.0, 2.1), "runs slow"),  # 8x slowed
        # a test whose own setup takes long (pedantic setup=): the original's overhead counts
        (bracket(0.5, 3.4), bracket(1.0, 4.0), ""),
        (bracket(0.1, 3.9), bracket(1.0, 4.0), "runs slow"),
        # few slow rounds: calibration and the last call are two more rounds' worth
        (bracket(1.0, 3.0, rounds=1), bracket(0.5, 0.52, rounds=100), ""),
        (bracket(1.0, 4.5, rounds=100), None, "runs slow"),  # no original to learn from
        (bracket(1.0, 3.5, rounds=100), None, ""),
    ],
)
def test_clock_findings(measured: Bracket, reference: Bracket | None, finding: str) -> None:
    found = clock_findings({"t::speed": measured},
                           {"t::speed": reference} if reference else None)
    if finding:
        assert len(found) == 1 and finding in found[0] and found[0].startswith("t::speed:")
    else:
        assert found == []


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Return once ``condition()`` holds (the order a test needs, however loaded the machine
    is); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


#: A busy loop of ``SPIN`` seconds of this process's own CPU time (not of wall time, which a
#: loaded machine stretches while the CPU it gets stays the same).
SPIN_CPU = """
end = time.process_time() + {seconds}
while time.process_time() < end:
    pass
"""


def test_marks_are_stamped_with_the_parents_clock_and_the_childs_cpu() -> None:
    """The child waits, at each mark, until the parent's reader has stamped it: the CPU in
    between is exactly its busy loop's, however late the reader runs."""
    reader = MarkReader()
    go_read, go_write = os.pipe()
    script = textwrap.dedent(f"""
        import os, time
        os.write({reader.write_fd}, b"start 0\\n")
        os.read({go_read}, 1)
    """) + SPIN_CPU.format(seconds=0.3) + textwrap.dedent(f"""
        os.write({reader.write_fd}, b"end 0\\n")
        os.write({reader.write_fd}, b"end 7\\nforged\\n")
        os.read({go_read}, 1)  # alive until stamped, as the worker goes on after its last one
    """)
    began = time.monotonic()
    process = subprocess.Popen([sys.executable, "-c", script],
                               pass_fds=(reader.write_fd, go_read))
    os.close(go_read)
    try:
        reader.start(process.pid)
        wait_until(lambda: "start 0" in reader.stamps)
        os.write(go_write, b"g")
        wait_until(lambda: "end 7" in reader.stamps and reader.malformed != [])
        os.write(go_write, b"g")
        assert process.wait(timeout=60) == 0
    finally:
        os.close(go_write)
        process.kill()
        process.wait()
    reader.join()
    found, problems = reader.brackets({"t::speed": {"mark": 0, "reported": 0.3, "rounds": 3}})
    assert 0.29 < found["t::speed"].span < time.monotonic() - began
    cpu = found["t::speed"].cpu
    assert cpu is not None and 0.28 < cpu < 0.45  # the busy loop's CPU, and nothing else
    assert any("did not write: 'forged'" in p for p in problems)
    assert any("for no benchmark: end 7" in p for p in problems)
    missing, problems = reader.brackets({"t::speed": {"mark": 3, "reported": 0.1}})
    assert missing == {} and any("missing or doubled" in p for p in problems)


def test_tree_cpu_seconds_counts_descendants() -> None:
    """A grandchild's CPU is read while it lives: it says when it has spun, then waits for
    its standard input to close."""
    grandchild = "import sys, time\n" + SPIN_CPU.format(seconds=0.5) + (
        "print('spun', flush=True)\nsys.stdin.read()\n")
    script = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}])"
    process = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline() == "spun\n"
        during = tree_cpu_seconds(process.pid)
        process.stdin.close()
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
        process.wait()
    # the grandchild's busy loop, seen from here: more than the child's own start-up could be
    assert during is not None and during > 0.45
