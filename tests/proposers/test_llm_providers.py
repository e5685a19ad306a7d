"""Each LLM provider through its real SDK, against a fake server on loopback."""

from __future__ import annotations

import time

import pytest
from llm_fake import KEY_VARIABLE, PROVIDERS, FakeProvider, code_reply

from pytest_aide.journal import GOOD, Node
from pytest_aide.proposers import prompts
from pytest_aide.proposers.base import (
    ObjectiveInfo,
    ProposalRequest,
    ProposerConfigError,
    ProposerError,
    ProposerRefused,
    ProposerRequestError,
)
from pytest_aide.proposers.llm import LLMProposer, RetryPolicy
from pytest_aide.proposers.select import make_proposer
from pytest_aide.settings import AideSettings

ORIGINAL = """\
ORIGINAL_SOURCE_MARKER = True


def work(n):
    total = 0
    for i in range(n):
        total += i
    return total
"""

FAST = """\
def work(n):
    return n * (n - 1) // 2
"""

TESTS = """\
from slow import work


def test_correct_TEST_SOURCE_MARKER():
    assert work(10) == 45
"""


@pytest.fixture(params=PROVIDERS)
def fake(request: pytest.FixtureRequest, httpserver) -> FakeProvider:
    return FakeProvider(httpserver, request.param)


@pytest.fixture(autouse=True)
def fast_sdk_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """openai and anthropic take no backoff argument: shrink their module constant instead."""
    import anthropic._base_client
    import openai._base_client

    monkeypatch.setattr(openai._base_client, "INITIAL_RETRY_DELAY", 0.01)
    monkeypatch.setattr(anthropic._base_client, "INITIAL_RETRY_DELAY", 0.01)


def proposer_for(fake: FakeProvider, *, reflect: bool = False, max_retries: int = 2,
                 model: str = "test-model", timeout: float = 10) -> LLMProposer:
    retry = RetryPolicy(max_retries=max_retries, timeout=timeout, initial_delay=0.01,
                        max_delay=0.05)
    if fake.provider == "openai":
        from pytest_aide.proposers.openai import OpenAIChat

        backend = OpenAIChat(model, "test-key", base_url=fake.base_url, retry=retry)
    elif fake.provider == "gemini":
        from pytest_aide.proposers.gemini import GeminiChat

        backend = GeminiChat(model, "test-key", base_url=fake.base_url, retry=retry)
    else:
        from pytest_aide.proposers.anthropic import AnthropicChat

        backend = AnthropicChat(model, "test-key", base_url=fake.base_url, retry=retry)
    return LLMProposer(backend, reflect=reflect)


def make_request(operator: str = "improve") -> ProposalRequest:
    root = Node(id=0, parent=None, step=0, operator="baseline", plan="original", code=ORIGINAL,
                metrics={"tests/test_slow.py::test_speed": 0.0125}, status=GOOD)
    return ProposalRequest(
        operator=operator,
        parent=root,
        target_path="slow.py",
        module="slow",
        original_code=ORIGINAL,
        test_sources={"tests/test_slow.py": TESTS},
        objectives=[ObjectiveInfo("tests/test_slow.py::test_speed", "mean", False, 0.0125, 0.0101)],
        memory=[root],
        instructions="USER_INSTRUCTION_MARKER",
    )


def test_good_reply_gives_the_code_plan_and_tokens(fake: FakeProvider) -> None:
    fake.push(fake.text(code_reply(FAST, "Use the closed form."), tokens=(1234, 56)))
    proposal = proposer_for(fake).propose(make_request())
    assert proposal.code == FAST
    assert proposal.plan == "Use the closed form."
    assert (proposal.usage.input_tokens, proposal.usage.output_tokens) == (1234, 56)
    assert proposal.usage.cost_usd is None  # "test-model" has no known price
    assert len(fake.received) == 1


