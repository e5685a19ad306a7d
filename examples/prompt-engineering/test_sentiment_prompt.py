"""The prompt is judged on reviews it never shows: accuracy is the metric, and the other
tests keep the prompt honest (well-formed messages, a readable label, none of the scored
reviews copied into it, a size a real model's context takes cheaply)."""

from __future__ import annotations

import pytest
import sentiment_prompt

#: The labelled reviews the prompt is scored on. They live here, not in the module.
SCORED = [
    ("Works great, I use it every day.", "positive"),
    ("The handle broke the first week.", "negative"),
    ("Delivery was fast and the box was fine.", "positive"),
    ("Stopped charging after two days.", "negative"),
    ("Cheap plastic, returned it.", "negative"),
    ("Great value, would buy again.", "positive"),
    ("Terrible sound and a weak battery.", "negative"),
    ("The colour is lovely and it feels solid.", "positive"),
    ("Arrived damaged and support never answered.", "negative"),
    ("Comfortable, quiet and easy to clean.", "positive"),
    ("Too small and the zipper broke.", "negative"),
    ("Battery lasts all week, very happy.", "positive"),
]

#: The most characters of instructions and examples the prompt may spend.
PROMPT_BUDGET = 2000


def label(chat, text: str) -> str:
    return sentiment_prompt.parse_label(chat.complete(sentiment_prompt.build_messages(text)))


# A score, not a speed: the original's answers are not replayed against candidates (a better
# prompt makes build_messages return something else); the tests below judge them.
@pytest.mark.optimize(metric="accuracy", maximize=True, target="sentiment_prompt")
def test_accuracy(chat, record_property) -> None:
    answers = [label(chat, text) for text, _ in SCORED]
    accuracy = sum(a == want for a, (_, want) in zip(answers, SCORED, strict=True)) / len(SCORED)
    record_property("accuracy", accuracy)
    print(f"accuracy: {accuracy:.4f}")
    assert set(answers) <= {*sentiment_prompt.LABELS, "unknown"}


def test_messages_end_with_the_review() -> None:
    messages = sentiment_prompt.build_messages("A review to label.")
    assert all(set(m) == {"role", "content"} for m in messages)
    assert {m["role"] for m in messages} <= {"system", "user", "assistant"}
    assert messages[-1]["role"] == "user"
    assert "A review to label." in messages[-1]["content"]


@pytest.mark.parametrize("reply, expected", [
    ("positive", "positive"), ("Negative.", "negative"),
    ("The sentiment is positive.", "positive"), ("I am not sure.", "unknown"),
])
def test_labels_are_read_from_replies(reply: str, expected: str) -> None:
    assert sentiment_prompt.parse_label(reply) == expected


def test_no_scored_review_is_in_the_prompt() -> None:
    prompt = " ".join(m["content"] for m in sentiment_prompt.build_messages("x")).lower()
    copied = [text for text, _ in SCORED if text.lower().rstrip(".") in prompt]
    assert not copied, f"the prompt shows scored reviews: {copied}"


def test_prompt_fits_its_budget() -> None:
    messages = sentiment_prompt.build_messages("")
    assert sum(len(m["content"]) for m in messages[:-1]) <= PROMPT_BUDGET
