"""Shared helpers for pytest-aide's own tests (pytester projects)."""

from __future__ import annotations

import pytest

SLOW_MODULE = '''\
import time

CHUNK = 2  # aide: choices 1 2 4 8 16


def work(n):
    total = 0
    for start in range(0, n, CHUNK):
        time.sleep(0.0004)
        total += sum(range(start, min(start + CHUNK, n)))
    return total
'''

SLOW_TESTS = '''\
import pytest
from slow import work


@pytest.mark.parametrize("n", [0, 1, 7, 64, 100])
def test_correct(n):
    assert work(n) == sum(range(n))


@pytest.mark.optimize(metric="mean")
def test_speed(benchmark):
    benchmark.pedantic(work, args=(48,), rounds=12, iterations=1)
'''


@pytest.fixture
def slow_project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A flat-layout project: slow.py whose CHUNK constant decides its speed."""
    pytester.makepyfile(slow=SLOW_MODULE)
    pytester.makepyfile(test_slow=SLOW_TESTS)
    pytester.makeini("[pytest]\npythonpath = .\n")
    return pytester
