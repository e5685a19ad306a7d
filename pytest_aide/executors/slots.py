"""Slots: the disjoint shares of the machine that evaluations run in at once.

Two evaluations timed on the same cores (or the same GPU) slow each other down, so a slot is
a set of CPU cores that no other slot has (the child is pinned to them with
``os.sched_setaffinity``) and, with ``--aide-gpus-per-worker K``, K GPUs of its own
(``CUDA_VISIBLE_DEVICES``). Hyperthread siblings share a core's caches and units: they are
kept in the same slot. The measuring place is every slot's cores at once, with the first
slot's GPUs: a timed measurement taken there runs as it would with ``--aide-workers 1``.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

from pytest_aide.evaluation.placement import Slot

__all__ = ["Slot", "SlotError", "machine_cpus", "machine_gpus", "measuring_slot", "plan_slots"]


class SlotError(ValueError):
    """The slots asked for do not fit the machine: the message names the option and the fix."""


def machine_cpus() -> list[int]:
    """The logical CPUs this process may run on."""
    return sorted(os.sched_getaffinity(0))


def machine_gpus() -> list[str]:
    """GPU ids as CUDA numbers them for this process: ``CUDA_VISIBLE_DEVICES`` when it is
    set, else one per ``/dev/nvidiaN`` device."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [g.strip() for g in visible.split(",") if g.strip()]
        return [] if ids[:1] == ["-1"] else ids
    devices = [d for d in glob.glob("/dev/nvidia*") if re.fullmatch(r"/dev/nvidia\d+", d)]
    return [str(i) for i in range(len(devices))]


def core_groups(cpus: list[int]) -> list[tuple[int, ...]]:
    """``cpus`` grouped by physical core (hyperthread siblings together), in order."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for cpu in cpus:
        siblings = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list")
        try:
            key = tuple(_parse_ranges(siblings.read_text()))
        except (OSError, ValueError):
            key = (cpu,)
        groups.setdefault(key, []).append(cpu)
    return [tuple(g) for g in groups.values()]


def plan_slots(
    workers: int | None,
    gpus_per_worker: int = 0,
    cpus: list[int] | None = None,
    gpus: list[str] | None = None,
) -> list[Slot]:
    """``workers`` disjoint slots (None: as many as the machine offers), or a SlotError."""
    cores = core_groups(machine_cpus() if cpus is None else cpus)
    gpus = machine_gpus() if gpus is None else gpus
    by_gpus = len(gpus) // gpus_per_worker if gpus_per_worker else None
    if workers is None:
        workers = len(cores) if by_gpus is None else min(len(cores), by_gpus)
        if workers < 1:
            raise SlotError(
                f"--aide-workers auto: no slot fits, since each needs {gpus_per_worker} GPU(s) "
                f"and {len(gpus)} are visible; lower --aide-gpus-per-worker"
            )
    if workers > len(cores):
        raise SlotError(
            f"--aide-workers {workers}: each slot needs CPU cores of its own and this machine "
            f"offers {len(cores)} core(s) here; pass --aide-workers {len(cores)} (or auto)"
        )
    if by_gpus is not None and workers > by_gpus:
        raise SlotError(
            f"--aide-workers {workers} with --aide-gpus-per-worker {gpus_per_worker} needs "
            f"{workers * gpus_per_worker} GPUs and {len(gpus)} are visible; pass "
            f"--aide-workers {by_gpus} or fewer GPUs per worker"
        )
    shares = _split(cores, workers)
    return [
        Slot(index, tuple(cpu for group in share for cpu in group),
             tuple(gpus[index * gpus_per_worker:(index + 1) * gpus_per_worker]))
        for index, share in enumerate(shares)
    ]


def measuring_slot(slots: list[Slot]) -> Slot:
    """Where timed metrics are measured alone: all the slots' cores, the first slot's GPUs."""
    cpus = tuple(sorted({cpu for slot in slots for cpu in slot.cpus}))
    return Slot(0, cpus, slots[0].gpus if slots else ())


def _split(cores: list[tuple[int, ...]], parts: int) -> list[list[tuple[int, ...]]]:
    """``cores`` in ``parts`` contiguous runs whose sizes differ by one at most."""
    size, extra = divmod(len(cores), parts)
    runs, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        runs.append(cores[start:end])
        start = end
    return runs


def _parse_ranges(text: str) -> list[int]:
    """``0-2,5`` -> ``[0, 1, 2, 5]`` (the kernel's CPU list format)."""
    found: list[int] = []
    for part in text.strip().split(","):
        if "-" in part:
            low, high = part.split("-")
            found.extend(range(int(low), int(high) + 1))
        elif part:
            found.append(int(part))
    return found
