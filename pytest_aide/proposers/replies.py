"""Reading a model's reply: a short plan, then the code as a full module or as edit blocks.

Two reply forms are accepted. A fenced ``python`` block holding the complete module is
always fine. For large modules the model may instead send SEARCH/REPLACE blocks (aider's
format) that are applied to the parent's code; they are matched exactly first, then with
trailing whitespace ignored, then with a uniform indentation shift, because models often
re-indent a snippet they quote. An edit that matches nothing is an error that names the
edit: silently dropping it would run a candidate the model never meant.

With a function or class target (``symbol``), a code block holding just that definition is
spliced into the parent's module, and any candidate that changes a line outside the
definition is rejected with the lines it changed: everything else stays byte-identical.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pytest_aide import symbols
from pytest_aide.proposers.base import ProposerError, TargetFile
from pytest_aide.sources import Sources

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(
    r"^(?P<fence>`{3,}|~{3,})[ \t]*(?P<lang>[\w+.-]*)[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.DOTALL | re.MULTILINE,
)
_EDIT = re.compile(
    r"^<{5,9} ?SEARCH[^\n]*\n(?P<search>.*?)^={5,9}[ \t]*\n(?P<replace>.*?)^>{5,9} ?REPLACE[^\n]*$",
    re.DOTALL | re.MULTILINE,
)
_EDIT_MARK = re.compile(r"^<{5,9} ?SEARCH", re.MULTILINE)
_OPEN_FENCE_AT_END = re.compile(r"(?:^|\n)[ \t]*(?:`{3,}|~{3,})[\w+.-]*[ \t]*$")
_PYTHON_TAGS = {"python", "py", "python3"}
PLAN_LIMIT = 2000


class NoCodeError(ProposerError):
    """The reply holds neither a code block nor edit blocks (the model may be asked again)."""


class EditMismatchError(ProposerError):
    """A SEARCH block matches nothing in the parent's code."""


class CandidateSyntaxError(ProposerError):
    """The candidate does not compile; it is not worth running."""


class OutsideTargetError(ProposerError):
    """With a function or class target, the candidate changed the module outside it (or no
    longer defines it): the rest of the file must stay as it is."""


@dataclass
class Edit:
    search: str
    replace: str


@dataclass
class ParsedReply:
    plan: str
    code: str
    #: "module", "edits", "definition" (one definition, spliced in) or "files" (several
    #: target files, each read as one of the others)
    form: str


def parse_reply(text: str, parent_code: str, filename: str = "<candidate>",
                symbol: str = "") -> ParsedReply:
    """Plan and complete candidate code from a reply; a ProposerError subclass if unusable.

    ``symbol``: the function or class target, the only part of the module that may change.
    """
    text = _THINK.sub("", text or "")
    edits = find_edits(text)
    if edits:
        code = _edit_inside(parent_code, symbol, edits) if symbol else \
            apply_edits(parent_code, edits)
        form = "edits"
        plan_end = _EDIT_MARK.search(text).start()  # type: ignore[union-attr]
    else:
        block = _best_code_block(text)
        if block is None:
            if _EDIT_MARK.search(text):
                raise NoCodeError("the reply's SEARCH/REPLACE blocks are incomplete")
            raise NoCodeError("the reply contains no fenced python code block and no edit blocks")
        code, plan_end = block
        form = "module"
        if symbol:
            code, form = _splice(parent_code, symbol, code)
    check_compiles(code, filename)
    if symbol:
        check_inside(parent_code, code, symbol)
    return ParsedReply(plan=extract_plan(text, plan_end), code=code, form=form)


#: A heading line that may name a target file: ``### path``, ``## `path` ``, ``# File: path``.
_HEADING = re.compile(
    r"^#{1,6}[ \t]*(?:file:?[ \t]*)?`?(?P<path>[^`\n]+?)`?:?[ \t]*$",
    re.IGNORECASE | re.MULTILINE)


