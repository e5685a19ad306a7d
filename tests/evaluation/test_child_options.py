"""Options on the parent's command line that change how tests are measured reach the child."""

from __future__ import annotations

import json

import pytest

from pytest_aide.evaluation.child_options import child_options


def test_measuring_and_loading_options_are_forwarded_the_rest_stays() -> None:
    args = [
        "tests", "--aide-steps", "5", "--benchmark-min-rounds", "20", "-k", "speed",
        "--benchmark-max-time=0.1", "--benchmark-autosave", "--benchmark-json", "out.json",
        "-p", "no:randomly", "-pxdist", "-p", "pytest_aide.evaluation.worker", "-o", "a=b",
        "-Werror",
        "--benchmark-disable-gc", "--benchmark-warmup", "--junitxml", "r.xml",
    ]
    assert child_options(args) == [
        "--benchmark-min-rounds", "20", "--benchmark-max-time=0.1", "-p", "no:randomly",
        "-pxdist", "-o", "a=b", "-Werror", "--benchmark-disable-gc", "--benchmark-warmup",
    ]


def test_an_optional_value_is_taken_as_argparse_takes_it() -> None:
    assert child_options(["--benchmark-warmup", "on", "tests"]) == ["--benchmark-warmup", "on"]
    assert child_options(["--benchmark-warmup", "-q"]) == ["--benchmark-warmup"]


WORK = "REPEAT = 50\n\n\ndef work():\n    return sum(range(REPEAT))\n"
TESTS = """
import pytest

from work import work


@pytest.mark.optimize(metric="mean")
def test_speed(benchmark):
    assert benchmark(work) >= 0
"""


def test_the_search_measures_with_the_rounds_asked_for_on_the_command_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(work=WORK, test_work=TESTS)
    pytester.makeini("[pytest]\npythonpath = .\n")
    result = pytester.runpytest_subprocess(
        "--aide-steps=1", "--aide-model=tune", "--aide-preserve-source",
        "--benchmark-min-rounds", "9", "--benchmark-max-time=0.000001", "-p", "no:randomly",
    )
    assert result.ret == 0, result.stdout.str()
    journal = json.loads(next(pytester.path.glob(".aide/*/journal.json")).read_text())
    root = journal["nodes"][0]
    assert len(root["samples"]["test_work.py::test_speed"]) == 9
