"""The chat model the tests score the prompt with.

With ``PROMPT_EXAMPLE_BASE_URL`` set (any OpenAI-compatible server: a local Ollama at
``http://localhost:11434/v1``, vLLM, or a hosted API), the tests ask that server's
``PROMPT_EXAMPLE_MODEL``. Without it they start a stand-in on loopback that speaks the same
wire format: a word-counting classifier that knows only the worked examples it is shown, so
a prompt with better examples scores higher. The stand-in checks the plumbing (the SDK, the
messages, the parsing, the search) offline; it says nothing about how a real model reads a
prompt.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

EXAMPLE_PATTERN = re.compile(r"Review: (.+?)\nSentiment: *(\w+)", re.S)
QUERY_PATTERN = re.compile(r"Review: (.+?)\nSentiment: *$", re.S)
#: words too common to say anything about a review's sentiment
STOP_WORDS = {"the", "and", "for", "was", "its", "this", "that", "with", "after", "but",
              "are", "has", "have", "had", "you", "not", "too", "all", "from", "did"}


def words(text: str) -> set[str]:
    return {word for word in re.findall(r"[a-z]+", text.lower())
            if len(word) > 2 and word not in STOP_WORDS}


def stand_in_answer(messages: list[dict[str, str]]) -> str:
    """Label the last review by the labels of the shown examples that share its words."""
    prompt = "\n\n".join(message["content"] for message in messages[:-1])
    query = QUERY_PATTERN.search(messages[-1]["content"])
    if query is None:
        return "I can only label reviews."
    votes: Counter[str] = Counter()
    review_words = words(query.group(1))
    for example, label in EXAMPLE_PATTERN.findall(prompt):
        votes[label.lower()] += len(review_words & words(example))
    ranked = votes.most_common(2)
    if not ranked or ranked[0][1] == 0 or (len(ranked) == 2 and ranked[0][1] == ranked[1][1]):
        return "I am not sure."
    return ranked[0][0]


@dataclass
class Chat:
    """One OpenAI-compatible chat endpoint and the model to ask there."""

    base_url: str
    model: str
    api_key: str

    def complete(self, messages: list[dict[str, str]]) -> str:
        from openai import OpenAI

        client = OpenAI(base_url=self.base_url, api_key=self.api_key, timeout=60.0)
        reply = client.chat.completions.create(model=self.model, messages=messages,
                                               temperature=0.0, max_tokens=16)
        return reply.choices[0].message.content or ""


@pytest.fixture(scope="session")
def chat() -> Iterator[Chat]:
    base_url = os.environ.get("PROMPT_EXAMPLE_BASE_URL")
    if base_url:
        yield Chat(base_url, os.environ.get("PROMPT_EXAMPLE_MODEL", "llama3.2"),
                   os.environ.get("PROMPT_EXAMPLE_API_KEY", "unused"))
        return
    from pytest_httpserver import HTTPServer
    from werkzeug import Request, Response

    def answer(request: Request) -> Response:
        body = json.loads(request.get_data(as_text=True))
        text = stand_in_answer(body["messages"])
        return Response(json.dumps({
            "id": "stand-in", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }), content_type="application/json")

    server = HTTPServer(host="127.0.0.1", port=0)
    server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(answer)
    server.start()
    try:
        yield Chat(server.url_for("/v1"), "stand-in", "unused")
    finally:
        server.clear()
        server.stop()
