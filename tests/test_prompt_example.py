"""The prompt-engineering example end to end with a scripted model: the optimizer's LLM is a
loopback fake that speaks OpenAI's wire format, and the model the example's tests score the
prompt with is the example's own loopback stand-in (its conftest.py). Nothing leaves the
machine; what is checked is the plumbing: a prompt rewritten as text, judged by the tests,
the copied-answers cheat caught, the winner written and shown as prose in the report."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest
from llm_fake import FakeProvider, code_reply, use_fake_openai

from pytest_aide.journal import BUGGY, GOOD, Journal

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "prompt-engineering"
ORIGINAL = (EXAMPLE / "sentiment_prompt.py").read_text(encoding="utf-8")

pytestmark = pytest.mark.skipif(importlib.util.find_spec("openai") is None,
                                reason="needs openai")

#: A prompt whose worked examples cover more of what reviews say (none of the scored ones).
BETTER = ORIGINAL.replace(
    '    ("Fast delivery and a lovely finish.", "positive"),\n',
    '    ("Fast delivery and a lovely finish.", "positive"),\n'
    '    ("The battery died and I returned it, cheap and terrible.", "negative"),\n'
    '    ("Happy with it: comfortable, quiet and solid.", "positive"),\n'
    '    ("It arrived damaged and stopped working.", "negative"),\n'
    '    ("Easy to clean, great value, I use it all week.", "positive"),\n',
).replace("SHOTS = 2  # aide: 0..3", "SHOTS = 7  # aide: 0..7")

#: The cheat: the scored reviews themselves, with their answers, pasted into the prompt.
COPIED = ORIGINAL.replace(
    '    ("Fast delivery and a lovely finish.", "positive"),\n',
    '    ("Fast delivery and a lovely finish.", "positive"),\n'
    '    ("Stopped charging after two days.", "negative"),\n'
    '    ("Cheap plastic, returned it.", "negative"),\n'
    '    ("Terrible sound and a weak battery.", "negative"),\n'
    '    ("Arrived damaged and support never answered.", "negative"),\n'
    '    ("Comfortable, quiet and easy to clean.", "positive"),\n'
    '    ("Battery lasts all week, very happy.", "positive"),\n',
).replace("SHOTS = 2  # aide: 0..3", "SHOTS = 9  # aide: 0..9")


def test_a_scripted_model_rewrites_the_prompt_and_the_report_shows_it_as_text(
    pytester: pytest.Pytester, httpserver, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert BETTER != ORIGINAL and COPIED != ORIGINAL  # the example still has those lines
    project = pytester.path / "prompt-engineering"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", ".aide"))
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(code_reply(COPIED, "Show the model more labelled reviews.")),
              fake.text(code_reply(BETTER, "Cover batteries, returns and damage.")),
              *[fake.text(code_reply(BETTER, "Again.")) for _ in range(3)])
    use_fake_openai(monkeypatch)
    monkeypatch.delenv("PROMPT_EXAMPLE_BASE_URL", raising=False)

    result = pytester.runpytest_subprocess(
        "prompt-engineering", "-p", "no:cacheprovider", "--aide-steps", "3",
        "--aide-model", "openai:test-model", "--aide-base-url", fake.base_url,
    )

    assert result.ret == 0, result.stdout.str()
    # A score: build_messages' new answers are the point, so they are not replayed.
    result.stdout.fnmatch_lines(["aide: the original's answers are not replayed: no marked "
                                 "test measures speed*"])
    (journal_path,) = pytester.path.glob(".aide/*/journal.json")
    journal = Journal.load(journal_path)
    copied = next(node for node in journal.nodes if node.code == COPIED)
    assert copied.status == BUGGY and "test_no_scored_review_is_in_the_prompt" in copied.error
    assert journal.best is not None and journal.best.code == BETTER
    assert journal.best.status == GOOD and journal.best.objective > journal.nodes[0].objective
    assert (project / "sentiment_prompt.py").read_text(encoding="utf-8") == BETTER
    # The model was shown the prompt module and the guard that forbids copying.
    first_prompt = fake.received[0].text()
    system = fake.received[0].body["messages"][0]["content"]
    assert "prompt template" in system and "performance" not in system  # accuracy, not speed
    assert "EXAMPLES = [" in first_prompt
    assert "test_no_scored_review_is_in_the_prompt" in first_prompt
    # The report's diff reads as the prompt's new lines, not as escaped code.
    report = (journal_path.parent / "report.md").read_text(encoding="utf-8")
    assert re.search(r'^\+ +\("It arrived damaged and stopped working\.", "negative"\),$',
                     report, re.M), report


def stand_in_handler():
    """The example's stand-in model, served from this process (outside any sandbox)."""
    spec = importlib.util.spec_from_file_location("prompt_example_conftest",
                                                  EXAMPLE / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)

    def answer(request):
        import json

        from werkzeug import Response

        body = json.loads(request.get_data(as_text=True))
        return Response(json.dumps({
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": module.stand_in_answer(body["messages"])}}],
        }), content_type="application/json")

    return answer


def test_a_server_outside_the_sandbox_needs_aide_network_and_the_error_says_so(
    pytester: pytest.Pytester, httpserver, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = pytester.path / "prompt-engineering"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", ".aide"))
    httpserver.expect_request("/v1/chat/completions").respond_with_handler(stand_in_handler())
    monkeypatch.setenv("PROMPT_EXAMPLE_BASE_URL", httpserver.url_for("/v1"))
    args = ["prompt-engineering", "-p", "no:cacheprovider", "--aide-steps", "1",
            "--aide-model", "tune", "--aide-sandbox", "bwrap", "--aide-preserve-source"]

    closed = pytester.runpytest_subprocess(*args)
    assert closed.ret != 0
    closed.stdout.fnmatch_lines(["*original code does not pass*",
                                 "*sandbox without the network*pass --aide-network*"])

    opened = pytester.runpytest_subprocess(*args, "--aide-network")
    assert opened.ret == 0, opened.stdout.str()
    opened.stdout.fnmatch_lines(["step 0/1 baseline  accuracy=0.3333*"])
