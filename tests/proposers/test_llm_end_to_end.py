"""A whole ``pytest --aide-steps`` run with each LLM provider, served by a loopback fake.

The pytest run is a subprocess; the fake provider runs in this process. The key comes from
the environment, the endpoint from ``--aide-base-url``, exactly as a user would set them.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from conftest import SLOW_MODULE as SLOW
from llm_fake import KEY_VARIABLE, PROVIDERS, FakeProvider, code_reply

from pytest_aide.journal import BUGGY, Journal

FAST = re.sub(r"^CHUNK = 2 .*$", "CHUNK = 16  # fewer sleeps per call", SLOW, flags=re.M)
WRONG_BUT_FAST = FAST.replace("total +=", "total -=")


@pytest.fixture
def llm_project(slow_project: pytest.Pytester) -> pytest.Pytester:
    """The shared project: slow.py (its CHUNK decides its speed) and its tests."""
    return slow_project


def model_for(provider: str) -> str:
    return {"openai": "openai:some-model", "gemini": "gemini:gemini-some-model",
            "anthropic": "anthropic:claude-some-model"}[provider]


def run_with_fake(project: pytest.Pytester, httpserver, provider: str, reply_code: str,
                  monkeypatch: pytest.MonkeyPatch) -> tuple[pytest.RunResult, FakeProvider]:
    fake = FakeProvider(httpserver, provider)
    fake.push(*[fake.text(code_reply(reply_code, "Chunk the work.")) for _ in range(6)])
    for variable in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "ANTHROPIC_API_KEY",
                     "AIDE_MODEL", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(KEY_VARIABLE[provider], "test-key")
    result = project.runpytest_subprocess(
        "--aide-steps", "2", "--aide-model", model_for(provider),
        "--aide-base-url", fake.base_url, "--aide-confirm-rounds", "7",
    )
    return result, fake


def only_journal(root: Path) -> Journal:
    (path,) = sorted(root.glob(".aide/*/journal.json"))
    return Journal.load(path)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_correct_faster_module_from_the_llm_is_applied(
    llm_project: pytest.Pytester, httpserver, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = llm_project.path / "slow.py"
    result, fake = run_with_fake(llm_project, httpserver, provider, FAST, monkeypatch)
    assert result.ret == 0, result.stdout.str()
    assert target.read_text() == FAST
    journal = only_journal(llm_project.path)
    assert journal.best is not None and journal.best.code == FAST
    assert journal.best.usage.input_tokens == 100  # as the fake reported
    first_prompt = fake.received[0].text()
    assert "def work(n):" in first_prompt and "def test_correct(n):" in first_prompt
    assert "metric `mean` (lower is better)" in first_prompt


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wrong_faster_module_from_the_llm_is_kept_out(
    llm_project: pytest.Pytester, httpserver, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = llm_project.path / "slow.py"
    before = target.read_text()
    result, _ = run_with_fake(llm_project, httpserver, provider, WRONG_BUT_FAST, monkeypatch)
    assert target.read_text() == before
    journal = only_journal(llm_project.path)
    assert journal.best_id in (None, 0)
    first = journal.nodes[1]
    assert first.code == WRONG_BUT_FAST and first.status == BUGGY
    assert "test_correct" in first.error
    assert result.ret == 0, result.stdout.str()


def test_requests_that_keep_failing_stop_the_search(
    llm_project: pytest.Pytester, httpserver, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeProvider(httpserver, "openai")
    fake.push(*[fake.error(503) for _ in range(10)])
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("AIDE_LLM_MAX_RETRIES", "0")
    before = (llm_project.path / "slow.py").read_text()
    result = llm_project.runpytest_subprocess(
        "--aide-steps", "8", "--aide-model", "openai:some-model",
        "--aide-base-url", fake.base_url, "--aide-confirm-rounds", "7",
    )
    assert (llm_project.path / "slow.py").read_text() == before
    journal = only_journal(llm_project.path)
    assert len(journal.nodes) == 4  # the baseline, then three failed requests
    assert all("HTTP 503" in n.error for n in journal.nodes[1:])
    assert "in a row" in journal.outcome
    assert len(fake.received) == 3
    # a run that could make no proposal at all is not a success, and says why
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines(["*aide error: slow.py: no proposal could be made in 8 steps*"
                                 "HTTP 503*"])


@pytest.mark.parametrize(("fail_on", "status"), [("error", pytest.ExitCode.TESTS_FAILED),
                                                 ("never", pytest.ExitCode.OK)])
def test_a_closed_port_is_named_and_the_run_fails_unless_told_never(
    llm_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fail_on: str,
    status: pytest.ExitCode,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("AIDE_LLM_MAX_RETRIES", "0")
    port = closed_port()
    result = llm_project.runpytest_subprocess(
        "--aide-steps", "2", "--aide-model", "openai:some-model", "--aide-fail-on", fail_on,
        "--aide-base-url", f"http://127.0.0.1:{port}/v1",
    )
    assert result.ret == status, result.stdout.str()
    journal = only_journal(llm_project.path)
    assert f"127.0.0.1:{port}" in journal.nodes[-1].error  # a connection failure names the URL
    if fail_on == "error":
        result.stdout.fnmatch_lines([f"*no proposal could be made*127.0.0.1:{port}*"])


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status", [401, 404])
def test_a_refused_key_or_model_is_a_usage_error_at_the_first_request(
    llm_project: pytest.Pytester, httpserver, monkeypatch: pytest.MonkeyPatch, provider: str,
    status: int,
) -> None:
    fake = FakeProvider(httpserver, provider)
    fake.push(*[fake.error(status, message="The model `typo-model` does not exist")] * 4)
    for variable in ("OPENAI_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "ANTHROPIC_API_KEY",
                     "AIDE_MODEL", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(KEY_VARIABLE[provider], "test-key")
    before = (llm_project.path / "slow.py").read_text()
    model = model_for(provider).replace("some-model", "typo-model")
    result = llm_project.runpytest_subprocess(
        "--aide-steps", "5", "--aide-model", model, "--aide-base-url", fake.base_url,
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    error = result.stderr.str()
    assert f"HTTP {status}" in error and "does not exist" in error  # the provider's words
    assert model.split(":")[1] in error and fake.base_url in error
    assert len(fake.received) == 1  # not retried, no further step
    assert (llm_project.path / "slow.py").read_text() == before


def test_fail_on_no_improvement_fails_a_run_that_found_nothing_better(
    llm_project: pytest.Pytester, httpserver, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeProvider(httpserver, "openai")
    fake.push(*[fake.text(code_reply(WRONG_BUT_FAST, "Subtract.")) for _ in range(3)])
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    result = llm_project.runpytest_subprocess(
        "--aide-steps", "1", "--aide-model", "openai:some-model",
        "--aide-base-url", fake.base_url, "--aide-fail-on", "no-improvement",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines(["*nothing was confirmed better than the original*"])


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_missing_key_is_a_usage_error(
    llm_project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    result = llm_project.runpytest_subprocess(
        "--aide-steps", "2", "--aide-model", "anthropic:claude-some-model"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ANTHROPIC_API_KEY*"])


def test_budget_stops_the_run_when_the_estimate_reaches_it(
    llm_project: pytest.Pytester, httpserver, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeProvider(httpserver, "openai")
    fake.push(*[fake.text(code_reply(FAST, "Chunk the work.")) for _ in range(6)])
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    # gpt-5.5 is priced; the fake reports 100 tokens in and some out per reply, far over
    # a budget of a millionth of a dollar after the first proposal.
    result = llm_project.runpytest_subprocess(
        "--aide-steps", "5", "--aide-model", "openai:gpt-5.5", "--aide-budget", "0.000001",
        "--aide-base-url", fake.base_url, "--aide-confirm-rounds", "7",
        "--aide-preserve-source",
    )
    assert result.ret == 0, result.stdout.str()
    journal = only_journal(llm_project.path)
    assert len(journal.nodes) == 2
    assert "reached the budget" in journal.outcome
    cost = journal.total_usage().cost_usd
    assert cost is not None and cost > 0.000001
    result.stdout.fnmatch_lines(["*reached the budget*", "*$*"])
