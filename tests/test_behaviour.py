"""The original's answers, replayed: a candidate must answer the calls the tests make as the
original did, whatever the tests' own assertions let through (--aide-compare on)."""

from __future__ import annotations

import json

import pytest
from llm_fake import FakeProvider, code_reply, run_with, use_fake_openai

from pytest_aide.journal import Journal, Status

MODULE = """\
import time

IRREGULAR = {"ox": "oxen", "child": "children", "mouse": "mice"}


def plural(word):
    time.sleep(0.003)
    return IRREGULAR.get(word, word + "s")
"""

TESTS = """\
import pytest
from words import plural


def test_regular():
    assert plural("cat") == "cats"


def test_ox():
    assert plural("ox") == "oxen"


def test_child_weakly():
    assert plural("child").startswith("child")


@pytest.mark.optimize(metric="mean")
def test_speed(benchmark):
    benchmark.pedantic(plural, args=("dog",), rounds=10, iterations=1)
"""

FAST = MODULE.replace("time.sleep(0.003)", "time.sleep(0.0003)")
#: Passes every test (the weak one included), and answers 'childs'.
SUBTLY_WRONG = FAST.replace('"child": "children", ', "")
#: A result that claims to equal anything: every == in the tests passes.
LIAR = FAST + """

class Anything(str):
    def __eq__(self, other):
        return True

    __hash__ = str.__hash__


_plural = plural


def plural(word):
    return Anything(_plural(word) + "!")
"""


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    pytester.makepyfile(words=MODULE, test_words=TESTS)
    pytester.makeini("[pytest]\npythonpath = .\n")
    use_fake_openai(monkeypatch)
    return pytester


@pytest.mark.parametrize("sandbox", ["bwrap", "off"])
def test_wrong_answers_lose_and_the_faster_right_candidate_is_written(
    project: pytest.Pytester, httpserver, sandbox: str
) -> None:
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(code_reply(SUBTLY_WRONG, "drop a rare word")),
              fake.text(code_reply(LIAR, "a smarter string")),
              fake.text(code_reply(FAST, "sleep less")))
    result = run_with(project, fake, "--aide-steps", "3", "--aide-drafts", "3",
                 "--aide-sandbox", sandbox)
    output = result.stdout.str()
    assert result.ret == 0, output
    (path,) = project.path.glob(".aide/*/journal.json")
    journal = Journal.load(path)
    wrong, liar, right = journal.nodes[1:]
    assert wrong.status == Status.BUGGY, wrong.error
    assert ("behaves differently: plural('child') returned 'childs', the original "
            "'children'") in wrong.error
    assert liar.status == Status.BUGGY and "Anything" in liar.error, liar.error
    assert right.status == Status.GOOD and journal.best_id == 3
    assert (project.path / "words.py").read_text() == FAST
    baseline = json.loads((path.parent / "baseline.json").read_text())
    shown = {call["shown"] for call in baseline["calls"]}
    assert {"plural('cat')", "plural('ox')", "plural('child')", "plural('dog')"} <= shown


def test_compare_off_lets_the_tests_alone_judge(project: pytest.Pytester, httpserver) -> None:
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(code_reply(SUBTLY_WRONG, "drop a rare word")))
    result = run_with(project, fake, "--aide-steps", "1", "--aide-compare", "off",
                 "--aide-sandbox", "off", "--aide-preserve-source")
    assert result.ret == 0, result.stdout.str()
    (path,) = project.path.glob(".aide/*/journal.json")
    assert Journal.load(path).nodes[1].status == Status.GOOD
    assert json.loads((path.parent / "baseline.json").read_text())["calls"] == []


def test_answers_that_vary_on_the_original_are_not_compared(
    project: pytest.Pytester, httpserver
) -> None:
    # random, not the clock: two reads of a clock a few milliseconds apart agree within the
    # float tolerance, and the probe's second call may come that soon
    stamp = "\n\nimport random\n\n\ndef stamp():\n    return random.random()\n"
    project.makepyfile(words=MODULE + stamp,
                       test_stamp="from words import stamp\n\ndef test_stamp():\n"
                                  "    assert stamp() >= 0\n")
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(code_reply(FAST + stamp, "sleep less")))
    result = run_with(project, fake, "--aide-steps", "1", "--aide-sandbox", "off",
                 "--aide-preserve-source")
    assert result.ret == 0, result.stdout.str()
    (path,) = project.path.glob(".aide/*/journal.json")
    baseline = json.loads((path.parent / "baseline.json").read_text())
    stamp = next(c for c in baseline["calls"] if c["name"] == "stamp")
    assert stamp["stable"] is False
    assert Journal.load(path).nodes[1].status == Status.GOOD
