"""Measurement integrity: the clocks, statistics and report machinery stay the real ones.

Two checks, because neither is enough alone:

* :func:`scan_source` reads the candidate's source (with :mod:`ast`) for code that reaches
  into the measuring machinery: assignments to ``time``/``timeit``/``pytest``/
  ``pytest_benchmark``/``builtins`` attributes, imports of the test framework into the
  target module, ``sys.modules`` surgery, caller-frame and ``gc`` walks, trace hooks.
  Only what the original module does not already do counts (:func:`new_findings`).
* :class:`MeasuringIntegrity`, in the evaluation child, records the identity of each clock,
  each pytest-benchmark method and statistic, pytest's report machinery and the builtins
  before the candidate first runs, and compares after each test and when the benchmark's
  statistics are read; it also recomputes the statistics from the raw samples, so a value
  planted in the cache of a statistic shows.
"""

from __future__ import annotations

import ast
import builtins
import functools
import math
import operator
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: Clocks and timing helpers: checked after each test's teardown (a test's own monkeypatch
#: of ``time.time`` is undone by then).
CLOCKS: tuple[tuple[str, str], ...] = (
    *(
        ("time", name)
        for name in (
            "perf_counter", "perf_counter_ns", "time", "time_ns", "monotonic",
            "monotonic_ns", "process_time", "process_time_ns", "thread_time",
        )
    ),
    ("timeit", "default_timer"),
    ("timeit", "Timer"),
    ("_pytest.timing", "perf_counter"),
    ("_pytest.timing", "time"),
    ("_pytest.timing", "Instant"),
    ("pytest_benchmark.timers", "default_timer"),
    ("pytest_benchmark.timers", "compute_timer_precision"),
    ("pytest_benchmark.fixture", "compute_timer_precision"),
    ("math", "isclose"),
    ("math", "isfinite"),
    ("math", "fsum"),
    ("random", "random"),
    ("random", "seed"),
    ("random", "randint"),
    ("random", "uniform"),
    ("random", "randrange"),
    ("random", "choice"),
    ("random", "shuffle"),
    ("random", "sample"),
    ("random", "gauss"),
    ("random", "getrandbits"),
    ("pytest", "approx"),
    # what the benchmark's timer waits for GPU work with (device_timing.py),
    # when torch was loaded before the candidate (a warm interpreter preloads it)
    ("torch.cuda", "synchronize"),
    ("torch.cuda", "is_initialized"),
    ("torch._C", "_cuda_synchronize"),
)
#: What turns a run into a measurement and a report: checked also at measurement time.
MEASURING: tuple[tuple[str, str], ...] = (
    ("pytest_benchmark.fixture", "BenchmarkFixture"),
    ("pytest_benchmark.fixture", "Metadata"),
    ("pytest_benchmark.stats", "Stats"),
    ("pytest_benchmark.stats", "Metadata"),
    ("_pytest.runner", "call_and_report"),
    ("_pytest.runner", "runtestprotocol"),
    ("_pytest.runner", "call_runtest_hook"),
    ("_pytest.runner", "CallInfo"),
    ("_pytest.runner", "TestReport"),
    ("_pytest.reports", "TestReport"),
    ("pytest", "TestReport"),
    ("pytest", "CallInfo"),
)
#: Classes whose own attributes (methods, properties, cached statistics) are recorded too.
CLASSES: tuple[tuple[str, str], ...] = (
    ("pytest_benchmark.fixture", "BenchmarkFixture"),
    ("pytest_benchmark.stats", "Stats"),
    ("pytest_benchmark.stats", "Metadata"),
    ("_pytest.reports", "TestReport"),
    ("_pytest.reports", "BaseReport"),
    ("_pytest.runner", "CallInfo"),
    ("timeit", "Timer"),
)
_MISSING = object()


