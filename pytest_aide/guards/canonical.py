"""Canonical forms: what a call returned, as plain data that does not trust the objects.

The original's answers are replayed against each candidate (replay.py) and compared in the
parent, never with the objects' own ``==``: a result type that claims to equal anything, or
a proxy that does its work only when compared, must not pass for the original's answer. So a
value is reduced here to JSON-able data by its exact type (a subclass of ``int`` is not an
``int``), walking containers structurally, numpy arrays and torch tensors by dtype, shape and
values, and other objects by their exact class and attributes, read with
``object.__getattribute__``; no method that candidate code could have defined is called.

A form is a list whose first item names the kind: ``["int", 3]``, ``["list", [...]]``,
``["object", "pkg.mod.Class", {...}]``... ``compare`` finds the first difference, floats and
arrays within a tolerance; ``render`` writes a form back as short, readable text.
"""

from __future__ import annotations

import contextlib
import math
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: How deep and how wide a form goes; past that, the rest is cut (and compared as cut).
MAX_DEPTH = 12
MAX_ITEMS = 2_000
#: Default tolerances (rtol, atol) by float type, as torch.testing.assert_close has them:
#: sums taken in another order, or a kernel that fuses them, differ in their last bits, the
#: more so the fewer bits there are. Python floats get a little more room than float64
#: arrays (a reordered sum of many terms).
_DEFAULTS = {"float": (1e-6, 1e-9), "float64": (1e-7, 1e-7), "float32": (1.3e-6, 1e-5),
             "float16": (1e-3, 1e-5), "bfloat16": (1.6e-2, 1e-5)}
#: dtype names (numpy's ``dtype.str`` and torch's) and their family in ``_DEFAULTS``.
_FAMILY = {"f8": "float64", "c16": "float64", "float64": "float64", "complex128": "float64",
           "double": "float64", "f4": "float32", "c8": "float32", "float32": "float32",
           "complex64": "float32", "float": "float32", "f2": "float16", "float16": "float16",
           "half": "float16", "bfloat16": "bfloat16"}


@dataclass(frozen=True)
class Tolerance:
    """The rtol and atol a user gave (marker, ini or option); None: by float type."""

    rtol: float | None = None
    atol: float | None = None

    def of(self, dtype: str) -> tuple[float, float]:
        """(rtol, atol) for values of ``dtype`` ("float" for Python floats; "<f4",
        "torch.float32"...)."""
        name = dtype if dtype == "float" else \
            _FAMILY.get(dtype.lstrip("<>=|").removeprefix("torch."), "float64")
        rtol, atol = _DEFAULTS[name]
        return (rtol if self.rtol is None else self.rtol, atol if self.atol is None else self.atol)

Form = list[Any]

_PLAIN: dict[type, str] = {type(None): "none", bool: "bool", int: "int", str: "str"}
#: Kinds compared by kind alone: functions, modules, classes (their behaviour is what the
#: replay of calls checks, not their identity).
_OPAQUE = {types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.ModuleType,
           type, types.GeneratorType, types.CoroutineType}


def form(value: Any, depth: int = 0) -> Form:
    """``value``'s canonical form (see the module docstring)."""
    kind = type(value)
    if depth > MAX_DEPTH:
        return ["cut", _qualname(kind)]
    if kind in _PLAIN:
        return [_PLAIN[kind], value]
    if kind is float:
        return ["float", _float(value)]
    if kind is complex:
        return ["complex", _float(value.real), _float(value.imag)]
    if kind is bytes or kind is bytearray:
        return [kind.__name__, value.hex()]
    if kind is list or kind is tuple:
        return [kind.__name__, [form(v, depth + 1) for v in value[:MAX_ITEMS]], len(value)]
    if kind is dict:
        items = list(dict.items(value))[:MAX_ITEMS]
        return ["dict", [[form(k, depth + 1), form(v, depth + 1)] for k, v in items], len(value)]
    if kind is set or kind is frozenset:
        members = sorted((form(v, depth + 1) for v in list(value)[:MAX_ITEMS]), key=repr)
        return [kind.__name__, members, len(value)]
    special = _special(value, kind, depth)
    if special is not None:
        return special
    return _instance(value, kind, depth)


def _float(value: float) -> Any:
    """JSON has no NaN or infinity: they are written as words."""
    return value if math.isfinite(value) else repr(value)