def test_prompt_carries_target_tests_metric_and_instructions(fake: FakeProvider) -> None:
    fake.push(fake.text(code_reply(FAST)))
    proposer_for(fake).propose(make_request())
    sent = fake.received[0].text()
    assert "ORIGINAL_SOURCE_MARKER" in sent
    assert "def test_correct_TEST_SOURCE_MARKER" in sent
    assert "metric `mean` (lower is better)" in sent
    assert "baseline 0.0125" in sent and "best so far 0.0101" in sent
    assert "USER_INSTRUCTION_MARKER" in sent
    assert "slow.py" in sent


def test_known_model_gets_a_cost_estimate(fake: FakeProvider) -> None:
    from pytest_aide.proposers.prices import price_of
    from pytest_aide.proposers.select import DEFAULT_MODELS

    model = DEFAULT_MODELS[fake.provider]
    fake.push(fake.text(code_reply(FAST), tokens=(2_000_000, 1_000_000)))
    proposal = proposer_for(fake, model=model).propose(make_request())
    per_input, per_output = price_of(fake.provider, model)  # type: ignore[misc]
    assert proposal.usage.cost_usd == pytest.approx(2 * per_input + per_output)


def test_503_then_success_is_retried_by_the_sdk(fake: FakeProvider) -> None:
    fake.push(fake.error(503), fake.text(code_reply(FAST)))
    proposal = proposer_for(fake).propose(make_request())
    assert proposal.code == FAST
    assert len(fake.received) == 2


def test_429_with_retry_after_then_success(fake: FakeProvider) -> None:
    fake.push(fake.error(429, {"retry-after": "0.3"}), fake.text(code_reply(FAST)))
    began = time.monotonic()
    proposal = proposer_for(fake).propose(make_request())
    elapsed = time.monotonic() - began
    assert proposal.code == FAST
    assert len(fake.received) == 2
    if fake.provider != "gemini":  # google-genai backs off on its own schedule
        assert elapsed >= 0.3  # the backoff alone would be about 0.01 s


@pytest.fixture
def threaded_server():
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_timeout_is_retried(threaded_server, provider: str) -> None:
    fake = FakeProvider(threaded_server, provider)
    fake.push(fake.slow(fake.text(code_reply("A = 1\n")), 1.0), fake.text(code_reply(FAST)))
    proposer = proposer_for(fake, timeout=0.3)
    assert proposer.propose(make_request()).code == FAST
    assert len(fake.received) == 2


def test_request_that_keeps_failing_is_a_request_error(fake: FakeProvider) -> None:
    fake.push(fake.error(503), fake.error(503))
    with pytest.raises(ProposerRequestError, match="503"):
        proposer_for(fake, max_retries=1).propose(make_request())
    assert len(fake.received) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_refusal_is_not_retried_and_says_what_where_and_why(fake: FakeProvider,
                                                              status: int) -> None:
    fake.push(*[fake.error(status, message="The model `typo` does not exist")] * 3)
    with pytest.raises(ProposerRefused) as raised:
        proposer_for(fake, max_retries=2, model="typo").propose(make_request())
    text = str(raised.value)
    assert f"HTTP {status}" in text and "does not exist" in text
    assert "'typo'" in text and fake.base_url in text
    assert len(fake.received) == 1


def test_a_transient_failure_is_no_refusal(fake: FakeProvider) -> None:
    fake.push(fake.error(503), fake.error(503))
    with pytest.raises(ProposerRequestError) as raised:
        proposer_for(fake, max_retries=1).propose(make_request())
    assert not isinstance(raised.value, ProposerRefused)
    assert fake.base_url in str(raised.value)


def test_malformed_json_is_a_request_error(fake: FakeProvider) -> None:
    from llm_fake import Reply

    fake.push(Reply(body='{"choices": [ this is not json'))
    with pytest.raises(ProposerRequestError, match=r"malformed response.*JSON"):
        proposer_for(fake, max_retries=0).propose(make_request())


def test_json_of_the_wrong_shape_is_a_request_error(fake: FakeProvider) -> None:
    from llm_fake import Reply

    fake.push(Reply(body={"unexpected": "shape"}))
    with pytest.raises(ProposerRequestError, match="malformed response"):
        proposer_for(fake, max_retries=0).propose(make_request())
    assert len(fake.received) == 1


