"""Fingerprints of the state the tests rely on: a candidate must not change what the tests
compare with (``numpy.allclose``, ``pytest.approx``, ``statistics``, the project's reference
module, a name in a test module) or how the interpreter behaves (the garbage collector,
``sys.path``, import hooks, signal handlers, the working directory, the environment).

Two kinds, for two comparisons:

* :func:`digests`, taken in the child once the test modules and their imports are loaded,
  are the same in every process for the same code. The parent compares a candidate's with
  the baseline's: a patch made while the candidate was imported shows there.
* :func:`identities`, taken before and after each test body, are cheap copies of the
  watched namespaces for a comparison by identity within one process: a patch made during a
  test shows there, named with the test. :func:`digests` again at the end of the session
  also catch new code given to an existing function (``__code__``) during the tests.

Only what the original code does not also change is the candidate's doing: the parent
subtracts the baseline's own changes (:func:`new_changes`).
"""

from __future__ import annotations

import _signal
import gc
import marshal
import operator
import os
import signal
import sys
import types
import warnings
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Modules the tests compare or measure with, watched whenever they are loaded.
COMPARATORS = (
    "builtins", "math", "cmath", "operator", "statistics", "functools", "copy", "time",
    "timeit", "gc", "random", "decimal", "fractions", "unittest", "unittest.case", "pytest",
    "_pytest.python_api", "_pytest.approx", "_pytest.outcomes", "_pytest.runner", "_pytest.reports",
    "pytest_benchmark.fixture", "pytest_benchmark.stats", "pytest_benchmark.timers",
    "numpy", "numpy.testing", "numpy.testing._private.utils", "numpy._core.numeric",
    "numpy.core.numeric", "torch", "torch.testing", "torch.testing._comparison",
)

_CALLABLE = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, type,
             types.MethodDescriptorType, types.WrapperDescriptorType, staticmethod,
             classmethod, property)

_INTERPRETER = "interpreter"
_TEST_MODULE = " (a test module's global)"
_MISSING = object()

#: Modules of the optimizer's own worker, which differ between baseline and candidate runs.
_OWN = ("pytest_aide",)


def watched_modules(test_modules: Iterable[types.ModuleType], rootdir: Path,
                    target: str | tuple[str, ...]) -> list[str]:
    """The comparators, every project module but the target (or targets), and each module a
    test module names in its globals (or takes a function or class from)."""
    names = {name for name in COMPARATORS if name in sys.modules}
    for module in test_modules:
        for value in list(vars(module).values()):
            if isinstance(value, types.ModuleType):
                names.add(value.__name__)
            elif isinstance(value, _CALLABLE):
                owner = getattr(value, "__module__", None)
                if isinstance(owner, str) and owner in sys.modules:
                    names.add(owner)
    root = str(rootdir)
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if path.startswith(root) and "site-packages" not in path:
            names.add(name)
    return sorted(n for n in names if not _excluded(n, target))


def _excluded(name: str, target: str | tuple[str, ...]) -> bool:
    return (_in_targets(name, target) or name == "__main__" or name.split(".")[0] in _OWN)


def _in_targets(name: str, target: str | tuple[str, ...]) -> bool:
    """``name`` is a target module or inside one (a candidate's code differs, as it should)."""
    targets = (target,) if isinstance(target, str) else target
    return any(name == t or name.startswith(t + ".") for t in targets if t)


#: Variables that differ between evaluations by design: each slot of a parallel run sees its
#: own GPUs (slots.py). Fingerprinted apart, and compared within a run, not with the baseline.
PLACEMENT_VARIABLES = ("CUDA_VISIBLE_DEVICES",)
_PLACEMENT = "interpreter: placement"


#: Fixed for the platform: read once, not at every fingerprint.
_SIGNALS = sorted(signal.valid_signals())