@dataclass
class MeasuringIntegrity:
    """Identities recorded before the candidate runs; replacements found afterwards."""

    clocks: dict[str, Any] = field(default_factory=dict)
    measuring: dict[str, Any] = field(default_factory=dict)
    timers: list[Any] = field(default_factory=list)
    tampered: list[str] = field(default_factory=list)
    armed: bool = False
    _seen: set[str] = field(default_factory=set)
    _builtin_names: tuple[str, ...] = ()
    _builtin_values: tuple[Any, ...] = ()

    def arm(self) -> None:
        """Record the baseline (once): call before the candidate's code first runs."""
        if self.armed:
            return
        self.armed = True
        self.clocks = _identities(CLOCKS)
        self.measuring = _identities(MEASURING)
        for module, name in CLASSES:
            cls = _lookup(module, name)
            if isinstance(cls, type):
                members = {k: v for k, v in vars(cls).items() if k not in _CLASS_NOISE}
                self.measuring.update({f"{module}.{name}.{k}": v for k, v in members.items()})
                self.measuring[f"{module}.{name}.<names>"] = frozenset(members)
        recorded = {k: v for k, v in vars(builtins).items() if not k.startswith("_")}
        self.clocks.update({f"builtins.{k}": v for k, v in recorded.items()})
        self._builtin_names, self._builtin_values = tuple(recorded), tuple(recorded.values())
        self.timers = [v for k, v in self.clocks.items() if not k.startswith("builtins.")]

    def note_benchmark_timer(self, config: Any) -> None:
        """Accept the timer pytest-benchmark was configured with (``--benchmark-timer``)."""
        session = getattr(config, "_benchmarksession", None)
        timer = getattr(getattr(session, "options", {}).get("timer"), "target", None)
        if timer is not None:
            self.timers.append(timer)

    def _flag(self, what: str, where: str) -> None:
        if what not in self._seen:
            self._seen.add(what)
            self.tampered.append(f"{what} (found {where})")

    def check(self, where: str, clocks: bool = True) -> None:
        """Compare identities with the baseline; ``where``: the test or moment, for the message."""
        if not self.armed:
            return
        expected = {**self.measuring, **self.clocks} if clocks else self.measuring
        if clocks and self._builtins_unchanged():  # the bulk of the names, checked in C
            expected = {k: v for k, v in expected.items() if not k.startswith("builtins.")}
        classes: dict[tuple[str, str], Any] = {}
        for dotted, original in expected.items():
            now = _current(dotted, classes)
            if now is not original and not (isinstance(original, frozenset) and now == original):
                self._flag(f"replaced {dotted.replace('.<names>', ' (members)')}", where)

    def _builtins_unchanged(self) -> bool:
        """Every recorded builtin is still the same object (what the loop in ``check`` would
        find name by name, in one pass in C)."""
        now = map(vars(builtins).get, self._builtin_names)
        return all(map(operator.is_, now, self._builtin_values))

    def check_measurement(self, item: Any) -> None:
        """Before a test's measurement is read: the machinery and the benchmark's numbers."""
        where = f"in {item.nodeid}"
        self.check(where, clocks=False)
        fixture = getattr(item, "funcargs", {}).get("benchmark")
        if fixture is None or not self.armed:
            return
        for problem in self._benchmark_problems(fixture):
            self._flag(problem, where)

    def _benchmark_problems(self, fixture: Any) -> list[str]:
        fixture_cls = self.measuring.get("pytest_benchmark.fixture.BenchmarkFixture")
        stats_cls = self.measuring.get("pytest_benchmark.stats.Stats")
        metadata_cls = self.measuring.get("pytest_benchmark.stats.Metadata")
        if fixture_cls is None or stats_cls is None:
            return []
        if type(fixture) is not fixture_cls:
            return ["the benchmark fixture was replaced"]
        problems = [
            f"the benchmark fixture's {name} was overridden"
            for name in vars(fixture)
            if name in vars(fixture_cls)
        ]
        timer = vars(fixture).get("_timer")
        if not any(timer is t for t in self.timers):
            problems.append("the benchmark fixture's timer was replaced")
        metadata = vars(fixture).get("stats")
        if metadata is None:
            return problems
        stats = getattr(metadata, "stats", None)
        if type(metadata) is not metadata_cls or type(stats) is not stats_cls:
            return [*problems, "the benchmark's statistics object was replaced"]
        if type(stats.data) is not list or not all(type(x) is float for x in stats.data):
            return [*problems, "the benchmark's samples were replaced"]
        return problems + _forged_statistics(stats, stats_cls)


def _forged_statistics(stats: Any, stats_cls: type) -> list[str]:
    """Cached statistics that the raw samples do not give (a value planted in the cache)."""
    cached = {k: v for k, v in vars(stats).items() if k != "data"}
    if not cached or not stats.data:
        return []
    fresh = stats_cls()
    fresh.data = list(stats.data)
    problems = []
    for name, value in cached.items():
        try:
            expected = getattr(fresh, name)
        except Exception:
            continue
        same = value == expected if name == "sorted_data" else _close(value, expected)
        if not same:
            problems.append(f"the benchmark statistic {name!r} does not match its samples")
    return problems


def _close(value: Any, expected: Any) -> bool:
    try:
        a, b = float(value), float(expected)
    except (TypeError, ValueError):
        return value == expected
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


_CLASS_NOISE = {"__dict__", "__weakref__", "__doc__", "__module__", "__annotations__"}


def _lookup(module: str, dotted: str) -> Any:
    obj: Any = sys.modules.get(module, _MISSING)
    for part in dotted.split("."):
        if obj is _MISSING:
            return _MISSING
        obj = vars(obj).get(part, _MISSING) if hasattr(obj, "__dict__") else _MISSING
    return obj


