"""Measurement integrity: the static scan of candidates, and the identity checks."""

from __future__ import annotations

import textwrap
import time

import pytest

from pytest_aide.guards.integrity import MeasuringIntegrity, new_findings, scan_source

FLAGGED = [
    ("import time\ntime.perf_counter = lambda: 0.0", "line 2: assigns time.perf_counter"),
    ("import time as t\nt.time = None", "line 2: assigns time.time"),
    ("from timeit import default_timer\n", None),
    ("import timeit\nsetattr(timeit, 'default_timer', f)", "line 2: calls setattr on timeit"),
    ("import builtins\nbuiltins.abs = lambda x: 0", "line 2: assigns builtins.abs"),
    ("__builtins__['abs'] = f", "line 1: assigns an item of builtins"),
    ("import pytest_benchmark.stats", "line 1: imports pytest_benchmark.stats (the test"),
    ("from _pytest import runner", "line 1: imports _pytest (the test framework)"),
    ("import sys\nsys.modules['time'] = fake", "line 2: assigns an entry of sys.modules"),
    ("import sys\nb = sys.modules['pytest_benchmark']", "line 2: reads sys.modules"),
    ("import sys\nf = sys._getframe(1)", "line 2: calls sys._getframe"),
    ("from inspect import currentframe\ncurrentframe()", "line 2: calls inspect.currentframe"),
    ("import inspect\ninspect.stack()", "line 2: calls inspect.stack"),
    ("import gc\ngc.get_referrers(x)", "line 2: calls gc.get_referrers"),
    ("def f(frame):\n    return frame.f_back", "line 2: reads .f_back"),
    ("m = __import__('ti' + 'me')", "line 1: imports a module whose name is computed"),
    ("import sys\nsys.settrace(f)", "line 2: calls sys.settrace"),
]


@pytest.mark.parametrize(("code", "finding"), FLAGGED)
def test_scan_flags_reaching_into_measuring_code(code: str, finding: str | None) -> None:
    found = scan_source(code)
    if finding is None:
        assert found == []
    else:
        assert any(f.startswith(finding) for f in found), found


def test_scan_leaves_ordinary_code_alone() -> None:
    code = textwrap.dedent(
        """
        import math
        import random
        import sys
        import time
        from timeit import default_timer as timer

        started = time.perf_counter()
        rng = random.Random(0)

        class Clock:
            time = 0.0

        def work(data, clock=Clock()):
            clock.time = time.perf_counter() - started
            self_module = sys.modules[__name__]
            return math.fsum(data), timer(), self_module
        """
    )
    assert scan_source(code) == []


def test_only_what_the_original_does_not_do_is_new() -> None:
    original = "import sys\nLEVEL = sys._getframe(0)\n"
    candidate = "import sys\nimport gc\nLEVEL = sys._getframe(0)\ngc.get_objects()\n"
    assert new_findings(candidate, original) == [
        "line 4: calls gc.get_objects (searches the heap for other code's objects)"
    ]


def test_a_replaced_clock_is_found_and_a_restored_one_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    integrity = MeasuringIntegrity()
    integrity.arm()
    integrity.check("before")
    assert integrity.tampered == []
    with monkeypatch.context() as patch:
        patch.setattr(time, "perf_counter", lambda: 0.0)
        integrity.check("after test_x")
    assert integrity.tampered == ["replaced time.perf_counter (found after test_x)"]
    integrity.check("later")
    assert len(integrity.tampered) == 1


@pytest.mark.parametrize(
    "added, finding",
    [
        ("import ctypes\n", "reaches native memory (imports ctypes)"),
        ("from cffi import FFI\n", "reaches native memory (imports cffi)"),
        ("import os\nWHO = os.environ.get('PYTEST_CURRENT_TEST')\n",
         "reads which test is running (PYTEST_CURRENT_TEST)"),
        ("import os\nSEEN = [k for k in os.environ if k.startswith('PYTEST_AIDE')]\n",
         "reads the optimizer's variables (PYTEST_AIDE_*)"),
        ("MEMORY = open('/proc/self/mem', 'rb')\n",
         "reads /proc entries (its own memory or other processes)"),
    ],
)
def test_a_candidate_that_adds_native_reach_or_looks_for_the_optimizer_is_flagged(
    added: str, finding: str
) -> None:
    original = "def f(x):\n    return x\n"
    assert any(finding in f for f in new_findings(added + original, original))
    # what the original module already does is not held against a candidate
    assert new_findings(added + original, added + original) == []
