"""Where the benchmarked call spends its time, for the prompts.

A model told only "make this faster" rewrites whatever it notices first; told that one
function takes 90% of the time, it works on that one (Codeflash shows its model line
profiles for the same reason). So the original's timed run, after its tests and outside any
timing, calls each benchmarked call once more under ``cProfile`` and reports the target's
functions with their share of the call's time: in their own code, and with what they call.
The parent keeps that with the baseline, and the draft and improve prompts show it.
"""

from __future__ import annotations

import base64
import cProfile
import pickle
import pstats
import types
from typing import Any

from pytest_aide.guards.replay import resolve
from pytest_aide.metrics import HotSpot

#: Functions shown per benchmarked call.
TOP = 8


def profile_call(module: types.ModuleType, call: dict[str, Any]) -> list[HotSpot]:
    """The target's functions that ``call`` (a recorded call: name and pickled arguments)
    ran, hottest in their own code first, at most ``TOP``; [] when it could not be made."""
    function = resolve(module, call["name"])
    path = getattr(module, "__file__", None)
    if function is None or path is None:
        return []
    try:
        args, kwargs = pickle.loads(base64.b64decode(call["args"]))
    except Exception:
        return []
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        function(*args, **kwargs)
    except Exception:
        return []
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    whole = sum(tt for _, _, tt, _, _ in entries.values())
    if whole <= 0:
        return []
    spots = [HotSpot(name, line, tt / whole, min(1.0, ct / whole), calls)
             for (filename, line, name), (_, calls, tt, ct, _) in entries.items()
             if filename == path]
    spots.sort(key=lambda spot: (-spot.own, -spot.total))
    return spots[:TOP]


def profiles(module: types.ModuleType | None, calls: dict[str, dict[str, Any]]
             ) -> dict[str, list[dict[str, Any]]]:
    """Each marked test's benchmarked call profiled once (``calls``: by marked test)."""
    if module is None:
        return {}
    return {nodeid: [spot.to_dict() for spot in profile_call(module, call)]
            for nodeid, call in calls.items()}
