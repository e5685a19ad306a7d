"""Guards chosen by what they execute: a correctness test in another file than the benchmark
still guards the target (--aide-guards auto), a test that skips, xfails or xpasses on the
original guards nothing and blocks nothing, and the choice is said in the header."""

from __future__ import annotations

import pytest
from llm_fake import FakeProvider, code_reply, run_with, use_fake_openai

from pytest_aide.guards.selection import GuardChoice, GuardMode, choose
from pytest_aide.journal import Journal, Status
from pytest_aide.study import suite_files

MODULE = """\
import time


def total(values):
    time.sleep(0.004)
    result = 0
    for value in values:
        result += value
    return result
"""

FAST = MODULE.replace("time.sleep(0.004)", "time.sleep(0.0004)")
FAST_AND_WRONG = FAST.replace("result += value", "result += abs(value)")

CORRECT = """\
import pytest
from stats import total


def test_positive():
    assert total([1, 2, 3]) == 6


def test_negative():
    assert total([1, -2, 3]) == 2


@pytest.mark.xfail(reason="not a bug any more", strict=False)
def test_an_old_xfail_that_passes_now():
    assert total([]) == 0


def test_unrelated():
    assert sorted([2, 1]) == [1, 2]
"""

PERF = """\
import pytest
from stats import total


@pytest.mark.optimize(metric="mean")
def test_speed(benchmark):
    benchmark.pedantic(total, args=([1, 2, 3],), rounds=10, iterations=1)
"""

OTHER = """\
def test_something_else():
    assert True
"""


@pytest.fixture
def layout(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A new user's project: the correctness tests and the benchmark in different files, and
    a test file that does not import the target at all."""
    pytester.makepyfile(stats=MODULE, test_correct=CORRECT, test_perf=PERF, test_other=OTHER)
    pytester.makeini("[pytest]\npythonpath = .\n")
    use_fake_openai(monkeypatch)
    return pytester


def test_a_wrong_candidate_is_caught_by_a_test_in_another_file_and_the_right_one_written(
    layout: pytest.Pytester, httpserver
) -> None:
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(code_reply(FAST_AND_WRONG, "abs is faster")),
              fake.text(code_reply(FAST, "sleep less")))
    result = run_with(layout, fake, "test_perf.py", "--aide-steps", "2", "--aide-drafts", "2",
                      "--aide-sandbox", "off")
    output = result.stdout.str()
    assert result.ret == 0, output
    result.stdout.fnmatch_lines([
        "aide: guards: 2 tests in 1 file (test_correct.py) (the marked tests' files, and the "
        "suite's tests that run stats.py: coverage of 5 tests; --aide-guards to change); a "
        "candidate runs those that ran the functions it changes (all, when it changes other "
        "code), every one before it becomes the best; 1 that xpass on the original are not "
        "guards",
    ])
    (path,) = layout.path.glob(".aide/*/journal.json")
    journal = Journal.load(path)
    wrong, right = journal.nodes[1], journal.nodes[2]
    assert wrong.status == Status.BUGGY
    assert "test_correct.py::test_negative: failed" in wrong.error, wrong.error
    assert right.status == Status.GOOD and journal.best_id == 2
    assert (layout.path / "stats.py").read_text() == FAST
    assert "guard(s) from other files" in output  # the final check ran them too
    assert "test_correct.py::test_unrelated" not in journal.root.outcomes


def test_guards_files_is_the_older_rule(layout: pytest.Pytester, httpserver) -> None:
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(code_reply(FAST_AND_WRONG, "abs is faster")))
    result = run_with(layout, fake, "test_perf.py", "--aide-steps", "1", "--aide-sandbox", "off",
                      "--aide-guards", "files", "--aide-preserve-source")
    output = result.stdout.str()
    assert result.ret == 0, output
    assert "aide: guards: 0 tests in 0 files in the marked tests' files" in output
    assert "aide: warning: only the marked tests guard stats.py" in output
    (path,) = layout.path.glob(".aide/*/journal.json")
    assert Journal.load(path).nodes[1].status == Status.GOOD  # nothing in its file catches it


def test_the_suite_is_the_files_that_import_the_target(layout: pytest.Pytester) -> None:
    files = suite_files([layout.path], ["test_*.py"], "stats")
    assert sorted(p.name for p in files) == ["test_correct.py", "test_perf.py"]
    assert suite_files([layout.path], ["test_*.py"], "stats.core") == files
    (layout.path / ".venv").mkdir()
    (layout.path / ".venv" / "test_hidden.py").write_text("import stats\n")
    assert suite_files([layout.path], ["test_*.py"], "stats") == files


def test_choosing_leaves_out_what_does_not_pass_or_does_not_run_the_target() -> None:
    outcomes = {"a::ok": "passed", "a::x": "xpassed", "a::s": "skipped", "a::f": "failed",
                "b::far": "passed", "m::speed": "passed"}
    choice = choose(GuardMode.AUTO, outcomes, ["m::speed"],
                    executed=["a::ok", "a::x", "a::s", "a::f", "m::speed"])
    assert choice.guards == ("a::ok",)
    assert choice.left_out == {"xpassed": 1, "skipped": 1, "failed": 1}
    assert choice.suite == 6
    assert choice.header("t.py") == (
        "guards: 1 test in 1 file (a) (the marked tests' files, and the suite's tests that run "
        "t.py: coverage of 6 tests; --aide-guards to change); 1 that fail on the original, 1 "
        "that skip on the original, 1 that xpass on the original are not guards")
    assert GuardChoice(GuardMode.FILES, ()).only_marked()
