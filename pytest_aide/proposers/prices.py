"""Estimated cost of LLM calls, from a small table of list prices.

The prices are the providers' published standard (non-batch, non-cached, short-context)
list prices in USD per million tokens, as of PRICES_AS_OF. They only feed the ``cost_usd``
estimate in the journal and ``--aide-budget``; a model that is not listed gets no estimate
(``None``) rather than a guess. Update the table when prices change.
"""

from __future__ import annotations

import re

from pytest_aide.journal import Usage

PRICES_AS_OF = "2026-07"

#: (provider, model) -> (USD per million input tokens, USD per million output tokens)
PRICES: dict[tuple[str, str], tuple[float, float]] = {
    ("openai", "gpt-5.5"): (5.00, 30.00),
    ("openai", "gpt-5.1"): (1.25, 10.00),
    ("openai", "gpt-5"): (1.25, 10.00),
    ("openai", "gpt-5-mini"): (0.25, 2.00),
    ("openai", "gpt-5-nano"): (0.05, 0.40),
    ("openai", "gpt-4.1"): (2.00, 8.00),
    ("openai", "gpt-4.1-mini"): (0.40, 1.60),
    ("openai", "gpt-4o"): (2.50, 10.00),
    ("openai", "gpt-4o-mini"): (0.15, 0.60),
    ("openai", "o3"): (2.00, 8.00),
    ("openai", "o4-mini"): (1.10, 4.40),
    # Gemini Pro models: the price for prompts up to 200k tokens.
    ("gemini", "gemini-3.1-pro-preview"): (2.00, 12.00),
    ("gemini", "gemini-3-pro-preview"): (2.00, 12.00),
    ("gemini", "gemini-3-flash-preview"): (0.50, 3.00),
    ("gemini", "gemini-2.5-pro"): (1.25, 10.00),
    ("gemini", "gemini-2.5-flash"): (0.30, 2.50),
    ("gemini", "gemini-2.5-flash-lite"): (0.10, 0.40),
    ("anthropic", "claude-sonnet-4-6"): (3.00, 15.00),
    ("anthropic", "claude-opus-4-5"): (5.00, 25.00),
    ("anthropic", "claude-opus-4-1"): (15.00, 75.00),
    ("anthropic", "claude-sonnet-4-5"): (3.00, 15.00),
    ("anthropic", "claude-sonnet-4-0"): (3.00, 15.00),
    ("anthropic", "claude-haiku-4-5"): (1.00, 5.00),
}

# A dated snapshot costs what its alias costs: gpt-5-2025-08-07, claude-sonnet-4-5-20250929.
_SNAPSHOT_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


def price_of(provider: str, model: str) -> tuple[float, float] | None:
    """The (input, output) USD per million tokens of a model, or None when unknown."""
    name = model.strip().lower()
    if name.startswith("models/"):  # Gemini's resource form
        name = name[len("models/") :]
    return PRICES.get((provider, name)) or PRICES.get((provider, _SNAPSHOT_SUFFIX.sub("", name)))


def estimate_cost(provider: str, model: str, usage: Usage,
                  price: tuple[float, float] | None = None) -> float | None:
    """USD for the tokens in ``usage`` at ``price`` (``--aide-price``), else at the table's;
    None when neither knows the model's price."""
    price = price or price_of(provider, model)
    if price is None:
        return None
    per_input, per_output = price
    return (usage.input_tokens * per_input + usage.output_tokens * per_output) / 1_000_000
