"""Shared helpers for pytest-aide's own tests (pytester projects)."""

from __future__ import annotations

import os

import numpy  # noqa: F401  (see below)
import pytest
from google.genai import types  # noqa: F401  (see below)

# pytester restores sys.modules after each test; numpy's C extension cannot be loaded twice in
# one process, so it must be imported before any pytester test first imports it (noise.py
# imports it lazily while judging candidates). The same holds for pydantic, which keeps the
# classes of its first import: the Ray tests' cluster, started inside a pytester test, imports
# parts of it, and google-genai's models built on a fresh import later fail ("'FieldInfo'
# object is not a mapping"), so google-genai and its pydantic models are loaded first.

#: Whether the suite runs in CI, where a skip is a failure (the hook below). ``CI`` itself is
#: taken out of the environment: the suite's pytest runs are a user's runs, not CI runs (in
#: CI, pytest-aide keeps the target as it is unless told otherwise).
IN_CI = bool(os.environ.pop("CI", ""))

SLOW_MODULE = '''\
import time

CHUNK = 2  # aide: choices 1 2 3 4 6 8 12 16 24 32


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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    """In CI (``$CI`` set) a skipped test fails: every skip here is for something missing or
    unusable (bubblewrap, Chromium, torch, Triton, scikit-learn, scipy), which CI installs, so
    a skip there would hide a test that did not run. Elsewhere (tox's light environments, a
    laptop without bwrap) skips stay skips."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {reason}"
