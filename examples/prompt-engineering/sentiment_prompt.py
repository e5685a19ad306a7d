"""A review classifier that is nothing but a prompt: the instructions and the worked examples
shown to the model are what the search rewrites. The code around them only builds the chat
messages and reads the label out of the model's answer."""

from __future__ import annotations

import re

SYSTEM = """You read short product reviews and say how the customer felt."""

#: Worked examples shown to the model before each review, as (review, label) pairs.
EXAMPLES = [
    ("I love it, it works great.", "positive"),
    ("It broke after a day.", "negative"),
    ("Fast delivery and a lovely finish.", "positive"),
]

#: How many of EXAMPLES the prompt shows.
SHOTS = 2  # aide: 0..3

LABELS = ("positive", "negative")


def format_review(text: str) -> str:
    return f"Review: {text}\nSentiment:"


def build_messages(text: str) -> list[dict[str, str]]:
    """The chat messages that ask the model for ``text``'s label."""
    shots = "\n\n".join(f"{format_review(review)} {label}" for review, label in EXAMPLES[:SHOTS])
    system = f"{SYSTEM}\n\n{shots}" if shots else SYSTEM
    return [{"role": "system", "content": system},
            {"role": "user", "content": format_review(text)}]


def parse_label(reply: str) -> str:
    """The first label word in the model's reply, or ``unknown``."""
    for word in re.findall(r"[a-z]+", reply.lower()):
        if word in LABELS:
            return word
    return "unknown"
