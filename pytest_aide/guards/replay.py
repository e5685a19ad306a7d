"""The original's answers, recorded once and replayed against every candidate.

A test's own ``==`` decides whether it passes, and a candidate can make that lie (a result
type that equals anything, a proxy that computes only when compared). So while the guard
probe runs the original (untimed), every call that the tests make into the target's
functions and methods from outside the target is recorded: its arguments (pickled before the
call), its result or the exception it raised, and its arguments after the call, both as
canonical forms (canonical.py). Each candidate's evaluation then calls the candidate's
function of the same name with fresh copies of those arguments, after its tests, and reports
the forms; the parent compares them with the original's. A call whose answer the original
does not give twice (replayed once more in the probe) is not compared.

Child side: ``Recorder`` (the probe) and ``replay`` (every candidate); parent side:
``differences``. Limits keep a large suite affordable: calls per callable, bytes per call and
in all; identical arguments are recorded once.
"""

from __future__ import annotations

import base64
import functools
import pickle
import reprlib
import sys
import types
from dataclasses import asdict, dataclass
from typing import Any

from pytest_aide.guards.canonical import Form, Tolerance, compare, form, render

#: Calls recorded per callable, and in all; pickled bytes per call and in all.
PER_CALLABLE = 8
TOTAL_CALLS = 200
CALL_BYTES = 256_000
TOTAL_BYTES = 4_000_000


@dataclass
class Call:
    """One recorded call, as the parent keeps it in the baseline."""

    id: int
    #: The callable's name within the target module: ``plural`` or ``Inflector.plural``.
    name: str
    #: ``(args, kwargs)`` before the call, pickled, base64.
    args: str
    #: The call as a person reads it: ``plural('ox')``.
    shown: str
    #: The original's answer: the form of its result, or ``["raised", "builtins.KeyError"]``.
    result: Form
    #: The form of ``[args, kwargs]`` after the call (what it did to its arguments).
    after: Form
    #: False when the original gave another answer when called again: not compared.
    stable: bool = True
    #: The test during which it was made (the benchmarked call: a marked test's).
    test: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Call:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


# -- the child's side: recording ---------------------------------------------------------


