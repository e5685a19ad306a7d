"""The numbers the offline tuner may change, found in the target module's source.

The tuner never rewrites code: it only changes the text of literals. This module finds
those literals (with the exact character span of each) and writes new values into them,
leaving every other character of the file as it was.

What is tunable without being asked:

- a module-level assignment of a number or bool literal to an UPPER_CASE name:
  ``BLOCK_SIZE = 1024``, ``EPS: float = 1e-6``, ``OFFSET = -3``, ``USE_CACHE = True``;
- a numeric keyword argument in any call: ``RandomForestClassifier(n_estimators=100)``,
  ``kernel[grid](x, BLOCK_SIZE=1024, num_warps=4)``, ``Adam(params, lr=1e-3)``.

Seed-like names (``seed``, ``random_state``, ``*_seed``) are never tuned: tuning a seed
overfits to the test. Keyword arguments that select behaviour rather than a quantity
(``axis``, ``dim``, ``verbose``, ``n_jobs``, ...) and bool keyword arguments are left alone
unless a hint asks for them.

Hints: a trailing comment on the literal's line that starts with ``aide:``. Grammar::

    # aide: skip                      leave this line's literals alone (also: fixed)
    # aide: LOW..HIGH [FLAG ...]      search LOW..HIGH; int when both ends are ints
    # aide: choices V1 V2 ...         search exactly these values (numbers, True/False,
                                      or words when the literal is a string)

FLAGs: ``log`` (search on a log scale; LOW > 0), ``pow2`` (powers of two only; both ends
powers of two), ``int`` / ``float`` (force the kind). Examples: ``# aide: 16..1024 pow2``,
``# aide: 1e-5..1e-1 log``, ``# aide: 1..64``, ``# aide: choices 2 4 8``. A hint applies to
every tunable literal on its line, and opts in literals that are not tunable by default
(any simple assignment, bool or string keyword arguments). A malformed hint, or a hint on
a line with nothing to tune, raises ``ValueError`` naming the line.

Without a hint the search space is: powers of two >= 2: the powers of two in [v/8, v*8];
other positive ints: [max(1, v//4), v*4] on a log scale; positive floats: [v/10, v*10] on a
log scale; 0: [0, 8] (int) or [0.0, 1.0] (float); negative numbers: a linear range of the
same sign, about four (ints) or ten (floats) times either side; bools: True / False.
"""

from __future__ import annotations

import ast
import io
import math
import re
import tokenize
from dataclasses import dataclass, field
from typing import Any

INT, FLOAT, BOOL, CHOICE = "int", "float", "bool", "choice"

HINT_GRAMMAR = (
    "a hint is '# aide: skip', '# aide: fixed', '# aide: LOW..HIGH [log] [pow2] [int|float]' "
    "or '# aide: choices V1 V2 ...', e.g. '# aide: 16..1024 pow2', '# aide: 1e-5..1e-1 log'"
)

SEED_NAMES = frozenset({"seed", "random_state", "random_seed", "rng_seed"})
BEHAVIOUR_KWARGS = frozenset(
    {
        "axis", "dim", "dims", "ndim", "ndmin", "ord", "verbose", "verbosity", "n_jobs",
        "stacklevel", "protocol", "maxsplit", "base", "flags", "level", "indent", "decimals",
        "device", "port", "timeout", "returncode", "exit_code", "start", "stop", "end",
    }
)  # fmt: skip

_HINT_RE = re.compile(r"#\s*aide\s*:\s*(?P<body>.*)$", re.IGNORECASE)
_UPPER_RE = re.compile(r"^_*[A-Z][A-Z0-9_]*$")


