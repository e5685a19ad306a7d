"""A fake LLM provider on loopback that speaks each provider's wire format.

The real SDKs talk to it over HTTP (pytest-httpserver), so the tests exercise what the SDKs
really send and parse: OpenAI chat completions, Gemini generateContent, Anthropic messages.
Replies are queued; every request is recorded with its parsed JSON body.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Request, Response

KEY_VARIABLE = {"openai": "OPENAI_API_KEY", "gemini": "GEMINI_API_KEY",
                "anthropic": "ANTHROPIC_API_KEY"}
PROVIDERS = tuple(KEY_VARIABLE)


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON, str -> sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (to trip the client's timeout)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any

    def text(self) -> str:
        """Every piece of prompt text in the request (system and all turns)."""
        return "\n".join(_strings(self.body))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


class FakeProvider:
    def __init__(self, httpserver: Any, provider: str) -> None:
        self.provider = provider
        self.server = httpserver
        self.queue: list[Reply] = []
        self.received: list[Received] = []
        #: Report usage as the tokens really sent and answered (count_tokens).
        self.counts_tokens = False
        httpserver.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    @property
    def base_url(self) -> str:
        root = self.server.url_for("/").rstrip("/")
        return root + "/v1" if self.provider == "openai" else root

    def _count_usage(self, received: Received, body: dict[str, Any]) -> None:
        """Report the tokens of what was really sent and answered (OpenAI's format), as a
        provider would, instead of the reply's fixed figures."""
        sent = count_tokens(received.text())
        answered = count_tokens("".join(c["message"]["content"] for c in body["choices"]))
        body["usage"] = {"prompt_tokens": sent, "completion_tokens": answered,
                         "total_tokens": sent + answered}

    def slow(self, reply: Reply, delay: float) -> Reply:
        reply.delay = delay
        return reply

    def push(self, *replies: Reply) -> FakeProvider:
        self.queue.extend(replies)
        return self

    def _handle(self, request: Request) -> Response:
        raw = request.get_data(as_text=True)
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw
        self.received.append(Received(request.path, dict(request.headers), body))
        if not self.queue:
            return Response("no reply queued", status=500)
        reply = self.queue.pop(0)
        if self.counts_tokens and isinstance(reply.body, dict) and "usage" in reply.body:
            self._count_usage(self.received[-1], reply.body)
        time.sleep(reply.delay)
        data = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
        return Response(data, status=reply.status, headers=reply.headers,
                        content_type="application/json")

    # --- replies in each provider's wire format -------------------------------------

    def text(self, text: str, *, truncated: bool = False, tokens: tuple[int, int] = (100, 20),
             model: str = "test-model") -> Reply:
        prompt_tokens, output_tokens = tokens
        if self.provider == "openai":
            return Reply(body={
                "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "length" if truncated else "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": output_tokens,
                          "total_tokens": prompt_tokens + output_tokens},
            })
        if self.provider == "gemini":
            return Reply(body={
                "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                "finishReason": "MAX_TOKENS" if truncated else "STOP",
                                "index": 0}],
                "usageMetadata": {"promptTokenCount": prompt_tokens,
                                  "candidatesTokenCount": output_tokens,
                                  "totalTokenCount": prompt_tokens + output_tokens},
                "modelVersion": model,
            })
        return Reply(body={
            "id": "msg_1", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "max_tokens" if truncated else "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": prompt_tokens, "output_tokens": output_tokens},
        })

    def error(self, status: int, headers: dict[str, str] | None = None,
              message: str = "") -> Reply:
        message = message or f"fake error {status}"
        if self.provider == "openai":
            body: Any = {"error": {"message": message, "type": "server_error", "code": None}}
        elif self.provider == "gemini":
            body = {"error": {"code": status, "message": message, "status": "UNAVAILABLE"}}
        else:
            body = {"type": "error", "error": {"type": "api_error", "message": message}}
        return Reply(status=status, body=body, headers=headers or {})


#: A BPE tokenizer's pieces, roughly: a word with the spaces before it, one punctuation
#: mark, a run of indentation. Claude's tokenizer (the tokenizer.json that anthropic 0.34's
#: SDK shipped) counts within 2% of this on test_function_targets' 3,000-line module (31,557
#: against 30,966), on pytest_aide/search/loop.py and on the README (checked 2026-12-08).
TOKEN = re.compile(r" ?\w+| ?[^\w\s]|\n[ \t]*|[ \t]+")


def count_tokens(text: str) -> int:
    """About as many tokens as an LLM's tokenizer makes of ``text`` (no tokenizer's data
    can be downloaded in the tests)."""
    return len(TOKEN.findall(text))


def code_reply(code: str, plan: str = "Use a faster loop.") -> str:
    newline = "" if code.endswith("\n") else "\n"
    return f"{plan}\n\n```python\n{code}{newline}```\n"


def use_fake_openai(monkeypatch: Any) -> None:
    """The environment of a run whose proposer is this fake OpenAI server: a key, and no model
    or URL that the machine's own environment would choose instead."""
    for variable in ("AIDE_MODEL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")


def run_with(pytester: Any, fake: FakeProvider, *args: str) -> Any:
    """``pytest ARGS`` in a subprocess, its candidates proposed by ``fake``."""
    return pytester.runpytest_subprocess(
        "--aide-model", "openai:some-model", "--aide-base-url", fake.base_url,
        "-p", "no:cacheprovider", *args)
