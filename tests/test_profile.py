"""The prompts say where the time goes: the original's benchmarked call, profiled once in
its timed run, names the target's hottest functions; the model is shown them."""

from __future__ import annotations

import base64
import pickle
import types

import pytest
from llm_fake import FakeProvider, code_reply, run_with, use_fake_openai

from pytest_aide.evaluation.profile import profile_call
from pytest_aide.metrics import HotSpot

MODULE = """\
def _distance(a, b):
    total = 0
    for x in a:
        for y in b:
            total += (x - y) * (x - y)
    return total


def _label(value):
    return str(value)


def nearest(points, queries):
    return [_label(min(points, key=lambda p: _distance(p, q))) for q in queries]
"""


def test_the_hottest_function_comes_first_with_its_share() -> None:
    module = types.ModuleType("geometry")
    module.__file__ = "<geometry>"
    exec(compile(MODULE, module.__file__, "exec"), vars(module))
    points = [(i, i + 1, i + 2) for i in range(60)]
    blob = pickle.dumps(((points, points[:20]), {}))
    spots = profile_call(module, {"name": "nearest",
                                  "args": base64.b64encode(blob).decode("ascii")})
    assert spots[0].function == "_distance" and spots[0].line == 1
    assert spots[0].own > 0.5 and spots[0].calls == 60 * 20
    assert {s.function for s in spots} >= {"nearest", "_distance", "_label"}
    assert all(0 <= s.own <= s.total <= 1 for s in spots)
    assert profile_call(module, {"name": "missing", "args": ""}) == []


TESTS = """\
import pytest
from geometry import nearest

POINTS = [(i, i + 1, i + 2) for i in range(60)]


def test_nearest():
    assert nearest(POINTS, [(0, 1, 2)]) == ["(0, 1, 2)"]


@pytest.mark.optimize(metric="mean")
def test_speed(benchmark):
    benchmark.pedantic(nearest, args=(POINTS, POINTS[:20]), rounds=5, iterations=1)
"""


def test_draft_and_improve_prompts_show_where_the_originals_time_goes(
    pytester: pytest.Pytester, httpserver, monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytester.makepyfile(geometry=MODULE, test_geometry=TESTS)
    use_fake_openai(monkeypatch)
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(code_reply(MODULE.replace("    total = 0\n", "    total = 0  # same\n"))),
              fake.text(code_reply(MODULE + "\n# still the same\n")))
    run_with(pytester, fake, "--aide-steps", "2", "--aide-preserve-source",
             "--aide-sandbox", "off")
    prompts = [str(r.body["messages"][-1]["content"]) for r in fake.received]
    assert len(prompts) == 2
    for prompt in prompts:
        assert "# Where the time goes" in prompt
        assert "## `test_geometry.py::test_speed`" in prompt
        hottest = prompt.split("# Where the time goes")[1].split("\n- ")[1]
        assert hottest.startswith("`_distance` (line 1): "), hottest
        assert "1,200 calls" in hottest


def test_a_debug_prompt_has_no_profile() -> None:
    from pytest_aide.journal import Node
    from pytest_aide.proposers.base import ProposalRequest
    from pytest_aide.proposers.prompts import build_prompt

    node = Node(1, 0, 1, "draft", "", "x = 1\n", error="boom")
    request = ProposalRequest("debug", node, "m.py", "m", "x = 1\n", {}, [],
                              profile={"t.py::test_speed": [HotSpot("f", 3, 0.9, 0.95, 10)]})
    assert "Where the time goes" not in build_prompt(request).user
    request.operator = "improve"
    assert "- `f` (line 3): 90% own, 95% with its callees, 10 calls" in \
        build_prompt(request).user