def parse_files_reply(text: str, parent: Sources, files: list[TargetFile]) -> ParsedReply:
    """With several target files: each section under a heading that names one (its path, as
    the prompt shows it) is that file's reply, read as ``parse_reply`` reads a whole reply
    (a function or class target's definition spliced in); a file no heading names stays as
    it is. The candidate is every file, in ``Sources``' stored form."""
    text = _THINK.sub("", text or "")
    known = {file.path: file for file in files}
    headings = [m for m in _HEADING.finditer(text) if m.group("path").strip() in known]
    if not headings:
        raise NoCodeError("the reply names none of the files: put each file's code under a "
                          "heading line of its path, e.g. ### " + files[0].path)
    sources = parent
    for index, heading in enumerate(headings):
        end = headings[index + 1].start() if index + 1 < len(headings) else len(text)
        file = known[heading.group("path").strip()]
        section = text[heading.end():end]
        try:
            parsed = parse_reply(section, parent.text(file.path), file.path, file.symbol)
        except ProposerError as exc:
            raise type(exc)(f"{file.path}: {exc}") from None
        sources = sources.replace(file.path, parsed.code)
    return ParsedReply(plan=extract_plan(text, headings[0].start()), code=sources.encode(),
                       form="files")


def _splice(parent_code: str, symbol: str, block: str) -> tuple[str, str]:
    try:
        code, spliced = symbols.splice(parent_code, symbol, block)
    except symbols.SpliceError as exc:
        raise OutsideTargetError(str(exc)) from None
    return code, "definition" if spliced else "module"


def _edit_inside(parent_code: str, symbol: str, edits: list[Edit]) -> str:
    """Edits applied to the target's definition alone (a SEARCH text that also occurs in
    another function must not land there), then put back in its place."""
    inside = symbols.definition(parent_code, symbol)
    if not inside:
        raise OutsideTargetError(f"the parent's code does not define `{symbol}`")
    edited = apply_edits(inside, edits, f"the definition of `{symbol}` (only it may change)")
    return symbols.replace(parent_code, symbol, edited)


def check_inside(parent_code: str, code: str, symbol: str) -> None:
    """OutsideTargetError unless ``code`` differs from the parent only inside ``symbol``."""
    try:
        changes = symbols.changes_outside(parent_code, code, symbol)
    except symbols.SpliceError as exc:
        raise OutsideTargetError(str(exc)) from None
    if changes is None:
        raise OutsideTargetError(
            f"the candidate no longer defines `{symbol}`: answer with its new definition "
            "(or edits inside it), and leave the rest of the module as it is"
        )
    if changes:
        span = symbols.find(parent_code, symbol)
        where = f" ({span.describe()} of the parent)" if span else ""
        listed = ", ".join(change.describe() for change in changes[:5])
        more = f" and {len(changes) - 5} more places" if len(changes) > 5 else ""
        raise OutsideTargetError(
            f"the candidate changes the module outside `{symbol}`{where}: {listed}{more} "
            f"of the parent changed; only `{symbol}` may change"
        )


def find_edits(text: str) -> list[Edit]:
    return [Edit(m.group("search"), m.group("replace")) for m in _EDIT.finditer(text)]


def _best_code_block(text: str) -> tuple[str, int] | None:
    """The longest python-tagged block (else the longest untagged one), and where it starts."""
    blocks = [m for m in _FENCE.finditer(text) if m.group("body").strip()]
    tagged = [m for m in blocks if m.group("lang").lower() in _PYTHON_TAGS]
    untagged = [m for m in blocks if not m.group("lang")]
    pool = tagged or untagged
    if not pool:
        return None
    best = max(pool, key=lambda m: len(m.group("body")))
    return best.group("body"), best.start()


