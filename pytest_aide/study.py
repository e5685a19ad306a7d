"""From collected test items to studies: what to optimize, how it is judged.

A study is one target module with its objectives (the marked tests and their metrics) and
its guard tests (everything that must keep passing). Marker mistakes are found here, at
collection, so that a wrong marker stops the run before any test or proposal costs time.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import sys
import sysconfig
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_aide import symbols
from pytest_aide.metrics import BENCHMARK_STATS

MARKER = "optimize"


class MarkerError(pytest.UsageError):
    """A marker that cannot be used as written; the message names the test and the fix."""


@dataclass(frozen=True)
class Target:
    """The module being optimized: its import name and its file; and, for a function or
    class target, the definition's qualified name (``func``, ``Class.method``) inside it:
    the candidate is still the whole file, but only that definition may change."""

    module: str
    path: Path
    symbol: str = ""

    @property
    def name(self) -> str:
        """``pkg.mod`` or ``pkg.mod:Class.method``, as the marker would spell it."""
        return f"{self.module}:{self.symbol}" if self.symbol else self.module

    def relpath(self, rootdir: Path) -> str:
        try:
            return self.path.relative_to(rootdir).as_posix()
        except ValueError:
            return str(self.path)


@dataclass(frozen=True)
class Objective:
    """One marked test and the metric it is judged by."""

    nodeid: str
    metric: str
    maximize: bool

    @property
    def direction(self) -> str:
        return "higher is better" if self.maximize else "lower is better"


@dataclass
class Study:
    """One target with the tests that measure it and the tests that guard it."""

    target: Target
    objectives: list[Objective] = field(default_factory=list)
    guard_nodeids: list[str] = field(default_factory=list)
    test_files: list[Path] = field(default_factory=list)
    #: What the markers say of replaying the original's recorded answers against candidates
    #: (False when any says ``compare=False``, True when one says ``compare=True``, None when
    #: none says: ``replays_answers`` decides), and the tolerance they ask for.
    compare: bool | None = None
    rtol: float | None = None
    atol: float | None = None
    #: With ``target=[...]``: the other targets, changed together with ``target`` (the
    #: primary: the first in the list, whose module the replay and fresh inputs follow).
    also: tuple[Target, ...] = ()

    @property
    def targets(self) -> tuple[Target, ...]:
        """Every target, the primary first: the files a candidate holds."""
        return (self.target, *self.also)

    def relpaths(self, rootdir: Path) -> list[str]:
        """The targets' paths relative to the rootdir, the primary first."""
        return [t.relpath(rootdir) for t in self.targets]

    @property
    def timed(self) -> bool:
        """Some marked test measures speed (a pytest-benchmark statistic)."""
        return any(o.metric in BENCHMARK_STATS for o in self.objectives)

    @property
    def replays_answers(self) -> bool:
        """Candidates must give the original's answers: by default when a speed is measured
        (a faster candidate must do the same work); not when every metric is a score
        (accuracy, a prompt's success rate), which a better candidate earns by answering
        differently, unless a marker asks with ``compare=True``."""
        return self.compare if self.compare is not None else self.timed

    @property
    def nodeids(self) -> list[str]:
        """Every test the evaluator runs: the guards, which include the marked tests."""
        return list(dict.fromkeys([*self.guard_nodeids, *(o.nodeid for o in self.objectives)]))


@dataclass(frozen=True)
class MarkerSpec:
    metric: str
    maximize: bool
    target: Any
    compare: bool | None = None  # None: Study.replays_answers decides
    rtol: float | None = None
    atol: float | None = None
    inputs: Any = None