@dataclass
class Tunable:
    """One literal the tuner may rewrite, and the space it searches.

    ``start``/``end`` index the literal's text in the source string (str indices, not
    bytes); for a negative number the span includes the minus sign.
    """

    name: str
    kind: str  # "int" | "float" | "bool" | "choice"
    value: Any  # the original value
    start: int
    end: int
    line: int
    low: float | None = None
    high: float | None = None
    log: bool = False
    pow2: bool = False
    choices: tuple[Any, ...] = field(default_factory=tuple)

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is a point of this tunable's search space."""
        if self.kind in (BOOL, CHOICE):
            return any(type(value) is type(c) and value == c for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if not self.low <= value <= self.high:  # type: ignore[operator]
            return False
        if self.kind == INT and int(value) != value:
            return False
        return not self.pow2 or _is_pow2(int(value))


@dataclass
class _Hint:
    skip: bool = False
    low: float | None = None
    high: float | None = None
    kind: str | None = None
    log: bool = False
    pow2: bool = False
    choices: tuple[str, ...] = ()


def find_tunables(source: str) -> list[Tunable]:
    """Every tunable literal of ``source``, in source order.

    Raises ``SyntaxError`` when the source does not parse and ``ValueError`` for a
    malformed hint.
    """
    bom = 1 if source.startswith("\ufeff") else 0  # a BOM the file reader kept
    tree = ast.parse(source[bom:])
    hints = _read_hints(source[bom:])
    offsets = _Offsets(source[bom:], shift=bom)
    found: list[tuple[str, ast.expr, bool]] = []  # (name, literal node, tunable by default)
    found += _module_constants(tree)
    found += _hinted_assignments(tree, hints)
    found += _keyword_literals(tree)

    tunables: list[Tunable] = []
    used_lines: set[int] = set()
    seen_spans: set[tuple[int, int]] = set()
    for name, node, default in sorted(found, key=lambda f: (f[1].lineno, f[1].col_offset)):
        span = offsets.span(node)
        if span in seen_spans:
            continue
        hint = hints.get(node.lineno)
        if not default and (hint is None or not _hint_fits(hint, node)):
            continue  # opted in only by a hint that fits it
        seen_spans.add(span)
        if hint is not None:
            used_lines.add(node.lineno)
            if hint.skip:
                continue
        tunable = _make_tunable(name, _literal_value(node), span, node.lineno, hint)
        if tunable is not None:
            tunables.append(tunable)

    for line, hint in sorted(hints.items()):
        if line not in used_lines and not hint.skip:
            raise ValueError(
                f"line {line}: an '# aide:' hint on a line with no tunable literal (a number "
                "assigned to a name or passed as a keyword argument); move it to the literal's "
                "line or remove it"
            )
    return _unique_names(tunables)


def apply_values(source: str, tunables: list[Tunable], values: dict[str, Any]) -> str:
    """``source`` with each named tunable's literal replaced by its new value.

    Only the literals' own characters change; tunables missing from ``values`` keep
    their text.
    """
    by_name = {t.name: t for t in tunables}
    unknown = set(values) - set(by_name)
    if unknown:
        raise KeyError(f"no tunable named {sorted(unknown)}")
    edits = sorted(((by_name[n], v) for n, v in values.items()), key=lambda e: e[0].start)
    pieces: list[str] = []
    position = 0
    for tunable, value in edits:
        pieces.append(source[position : tunable.start])
        old_text = source[tunable.start : tunable.end]
        if isinstance(value, str) and old_text.startswith('"') and _plain(value):
            pieces.append(f'"{value}"')  # keep the file's quote style
        else:
            pieces.append(format_value(value, tunable.kind))
        position = tunable.end
    pieces.append(source[position:])
    return "".join(pieces)


def _plain(text: str) -> bool:
    return text.isprintable() and not any(c in text for c in "\"'\\")


def format_value(value: Any, kind: str = "") -> str:
    """The Python literal for ``value``: ints as ints, floats compact (``0.001``, ``1e-05``)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if kind == INT:
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no Python literal")
        return repr(value)
    if isinstance(value, str):
        return repr(value)
    raise TypeError(f"cannot write {value!r} as a literal")


# --- discovery -------------------------------------------------------------------------


def _module_constants(tree: ast.Module) -> list[tuple[str, ast.expr, bool]]:
    found = []
    for statement in tree.body:
        name, value = _assigned_name(statement)
        if name is None or value is None or _is_seed(name) or not _UPPER_RE.match(name):
            continue
        if _number_or_bool(value):
            found.append((name, value, True))
    return found


def _hinted_assignments(
    tree: ast.Module, hints: dict[int, _Hint]
) -> list[tuple[str, ast.expr, bool]]:
    """Assignments anywhere whose line carries a hint: the hint opts them in."""
    found = []
    for statement in ast.walk(tree):
        name, value = _assigned_name(statement)
        if name and value is not None and value.lineno in hints and _literal(value):
            found.append((name, value, False))
    return found


def _keyword_literals(tree: ast.Module) -> list[tuple[str, ast.expr, bool]]:
    found = []
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call):
            continue
        for keyword in call.keywords:
            if keyword.arg is None or _is_seed(keyword.arg) or not _literal(keyword.value):
                continue
            default = _number(keyword.value) and keyword.arg.lower() not in BEHAVIOUR_KWARGS
            name = f"{_call_name(call.func)}.{keyword.arg}@{keyword.value.lineno}"
            found.append((name, keyword.value, default))
    return found


def _assigned_name(statement: ast.AST) -> tuple[str | None, ast.expr | None]:
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        if isinstance(target, ast.Name):
            return target.id, statement.value
    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
        return statement.target.id, statement.value
    return None, None


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, (ast.Subscript, ast.Call)):  # kernel[grid](...), make()(...)
        return _call_name(func.value if isinstance(func, ast.Subscript) else func.func)
    return "call"


def _is_seed(name: str) -> bool:
    lowered = name.lower()
    return lowered in SEED_NAMES or lowered.endswith("_seed") or lowered.startswith("seed_")


def _literal(node: ast.expr) -> bool:
    return _number_or_bool(node) or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _number_or_bool(node: ast.expr) -> bool:
    return _number(node) or (isinstance(node, ast.Constant) and isinstance(node.value, bool))


def _number(node: ast.expr) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    )


def _literal_value(node: ast.expr) -> Any:
    if isinstance(node, ast.UnaryOp):
        operand = _literal_value(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    assert isinstance(node, ast.Constant)
    return node.value


# --- search spaces ---------------------------------------------------------------------


def _make_tunable(
    name: str, value: Any, span: tuple[int, int], line: int, hint: _Hint | None
) -> Tunable | None:
    tunable = Tunable(name=name, kind=INT, value=value, start=span[0], end=span[1], line=line)
    if hint is not None and hint.choices:
        tunable.kind = CHOICE
        tunable.choices = tuple(_parse_choice(text, value, line, hint) for text in hint.choices)
        return tunable
    if hint is not None and hint.low is not None:
        if isinstance(value, (bool, str)):
            raise ValueError(f"line {line}: a range hint on {value!r}; use '# aide: choices ...'")
        return _hinted_range(tunable, hint)
    if isinstance(value, bool):
        tunable.kind, tunable.choices = BOOL, (False, True)
        return tunable
    if isinstance(value, int):
        return _default_int(tunable, value)
    if isinstance(value, float):
        return _default_float(tunable, value)
    return None  # a string with no choices: nothing to search


def _default_int(tunable: Tunable, value: int) -> Tunable:
    if value >= 2 and _is_pow2(value):
        tunable.low, tunable.high, tunable.pow2 = max(1, value // 8), value * 8, True
    elif value > 0:
        tunable.low, tunable.high, tunable.log = max(1, value // 4), value * 4, True
    elif value == 0:
        tunable.low, tunable.high = 0, 8
    else:
        tunable.low, tunable.high = value * 4, min(-1, -(-value // 4))
    return tunable


def _default_float(tunable: Tunable, value: float) -> Tunable:
    tunable.kind = FLOAT
    if value > 0:
        tunable.low, tunable.high, tunable.log = value / 10, value * 10, True
    elif value == 0:
        tunable.low, tunable.high = 0.0, 1.0
    else:
        tunable.low, tunable.high = value * 10, value / 10
    return tunable


def _hinted_range(tunable: Tunable, hint: _Hint) -> Tunable:
    tunable.kind = hint.kind or INT
    tunable.log, tunable.pow2 = hint.log, hint.pow2
    low, high = hint.low, hint.high
    if tunable.kind == INT:
        low, high = int(low), int(high)  # type: ignore[arg-type]
    tunable.low, tunable.high = low, high
    return tunable


def _parse_choice(text: str, original: Any, line: int, hint: _Hint) -> Any:
    value = _choice_value(text)
    if isinstance(value, str) and not isinstance(original, str):
        body = "choices " + " ".join(hint.choices)
        raise _hint_error(line, body, f"choice {text!r} is not a number or True/False")
    return value


def _choice_value(text: str) -> Any:
    """A choice's value: a number or True/False when it reads as one, else the word."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
    return value if isinstance(value, (int, float)) else text


def _hint_fits(hint: _Hint, node: ast.expr) -> bool:
    """Whether a hint can opt in ``node``: ranges fit numbers, words fit strings."""
    if hint.low is not None:
        return _number(node)
    words = any(isinstance(_choice_value(c), str) for c in hint.choices)
    return words == (isinstance(node, ast.Constant) and isinstance(node.value, str))


def _is_pow2(value: int) -> bool:
    return value >= 1 and value & (value - 1) == 0


# --- hints -----------------------------------------------------------------------------


def _read_hints(source: str) -> dict[int, _Hint]:
    """Line number -> the ``# aide:`` hint in that line's comment."""
    hints: dict[int, _Hint] = {}
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        match = _HINT_RE.search(token.string)
        if match:
            hints[token.start[0]] = parse_hint(match.group("body"), token.start[0])
    return hints


def parse_hint(body: str, line: int) -> _Hint:
    """Read the text after ``aide:``; a malformed hint is a ``ValueError`` naming the line."""
    words = body.split()
    if not words:
        raise _hint_error(line, body, "it is empty")
    head = words[0].lower()
    if head in ("skip", "fixed") and len(words) == 1:
        return _Hint(skip=True)
    if head == "choices":
        if len(words) < 2:
            raise _hint_error(line, body, "'choices' needs at least one value")
        return _Hint(choices=tuple(words[1:]))
    if ".." in head:
        return _range_hint(words, line, body)
    raise _hint_error(line, body, f"{words[0]!r} is not a range, 'choices' or 'skip'")


def _range_hint(words: list[str], line: int, body: str) -> _Hint:
    low_text, _, high_text = words[0].partition("..")
    low, high = _hint_number(low_text, line, body), _hint_number(high_text, line, body)
    hint = _Hint(low=low, high=high)
    hint.kind = INT if isinstance(low, int) and isinstance(high, int) else FLOAT
    for flag in (w.lower() for w in words[1:]):
        if flag == "log":
            hint.log = True
        elif flag == "pow2":
            hint.pow2 = True
        elif flag in (INT, FLOAT):
            hint.kind = flag
        else:
            raise _hint_error(line, body, f"unknown flag {flag!r} (flags: log, pow2, int, float)")
    _check_range(hint, line, body)
    return hint


def _check_range(hint: _Hint, line: int, body: str) -> None:
    low, high = hint.low, hint.high
    assert low is not None and high is not None
    if not low < high:
        raise _hint_error(line, body, "LOW must be smaller than HIGH")
    if hint.kind == INT and (int(low) != low or int(high) != high):
        raise _hint_error(line, body, "an int range needs whole-number ends")
    if hint.log and low <= 0:
        raise _hint_error(line, body, "a log range needs LOW > 0")
    if hint.pow2:
        if hint.kind != INT:
            raise _hint_error(line, body, "pow2 needs an int range")
        if not (_is_pow2(int(low)) and _is_pow2(int(high))):
            raise _hint_error(line, body, "pow2 needs both ends to be powers of two")


def _hint_number(text: str, line: int, body: str) -> int | float:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _hint_error(line, body, f"{text!r} is not a number")
    return value


def _hint_error(line: int, body: str, why: str) -> ValueError:
    return ValueError(
        f"line {line}: malformed hint '# aide: {body.strip()}': {why}; {HINT_GRAMMAR}"
    )


# --- positions -------------------------------------------------------------------------


class _Offsets:
    """Maps ast positions (1-based lines, UTF-8 byte columns) to str indices."""

    def __init__(self, source: str, shift: int = 0) -> None:
        self.source = source
        self.shift = shift
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", source)]

    def index(self, line: int, byte_col: int) -> int:
        start = self.line_starts[line - 1]
        end = self.line_starts[line] if line < len(self.line_starts) else len(self.source)
        text = self.source[start:end]
        return self.shift + start + len(text.encode("utf-8")[:byte_col].decode("utf-8"))

    def span(self, node: ast.expr) -> tuple[int, int]:
        assert node.end_lineno is not None and node.end_col_offset is not None
        return (
            self.index(node.lineno, node.col_offset),
            self.index(node.end_lineno, node.end_col_offset),
        )


def _unique_names(tunables: list[Tunable]) -> list[Tunable]:
    """Suffix repeated names (``X``, ``X#2``) so that each tunable has its own."""
    counts: dict[str, int] = {}
    for tunable in tunables:
        counts[tunable.name] = counts.get(tunable.name, 0) + 1
        if counts[tunable.name] > 1:
            tunable.name = f"{tunable.name}#{counts[tunable.name]}"
    return tunables
