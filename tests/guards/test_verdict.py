"""The parent's cross-checks: signed results that the exit status or pytest's counts belie."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pytest_aide.evaluation.evaluator import Evaluator
from pytest_aide.guards.findings import FindingKind
from pytest_aide.guards.verdict import disagreements, phase_checked_outcome, pytest_counts
from pytest_aide.study import Objective, Study, Target


def report(nodeid: str, when: str, outcome: str = "passed") -> dict:
    return {"$report_type": "TestReport", "nodeid": nodeid, "when": when, "outcome": outcome}


def test_passed_needs_a_passed_setup_call_and_teardown() -> None:
    full = [report("t::a", w) for w in ("setup", "call", "teardown")]
    assert phase_checked_outcome("t::a", "passed", full) == "passed"
    only_setup = [report("t::a", "setup"), report("t::a", "teardown")]
    assert phase_checked_outcome("t::a", "passed", only_setup) == "error"
    failed_teardown = [*full[:2], report("t::a", "teardown", "failed")]
    assert phase_checked_outcome("t::a", "passed", failed_teardown) == "error"
    # a skip has no call phase, and stays a skip
    assert phase_checked_outcome("t::a", "skipped", [report("t::a", "setup", "skipped")]) == (
        "skipped"
    )
    assert phase_checked_outcome("t::a", None, []) == "not run"


def test_pytest_counts_reads_the_closing_line() -> None:
    output = "....F\n=== short test summary ===\nFAILED t::b\n"
    output += "1 failed, 4 passed, 2 errors in 0.31s\n"
    assert pytest_counts(output) == {"failed": 1, "passed": 4, "error": 2}
    assert pytest_counts("====== 3 passed, 1 warning in 1.02s ======") == {
        "passed": 3, "warning": 1,
    }
    assert pytest_counts("no summary here") is None


def test_results_that_agree_with_the_exit_status_and_counts_pass() -> None:
    data = {"exitstatus": 0, "tests": {"t::a": {"outcome": "passed"}}}
    assert disagreements(data, returncode=0, output="1 passed in 0.1s") == []
    failed = {"exitstatus": 1, "tests": {"t::a": {"outcome": "failed"}}}
    assert disagreements(failed, returncode=1, output="1 failed in 0.1s") == []


@pytest.mark.parametrize(
    "data, returncode, output, words",
    [
        # all passed, says the file; the kernel says pytest exited with "tests failed"
        ({"exitstatus": 0, "tests": {"t::a": {"outcome": "passed"}}}, 1, "", "exit status"),
        # a forger that also claims exit status 1 still contradicts its own outcomes
        ({"exitstatus": 1, "tests": {"t::a": {"outcome": "passed"}}}, 1, "", "no failure"),
        # failures reported, exit 0
        ({"exitstatus": 0, "tests": {"t::a": {"outcome": "failed"}}}, 0, "", "exited with 0"),
        # more passes than pytest itself counted
        (
            {"exitstatus": 0, "tests": {"t::a": {"outcome": "passed"},
                                        "t::b": {"outcome": "passed"}}},
            0, "1 passed in 0.2s", "pytest's own summary",
        ),
        # pytest counted a failure that the results leave out
        ({"exitstatus": 0, "tests": {"t::a": {"outcome": "passed"}}}, 0,
         "1 passed, 1 failed in 0.2s", "pytest's own summary"),
    ],
)
def test_a_disagreement_is_tampering(data, returncode, output, words) -> None:
    found = disagreements(data, returncode=returncode, output=output)
    assert found and any(words in f for f in found), found


def test_a_candidate_that_hides_its_tests_call_phase_does_not_pass(
    pytester: pytest.Pytester,
) -> None:
    """The call phase is run but never reported: before the check, setup and teardown alone
    made the test 'passed'."""
    pytester.makepyfile(calc=textwrap.dedent("""
        import _pytest.runner as runner

        _real = runner.call_and_report

        def call_and_report(item, when, log=True, **kwargs):
            return _real(item, when, log=(when != "call") and log, **kwargs)

        runner.call_and_report = call_and_report

        def add(a, b):
            return a - b
    """))
    pytester.makepyfile(
        test_calc="from calc import add\n\ndef test_add():\n    assert add(2, 2) == 4\n"
    )
    pytester.makeini("[pytest]\npythonpath = .\n")
    study = Study(target=Target("calc", pytester.path / "calc.py"), objectives=[],
                  guard_nodeids=["test_calc.py::test_add"])
    source = (pytester.path / "calc.py").read_text()
    evaluation = Evaluator(study, pytester.path).evaluate(source, pytester.path / "w",
        baseline=None)
    assert evaluation.outcome("test_calc.py::test_add") != "passed"
    assert evaluation.not_passed(study.nodeids) == ["test_calc.py::test_add"]


def test_the_key_reaches_the_worker_by_a_pipe_and_never_by_a_file(
    slow_project: pytest.Pytester,
) -> None:
    """What a candidate could look for: the settings file, the environment, open fds."""
    root: Path = slow_project.path
    study = Study(target=Target("slow", root / "slow.py"),
                  objectives=[Objective("test_slow.py::test_speed", "mean", False)],
                  guard_nodeids=["test_slow.py::test_correct[7]"])
    spy = textwrap.dedent("""
        import json, os
        _workdir = os.path.dirname(os.path.dirname(__file__))
        _seen = {"env": sorted(k for k in os.environ if "KEY" in k or "PYTEST_AIDE" in k),
                 "fds": [],
                 "files": sorted(os.listdir(_workdir))}
        for _fd in os.listdir("/proc/self/fd"):
            try:
                _link = os.readlink(f"/proc/self/fd/{_fd}")
                with open(f"/proc/self/fdinfo/{_fd}") as _info:
                    _flags = int(_info.read().split("flags:")[1].split()[0], 8)
                _seen["fds"].append(f"{_link} {'write-only' if _flags & 3 == 1 else 'readable'}")
            except (OSError, IndexError, ValueError):
                pass
        with open(os.path.join(_workdir, "spy.json"), "w") as _f:
            json.dump(_seen, _f)
    """)
    candidate = (root / "slow.py").read_text() + spy
    workdir = root / ".aide" / "k"
    evaluation = Evaluator(study, root).evaluate(candidate, workdir, baseline=None)
    assert evaluation.completed, evaluation.error_summary([])
    # the spy is flagged for what its source reads (/proc), and for nothing else
    assert all(f.kind is FindingKind.CODE for f in evaluation.tampered), evaluation.tampered
    seen = json.loads((workdir / "spy.json").read_text())
    assert seen["env"] == []
    assert "worker.json" not in seen["files"]  # read and deleted before the project loads
    # the key's pipe was read and closed: no pipe can be read in the process (the one pipe
    # left is where the worker writes its clock marks: see clock.py)
    pipes = [fd for fd in seen["fds"] if fd.startswith("pipe:")]
    assert seen["fds"] and all(fd.endswith("write-only") for fd in pipes), seen["fds"]
    assert len(pipes) <= 1, pipes
    assert evaluation.outcome("test_slow.py::test_correct[7]") == "passed"
