"""GPU work counted in the time it takes: the benchmark's timer waits for the device once
CUDA is in use. This machine has no GPU: what is checked here is that the timer is the one
the benchmark and the fresh inputs use, that it leaves CPU code as it was (no CUDA context
created), and that a candidate cannot swap torch's synchronize. The GPU case itself is
``benchmarks/bench_gpu_timing.py``, run where a GPU is lent."""

from __future__ import annotations

import time

import pytest

from pytest_aide.guards.device_timing import synchronize_device, synchronizing
from pytest_aide.guards.integrity import MeasuringIntegrity

torch = pytest.importorskip("torch")


def test_the_timer_reads_its_clock_and_creates_no_cuda_context() -> None:
    timer = synchronizing(time.perf_counter)
    first, second = timer(), timer()
    assert 0 <= second - first < 0.1
    assert timer.__wrapped__ is time.perf_counter  # type: ignore[attr-defined]
    assert torch.ones(1000).sum().item() == 1000  # CPU work: nothing to wait for
    assert synchronize_device() is False
    assert not torch.cuda.is_initialized()


def test_a_candidate_replacing_torchs_synchronize_is_flagged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    integrity = MeasuringIntegrity()
    integrity.arm()  # torch was loaded before it, as a warm interpreter preloads it
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    integrity.check("after test_kernel")
    assert integrity.tampered == ["replaced torch.cuda.synchronize (found after test_kernel)"]


BENCHMARKED = """\
import torch
import pytest

from kernel import add


@pytest.mark.optimize(metric="mean")
def test_speed(benchmark):
    x = torch.arange(64, dtype=torch.float32)
    out = benchmark(add, x, x)
    assert torch.equal(out, 2 * x)
    with open(TIMERS, "a") as seen:
        print(benchmark._timer.__qualname__, torch.cuda.is_initialized(), file=seen)
"""


def test_an_evaluations_benchmark_is_timed_by_the_synchronizing_timer(
    pytester: pytest.Pytester,
) -> None:
    timers = pytester.path / "timers.txt"
    pytester.makepyfile(kernel="SCALE = 1\n\n\ndef add(a, b):\n    return (a + b) * SCALE\n",
                        test_kernel=f"TIMERS = {str(timers)!r}\n" + BENCHMARKED)
    result = pytester.runpytest_subprocess("--aide-steps", "1", "--aide-model", "tune",
                                           "--aide-sandbox", "off")
    result.stdout.fnmatch_lines(["step 0/1 baseline*"])
    seen = timers.read_text().splitlines()
    # the evaluations' benchmark waits for the device (none here: no CUDA context made);
    # the plain run of the user's own session keeps pytest-benchmark's timer
    assert "synchronizing(perf_counter) False" in seen, seen
    assert set(seen) <= {"synchronizing(perf_counter) False", "perf_counter False"}, seen
