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
only when it holds on fresh inputs too. The child also reports the seed and its answers to the
first inputs: a candidate about to become the best is right on them only if the original,
asked in a run of its own afterwards (``original_answers``, the same inputs from the same
seed), answers them alike (``fresh_difference``). That catches code right only on the inputs
the tests show (the replayed calls and the benchmark's), fast and wrong on any other.
"""

from __future__ import annotations

import base64
import math
import os
import pickle
import random
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pytest_aide.guards.canonical import Form, Tolerance, compare, form
from pytest_aide.guards.device_timing import synchronizing
from pytest_aide.guards.replay import detail_of, resolve, said, shown_arguments, type_name

#: The clock fresh calls are timed with (GPU work included: device_timing.py),
#: taken at import, before any candidate runs.
_TIMER = synchronizing(time.perf_counter)
#: Fresh calls timed per evaluation at most (one more warms up first), and at least, when
#: they take longer than the worker's budget for them (``FRESH_SHARE`` of the test's time).
ROUNDS = 12
MIN_TIMED = 3
FRESH_SHARE = 0.1
#: The only int of a call's arguments is kept below this (see ``_lone_small_number``).
SMALL_SIZE = 100
#: Fresh calls (the warm-up first) whose answers a candidate reports; when it is about to
#: become the best, the original answers the same inputs and the parent compares them.
ANSWERED = 4


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
    #: The new values given so far (``mapped``'s values, kept as a set: a long list of
    #: distinct numbers would otherwise cost a pass over them per value).
    taken: set[Any] = field(default_factory=set)
    #: When the arguments' distinct ints fill a good part of their range (``list(range(n))``),
    #: the range shuffled: new ints are drawn from it without replacement (drawing and
    #: retrying would cost a pass of retries per value near the end).
    int_pool: list[int] = field(default_factory=list)
    changed: bool = False

    @classmethod
    def for_arguments(cls, value: Any, rng: random.Random) -> Freshener:
        ints: list[int] = []
        floats: list[float] = []
        chars: set[str] = set()
        _survey(value, ints, floats, chars, 0)
        low, high = min(ints, default=0), max(ints, default=0)
        distinct = len(set(ints))
        dense = distinct > 1 and high - low < min(4 * distinct, 1_000_000)
        return cls(rng, (low, high), (min(floats, default=0.0), max(floats, default=0.0)),
                   "".join(sorted(chars)),
                   int_pool=rng.sample(range(low, high + 1), high - low + 1) if dense else [])

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
            new = value if self._lone_small_number(kind, value) else self._new(kind, value)
            self.mapped[key] = new
            self.taken.add(new)
            self.changed = self.changed or new != value
        return self.mapped[key]

    def _lone_small_number(self, kind: type, value: Any) -> bool:
        """The only int of the arguments, and small: a size most likely, which no other value
        could replace without changing the work by a tenth or more (two processes would
        then time different work); kept as it is."""
        return kind is int and self.ints[0] == self.ints[1] and abs(value) < SMALL_SIZE

    def _new(self, kind: type, value: Any) -> Any:
        """A bijection: a value other than ``value`` that no other value was mapped to (after
        50 tries, what the last one gave)."""
        if kind is int and self.int_pool:
            return self._from_pool(value)
        for _ in range(50):
            new = self._draw(kind, value)
            if new not in self.taken and new != value:
                break
        return new

    def _from_pool(self, value: int) -> int:
        new = self.int_pool.pop()
        if new == value and self.int_pool:  # never the value itself: swapped with the next
            new, self.int_pool[-1] = self.int_pool[-1], new
        return new

    def _draw(self, kind: type, value: Any) -> Any:
        if kind is int:
            low, high = self.ints
            if low == high:  # one number, a size perhaps: within a hundredth of it
                spread = max(1, abs(value) // 100)
                low, high = value - spread, value + spread
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
    """What the child reports: each fresh call's seconds (warm-up left out), the seed the
    inputs were drawn from, and the answers to the first ``ANSWERED`` of them."""

    times: list[float] = field(default_factory=list)
    #: Why no fresh input could be made ("" when there are times).
    missing: str = ""
    seed: int | None = None
    #: ``[form of the result (or ["raised", name]), form of the arguments after]`` per call.
    answers: list[list[Form]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"times": self.times, "missing": self.missing, "seed": self.seed,
                "answers": self.answers}


@dataclass(frozen=True)
class FreshAnswers:
    """What the parent keeps of a candidate's fresh inputs: their seed (the original can
    draw the same ones) and the candidate's answers to the first of them."""

    seed: int
    answers: list[list[Form]]


def fresh_inputs(call: dict[str, Any], seed: int, count: int, given: Any = None
                 ) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """``count`` fresh inputs made from ``call``'s recorded arguments, or by ``given`` (the
    marker's ``inputs=``), the same ones for the same seed (the original's answers to them
    are made in another process, later)."""
    rng = random.Random(seed)
    if given is not None:
        yield from given_inputs(given, rng, count)
        return
    recorded = base64.b64decode(call["args"])
    for _ in range(count):
        args, kwargs = pickle.loads(recorded)
        freshener = Freshener.for_arguments((args, kwargs), rng)
        args, kwargs = freshener.fresh_call(args, kwargs)
        if not freshener.changed:
            return
        yield args, kwargs


class InputsFailed(Exception):
    """The marker's ``inputs=`` raised, or gave something that is not a call's arguments."""