def test_reply_without_code_is_asked_again(fake: FakeProvider) -> None:
    fake.push(fake.text("I would use the closed form."), fake.text(code_reply(FAST)))
    proposal = proposer_for(fake).propose(make_request())
    assert proposal.code == FAST
    assert len(fake.received) == 2
    second = fake.received[1].text()
    assert prompts.NO_CODE_AGAIN in second
    assert "I would use the closed form." in second  # the model sees its own reply


def test_reply_without_code_three_times_is_an_error(fake: FakeProvider) -> None:
    fake.push(*[fake.text("Just a thought, no code.", tokens=(10, 5)) for _ in range(3)])
    with pytest.raises(ProposerError, match="no code after 3 requests") as raised:
        proposer_for(fake).propose(make_request())
    assert not isinstance(raised.value, ProposerRequestError)
    assert raised.value.usage.input_tokens == 30  # type: ignore[attr-defined]
    assert len(fake.received) == 3


def test_syntax_error_is_reported_and_not_retried(fake: FakeProvider) -> None:
    fake.push(fake.text(code_reply("def work(n:\n    return n\n")))
    with pytest.raises(ProposerError, match="SyntaxError") as raised:
        proposer_for(fake).propose(make_request())
    assert not isinstance(raised.value, ProposerRequestError)
    assert len(fake.received) == 1


def test_edit_blocks_are_applied_to_the_parent(fake: FakeProvider) -> None:
    reply = (
        "Replace the loop by the closed form.\n\n"
        "<<<<<<< SEARCH\n"
        "    total = 0\n    for i in range(n):\n        total += i\n    return total\n"
        "=======\n"
        "    return n * (n - 1) // 2\n"
        ">>>>>>> REPLACE\n"
    )
    fake.push(fake.text(reply))
    proposal = proposer_for(fake).propose(make_request())
    assert proposal.code == ORIGINAL.split("    total = 0")[0] + "    return n * (n - 1) // 2\n"
    assert proposal.plan == "Replace the loop by the closed form."


def test_edit_block_that_does_not_match_is_an_error(fake: FakeProvider) -> None:
    reply = (
        "Plan.\n<<<<<<< SEARCH\n    while True:\n        pass\n=======\n    return 0\n"
        ">>>>>>> REPLACE\n"
    )
    fake.push(fake.text(reply))
    with pytest.raises(ProposerError, match=r"edit 1 of 1 did not match.*while True"):
        proposer_for(fake).propose(make_request())


def test_truncated_reply_is_retried_asking_for_edit_blocks(fake: FakeProvider) -> None:
    fake.push(fake.text("Plan.\n```python\ndef work(n):\n    tot", truncated=True),
              fake.text(code_reply(FAST)))
    proposal = proposer_for(fake).propose(make_request())
    assert proposal.code == FAST
    assert prompts.TRUNCATED_AGAIN in fake.received[1].text()


def test_truncated_twice_is_an_error_not_a_crash(fake: FakeProvider) -> None:
    partial = fake.text("Plan.\n```python\ndef work(n):\n    tot", truncated=True)
    fake.push(partial, partial)
    with pytest.raises(ProposerError, match="cut off at the output token limit"):
        proposer_for(fake).propose(make_request())
    assert len(fake.received) == 2


def test_reflection_critiques_then_applies_the_instructions(fake: FakeProvider) -> None:
    buggy = "def work(n):\n    return n * (n + 1) // 2\n"
    fake.push(
        fake.text(code_reply(buggy, "Closed form.")),
        fake.text("Review: off by one.\nInstructions:\n1. Use n - 1 instead of n + 1."),
        fake.text(code_reply(FAST, "Applied the review.")),
    )
    proposal = proposer_for(fake, reflect=True).propose(make_request())
    assert proposal.code == FAST
    assert "off by one" in proposal.plan
    critique_request, edit_request = fake.received[1].text(), fake.received[2].text()
    assert "n * (n + 1) // 2" in critique_request and "DO NOT WRITE ANY CODE" in critique_request
    assert "1. Use n - 1 instead of n + 1." in edit_request
    assert proposal.usage.input_tokens == 300  # three calls of 100 input tokens


