"""Gemini through the ``google-genai`` SDK (``generateContent``).

google-genai retries nothing unless it is given ``HttpRetryOptions``; here it is, so that
408/429/5xx and connection timeouts are retried with exponential backoff and jitter. That
SDK does not read ``retry-after``: its backoff applies to 429 too.
"""

from __future__ import annotations

import importlib
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

#: Where the SDK sends requests when no base URL is given.
GEMINI_ENDPOINT = "https://generativelanguage.googleapis.com"


class GeminiChat:
    """One generateContent request per ``complete`` call."""

    provider = "gemini"

    def __init__(
        self,
        model: str,
        api_key: str,
        *,
        base_url: str | None = None,
        retry: RetryPolicy | None = None,
        max_output_tokens: int | None = None,
    ) -> None:
        genai = provider_named(self.provider).import_sdk()
        errors, types = genai.errors, genai.types
        retry = retry or RetryPolicy()
        self.model = model
        self._types = types
        self._errors = (errors.APIError, ValueError, *_transport_errors())
        self._max_output_tokens = max_output_tokens
        options = types.HttpOptions(
            base_url=base_url,
            timeout=int(retry.timeout * 1000),  # milliseconds
            retry_options=types.HttpRetryOptions(
                attempts=retry.max_retries + 1,
                initial_delay=retry.initial_delay,
                max_delay=retry.max_delay,
                jitter=retry.initial_delay,  # tenacity adds up to this many seconds
            ),
        )
        try:
            self._client = genai.Client(api_key=api_key, vertexai=False, http_options=options)
        except (*self._errors, TypeError) as exc:
            raise ProposerConfigError(f"cannot set up the gemini client: {exc}") from None
        self.endpoint = (base_url or GEMINI_ENDPOINT).rstrip("/")

    def complete(self, system: str, turns: list[Turn]) -> Completion:
        types = self._types
        contents = [
            types.Content(
                role="model" if turn.role == "assistant" else "user",
                parts=[types.Part(text=turn.text)],
            )
            for turn in turns
        ]
        config = types.GenerateContentConfig(
            system_instruction=system, max_output_tokens=self._max_output_tokens
        )
        try:
            response = self._client.models.generate_content(
                model=self.model, contents=contents, config=config
            )
        except self._errors as exc:
            raise request_failed(self, exc) from exc
        return self._read(response)

    def _read(self, response: Any) -> Completion:
        try:
            usage = response.usage_metadata
            input_tokens = int(getattr(usage, "prompt_token_count", 0) or 0)
            output_tokens = int(getattr(usage, "candidates_token_count", 0) or 0)
            output_tokens += int(getattr(usage, "thoughts_token_count", 0) or 0)
            candidates = response.candidates or []
        except (AttributeError, TypeError, ValueError) as exc:
            raise malformed(self, f"unreadable response ({type(exc).__name__})") from None
        if not candidates:
            blocked = getattr(getattr(response, "prompt_feedback", None), "block_reason", None)
            if not blocked:
                raise malformed(self, "no candidates and no block reason")
            reason = f"prompt blocked: {_name(blocked)}"
            return Completion("", False, input_tokens, output_tokens, reason)
        candidate = candidates[0]
        finish = _name(candidate.finish_reason)
        parts = (candidate.content.parts if candidate.content else None) or []
        text = "".join(p.text for p in parts if isinstance(p.text, str) and not p.thought)
        return Completion(text, finish == "MAX_TOKENS", input_tokens, output_tokens, finish)


def _name(value: object) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP client's own errors (a dropped connection) that google-genai lets through."""
    found: list[type[BaseException]] = []
    for module_name in ("httpx", "httpx2"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        error = getattr(module, "HTTPError", None)
        if isinstance(error, type) and issubclass(error, BaseException):
            found.append(error)
    return tuple(found)
