"""OpenAI chat completions (and OpenAI-compatible servers: vLLM, Ollama, DeepSeek, ...).

The ``openai`` SDK is imported when this backend is built, never at plugin load. Retries
are the SDK's: 408/409/429/5xx and connection errors are retried ``max_retries`` times with
exponential backoff, honouring ``retry-after`` / ``retry-after-ms``.
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


class OpenAIChat:
    """One chat-completions request per ``complete`` call."""

    provider = "openai"

    def __init__(
        self,
        model: str,
        api_key: str,
        *,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        max_output_tokens: int | None = None,
    ) -> None:
        openai = provider_named(self.provider).import_sdk()
        retry = retry or RetryPolicy()
        self.model = model
        self._errors = (openai.OpenAIError, ValueError)
        try:
            self._client = openai.OpenAI(
                api_key=api_key,
                base_url=base_url,
                timeout=retry.timeout,
                max_retries=retry.max_retries,
            )
        except (*self._errors, TypeError) as exc:
            raise ProposerConfigError(f"cannot set up the openai client: {exc}") from None
        self.endpoint = str(self._client.base_url).rstrip("/")
        # No limit by default: models differ in their maximum (a limit above it is a 400),
        # and compatible servers may not know ``max_completion_tokens`` at all; the model's
        # own maximum applies, and a reply cut off there is handled like any other.
        self._limit: dict[str, int] = {}
        if max_output_tokens is not None:
            self._limit = {"max_completion_tokens": max_output_tokens}

    def complete(self, system: str, turns: list[Turn]) -> Completion:
        messages = [{"role": "system", "content": system}]
        messages += [{"role": turn.role, "content": turn.text} for turn in turns]
        try:
            response: Any = self._client.chat.completions.create(
                model=self.model, messages=messages, **self._limit  # type: ignore[arg-type]
            )
        except self._errors as exc:
            raise request_failed(self, exc) from exc
        return self._read(response)

    def _read(self, response: Any) -> Completion:
        try:
            choice = response.choices[0]
            text = choice.message.content or ""
            finish = str(choice.finish_reason or "")
            usage = getattr(response, "usage", None)
            input_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
            output_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as exc:
            raise malformed(self, f"no choices[0].message ({type(exc).__name__})") from None
        if not isinstance(text, str):
            raise malformed(self, "message content is not text")
        return Completion(text, finish == "length", input_tokens, output_tokens, finish)
