"""Function and class targets (``target="pkg.mod:func"``): through the real openai SDK and a
loopback server, the model sees the function in full and the rest of the module only as a
skeleton, answers with the new definition, and nothing outside the function changes."""

from __future__ import annotations

import difflib
import json
import shutil
from typing import Any

import pytest
from llm_fake import FakeProvider, code_reply, run_with, use_fake_openai

from pytest_aide.journal import Journal

MODULE = '''\
"""Shapes: a few small functions."""
import time

SCALE = 2


def helper(x):
    """Double x."""
    value = x * SCALE  # HELPER-BODY
    return value


def total(values):
    """The sum of the doubled values."""
    out = 0
    for v in values:
        time.sleep(0.01)  # TOTAL-BODY
        out += helper(v)
    return out


def unrelated(a, b):
    """Not measured."""
    return a - b  # UNRELATED-BODY
'''

NEW_TOTAL = '''\
def total(values):
    """The sum of the doubled values."""
    return sum(values) * SCALE
'''

TESTS = """\
import pytest
from shapes import total, unrelated


def test_total():
    assert total([1, 2, 3]) == 12
    assert unrelated(3, 1) == 2


@pytest.mark.optimize(metric="mean", target={target!r})
def test_speed(benchmark):
    assert benchmark.pedantic(total, args=([1, 2, 3],), rounds=6, iterations=1) == 12
"""

FLAGS = ("--aide-sandbox", "off", "--aide-debug-prob", "0", "-p", "no:randomly")


def prompt_of(received: Any) -> str:
    return str(received.body["messages"][-1]["content"])