@dataclass(frozen=True)
class Start:
    """The process's environment and working directory before any project code ran.

    What a fingerprint compares across processes is what the process changed since then, not
    the values themselves: those differ by host (Ray's ``RAY_RAYLET_PID``, ``HOSTNAME``, the
    node's copy of the project) and are not the candidate's doing, so that a candidate run on
    any node of a cluster is compared fairly with a baseline measured on another one.
    """

    environment: dict[str, str]
    cwd: str

    @classmethod
    def now(cls) -> Start:
        return cls(dict(os.environ), os.getcwd())

    def environment_changes(self, now: Mapping[str, str]) -> list[tuple[str, str | None]]:
        """Variables set, changed or removed since the start (None: removed)."""
        changed: list[tuple[str, str | None]] = [
            (k, v) for k, v in now.items() if self.environment.get(k) != v]
        changed += [(k, None) for k in self.environment if k not in now]
        return sorted(changed, key=lambda kv: (kv[0], kv[1] is None, kv[1] or ""))

    def relative(self, path: str) -> str:
        """``path`` under the starting directory written relative to it (the project's copy
        lies elsewhere on another node); any other path as it is."""
        if path == self.cwd:
            return "."
        if path.startswith(self.cwd + os.sep):
            return path[len(self.cwd) + 1:]
        return path


#: Taken when this module is first imported (the worker imports it before any project
#: code); the worker takes it again once it has cleared its own variables (:func:`restart`).
_START = Start.now()


def restart() -> None:
    """Take the start again, now (the worker, after clearing the parent's variables)."""
    global _START
    _START = Start.now()


def _interpreter_settings() -> dict[str, Any]:
    """Interpreter-wide settings a candidate could change to bend a measurement or a check,
    as they are: cheap to take before and after every test, compared within one process.
    Handlers are read through ``_signal``, below the ``signal`` module a candidate could patch."""
    handlers = {}
    for number in _SIGNALS:
        try:
            handlers[int(number)] = _signal.getsignal(number)
        except (ValueError, OSError):
            continue
    return {
        "gc enabled": gc.isenabled(),
        "gc thresholds": gc.get_threshold(),
        "switch interval": sys.getswitchinterval(),
        "recursion limit": sys.getrecursionlimit(),
        "sys.path": list(sys.path),
        "sys.meta_path": [f for f in sys.meta_path if type(f).__module__.split(".")[0] not in _OWN],
        "sys.path_hooks": list(sys.path_hooks),
        "signal handlers": handlers,
        "working directory": os.getcwd(),
        "environment": {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"
                        and not k.startswith("PYTEST_AIDE_") and k not in PLACEMENT_VARIABLES},
        "placement": [(k, os.environ.get(k)) for k in PLACEMENT_VARIABLES],
    }


def _interpreter_snapshot() -> dict[str, Any]:
    return {f"{_INTERPRETER}: {k}": v for k, v in _interpreter_settings().items()}


def interpreter_state() -> dict[str, str]:
    """The settings as digests that are the same in two processes for the same code, on any
    host: the environment as changed since the start, paths under the starting directory
    relative to it (:class:`Start`)."""
    settings = _interpreter_settings()
    described = {
        "sys.meta_path": [_describe(f) for f in settings["sys.meta_path"]],
        "sys.path_hooks": [_describe(h) for h in settings["sys.path_hooks"]],
        "signal handlers": {n: _describe(h) for n, h in settings["signal handlers"].items()},
        "environment": _START.environment_changes(settings["environment"]),
    }
    state = {
        "gc enabled": str(settings["gc enabled"]),
        "gc thresholds": str(settings["gc thresholds"]),
        "switch interval": repr(settings["switch interval"]),
        "recursion limit": str(settings["recursion limit"]),
        "sys.path": _crc(repr([_START.relative(p) for p in settings["sys.path"]])),
        **{name: _crc(repr(value)) for name, value in described.items()},
        "working directory": _crc(_START.relative(settings["working directory"])),
        "placement": _crc(repr(settings["placement"])),
    }
    return {f"{_INTERPRETER}: {k}": v for k, v in state.items()}


#: Names the interpreter and pytest themselves set and clear as tests fail (the last
#: uncaught exception): not the candidate's doing.
_VOLATILE = {"sys": {"last_type", "last_value", "last_traceback", "last_exc"}}


def _namespace(name: str, module: types.ModuleType) -> dict[str, Any]:
    """A module's names, less those in ``_VOLATILE``."""
    volatile = _VOLATILE.get(name)
    if volatile is None:
        return vars(module).copy()
    return {k: v for k, v in vars(module).items() if k not in volatile}


