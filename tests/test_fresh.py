"""Speed on inputs the candidate never saw: a speedup that exists only for the benchmark's
own input (an answer prepared for it, a cache keyed by its content) is not taken; an honest
one is."""

from __future__ import annotations

import base64
import pickle
import random
import types

import numpy as np
import pytest
from llm_fake import FakeProvider, code_reply, run_with, use_fake_openai

from pytest_aide.guards.fresh import (
    ANSWERED,
    MIN_TIMED,
    ROUNDS,
    Freshener,
    fresh_difference,
    original_answers,
    time_fresh,
)
from pytest_aide.guards.replay import PER_CALLABLE, Recorder
from pytest_aide.journal import Journal, Status


def test_fresh_arguments_keep_kinds_shapes_ranges_and_equalities() -> None:
    rng = random.Random(1)
    words = ["ox", "cat", "ox", "mouse", "cat"]
    args = ((words, 7, 2.5, np.arange(12, dtype=np.float32).reshape(3, 4)), {"limit": 7})
    freshener = Freshener.for_arguments(args, rng)
    (new_words, n, x, array), kwargs = freshener.fresh_call(*args)
    assert freshener.changed
    assert [len(w) for w in new_words] == [len(w) for w in words]
    assert new_words[0] == new_words[2] and new_words[1] == new_words[4]  # repeats kept
    assert len(set(new_words)) == 3 and new_words != words
    assert type(n) is int and 5 <= n <= 9 and kwargs["limit"] == n  # the same value, mapped
    assert type(x) is float
    assert array.shape == (3, 4) and array.dtype == np.float32
    assert array.min() >= 0 and array.max() <= 11 and not np.array_equal(array, args[0][3])


def test_nothing_to_vary_is_said() -> None:
    freshener = Freshener.for_arguments(((), {}), random.Random(0))
    freshener.fresh(((), {}))
    assert not freshener.changed


def test_a_marked_tests_call_is_recorded_after_other_tests_used_up_the_limits() -> None:
    """The benchmark's call is what fresh inputs are made from: recorded even when earlier
    tests called the same function more often than the limit per callable, with the same
    arguments too."""
    module = module_with("def total(values):\n    return sum(values)\n")
    recorder = Recorder("summing")
    recorder.install(module)
    recorder.current_test = "test_sums.py::test_many"
    for size in range(PER_CALLABLE + 3):
        module.total(list(range(size)))
    assert len(recorder.calls) == PER_CALLABLE
    recorder.current_test, recorder.current_marked = "test_sums.py::test_speed", True
    for _ in range(3):  # the benchmark's rounds: its first call is the one kept
        module.total([0, 1, 2])
    kept = [c for c in recorder.calls if c.test == "test_sums.py::test_speed"]
    assert [c.shown for c in kept] == ["total([0, 1, 2])"]


def module_with(source: str) -> types.ModuleType:
    module = types.ModuleType("summing")
    exec(source, vars(module))
    return module


def recorded(*args: object, **kwargs: object) -> dict[str, object]:
    """A benchmarked call as the baseline keeps it."""
    blob = pickle.dumps((args, kwargs))
    return {"id": 0, "name": "total", "args": base64.b64encode(blob).decode("ascii")}


def test_the_original_answers_the_very_inputs_a_candidate_was_timed_on() -> None:
    call = recorded([3, 1, 4, 1, 5, 9, 2, 6])
    original = module_with("def total(values):\n    return sum(values)\n")
    timing = time_fresh(module_with("def total(values):\n    return sum(sorted(values))\n"),
                        call, rounds=6)
    assert timing.seed is not None and len(timing.times) == 6 and len(timing.answers) == 4
    answers = original_answers(original, call, timing.seed)
    assert [a["stable"] for a in answers] == [True] * 4
    assert fresh_difference(answers, timing.answers) == ""  # the same inputs: same sums
    assert fresh_difference(original_answers(original, call, timing.seed + 1),
                            timing.answers)  # other inputs: other sums


def test_slow_calls_are_timed_within_the_budget_fast_ones_the_full_count() -> None:
    call = recorded([3, 1, 4, 1, 5])
    slow = module_with("import time\n\ndef total(values):\n    time.sleep(0.02)\n"
                       "    return sum(values)\n")
    timing = time_fresh(slow, call, budget=0.01)
    assert len(timing.times) == MIN_TIMED and len(timing.answers) == ANSWERED
    assert timing.missing == ""
    fast = module_with("def total(values):\n    return sum(values)\n")
    assert len(time_fresh(fast, call, budget=0.5).times) == ROUNDS


