"""Shared pieces of the tests' hostile candidates (test_clock, test_warm, test_adversaries)."""

from __future__ import annotations

import pytest

from pytest_aide.guards.baseline import Baseline
from pytest_aide.study import Objective, Study, Target

#: A module whose speed is its PAUSE: the tests' target for attacks on clocks and state.
STEADY_MODULE = """\
import time

PAUSE = 0.004


def work(n):
    total = 0
    for i in range(n):
        time.sleep(PAUSE)
        total += i
    return total
"""

#: Makes time.perf_counter run 8 times slow by swapping, through ctypes, the C function behind
#: the same function object: nothing in the child can tell, since every clock there agrees.
SLOW_CLOCK = """\
import ctypes, threading, time

def patch():
    real = time.monotonic
    start = real()

    class MethodDef(ctypes.Structure):
        _fields_ = [("name", ctypes.c_char_p), ("meth", ctypes.c_void_p),
                    ("flags", ctypes.c_int), ("doc", ctypes.c_char_p)]

    def slow(module, unused):
        return start + (real() - start) / 8

    callback = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_void_p)(slow)
    method = MethodDef(b"perf_counter", ctypes.cast(callback, ctypes.c_void_p).value, 4, None)
    KEEP.extend([callback, method])
    ctypes.c_void_p.from_address(id(time.perf_counter) + 16).value = ctypes.addressof(method)

# from a thread, and compiled under another file's name: no frame of the candidate is on
# the stack when ctypes reaches into memory, so the in-process audit hook cannot tell
worker = threading.Thread(target=patch)
worker.start()
worker.join()
"""


def steady_study(pytester: pytest.Pytester, module: str, tests: str) -> Study:
    """A pytester project of ``steady.py`` and ``test_steady.py`` (its ``test_correct`` and
    the timed ``test_speed``), and its study."""
    pytester.makepyfile(steady=module, test_steady=tests)
    pytester.makeini("[pytest]\npythonpath = .\n")
    return Study(
        target=Target("steady", pytester.path / "steady.py"),
        objectives=[Objective("test_steady.py::test_speed", "mean", False)],
        guard_nodeids=["test_steady.py::test_correct"],
        test_files=[pytester.path / "test_steady.py"],
    )


def baseline_of(evaluation) -> Baseline:
    """What the original's ``evaluation`` establishes, as the run keeps it: candidates
    evaluated after it are compared with its fingerprints and clock brackets."""
    return Baseline(state=evaluation.state, clock=evaluation.clock)