def _members(modules: Iterable[str]) -> Iterable[tuple[str, Any]]:
    for name in modules:
        module = sys.modules.get(name)
        if module is None:
            continue
        try:
            members = list(_namespace(name, module).items())
        except TypeError:
            continue
        for attribute, value in members:
            if _is_code(value):
                yield f"{name}.{attribute}", value


def _test_globals(test_modules: Iterable[types.ModuleType]) -> Iterable[tuple[str, Any]]:
    for module in test_modules:
        for attribute, value in list(vars(module).items()):
            if isinstance(value, types.ModuleType) or _is_code(value):
                yield f"{module.__name__}.{attribute}{_TEST_MODULE}", value


def _is_code(value: Any) -> bool:
    """Functions, classes, descriptors and callable objects (numpy's dispatchers and ufuncs)."""
    if isinstance(value, _CALLABLE):
        return True
    try:
        return callable(value) and not isinstance(value, types.ModuleType)
    except Exception:  # an object whose type lookup raises
        return False


def _owned_by(value: Any, target: str | tuple[str, ...]) -> bool:
    owner = value.__name__ if isinstance(value, types.ModuleType) else getattr(
        value, "__module__", None)
    return isinstance(owner, str) and _in_targets(owner, target)


def digests(modules: Iterable[str], test_modules: Iterable[types.ModuleType],
            target: str | tuple[str, ...]) -> dict[str, str]:
    """Name -> digest, the same in two processes for the same code (see the module doc)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = dict(interpreter_state())
        for key, value in (*_members(modules), *_test_globals(test_modules)):
            # the target's own functions differ from the original's, as they should: a name
            # that holds one is compared by the name of what it holds, not by its code
            found[key] = (f"target:{getattr(value, '__qualname__', '')}"
                          if _owned_by(value, target) else _describe(value))
    return found


def identities(modules: Iterable[str], test_modules: Iterable[types.ModuleType]
               ) -> dict[str, Any]:
    """Shallow copies of the watched namespaces, for before and after a test in one process
    (copying is cheap; the comparison by identity, in :func:`changed`, only looks closer at
    names whose object was replaced)."""
    found: dict[str, Any] = {_INTERPRETER: _interpreter_snapshot()}
    for name in modules:
        module = sys.modules.get(name)
        if module is not None:
            found[name] = _namespace(name, module)
    for module in test_modules:
        found[f"{module.__name__}{_TEST_MODULE}"] = dict(vars(module))
    return found


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Names whose function, class or callable was replaced, added or removed."""
    found = [k for k, v in after.get(_INTERPRETER, {}).items()
             if not _same(before.get(_INTERPRETER, {}).get(k, _MISSING), v)]
    for group, old in before.items():
        new = after.get(group)
        if group == _INTERPRETER or new is None:
            continue
        module, _, suffix = group.partition(" ")
        differ = [k for k, v in new.items() if old.get(k, _MISSING) is not v]
        differ += [k for k in old if k not in new]
        for key in differ:
            if _is_code(old.get(key)) or _is_code(new.get(key)):
                found.append(f"{module}.{key}" + (f" {suffix}" if suffix else ""))
    return sorted(found)


_PLAIN = (str, int, float, bool, type(None))


