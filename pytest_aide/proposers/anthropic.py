"""Claude through the ``anthropic`` SDK (Messages API).

Retries are the SDK's: 408/409/429/5xx (and 529 overloaded) and connection errors are
retried ``max_retries`` times with exponential backoff, honouring ``retry-after``.
"""

from __future__ import annotations

from typing import Any

from pytest_aide.proposers.base import ProposerConfigError
from pytest_aide.proposers.llm import (
    Completion,
    RetryPolicy,
    Turn,
    malformed,
    request_failed,
)
from pytest_aide.proposers.providers import provider_named

#: Messages API requires a limit. 16k keeps a non-streaming request well inside the SDK's
#: ten-minute expectation while leaving room for a complete module.
DEFAULT_MAX_OUTPUT_TOKENS = 16_000


class AnthropicChat:
    """One messages.create request per ``complete`` call."""

    provider = "anthropic"

    def __init__(
        self,
        model: str,
        api_key: str,
        *,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS,
    ) -> None:
        anthropic = provider_named(self.provider).import_sdk()
        retry = retry or RetryPolicy()
        self.model = model
        self._errors = (anthropic.AnthropicError, ValueError)
        self._max_output_tokens = max_output_tokens
        try:
            self._client = anthropic.Anthropic(
                api_key=api_key,
                base_url=base_url,
                timeout=retry.timeout,
                max_retries=retry.max_retries,
            )
        except (*self._errors, TypeError) as exc:
            raise ProposerConfigError(f"cannot set up the anthropic client: {exc}") from None
        self.endpoint = str(self._client.base_url).rstrip("/")

    def complete(self, system: str, turns: list[Turn]) -> Completion:
        messages = [{"role": turn.role, "content": turn.text} for turn in turns]
        try:
            response: Any = self._client.messages.create(
                model=self.model,
                system=system,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=self._max_output_tokens,
            )
        except self._errors as exc:
            raise request_failed(self, exc) from exc
        return self._read(response)

    def _read(self, response: Any) -> Completion:
        if getattr(response, "content", None) is None:
            raise malformed(self, "no content blocks")
        try:
            blocks = response.content
            text = "".join(
                b.text for b in blocks if getattr(b, "type", "") == "text" and b.text
            )
            finish = str(response.stop_reason or "")
            input_tokens = int(getattr(response.usage, "input_tokens", 0) or 0)
            output_tokens = int(getattr(response.usage, "output_tokens", 0) or 0)
        except (AttributeError, TypeError, ValueError) as exc:
            raise malformed(self, f"no content blocks ({type(exc).__name__})") from None
        return Completion(text, finish == "max_tokens", input_tokens, output_tokens, finish)
