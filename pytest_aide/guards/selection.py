"""Which tests guard a candidate: chosen by what they execute, not by the file they are in.

With ``--aide-guards auto`` (the default) the suite's tests that may reach the target are run
once on the original under coverage (the guard probe); every one during which a line of the
target ran, and that passed there, must pass on every candidate, as must the tests in the
marked tests' own files (the selection the user made: one that fails there stops the run).
A correctness test kept in another file than the benchmark guards it all the same.
``files`` is the older rule (the tests in the marked tests' files), ``selected`` exactly the
tests the command line selected.

A test that skips, xfails or xpasses on the original guards nothing, and one that fails
there cannot be asked of a candidate: they are counted for the header, never run against
candidates, and (a non-strict XPASS among them) never block the run.

So that a large suite stays affordable, the probe also maps each test to the target's
functions it ran, and a candidate's evaluation runs only the guards that ran a function it
changed (as pytest-testmon selects tests): ``changed_functions`` compares the two modules'
ASTs and gives up (every guard) on any change outside a function body that could reach
unchanged code. The screen runs the other guards before a candidate becomes the best.
"""

from __future__ import annotations

import ast
import builtins
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum


class GuardMode(Enum):
    AUTO = "auto"
    FILES = "files"
    SELECTED = "selected"


#: Outcomes on the original that leave a test out of the guards, as the header words them.
LEFT_OUT = {"skipped": "skip", "xfailed": "xfail", "xpassed": "xpass", "failed": "fail",
            "error": "error", "not run": "do not run"}


#: How many guard files the header names (the rest are counted).
NAMED_FILES = 6


@dataclass(frozen=True)
class GuardChoice:
    """The guards, and what the header says about how they were chosen."""

    mode: GuardMode
    #: Tests every candidate must pass (besides the marked tests).
    guards: tuple[str, ...]
    #: Tests the probe ran (the part of the suite that may reach the target).
    suite: int = 0
    #: Tests that ran the target's code but guard nothing, by their outcome on the original.
    left_out: dict[str, int] = field(default_factory=dict)
    #: Each candidate runs only the guards that ran the functions it changed.
    per_candidate: bool = False

    def files(self) -> list[str]:
        return sorted({nodeid.split("::")[0] for nodeid in self.guards})

    def header(self, target: str) -> str:
        """E.g. "guards: 37 tests in 2 files (tests/test_a.py, tests/test_b.py) (the marked
        tests' files, and the suite's tests that run core.py: coverage of 120 tests;
        --aide-guards to change); 2 that xfail on the original are not guards"."""
        count = len(self.guards)
        files = self.files()
        what = (f"{count} test{'s' if count != 1 else ''} in {len(files)} "
                f"file{'s' if len(files) != 1 else ''}")
        if files:  # named: a user sees which of their test files judge the candidates
            more = f" and {len(files) - NAMED_FILES} more" if len(files) > NAMED_FILES else ""
            what += f" ({', '.join(files[:NAMED_FILES])}{more})"
        if self.mode is GuardMode.AUTO:
            how = (f"(the marked tests' files, and the suite's tests that run {target}: "
                   f"coverage of {self.suite} test{'s' if self.suite != 1 else ''}; "
                   "--aide-guards to change)")
        elif self.mode is GuardMode.FILES:
            how = "in the marked tests' files (--aide-guards files)"
        else:
            how = "selected on the command line (--aide-guards selected)"
        parts = [f"guards: {what} {how}"]
        if self.per_candidate:
            parts.append("a candidate runs those that ran the functions it changes (all, "
                         "when it changes other code), every one before it becomes the best")
        skipped = [f"{n} that {LEFT_OUT.get(outcome, outcome)} on the original"
                   for outcome, n in sorted(self.left_out.items())]
        if skipped:
            parts.append(", ".join(skipped) + " are not guards")
        return "; ".join(parts)

    def only_marked(self) -> bool:
        """No test but the marked ones guards: a wrong candidate that keeps the metric passes."""
        return not self.guards