def _identities(pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    found = {f"{m}.{n}": _lookup(m, n) for m, n in pairs}
    return {k: v for k, v in found.items() if v is not _MISSING}


def _current(dotted: str, classes: dict[tuple[str, str], Any]) -> Any:
    """What ``dotted`` names now; ``classes``: the members of classes looked up so far
    in this check (one lookup per class, not one per member)."""
    if dotted.startswith("builtins."):
        return vars(builtins).get(dotted[len("builtins."):], _MISSING)
    member = _class_member(dotted)
    if member is not None:
        module, name, attribute = member
        members = classes.get((module, name))
        if members is None:
            cls = _lookup(module, name)
            members = classes[(module, name)] = vars(cls) if isinstance(cls, type) else {}
        if attribute == "<names>":
            return frozenset(k for k in members if k not in _CLASS_NOISE)
        return members.get(attribute, _MISSING)
    module, _, name = dotted.rpartition(".")
    while module and module not in sys.modules:
        module, _, head = module.rpartition(".")
        name = f"{head}.{name}"
    return _lookup(module, name)


@functools.cache
def _class_member(dotted: str) -> tuple[str, str, str] | None:
    """(module, class, attribute) when ``dotted`` names a member of one of ``CLASSES``."""
    for module, name in CLASSES:
        prefix = f"{module}.{name}."
        if dotted.startswith(prefix):
            return module, name, dotted[len(prefix):]
    return None


# -- static scan ---------------------------------------------------------------------------

#: Modules whose attributes a target module must never assign.
PROTECTED_MODULES = (
    "time", "timeit", "pytest", "_pytest", "pytest_benchmark", "pytest_aide", "builtins", "gc",
)
#: Modules that reach native memory: a candidate that adds them could rewrite anything.
NATIVE_MODULES = ("ctypes", "_ctypes", "cffi")
#: Strings whose use tells a candidate that it is measured, or lets it read other processes.
_WATCHED_STRINGS = {
    "PYTEST_CURRENT_TEST": "reads which test is running (PYTEST_CURRENT_TEST)",
    "PYTEST_AIDE": "reads the optimizer's variables (PYTEST_AIDE_*)",
    "/proc/": "reads /proc entries (its own memory or other processes)",
}
#: Modules a target module has no business importing: the test framework itself.
FRAMEWORK_MODULES = ("pytest", "_pytest", "pytest_benchmark", "pytest_aide", "pluggy")
_FRAME_CALLS = {
    "sys._getframe": "reaches into its callers' frames",
    "sys._current_frames": "reaches into other threads' frames",
    "inspect.currentframe": "reaches into its callers' frames",
    "inspect.stack": "reaches into its callers' frames",
    "inspect.getouterframes": "reaches into its callers' frames",
    "inspect.trace": "reaches into its callers' frames",
    "traceback.walk_stack": "reaches into its callers' frames",
    "gc.get_objects": "searches the heap for other code's objects",
    "gc.get_referrers": "searches the heap for other code's objects",
    "gc.get_referents": "searches the heap for other code's objects",
    "sys.settrace": "installs a trace hook",
    "sys.setprofile": "installs a profile hook",
    "threading.settrace": "installs a trace hook",
    "threading.setprofile": "installs a profile hook",
    "sys.addaudithook": "installs an audit hook",
    "sys.monitoring.register_callback": "installs a monitoring hook",
}
_SETATTR = {
    "setattr", "delattr", "builtins.setattr", "builtins.delattr", "object.__setattr__",
    "object.__delattr__", "type.__setattr__", "type.__delattr__",
}
_FRAME_ATTRIBUTES = {"f_back", "f_locals", "f_globals", "tb_frame", "gi_frame", "cr_frame"}


def _root(module: str) -> str:
    return module.split(".")[0]


class _Scanner(ast.NodeVisitor):
    def __init__(self) -> None:
        self.findings: list[tuple[int, str]] = []
        self.aliases: dict[str, str] = {"__builtins__": "builtins"}

    def flag(self, node: ast.AST, message: str) -> None:
        self.findings.append((getattr(node, "lineno", 0), message))

    def dotted(self, node: ast.AST) -> str | None:
        """``a.b.c`` with ``a`` replaced by the module it was imported as, or None."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        head = self.aliases.get(node.id, node.id)
        return ".".join([head, *reversed(parts)])

    # imports
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                self.aliases[alias.name.split(".")[0]] = alias.name.split(".")[0]
            self._framework_import(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level == 0:
            for alias in node.names:
                if alias.name != "*":
                    self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
            self._framework_import(node, module)

    def _framework_import(self, node: ast.AST, module: str) -> None:
        if _root(module) in FRAMEWORK_MODULES:
            self.flag(node, f"imports {module} (the test framework) into the target module")
        if _root(module) in NATIVE_MODULES:
            self.flag(node, f"reaches native memory (imports {_root(module)})")

    # strings that name what a measured run must not look at
    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            for marker, message in _WATCHED_STRINGS.items():
                # "/proc" alone is a way in too (Path("/proc").iterdir())
                if marker in node.value or node.value.rstrip("/") == marker.rstrip("/"):
                    self.flag(node, message)

    # assignments
    def _target(self, target: ast.AST, verb: str) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for element in target.elts:
                self._target(element, verb)
            return
        if isinstance(target, ast.Starred):
            self._target(target.value, verb)
            return
        if isinstance(target, ast.Subscript):
            base = target.value
            if isinstance(base, ast.Call) and self.dotted(base.func) == "vars" and base.args:
                base = base.args[0]  # vars(time)["perf_counter"] = ...
            name = self.imported(base)
            if name and self._is_sys_modules(name):
                self.flag(target, f"{verb} an entry of sys.modules")
            elif name and _root(name) in PROTECTED_MODULES:
                self.flag(target, f"{verb} an item of {name}")
        elif isinstance(target, ast.Attribute):
            name = self.imported(target)
            if name and (_root(name) in PROTECTED_MODULES or self._is_sys_modules(name)):
                self.flag(target, f"{verb} {name}")
        elif isinstance(target, ast.Name) and target.id == "__builtins__":
            self.flag(target, f"{verb} __builtins__")

    def imported(self, node: ast.AST) -> str | None:
        """:meth:`dotted`, only when its first name was bound by an import."""
        head = node
        while isinstance(head, ast.Attribute):
            head = head.value
        if isinstance(head, ast.Name) and head.id in self.aliases:
            return self.dotted(node)
        return None

    @staticmethod
    def _is_sys_modules(name: str) -> bool:
        return name == "sys.modules" or name.startswith("sys.modules.")

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._target(target, "assigns")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._target(node.target, "assigns")
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._target(node.target, "assigns")
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self._target(target, "deletes")
        self.generic_visit(node)

    # calls and attributes
    def visit_Call(self, node: ast.Call) -> None:
        name = self.dotted(node.func)
        if name in _FRAME_CALLS:
            self.flag(node, f"calls {name} ({_FRAME_CALLS[name]})")
        elif name in _SETATTR and node.args:
            subject = self.imported(node.args[0])
            if subject and (_root(subject) in PROTECTED_MODULES or self._is_sys_modules(subject)):
                self.flag(node, f"calls {name.split('.')[-1]} on {subject}")
        elif name and self._is_sys_modules(name) and name.rsplit(".", 1)[-1] in {
            "pop", "update", "setdefault", "__setitem__", "__delitem__", "clear", "popitem"
        }:
            self.flag(node, "changes sys.modules")
        elif name in {"__import__", "builtins.__import__", "importlib.import_module"}:
            self._dynamic_import(node)
        self.generic_visit(node)

    def _dynamic_import(self, node: ast.Call) -> None:
        argument = node.args[0] if node.args else None
        if not isinstance(argument, ast.Constant) or not isinstance(argument.value, str):
            self.flag(node, "imports a module whose name is computed at run time")
        elif _root(argument.value) in FRAMEWORK_MODULES:
            self._framework_import(node, argument.value)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        name = self.dotted(node.value)
        if name and self._is_sys_modules(name) and isinstance(node.ctx, ast.Load):
            key = node.slice
            if isinstance(key, ast.Name) and key.id == "__name__":
                pass  # the module itself
            elif not isinstance(key, ast.Constant) or _root(str(key.value)) in {
                *PROTECTED_MODULES, "sys", "random", "math"
            }:
                self.flag(node, "reads sys.modules to reach another module")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in _FRAME_ATTRIBUTES:
            self.flag(node, f"reads .{node.attr} (reaches into another frame)")
        self.generic_visit(node)


def _scan(code: str) -> list[tuple[int, str]]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []  # the child reports the syntax error itself
    scanner = _Scanner()
    # Imports anywhere bind names for the whole module: collect them before judging uses.
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            scanner.visit(node)
    scanner.findings.clear()
    scanner.visit(tree)
    return sorted(set(scanner.findings))


def scan_source(code: str) -> list[str]:
    """Each place where ``code`` reaches into measuring machinery: ``"line N: what"``."""
    return [f"line {line}: {message}" for line, message in _scan(code)]


def new_findings(code: str, original: str | None) -> list[str]:
    """:func:`scan_source` of a candidate, less what the original module already does."""
    known = Counter(message for _, message in _scan(original)) if original else Counter()
    found = []
    for line, message in _scan(code):
        if known[message]:
            known[message] -= 1
        else:
            found.append(f"line {line}: {message}")
    return found
