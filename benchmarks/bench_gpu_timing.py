"""Is GPU work counted in the time it takes? Side by side, on a CUDA device:

(a) a call that launches a large matmul and returns at once (its work still queued);
(b) a call that launches the same matmul on a side stream and returns;
(c) the same matmul followed by ``torch.cuda.synchronize()`` (the honest time),

each timed by a plain ``time.perf_counter`` around the call, as pytest-benchmark does by
default, and by the evaluations' timer (``guards/device_timing.synchronizing``). With the
plain clock (a) and (b) look far faster than (c); with the evaluations' timer all three
should agree (ratios near 1.0).

Run where a GPU is lent: ``python benchmarks/bench_gpu_timing.py``. Without CUDA it says so
and exits.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

ROUNDS = 30


def main() -> int:
    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing to measure")
        return 0
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return 0
    from pytest_aide.guards.device_timing import synchronizing

    size = 4096
    a = torch.randn(size, size, device="cuda")
    b = torch.randn(size, size, device="cuda")
    side = torch.cuda.Stream()

    def queued() -> None:
        torch.matmul(a, b)

    def side_stream() -> None:
        with torch.cuda.stream(side):
            torch.matmul(a, b)

    def honest() -> None:
        torch.matmul(a, b)
        torch.cuda.synchronize()

    def timed(call: Callable[[], None], clock: Callable[[], float]) -> float:
        times = []
        for _ in range(ROUNDS):
            torch.cuda.synchronize()  # no earlier work counts
            start = clock()
            call()
            times.append(clock() - start)
        torch.cuda.synchronize()
        return statistics.median(times)

    for call in (queued, side_stream, honest):  # warm up (cuBLAS handles, the side stream)
        call()
    torch.cuda.synchronize()
    plain, ours = time.perf_counter, synchronizing(time.perf_counter)
    reference = timed(honest, plain)
    print(f"device: {torch.cuda.get_device_name()}; {size}x{size} float32 matmul, "
          f"median of {ROUNDS} rounds; honest time {reference * 1e3:.3f} ms")
    print(f"{'call':<34} {'plain clock / honest':>22} {'evaluation timer / honest':>27}")
    for label, call in (("(a) returns with its work queued", queued),
                        ("(b) launches on a side stream", side_stream),
                        ("(c) synchronizes itself", honest)):
        print(f"{label:<34} {timed(call, plain) / reference:>21.3f}x "
              f"{timed(call, ours) / reference:>26.3f}x")
    print("goal: the evaluation timer's column near 1.0x for all three")
    return 0


if __name__ == "__main__":
    sys.exit(main())