def test_a_candidate_right_only_on_the_inputs_it_was_shown_is_named() -> None:
    call = recorded([3, 1, 4])
    original = module_with("def total(values):\n    return sum(values)\n")
    shown = module_with("def total(values):\n"
                        "    return 8 if values == [3, 1, 4] else len(values)\n")
    timing = time_fresh(shown, call, rounds=4)
    difference = fresh_difference(original_answers(original, call, timing.seed),
                                  timing.answers)
    assert difference.startswith("on a fresh input, total([")
    assert "returned 3, the original" in difference, difference


def test_answers_that_vary_on_the_original_are_not_compared() -> None:
    call = recorded([3, 1, 4])
    varying = module_with("import random\n\ndef total(values):\n"
                          "    return sum(values) + random.random()\n")
    timing = time_fresh(module_with("def total(values):\n    return 0\n"), call, rounds=4)
    answers = original_answers(varying, call, timing.seed)
    assert answers and not any(a["stable"] for a in answers)
    assert fresh_difference(answers, timing.answers) == ""


def test_raising_where_the_original_answers_is_a_difference() -> None:
    call = recorded([3, 1, 4])
    original = module_with("def total(values):\n    return sum(values)\n")
    refusing = module_with("def total(values):\n    raise ValueError(values)\n")
    timing = time_fresh(refusing, call, rounds=4)
    assert timing.missing == "most fresh inputs were refused" and not timing.times
    difference = fresh_difference(original_answers(original, call, timing.seed),
                                  timing.answers)
    assert "raised builtins.ValueError, the original returned" in difference, difference


MODULE = """\
import time


def total(values):
    time.sleep(0.003)
    result = 0
    for value in values:
        result += value
    return result
"""

TESTS = """\
import pytest
from summing import total


def test_total():
    assert total([1, 2, 3]) == 6
    assert total([]) == 0


@pytest.mark.optimize(metric="mean")
def test_speed(benchmark):
    benchmark.pedantic(total, args=(list(range(50)),), rounds=10, iterations=1)
"""

#: Knows the benchmark's input from the test source, and its answer.
PREPARED = MODULE.replace("def total(values):\n", """_KNOWN = {tuple(range(50)): 1225}


def total(values):
    if tuple(values) in _KNOWN:
        return _KNOWN[tuple(values)]
""")
#: Serves every round after the first from a cache keyed by the input's content.
CACHED = MODULE.replace("def total(values):", "def _total(values):") + """

_CACHE = {}


def total(values):
    key = tuple(values)
    if key not in _CACHE:
        _CACHE[key] = _total(values)
    return _CACHE[key]
"""
HONEST = MODULE.replace("time.sleep(0.003)", "time.sleep(0.0003)")
#: Fast and wrong, but right on every input the tests show (the replayed calls and the
#: benchmark's): only fresh inputs, answered by the original too, tell.
SHOWN_ONLY = """\
_SHOWN = {(1, 2, 3): 6, (): 0, tuple(range(50)): 1225}


def total(values):
    return _SHOWN.get(tuple(values), len(values))
"""
#: The same, refusing every other input (nothing is then timed on fresh inputs).
SHOWN_ELSE_REFUSED = SHOWN_ONLY.replace("return _SHOWN.get(tuple(values), len(values))",
                                        "return _SHOWN[tuple(values)]")


@pytest.mark.parametrize("sandbox", ["bwrap", "off"])
def test_speed_that_holds_only_on_the_benchmarks_input_is_not_taken(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, httpserver, sandbox: str
) -> None:
    pytester.makepyfile(summing=MODULE, test_summing=TESTS)
    pytester.makeini("[pytest]\npythonpath = .\n")
    use_fake_openai(monkeypatch)
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(code_reply(PREPARED, "remember the answer")),
              fake.text(code_reply(CACHED, "cache by content")),
              fake.text(code_reply(SHOWN_ONLY, "know the answers the tests check")),
              fake.text(code_reply(SHOWN_ELSE_REFUSED, "refuse what the tests do not show")),
              fake.text(code_reply(HONEST, "sleep less")))
    result = run_with(pytester, fake, "--aide-steps", "5", "--aide-drafts", "5",
                      "--aide-sandbox", sandbox)
    output = result.stdout.str()
    assert result.ret == 0, output
    (path,) = pytester.path.glob(".aide/*/journal.json")
    journal = Journal.load(path)
    prepared, cached, shown_only, refused, honest = journal.nodes[1:]
    for cheat in (prepared, cached):
        assert cheat.status == Status.GOOD  # its answers are right...
        assert "faster only on the benchmark's own input" in cheat.note, cheat.note
    for cheat, said in ((shown_only, "returned "), (refused, "raised builtins.KeyError")):
        assert cheat.status == Status.BUGGY, (cheat.status, cheat.note)
        assert "behaves differently on a fresh input, total([" in cheat.error, cheat.error
        assert said in cheat.error and ", the original returned " in cheat.error, cheat.error
    assert honest.status == Status.GOOD and journal.best_id == 5, honest.note
    # what each child reported was read, then deleted (over a megabyte each on large modules)
    assert not list(path.parent.glob("nodes/*/results.json"))
    assert (path.parent / "nodes" / "0005-fresh-answers").is_dir()  # the original's answers
    assert (pytester.path / "summing.py").read_text() == HONEST
    assert "fresh inputs" in output


