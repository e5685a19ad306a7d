"""Candidates that only look different: the same code once comments, docstrings, formatting
and the names of local variables are set aside.

Models often answer with a rewrite that renames locals or adds comments and changes nothing
else. Run in full, such a no-op costs an evaluation, and its noise can pass the screen as an
interim best. Its normal form (``normal_form``) is compared with the evaluated nodes' before
it is run; one that matches is a duplicate and is not run. Treating two different programs as
the same would only skip a candidate, never let a wrong one through, so the rules stay
conservative: parameters keep their names (callers pass them by keyword), as do names declared
``global`` or ``nonlocal``, names the module binds or Python provides (a function may read
those as globals), and every name outside function bodies.
"""

from __future__ import annotations

import ast
import builtins

from pytest_aide.guards.selection import names_bound


def normal_form(source: str) -> str | None:
    """``source`` as an AST dump without docstrings and with each function's local variables
    renamed in order of appearance; None when it does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    _drop_docstrings(tree)
    outside = _module_names(tree) | set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _rename_locals(node, outside)
    return ast.dump(tree, annotate_fields=False)


_WITH_BODY = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _drop_docstrings(tree: ast.Module) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, _WITH_BODY) or not node.body:
            continue
        first = node.body[0]
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                and isinstance(first.value.value, str):
            node.body = node.body[1:] or [ast.Pass()]


def _module_names(tree: ast.Module) -> set[str]:
    """The names the module binds at its top level (definitions, imports, assignments)."""
    names: set[str] = set()
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(statement.name)
            continue
        names.update(names_bound(statement))
    return names


def _rename_locals(function: ast.FunctionDef | ast.AsyncFunctionDef, outside: set[str]) -> None:
    """Rename, throughout the function (nested scopes included, which read its locals by the
    same names), every name it assigns that is not a parameter, declared global/nonlocal, or
    a name from ``outside`` (the module's and Python's)."""
    kept = {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)} | outside
    assigned: list[str] = []
    for node in ast.walk(function):
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            kept.update(node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) \
                and node.id not in assigned:
            assigned.append(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and node is not function:
            kept.add(node.name)  # a nested definition's name: left as it is
    names = {name: f"_local{index}" for index, name in enumerate(
        n for n in assigned if n not in kept)}
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and node.id in names:
            node.id = names[node.id]