def test_reflection_that_finds_nothing_keeps_the_candidate(fake: FakeProvider) -> None:
    fake.push(fake.text(code_reply(FAST)), fake.text(prompts.NO_CHANGES))
    proposal = proposer_for(fake, reflect=True).propose(make_request())
    assert proposal.code == FAST
    assert len(fake.received) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_make_proposer_uses_the_key_and_base_url(httpserver, provider: str) -> None:
    fake = FakeProvider(httpserver, provider)
    fake.push(fake.text(code_reply(FAST)))
    settings = AideSettings(steps=1, model=f"{provider}:test-model", base_url=fake.base_url)
    proposer, notice = make_proposer(settings, ORIGINAL, env={KEY_VARIABLE[provider]: "sekrit"})
    # "test-model" is in no price table: said at the start, with the way to give its price
    assert notice is not None and "--aide-price IN,OUT" in notice
    assert proposer.name == f"{provider}:test-model"
    assert proposer.propose(make_request()).code == FAST
    headers = {k.lower(): v for k, v in fake.received[0].headers.items()}
    assert "sekrit" in " ".join(headers.values())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_missing_key_is_a_usage_error_naming_the_variable(provider: str) -> None:
    settings = AideSettings(steps=1, model=f"{provider}:some-model")
    with pytest.raises(ProposerConfigError, match=KEY_VARIABLE[provider]):
        make_proposer(settings, ORIGINAL, env={})


def test_a_price_given_for_an_unlisted_model_prices_its_tokens(fake: FakeProvider) -> None:
    fake.push(fake.text(code_reply(FAST), tokens=(2_000_000, 1_000_000)))
    settings = AideSettings(steps=1, model=f"{fake.provider}:test-model", budget=1.0,
                            base_url=fake.base_url, price=(0.5, 2.0))
    proposer, notice = make_proposer(settings, ORIGINAL,
                                     env={KEY_VARIABLE[fake.provider]: "sekrit"})
    assert notice is None
    assert proposer.propose(make_request()).usage.cost_usd == pytest.approx(2 * 0.5 + 2.0)
    settings.price = None
    _, notice = make_proposer(settings, ORIGINAL, env={KEY_VARIABLE[fake.provider]: "sekrit"})
    assert notice is not None and "--aide-budget cannot stop this run" in notice


def test_openai_compatible_server_needs_no_key(httpserver) -> None:
    fake = FakeProvider(httpserver, "openai")
    fake.push(fake.text(code_reply(FAST)))
    settings = AideSettings(steps=1, model="llama3.1:8b", base_url=fake.base_url)
    proposer, _ = make_proposer(settings, ORIGINAL, env={})
    assert proposer.propose(make_request()).code == FAST
    body = fake.received[0].body
    assert body["model"] == "llama3.1:8b"
    assert "max_completion_tokens" not in body  # the server's own limit applies


def test_output_token_limit_reaches_the_wire(fake: FakeProvider) -> None:
    from pytest_aide.proposers.anthropic import AnthropicChat
    from pytest_aide.proposers.gemini import GeminiChat
    from pytest_aide.proposers.openai import OpenAIChat

    chat = {"openai": OpenAIChat, "gemini": GeminiChat, "anthropic": AnthropicChat}
    backend = chat[fake.provider]("test-model", "k", base_url=fake.base_url,
                                  max_output_tokens=1234)
    fake.push(fake.text(code_reply(FAST)))
    assert LLMProposer(backend).propose(make_request()).code == FAST
    body = fake.received[0].body
    sent = {"openai": lambda: body["max_completion_tokens"],
            "gemini": lambda: body["generationConfig"]["maxOutputTokens"],
            "anthropic": lambda: body["max_tokens"]}[fake.provider]()
    assert sent == 1234