def _same(a: Any, b: Any) -> bool:
    """Equal, judged by identity for anything but plain values: an object a candidate
    planted could claim to equal the one it replaced."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) in _PLAIN and type(a) is type(b):
        return a == b
    return a is b


def changed_since_baseline(baseline: Mapping[str, str], candidate: Mapping[str, str]) -> list[str]:
    """Names both fingerprints have, with other digests; test module globals added or
    removed (a name planted in a test module, such as ``abs``, is not in the baseline); and
    the candidate's own code planted under another module's name."""
    # a test module that one of the two runs did not collect (it ran other tests) changed
    # nothing: only globals added to or removed from a module both have count
    both = _test_modules(baseline) & _test_modules(candidate)
    return sorted(
        k for k in baseline.keys() | candidate.keys()
        if baseline.get(k) != candidate.get(k) and k != _PLACEMENT
        and ((k in baseline and k in candidate)
             or (k.endswith(_TEST_MODULE) and _test_module_of(k) in both)
             or str(candidate.get(k, "")).startswith("target:"))
    )


def _test_module_of(key: str) -> str:
    """``tests.test_x.name (a test module's global)`` -> ``tests.test_x``."""
    return key[: -len(_TEST_MODULE)].rpartition(".")[0]


def _test_modules(digest: Mapping[str, str]) -> set[str]:
    return {_test_module_of(k) for k in digest if k.endswith(_TEST_MODULE)}


def new_changes(candidate: Iterable[str], baseline: Iterable[str]) -> list[str]:
    """What the candidate changed that the original code also changes is not its doing."""
    return sorted(set(candidate) - set(baseline))


def _describe(value: Any) -> str:
    """A digest that is the same in two processes for the same code, and differs when an
    object is replaced by another or given other code."""
    try:
        return _describe_unsafe(value)
    except Exception as exc:  # an object whose attributes raise: describe it by its type
        return f"unreadable {type(value).__qualname__}: {type(exc).__name__}"


#: Exact types described by their module and name, looked up before the checks below.
_NAMED_KINDS = frozenset({types.BuiltinFunctionType, types.MethodDescriptorType,
                          types.WrapperDescriptorType, types.ClassMethodDescriptorType})


def _describe_unsafe(value: Any) -> str:
    kind = type(value)
    if kind is types.FunctionType:  # the most common, and never subclassed
        return _describe_function(value)
    if kind is type:
        return _describe_class(value)
    if kind in _NAMED_KINDS:
        return _named(value)
    if isinstance(value, (int, str, float, type(None))):
        return repr(value)
    if isinstance(value, (staticmethod, classmethod)):
        return "wrapped:" + _describe(value.__func__)
    if isinstance(value, property):
        return "property:" + ",".join(_describe(f) for f in (value.fget, value.fset) if f)
    if isinstance(value, types.MethodType):
        return "method:" + _describe(value.__func__)
    if isinstance(value, types.ModuleType):
        return f"module:{value.__name__}"
    if isinstance(value, type):
        return _describe_class(value)
    return _named(value)


def _describe_function(value: types.FunctionType) -> str:
    return f"function:{value.__module__}.{value.__qualname__}:{_code_digest(value.__code__)}"


def _named(value: Any) -> str:
    module = getattr(value, "__module__", None) or type(value).__module__
    qualname = getattr(value, "__qualname__", None) or type(value).__qualname__
    return f"{type(value).__name__}:{module}.{qualname}"


_METHOD_KINDS = (types.FunctionType, staticmethod, classmethod, property)
#: The usual other members of a class, none of them one of ``_METHOD_KINDS``: skipped by a
#: set lookup, which is what makes describing numpy's or pytest's classes cheap.
_NOT_METHODS = frozenset({
    str, int, float, bool, type(None), tuple, dict, frozenset, types.MethodDescriptorType,
    types.WrapperDescriptorType, types.GetSetDescriptorType, types.MemberDescriptorType,
    types.BuiltinFunctionType, types.ClassMethodDescriptorType, types.MappingProxyType,
})


@dataclass(frozen=True)
class _ClassDescription:
    """A class as described once, with what the description rests on: the objects in its
    namespace (by identity) and the code of every function among them or wrapped by them."""

    cls: type
    qualname: str
    keys: tuple[Any, ...]
    members: tuple[Any, ...]
    functions: tuple[types.FunctionType, ...]
    codes: tuple[types.CodeType, ...]
    description: str

    def holds_for(self, value: type, keys: tuple[Any, ...], members: tuple[Any, ...]) -> bool:
        """Nothing it rests on changed: compared by identity, in C (``map``), so that
        checking the few hundred classes pytest and numpy bring costs little."""
        return (self.cls is value and self.qualname == value.__qualname__
                and len(members) == len(self.members)
                and all(map(operator.is_, members, self.members))
                and all(map(operator.is_, keys, self.keys))
                and all(map(operator.is_, map(_code_of, self.functions), self.codes)))


#: id -> the class's description: described again only when a member was replaced, added
#: or removed, or a function in it was given other code (the entry keeps the class alive,
#: so its id is not reused).
_CLASS_DESCRIPTIONS: dict[int, _ClassDescription] = {}


_code_of = operator.attrgetter("__code__")


def _describe_class(value: type) -> str:
    namespace = vars(value)
    keys, members = tuple(namespace), tuple(namespace.values())
    known = _CLASS_DESCRIPTIONS.get(id(value))
    if known is not None and known.holds_for(value, keys, members):
        return known.description
    own, others, functions = [], [], []
    for key, member in zip(keys, members, strict=True):
        kind = type(member)
        if kind is types.FunctionType:
            own.append((key, _describe_function(member)))
            functions.append(member)
        elif kind not in _NOT_METHODS and isinstance(member, _METHOD_KINDS):
            others.append((key, _describe(member)))
            functions.extend(_wrapped_functions(member))
    described = _crc(repr(sorted(own)))
    if others:
        described = f"{described}:{_crc(repr(sorted(others)))}"
    description = f"class:{value.__module__}.{value.__qualname__}:{described}"
    _CLASS_DESCRIPTIONS[id(value)] = _ClassDescription(
        value, value.__qualname__, keys, members, tuple(functions),
        tuple(f.__code__ for f in functions), description)
    return description


def _wrapped_functions(member: Any) -> list[types.FunctionType]:
    """The functions a static or class method or a property holds (their code can change
    while the wrapper stays the same object)."""
    inner = [getattr(member, "__func__", None), getattr(member, "fget", None),
             getattr(member, "fset", None)]
    return [f for f in inner if type(f) is types.FunctionType]


#: id -> (code, digest). Code objects cannot change, so a digest taken at collection holds
#: at the end for the same object; the entry keeps the code alive, so its id is not reused.
_CODE_DIGESTS: dict[int, tuple[types.CodeType, str]] = {}


def _code_digest(code: types.CodeType) -> str:
    known = _CODE_DIGESTS.get(id(code))
    if known is not None and known[0] is code:
        return known[1]
    digest = _code_digest_uncached(code)
    _CODE_DIGESTS[id(code)] = (code, digest)
    return digest


_MARSHAL_SORTS_SETS = sys.version_info >= (3, 11)


def _code_digest_uncached(code: types.CodeType) -> str:
    """Version 0 of marshal writes neither back-references (which follow reference counts)
    nor whether a string is interned, so the same code gives the same bytes in every
    process. Before Python 3.11 it wrote a set in its order, which follows the hash seed:
    there, code holding a set is digested part by part, with its sets sorted. The file name
    is left out: the project's copy lies at another path on another node."""
    if _MARSHAL_SORTS_SETS or not _holds_a_set(code.co_consts):
        try:
            return _crc(marshal.dumps(_placeless(code), 0))
        except ValueError:  # a constant marshal cannot write (code built by hand)
            pass
    parts = [code.co_code, repr(code.co_names).encode(), repr(code.co_varnames).encode()]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            parts.append(_code_digest(const).encode())
        else:
            parts.append(_stable_repr(const).encode())
    return _crc(b"\0".join(parts))


def _placeless(code: types.CodeType) -> types.CodeType:
    """``code`` and the code it holds without their file name."""
    consts = tuple(_placeless(c) if isinstance(c, types.CodeType) else c
                   for c in code.co_consts)
    return code.replace(co_filename="", co_consts=consts)


def _stable_repr(const: Any) -> str:
    """A constant's repr with its sets sorted (their order changes with the hash seed)."""
    if isinstance(const, frozenset):
        return "frozenset(" + repr(sorted(_stable_repr(c) for c in const)) + ")"
    if isinstance(const, tuple):
        return "(" + ", ".join(_stable_repr(c) for c in const) + ",)"
    return repr(const)


def _holds_a_set(constants: tuple[Any, ...]) -> bool:
    for const in constants:
        if isinstance(const, frozenset):
            return True
        if isinstance(const, tuple) and _holds_a_set(const):
            return True
        if isinstance(const, types.CodeType) and _holds_a_set(const.co_consts):
            return True
    return False


def _crc(data: str | bytes) -> str:
    raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
    return format(zlib.crc32(raw), "08x")
