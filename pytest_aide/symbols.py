"""One definition inside a module: where it is, the rest of the module as a short context,
and a new definition put back in its place.

A function or class target (``pkg.mod:func``, ``pkg.mod:Class.method``) is optimized inside
its module: the run's candidate is still the whole file, but a model sees the definition in
full and the rest only as a skeleton, answers with the definition alone, and everything
outside the definition must stay byte-identical. Everything here works on source text with
``ast``, so that the marker's check, the prompt and the splice agree on the same span.
"""

from __future__ import annotations

import ast
import copy
import difflib
import re
import textwrap
from dataclasses import dataclass

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
#: The skeleton's size, in characters: about 1,500 tokens of context around the target.
SKELETON_CHARS = 6000
DOCSTRING_CHARS = 300
STATEMENT_CHARS = 300
_TARGET_MARK = "__aide_target__"
_MORE_MARK = "__aide_more_methods__"


@dataclass(frozen=True)
class Span:
    """Lines ``start`` to ``end`` (0-based, end exclusive) of a definition, its decorators
    included, and the indentation of its ``def``/``class`` line."""

    start: int
    end: int
    indent: str

    def describe(self) -> str:
        return f"lines {self.start + 1}-{self.end}"


@dataclass(frozen=True)
class Change:
    """Lines that differ between a parent and a candidate outside the target's span: the
    parent's lines ``start`` to ``end`` (1-based, inclusive; ``end < start`` when the
    candidate inserted lines before ``start``)."""

    start: int
    end: int

    def describe(self) -> str:
        if self.end < self.start:
            return f"new lines before line {self.start}"
        if self.end == self.start:
            return f"line {self.start}"
        return f"lines {self.start}-{self.end}"


class SpliceError(ValueError):
    """The parent's code does not define the target (it cannot take a new definition)."""


def lines(code: str) -> list[str]:
    """The lines as ``ast`` numbers them (\\n, \\r\\n or \\r), ends kept."""
    return _LINE.findall(code)


def split(text: str) -> tuple[str, str]:
    """``"pkg.mod:Class.method"`` -> ``("pkg.mod", "Class.method")``; no symbol: ``""``."""
    module, sep, symbol = text.rpartition(":")
    if sep and module and symbol and all(part.isidentifier() for part in symbol.split(".")):
        return module, symbol
    return text, ""


def find_node(tree: ast.Module, qualname: str) -> Definition | None:
    """The definition named by ``qualname`` (the last one, as at the end of the import)."""
    body: list[ast.stmt] = tree.body
    node: Definition | None = None
    for part in qualname.split("."):
        found = [n for n in body if isinstance(n, _DEFS) and n.name == part]
        if not found:
            return None
        node = found[-1]
        body = node.body
    return node


def find(code: str, qualname: str) -> Span | None:
    """The span of ``qualname`` in ``code``; None when it is not defined there (or the code
    does not parse)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return None
    node = find_node(tree, qualname)
    return None if node is None else _span(node, lines(code))


def _span(node: Definition, code_lines: list[str]) -> Span:
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    line = code_lines[node.lineno - 1]
    indent = line[: len(line) - len(line.lstrip())]
    return Span(first - 1, node.end_lineno or node.lineno, indent)


def definition(code: str, qualname: str) -> str:
    """The source of ``qualname`` as written, decorators included ("" when absent)."""
    span = find(code, qualname)
    return "" if span is None else "".join(lines(code)[span.start : span.end])


def top_level_names(code: str) -> list[str]:
    """The module's top-level functions and classes, for a message that lists the choices."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    return [n.name for n in tree.body if isinstance(n, _DEFS)]


# -- putting a new definition in place ---------------------------------------------------