def parse_marker(item: pytest.Item) -> MarkerSpec | None:
    """Read and check the ``optimize`` marker of one item (None when unmarked)."""
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return None
    kwargs = dict(marker.kwargs)
    args = list(marker.args)
    metric = kwargs.pop("metric", args.pop(0) if args else None)
    maximize = kwargs.pop("maximize", args.pop(0) if args else None)
    target = kwargs.pop("target", args.pop(0) if args else None)
    inputs = kwargs.pop("inputs", None)
    compare = kwargs.pop("compare", None)
    tolerance = {name: kwargs.pop(name, None) for name in ("rtol", "atol")}
    where = item.nodeid
    if args or kwargs:
        extra = ", ".join([*map(repr, args), *kwargs])
        raise MarkerError(
            f"{where}: @pytest.mark.optimize got unexpected arguments: {extra}. "
            "It takes metric, maximize, target, inputs, compare, rtol and atol."
        )
    _check_comparison(where, compare, tolerance)
    _check_inputs(where, inputs)
    if not isinstance(metric, str) or not metric:
        raise MarkerError(
            f"{where}: @pytest.mark.optimize needs a metric, e.g. "
            '@pytest.mark.optimize(metric="mean") for a pytest-benchmark statistic or '
            '@pytest.mark.optimize(metric="accuracy", maximize=True) for a value the test '
            "records with record_property."
        )
    if maximize is None:
        if metric not in BENCHMARK_STATS:
            raise MarkerError(
                f"{where}: metric {metric!r} is not a pytest-benchmark statistic, so its "
                f"direction is unknown: add maximize=True (higher is better) or "
                f"maximize=False (lower is better) to @pytest.mark.optimize."
            )
        maximize = BENCHMARK_STATS[metric]
    if not isinstance(maximize, bool):
        raise MarkerError(f"{where}: maximize must be True or False, not {maximize!r}.")
    return MarkerSpec(metric=metric, maximize=maximize, target=target, compare=compare,
                      inputs=inputs, **tolerance)


def _combined_compare(so_far: bool | None, marker: bool | None) -> bool | None:
    """One marker's ``compare=False`` turns the replay off; else one ``compare=True`` on."""
    if so_far is False or marker is False:
        return False
    return True if (so_far or marker) else None


def _check_inputs(where: str, inputs: Any) -> None:
    """``inputs=``: a callable or a Hypothesis strategy (checked by its module: Hypothesis is
    imported only by test files that use it)."""
    if inputs is None or callable(inputs) or type(inputs).__module__.startswith("hypothesis."):
        return
    raise MarkerError(
        f"{where}: inputs= must be a callable that takes a random.Random and returns one "
        "call's arguments (a tuple of positional arguments, or a dict of keyword arguments), "
        f"or a Hypothesis strategy of them; got {inputs!r}."
    )


def _check_comparison(where: str, compare: Any, tolerance: dict[str, Any]) -> None:
    if compare is not None and not isinstance(compare, bool):
        raise MarkerError(f"{where}: compare must be True or False, not {compare!r}.")
    for name, value in tolerance.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not value >= 0):
            raise MarkerError(
                f"{where}: {name} must be a number 0 or more (e.g. {name}=1e-6), not {value!r}."
            )


# -- targets -----------------------------------------------------------------------------


def _excluded_dirs() -> list[Path]:
    paths = {sysconfig.get_paths().get(k) for k in ("purelib", "platlib", "stdlib", "platstdlib")}
    return [Path(p).resolve() for p in paths if p]


def _is_project_file(path: Path, rootdir: Path) -> bool:
    try:
        path.relative_to(rootdir)
    except ValueError:
        return False
    if any(part in {"site-packages", ".venv", "venv", ".tox"} for part in path.parts):
        return False
    return not any(_is_under(path, d) for d in _excluded_dirs())


def _is_under(path: Path, directory: Path) -> bool:
    try:
        path.relative_to(directory)
        return True
    except ValueError:
        return False


def _is_test_file(path: Path) -> bool:
    name = path.name
    return name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py")


def _module_file(module: types.ModuleType) -> Path | None:
    file = getattr(module, "__file__", None)
    if not file or not str(file).endswith(".py"):
        return None
    return Path(file).resolve()


def _target_of_module(module: types.ModuleType) -> Target | None:
    path = _module_file(module)
    if path is None:
        return None
    return Target(module=module.__name__, path=path)