class Recorder:
    """Wraps the target's functions and methods as the module is first imported, so that
    the tests' own references (``from target import f``) are the wrappers."""

    def __init__(self, module: str) -> None:
        self.module = module
        self.calls: list[Call] = []
        self.active = True
        self._seen: dict[str, set[bytes]] = {}
        self._bytes = 0
        self._inside = False
        #: The test running now (the worker sets it), kept with each call, and whether it
        #: is a marked one: its first call is what its benchmark times (fresh inputs are
        #: made from it), recorded whatever the limits per callable and in all.
        self.current_test = ""
        self.current_marked = False
        self._marked_recorded: set[str] = set()

    def install(self, module: types.ModuleType) -> None:
        namespace = vars(module)
        for name, value in list(namespace.items()):
            if _defined_in(value, module):
                namespace[name] = self._wrap(value, name)
            elif isinstance(value, type) and value.__module__ == module.__name__:
                for attribute, member in list(vars(value).items()):
                    if _defined_in(member, module) and not attribute.startswith("__"):
                        setattr(value, attribute, self._wrap(member, f"{name}.{attribute}"))

    def _wrap(self, function: types.FunctionType, name: str) -> Any:
        recorder = self

        @functools.wraps(function)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_globals.get("__name__")
            if recorder._inside or not recorder.active or caller == recorder.module:
                return function(*args, **kwargs)
            return recorder._record(function, name, args, kwargs)

        return recorded

    def _record(self, function: Any, name: str, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        blob = self._pickled(name, args, kwargs)
        if blob is None:
            return function(*args, **kwargs)
        shown = f"{name.split('.')[-1]}({shown_arguments(args, kwargs)})"
        try:
            result = function(*args, **kwargs)
        except BaseException as exc:
            self._keep(name, blob, shown, ["raised", type_name(type(exc))], args, kwargs)
            raise
        self._keep(name, blob, shown, self._form(result), args, kwargs)
        return result

    def _pickled(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes | None:
        seen = self._seen.setdefault(name, set())
        benchmarked = self.current_marked and self.current_test not in self._marked_recorded
        if not benchmarked and (len(seen) >= PER_CALLABLE or len(self.calls) >= TOTAL_CALLS):
            return None
        self._inside = True
        try:
            blob = pickle.dumps((args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # an argument that does not pickle: the call cannot be replayed
            return None
        finally:
            self._inside = False
        if len(blob) > CALL_BYTES or (blob in seen and not benchmarked) or \
                (self._bytes + len(blob) > TOTAL_BYTES and not benchmarked):
            return None
        seen.add(blob)
        self._bytes += len(blob)
        return blob

    def _form(self, value: Any) -> Form:
        self._inside = True
        try:
            return form(value)
        finally:
            self._inside = False

    def _keep(self, name: str, blob: bytes, shown: str, result: Form, args: tuple[Any, ...],
              kwargs: dict[str, Any]) -> None:
        after = self._form([list(args), kwargs])
        if self.current_marked:
            self._marked_recorded.add(self.current_test)
        self.calls.append(Call(len(self.calls), name, base64.b64encode(blob).decode("ascii"),
                               shown, result, after, test=self.current_test))

    def check_stability(self, module: types.ModuleType) -> None:
        """Call each recorded call once more on the original: one whose answer differs
        (time, randomness, a cache) is not compared with candidates."""
        self.active = False
        answers = replay(module, [c.to_dict() for c in self.calls])
        for call in self.calls:
            again = answers.get(call.id)
            call.stable = again is not None and not compare(call.result, again[0]) and \
                not compare(call.after, again[1])


def _defined_in(value: Any, module: types.ModuleType) -> bool:
    return isinstance(value, types.FunctionType) and value.__module__ == module.__name__


def type_name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def shown_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    short = reprlib.Repr()
    short.maxstring, short.maxother, short.maxlist = 40, 40, 6
    parts = [short.repr(a) for a in args] + [f"{k}={short.repr(v)}" for k, v in kwargs.items()]
    text = ", ".join(parts)
    return text if len(text) <= 120 else text[:117] + "..."


# -- the child's side: replaying ---------------------------------------------------------


def replay(module: types.ModuleType, calls: list[dict[str, Any]]) -> dict[int, list[Form]]:
    """Each call made again on ``module`` (the candidate's, in its evaluation) with fresh
    copies of its arguments: ``{id: [form of the result, form of the arguments after]}``."""
    answers: dict[int, list[Form]] = {}
    for call in calls:
        function = resolve(module, call["name"])
        if function is None:
            answers[call["id"]] = [["missing", call["name"]], ["missing", call["name"]]]
            continue
        try:
            args, kwargs = pickle.loads(base64.b64decode(call["args"]))
        except Exception as exc:  # the candidate lacks a class the arguments are made of
            answers[call["id"]] = [["raised", type_name(type(exc))], ["missing", call["name"]]]
            continue
        try:
            result = form(function(*args, **kwargs))
        except Exception as exc:
            result = ["raised", type_name(type(exc))]
        answers[call["id"]] = [result, form([list(args), kwargs])]
    return answers


def resolve(module: types.ModuleType, name: str) -> Any:
    """``name`` (``f`` or ``Class.method``) in ``module``'s namespace, None when absent."""
    owner: Any = module
    for part in name.split("."):
        owner = vars(owner).get(part) if isinstance(owner, (types.ModuleType, type)) else None
        if owner is None:
            return None
    return owner


# -- the parent's side -------------------------------------------------------------------


def differences(calls: list[Call], answers: dict[str, Any],
                tolerance: Tolerance | None = None, limit: int = 3) -> list[str]:
    """How the candidate's answers differ from the original's, one sentence per call (the
    first ``limit``), e.g. ``plural('ox') returned 'oxs', the original 'oxen'``."""
    found = []
    for call in calls:
        if not call.stable:
            continue
        got = answers.get(str(call.id))
        if got is None:
            found.append(f"{call.shown} was not replayed")
        elif got[0][:1] == ["missing"]:
            found.append(f"{call.shown}: the candidate has no {call.name}")
        elif compare(call.result, got[0], tolerance):
            original = said(call.result) if call.result[:1] == ["raised"] \
                else render(call.result)
            found.append(f"{call.shown} {said(got[0])}, the original {original}"
                         + detail_of(compare(call.result, got[0], tolerance)))
        elif compare(call.after, got[1], tolerance):
            found.append(f"{call.shown} left its arguments otherwise than the original: "
                         + compare(call.after, got[1], tolerance))
        if len(found) >= limit:
            break
    return found


def said(value: Form) -> str:
    return f"raised {value[1]}" if value[:1] == ["raised"] else f"returned {render(value)}"


def detail_of(difference: str) -> str:
    """The first difference inside a larger value (nothing to add for a plain one)."""
    return "" if difference.startswith("the value is") else f" ({difference})"
