"""Speed on inputs the candidate never saw: a speedup that exists only for the benchmark's
own input (an answer prepared for it, a cache keyed by its content) is not taken; an honest
one is."""

from __future__ import annotations

import random

import numpy as np
import pytest
from llm_fake import FakeProvider, code_reply, run_with, use_fake_openai

from pytest_aide.guards.fresh import Freshener
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
              fake.text(code_reply(HONEST, "sleep less")))
    result = run_with(pytester, fake, "--aide-steps", "3", "--aide-drafts", "3",
                      "--aide-sandbox", sandbox)
    output = result.stdout.str()
    assert result.ret == 0, output
    (path,) = pytester.path.glob(".aide/*/journal.json")
    journal = Journal.load(path)
    prepared, cached, honest = journal.nodes[1:]
    for cheat in (prepared, cached):
        assert cheat.status == Status.GOOD  # its answers are right...
        assert "faster only on the benchmark's own input" in cheat.note, cheat.note
    assert honest.status == Status.GOOD and journal.best_id == 3, honest.note
    assert (pytester.path / "summing.py").read_text() == HONEST
    assert "fresh inputs" in output