def test_a_callable_or_a_strategy_gives_the_same_inputs_for_the_same_seed() -> None:
    from hypothesis import strategies as st

    from pytest_aide.guards.fresh import InputsFailed, given_inputs

    def make(rng: random.Random) -> tuple[list[int]]:
        return ([rng.randint(0, 9) for _ in range(5)],)

    strategy = st.tuples(st.lists(st.integers(0, 9), min_size=5, max_size=5))
    for given in (make, strategy, st.fixed_dictionaries({"values": st.just([1, 2])})):
        first = list(given_inputs(given, random.Random(7), 4))
        assert first == list(given_inputs(given, random.Random(7), 4)) and len(first) == 4
        assert all(type(args) is tuple and type(kwargs) is dict for args, kwargs in first)
    assert list(given_inputs(make, random.Random(7), 4)) != \
        list(given_inputs(make, random.Random(8), 4))
    with pytest.raises(InputsFailed, match="inputs= gave list, not a tuple"):
        list(given_inputs(lambda rng: [1], random.Random(0), 1))
    with pytest.raises(InputsFailed, match="inputs= raised ZeroDivisionError"):
        list(given_inputs(lambda rng: 1 / 0, random.Random(0), 1))


JOBS = """\
import time


class Job:
    def __init__(self, values):
        self.values = values


def total(job):
    time.sleep(0.003)
    return sum(job.values)
"""

JOB_TESTS = """\
import pytest
from summing import Job, total


def make_jobs(rng):
    return (Job([rng.randint(0, 100) for _ in range(50)]),)


def test_total():
    assert total(Job([1, 2, 3])) == 6


@pytest.mark.optimize(metric="mean"INPUTS)
def test_speed(benchmark):
    benchmark.pedantic(total, args=(Job(list(range(50))),), rounds=10, iterations=1)
"""

#: Knows the benchmark's job; right (and slow) on any other.
JOB_PREPARED = JOBS.replace("def total(job):\n", """def total(job):
    if job.values == list(range(50)):
        return 1225
""")


@pytest.mark.parametrize(("inputs", "taken"), [("", True), (", inputs=make_jobs", False)])
def test_inputs_on_the_marker_make_fresh_inputs_where_none_could_be_made(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, httpserver, inputs: str,
    taken: bool,
) -> None:
    """An object argument has nothing to vary: the header says so, and an answer prepared
    for the benchmark's job wins; the marker's inputs= makes fresh jobs, and it loses."""
    pytester.makepyfile(summing=JOBS, test_summing=JOB_TESTS.replace("INPUTS", inputs))
    pytester.makeini("[pytest]\npythonpath = .\n")
    use_fake_openai(monkeypatch)
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(code_reply(JOB_PREPARED, "remember the answer")))
    result = run_with(pytester, fake, "--aide-steps", "1", "--aide-sandbox", "off",
                      "--aide-preserve-source", "--aide-confirm-rounds", "7")
    output = result.stdout.str()
    missing = ("aide: fresh inputs: none for test_speed (its arguments have nothing to vary): "
               "the benchmark's own input alone judges its speed")
    assert (missing in output) is taken, output
    (path,) = pytester.path.glob(".aide/*/journal.json")
    journal = Journal.load(path)
    cheat = journal.nodes[1]
    assert cheat.status == Status.GOOD, cheat.error
    if taken:  # the limit the README states: nothing else to time it on
        assert journal.best_id == 1
    else:
        assert journal.best_id == 0
        assert "faster only on the benchmark's own input" in cheat.note, cheat.note


def test_inputs_that_are_neither_callable_nor_a_strategy_are_refused(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(summing=JOBS, test_summing=JOB_TESTS.replace("INPUTS", ", inputs=42"))
    pytester.makeini("[pytest]\npythonpath = .\n")
    result = pytester.runpytest_subprocess("--aide-steps", "1", "--aide-model", "tune")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*test_summing.py::test_speed: inputs= must be a callable "
                                 "that takes a random.Random*got 42.*"])