def splice(parent: str, qualname: str, block: str) -> tuple[str, bool]:
    """The parent with ``block`` in place of a definition, when ``block`` is one definition
    named along ``qualname`` (``method``, or its class ``Class`` for ``Class.method``),
    re-indented to the place it goes; else ``block`` as a whole module (the caller checks
    what changed outside the target). And whether it was spliced."""
    dedented = textwrap.dedent(block)
    try:
        tree = ast.parse(dedented)
    except (SyntaxError, ValueError):
        return block, False  # the caller's compile check names the error
    parts = qualname.split(".")
    only = tree.body[0] if len(tree.body) == 1 else None
    if not isinstance(only, _DEFS) or only.name not in parts:
        return _same_last_newline(parent, block), False
    level = len(parts) - parts[::-1].index(only.name)
    span = find(parent, ".".join(parts[:level]))
    if span is None:
        raise SpliceError(f"the parent's code does not define `{qualname}`")
    parent_lines = lines(parent)
    newline = _newline(parent_lines[span.end - 1])  # the file's line ends, not the reply's
    block_lines = lines(dedented)
    while block_lines and not block_lines[0].strip():  # blank lines around the reply's
        block_lines.pop(0)                              # definition are not part of it
    while block_lines and not block_lines[-1].strip():
        block_lines.pop()
    new = [(span.indent + line if line.strip() else "").rstrip("\r\n") + newline
           for line in block_lines]
    return "".join([*parent_lines[: span.start], *new, *parent_lines[span.end :]]), True


def _same_last_newline(parent: str, module: str) -> str:
    """A whole module from a fenced block always ends with a newline; a file that does not
    keeps its last line as it was."""
    if parent.endswith(("\n", "\r")) or not module.endswith("\n"):
        return module
    return module[:-2] if module.endswith("\r\n") else module[:-1]


def replace(code: str, qualname: str, text: str) -> str:
    """``code`` with ``qualname``'s span replaced by ``text`` as it is."""
    span = find(code, qualname)
    if span is None:
        raise SpliceError(f"the parent's code does not define `{qualname}`")
    code_lines = lines(code)
    return "".join([*code_lines[: span.start], text, *code_lines[span.end :]])


def _newline(line: str) -> str:
    return line[len(line.rstrip("\r\n")) :] or "\n"


def changes_outside(parent: str, candidate: str, qualname: str) -> list[Change] | None:
    """What the candidate changed outside ``qualname``'s span ([] when nothing); None when
    the candidate no longer defines it."""
    before, after = find(parent, qualname), find(candidate, qualname)
    if after is None:
        return None
    if before is None:
        raise SpliceError(f"the parent's code does not define `{qualname}`")
    old, new = lines(parent), lines(candidate)
    outside_old = old[: before.start] + old[before.end :]
    outside_new = new[: after.start] + new[after.end :]
    numbers = [*range(1, before.start + 1), *range(before.end + 1, len(old) + 2)]
    matcher = difflib.SequenceMatcher(None, outside_old, outside_new, autojunk=False)
    return [
        Change(numbers[i1], numbers[i2 - 1] if i2 > i1 else numbers[i1] - 1)
        for tag, i1, i2, _, _ in matcher.get_opcodes()
        if tag != "equal"
    ]


# -- the rest of the module, as context ---------------------------------------------------