def given_inputs(given: Any, rng: random.Random, count: int
                 ) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """``count`` calls' arguments from the marker's ``inputs=``: a Hypothesis strategy (drawn
    from a seed taken from ``rng``) or a callable given ``rng``, each value a tuple of
    positional arguments or a dict of keyword arguments."""
    drawn = _drawn(given, rng.getrandbits(64), count) if is_strategy(given) else None
    for index in range(count):
        try:
            value = drawn[index] if drawn is not None else given(rng)
        except Exception as exc:
            raise InputsFailed(f"inputs= raised {type(exc).__name__}: {exc}") from exc
        if type(value) is tuple:
            yield value, {}
        elif type(value) is dict and all(type(k) is str for k in value):
            yield (), value
        else:
            raise InputsFailed(f"inputs= gave {type(value).__name__}, not a tuple of "
                               "positional arguments or a dict of keyword arguments")


def is_strategy(value: Any) -> bool:
    """A Hypothesis strategy (Hypothesis is loaded only if the test file loaded it)."""
    strategies = sys.modules.get("hypothesis.strategies")
    return strategies is not None and isinstance(value, strategies.SearchStrategy)


def _drawn(strategy: Any, seed: int, count: int) -> list[Any]:
    """``count`` examples of ``strategy``, the same for the same seed: a Hypothesis test run
    with its seed fixed, generating only (no database, no shrinking)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed

    drawn: list[Any] = []

    @with_seed(seed)
    @settings(max_examples=count, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    try:
        collect()
    except Exception as exc:
        raise InputsFailed(f"inputs= could not be drawn: {type(exc).__name__}: {exc}") from exc
    if not drawn:
        raise InputsFailed("inputs= gave no example")
    return [drawn[i % len(drawn)] for i in range(count)]


def time_fresh(module: types.ModuleType, call: dict[str, Any], rounds: int = ROUNDS,
               given: Any = None, budget: float = math.inf) -> FreshTiming:
    """Call the benchmarked callable on up to ``rounds`` fresh inputs made from ``call``'s
    recorded arguments (or by the marker's ``inputs=``, ``given``), each once, after one that
    warms up; a seed drawn now, in this process. Calls stop once they took ``budget``
    seconds in all, after at least ``MIN_TIMED`` timed ones (a slow call is timed a few
    times, a fast one the full count). The first ``ANSWERED`` answers are reduced to forms
    after the clock stopped."""
    function = resolve(module, call["name"])
    if function is None:
        return FreshTiming(missing=f"the candidate has no {call['name']}")
    seed = int.from_bytes(os.urandom(8), "little")
    timing = FreshTiming(seed=seed)
    began, made = _TIMER(), 0
    try:  # made one at a time, as they are called (large tensors are not all held at once)
        for index, (args, kwargs) in enumerate(fresh_inputs(call, seed, rounds + 1, given)):
            _time_one(function, args, kwargs, index, timing)
            made = index
            if index >= MIN_TIMED and _TIMER() - began >= budget:
                break
    except InputsFailed as exc:
        return FreshTiming(missing=str(exc))
    if not timing.answers:
        return FreshTiming(missing="its arguments have nothing to vary")
    if len(timing.times) < max(1, made // 2):
        timing.missing = "most fresh inputs were refused"
    return timing


def _time_one(function: Any, args: tuple[Any, ...], kwargs: dict[str, Any], index: int,
              timing: FreshTiming) -> None:
    """One fresh call, timed unless it is the warm-up (index 0) or raised; its answer kept
    among the first ``ANSWERED``."""
    began = _TIMER()
    try:
        result: Any = function(*args, **kwargs)
    except Exception as exc:  # an input the original may refuse too: not timed
        result = ["raised", type_name(type(exc))]
    else:
        if index:
            timing.times.append(_TIMER() - began)
        result = form(result)
    if index < ANSWERED:
        timing.answers.append([result, form([list(args), kwargs])])


def original_answers(module: types.ModuleType, call: dict[str, Any], seed: int,
                     given: Any = None) -> list[dict[str, Any]]:
    """The original's answers to the first ``ANSWERED`` fresh inputs drawn from ``seed``,
    each given twice (an answer that differs is not compared: time, randomness)."""
    function = resolve(module, call["name"])
    if function is None:
        return []
    try:
        inputs = list(fresh_inputs(call, seed, ANSWERED, given))
    except InputsFailed:
        return []
    answers = []
    for args, kwargs in inputs:
        shown = shown_arguments(args, kwargs)
        try:
            blob = pickle.dumps((args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # the same input cannot be given twice: not compared
            answers.append({"shown": shown, "stable": False})
            continue
        first, again = (_answer_of(function, *pickle.loads(blob)) for _ in range(2))
        answers.append({"shown": f"{call['name'].split('.')[-1]}({shown})",
                        "result": first[0], "after": first[1],
                        "stable": not compare(first[0], again[0])
                        and not compare(first[1], again[1])})
    return answers


def _answer_of(function: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Form]:
    try:
        result = form(function(*args, **kwargs))
    except Exception as exc:
        result = ["raised", type_name(type(exc))]
    return [result, form([list(args), kwargs])]


# -- the parent's side -------------------------------------------------------------------


def fresh_difference(original: list[dict[str, Any]], candidate: list[list[Form]],
                     tolerance: Tolerance | None = None) -> str:
    """How the candidate's answers to fresh inputs differ from the original's to the same
    inputs (the first difference, as a sentence), "" when they agree."""
    for index, expected in enumerate(original):
        if not expected.get("stable"):
            continue
        got = candidate[index] if index < len(candidate) else []
        if len(got) != 2:
            return f"on a fresh input, {expected['shown']} gave no answer"
        difference = compare(expected["result"], got[0], tolerance)
        if difference:
            return (f"on a fresh input, {expected['shown']} {said(got[0])}, the original "
                    f"{said(expected['result'])}" + detail_of(difference))
        difference = compare(expected["after"], got[1], tolerance)
        if difference:
            return (f"on a fresh input, {expected['shown']} left its arguments otherwise "
                    f"than the original: {difference}")
    return ""
