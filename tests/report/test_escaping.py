"""Candidate text is data: escape sequences in a plan, an error or code are shown as escapes
in the terminal, report.md and the step summary, and tree.html keeps them as JSON data."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import pytest
from report_journals import ORIGINAL, single_objective_journal

from pytest_aide.journal import Journal
from pytest_aide.report.formatting import printable
from pytest_aide.report.markdown import write_report_md
from pytest_aide.report.terminal import step_line, summary_lines
from pytest_aide.report.tree_html import write_tree_html

#: Every character that a terminal or a reader could act on; newline and tab are allowed.
RAW = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)

#: One of each class: OSC window title (ended by BEL), CSI clear line, SGR hidden text, a
#: carriage return and backspaces that overwrite, a one-byte C1 CSI, a bidi override.
HOSTILE = (
    "\x1b]0;pwned\x07\x1b[2K\x1b[8mhidden\x1b[0m ok\rPASSED\b\b\b\x9b31m \u202eevil\u2066"
)


# ---------------------------------------------------------------------------------------------
# printable


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2Kcleared", "\\x1b[2Kcleared"),  # CSI: clear the line
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),  # OSC: the window's title, BEL
        ("\x1b]8;;http://x\x1b\\link", "\\x1b]8;;http://x\\x1b\\link"),  # OSC 8 hyperlink
        ("\x1b[8mhidden\x1b[0m", "\\x1b[8mhidden\\x1b[0m"),  # SGR: hidden text
        ("FAILED\rPASSED", "FAILED\\rPASSED"),  # a carriage return overwrites the line
        ("FAILED\b\b\b\b\b\bPASSED", "FAILED" + "\\x08" * 6 + "PASSED"),  # so do backspaces
        ("\x00\x05\x0b\x0c\x1c\x7f", "\\x00\\x05\\x0b\\x0c\\x1c\\x7f"),  # other C0, DEL
        ("\x9b2K\x85\x90", "\\x9b2K\\x85\\x90"),  # C1: one-byte CSI, NEL, DCS
        ("a\u202eb\u202dc\u2066d\u2069", "a\\u202eb\\u202dc\\u2066d\\u2069"),  # bidi
        ("\u200e\u200f\u061c", "\\u200e\\u200f\\u061c"),  # marks that reorder neutrals
        ("one\u2028two\u2029", "one\\u2028two\\u2029"),  # Unicode line breaks
    ],
)
@pytest.mark.parametrize("keep_newlines", [False, True])
def test_printable_shows_each_control_character_as_an_escape(
    text: str, shown: str, keep_newlines: bool
) -> None:
    assert printable(text, keep_newlines=keep_newlines) == shown


def test_printable_keeps_newline_and_tab_where_asked() -> None:
    text = "Traceback:\n\tline 1\n\tline 2\n"
    assert printable(text, keep_newlines=True) == text
    assert printable(text) == "Traceback:\\n\tline 1\\n\tline 2\\n"  # one line: tab stays
    assert printable("a\r\nb", keep_newlines=True) == "a\\r\nb"  # CRLF: the \r is shown


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain ascii: x = [1, 2] | `code` # ~!@$%^&*()",
        "C:\\Users\\me\\k.py  r'\\x1b' \\n",  # backslashes stay as they are
        "é ü ß 漢字 Ελληνικά עברית العربية 🙂 👩\u200d💻 \u00a0nbsp",  # RTL script, ZWJ emoji
        "def f(x):\n\treturn x  # tab and newline\n",
    ],
)
def test_printable_leaves_plain_text_byte_for_byte(text: str) -> None:
    assert printable(text, keep_newlines=True) == text
    assert printable(text) == text.replace("\n", "\\n")


@pytest.mark.parametrize("keep_newlines", [False, True])
def test_printable_is_stable(keep_newlines: bool) -> None:
    once = printable(HOSTILE + "\r\n" + HOSTILE, keep_newlines=keep_newlines)
    assert not RAW.search(once)
    assert printable(once, keep_newlines=keep_newlines) == once


# ---------------------------------------------------------------------------------------------
# Where candidate text is shown


def hostile_journal() -> Journal:
    """The report journal with escape sequences in plans, errors, code and the outcome, on
    the path to the best (#2, #3), off it (#5) and in the best's code (#6)."""
    journal = single_objective_journal()
    journal[2].plan = f"{HOSTILE}\nsecond line {HOSTILE}"
    journal[2].error = f"Traceback:\nZeroDivisionError: {HOSTILE}\n"
    journal[3].plan = HOSTILE
    journal[3].error = (
        f"E   AssertionError: {HOSTILE}\n"
        f"FAILED tests/test_k.py::test_ok - AssertionError: {HOSTILE}\n"
    )
    journal[5].error = f"candidate changed the measurement: {HOSTILE}"
    journal[6].code += f"# {HOSTILE}\n"
    journal[6].note = HOSTILE
    journal.outcome = f"stopped early: {HOSTILE}"
    return journal


def assert_shown_not_obeyed(text: str) -> None:
    assert not RAW.search(text), repr(RAW.findall(text))
    assert "\\x1b]0;pwned\\x07\\x1b[2K" in text  # the escapes are there to read


def test_step_lines_escape_the_candidates_errors() -> None:
    journal = hostile_journal()
    lines = [step_line(journal, node, steps=7, elapsed=1.0) for node in journal.nodes]
    for line in lines:
        assert not RAW.search(line) and "\n" not in line, line
    assert_shown_not_obeyed("\n".join(lines))
    assert lines[3].startswith("step 3/7 debug <- 2  BUGGY: test_ok: AssertionError: \\x1b]")


def test_summary_lines_escape_the_outcome(tmp_path: Path) -> None:
    lines = summary_lines(
        hostile_journal(), tmp_path / "run", tmp_path, applied=False,
        patch=tmp_path / "run" / "best.patch", resume_hint="pytest --aide-steps 14",
    )
    for line in lines:
        assert not RAW.search(line) and "\n" not in line, line
    assert_shown_not_obeyed("\n".join(lines))


def test_report_md_and_the_step_summary_escape_plans_errors_and_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    journal = hostile_journal()
    path = write_report_md(journal, tmp_path, ORIGINAL, journal[6].code)
    text = path.read_bytes().decode("utf-8")  # read_text would hide a carriage return
    assert_shown_not_obeyed(text)
    assert summary.read_bytes().decode("utf-8") == text + "\n"
    assert f"> {printable(HOSTILE)}" in text  # the plan on the path to the best, quoted
    assert "> second line \\x1b]" in text  # its lines stay lines
    assert "\n+# \\x1b]0;pwned\\x07\\x1b[2K" in text  # the best's code, in the diff
    assert f"- {printable(journal.outcome)}" in text
    # a table row stays one row: the escaped plan and reason are inside its cells
    row = next(line for line in text.splitlines() if line.startswith("| 2 |"))
    assert row.count(" | ") == 10, row


def test_tree_html_keeps_candidate_text_as_data(tmp_path: Path) -> None:
    """The page holds no raw control character (JSON writes them as ``\\u001b``), its data
    gives back the exact text, and the script puts text in the page only as textContent."""
    journal = hostile_journal()
    text = write_tree_html(journal, tmp_path / "tree.html").read_bytes().decode("utf-8")
    assert not RAW.search(text)
    data = re.search(r'<script type="application/json" id="aide-data">(.*?)</script>', text,
                     flags=re.S)
    assert data
    assert Journal.from_dict(json.loads(data[1])["journal"]).to_dict() == (
        journal.to_dict())
    assets = resources.files("pytest_aide.report") / "assets"
    script = (assets / "tree.js").read_text(encoding="utf-8")
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script)