def skeleton(code: str, qualname: str, budget: int = SKELETON_CHARS) -> str:
    """The module without the bodies: imports, and within ``budget`` characters the
    constants and the other definitions' signatures and docstrings, those the target uses
    first (for a method, its class's other methods the same way). The target's own body is
    a marker: it is shown in full elsewhere. A real library's module holds hundreds of
    constants and methods: all of them would make the prompt as large as the module."""
    tree = ast.parse(code)
    parts = qualname.split(".")
    used = _names_used(find_node(tree, qualname))
    holder = next((n for n in tree.body if isinstance(n, ast.ClassDef) and len(parts) > 1
                   and n.name == parts[0]), None)
    # (rank, size, key): 0 always shown, 1 used by the target, 2 other definitions, 3 other
    # statements; key: a top-level index, or the name of a method of the target's class
    texts: dict[int | str, str] = {i: _outline(node, parts)
                                   for i, node in enumerate(tree.body) if node is not holder}
    ranked = [(_rank(node, parts, used), i) for i, node in enumerate(tree.body)
              if node is not holder]
    if holder is not None:
        siblings = [c for c in holder.body if isinstance(c, _DEFS) and c.name != parts[1]]
        for child in siblings:
            texts[child.name] = ast.unparse(_stub(copy.deepcopy(child), []))
            rank = 1 if child.name in used or child.name == "__init__" else 2
            ranked.append((rank, child.name))
    keep: set[int | str] = set()
    size = 0
    for rank, key in sorted(ranked, key=lambda pair: pair[0]):
        if rank == 0 or size + len(texts[key]) <= budget:
            keep.add(key)
            size += len(texts[key]) + 1
    out = []
    for index, node in enumerate(tree.body):
        if node is holder:
            out.append(_outline(node, parts, {k for k in keep if isinstance(k, str)}))
        elif index in keep:
            out.append(texts[index])
    left = sum(1 for i, node in enumerate(tree.body) if node is not holder and i not in keep)
    if left:
        out.append(f"# ... {left} more top-level definitions, not shown")
    return "\n".join(out)


def _rank(node: ast.stmt, target: list[str], used: set[str]) -> int:
    """How much the skeleton wants a top-level statement (0: always; 3: least)."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return 0
    if isinstance(node, _DEFS):
        if node.name == target[0]:
            return 0
        return 1 if node.name in used else 2
    assigned = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Store)}
    return 1 if assigned & used else 3


def _names_used(node: ast.AST | None) -> set[str]:
    if node is None:
        return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)
    }


def _outline(node: ast.stmt, target: list[str], methods: set[str] | None = None) -> str:
    """One top-level statement as the skeleton shows it (``methods``: for the target's
    class, the other methods it shows)."""
    if isinstance(node, _DEFS):
        stub = _stub(copy.deepcopy(node), target, methods)
        text = ast.unparse(stub).replace(_TARGET_MARK, "...  # the target, shown in full above")
        return text.replace(_MORE_MARK, "...  # more methods, not shown")
    text = ast.unparse(node)
    if isinstance(node, (ast.Import, ast.ImportFrom)) or len(text) <= STATEMENT_CHARS:
        return text
    return text[:STATEMENT_CHARS].rstrip() + "  # ... (cut)"


def _stub(node: Definition, target: list[str], methods: set[str] | None = None
          ) -> Definition:
    """A definition with its body cut down to its docstring and ``...``; a class keeps its
    short assignments and its methods' stubs (only ``methods`` of them, when given, and a
    marker for the rest). The target's own body is a marker."""
    is_target = target == [node.name]
    body: list[ast.stmt] = []
    doc = ast.get_docstring(node)
    if doc and not is_target:
        short = doc if len(doc) <= DOCSTRING_CHARS else doc[:DOCSTRING_CHARS].rstrip() + " ..."
        body.append(ast.Expr(ast.Constant(short)))
    if is_target:
        body.append(ast.Expr(ast.Name(_TARGET_MARK)))
    elif isinstance(node, ast.ClassDef):
        inner = target[1:] if target and node.name == target[0] else []
        left_out = False
        for child in node.body:
            if isinstance(child, _DEFS):
                if methods is not None and child.name not in methods and [child.name] != inner:
                    left_out = True
                    continue
                body.append(_stub(child, inner))
            elif isinstance(child, (ast.Assign, ast.AnnAssign)) and (
                len(ast.unparse(child)) <= STATEMENT_CHARS
            ):
                body.append(child)
        if left_out:
            body.append(ast.Expr(ast.Name(_MORE_MARK)))
    else:
        body.append(ast.Expr(ast.Constant(...)))
    node.body = body or [ast.Expr(ast.Constant(...))]
    return node
