"""Speed on inputs the candidate never saw.

The benchmark's input is in the test source the model reads: a candidate can recognise it and
return an answer computed at import time, or keep a cache keyed by its content that serves
every round after the first. So after its tests, a timed evaluation also calls the benchmarked
function on fresh inputs made from the recorded one (replay.py recorded it in the probe): the
same types, lengths, shapes, dtypes and value ranges, new values, drawn from a seed made in
the child at that moment (after the candidate was imported and ran its tests, so it cannot
have prepared for them); each called once, after one that warms up (code compiled per shape,
as Triton, ``torch.compile`` and numba do, must still win). Equal values stay equal (a
bijection of values), so a cache that serves repeats within one call still serves them.

The child reports each call's time; the parent (judge.fresh_holds) takes a benchmark speedup
only when it holds on fresh inputs too.
"""

from __future__ import annotations

import base64
import os
import pickle
import random
import sys
import time
import types
from dataclasses import dataclass, field
from typing import Any

from pytest_aide.guards.replay import resolve

#: Fresh calls timed per evaluation (one more warms up first).
ROUNDS = 12


@dataclass
class Freshener:
    """Maps each value of the recorded arguments to a new one of the same kind, the same
    value always to the same new value."""

    rng: random.Random
    #: The range of each kind of number seen in the arguments.
    ints: tuple[int, int] = (0, 0)
    floats: tuple[float, float] = (0.0, 0.0)
    alphabet: str = ""
    mapped: dict[tuple[type, Any], Any] = field(default_factory=dict)
    changed: bool = False

    @classmethod
    def for_arguments(cls, value: Any, rng: random.Random) -> Freshener:
        ints: list[int] = []
        floats: list[float] = []
        chars: set[str] = set()
        _survey(value, ints, floats, chars, 0)
        return cls(rng, (min(ints, default=0), max(ints, default=0)),
                   (min(floats, default=0.0), max(floats, default=0.0)),
                   "".join(sorted(chars)))

    def fresh_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]
                   ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Fresh arguments for one call: the keyword names stay, their values change."""
        return self.fresh(args), {name: self.fresh(v) for name, v in kwargs.items()}

    def fresh(self, value: Any, depth: int = 0) -> Any:
        kind = type(value)
        if depth > 8:
            return value
        if kind is int or kind is float or kind is str or kind is bytes:
            return self._scalar(kind, value)
        if kind is list or kind is tuple:
            return kind(self.fresh(v, depth + 1) for v in value)
        if kind is dict:
            return {self.fresh(k, depth + 1): self.fresh(v, depth + 1) for k, v in value.items()}
        return self._array(value, depth)

    def _scalar(self, kind: type, value: Any) -> Any:
        key = (kind, value)
        if key not in self.mapped:
            taken = set(self.mapped.values())
            for _ in range(50):  # a bijection: a new value no other value was mapped to
                new = self._draw(kind, value)
                if new not in taken:
                    break
            self.mapped[key] = new
            self.changed = self.changed or new != value
        return self.mapped[key]

    def _draw(self, kind: type, value: Any) -> Any:
        if kind is int:
            low, high = self.ints
            if low == high:  # one number, a size perhaps: keep it near (within a tenth)
                low, high = low - abs(low) // 10 - 1, high + abs(high) // 10 + 1
            return self.rng.randint(low, high)
        if kind is float:
            low, high = self.floats
            return self.rng.uniform(low, high if high > low else low + 1.0)
        letters = self.alphabet or "abcdefghijklmnopqrstuvwxyz"
        text = "".join(self.rng.choice(letters) for _ in range(len(value)))
        return text if kind is str else text.encode("utf-8", "replace")[: len(value)]

    def _array(self, value: Any, depth: int) -> Any:
        numpy = sys.modules.get("numpy")
        if numpy is not None and type(value) is numpy.ndarray and value.dtype.kind in "fiub":
            self.changed = True
            generator = numpy.random.default_rng(self.rng.getrandbits(64))
            if value.dtype.kind == "f":
                low, high = (float(value.min()), float(value.max())) if value.size else (0, 1)
                return generator.uniform(low, high if high > low else low + 1.0,
                                         value.shape).astype(value.dtype)
            if value.dtype.kind == "b":
                return generator.random(value.shape) < 0.5
            low, high = (int(value.min()), int(value.max())) if value.size else (0, 1)
            return generator.integers(low, high + 1, value.shape).astype(value.dtype)
        torch = sys.modules.get("torch")
        if torch is not None and type(value) is torch.Tensor and value.is_floating_point():
            self.changed = True
            generator = torch.Generator(device="cpu").manual_seed(self.rng.getrandbits(63))
            low, high = (float(value.min()), float(value.max())) if value.numel() else (0, 1)
            fresh = torch.rand(value.shape, generator=generator, dtype=torch.float32)
            fresh = low + (high - low if high > low else 1.0) * fresh
            return fresh.to(dtype=value.dtype, device=value.device)
        return value  # another kind of object: kept as it is


def _survey(value: Any, ints: list[int], floats: list[float], chars: set[str],
            depth: int) -> None:
    kind = type(value)
    if depth > 8:
        return
    if kind is int:
        ints.append(value)
    elif kind is float:
        floats.append(value)
    elif kind is str:
        chars.update(value)
    elif kind in (list, tuple):
        for item in value:
            _survey(item, ints, floats, chars, depth + 1)
    elif kind is dict:
        for key, item in value.items():
            _survey(key, ints, floats, chars, depth + 1)
            _survey(item, ints, floats, chars, depth + 1)


@dataclass
class FreshTiming:
    """What the child reports: each fresh call's seconds (warm-up left out)."""

    times: list[float] = field(default_factory=list)
    #: Why no fresh input could be made ("" when there are times).
    missing: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"times": self.times, "missing": self.missing}


def time_fresh(module: types.ModuleType, call: dict[str, Any],
               rounds: int = ROUNDS) -> FreshTiming:
    """Call the benchmarked callable on ``rounds`` fresh inputs made from ``call``'s recorded
    arguments, each once, after one that warms up; a seed drawn now, in this process."""
    function = resolve(module, call["name"])
    if function is None:
        return FreshTiming(missing=f"the candidate has no {call['name']}")
    rng = random.Random(int.from_bytes(os.urandom(8), "little"))
    recorded = base64.b64decode(call["args"])
    times: list[float] = []
    for index in range(rounds + 1):
        args, kwargs = pickle.loads(recorded)
        freshener = Freshener.for_arguments((args, kwargs), rng)
        args, kwargs = freshener.fresh_call(args, kwargs)
        if not freshener.changed:
            return FreshTiming(missing="its arguments have nothing to vary")
        began = time.perf_counter()
        try:
            function(*args, **kwargs)
        except Exception:  # an input the original may refuse too: left out
            continue
        if index:
            times.append(time.perf_counter() - began)
    if len(times) < rounds // 2:
        return FreshTiming(missing="most fresh inputs were refused")
    return FreshTiming(times)