def nodes_of(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    journal = next((pytester.path / ".aide").glob("*/journal.json"))
    return json.loads(journal.read_text())["nodes"]


def outside(code: str, start: str, end: str) -> tuple[str, str]:
    """The text before ``start`` and from ``end`` on: all but one function."""
    head, rest = code.split(start, 1)
    return head, rest[rest.index(end):]


def shapes_project(pytester: pytest.Pytester, httpserver: Any,
                   monkeypatch: pytest.MonkeyPatch) -> tuple[str, FakeProvider]:
    """The shapes project with ``total`` as the target, and the fake OpenAI server."""
    pytester.makepyfile(shapes=MODULE, test_shapes=TESTS.format(target="shapes:total"))
    use_fake_openai(monkeypatch)
    return (pytester.path / "shapes.py").read_text(), FakeProvider(httpserver, "openai")


def test_the_model_sees_the_function_and_its_answer_is_spliced(
    pytester: pytest.Pytester, httpserver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    original, fake = shapes_project(pytester, httpserver, monkeypatch)
    fake.push(fake.text(code_reply(NEW_TOTAL, "Sum first, scale once, no sleeping.")))
    result = run_with(pytester, fake, "--aide-steps", "1", *FLAGS)
    output = result.stdout.str()
    assert "aide: optimizing shapes.py:total for" in output
    assert "shapes.py (shapes, only total in it), run " in output
    assert len(fake.received) == 1, output
    prompt = prompt_of(fake.received[0])
    assert "TOTAL-BODY" in prompt  # the target, in full
    assert "HELPER-BODY" not in prompt and "UNRELATED-BODY" not in prompt, prompt
    assert "def unrelated(a, b):" in prompt and "Not measured." in prompt  # signatures, docs
    assert "SCALE = 2" in prompt and "import time" in prompt  # constants and imports
    assert "the complete new definition of `total`" in prompt

    best = next(n for n in nodes_of(pytester) if n["id"] == 1)
    assert best["status"] == "good", best["error"]
    assert NEW_TOTAL in best["code"]
    written = (pytester.path / "shapes.py").read_text()
    assert written == best["code"], output  # the candidate was confirmed and written
    assert outside(written, "def total", "\n\ndef unrelated") == \
        outside(original, "def total", "\n\ndef unrelated")


OUTSIDE_EDIT = """\
Raise the scale.

<<<<<<< SEARCH
SCALE = 2
=======
SCALE = 3
>>>>>>> REPLACE
"""


def test_a_reply_that_changes_the_rest_of_the_module_is_buggy_with_the_lines(
    pytester: pytest.Pytester, httpserver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    original, fake = shapes_project(pytester, httpserver, monkeypatch)
    faster = original.replace("        time.sleep(0.01)  # TOTAL-BODY\n", "")
    scaled = faster.replace("SCALE = 2", "SCALE = 3")
    imports = faster.replace("import time\n", "import time\nimport math\n")
    fake.push(fake.text(code_reply(scaled, "Raise the scale.")), fake.text(OUTSIDE_EDIT),
              fake.text(code_reply(imports, "Also import math.")))
    run_with(pytester, fake, "--aide-steps", "3", "--aide-preserve-source", *FLAGS)
    errors = [n["error"] for n in nodes_of(pytester)[1:]]
    assert len(errors) == 3 and all(errors), errors
    assert "outside `total` (lines 13-19 of the parent): line 4 of the parent changed" \
        in errors[0], errors[0]
    assert "edit 1 of 1 did not match the definition of `total` (only it may change)" \
        in errors[1], errors[1]
    assert "outside `total`" in errors[2] and "new lines before line 3" in errors[2], errors[2]
    assert (pytester.path / "shapes.py").read_text() == original


HOT = '''
def hot(values):
    """The one measured."""
    out = 0
    for value in values:
        time.sleep(0.002)
        out += value
    return out
'''


def big_module(functions: int = 300) -> str:
    """About 3,000 lines: filler functions around the one the test measures."""
    filler = '''
def filler_{i}(values, offset={i}):
    """Filler number {i}: shifts and scales each value, then sums them."""
    shifted = [value + offset for value in values]
    scaled = [value * (offset % 7 + 1) for value in shifted]
    clipped = [min(max(value, -1_000_000), 1_000_000) for value in scaled]
    total = 0
    for value in clipped:
        total += value
    return total
'''
    parts = ['"""A large module."""\nimport time\n\nLIMIT = 1_000_000\n']
    parts += [filler.format(i=i) for i in range(functions // 2)]
    parts.append(HOT)
    parts += [filler.format(i=i) for i in range(functions // 2, functions)]
    return "\n".join(parts)


BIG_TESTS = """\
import pytest
from big import hot


@pytest.mark.optimize(metric="mean", target={target!r})
def test_speed(benchmark):
    assert benchmark.pedantic(hot, args=([1, 2, 3],), rounds=6, iterations=1) == 6
"""


def first_prompt(pytester: pytest.Pytester, httpserver, target: str) -> str:
    pytester.makepyfile(test_big=BIG_TESTS.format(target=target))
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text("no code at all"), fake.text("no code"), fake.text("none"))
    run_with(pytester, fake, "--aide-steps", "1", "--aide-preserve-source", *FLAGS)
    assert fake.received, "no request reached the fake server"
    httpserver.clear()
    return fake.received[0].text()


def test_a_function_targets_prompt_is_a_small_part_of_the_modules(
    pytester: pytest.Pytester, httpserver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = big_module()
    assert module.count("\n") >= 3000
    pytester.makepyfile(big=module)
    use_fake_openai(monkeypatch)
    whole = first_prompt(pytester, httpserver, "big")
    function = first_prompt(pytester, httpserver, "big:hot")
    assert "time.sleep(0.002)" in function and "def filler_3(values, offset=3):" in function
    print(f"prompt characters: function target {len(function)}, module target {len(whole)}")
    assert len(function) <= 0.15 * len(whole), \
        f"function target: {len(function)} characters; module target: {len(whole)}"


def test_two_markers_of_one_file_that_name_different_targets_are_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(shapes=MODULE, test_shapes="""
        import pytest
        from shapes import total, unrelated

        @pytest.mark.optimize(metric="mean", target="shapes:total")
        def test_a(benchmark):
            benchmark(total, [1])

        @pytest.mark.optimize(metric="mean", target=unrelated)
        def test_b(benchmark):
            benchmark(unrelated, 1, 2)
        """)
    result = pytester.runpytest("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_shapes.py::test_b: the markers of shapes.py name "
                                 "different targets in it ('shapes:total' and "
                                 "'shapes:unrelated')*give the same target=*"])


FASTER_HOT = HOT.replace("time.sleep(0.002)", "time.sleep(0.0005)")


def tokens_of_one_step(pytester: pytest.Pytester, httpserver, target: str, reply: str
                       ) -> tuple[int, str, str]:
    """The tokens (in plus out, as the SDK read them from the server) of a one-step run
    whose model answers ``reply``, and the target file before and after."""
    pytester.makepyfile(big=big_module(), test_big=BIG_TESTS.format(target=target))
    before = (pytester.path / "big.py").read_text()
    fake = FakeProvider(httpserver, "openai")
    fake.counts_tokens = True
    fake.push(fake.text(code_reply(reply, "Sleep less.")))
    result = run_with(pytester, fake, "--aide-steps", "1", *FLAGS)
    assert result.ret == 0, result.stdout.str()
    httpserver.clear()
    (path,) = pytester.path.glob(".aide/*/journal.json")
    usage = Journal.load(path).total_usage()
    shutil.rmtree(path.parent)
    after = (pytester.path / "big.py").read_text()
    return usage.input_tokens + usage.output_tokens, before, after


def test_a_function_target_spends_a_small_part_of_the_tokens_of_its_whole_module(
    pytester: pytest.Pytester, httpserver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = big_module()
    assert module.count("\n") >= 3000 and HOT in module
    use_fake_openai(monkeypatch)
    whole, _, written_whole = tokens_of_one_step(pytester, httpserver, "big",
                                                 module.replace(HOT, FASTER_HOT))
    function, original, written = tokens_of_one_step(pytester, httpserver, "big:hot",
                                                     FASTER_HOT)
    print(f"tokens of one step: function target {function}, module target {whole}")
    assert function <= 0.15 * whole, f"function target: {function} tokens; module: {whole}"
    # the same change written both ways, and nothing outside the function
    assert written.rstrip("\n") == written_whole.rstrip("\n") != original.rstrip("\n")
    changed = [line for line in difflib.unified_diff(original.splitlines(),
                                                     written.splitlines(), lineterm="", n=0)
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert changed == ["-        time.sleep(0.002)", "+        time.sleep(0.0005)"]
