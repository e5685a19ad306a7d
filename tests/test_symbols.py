"""One definition inside a module: the marker's forms that name it, its span, the skeleton
of the rest, and a new definition spliced in with nothing else changed."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_aide import symbols
from pytest_aide.proposers.replies import OutsideTargetError, parse_reply
from pytest_aide.study import MarkerError, resolve_target

SOURCE = '''\
import functools

LIMIT = 10


def helper(x):
    """Help."""
    return x + 1  # helper body


class Box:
    """A box."""

    size = 3

    @functools.cache
    def area(self, k):
        """The area."""
        return self.size * k  # area body

    def other(self):
        return 0  # other body
'''


def test_a_methods_span_holds_its_decorators_and_a_reply_is_reindented() -> None:
    span = symbols.find(SOURCE, "Box.area")
    assert span == symbols.Span(15, 19, "    ")
    assert symbols.definition(SOURCE, "Box.area").startswith("    @functools.cache\n")
    new, _ = symbols.splice(SOURCE, "Box.area", "def area(self, k):\n    return 3 * k\n")
    assert "    def area(self, k):\n        return 3 * k\n\n    def other" in new
    assert symbols.changes_outside(SOURCE, new, "Box.area") == []
    assert symbols.find(SOURCE, "Box.nope") is None and symbols.find(SOURCE, "nope") is None


def test_the_skeleton_keeps_signatures_and_docstrings_not_bodies() -> None:
    outline = symbols.skeleton(SOURCE, "Box.area")
    assert "import functools" in outline and "LIMIT = 10" in outline
    assert "def helper(x):\n    \"\"\"Help.\"\"\"\n    ..." in outline
    assert "size = 3" in outline and "def other(self):" in outline
    assert "body" not in outline, outline
    assert "the target, shown in full above" in outline


def test_the_skeleton_stays_within_its_budget_and_says_what_it_left_out() -> None:
    many = SOURCE + "".join(f"\n\ndef f{i}(a, b):\n    return a * {i}\n" for i in range(400))
    outline = symbols.skeleton(many, "helper", budget=2000)
    assert len(outline) < 2500
    assert outline.endswith("more top-level definitions, not shown")


def test_a_reply_may_send_the_class_of_a_method_but_not_change_another_method() -> None:
    box = symbols.definition(SOURCE, "Box")
    faster = box.replace("return self.size * k  # area body", "return 3 * k")
    reply = parse_reply(f"Plan.\n\n```python\n{faster}```\n", SOURCE, symbol="Box.area")
    assert reply.form == "definition" and "return 3 * k" in reply.code
    touched = box.replace("return 0  # other body", "return 1")
    with pytest.raises(OutsideTargetError, match=r"outside `Box.area` \(lines 16-19 of the "
                                                 r"parent\): line 22 of the parent changed"):
        parse_reply(f"Plan.\n\n```python\n{touched}```\n", SOURCE, symbol="Box.area")
    with pytest.raises(OutsideTargetError, match="no longer defines `helper`"):
        parse_reply("Plan.\n\n```python\nx = 1\ny = 2\n```\n", SOURCE, symbol="helper")


def test_crlf_lines_are_kept_as_they_were() -> None:
    crlf = SOURCE.replace("\n", "\r\n")
    new, _ = symbols.splice(crlf, "helper", "def helper(x):\n    return x + 2")
    assert symbols.changes_outside(crlf, new, "helper") == []
    assert new.count("\r\n") == crlf.count("\r\n") - 1  # one line fewer, the last one CRLF


@pytest.fixture
def alpha(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    (tmp_path / "alpha_sym.py").write_text(
        "def a():\n    def inner():\n        return 1\n    return inner\n\n\n"
        "class K:\n    def m(self):\n        return 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("alpha_sym")
    sys.modules.pop("alpha_sym", None)


@pytest.mark.parametrize("spec", ["alpha_sym:K.m", "alpha_sym.py:K.m", "object", "bound"])
def test_each_form_of_a_method_target_names_the_same_definition(
    alpha, tmp_path: Path, spec: str
) -> None:
    value = {"object": alpha.K.m, "bound": alpha.K().m}.get(spec, spec)
    target = resolve_target(value, SimpleNamespace(nodeid="t.py::x"), tmp_path)
    assert (target.module, target.symbol, target.name) == ("alpha_sym", "K.m", "alpha_sym:K.m")


def test_a_nested_function_is_refused_with_the_fix(alpha, tmp_path: Path) -> None:
    with pytest.raises(MarkerError, match=r"t.py::x: target a.<locals>.inner is defined inside "
                                          r"a function.*target='alpha_sym'"):
        resolve_target(alpha.a(), SimpleNamespace(nodeid="t.py::x"), tmp_path)


def test_edit_blocks_apply_inside_the_target_even_when_the_text_occurs_before_it() -> None:
    twice = SOURCE.replace("return 0  # other body", "return self.size * k  # area body")
    edit = ("Plan.\n\n<<<<<<< SEARCH\n        return self.size * k  # area body\n=======\n"
            "        return 0\n>>>>>>> REPLACE\n")
    reply = parse_reply(edit, twice, symbol="Box.other")
    assert reply.code == twice.replace("    def other(self):\n        return self.size * k  "
                                       "# area body", "    def other(self):\n        return 0")


def test_the_journal_keeps_the_symbol_for_a_resumed_run() -> None:
    from pytest_aide.journal import Journal

    journal = Journal("r", "shapes.py", "shapes", [], "0" * 64, symbol="Box.area")
    assert Journal.from_dict(journal.to_dict()).symbol == "Box.area"
    old = journal.to_dict()
    del old["symbol"]  # a journal written before function targets: the whole module
    assert Journal.from_dict(old).symbol == ""


def test_blank_lines_around_a_replied_definition_are_not_new_lines_outside_it() -> None:
    reply = "\n\ndef helper(x):\n    return x + 2\n\n\n"
    new, spliced = symbols.splice(SOURCE, "helper", reply)
    assert spliced and symbols.changes_outside(SOURCE, new, "helper") == []
    assert new == SOURCE.replace('    """Help."""\n    return x + 1  # helper body\n',
                                 "    return x + 2\n")


def test_a_methods_class_shows_the_methods_it_uses_first_and_its_constants_within_budget(
) -> None:
    methods = "".join(f'\n    def m{i}(self):\n        """Method {i}."""\n        return {i}\n'
                      for i in range(300))
    tables = "".join(f"TABLE_{i} = {{'k{i}': {i}}}\n" for i in range(300))
    source = (f"import re\n\n{tables}USED = 1\n\n\nclass Engine:\n    \"\"\"Big.\"\"\"\n\n"
              f"    def target(self):\n        return self.m250() + USED\n{methods}")
    outline = symbols.skeleton(source, "Engine.target", budget=1500)
    assert len(outline) < 2500, len(outline)  # the budget, and what is always shown
    assert "import re" in outline and "USED = 1" in outline  # imports; what it uses
    assert "def m250(self):" in outline  # the sibling it calls, whatever its place
    assert "more methods, not shown" in outline and "def m299(self):" not in outline
    assert "more top-level definitions, not shown" in outline  # most tables left out
    assert "the target, shown in full above" in outline