def _module_name_for_path(path: Path) -> str | None:
    """The import name under which ``path`` is (or would be) imported."""
    for module in list(sys.modules.values()):
        if isinstance(module, types.ModuleType) and _module_file(module) == path:
            return module.__name__
    candidates = []
    for entry in sys.path:
        base = Path(entry or ".").resolve()
        try:
            rel = path.relative_to(base)
        except ValueError:
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts and all(p.isidentifier() for p in parts):
            candidates.append(".".join(parts))
    for name in sorted(candidates, key=len):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue
        if spec and spec.origin and Path(spec.origin).resolve() == path:
            return name
    return None


def resolve_targets(spec: Any, item: pytest.Item, rootdir: Path) -> tuple[Target, ...]:
    """The marker's ``target``: one, or each member of a list or tuple (in its order, the
    first the primary); two members in one file are refused, as are an empty list and a
    nested one."""
    if not isinstance(spec, (list, tuple)):
        return (resolve_target(spec, item, rootdir),)
    where = item.nodeid
    if not spec:
        raise MarkerError(f"{where}: target=[] names no target; give one or more modules or "
                          "functions, e.g. target=['pkg.kernel', 'pkg.caller:run'].")
    targets: list[Target] = []
    for member in spec:
        if member is None or isinstance(member, (list, tuple)):
            raise MarkerError(f"{where}: each member of target=[...] must be a module, a "
                              f"path or a function or class; got {member!r}.")
        target = resolve_target(member, item, rootdir)
        same = next((t for t in targets if t.path == target.path), None)
        if same is not None:
            raise MarkerError(
                f"{where}: target=[...] names {target.path.name} twice ({same.name!r} and "
                f"{target.name!r}); one member per file: give the module to change several "
                "of its definitions together.")
        targets.append(target)
    return tuple(targets)


def resolve_target(spec: Any, item: pytest.Item, rootdir: Path) -> Target:
    """Turn the marker's ``target`` (or its absence) into a Target, or explain the failure."""
    where = item.nodeid
    if spec is None:
        return infer_target(item, rootdir)
    symbol = ""
    if isinstance(spec, str):
        spec, symbol = symbols.split(spec)
    if isinstance(spec, types.ModuleType):
        target = _module_target(spec, where)
    elif inspect.isfunction(spec) or inspect.isclass(spec) or callable(spec):
        target, symbol = _object_target(spec, where)
    elif isinstance(spec, (str, Path)):
        target = _named_target(str(spec), where, rootdir)
    else:
        raise MarkerError(
            f"{where}: target must be a module name, a path, a module, a function or a class "
            f"(or 'pkg.module:function'); got {spec!r}."
        )
    return _with_symbol(target, symbol, where) if symbol else target


def _module_target(module: types.ModuleType, where: str) -> Target:
    target = _target_of_module(module)
    if target is None:
        raise MarkerError(
            f"{where}: target module {module.__name__!r} has no Python source file to optimize."
        )
    return target


def _named_target(text: str, where: str, rootdir: Path) -> Target:
    """A target given as a path relative to the rootdir or as a dotted module name."""
    if text.endswith(".py") or "/" in text or "\\" in text:
        path = (rootdir / text).resolve()
        if not path.is_file():
            raise MarkerError(
                f"{where}: target file {text!r} does not exist (paths are relative to the "
                f"rootdir {rootdir}). Give a path such as 'src/pkg/module.py' or a dotted "
                "module name."
            )
        name = _module_name_for_path(path)
        if name is None:
            raise MarkerError(
                f"{where}: target file {text!r} is not importable from the test's sys.path; "
                "give its dotted module name instead (e.g. target='pkg.module')."
            )
        return Target(module=name, path=path)
    try:
        module = importlib.import_module(text)
    except Exception as exc:
        raise MarkerError(
            f"{where}: target module {text!r} cannot be imported ({type(exc).__name__}: "
            f"{exc}). Give a dotted module name importable by the tests, a path relative "
            "to the rootdir, or the module/function object itself."
        ) from None
    return _module_target(module, where)


