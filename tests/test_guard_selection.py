"""Guards per candidate: an evaluation runs the guards that ran, on the original, a function
the candidate changed (all of them when it changed other code, or a function that runs at
import), and no candidate becomes the best before it has passed every guard."""

from __future__ import annotations

import pytest
from llm_fake import FakeProvider, code_reply, run_with, use_fake_openai

from pytest_aide.guards.baseline import Baseline
from pytest_aide.guards.selection import AT_IMPORT, changed_functions, function_spans
from pytest_aide.journal import Journal, Status

ORIGINAL = """\
import math

LIMIT = 3


def f(n):
    return n + LIMIT


@staticmethod
def g(n):
    return math.sqrt(n)


class Shape:
    sides = 4

    def area(self):
        return 1

    def name(self):
        return "shape"
"""


@pytest.mark.parametrize(("candidate", "changed"), [
    (ORIGINAL.replace("return n + LIMIT", "return LIMIT + n"), {"f"}),
    (ORIGINAL.replace("        return 1\n", "        return 2  # bigger\n"), {"Shape.area"}),
    (ORIGINAL.replace("@staticmethod\n", ""), {"g"}),  # a decorator is the function's
    (ORIGINAL + "\n\ndef helper():\n    return 0\n", {"helper"}),
    (ORIGINAL.replace("def f(n):", "def f(n):  # the same").replace("\n\n\nclass", "\n\nclass"),
     set()),  # comments and blank lines change nothing
])
def test_changes_inside_functions_name_those_functions(candidate: str, changed: set[str]) -> None:
    assert changed_functions(ORIGINAL, candidate) == changed


@pytest.mark.parametrize("candidate", [
    ORIGINAL.replace("LIMIT = 3", "LIMIT = 4"),  # a constant every function may read
    ORIGINAL.replace("import math", "import cmath as math"),
    ORIGINAL.replace("    sides = 4", "    sides = 5"),  # a class attribute
    ORIGINAL.replace("    def name(self):", "    def __eq__(self, other):\n        return True"
                     "\n\n    def name(self):"),  # a method added: inherited behaviour changes
    ORIGINAL + "\n\ndef len(values):\n    return 0\n",  # shadows a builtin others call
    ORIGINAL + "\n\ndef math():\n    return 0\n",  # shadows an import
    ORIGINAL + "\n\ndef f(n):\n    return 0\n",  # defined twice: order decides
    "def f(:\n",
])
def test_any_other_change_runs_every_guard(candidate: str) -> None:
    assert changed_functions(ORIGINAL, candidate) is None


def test_lines_are_mapped_to_the_functions_that_hold_them() -> None:
    spans = function_spans(ORIGINAL)
    assert spans == [(7, 7, "f"), (12, 12, "g"), (19, 19, "Shape.area"),
                     (22, 22, "Shape.name")]  # the bodies: def lines run at import


def test_the_guards_of_a_candidate_are_those_that_ran_what_it_changed() -> None:
    baseline = Baseline(guards=("t::f", "t::g", "t::both", "t::none", "t::speed"),
                        guard_functions={"t::f": ["f"], "t::g": ["g"], "t::both": ["f", "g"],
                                         "t::speed": ["f"], AT_IMPORT: ["g"]})
    marked = ["t::speed"]
    assert baseline.guards_for(frozenset({"f"}), marked) == ("t::f", "t::both", "t::speed")
    assert baseline.guards_for(frozenset(), marked) == ("t::speed",)
    assert baseline.guards_for(None, marked) == baseline.guards
    assert baseline.guards_for(frozenset({"g"}), marked) == baseline.guards  # runs at import
    assert Baseline(guards=("t::f",)).guards_for(frozenset({"f"}), []) == ("t::f",)  # no map
    assert Baseline.from_dict(baseline.to_dict()).guard_functions == baseline.guard_functions


MODULE = """\
import time


def total(values):
    time.sleep(0.004)
    result = 0
    for value in values:
        result += value
    return result


def label(values):
    return f"{len(values)} values"
"""

FAST = MODULE.replace("time.sleep(0.004)", "time.sleep(0.0004)")
FAST_AND_WRONG = FAST.replace("result += value", "result += abs(value)")
LABEL_WRONG = MODULE.replace('f"{len(values)} values"', 'f"{len(values)} items"')

CORRECT = """\
import pathlib
import tempfile

from stats import label, total


def test_total():
    assert total([1, 2, 3]) == 6


def test_label():
    assert label([1, 2]) == "2 values"


def test_label_again():
    assert label([]) == "0 values"


def test_total_only_after_the_first_run():
    # runs label always, total on every run but the first (the probe's): a map made on one
    # run that is wrong on the next, which the check before a candidate becomes the best
    # must catch
    assert label([]) == "0 values"
    flag = pathlib.Path(tempfile.gettempdir()) / FLAG
    if flag.exists():
        assert total([1, -2, 3]) == 2
    else:
        flag.touch()
"""

