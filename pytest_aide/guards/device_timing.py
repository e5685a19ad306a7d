"""GPU work counted in the time it takes.

pytest-benchmark reads a wall clock around the benchmarked call. A CUDA kernel launch
returns before the kernel has run, so a call that leaves its work queued on the GPU (or
launches it on a side stream) looks as fast as the launch. In the evaluation child the
benchmark's timer is therefore wrapped (``synchronizing``): each reading first waits for all
work on the device, every stream of it, then reads the clock. A round's start reading thus
excludes what came before it, its end reading includes everything the call launched.

Why a device-wide synchronize and the wall clock, not CUDA events: an event is recorded on
one stream and misses work on another; after a device-wide synchronize the wall clock
covers every stream, and the launch overhead it also counts is a real cost to the user.

Nothing is done until the process has a CUDA context (``torch.cuda.is_initialized()``),
so CPU code is timed as before and never creates one. The synchronize function is taken
from torch when the timer first needs it, by its C entry point, and ``integrity.CLOCKS``
lists both names, so a candidate that replaces them after the worker armed is flagged.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

_synchronize: Callable[[], None] | None = None


def synchronizing(clock: Callable[[], float]) -> Callable[[], float]:
    """``clock``, read after a device-wide synchronize once CUDA is in use."""

    def timer() -> float:
        synchronize_device()
        return clock()

    timer.__name__ = getattr(clock, "__name__", "clock")
    timer.__qualname__ = f"synchronizing({timer.__name__})"
    timer.__module__ = __name__
    timer.__wrapped__ = clock  # type: ignore[attr-defined]
    return timer


def synchronize_device() -> bool:
    """Wait for all work on the current CUDA device, when this process has a CUDA context;
    whether it did."""
    global _synchronize
    torch = sys.modules.get("torch")
    if torch is None or not _cuda_initialized(torch):
        return False
    if _synchronize is None:
        _synchronize = getattr(getattr(torch, "_C", None), "_cuda_synchronize", None) \
            or torch.cuda.synchronize
    _synchronize()
    return True


def _cuda_initialized(torch: Any) -> bool:
    cuda = getattr(torch, "cuda", None)
    try:
        return bool(cuda is not None and cuda.is_initialized())
    except Exception:  # a torch build without CUDA support
        return False


def wrap_benchmark_timer(config: Any) -> None:
    """Make pytest-benchmark's session timer (``--benchmark-timer``, default
    ``time.perf_counter``) a synchronizing one; each benchmark fixture takes it from there."""
    session = getattr(config, "_benchmarksession", None)
    options = getattr(session, "options", None)
    wrapper = options.get("timer") if isinstance(options, dict) else None
    target = getattr(wrapper, "target", None)
    if target is not None and getattr(target, "__module__", "") != __name__:
        wrapper.target = synchronizing(target)