def choose(mode: GuardMode, outcomes: dict[str, str], marked: list[str],
           executed: list[str] | None = None) -> GuardChoice:
    """The guards among ``outcomes`` (each candidate test's outcome on the original): with
    ``executed`` (the probe's coverage), only the tests during which the target ran."""
    reaching = [n for n in outcomes if n not in marked
                and (executed is None or n in set(executed))]
    guards = tuple(n for n in reaching if outcomes[n] == "passed")
    left_out = Counter(outcomes[n] for n in reaching if outcomes[n] != "passed")
    return GuardChoice(mode=mode, guards=guards, suite=len(outcomes), left_out=dict(left_out))


# -- per candidate: the guards that ran what it changed ----------------------------------

#: The functions a test ran, as the probe maps them: this key holds those that ran while the
#: module was imported (no test's doing: a change to one of them may change any test).
AT_IMPORT = ""


def function_spans(source: str) -> list[tuple[int, int, str]]:
    """``(first line, last line, qualname)`` of the body of each function defined at the
    module's top level or in a top-level class (``f``, ``Class.method``); a nested function
    or class is part of the function that holds it. The ``def`` line and the decorators run
    when the module is imported, not when the function is called: they are left out."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    spans = []
    for statement in tree.body:
        for qualname, node in _functions(statement):
            body = node.body  # type: ignore[attr-defined]
            spans.append((body[0].lineno, node.end_lineno or body[0].lineno, qualname))
    return spans


def functions_run(spans: list[tuple[int, int, str]], lines: set[int]) -> list[str]:
    """The functions of ``spans`` in which any of ``lines`` lies."""
    return sorted({name for first, last, name in spans if any(first <= n <= last for n in lines)})


def changed_functions(original: str, candidate: str) -> frozenset[str] | None:
    """The functions a candidate changed, added or removed (qualnames); None when it changed
    anything else (imports, constants, class attributes, a class's set of methods, a new
    function that shadows a name bound otherwise): then every guard is run. A comment or
    formatting change is no change."""
    try:
        before, after = ast.parse(original), ast.parse(candidate)
    except SyntaxError:
        return None
    old, new = _skeleton(before), _skeleton(after)
    if old is None or new is None or old[0] != new[0]:
        return None
    functions_before, functions_after = old[1], new[1]
    added = set(functions_after) - set(functions_before)
    if any("." in name or name in old[2] or name in new[2] or name in _BUILTIN_NAMES
           for name in added):
        return None  # a method added to a class, or a name that code elsewhere reads
    return frozenset(name for name in set(functions_before) | set(functions_after)
                     if functions_before.get(name) != functions_after.get(name))


_BUILTIN_NAMES = frozenset(dir(builtins))


def _functions(statement: ast.stmt) -> list[tuple[str, ast.AST]]:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return [(statement.name, statement)]
    if isinstance(statement, ast.ClassDef):
        return [(f"{statement.name}.{member.name}", member) for member in statement.body
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return []


def _skeleton(tree: ast.Module) -> tuple[list[str], dict[str, str], set[str]] | None:
    """(everything but the functions, each function's code, the names bound otherwise at the
    top level), all as AST dumps (no line numbers, no comments); None when a name is defined
    twice (which definition wins depends on order)."""
    rest: list[str] = []
    functions: dict[str, str] = {}
    names: set[str] = set()
    for statement in tree.body:
        for qualname, node in _functions(statement):
            if qualname in functions:
                return None
            functions[qualname] = ast.dump(node)
        if isinstance(statement, ast.ClassDef):
            body = [m for m in statement.body
                    if not isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))]
            methods = sorted(n for n, _ in _functions(statement))
            shell = ast.ClassDef(name=statement.name, bases=statement.bases,
                                 keywords=statement.keywords, body=body,
                                 decorator_list=statement.decorator_list)
            rest.append(ast.dump(shell) + repr(methods))
            names.add(statement.name)
        elif not isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            rest.append(ast.dump(statement))
            names.update(names_bound(statement))
    return rest, functions, names


def names_bound(statement: ast.stmt) -> set[str]:
    """Names a top-level statement binds (imports, assignments, loops, with)."""
    found = set()
    for node in ast.walk(statement):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        elif isinstance(node, ast.alias):
            found.add((node.asname or node.name).split(".")[0])
    return found