def _qualname(kind: type) -> str:
    module = type.__getattribute__(kind, "__module__")
    return f"{module}.{type.__getattribute__(kind, '__qualname__')}"


def _special(value: Any, kind: type, depth: int) -> Form | None:
    """numpy arrays and scalars, torch tensors, by exact type; None for anything else."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if kind is numpy.ndarray:
            flat = value.ravel()[:MAX_ITEMS].tolist()
            return ["ndarray", value.dtype.str, list(value.shape),
                    [_element(v, depth) for v in flat]]
        if isinstance(value, numpy.generic) and kind.__module__ == "numpy":
            return ["npscalar", numpy.dtype(kind).str, _item(value.item())]
    torch = sys.modules.get("torch")
    if torch is not None and kind is torch.Tensor:
        data = value.detach().to("cpu")
        flat = data.reshape(-1)[:MAX_ITEMS].tolist()
        return ["tensor", str(data.dtype), list(data.shape), [_element(v, depth) for v in flat]]
    return None


def _item(value: Any) -> Any:
    return _float(value) if type(value) is float else value


def _element(value: Any, depth: int) -> Any:
    """One element of an array (from ``tolist``): a plain number, or a form for complex
    numbers and the objects of an object array."""
    kind = type(value)
    if kind is float:
        return _float(value)
    if kind is int or kind is bool:
        return value
    return form(value, depth + 1)


#: The interpreter's own ``__dict__`` descriptor, which reads an instance dict without code.
_SLOT = type.__dict__["__dict__"]
_SLOT_TYPE = type(object.__getattribute__(type("_Probe", (), {}), "__dict__")["__dict__"])


def _instance(value: Any, kind: type, depth: int) -> Form:
    """Any other object: its exact class and its attributes, read without calling its code."""
    name = _qualname(kind)
    if isinstance(value, BaseException):
        return ["exception", name]
    if kind in _OPAQUE:
        return ["opaque", name]
    mro = type.__getattribute__(kind, "__mro__")
    if any(type(type.__getattribute__(k, "__dict__").get("__dict__", _SLOT)) is not _SLOT_TYPE
           for k in mro):
        return ["object", name, "its __dict__ is not the interpreter's"]  # a property: code
    attributes: dict[str, Any] = {}
    with contextlib.suppress(AttributeError, TypeError):
        attributes.update(object.__getattribute__(value, "__dict__"))
    for klass in mro:
        for slot in type.__getattribute__(klass, "__dict__").get("__slots__", ()):
            if isinstance(slot, str) and slot not in attributes:
                try:
                    attributes[slot] = object.__getattribute__(value, slot)
                except AttributeError:
                    continue
    fields = sorted((k, form(v, depth + 1)) for k, v in list(attributes.items())[:MAX_ITEMS]
                    if isinstance(k, str))
    return ["object", name, [[k, f] for k, f in fields]]


# -- comparing ---------------------------------------------------------------------------


def compare(expected: Form, got: Form, tolerance: Tolerance | None = None,
            where: str = "") -> str:
    """The first difference between two forms, as a phrase ("" when they agree)."""
    if expected[0] != got[0] or (expected[0] in {"object", "exception", "opaque", "cut"}
                                 and expected[1] != got[1]):
        return f"{where or 'the value'} is {render(got)}, the original's {render(expected)}"
    kind = expected[0]
    compared = _COMPARERS.get(kind)
    if compared is not None:
        return compared(expected, got, tolerance or Tolerance(), where)
    if expected != got:
        return f"{where or 'the value'} is {render(got)}, the original's {render(expected)}"
    return ""


def _close(a: Any, b: Any, rtol: float, atol: float) -> bool:
    if isinstance(a, str) or isinstance(b, str):  # nan, inf, -inf
        return a == b
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)


def _numbers(expected: Form, got: Form, tolerance: Tolerance, where: str) -> str:
    if expected[0] == "npscalar":
        pairs = [(expected[2], got[2])] if expected[1] == got[1] else [(0, 1)]  # a dtype apart
        rtol, atol = tolerance.of(expected[1])
    else:
        pairs = list(zip(expected[1:], got[1:], strict=True))
        rtol, atol = tolerance.of("float")
    same = all(_close(g, e, rtol, atol) for e, g in pairs)
    return "" if same else \
        f"{where or 'the value'} is {render(got)}, the original's {render(expected)}"


def _sequence(expected: Form, got: Form, tolerance: Tolerance, where: str) -> str:
    if expected[2] != got[2]:
        return (f"{where or 'the value'} has {got[2]} items, the original's {expected[2]}: "
                f"{render(got)} against {render(expected)}")
    for index, (e, g) in enumerate(zip(expected[1], got[1], strict=False)):
        found = compare(e, g, tolerance, f"{where or 'the value'}[{index}]")
        if found:
            return found
    return ""


def _mapping(expected: Form, got: Form, tolerance: Tolerance, where: str) -> str:
    if expected[2] != got[2]:
        return (f"{where or 'the value'} has {got[2]} keys, the original's {expected[2]}: "
                f"{render(got)} against {render(expected)}")
    theirs = {repr(k): v for k, v in got[1]}
    for key, value in expected[1]:
        if repr(key) not in theirs:
            return f"{where or 'the value'} lacks the key {render(key)}"
        found = compare(value, theirs[repr(key)], tolerance,
                        f"{where or 'the value'}[{render(key)}]")
        if found:
            return found
    return ""


def _array(expected: Form, got: Form, tolerance: Tolerance, where: str) -> str:
    label = where or "the array"
    rtol, atol = tolerance.of(expected[1])
    if expected[1] != got[1] or expected[2] != got[2]:
        return (f"{label} is {got[0]} {got[1]} of shape {tuple(got[2])}, the original's "
                f"{expected[1]} of shape {tuple(expected[2])}")
    for index, (e, g) in enumerate(zip(expected[3], got[3], strict=False)):
        if isinstance(e, list):
            found = compare(e, g, tolerance, f"{label}.flat[{index}]")
            if found:
                return found
        elif not _close(g, e, rtol, atol):
            return f"{label}.flat[{index}] is {g!r}, the original's {e!r}"
    return ""


def _instance_fields(expected: Form, got: Form, tolerance: Tolerance, where: str) -> str:
    if not isinstance(expected[2], list) or not isinstance(got[2], list):
        return "" if expected == got else \
            f"{where or 'the value'} is {render(got)}, the original's {render(expected)}"
    theirs = dict((k, v) for k, v in got[2])
    ours = dict((k, v) for k, v in expected[2])
    if set(theirs) != set(ours):
        return (f"{where or 'the value'} ({expected[1]}) has the attributes "
                f"{sorted(theirs)}, the original's {sorted(ours)}")
    for key in sorted(ours):
        found = compare(ours[key], theirs[key], tolerance, f"{where or 'the value'}.{key}")
        if found:
            return found
    return ""


_COMPARERS: dict[str, Callable[[Form, Form, Tolerance, str], str]] = {
    "float": _numbers, "complex": _numbers, "npscalar": _numbers,
    "list": _sequence, "tuple": _sequence, "set": _sequence, "frozenset": _sequence,
    "dict": _mapping, "ndarray": _array, "tensor": _array, "object": _instance_fields,
}


# -- rendering ---------------------------------------------------------------------------


def render(value: Form, limit: int = 80) -> str:
    """A form as short text, e.g. ``'oxen'``, ``[1, 2, 3]``, ``ndarray <f8 (3, 4)``."""
    text = _render(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _render(value: Form) -> str:
    kind = value[0]
    if kind in {"none", "bool", "int", "str", "float"}:
        return repr(value[1]) if kind != "float" or not isinstance(value[1], str) \
            else f"float({value[1]!r})"
    if kind in {"list", "tuple", "set", "frozenset"}:
        inner = ", ".join(_render(v) for v in value[1][:8])
        more = ", ..." if value[2] > 8 else ""
        left, right = {"list": "[]", "tuple": "()"}.get(kind, "{}")
        return f"{left}{inner}{more}{right}"
    if kind == "dict":
        inner = ", ".join(f"{_render(k)}: {_render(v)}" for k, v in value[1][:6])
        return "{" + inner + (", ..." if value[2] > 6 else "") + "}"
    if kind in {"ndarray", "tensor"}:
        return f"{kind} {value[1]} {tuple(value[2])}"
    if kind == "npscalar":
        return f"{value[1]} {value[2]!r}"
    if kind == "exception":
        return f"raised {value[1]}"
    if kind == "object":
        return f"<{value[1]}>"
    return f"{kind} {value[1:]!r}"