def _object_target(obj: Any, where: str) -> tuple[Target, str]:
    """A function, method or class: its module, and its qualified name when it is a
    definition of that module's source (another callable names its module only)."""
    func = getattr(obj, "__func__", obj)  # a bound method: the function it binds
    module = sys.modules.get(getattr(func, "__module__", "") or "", None)
    if module is None:
        raise MarkerError(f"{where}: cannot tell which module defines target {obj!r}.")
    target = _module_target(module, where)
    qualname = getattr(func, "__qualname__", None)
    if not (inspect.isfunction(func) or inspect.isclass(func)) or not isinstance(qualname, str):
        return target, ""
    if "<locals>" in qualname:
        raise MarkerError(
            f"{where}: target {qualname} is defined inside a function; only a module's "
            "top-level functions and classes, and their methods, can be targets. Move it to "
            f"the top level of {target.module}, or give target={target.module!r} to optimize "
            "the whole module."
        )
    return target, qualname


def _with_symbol(target: Target, symbol: str, where: str) -> Target:
    """The target narrowed to one definition, which its file must define with ``def`` or
    ``class`` (the span that the prompt shows and a candidate may change)."""
    try:
        source = target.path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MarkerError(f"{where}: cannot read the target file {target.path}: {exc}") from None
    if symbols.find(source, symbol) is None:
        names = symbols.top_level_names(source)
        listing = f" (its top-level functions and classes: {', '.join(names)})" if names else ""
        example = f"{target.module}:{names[0]}" if names else f"{target.module}:function"
        raise MarkerError(
            f"{where}: target {target.module}:{symbol} names no function or class that "
            f"{target.path.name} defines with def or class{listing}. Name one "
            f"(target={example!r}; a method as 'module:Class.method'), or give "
            f"target={target.module!r} to optimize the whole module."
        )
    return Target(module=target.module, path=target.path, symbol=symbol)


def _imported_names(source: bytes) -> list[tuple[str, str | None]]:
    """(bound name, dotted module for ``import x.y``) for each import in a test module."""
    names: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names.append((alias.asname, alias.name))
                else:
                    names.append((alias.name.split(".")[0], alias.name))
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name != "*":
                    names.append((alias.asname or alias.name, None))
    return names


def infer_target(item: pytest.Item, rootdir: Path) -> Target:
    """The one project module the test module imports, or a usage error listing candidates."""
    module = getattr(item, "module", None)
    test_path = Path(str(item.path)).resolve()
    found: dict[str, Target] = {}
    if module is not None:
        try:
            imported = _imported_names(test_path.read_bytes())
        except (OSError, SyntaxError, ValueError):
            imported = []
        for bound, dotted in imported:
            obj: Any = sys.modules.get(dotted) if dotted else None
            if obj is None:
                obj = module.__dict__.get(bound)
            if obj is None:
                continue
            if isinstance(obj, types.ModuleType):
                candidate = obj
            else:
                candidate = sys.modules.get(getattr(obj, "__module__", "") or "")
            if not isinstance(candidate, types.ModuleType):
                continue
            target = _target_of_module(candidate)
            if target is None or target.path == test_path:
                continue
            if _is_project_file(target.path, rootdir) and not _is_test_file(target.path):
                found[target.module] = target
    # ``import pkg.sub`` binds pkg as well: keep the deepest module of a chain.
    for name in list(found):
        if any(other != name and other.startswith(name + ".") for other in found):
            del found[name]
    if len(found) == 1:
        return next(iter(found.values()))
    if not found:
        raise MarkerError(
            f"{item.nodeid}: cannot infer what to optimize: the test module imports no module "
            "of this project. Name it: @pytest.mark.optimize(..., target='pkg.module')."
        )
    listing = ", ".join(sorted(found))
    raise MarkerError(
        f"{item.nodeid}: cannot infer what to optimize: the test module imports several "
        f"project modules ({listing}). Name one: @pytest.mark.optimize(..., "
        f"target={sorted(found)[0]!r})."
    )


# -- studies -----------------------------------------------------------------------------


