"""Reading replies: plan and code, full modules and SEARCH/REPLACE edits."""

from __future__ import annotations

import pytest

from pytest_aide.proposers.replies import (
    CandidateSyntaxError,
    Edit,
    EditMismatchError,
    NoCodeError,
    apply_edits,
    parse_reply,
)

PARENT = """\
import math


class Grid:
    def total(self, values):
        result = 0
        for value in values:
            result += value
        return result


def norm(xs):
    return math.sqrt(sum(x * x for x in xs))
"""


def test_fenced_module_with_plan() -> None:
    reply = "Use sum().\n\n```python\ndef total(xs):\n    return sum(xs)\n```\n"
    parsed = parse_reply(reply, PARENT)
    assert parsed.plan == "Use sum()."
    assert parsed.code == "def total(xs):\n    return sum(xs)\n"
    assert parsed.form == "module"


def test_longest_python_block_wins_over_a_snippet() -> None:
    reply = (
        "Change `x` as in\n```python\nx = 1\n```\nFull module:\n"
        "```python\nx = 1\n\n\ndef f():\n    return x\n```"
    )
    assert parse_reply(reply, PARENT).code == "x = 1\n\n\ndef f():\n    return x\n"


def test_think_blocks_are_ignored() -> None:
    reply = "<think>```python\nbroken(\n```</think>Plan.\n```py\nA = 2\n```"
    parsed = parse_reply(reply, PARENT)
    assert parsed.code == "A = 2\n"
    assert parsed.plan == "Plan."


def test_reply_without_code_raises_no_code() -> None:
    with pytest.raises(NoCodeError):
        parse_reply("I would vectorize the loop.", PARENT)


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(CandidateSyntaxError, match=r"line 2: SyntaxError: "):
        parse_reply("Plan.\n```python\nx = 1\ndef f(:\n    pass\n```", PARENT)


def test_exact_edit() -> None:
    edits = [Edit("        result = 0\n        for value in values:\n            result += value\n"
                  "        return result\n", "        return sum(values)\n")]
    code = apply_edits(PARENT, edits)
    assert "        return sum(values)\n" in code
    assert "result +=" not in code


def test_edit_quoted_without_its_indentation_is_reindented() -> None:
    edit = Edit("result = 0\nfor value in values:\n    result += value\nreturn result",
                "return sum(values)")
    code = apply_edits(PARENT, [edit])
    assert "    def total(self, values):\n        return sum(values)\n" in code
    compile(code, "x", "exec")


def test_edit_with_extra_indentation_and_trailing_spaces() -> None:
    edit = Edit("        def norm(xs):   \n            return math.sqrt(sum(x * x for x in xs))\n",
                "        def norm(xs):\n            return math.hypot(*xs)\n")
    code = apply_edits(PARENT, [edit])
    assert code.endswith("def norm(xs):\n    return math.hypot(*xs)\n")


def test_edits_apply_in_order() -> None:
    edits = [Edit("import math\n", "import math\nimport operator\n"),
             Edit("import operator\n", "import operator  # used below\n")]
    assert apply_edits(PARENT, edits).startswith("import math\nimport operator  # used below\n")


def test_edit_that_matches_nothing_names_the_edit() -> None:
    edits = [Edit("import math\n", "import math\n"), Edit("def missing():\n", "")]
    with pytest.raises(EditMismatchError, match=r"edit 2 of 2 did not match.*def missing"):
        apply_edits(PARENT, edits)


def test_inconsistent_indentation_does_not_match() -> None:
    edit = Edit("result = 0\n            for value in values:", "pass")
    with pytest.raises(EditMismatchError):
        apply_edits(PARENT, [edit])


def test_reply_with_edit_blocks_inside_a_fence() -> None:
    reply = (
        "Use hypot.\n```python\n<<<<<<< SEARCH\n    return math.sqrt(sum(x * x for x in xs))\n"
        "=======\n    return math.hypot(*xs)\n>>>>>>> REPLACE\n```\n"
    )
    parsed = parse_reply(reply, PARENT)
    assert parsed.form == "edits"
    assert parsed.plan == "Use hypot."
    assert "math.hypot(*xs)" in parsed.code


def test_incomplete_edit_block_is_no_code() -> None:
    with pytest.raises(NoCodeError, match="incomplete"):
        parse_reply("Plan.\n<<<<<<< SEARCH\nimport math\n=======\n", PARENT)


def test_edit_that_breaks_syntax_is_rejected() -> None:
    reply = "Plan.\n<<<<<<< SEARCH\ndef norm(xs):\n=======\ndef norm(xs:\n>>>>>>> REPLACE\n"
    with pytest.raises(CandidateSyntaxError):
        parse_reply(reply, PARENT)
