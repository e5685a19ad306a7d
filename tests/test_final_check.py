"""The final check: a plain ``python -m pytest`` against the written code decides the exit."""

from __future__ import annotations

import re

import pytest
from conftest import SLOW_MODULE
from llm_fake import FakeProvider, code_reply

from pytest_aide.evaluation.plain import PlainRun, parse_outcomes

FAST = re.sub(r"^CHUNK = 2 .*$", "CHUNK = 16", SLOW_MODULE, flags=re.M)

#: Right and fast while the optimizer measures it (its worker is loaded), wrong in the user's
#: own plain run: every evaluation passes, so only a plain final check can tell.
RIGHT_ONLY_WHEN_MEASURED = FAST.replace("def work(n):", '''import sys

_MEASURED = any(name == "pytest" + "_aide.evaluation.worker" for name in sys.modules)


def work(n):
    if not _MEASURED:
        return -1''')


def test_code_right_only_when_measured_fails_the_plain_final_check_and_is_put_back(
    slow_project: pytest.Pytester, httpserver, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = (slow_project.path / "slow.py").read_text()
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(code_reply(RIGHT_ONLY_WHEN_MEASURED, "Chunk the work.")))
    for variable in ("AIDE_MODEL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    result = slow_project.runpytest_subprocess(
        "--aide-steps", "1", "--aide-model", "openai:some-model", "--aide-base-url",
        fake.base_url, "--aide-confirm-rounds", "7",
    )
    output = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, output
    # it won the search and its confirmation: the evaluations could not tell
    result.stdout.fnmatch_lines([
        "step 1/1 draft <- 0*best=*",
        "*aide: final check: a plain python -m pytest of the 6 selected test(s)*",
        "*test_slow.py FFFFF.*",
        "*aide error: the final check failed: it exited 1*Put back as they were: slow.py*",
    ])
    assert (slow_project.path / "slow.py").read_text() == original
    # the summary says so, and does not offer the failed code's patch to apply
    result.stdout.fnmatch_lines(["*target: slow.py written, then put back as it was: the "
                                 "final check failed"])
    assert "apply it:" not in output
    assert "5 failed, 1 passed" in output
    assert "assert -1 == 0" in output  # the plain run's own failure, shown as this session's


def test_parse_outcomes_reads_verbose_lines_and_keeps_the_worse() -> None:
    output = "\n".join([
        "test_a.py::test_one PASSED                                    [ 25%]",
        "test_a.py::test_two[1-x y] FAILED                             [ 50%]",
        "test_a.py::test_three SKIPPED (no gpu)                        [ 75%]",
        "test_a.py::test_four PASSED                                   [100%]",
        "test_a.py::test_four ERROR                                    [100%]",
        "test_a.py::test_unselected PASSED                             [100%]",
        "PASSED test_a.py::test_one",
    ])
    nodeids = ["test_a.py::test_one", "test_a.py::test_two[1-x y]", "test_a.py::test_three",
               "test_a.py::test_four"]
    assert parse_outcomes(output, nodeids) == {
        "test_a.py::test_one": "passed", "test_a.py::test_two[1-x y]": "failed",
        "test_a.py::test_three": "skipped", "test_a.py::test_four": "error",
    }


def test_a_plain_run_passes_only_on_exit_zero_with_no_project_file_changed() -> None:
    assert PlainRun("completed", 0).passed
    assert not PlainRun("completed", 1).passed
    assert not PlainRun("timeout", None).passed
    assert not PlainRun("completed", 0, changed=["created conftest.py"]).passed
    sections = PlainRun("completed", 1, output="\n".join([
        "=================================== FAILURES ===================================",
        "_______________________________ test_correct[7] ________________________________",
        "    assert work(7) == 21",
        "E   assert -1 == 21",
        "=========================== short test summary info ============================",
    ])).failures()
    assert sections == {"test_correct[7]": "assert work(7) == 21\nE   assert -1 == 21"}
