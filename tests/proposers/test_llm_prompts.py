"""What the prompts tell the model, per operator (AIDE's sections, for a pytest target)."""

from __future__ import annotations

from pytest_aide.journal import BUGGY, GOOD, Node
from pytest_aide.proposers import prompts
from pytest_aide.proposers.base import ObjectiveInfo, ProposalRequest

ORIGINAL = "def work(n):\n    return sum(range(n))\n"


def node(id: int, parent: int | None, operator: str, code: str = ORIGINAL, **kw) -> Node:
    return Node(id=id, parent=parent, step=id, operator=operator, plan=kw.pop("plan", ""),
                code=code, **kw)


def request(operator: str, parent: Node, memory: list[Node], error: str = "") -> ProposalRequest:
    return ProposalRequest(
        operator=operator, parent=parent, target_path="pkg/work.py", module="pkg.work",
        original_code=ORIGINAL, test_sources={"tests/test_work.py": "def test_w(): ..."},
        objectives=[ObjectiveInfo("tests/test_work.py::test_w", "accuracy", True, 0.5, None)],
        memory=memory, error_output=error,
    )


def test_draft_asks_for_a_distinct_approach_from_the_original() -> None:
    root = node(0, None, "baseline", status=GOOD)
    prompt = prompts.build_prompt(request("draft", root, [root]))
    assert prompt.system == prompts.GENERAL_ROLE  # accuracy: not a performance engineer's job
    assert "# Original code" in prompt.user and ORIGINAL.strip() in prompt.user
    assert "distinct approach" in prompt.user
    assert "metric `accuracy` (higher is better); baseline 0.5" in prompt.user
    assert "best so far" not in prompt.user  # none yet
    assert "pkg/work.py" in prompt.user and "pkg.work" in prompt.user


def test_memory_summarizes_plans_results_and_why_nodes_failed() -> None:
    root = node(0, None, "baseline", status=GOOD,
                metrics={"tests/test_work.py::test_w": 0.5})
    good = node(1, 0, "draft", plan="Use numpy.", status=GOOD,
                metrics={"tests/test_work.py::test_w": 0.75})
    bad = node(2, 1, "improve", plan="Cache results.", status=BUGGY,
               error="guard test failed: tests/test_work.py::test_w\nlong trace...")
    text = prompts.build_prompt(request("improve", good, [root, good, bad])).user
    assert "- node 1 (draft of node 0): Use numpy.\n  result: accuracy=0.75" in text
    assert ("- node 2 (improve of node 1): Cache results.\n"
            "  result: buggy: guard test failed") in text
    assert "long trace" not in text
    assert "# Current code (node 1)" in text and "ONE specific, actionable improvement" in text


def test_debug_shows_the_failure_output_trimmed() -> None:
    buggy = node(3, 0, "draft", code="def work(n):\n    return 1/0\n", status=BUGGY)
    output = "ZeroDivisionError at the start\n" + "x" * 20000 + "\nthe last line"
    text = prompts.build_prompt(request("debug", buggy, [buggy], error=output)).user
    assert "return 1/0" in text and "# Current code (node 3, buggy)" in text
    assert "ZeroDivisionError at the start" in text and "the last line" in text
    assert "characters omitted" in text and len(text) < 12000


def test_large_modules_are_steered_to_edit_blocks() -> None:
    big = "\n".join(f"X{i} = {i}" for i in range(prompts.LARGE_MODULE_LINES + 5)) + "\n"
    root = node(0, None, "baseline", code=big, status=GOOD)
    text = prompts.build_prompt(request("improve", root, [root])).user
    assert "prefer edit blocks" in text
    small = prompts.build_prompt(request("improve", node(0, None, "baseline"), [])).user
    assert "prefer edit blocks" not in small


def test_code_holding_a_fence_is_quoted_with_a_longer_fence() -> None:
    assert prompts.fenced('s = """\n```\n"""') == '````python\ns = """\n```\n"""\n````'


def test_the_role_is_a_performance_engineer_only_when_every_metric_is_a_timing() -> None:
    timed = ObjectiveInfo("tests/test_work.py::test_speed", "mean", False)
    scored = ObjectiveInfo("tests/test_work.py::test_w", "accuracy", True)
    assert prompts.role([timed]) == prompts.ROLE
    assert "performance engineer" in prompts.ROLE
    assert prompts.role([timed, scored]) == prompts.GENERAL_ROLE
    assert "prompt template" in prompts.GENERAL_ROLE
    assert "performance" not in prompts.GENERAL_ROLE