def extract_plan(text: str, code_start: int) -> str:
    """The prose before the code (or, when there is none, after it), trimmed."""
    plan = _OPEN_FENCE_AT_END.sub("", text[:code_start].rstrip()).strip()
    if not plan:
        remainder = _FENCE.sub("", _EDIT.sub("", text[code_start:]))
        plan = remainder.strip()
    if len(plan) > PLAN_LIMIT:
        plan = plan[:PLAN_LIMIT].rstrip() + " ..."
    return plan


def check_compiles(code: str, filename: str) -> None:
    try:
        compile(code, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" if exc.lineno else "unknown line"
        snippet = (exc.text or "").strip()
        detail = f": {snippet}" if snippet else ""
        raise CandidateSyntaxError(
            f"the candidate does not compile: {filename}, {where}: SyntaxError: {exc.msg}"
            f"{detail}"
        ) from None
    except ValueError as exc:  # e.g. null bytes in the source
        raise CandidateSyntaxError(f"the candidate does not compile: {exc}") from None


def apply_edits(code: str, edits: list[Edit], what: str = "the parent's code") -> str:
    """Apply edit blocks in order; each must match the code as left by the previous ones.
    ``what``: the code they apply to, as the error names it."""
    for number, edit in enumerate(edits, start=1):
        if not edit.search.strip():
            raise EditMismatchError(
                f"edit {number} of {len(edits)} has an empty SEARCH section; "
                "quote the lines to replace"
            )
        updated = _replace_once(code, edit.search, edit.replace)
        if updated is None:
            first = next(line.strip() for line in edit.search.splitlines() if line.strip())
            raise EditMismatchError(
                f"edit {number} of {len(edits)} did not match {what} "
                f"(its SEARCH section starts with {first[:80]!r})"
            )
        code = updated
    return code


def _replace_once(code: str, search: str, replace: str) -> str | None:
    """Replace the first match of ``search``: exact, else line-wise with a uniform indent shift."""
    if search in code:
        return code.replace(search, replace, 1)
    lines = code.splitlines(keepends=True)
    search_lines = _trim_blank_edges(search.splitlines())
    replace_lines = _trim_blank_edges(replace.splitlines())
    for start in range(len(lines) - len(search_lines) + 1):
        end = start + len(search_lines)
        window = [line.rstrip("\r\n") for line in lines[start:end]]
        shift = _indent_shift(window, search_lines)
        if shift is None:
            continue
        new_text = "".join(_reindent(line, shift) + "\n" for line in replace_lines)
        if not lines[end - 1].endswith("\n"):
            new_text = new_text[:-1]  # the match ended the file without a newline
        return "".join(lines[:start]) + new_text + "".join(lines[end:])
    return None


def _trim_blank_edges(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _indent_shift(window: list[str], search: list[str]) -> tuple[str, str] | None:
    """How the code's indentation differs from the SEARCH lines, if it is one uniform shift.

    Returned as (remove, add): the SEARCH lines' common prefix to drop and the code's to add.
    """
    shift: tuple[str, str] | None = None
    for code_line, search_line in zip(window, search, strict=True):
        if not search_line.strip():
            if code_line.strip():
                return None
            continue
        if code_line.strip() != search_line.strip():
            return None
        code_indent, search_indent = _indent_of(code_line), _indent_of(search_line)
        candidate = _common_shift(code_indent, search_indent)
        if candidate is None or (shift is not None and candidate != shift):
            return None
        shift = candidate
    return shift or ("", "")


def _common_shift(code_indent: str, search_indent: str) -> tuple[str, str] | None:
    """(remove, add) so that add + search_indent[len(remove):] == code_indent."""
    if code_indent.endswith(search_indent):
        return ("", code_indent[: len(code_indent) - len(search_indent)])
    if search_indent.endswith(code_indent):
        return (search_indent[: len(search_indent) - len(code_indent)], "")
    return None


def _reindent(line: str, shift: tuple[str, str]) -> str:
    if not line.strip():
        return ""
    remove, add = shift
    if remove and line.startswith(remove):
        line = line[len(remove) :]
    return add + line
