"""Where one child runs on this machine: a slot's CPU cores and GPUs.

The executors plan the slots (executors/slots.py); the evaluator only places a child in the
one it is given, so that evaluations running at once do not share cores or GPUs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Slot:
    """CPU cores (logical CPU numbers) and GPU ids that one evaluation may use."""

    index: int
    cpus: tuple[int, ...]
    gpus: tuple[str, ...] = ()

    def environment(self) -> dict[str, str]:
        """Variables the child gets: only the GPUs of this slot are visible (when it has any;
        a slot without GPUs leaves the user's ``CUDA_VISIBLE_DEVICES`` as it is)."""
        return {"CUDA_VISIBLE_DEVICES": ",".join(self.gpus)} if self.gpus else {}

    def describe(self) -> str:
        gpus = f", GPU {','.join(self.gpus)}" if self.gpus else ""
        return f"slot {self.index}: CPU {_ranges(self.cpus)}{gpus}"


@contextlib.contextmanager
def placed(slot: Slot | None) -> Iterator[None]:
    """Within the block, the calling thread runs on the slot's cores, so the processes it
    starts are born pinned (affinity is inherited at fork, and on Linux it belongs to the
    thread): no window in which the child runs, or starts threads, elsewhere."""
    if slot is None or not slot.cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, slot.cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _ranges(cpus: tuple[int, ...]) -> str:
    parts, run = [], list(cpus[:1])
    for cpu in cpus[1:]:
        if cpu == run[-1] + 1:
            run.append(cpu)
            continue
        parts.append(run)
        run = [cpu]
    if run:
        parts.append(run)
    return ",".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in parts)