def build_studies(items: list[pytest.Item], rootdir: Path) -> list[Study]:
    """Group marked items by target; guards are every selected test in the marked files."""
    studies: dict[Path, Study] = {}
    for item in items:
        spec = parse_marker(item)
        if spec is None:
            continue
        target, *also = resolve_targets(spec.target, item, rootdir)
        study = studies.setdefault(target.path, Study(target=target, also=tuple(also)))
        if study.also != tuple(also):
            raise MarkerError(
                f"{item.nodeid}: the markers of {target.path.name} name different lists of "
                f"targets ({[t.name for t in study.targets]} and "
                f"{[t.name for t in (target, *also)]}); give the same target= in each marker.")
        if study.target.module != target.module:
            raise MarkerError(
                f"{item.nodeid}: the target file {target.path} is imported under two names "
                f"({study.target.module!r} and {target.module!r}); give one in target=."
            )
        if study.target.symbol != target.symbol:
            raise MarkerError(
                f"{item.nodeid}: the markers of {target.path.name} name different targets in "
                f"it ({study.target.name!r} and {target.name!r}); one run optimizes one target "
                "per file: give the same target= in each marker."
            )
        study.objectives.append(
            Objective(nodeid=item.nodeid, metric=spec.metric, maximize=spec.maximize)
        )
        study.compare = _combined_compare(study.compare, spec.compare)
        study.rtol = _loosest(study.rtol, spec.rtol)
        study.atol = _loosest(study.atol, spec.atol)
        path = Path(str(item.path)).resolve()
        if path not in study.test_files:
            study.test_files.append(path)
    _check_disjoint(list(studies.values()))
    for study in studies.values():
        files = set(study.test_files)
        study.guard_nodeids = [
            item.nodeid for item in items if Path(str(item.path)).resolve() in files
        ]
    return list(studies.values())


def _check_disjoint(studies: list[Study]) -> None:
    """A file is a target of one run only: two runs would each write it."""
    owner: dict[Path, Study] = {}
    for study in studies:
        for target in study.targets:
            other = owner.setdefault(target.path, study)
            if other is not study:
                raise MarkerError(
                    f"{study.objectives[0].nodeid}: {target.path.name} is a target of the "
                    f"markers of {other.objectives[0].nodeid} too (targets "
                    f"{[t.name for t in other.targets]} and {[t.name for t in study.targets]}"
                    "); a file can be optimized by one run only: give both markers the same "
                    "target=[...].")


def _loosest(first: float | None, second: float | None) -> float | None:
    """Two markers of one target ask for a tolerance: the looser holds for both."""
    given = [t for t in (first, second) if t is not None]
    return max(given) if given else None


# -- the suite a guard may come from -----------------------------------------------------

#: Directories never searched for tests (pytest's own defaults, and environments).
_NOT_TESTS = {"node_modules", "__pycache__", "build", "dist", "site-packages", "CVS", "_darcs",
              "{arch}"}


def suite_files(roots: list[Path], patterns: list[str], module: str) -> list[Path]:
    """Test files under ``roots`` (the configured ``testpaths``, or the rootdir) whose source
    imports ``module``'s top-level package, or, inside that package, imports relatively: the
    files whose tests may run the target's code. A cheap look at the source, so that the
    guard probe does not run a whole unrelated suite (a monorepo's, or this one's around its
    examples); coverage then decides which of their tests really run the target."""
    top = module.split(".")[0]
    found: dict[Path, None] = {}
    for root in roots:
        files = [root] if root.is_file() else _test_files(root, patterns)
        for path in files:
            if _imports(path, top):
                found[path.resolve()] = None
    return list(found)


def _test_files(root: Path, patterns: list[str]) -> list[Path]:
    import fnmatch
    import os

    out = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(
            d for d in subdirs
            if not d.startswith(".") and d not in _NOT_TESTS
            and not (Path(directory, d) / "pyvenv.cfg").exists()
        )
        out += [Path(directory, f) for f in sorted(files)
                if f.endswith(".py") and any(fnmatch.fnmatch(f, p) for p in patterns)]
    return out


def _imports(path: Path, top: str) -> bool:
    try:
        tree = ast.parse(path.read_bytes())  # bytes: ast honours the coding declaration
    except (OSError, SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == top for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (
            (node.level == 0 and (node.module or "").split(".")[0] == top)
            or (node.level > 0 and top in path.parts)
        ):
            return True
    return False