PERF = """\
import pytest
from stats import total


@pytest.mark.optimize(metric="mean")
def test_speed(benchmark):
    benchmark.pedantic(total, args=([1, 2, 3],), rounds=10, iterations=1)
"""


def test_a_candidate_runs_the_guards_of_what_it_changed_and_all_before_it_is_the_best(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, httpserver, tmp_path
) -> None:
    flag = f"aide-flag-{tmp_path.name}-{id(tmp_path)}"
    pytester.makepyfile(stats=MODULE, test_perf=PERF,
                        test_correct=CORRECT.replace("FLAG", repr(flag)))
    pytester.makeini("[pytest]\npythonpath = .\n")
    use_fake_openai(monkeypatch)
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(code_reply(LABEL_WRONG, "shorter words")),
              fake.text(code_reply(FAST_AND_WRONG, "abs is faster")),
              fake.text(code_reply(FAST, "sleep less")))
    try:
        result = run_with(pytester, fake, "test_perf.py", "--aide-steps", "3", "--aide-drafts",
                          "3", "--aide-sandbox", "off", "--aide-preserve-source")
    finally:
        (__import__("pathlib").Path(__import__("tempfile").gettempdir()) / flag).unlink(
            missing_ok=True)
    output = result.stdout.str()
    assert result.ret == 0, output
    assert "a candidate runs those that ran the functions it changes" in output
    (path,) = pytester.path.glob(".aide/*/journal.json")
    journal = Journal.load(path)
    label_wrong, wrong, right = journal.nodes[1:]
    # label's change ran label's tests (and the benchmark), not total's
    assert label_wrong.status == Status.BUGGY and label_wrong.guards_run == [4, 5]
    assert "test_correct.py::test_label: failed" in label_wrong.error
    assert "test_correct.py::test_total" not in label_wrong.outcomes
    # total's change ran total's tests; the one the map missed ran before it became the best
    assert wrong.guards_run == [2, 5] and wrong.status == Status.BUGGY, wrong.error
    assert wrong.error.startswith("fails a guard its evaluation did not run: "
                                  "test_correct.py::test_total_only_after_the_first_run")
    assert right.status == Status.GOOD and journal.best_id == right.id, right.note
    assert (path.parent / "nodes" / f"{right.id:04d}-other-guards").is_dir()
    assert "guards per candidate: typically 2 of 5 (those that ran the functions it " \
        "changed)" in output



GREETING = '''\
PROMPT = """Say hello to the user by name.
Be brief."""
GREETINGS = ("hello", "hi")
'''

GREETING_SCORE = """
import pytest
import greeting


@pytest.mark.optimize(metric="words", maximize=True)
def test_words(record_property):
    record_property("words", len(greeting.PROMPT.split()))
"""

#: Correctness tests in other files that run none of greeting.py's lines: they read its values.
GREETING_THROUGH_MODULE = """
import greeting


def test_prompt_says_hello():
    assert "hello" in greeting.PROMPT.lower()
"""

GREETING_FROM_IMPORT = """
from greeting import GREETINGS, PROMPT


def test_prompt_names_the_user():
    assert "by name" in PROMPT


def test_unrelated():
    assert "hi" in ("hi", "there")
"""


def test_tests_that_only_read_a_prompt_module_guard_it_from_other_files(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, httpserver
) -> None:
    pytester.makepyfile(greeting=GREETING, test_score=GREETING_SCORE,
                        test_through_module=GREETING_THROUGH_MODULE,
                        test_from_import=GREETING_FROM_IMPORT)
    pytester.makeini("[pytest]\npythonpath = .\n")
    longer = GREETING.replace("Be brief.", "Be brief, and kind, and warm.")
    no_hello = longer.replace("Say hello to", "Greet")
    no_name = longer.replace(" by name", "")
    use_fake_openai(monkeypatch)
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(code_reply(no_hello, "Shorter verb.")),
              fake.text(code_reply(no_name, "Less specific.")),
              fake.text(code_reply(longer, "Warmer.")))
    result = run_with(pytester, fake, "test_score.py", "--aide-steps", "3", "--aide-drafts",
                      "3", "--aide-preserve-source")
    output = result.stdout.str()
    assert result.ret == 0, output
    # the header counts the readers among the guards: 2 files besides the marked one's
    assert "guards: 2 tests in 2 files (test_from_import.py, test_through_module.py)" in output
    (path,) = pytester.path.glob(".aide/*/journal.json")
    journal = Journal.load(path)
    wrong_hello, wrong_name, right = journal.nodes[1:]
    assert wrong_hello.status == Status.BUGGY
    assert "test_through_module.py::test_prompt_says_hello: failed" in wrong_hello.error
    assert wrong_name.status == Status.BUGGY
    assert "test_from_import.py::test_prompt_names_the_user: failed" in wrong_name.error
    assert right.status == Status.GOOD and journal.best_id == right.id
    assert "test_from_import.py::test_unrelated" not in right.outcomes  # it reads nothing
